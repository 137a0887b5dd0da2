#!/bin/bash
# bench/hnsw_build.sh - HNSW build time of mv (FAISS, by mv's procedure:
# bench/faiss_index --base) against hnswlib (Debian's python3-hnswlib), in
# turns in one run (issue 9).  Bash.  Build first: make bench/faiss_index.
#
#   bench/hnsw_build.sh [ROWS] [THREADS]   (defaults: 200000 rows of
#                                           glove-100, 1 thread)
#
# Both build M=32, efConstruction=40 (M, EFC in the environment) over the
# first ROWS vectors of glove-100, normalised (cosine as inner product),
# with THREADS threads (OMP_NUM_THREADS for FAISS, num_threads for
# hnswlib), REPEAT times each (default 3), alternating, and print each run
# and the medians and their ratio.  FAISS=PATH runs another faiss_index
# binary (e.g. one linked with other FAISS patches) as a third column.
# Each build is then searched (one thread, one batch of the first 1,000
# queries, k 10, ef 16 32 64 128) against the exact top 10 of the subset
# (bench/gt): the last round's recall@10 and QPS are printed.
set -euo pipefail

[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n 5,6p "$0" | sed 's/^# //'; exit 0; }
rows=${1:-200000}
threads=${2:-1}
M=${M:-32}
EFC=${EFC:-40}
REPEAT=${REPEAT:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for t in faiss_index gt; do
	[ -x bench/$t ] || { echo "hnsw_build.sh: make bench/$t first" >&2; exit 1; }
done
/usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null ||
	{ echo "hnsw_build.sh: needs python3-hnswlib (apt-get install python3-hnswlib)" >&2; exit 1; }
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

data=$(scripts/fetch-data.sh glove-100)
tmp=$(mktemp -d /tmp/mv-hnsw-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dim=$(od -An -tu4 -N4 "$data/base.fvecs" | tr -d ' ')
head -c $((rows * (4 + 4 * dim))) "$data/base.fvecs" >"$tmp/base.fvecs"
head -c $((1000 * (4 + 4 * dim))) "$data/query.fvecs" >"$tmp/query.fvecs"
bench/gt -m cosine -k 10 "$tmp/base.fvecs" "$tmp/query.fvecs" "$tmp/gt.ivecs" 2>/dev/null

efs="16 32 64 128"
faiss_build() { # BINARY: prints the build time, the curve to $tmp/curve.BINARY
	"$1" --metric cosine --type "HNSW$M" --efc "$EFC" --base "$tmp/base.fvecs" \
		--ef "${efs// /,}" --single 1 "$tmp/query.fvecs" "$tmp/gt.ivecs" >"$tmp/out"
	awk -F '\t' '$1 == "ef" { printf "ef %s: recall %s, %s QPS\n", $2, $3, $4 }' \
		"$tmp/out" >"$tmp/curve.$(basename "$1")"
	awk -F '\t' '$1 == "# build_s" { print $2 }' "$tmp/out"
}
hnswlib_build() {
	/usr/bin/python3 - "$tmp" "$M" "$EFC" "$threads" "$efs" <<'PY'
import sys, time, numpy as np, hnswlib
tmp, M, efc, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def vecs(path, dt):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dt)
x = vecs(tmp + "/base.fvecs", np.float32)
q = vecs(tmp + "/query.fvecs", np.float32)
gt = vecs(tmp + "/gt.ivecs", np.int32)[:, :10]
x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-30
q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-30
p = hnswlib.Index(space='ip', dim=x.shape[1])
p.init_index(max_elements=len(x), M=M, ef_construction=efc, random_seed=100)
t0 = time.perf_counter()
p.add_items(x, np.arange(len(x)), num_threads=threads)
print("%.3f" % (time.perf_counter() - t0))
with open(tmp + "/curve.hnswlib", "w") as f:
    for ef in map(int, sys.argv[5].split()):
        p.set_ef(ef)
        t0 = time.perf_counter()
        lab, _ = p.knn_query(q, k=10, num_threads=threads)
        dt = time.perf_counter() - t0
        rec = np.mean([len(set(a) & set(b)) for a, b in zip(lab, gt)]) / 10
        f.write("ef %d: recall %.4f, %.1f QPS\n" % (ef, rec, len(q) / dt))
PY
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

mv=() hl=() alt=()
for r in $(seq "$REPEAT"); do
	mv+=("$(faiss_build bench/faiss_index)")
	hl+=("$(hnswlib_build)")
	[ -z "${FAISS:-}" ] || alt+=("$(faiss_build "$FAISS")")
	echo "run $r: mv ${mv[-1]} s, hnswlib ${hl[-1]} s${FAISS:+, $FAISS ${alt[-1]} s}" >&2
done
m=$(median "${mv[@]}") h=$(median "${hl[@]}")
echo "rows $rows, M $M, efConstruction $EFC, threads $threads, $REPEAT runs, load $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "median build s: mv $m, hnswlib $h, mv/hnswlib $(awk "BEGIN { printf \"%.2f\", $m / $h }")"
if [ -n "${FAISS:-}" ]; then
	a=$(median "${alt[@]}")
	echo "median build s: $FAISS $a, /hnswlib $(awk "BEGIN { printf \"%.2f\", $a / $h }"), /mv $(awk "BEGIN { printf \"%.2f\", $a / $m }")"
fi
for c in "$tmp"/curve.*; do
	echo "search, last round, ${c##*/curve.}:"
	cat "$c"
done
