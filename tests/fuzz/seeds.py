#!/usr/bin/env python3
"""Write the text and small binary seeds of tests/fuzz/corpus/ (the
segment files and meta.log seeds come from seeds.c: make fuzz-seeds)."""
import os, struct, sys

d = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus"

def put(target, name, data):
    os.makedirs(os.path.join(d, target), exist_ok=True)
    with open(os.path.join(d, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

vecs = [[0.5, 1.0, -2.25, 3.0], [1e-3, 2.5e3, 0.0, -1.0]]
fvecs = b"".join(struct.pack("<i4f", 4, *v) for v in vecs)
bvecs = b"".join(struct.pack("<i4B", 4, 1, 2, 3, 250) for _ in range(2))
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
hdr += " " * (64 - 10 - len(hdr) - 1) + "\n"
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode()
npy += b"".join(struct.pack("<4f", *v) for v in vecs)
text = "0.5 1 -2.25 3\n0.001,2500,0,-1\n"
text_ids = "7 0.5 1 -2.25 3\n# comment\n\n8\t1e-3\t2.5e3\t0\t-1\r\n"
jsonl = ('{"id":7,"vector":[0.5,1,-2.25,3],"price":9.5,"tag":"red","n":3}\n'
         '{"vector":[1e-3,2.5e3,0,-1],"tag":"bl\\u00e9\\n","price":null}\n')
for sel, name, data in [(0, "auto-fvecs", fvecs), (0, "auto-npy", npy),
                        (0, "auto-text", text), (0, "auto-jsonl", jsonl),
                        (1, "fvecs", fvecs), (2, "bvecs", bvecs), (3, "npy", npy),
                        (4, "text", text), (5, "text-ids", text_ids),
                        (6, "jsonl", jsonl), (7, "jsonl-fields", jsonl),
                        (8 | 4, "text-dim4", text), (16 | 1, "fvecs-cap1", fvecs),
                        (0, "auto-bvecs", bvecs)]:
    put("vecio", name, bytes([sel]) + (data if isinstance(data, bytes) else data.encode()))

put("ids", "plain", b"\x07" + b"1\n2\n3\n-9223372036854775808\n9223372036854775807\n")
put("ids", "comments", b"\x00" + b"# ids\n\n  42  \r\n\t7\n# end\n")
put("ids", "bad", b"\x01" + b"1\nx2\n")

put("proto", "requests", "HELLO 1\r\nPING\nCREATE c 4 l2 price:float64,tag:string\n"
    "INSERT c 2 ids,upsert 64\nSEARCH c 10 1 16 nprobe=8 ef=64 fields=a,b\n"
    "GET c 3 24 fields\nSCAN c -1 1000\nDELETE c 3 24\n")
put("proto", "numbers", "SEARCH c 18446744073709551615 1073741824 1000001\n"
    "INSERT c 00012 - 18446744073709551616\n")
put("proto", "reply", "OK n=3 first_id=17 bytes=12 dim=4 metric=l2\n")

def reply(op, text, payload=b""):
    return bytes([op]) + text.encode() + payload

ids3 = struct.pack("<3q", 1, 2, 3)
put("reply", "cmd", reply(0, "OK pong\n"))
put("reply", "lines", reply(1, "c dim=4 rows=3\nd dim=8 rows=0\nEND\n"))
put("reply", "lines-err", reply(1, "c dim=4\nERR IO disk full\n"))
put("reply", "describe", reply(2, "OK dim=4 metric=l2 rows=3 segments=1 index=- "
                                 "fields=price:float64,tag:string\n"))
put("reply", "insert", reply(4, "OK n=3 first_id=17\n"))
put("reply", "insert-err", reply(3, "ERR DUPID id 1 given twice\n"))
put("reply", "delete", reply(5, "OK n=3\n"))
put("reply", "flush", reply(6, "OK inserted=3 deleted=1\n"))
put("reply", "session", reply(7, "ERR NOSESSION no session 's'\n"))
put("reply", "search", reply(8, "OK nq=1 k=1 bytes=12\n", struct.pack("<qf", 2, 0.5)))
put("reply", "search-fields", reply(9, "OK nq=1 k=1 bytes=16\n",
                                    struct.pack("<qf", 2, 0.5) + b"red\n"))
rows = ids3 + b"".join(struct.pack("<f", i) for i in range(12))
put("reply", "get", reply(10, "OK n=3 bytes=%d\n" % len(rows), rows))
put("reply", "scan-fields", reply(11 | 16, "OK n=3 bytes=%d\n" % (len(rows) + 6),
                                  rows + b"a\nb\nc\n"))

put("conf", "full", "# mv.conf\nauto_flush = yes\nflush_interval = 500\n"
    "flush_limit = 16M\nsession_ttl=60\nbusy_poll_us = 0\nnum_replicas = 1\n"
    "num_nodes = 2\nsync_level = 1\nlisten = unix:/tmp/mv.sock\n"
    "listen = 127.0.0.1:7070\nallow = 127.0.0.0/8\nallow = ::1/128\n"
    "data_dir = /var/lib/mv\nmemory_limit = 1G\nverbose = 2\nuser = alice\n"
    "cluster_id = c1\nmaster = 127.0.0.1:7000\netcd = 127.0.0.1:2379\n"
    "s3_endpoint = http://127.0.0.1:9000\ns3_bucket = b\ns3_region = r\n")
put("conf", "bad", "flush_limit = 12Q\n")
put("conf", "nokey", "  = 3\nnonsense\n")
