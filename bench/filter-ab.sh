#!/bin/bash
# bench/filter-ab.sh - single-query filtered search, two mv-noded builds
# in turn on the same data (docs/BENCHMARKS.md "Scalar indexes"): the
# collection fbench of bench/filter (ROWS glove-100 rows, brute force, a
# field f = a hash of the id mod 1000) is made once, then for ROUNDS
# rounds each build serves it in turn (a node started afresh on the same
# MV_HOME) and bench/latency sends N single queries (after W of warm-up)
# with each filter of SELS (f < B).  Per build, round and filter: the QPS
# bench/latency reports, its median latency, and the node's CPU time
# (user + sys, from /proc, in clock ticks) per query, the figure that
# holds on a loaded machine.
#
#   bench/filter-ab.sh OLD_NODED NEW_NODED
#
# Environment: ROWS (200000), N (2000), W (200), ROUNDS (3), SELS ("1 10"),
# MV_BENCH_DIR (scratch parent, default data/), KEEP=1 keeps it.  One
# thread (OMP_NUM_THREADS=1); run it niced on a shared machine.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: bench/filter-ab.sh OLD_NODED NEW_NODED" >&2
	exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'filter-ab.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
. "$root/bench/lib.sh"
ROWS=${ROWS:-200000} N=${N:-2000} W=${W:-200} ROUNDS=${ROUNDS:-3}
SELS=${SELS:-"1 10"}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
unset MV_ADDR MV_USER || true
data=$root/../shared/datasets/glove-100
mkdir -p "${MV_BENCH_DIR:-$root/data}"
bench_scratch "${MV_BENCH_DIR:-$root/data}/fab.XXXXXX"
bench_bin mv-ls filter latency
export MV_HOME=$tmp/home
mkdir -p "$MV_HOME" "$tmp/old" "$tmp/new"
cp "$1" "$tmp/old/mv-noded"
cp "$2" "$tmp/new/mv-noded"
base_path=$PATH

# use old|new: that build's mv-noded first in PATH (lib.sh's start_node).
use() { PATH=$tmp/$1:$base_path; }

use old
start_node
filter --rows "$ROWS" --nq 10 --types "" --sel 1 --keep \
	"$data/base.fvecs" "$data/query.fvecs" >"$tmp/load.txt"
stop_node
hz=$(getconf CLK_TCK)
echo "| round | build | filter | QPS | median us | node CPU us / query |"
echo "|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
	for b in old new; do
		use "$b"
		start_node
		for s in $SELS; do
			t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
			out=$(latency -n "$N" --warmup "$W" \
				-p "filter=f%20%3C%20$s" fbench "$data/query.fvecs")
			t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
			echo "| $r | $b | f < $s | $(awk '$1 == "qps" { print $2 }' <<<"$out") |" \
				"$(awk '$1 == "median_us" { print $2 }' <<<"$out") |" \
				"$(calc %.1f "($t1 - $t0) * 1e6 / $hz / ($N + $W)") |"
		done
		stop_node
	done
done
