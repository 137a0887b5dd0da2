#!/bin/bash
# bench/peers.sh - mv against in-process FAISS, hnswlib and LanceDB, in one
# run, on the same data and threads (issue 9).  Bash.  `make bench-peers`
# (or bench-peers-quick) builds what it needs first.
#
#   bench/peers.sh [--quick] [--datasets LIST] [--threads LIST]
#
#   --quick         100,000 base rows (fewer when the set is smaller) and
#                   1,000 queries of each set, ground truth recomputed on
#                   that subset (bench/gt), ef "16 32 64 128", nprobe "1 4
#                   16 64", REPEAT=1
#   --datasets L    default "glove-100 fashion-mnist"
#   --threads L     default "1 N" (N = all cores)
#
# Engines, each with the same OMP / library threads per pass, M=32,
# efConstruction=40, nlist=1024, k=10:
#   mv       its own mv-noded (MV_HOME under data/, on the disk); mv-insert
#            of the base (ids = rows; returns after a durable flush: ingest),
#            then per index (HNSW32, IVF1024,Flat): mv-index (build), a
#            restart of the node (it loads the index file), the sweep:
#            mv-search of all queries (one process, timed end to end:
#            batch QPS, recall by bench/recall) and bench/latency (single
#            queries over one connection: p50, p99, QPS, recall); peak RSS =
#            the node's VmHWM after the sweep; disk = du of MV_HOME
#   faiss    bench/faiss_index --base (mv's build procedure, in-process,
#            the same FAISS library), --save: disk = the file
#   hnswlib  bench/peers/hnswlib_bench.py (Debian python3-hnswlib)
#   lancedb  bench/peers/lancedb_bench.mjs (@lancedb/lancedb, embedded):
#            IVF_FLAT and IVF_HNSW_SQ (LanceDB has no HNSW over raw floats)
# Peak RSS of the peers: GNU time's maximum resident set of the process.
#
# Output under OUT (default build/bench-peers): builds.tsv and sweep.tsv
# (one row per engine, index, threads, run and sweep value), report.md
# (Markdown tables: medians of the runs, ratios to mv from the same run)
# and peers-DATASET.png (recall@10 against QPS, gnuplot).  Progress on
# stderr; the report on stdout.
#
# Environment: REPEAT (3; 1 with --quick), SUBSET / NQ (rows and queries
# of --quick), OUT, MV_BENCH_DIR (where the temporary directory goes,
# default data/), KEEP=1 keeps it, NICE (default 0: the niceness of the
# whole run).
set -euo pipefail

prog=peers.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
usage() {
	sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
datasets="glove-100 fashion-mnist"
threads_list="1 $(nproc)"
quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--datasets) [ $# -ge 2 ] || usage; datasets=${2//,/ }; shift ;;
	--threads) [ $# -ge 2 ] || usage; threads_list=${2//,/ }; shift ;;
	-h | --help) usage ;;
	*) log "unknown argument '$1'"; usage ;;
	esac
	shift
done
efs="16 32 64 128 256 512"
nprobes="1 4 16 64"
subset=0
nqmax=0
if [ "$quick" = 1 ]; then
	REPEAT=${REPEAT:-1}
	subset=${SUBSET:-100000}
	nqmax=${NQ:-1000}
	efs="16 32 64 128"
fi
REPEAT=${REPEAT:-3}
OUT=${OUT:-$root/build/bench-peers}
M=32 EFC=40 NLIST=1024
[ "${NICE:-0}" = 0 ] || renice -n "$NICE" $$ >/dev/null

# What the run needs beyond the build: hnswlib, gnuplot, node, LanceDB.
sh scripts/bench-deps.sh
PY=/usr/bin/python3
for t in mv-noded mv-create mv-insert mv-search mv-index mv-ls; do
	[ -x "cmd/$t/$t" ] || die "cmd/$t/$t is not built; run make bench-peers"
done
for t in faiss_index latency recall gt; do
	[ -x "bench/$t" ] || die "bench/$t is not built; run make bench-peers"
done

mkdir -p "${MV_BENCH_DIR:-$root/data}" "$OUT"
. "$root/bench/lib.sh"
bench_scratch "${MV_BENCH_DIR:-$root/data}/peers.XXXXXX"

bench_bin mv-noded mv-create mv-insert mv-search mv-index mv-ls \
	faiss_index latency recall gt
export OMP_WAIT_POLICY=PASSIVE RUST_LOG=error LANCEDB_LOG=error
unset MV_ADDR MV_USER || true
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- libmv cmd bench 2>/dev/null || rev="$rev + uncommitted changes"

now() { echo "$EPOCHREALTIME"; }
# key<TAB>value (latency, recall) or "# key<TAB>value" (faiss_index, peers)
field() { awk -F '\t' -v k="$1" '$1 == k || $1 == "# " k { print $2; exit }' "$2"; }
hwm_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

builds=$OUT/builds.tsv
sweep=$OUT/sweep.tsv
printf 'dataset\tthreads\tengine\tindex\trun\tingest_s\tbuild_s\trss_kb\tdisk_bytes\n' >"$builds"
printf 'dataset\tthreads\tengine\tindex\trun\tparam\tvalue\trecall\tqps_batch\tp50_us\tp99_us\tqps_single\trecall_single\n' >"$sweep"

# build row: ds T engine index run ingest build rss disk
brow() { local IFS=$'\t'; echo "$*" >>"$builds"; }
# the sweep rows of a faiss_index-style output FILE: ds T engine index run FILE
srows() {
	grep -v '^#' "$6" | awk -F '\t' -v p="$1	$2	$3	$4	$5" \
		'NR > 1 { print p "\t" $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $7 "\t" $8 "\t" $9 }' >>"$sweep"
}

# mv through its tools and socket: ds T run
run_mv() {
	local ds=$1 T=$2 r=$3 type pkey values v t0 t1 ingest build rss disk
	export MV_HOME=$tmp/mv
	rm -rf "$MV_HOME" "$MV_HOME.log"
	mkdir -p "$MV_HOME"
	OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T start_node
	mv-create -q c --dim "$dim" --metric "$metric"
	sync
	t0=$(now)
	mv-insert -q c --ids "$tmp/ids.txt" "$base"
	t1=$(now)
	ingest=$(calc '%.3f' "$t1 - $t0")
	for type in HNSW32 IVF$NLIST,Flat; do
		case $type in
		HNSW*) pkey=ef; values=$efs; set -- --param "efConstruction=$EFC" ;;
		*) pkey=nprobe; values=$nprobes; set -- ;;
		esac
		t0=$(now)
		mv-index -q c --type "$type" "$@"
		t1=$(now)
		build=$(calc '%.3f' "$t1 - $t0")
		disk=$(du -sb "$MV_HOME" | cut -f 1)
		stop_node
		OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T start_node
		mv-search -q c -k 10 "$query" >/dev/null	# load, warm up
		for v in $values; do
			t0=$(now)
			mv-search -q c -k 10 "--$pkey" "$v" "$query" >"$tmp/mv.tsv"
			t1=$(now)
			recall -k 10 --metric "$metric" "$tmp/mv.tsv" "$gt" >"$tmp/recall.out"
			latency -p "$pkey=$v" --gt "$gt" c "$query" >"$tmp/lat.out"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
				"$ds" "$T" mv "$type" "$r" "$pkey" "$v" \
				"$(calc '%.4f' "$(field recall@10 "$tmp/recall.out")")" \
				"$(calc '%.1f' "$nq / ($t1 - $t0)")" \
				"$(field median_us "$tmp/lat.out")" "$(field p99_us "$tmp/lat.out")" \
				"$(field qps "$tmp/lat.out")" "$(field recall "$tmp/lat.out")" >>"$sweep"
		done
		rss=$(hwm_of "$pid")
		brow "$ds" "$T" mv "$type" "$r" "$ingest" "$build" "$rss" "$disk"
		log "$ds T=$T run $r: mv $type: ingest $ingest s, build $build s, peak RSS $((rss / 1024)) MiB"
	done
	stop_node
	rm -rf "$MV_HOME" "$MV_HOME.log"
	unset MV_HOME
}

# in-process FAISS, same library, mv's build procedure: ds T run
run_faiss() {
	local ds=$1 T=$2 r=$3 type fkey values
	for type in HNSW32 IVF$NLIST,Flat; do
		case $type in
		HNSW*) fkey=--ef; values=$efs; set -- --efc "$EFC" ;;
		*) fkey=--nprobe; values=$nprobes; set -- ;;
		esac
		OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T /usr/bin/time -f '%M' -o "$tmp/time" \
			faiss_index --metric "$metric" --type "$type" "$@" \
			--base "$base" --save "$tmp/faiss.idx" "$fkey" "${values// /,}" \
			"$query" "$gt" >"$tmp/faiss.out"
		srows "$ds" "$T" faiss "$type" "$r" "$tmp/faiss.out"
		brow "$ds" "$T" faiss "$type" "$r" - "$(field build_s "$tmp/faiss.out")" \
			"$(tail -n 1 "$tmp/time")" "$(stat -c %s "$tmp/faiss.idx")"
		rm -f "$tmp/faiss.idx"
		log "$ds T=$T run $r: faiss $type: build $(field build_s "$tmp/faiss.out") s"
	done
}

run_hnswlib() {
	local ds=$1 T=$2 r=$3
	mkdir -p "$tmp/hnswlib"
	OMP_NUM_THREADS=$T /usr/bin/time -f '%M' -o "$tmp/time" \
		"$PY" bench/peers/hnswlib_bench.py --metric "$metric" --threads "$T" \
		--M "$M" --efc "$EFC" --ef "$efs" --dir "$tmp/hnswlib" \
		"$base" "$query" "$gt" >"$tmp/hnswlib.out"
	srows "$ds" "$T" hnswlib HNSW32 "$r" "$tmp/hnswlib.out"
	brow "$ds" "$T" hnswlib HNSW32 "$r" "$(field save_s "$tmp/hnswlib.out")" \
		"$(field build_s "$tmp/hnswlib.out")" "$(tail -n 1 "$tmp/time")" \
		"$(field disk_bytes "$tmp/hnswlib.out")"
	rm -rf "$tmp/hnswlib"
	log "$ds T=$T run $r: hnswlib: build $(field build_s "$tmp/hnswlib.out") s"
}

run_lancedb() {
	local ds=$1 T=$2 r=$3 kind type values
	for kind in hnsw ivf; do
		case $kind in
		hnsw) type=HNSW32,SQ8; values=$efs ;;
		*) type=IVF$NLIST,Flat; values=$nprobes ;;
		esac
		rm -rf "$tmp/lance"
		(cd bench/peers && LANCE_CPU_THREADS=$T TOKIO_WORKER_THREADS=$T \
			RAYON_NUM_THREADS=$T OMP_NUM_THREADS=$T \
			/usr/bin/time -f '%M' -o "$tmp/time" \
			node lancedb_bench.mjs --metric "$metric" --index "$kind" \
			--nlist "$NLIST" --M "$M" --efc "$EFC" --sweep "$values" \
			--dir "$tmp/lance" "$base" "$query" "$gt") \
			>"$tmp/lance.out" 2>"$tmp/lance.err" ||
			{ tail -n 5 "$tmp/lance.err" >&2; die "lancedb_bench failed"; }
		srows "$ds" "$T" lancedb "$type" "$r" "$tmp/lance.out"
		brow "$ds" "$T" lancedb "$type" "$r" "$(field ingest_s "$tmp/lance.out")" \
			"$(field build_s "$tmp/lance.out")" "$(tail -n 1 "$tmp/time")" \
			"$(field disk_bytes "$tmp/lance.out")"
		rm -rf "$tmp/lance"
		log "$ds T=$T run $r: lancedb $type: ingest $(field ingest_s "$tmp/lance.out") s, build $(field build_s "$tmp/lance.out") s"
	done
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
desc=
for ds in $datasets; do
	case $ds in
	glove-100) metric=cosine ;;
	fashion-mnist) metric=l2 ;;
	*) die "unknown data set '$ds'" ;;
	esac
	data=$(scripts/fetch-data.sh "$ds")
	dim=$(od -An -tu4 -N4 "$data/base.fvecs" | tr -d ' ')
	rec=$((4 + 4 * dim))
	nb=$(($(stat -L -c %s "$data/base.fvecs") / rec))
	nq=$(($(stat -L -c %s "$data/query.fvecs") / rec))
	base=$data/base.fvecs query=$data/query.fvecs gt=$data/groundtruth.ivecs
	if [ "$subset" -gt 0 ]; then
		# The first rows and queries; the true neighbours of that subset.
		[ "$subset" -ge "$nb" ] || nb=$subset
		[ "$nqmax" -ge "$nq" ] || nq=$nqmax
		mkdir -p "$tmp/$ds"
		head -c $((nb * rec)) "$data/base.fvecs" >"$tmp/$ds/base.fvecs"
		head -c $((nq * rec)) "$data/query.fvecs" >"$tmp/$ds/query.fvecs"
		gt -m "$metric" -k 100 "$tmp/$ds/base.fvecs" "$tmp/$ds/query.fvecs" \
			"$tmp/$ds/gt.ivecs" 2>/dev/null
		base=$tmp/$ds/base.fvecs query=$tmp/$ds/query.fvecs gt=$tmp/$ds/gt.ivecs
	fi
	seq 0 $((nb - 1)) >"$tmp/ids.txt"
	cat "$base" "$query" >/dev/null
	desc="$desc$ds: $nb x $dim, $metric, $nq queries; "
	log "$ds: $nb x $dim, $nq queries, $metric"
	for T in $threads_list; do
		for r in $(seq "$REPEAT"); do
			run_mv "$ds" "$T" "$r"
			run_faiss "$ds" "$T" "$r"
			run_hnswlib "$ds" "$T" "$r"
			run_lancedb "$ds" "$T" "$r"
		done
	done
	rm -rf "${tmp:?}/$ds"
done

cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
{
	echo "mv against FAISS, hnswlib and LanceDB, $started; $(nproc) cores ($cpu), $mem"
	echo "mv at $rev; FAISS 1.7.3 (mv's build); hnswlib $(dpkg-query -W -f '${Version}' python3-hnswlib 2>/dev/null) (Debian);" \
		"LanceDB $(field lancedb "$tmp/lance.out") (npm); $( [ "$quick" = 1 ] && echo "quick mode, " )median of $REPEAT run(s)"
	echo "${desc%; }; M=$M, efConstruction=$EFC, nlist=$NLIST, k=10;" \
		"load average $load0 at the start, $(cut -d ' ' -f 1-3 /proc/loadavg) at the end"
} >"$OUT/header.txt"
"$PY" bench/peers/report.py "$OUT"
