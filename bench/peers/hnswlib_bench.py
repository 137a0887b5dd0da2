#!/usr/bin/python3
"""hnswlib_bench.py - the hnswlib side of bench/peers.sh (issue 9).

    hnswlib_bench.py --metric l2|cosine --threads T --M M --efc EFC
                     --ef "16 32 ..." --dir DIR BASE.fvecs QUERY.fvecs GT.ivecs

Builds an HNSW index with Debian's python3-hnswlib (space 'cosine' or
'l2', labels = base rows) with add_items(num_threads=T) (timed: build_s;
there is no separate ingest), saves it to DIR/hnswlib.bin with fsync
(timed: save_s; bytes on disk = that file), then for each ef: one
knn_query of all queries at once (num_threads=T; qps_batch) and a loop of
single-query knn_query calls (num_threads=1; median and p99 latency,
qps_single; the Python call overhead, about 2-5 us, is included).
Output as bench/faiss_index: "# key<TAB>value" lines, then one TSV row per
ef: param value recall qps_batch median_us p90_us p99_us qps_single
recall_single.  Peak RSS is measured outside (GNU time).
"""
import argparse
import os
import sys
import time

import hnswlib
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def hits(labels, gt, k):
    n = labels.shape[0]
    return sum(len(np.intersect1d(labels[q, :k], gt[q, :k], assume_unique=True))
               for q in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine", "ip"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--efc", type=int, default=40)
    ap.add_argument("--ef", default="16 32 64 128 256")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--dir", required=True)
    ap.add_argument("base")
    ap.add_argument("query")
    ap.add_argument("gt")
    a = ap.parse_args()

    xb = read_vecs(a.base, np.float32)
    xq = read_vecs(a.query, np.float32)
    gt = read_vecs(a.gt, np.int32)
    nb, dim = xb.shape
    k = a.k

    t0 = time.perf_counter()
    index = hnswlib.Index(space=a.metric, dim=dim)
    index.init_index(max_elements=nb, M=a.M, ef_construction=a.efc,
                     random_seed=100)
    index.add_items(xb, np.arange(nb), num_threads=a.threads)
    build_s = time.perf_counter() - t0

    path = os.path.join(a.dir, "hnswlib.bin")
    t0 = time.perf_counter()
    index.save_index(path)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    save_s = time.perf_counter() - t0
    del xb

    print(f"# hnswlib\t{getattr(hnswlib, '__version__', 'debian')}")
    print(f"# ntotal\t{nb}\n# dim\t{dim}\n# metric\t{a.metric}")
    print(f"# threads\t{a.threads}\n# build_s\t{build_s:.3f}")
    print(f"# save_s\t{save_s:.3f}\n# disk_bytes\t{os.path.getsize(path)}")
    print("param\tvalue\trecall\tqps_batch\tmedian_us\tp90_us\tp99_us"
          "\tqps_single\trecall_single", flush=True)

    nq = xq.shape[0]
    index.set_ef(int(a.ef.split()[0]))
    index.knn_query(xq[:200], k=k, num_threads=a.threads)  # warm up
    lat = np.empty(nq)
    slab = np.empty((nq, k), dtype=np.int64)
    for ef in (int(v) for v in a.ef.split()):
        index.set_ef(ef)
        t0 = time.perf_counter()
        lab, _ = index.knn_query(xq, k=k, num_threads=a.threads)
        tb = time.perf_counter() - t0
        for q in range(nq):
            ta = time.perf_counter()
            sl, _ = index.knn_query(xq[q:q + 1], k=k, num_threads=1)
            lat[q] = time.perf_counter() - ta
            slab[q] = sl[0]
        s = np.sort(lat)
        pick = lambda p: s[min(nq - 1, max(0, int(np.ceil(p * nq)) - 1))] * 1e6
        print(f"ef\t{ef}\t{hits(lab, gt, k) / (nq * k):.4f}\t{nq / tb:.1f}"
              f"\t{pick(0.5):.1f}\t{pick(0.9):.1f}\t{pick(0.99):.1f}"
              f"\t{nq / lat.sum():.1f}\t{hits(slab, gt, k) / (nq * k):.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
