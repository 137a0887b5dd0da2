#!/bin/bash
# bench/ab.sh - two builds of mv side by side in one run, so that a change
# can be checked against the 5% rule on a noisy machine: the rounds
# alternate between the builds, and the table gives each one's median and
# the ratio new/old.
#
#   bench/ab.sh OLD_TREE [NEW_TREE] [DATASET]
#
# OLD_TREE and NEW_TREE are built source trees (NEW_TREE defaults to this
# one), e.g. a `git worktree add /tmp/old <rev> && make -C /tmp/old`.
# DATASET is glove-100 (default) or fashion-mnist.  Measured per build and
# round, each on a node of its own started afresh on a disk MV_HOME:
#   insert  durable mv-insert of base.fvecs (seconds, lower is better)
#   exact   mv-search -k 10 of every query, brute force (QPS)
#   ivf     mv-search -k 10 --nprobe 32 through IVF1024,Flat (QPS), with
#           INDEX=1 only (the build takes a minute per tree)
#   single16, single64
#           single queries over one connection (bench/latency, 3,000
#           queries, k=10) through HNSW32 at ef 16 and 64 (QPS), with
#           SINGLE=1 only (an HNSW build per tree and round)
# Environment: REPEAT (5), THREADS (OMP_NUM_THREADS, default all cores),
# MV_BENCH_DIR (default data/), INDEX (0), SINGLE (0).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	echo "usage: bench/ab.sh OLD_TREE [NEW_TREE] [glove-100|fashion-mnist]" >&2
	exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "$1" && pwd)
new=$(cd "${2:-$root}" && pwd)
dataset=${3:-glove-100}
case $dataset in
glove-100) metric=cosine ;;
fashion-mnist) metric=l2 ;;
*) echo "ab.sh: unknown data set '$dataset'" >&2; exit 64 ;;
esac
for tree in "$old" "$new"; do
	for t in mv-noded mv-create mv-insert mv-search mv-index mv-ls; do
		[ -x "$tree/cmd/$t/$t" ] || {
			echo "ab.sh: $tree/cmd/$t/$t is not built" >&2; exit 1; }
	done
done
REPEAT=${REPEAT:-5}
THREADS=${THREADS:-$(nproc)}
INDEX=${INDEX:-0}
SINGLE=${SINGLE:-0}
[ "$SINGLE" = 0 ] || [ -x "$root/bench/latency" ] || {
	echo "ab.sh: bench/latency is not built (make bench)" >&2; exit 1; }
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
unset MV_ADDR MV_USER || true

data=$(cd "$root" && scripts/fetch-data.sh "$dataset")
base=$data/base.fvecs
query=$data/query.fvecs
dim=$(od -An -tu4 -N4 "$base" | tr -d ' ')
nq=$(($(stat -L -c %s "$query") / (4 + 4 * dim)))
mkdir -p "${MV_BENCH_DIR:-$root/data}"
tmp=$(mktemp -d "${MV_BENCH_DIR:-$root/data}/ab.XXXXXX")
pid=

cleanup() {
	rc=$?
	[ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { printf 'ab.sh: %s\n' "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
. "$root/bench/lib.sh"	# median

# run TREE NAME: one round of every measure on a fresh node of TREE.
# Appends "measure value" lines to $tmp/NAME.
run() {
	local tree=$1 name=$2 bin t0 t1
	bin=$tree/cmd
	export MV_HOME=$tmp/home-$name
	rm -rf "$MV_HOME" && mkdir -p "$MV_HOME"
	"$bin/mv-noded/mv-noded" 2>>"$tmp/$name.log" &
	pid=$!
	until "$bin/mv-ls/mv-ls" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { log "$name: mv-noded exited"; exit 1; }
		sleep 0.1
	done
	"$bin/mv-create/mv-create" -q c --dim "$dim" --metric "$metric"
	sync
	t0=$(now)
	"$bin/mv-insert/mv-insert" -q c "$base"
	t1=$(now)
	echo "insert $(elapsed "$t0" "$t1")" >>"$tmp/$name"
	t0=$(now)
	"$bin/mv-search/mv-search" -q c -k 10 "$query" >/dev/null
	t1=$(now)
	echo "exact $(awk -v n="$nq" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", n / s }')" >>"$tmp/$name"
	if [ "$INDEX" = 1 ]; then
		"$bin/mv-index/mv-index" -q c --type IVF1024,Flat
		t0=$(now)
		"$bin/mv-search/mv-search" -q c -k 10 --nprobe 32 "$query" >/dev/null
		t1=$(now)
		echo "ivf $(awk -v n="$nq" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", n / s }')" >>"$tmp/$name"
	fi
	if [ "$SINGLE" = 1 ]; then
		"$bin/mv-index/mv-index" -q c --type HNSW32
		for ef in 16 64; do
			echo "single$ef $("$root/bench/latency" -n 3000 -p "ef=$ef" \
				c "$query" | awk '$1 == "qps" { print $2 }')" >>"$tmp/$name"
		done
	fi
	kill -TERM "$pid"
	wait "$pid" || { log "$name: mv-noded exited with status $?"; pid=; exit 1; }
	pid=
}

cat "$base" "$query" >/dev/null
for r in $(seq "$REPEAT"); do
	# Alternate which build goes first, so neither always runs warm.
	if [ $((r % 2)) = 1 ]; then
		run "$old" old; run "$new" new
	else
		run "$new" new; run "$old" old
	fi
	log "round $r: old $(tail -n 1 "$tmp/old"), new $(tail -n 1 "$tmp/new")"
done

pick() { awk -v m="$1" '$1 == m { print $2 }' "$tmp/$2"; }
echo
echo "mv A/B, $(date -u '+%Y-%m-%d %H:%M UTC'), $dataset, median of $REPEAT alternating rounds, load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "old: $old ($(git -C "$old" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "new: $new ($(git -C "$new" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "| measure | old | new | new/old | better |"
echo "|---|---|---|---|---|"
measures="insert exact"
[ "$INDEX" = 1 ] && measures="$measures ivf"
[ "$SINGLE" = 1 ] && measures="$measures single16 single64"
for m in $measures; do
	# shellcheck disable=SC2046
	o=$(median $(pick "$m" old))
	# shellcheck disable=SC2046
	n=$(median $(pick "$m" new))
	case $m in
	insert) unit="s (durable mv-insert)"; dir=lower ;;
	single*) unit="QPS (single queries, HNSW32 ef ${m#single}, k=10)"; dir=higher ;;
	*) unit="QPS ($m search, k=10)"; dir=higher ;;
	esac
	echo "| $m, $unit | $o | $n | $(awk -v a="$o" -v b="$n" 'BEGIN { printf "%.3f", b / a }') | $dir |"
done
