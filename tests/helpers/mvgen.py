#!/usr/bin/env python3
"""mvgen.py - deterministic test data and small checks for the mv bats suite.

Pure Python 3 (no numpy), so the suite runs on a fresh Debian machine.

  vecs N D [--seed S] [--format text|fvecs|bvecs|jsonl] [--ids-first START]
           [--sep ' '] [--nan ROW] [--dim-at ROW:D] [--cut BYTES]
      N deterministic vectors of dimension D with values k/8, |k| <= 64, so
      that every value, sum and square is exact in float32.  jsonl rows
      carry "price" (float64), "tag" (string) and "n" (int64).
  f32 V...            raw little-endian float32 values on stdout
  i64 V...            raw little-endian int64 values on stdout
  fvecs-head FILE N   the first N records of an fvecs file
  fvecs2text FILE     one line per record, values joined by spaces (%.9g)
  knn BASE QUERIES K METRIC
      exact top-K of the text vectors in BASE (first number of a line is the
      id) for the text QUERIES, as mv-search prints it (float64 brute force,
      ties by smaller id).
  recall RESULT GT K  recall@K of mv-search TSV RESULT against an ivecs GT
  recall-tsv RESULT TRUTH K   recall@K of one mv-search TSV against another
  decode [DIM]        reads a raw wire transcript on stdin and prints its
      text lines; the payload of "OK ... bytes=B" replies is decoded as
      SEARCH ids/distances when the line has nq= and k=, as GET/SCAN ids and
      vectors when it has n= and DIM is given, else summarised.
  wire ADDR [--idle S] [--hold S]
      one connection to ADDR (unix:PATH, PATH or HOST:PORT): sends stdin
      (a send the node refuses by closing is not an error), keeps the
      connection open --hold seconds, half-closes it, and copies what the
      node answers to stdout until the node closes or is quiet for --idle
      seconds (default 2).  Exit 0.
  clusters N D C [--seed S]   N text vectors around C random centres, with
      ids first (recall fallback when glove-100 is absent)
"""
import json
import math
import random
import struct
import sys


def out():
    return sys.stdout.buffer


def fmt(x):
    return "%.9g" % x


def gen_vals(rng, d):
    return [rng.randint(-64, 64) / 8.0 for _ in range(d)]


def cmd_vecs(args):
    n, d = int(args[0]), int(args[1])
    opts = {"--seed": "1", "--format": "text", "--ids-first": None,
            "--sep": " ", "--nan": None, "--dim-at": None, "--cut": None}
    i = 2
    while i < len(args):
        opts[args[i]] = args[i + 1]
        i += 2
    rng = random.Random(int(opts["--seed"]))
    # Scalar fields draw from their own generator, so that the vectors of
    # every format are the same for the same seed.
    frng = random.Random(int(opts["--seed"]) + 1000003)
    f = opts["--format"]
    nan_row = int(opts["--nan"]) if opts["--nan"] else None
    dim_at = None
    if opts["--dim-at"]:
        r, dd = opts["--dim-at"].split(":")
        dim_at = (int(r), int(dd))
    buf = bytearray()
    for row in range(1, n + 1):
        dd = dim_at[1] if dim_at and dim_at[0] == row else d
        if f == "bvecs":
            vals = [rng.randint(0, 255) for _ in range(dd)]
        else:
            vals = gen_vals(rng, dd)
        if nan_row == row:
            vals[0] = float("nan")
        rid = None
        if opts["--ids-first"] is not None:
            rid = int(opts["--ids-first"]) + row - 1
        if f == "text":
            words = ([str(rid)] if rid is not None else []) + \
                [fmt(v) for v in vals]
            buf += (opts["--sep"].join(words) + "\n").encode()
        elif f == "fvecs":
            buf += struct.pack("<i", dd) + struct.pack("<%df" % dd, *vals)
        elif f == "bvecs":
            buf += struct.pack("<i", dd) + bytes(vals)
        elif f == "jsonl":
            obj = {}
            if rid is not None:
                obj["id"] = rid
            obj["vector"] = vals
            obj["price"] = frng.randint(0, 1000) / 4.0
            obj["tag"] = frng.choice(["red", "green", "blue", "tab\there",
                                      "quote\"d"])
            obj["n"] = frng.randint(-1000, 1000)
            buf += (json.dumps(obj) + "\n").encode()
        else:
            sys.exit("mvgen: unknown format " + f)
    if opts["--cut"]:
        buf = buf[:len(buf) - int(opts["--cut"])]
    out().write(bytes(buf))


def cmd_f32(args):
    out().write(struct.pack("<%df" % len(args), *[float(a) for a in args]))


def cmd_i64(args):
    out().write(struct.pack("<%dq" % len(args), *[int(a) for a in args]))


def read_fvecs(path, limit=None):
    with open(path, "rb") as fp:
        while limit is None or limit > 0:
            h = fp.read(4)
            if len(h) < 4:
                return
            (d,) = struct.unpack("<i", h)
            body = fp.read(4 * d)
            yield d, h + body
            if limit is not None:
                limit -= 1


def cmd_fvecs_head(args):
    for _, rec in read_fvecs(args[0], int(args[1])):
        out().write(rec)


def cmd_fvecs2text(args):
    w = sys.stdout
    for d, rec in read_fvecs(args[0]):
        vals = struct.unpack("<%df" % d, rec[4:])
        w.write(" ".join(fmt(v) for v in vals) + "\n")


def read_text(path, ids_first):
    rows = []
    with open(path) as fp:
        for i, line in enumerate(fp):
            nums = [float(x) for x in line.replace(",", " ").split()]
            if ids_first:
                rows.append((int(nums[0]), nums[1:]))
            else:
                rows.append((i, nums))
    return rows


def score(metric, a, b):
    if metric == "l2":
        return sum((x - y) * (x - y) for x, y in zip(a, b))
    dot = sum(x * y for x, y in zip(a, b))
    if metric == "ip":
        return dot
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def cmd_knn(args):
    base = read_text(args[0], True)
    queries = read_text(args[1], False)
    k, metric = int(args[2]), args[3]
    for qno, (_, q) in enumerate(queries):
        scored = [(score(metric, q, v), rid) for rid, v in base]
        if metric == "l2":
            scored.sort(key=lambda t: (t[0], t[1]))
        else:
            scored.sort(key=lambda t: (-t[0], t[1]))
        for rank, (s, rid) in enumerate(scored[:k], 1):
            print("%d\t%d\t%d\t%s" % (qno, rank, rid, fmt(s)))


def read_tsv_hits(path, k):
    hits = {}
    with open(path) as fp:
        for line in fp:
            f = line.rstrip("\n").split("\t")
            if len(f) < 4:
                continue
            q, rank, rid = int(f[0]), int(f[1]), int(f[2])
            if rank <= k:
                hits.setdefault(q, set()).add(rid)
    return hits


def cmd_recall(args):
    hits = read_tsv_hits(args[0], int(args[2]))
    k = int(args[2])
    nq = max(hits.keys()) + 1 if hits else 0
    found = 0
    with open(args[1], "rb") as fp:
        for q in range(nq):
            (d,) = struct.unpack("<i", fp.read(4))
            gt = struct.unpack("<%di" % d, fp.read(4 * d))[:k]
            found += len(hits.get(q, set()) & set(gt))
    print("%.4f" % (found / float(nq * k) if nq else 0.0))


def cmd_recall_tsv(args):
    k = int(args[2])
    got = read_tsv_hits(args[0], k)
    truth = read_tsv_hits(args[1], k)
    total = sum(len(v) for v in truth.values())
    found = sum(len(got.get(q, set()) & v) for q, v in truth.items())
    print("%.4f" % (found / float(total) if total else 0.0))


def cmd_decode(args):
    data = sys.stdin.buffer.read()
    pos = 0
    w = sys.stdout
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            w.write("PARTIAL %r\n" % data[pos:])
            return
        line = data[pos:nl].decode("utf-8", "replace").rstrip("\r")
        pos = nl + 1
        w.write(line + "\n")
        kv = dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)
        if not line.startswith("OK") or "bytes" not in kv:
            continue
        nbytes = int(kv["bytes"])
        payload = data[pos:pos + nbytes]
        pos += nbytes
        if len(payload) < nbytes:
            w.write("SHORT payload %d of %d\n" % (len(payload), nbytes))
            return
        if "nq" in kv and "k" in kv:
            m = int(kv["nq"]) * int(kv["k"])
            ids = struct.unpack("<%dq" % m, payload[:8 * m])
            dist = struct.unpack("<%df" % m, payload[8 * m:12 * m])
            w.write("ids " + " ".join(str(i) for i in ids) + "\n")
            w.write("dist " + " ".join(fmt(x) for x in dist) + "\n")
            rest = payload[12 * m:]
            if rest:
                w.write(rest.decode("utf-8", "replace"))
        elif "n" in kv and args:
            n, d = int(kv["n"]), int(args[0])
            ids = struct.unpack("<%dq" % n, payload[:8 * n])
            vecs = struct.unpack("<%df" % (n * d), payload[8 * n:8 * n + 4 * n * d])
            w.write("ids " + " ".join(str(i) for i in ids) + "\n")
            w.write("vecs " + " ".join(fmt(x) for x in vecs) + "\n")
            rest = payload[8 * n + 4 * n * d:]
            if rest:
                w.write(rest.decode("utf-8", "replace"))
        else:
            w.write("payload %d bytes\n" % nbytes)


def cmd_clusters(args):
    n, d, c = int(args[0]), int(args[1]), int(args[2])
    seed = int(args[4]) if len(args) > 4 and args[3] == "--seed" else 7
    rng = random.Random(seed)
    centres = [[rng.uniform(-10, 10) for _ in range(d)] for _ in range(c)]
    for i in range(n):
        ctr = centres[rng.randrange(c)]
        v = [x + rng.gauss(0, 9.0) for x in ctr]
        print(str(i) + " " + " ".join("%.4f" % x for x in v))


def cmd_wire(args):
    import socket
    import threading
    import time
    addr = args[0]
    opts = {"--idle": "2", "--hold": "0"}
    for i in range(1, len(args), 2):
        opts[args[i]] = args[i + 1]
    idle, hold = float(opts["--idle"]), float(opts["--hold"])
    if addr.startswith("unix:") or addr.startswith("/"):
        sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sk.connect(addr[5:] if addr.startswith("unix:") else addr)
    else:
        host, port = addr.rsplit(":", 1)
        sk = socket.create_connection((host.strip("[]"), int(port)))
    data = sys.stdin.buffer.read()

    def sender():
        try:
            sk.sendall(data)
            if hold:
                time.sleep(hold)
            sk.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    sk.settimeout(idle)
    got = bytearray()
    while True:
        try:
            b = sk.recv(1 << 16)
        except socket.timeout:
            if th.is_alive():
                continue
            break
        except OSError:
            break
        if not b:
            break
        got += b
    out().write(bytes(got))
    out().flush()


def main():
    cmds = {"vecs": cmd_vecs, "f32": cmd_f32, "i64": cmd_i64,
            "fvecs-head": cmd_fvecs_head, "fvecs2text": cmd_fvecs2text,
            "knn": cmd_knn, "recall": cmd_recall,
            "recall-tsv": cmd_recall_tsv, "decode": cmd_decode,
            "clusters": cmd_clusters, "wire": cmd_wire}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
