#!/bin/bash
# bench/hnsw_build.sh - HNSW build time of mv (FAISS, by mv's procedure:
# bench/faiss_index --base) against hnswlib (Debian's python3-hnswlib), in
# turns in one run, then their search curves (issue 9).  Bash.  Build
# first: make bench/faiss_index bench/gt (and all, for NODE=1).
#
#   bench/hnsw_build.sh [ROWS] [THREADS] [DATASET]   (defaults: 200000
#       rows (0: all), 1 thread, glove-100; or fashion-mnist)
#
# Each engine builds M=32, efConstruction=40 (M, EFC in the environment)
# over the first ROWS vectors (glove-100: normalised, inner product, as
# mv's cosine; fashion-mnist: L2) with THREADS threads (OMP_NUM_THREADS for
# FAISS, num_threads for hnswlib), REPEAT times each (default 3), in turns,
# and prints each run (wall and CPU seconds: the CPU time is what a loaded
# machine does not inflate) and the medians and their ratios.
# FAISS=PATH runs another faiss_index binary (e.g. one linked with other
# FAISS patches) as a third column.  NODE=1 adds mv itself: mv-create,
# mv-insert and mv-index --type HNSWM through a fresh mv-noded of this tree
# (same threads, OMP_WAIT_POLICY=PASSIVE), timed by mv-index's wall time and
# the node's CPU time over it.  Each build of the last round is searched
# (THREADS threads, one batch of the first NQ queries (default 1,000), k 10,
# ef EFS (default 16 32 64 128 256), best of SREP (default 3) batches)
# against the exact top 10 of the subset (bench/gt); the curves are printed
# (recall@10, QPS of wall time, QPS of CPU time) and compared at equal
# recall: each curve's QPS interpolated (log-linear in recall between two
# ef values) at recalls 0.90 0.95 0.97 0.98 0.99 0.995, and its ratio to
# hnswlib's and to mv's.
set -euo pipefail

[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n 7,8p "$0" | sed 's/^# //'; exit 0; }
rows=${1:-200000}
threads=${2:-1}
ds=${3:-glove-100}
M=${M:-32}
EFC=${EFC:-40}
REPEAT=${REPEAT:-3}
SREP=${SREP:-3}
NQ=${NQ:-1000}
efs=${EFS:-16 32 64 128 256}
case $ds in
glove-100) metric=cosine ;;
fashion-mnist) metric=l2 ;;
*) echo "hnsw_build.sh: DATASET is glove-100 or fashion-mnist" >&2; exit 64 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for t in bench/faiss_index bench/gt ${NODE:+cmd/mv-noded/mv-noded cmd/mv-index/mv-index}; do
	[ -x "$t" ] || { echo "hnsw_build.sh: make $t first" >&2; exit 1; }
done
/usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null ||
	{ echo "hnsw_build.sh: needs python3-hnswlib (apt-get install python3-hnswlib)" >&2; exit 1; }
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

data=$(scripts/fetch-data.sh "$ds")
tmp=$(mktemp -d /tmp/mv-hnsw-build.XXXXXX)
node=
cleanup() {
	[ -z "$node" ] || { kill "$node" 2>/dev/null; wait "$node" 2>/dev/null || true; }
	rm -rf "$tmp"
}
trap cleanup EXIT
dim=$(od -An -tu4 -N4 "$data/base.fvecs" | tr -d ' ')
if [ "$rows" = 0 ]; then
	cp "$data/base.fvecs" "$tmp/base.fvecs"
	rows=$(($(stat -c %s "$tmp/base.fvecs") / (4 + 4 * dim)))
else
	head -c $((rows * (4 + 4 * dim))) "$data/base.fvecs" >"$tmp/base.fvecs"
fi
head -c $((NQ * (4 + 4 * dim))) "$data/query.fvecs" >"$tmp/query.fvecs"
bench/gt -m "$metric" -k 10 "$tmp/base.fvecs" "$tmp/query.fvecs" "$tmp/gt.ivecs" 2>/dev/null

# faiss_index-style "# key<TAB>value" field of FILE
field() { awk -F '\t' -v k="$1" '$1 == "# " k { print $2; exit }' "$2"; }
faiss_build() { # NAME BINARY: prints "wall cpu"; the curve to $tmp/curve.NAME
	"$2" --metric "$metric" --type "HNSW$M" --efc "$EFC" --base "$tmp/base.fvecs" \
		--ef "${efs// /,}" --repeat "$SREP" --single 1 \
		"$tmp/query.fvecs" "$tmp/gt.ivecs" >"$tmp/out"
	awk -F '\t' '$1 == "ef" { print $2, $3, $4, $10 }' "$tmp/out" >"$tmp/curve.$1"
	echo "$(field build_s "$tmp/out") $(field build_cpu_s "$tmp/out")"
}
hnswlib_build() {
	/usr/bin/python3 - "$tmp" "$M" "$EFC" "$threads" "$efs" "$metric" "$SREP" <<'PY'
import sys, time, numpy as np, hnswlib
tmp, M, efc, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
metric, srep = sys.argv[6], int(sys.argv[7])
def vecs(path, dt):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dt)
x = vecs(tmp + "/base.fvecs", np.float32)
q = vecs(tmp + "/query.fvecs", np.float32)
gt = vecs(tmp + "/gt.ivecs", np.int32)[:, :10]
if metric == "cosine":
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-30
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-30
p = hnswlib.Index(space='ip' if metric == "cosine" else 'l2', dim=x.shape[1])
p.init_index(max_elements=len(x), M=M, ef_construction=efc, random_seed=100)
t0, c0 = time.perf_counter(), time.process_time()
p.add_items(x, np.arange(len(x)), num_threads=threads)
print("%.3f %.3f" % (time.perf_counter() - t0, time.process_time() - c0))
with open(tmp + "/curve.hnswlib", "w") as f:
    for ef in map(int, sys.argv[5].split()):
        p.set_ef(ef)
        best = cbest = 1e300
        for _ in range(srep):
            t0, c0 = time.perf_counter(), time.process_time()
            lab, _ = p.knn_query(q, k=10, num_threads=threads)
            best = min(best, time.perf_counter() - t0)
            cbest = min(cbest, time.process_time() - c0)
        rec = np.mean([len(set(a) & set(b)) for a, b in zip(lab, gt)]) / 10
        f.write("%d %.4f %.1f %.1f\n" % (ef, rec, len(q) / best, len(q) / cbest))
PY
}
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
node_build() { # mv-index through a fresh mv-noded: prints "wall cpu"
	local home=$tmp/home c0 t0 t1
	rm -rf "$home" && mkdir -p "$home"
	MV_HOME=$home cmd/mv-noded/mv-noded 2>"$tmp/node.log" &
	node=$!
	until MV_HOME=$home cmd/mv-ls/mv-ls >/dev/null 2>&1; do
		kill -0 "$node" 2>/dev/null || { echo "hnsw_build.sh: mv-noded exited" >&2; exit 1; }
		sleep 0.05
	done
	seq "$rows" >"$tmp/ids.txt"
	MV_HOME=$home cmd/mv-create/mv-create -q c --dim "$dim" --metric "$metric"
	MV_HOME=$home cmd/mv-insert/mv-insert -q c --ids "$tmp/ids.txt" "$tmp/base.fvecs"
	c0=$(cpu_of "$node") t0=$EPOCHREALTIME
	MV_HOME=$home cmd/mv-index/mv-index -q c --type "HNSW$M" --param "efConstruction=$EFC"
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$(cpu_of "$node")" \
		'BEGIN { printf "%.3f %.2f\n", b - a, c1 - c0 }'
	kill "$node"; wait "$node" || true
	node=
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

names=(mv hnswlib ${FAISS:+faiss2} ${NODE:+mv-index})
declare -A wall cpu
for r in $(seq "$REPEAT"); do
	line="run $r:"
	for n in "${names[@]}"; do
		case $n in
		mv) set -- $(faiss_build mv bench/faiss_index) ;;
		hnswlib) set -- $(hnswlib_build) ;;
		faiss2) set -- $(faiss_build faiss2 "$FAISS") ;;
		mv-index) set -- $(node_build) ;;
		esac
		wall[$n]="${wall[$n]:-} $1" cpu[$n]="${cpu[$n]:-} $2"
		line="$line $n $1 s ($2 s CPU),"
	done
	echo "${line%,}" >&2
done
echo "$ds, rows $rows, M $M, efConstruction $EFC, threads $threads, $REPEAT runs, load $(cut -d ' ' -f 1-3 /proc/loadavg)"
[ -z "${FAISS:-}" ] || echo "faiss2 = $FAISS"
hw=$(median ${wall[hnswlib]}) hc=$(median ${cpu[hnswlib]})
echo "median build: engine wall_s cpu_s wall/hnswlib cpu/hnswlib"
for n in "${names[@]}"; do
	w=$(median ${wall[$n]}) c=$(median ${cpu[$n]})
	echo "  $n $w $c $(awk "BEGIN { printf \"%.2f %.2f\", $w / $hw, $c / $hc }")"
done
echo "search (last round; $NQ queries, best of $SREP batches): ef recall QPS QPS_of_CPU"
for n in mv hnswlib ${FAISS:+faiss2}; do
	echo "  $n:"
	sed 's/^/    /' "$tmp/curve.$n"
done
/usr/bin/python3 - "$tmp" mv hnswlib ${FAISS:+faiss2} <<'PY'
import sys, math
tmp, names = sys.argv[1], sys.argv[2:]
curves = {}
for n in names:
    pts = [tuple(map(float, l.split())) for l in open("%s/curve.%s" % (tmp, n))]
    curves[n] = sorted(pts, key=lambda p: p[1])
def at(n, rec, col):
    # QPS (col 2: wall, 3: CPU) at recall rec, log-linear between two points
    pts = curves[n]
    for a, b in zip(pts, pts[1:]):
        if a[1] <= rec <= b[1] and b[1] > a[1]:
            f = (rec - a[1]) / (b[1] - a[1])
            return math.exp(math.log(a[col]) + f * (math.log(b[col]) - math.log(a[col])))
    if pts and abs(pts[0][1] - rec) < 1e-9:
        return pts[0][col]
    return None
print("at equal recall (interpolated QPS of CPU time; wall in brackets); ratios to hnswlib, to mv:")
for rec in (0.90, 0.95, 0.97, 0.98, 0.99, 0.995):
    row = []
    for n in names:
        c, w = at(n, rec, 3), at(n, rec, 2)
        if c is None:
            row.append("%s -" % n)
            continue
        hl, mv = at("hnswlib", rec, 3), at("mv", rec, 3)
        row.append("%s %.0f [%.0f] %s %s" % (n, c, w,
                   "x%.2f" % (c / hl) if hl else "x-",
                   "x%.2f" % (c / mv) if mv else "x-"))
    print("  recall %.3f: %s" % (rec, "; ".join(row)))
PY
