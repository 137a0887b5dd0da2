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
set -euo pipefail

[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n 5,6p "$0" | sed 's/^# //'; exit 0; }
rows=${1:-200000}
threads=${2:-1}
M=${M:-32}
EFC=${EFC:-40}
REPEAT=${REPEAT:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x bench/faiss_index ] || { echo "hnsw_build.sh: make bench/faiss_index first" >&2; exit 1; }
/usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null ||
	{ echo "hnsw_build.sh: needs python3-hnswlib (apt-get install python3-hnswlib)" >&2; exit 1; }
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

data=$(scripts/fetch-data.sh glove-100)
tmp=$(mktemp -d /tmp/mv-hnsw-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dim=$(od -An -tu4 -N4 "$data/base.fvecs" | tr -d ' ')
head -c $((rows * (4 + 4 * dim))) "$data/base.fvecs" >"$tmp/base.fvecs"
head -c $((10 * (4 + 4 * dim))) "$data/query.fvecs" >"$tmp/query.fvecs"

faiss_build() { # BINARY
	"$1" --metric cosine --type "HNSW$M" --efc "$EFC" --base "$tmp/base.fvecs" \
		--ef 64 --single 1 "$tmp/query.fvecs" "$data/groundtruth.ivecs" |
		awk -F '\t' '$1 == "# build_s" { print $2 }'
}
hnswlib_build() {
	/usr/bin/python3 - "$tmp/base.fvecs" "$M" "$EFC" "$threads" <<'PY'
import sys, time, numpy as np, hnswlib
path, M, efc, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
raw = np.fromfile(path, dtype=np.int32)
d = int(raw[0])
x = raw.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-30
p = hnswlib.Index(space='ip', dim=d)
p.init_index(max_elements=len(x), M=M, ef_construction=efc, random_seed=100)
t0 = time.perf_counter()
p.add_items(x, np.arange(len(x)), num_threads=threads)
print("%.3f" % (time.perf_counter() - t0))
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
