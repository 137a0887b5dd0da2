#!/usr/bin/env python3
"""etcd_drop.py - a TCP proxy to etcd that loses one answer on demand.

    etcd_drop.py HOST:PORT PORTFILE TRIGGER LOG

Listens on a free loopback port, writes it to PORTFILE once it listens,
and forwards every connection to etcd at HOST:PORT, byte for byte.  While
the file TRIGGER exists, the next transaction request (POST /v3/kv/txn)
goes to etcd whole, but its answer does not come back: the proxy removes
TRIGGER, waits for etcd's first bytes of the answer (so etcd has applied
the transaction), and closes both sides instead of passing them on.  The
client sees its connection end with no answer: the outcome of a commit
that did apply is unknown to it (tests/66-lost-answer.bats).  Each such
loss is a line "dropped the answer of a txn" in LOG.
"""
import os
import socket
import sys
import threading

upstream, portfile, trigger, logpath = sys.argv[1:5]
uhost, uport = upstream.rsplit(":", 1)


def log(msg):
    with open(logpath, "a") as f:
        f.write(msg + "\n")


def pipe(src, dst, conn):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if src is conn["up"] and conn["drop"]:
                log("dropped the answer of a txn")
                break
            if src is conn["client"] and b"POST /v3/kv/txn" in data \
                    and os.path.exists(trigger):
                try:
                    os.unlink(trigger)
                    conn["drop"] = True
                    log("losing the answer of: %r" % data[-600:])
                except FileNotFoundError:
                    pass
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    up = socket.create_connection((uhost, int(uport)))
    conn = {"client": client, "up": up, "drop": False}
    t = threading.Thread(target=pipe, args=(up, client, conn), daemon=True)
    t.start()
    pipe(client, up, conn)
    t.join()
    client.close()
    up.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
