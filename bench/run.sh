#!/bin/bash
# bench/run.sh - mv side by side with the plain tools it replaces, in one
# run (issue 2).  Bash (uses $EPOCHREALTIME).  Build first: make bench.
#
#   bench/run.sh [--strict] [DATASET]      (DATASET: glove-100, the default,
#                                           or fashion-mnist)
#
# (a) durable insert: `cp base.fvecs X && sync` against `mv-insert NAME
#     base.fvecs`, which returns only after a durable flush; target <= 2x.
#     For information also against `cp && sync X DIR` (fsync of the copy
#     only), which is immune to other processes' writes.
# (b) text insert: the same vectors as text ("%.6g", bench/fvecs2txt)
#     through mv-insert, in MB/s (10^6 bytes) of text; target >= 100.
# (c) exact search, k=10, of all queries (10,000) in one mv-search against
#     bench/faiss_flat (same FAISS library, same threads, in-process batch
#     search); target >= 90% of its QPS; recall@10 against the ground truth
#     (bench/recall); target >= 0.9995, misses within 1e-5 of the 10th
#     true distance counted as ties.
# Every timing is the median of REPEAT runs (default 3), taken from a
# settled page cache (input read once before, `sync` before each run).
# The mv side is timed end to end as a user sees it (process start to
# exit, parsing and printing included).  Starts its own mv-noded on a
# temporary MV_HOME under data/ (on the disk, not a tmpfs) and stops it.
#
# Environment: REPEAT (3), THREADS (OMP_NUM_THREADS for the node and for
# faiss_flat, default: all cores), MV_BENCH_DIR (where the temporary
# directory goes, default data/), KEEP=1 keeps it.  --strict exits 1 when a
# target is missed.  OMP_WAIT_POLICY=PASSIVE everywhere.
set -euo pipefail

strict=0
if [ "${1:-}" = --strict ]; then
	strict=1
	shift
fi
if [ $# -gt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	echo "usage: bench/run.sh [--strict] [glove-100|fashion-mnist]" >&2
	exit 64
fi
dataset=${1:-glove-100}
case $dataset in
glove-100) metric=cosine ;;
fashion-mnist) metric=l2 ;;
*) echo "run.sh: unknown data set '$dataset'" >&2; exit 64 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
REPEAT=${REPEAT:-3}
THREADS=${THREADS:-$(nproc)}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
unset MV_ADDR MV_USER || true

for t in mv-noded mv-create mv-insert mv-search mv-drop mv-ls; do
	if [ ! -x "cmd/$t/$t" ]; then
		echo "run.sh: cmd/$t/$t is not built; run make bench" >&2
		exit 1
	fi
	PATH=$root/cmd/$t:$PATH
done
for t in faiss_flat recall fvecs2txt; do
	if [ ! -x "bench/$t" ]; then
		echo "run.sh: bench/$t is not built; run make bench" >&2
		exit 1
	fi
done
export PATH

data=$(scripts/fetch-data.sh "$dataset")
base=$data/base.fvecs
query=$data/query.fvecs
gt=$data/groundtruth.ivecs
gtd=$data/groundtruth_dist.fvecs
dim=$(od -An -tu4 -N4 "$base" | tr -d ' ')
rec=$((4 + 4 * dim))
nb=$(($(stat -L -c %s "$base") / rec))
nq=$(($(stat -L -c %s "$query") / rec))

mkdir -p "${MV_BENCH_DIR:-$root/data}"
tmp=$(mktemp -d "${MV_BENCH_DIR:-$root/data}/bench.XXXXXX")
export MV_HOME=$tmp/home
mkdir -p "$MV_HOME"
pid=

cleanup() {
	rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "$rc" != 0 ] && [ -s "$tmp/noded.log" ]; then
		echo "run.sh: failed; the end of mv-noded's log:" >&2
		tail -n 20 "$tmp/noded.log" >&2
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "run.sh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { printf 'run.sh: %s\n' "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# key<TAB>value output of faiss_flat / recall
field() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$2"; }

log "starting mv-noded on $MV_HOME (OMP_NUM_THREADS=$THREADS)"
mv-noded 2>"$tmp/noded.log" &
pid=$!
i=0
until mv-ls >/dev/null 2>&1; do
	kill -0 "$pid" 2>/dev/null || { pid=; log "mv-noded exited at start"; exit 1; }
	i=$((i + 1))
	[ "$i" -lt 300 ] || { log "mv-noded did not accept connections in 30 s"; exit 1; }
	sleep 0.1
done

cat "$base" "$query" >/dev/null	# settle the page cache

# (a) cp + sync against a durable mv-insert.
# Also `cp && sync X DIR` (fsync of the copy and its directory only), which
# other processes' dirty data on a shared machine does not slow down.
cp_t=() cpf_t=() ins_t=()
for r in $(seq "$REPEAT"); do
	rm -f "$tmp/copy.fvecs"
	sync
	t0=$(now)
	cp "$base" "$tmp/copy.fvecs" && sync
	t1=$(now)
	cp_t+=("$(elapsed "$t0" "$t1")")
	rm -f "$tmp/copy.fvecs"
	sync
	t0=$(now)
	cp "$base" "$tmp/copy.fvecs" && sync "$tmp/copy.fvecs" "$tmp"
	t1=$(now)
	cpf_t+=("$(elapsed "$t0" "$t1")")
	rm -f "$tmp/copy.fvecs"

	mv-create -q "ins$r" --dim "$dim" --metric "$metric"
	sync
	t0=$(now)
	mv-insert -q "ins$r" "$base"
	t1=$(now)
	ins_t+=("$(elapsed "$t0" "$t1")")
	mv-drop -q "ins$r"
	log "(a) run $r: cp+sync ${cp_t[-1]} s, cp+sync FILE ${cpf_t[-1]} s, mv-insert ${ins_t[-1]} s"
done
cp_s=$(median "${cp_t[@]}")
cpf_s=$(median "${cpf_t[@]}")
ins_s=$(median "${ins_t[@]}")
mb=$(calc '%.1f' "$(stat -L -c %s "$base") / 1e6")

# (b) text through mv-insert.
bench/fvecs2txt "$base" >"$tmp/base.txt"
txt_bytes=$(stat -c %s "$tmp/base.txt")
txt_mb=$(calc '%.1f' "$txt_bytes / 1e6")
txt_t=()
for r in $(seq "$REPEAT"); do
	mv-create -q "txt$r" --dim "$dim" --metric "$metric"
	cat "$tmp/base.txt" >/dev/null
	sync
	t0=$(now)
	mv-insert -q "txt$r" "$tmp/base.txt"
	t1=$(now)
	txt_t+=("$(elapsed "$t0" "$t1")")
	rows=$(mv-ls "txt$r" | cut -f 4)
	[ "$rows" = "$nb" ] || { log "(b) txt$r holds $rows rows, not $nb"; exit 1; }
	mv-drop -q "txt$r"
	log "(b) run $r: ${txt_t[-1]} s for $txt_mb MB of text"
done
rm -f "$tmp/base.txt"
txt_s=$(median "${txt_t[@]}")
txt_mbs=$(calc '%.1f' "$txt_bytes / 1e6 / $txt_s")

# (c) exact search, mv-search and faiss_flat in turns.
seq 0 $((nb - 1)) >"$tmp/ids.txt"
mv-create -q search --dim "$dim" --metric "$metric"
mv-insert -q search --ids "$tmp/ids.txt" "$base"
rm -f "$tmp/ids.txt"
mv_t=() ff_q=()
for r in $(seq "$REPEAT"); do
	t0=$(now)
	mv-search -q search -k 10 "$query" >"$tmp/mv.tsv"
	t1=$(now)
	mv_t+=("$(elapsed "$t0" "$t1")")
	bench/faiss_flat --metric "$metric" -k 10 --tsv "$tmp/faiss.tsv" \
		"$base" "$query" >"$tmp/faiss.out"
	ff_q+=("$(field qps "$tmp/faiss.out")")
	log "(c) run $r: mv-search ${mv_t[-1]} s, faiss_flat $(field search_s "$tmp/faiss.out") s"
done
mv_s=$(median "${mv_t[@]}")
mv_qps=$(calc '%.1f' "$nq / $mv_s")
ff_qps=$(median "${ff_q[@]}")
qps_pct=$(calc '%.1f' "100 * $mv_qps / $ff_qps")
bench/recall -k 10 --metric "$metric" "$tmp/mv.tsv" "$gt" "$gtd" >"$tmp/recall.out"
bench/recall -k 10 --metric "$metric" "$tmp/faiss.tsv" "$gt" "$gtd" >"$tmp/recall-faiss.out"
rec=$(field recall@10 "$tmp/recall.out")
rec_t=$(field recall@10_ties "$tmp/recall.out")
misses=$(field misses "$tmp/recall.out")
ties=$(field ties "$tmp/recall.out")
ff_rec=$(field recall@10 "$tmp/recall-faiss.out")
ff_rec_t=$(field recall@10_ties "$tmp/recall-faiss.out")

log "stopping mv-noded"
kill -TERM "$pid"
wait "$pid" || { log "mv-noded exited with status $?"; pid=; exit 1; }
pid=

ok() { if awk "BEGIN { exit !($1) }"; then echo ok; else echo MISSED; fi; }
ratio=$(calc '%.2f' "$ins_s / $cp_s")
ratio_f=$(calc '%.2f' "$ins_s / $cpf_s")
ok_a=$(ok "$ratio <= 2")
ok_b=$(ok "$txt_mbs >= 100")
ok_c=$(ok "$qps_pct >= 90")
ok_r=$(ok "$rec_t >= 0.9995")
missed=0
for s in "$ok_a" "$ok_b" "$ok_c" "$ok_r"; do [ "$s" = ok ] || missed=$((missed + 1)); done

cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
faiss=$(grep -q ' avx2' /proc/cpuinfo && echo "FAISS 1.7.3 AVX2" || echo "FAISS 1.7.3")
echo
echo "mv benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $dataset: $nb x $dim base, $nq queries, $metric"
os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)
echo "machine: $cpu, $(nproc) cores, $mem, ${os:-unknown OS}, $faiss;" \
	"OMP_NUM_THREADS=$THREADS, OpenBLAS threads $(field openblas_threads "$tmp/faiss.out"), median of $REPEAT runs, load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo
echo "| test | mv | baseline | ratio | target | result |"
echo "|---|---|---|---|---|---|"
echo "| (a) durable insert, fvecs $mb MB | mv-insert $ins_s s | cp + sync $cp_s s | $ratio x | <= 2 x | $ok_a |"
echo "| (a') the same, file-only sync | mv-insert $ins_s s | cp + sync X DIR $cpf_s s | $ratio_f x | (info) | |"
echo "| (b) text insert, $txt_mb MB | $txt_mbs MB/s ($txt_s s) | | | >= 100 MB/s | $ok_b |"
echo "| (c) exact search, k=10, $nq queries | mv-search $mv_qps QPS ($mv_s s) | faiss_flat $ff_qps QPS | $qps_pct % | >= 90 % | $ok_c |"
echo "| (c) recall@10 | $rec ($misses misses, $ties ties within 1e-5; with ties $rec_t) | faiss_flat $ff_rec (with ties $ff_rec_t) | | >= 0.9995 | $ok_r |"
echo
if [ "$missed" = 0 ]; then
	echo "all targets met"
else
	echo "$missed target(s) missed"
	[ "$strict" = 0 ] || exit 1
fi
