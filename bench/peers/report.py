#!/usr/bin/python3
"""report.py - the tables and plots of bench/peers.sh (issue 9).

    report.py OUT

Reads OUT/builds.tsv, OUT/sweep.tsv and OUT/header.txt as bench/peers.sh
writes them, prints Markdown tables (also written to OUT/report.md) and
draws OUT/peers-DATASET.png with gnuplot: recall@10 against batch QPS,
one panel per thread count, batch QPS above, single-query QPS below.

Every figure is the median over the runs.  A ratio is computed within
each run first (mv against the peer of that same run), then its median is
taken.  "mv at equal recall": mv's batch QPS at the peer's recall, read
off mv's own recall/QPS curve of the same index family, run and threads
(linear between the two sweep points around it; at a recall below mv's
lowest point, mv's fastest point, which has more recall; above mv's best
recall: none, shown as "-").
"""
import csv
import os
import statistics
import subprocess
import sys
from collections import defaultdict


def family(index):
    return "HNSW" if index.startswith("HNSW") else "IVF"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def mv_qps_at(curve, recall):
    """mv's batch QPS at this recall on its curve [(recall, qps)]."""
    pts = sorted(curve)
    if not pts or recall > pts[-1][0]:
        return None
    if recall <= pts[0][0]:
        return max(q for _, q in pts)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= recall <= r1:
            if r1 == r0:
                return max(q0, q1)
            return q0 + (q1 - q0) * (recall - r0) / (r1 - r0)
    return None


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "builds.tsv")) as f:
        builds = list(csv.DictReader(f, delimiter="\t"))
    with open(os.path.join(out, "sweep.tsv")) as f:
        sweep = list(csv.DictReader(f, delimiter="\t"))
    header = ""
    if os.path.exists(os.path.join(out, "header.txt")):
        header = open(os.path.join(out, "header.txt")).read().strip()
    num = lambda s: None if s in ("", "-", None) else float(s)

    lines = [header, ""] if header else []
    datasets = list(dict.fromkeys(b["dataset"] for b in builds))
    order = {"mv": 0, "faiss": 1, "hnswlib": 2, "lancedb": 3}
    for ds in datasets:
        threads = sorted({int(b["threads"]) for b in builds if b["dataset"] == ds})
        for t in threads:
            T = str(t)
            bs = [b for b in builds if b["dataset"] == ds and b["threads"] == T]
            ss = [s for s in sweep if s["dataset"] == ds and s["threads"] == T]
            keys = sorted({(b["engine"], b["index"]) for b in bs},
                          key=lambda k: (family(k[1]), order.get(k[0], 9)))
            mvb = {(family(b["index"]), b["run"]): b for b in bs if b["engine"] == "mv"}
            lines += [f"### {ds}, {t} thread{'s' if t > 1 else ''}", ""]
            lines += ["| engine | index | ingest s | index build s | build / mv | "
                      "peak RSS MiB | RSS / mv | disk MiB |", "|---|---|---|---|---|---|---|---|"]
            for eng, idx in keys:
                rows = [b for b in bs if b["engine"] == eng and b["index"] == idx]
                rb, rr = [], []
                for b in rows:
                    m = mvb.get((family(idx), b["run"]))
                    if m and eng != "mv":
                        rb.append(num(b["build_s"]) / num(m["build_s"]))
                        rr.append(num(b["rss_kb"]) / num(m["rss_kb"]))
                ingest = med([num(b["ingest_s"]) for b in rows])
                note = {"hnswlib": " (save)", "faiss": ""}.get(eng, "")
                lines.append(
                    f"| {eng} | {idx} | {fmt(ingest, '.3f')}{note if ingest is not None else ''} "
                    f"| {fmt(med([num(b['build_s']) for b in rows]), '.2f')} "
                    f"| {fmt(med(rb), '.2f') if eng != 'mv' else '1'} "
                    f"| {fmt(med([num(b['rss_kb']) / 1024 for b in rows]), '.0f')} "
                    f"| {fmt(med(rr), '.2f') if eng != 'mv' else '1'} "
                    f"| {fmt(med([num(b['disk_bytes']) / 1048576 for b in rows]), '.1f')} |")
            lines.append("")

            # mv's curve per family and run
            curves = defaultdict(list)
            for s in ss:
                if s["engine"] == "mv":
                    curves[(family(s["index"]), s["run"])].append(
                        (num(s["recall"]), num(s["qps_batch"])))
            lines += ["| engine | index | param | recall@10 | batch QPS | mv at equal recall | "
                      "single-query QPS | p50 us | p99 us | single recall |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            points = defaultdict(list)
            for eng, idx in keys:
                rows = [s for s in ss if s["engine"] == eng and s["index"] == idx]
                for v in dict.fromkeys(s["value"] for s in rows):
                    rv = [s for s in rows if s["value"] == v]
                    ratio = []
                    for s in rv:
                        q = mv_qps_at(curves.get((family(idx), s["run"]), []), num(s["recall"]))
                        ratio.append(None if q is None else q / num(s["qps_batch"]))
                    rec = med([num(s["recall"]) for s in rv])
                    qps = med([num(s["qps_batch"]) for s in rv])
                    points[(eng, idx)].append(
                        (rec, qps, med([num(s["qps_single"]) for s in rv])))
                    r = med(ratio)
                    lines.append(
                        f"| {eng} | {idx} | {rv[0]['param']}={v} | {rec:.4f} | {qps:.0f} "
                        f"| {'-' if eng == 'mv' else (fmt(r, '.2f') + ' x' if r is not None else '- (above mv)')} "
                        f"| {fmt(med([num(s['qps_single']) for s in rv]), '.0f')} "
                        f"| {fmt(med([num(s['p50_us']) for s in rv]), '.0f')} "
                        f"| {fmt(med([num(s['p99_us']) for s in rv]), '.0f')} "
                        f"| {fmt(med([num(s['recall_single']) for s in rv]), '.4f')} |")
            lines.append("")
            for (eng, idx), pts in points.items():
                name = f"{ds}-{t}-{eng}-{idx.replace(',', '_')}.dat"
                with open(os.path.join(out, name), "w") as f:
                    for rec, qps, single in sorted(pts):
                        f.write(f"{rec}\t{qps}\t{single}\n")

        plot(out, ds, threads, sorted({(b["engine"], b["index"]) for b in builds
                                       if b["dataset"] == ds},
                                      key=lambda k: (family(k[1]), order.get(k[0], 9))))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def plot(out, ds, threads, keys):
    """Two rows (batch QPS, single-query QPS) of one panel per thread count, batch QPS above, single-query QPS below."""
    png = os.path.join(out, f"peers-{ds}.png")
    g = [f"set terminal png noenhanced size {560 * len(threads)},900",
         f"set output '{png}'",
         f"set multiplot layout 2,{len(threads)} title '{ds}: recall@10 against QPS, k=10 (up and right is better)'",
         "set logscale y", "set xlabel 'recall@10'", "set ylabel 'queries per second'",
         "set key bottom left font ',8'", "set grid"]
    styles = {"mv": "lw 3", "faiss": "dt 2", "hnswlib": "dt 3", "lancedb": "dt 4"}
    for col, title in ((2, "batch"), (3, "single queries")):
        for t in threads:
            parts = []
            for eng, idx in keys:
                dat = os.path.join(out, f"{ds}-{t}-{eng}-{idx.replace(',', '_')}.dat")
                if os.path.exists(dat):
                    parts.append(f"'{dat}' using 1:{col} with linespoints "
                                 f"{styles.get(eng, '')} title '{eng} {idx}'")
            g.append(f"set title '{title}, {t} thread{'s' if t > 1 else ''}'")
            g.append("plot " + ", ".join(parts))
    g.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(g) + "\n", text=True, check=True)


if __name__ == "__main__":
    sys.exit(main())
