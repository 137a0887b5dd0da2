#!/bin/bash
# bench/hugepages.sh - what transparent huge pages in the node's heap
# (mv-noded's default, MV_HUGEPAGES=0 to leave them out) change: the CPU
# time of a restart with an IVF index and of searches, in turns.  Bash.
# Build first: make.
#
#   bench/hugepages.sh [ROUNDS] [TYPE]   (defaults: 3, IVF1024,Flat)
#
# One node (OMP_NUM_THREADS=1) gets glove-100 and a TYPE index; then,
# ROUNDS times, with MV_HUGEPAGES=0 and =1 in turns: restart the node and
# read its CPU seconds when it first answers mv-ls ("ready"), its
# AnonHugePages and VmRSS, then the node CPU seconds of mv-search of all
# 10,000 queries (k 10; IVF: nprobe 16, HNSW: ef 64), twice (first: the
# index's pages touched for the first time; second: warm).  Prints one
# line per restart and the medians of each side and their ratios.
set -euo pipefail

prog=hugepages.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n 7p "$0" | sed 's/^# //'; exit 0; }
rounds=${1:-3}
type=${2:-IVF1024,Flat}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
bench_scratch /tmp/mv-hugepages.XXXXXX
bench_bin mv-noded mv-create mv-insert mv-search mv-index mv-ls
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE MV_HOME=$tmp/home
data=$("$root/scripts/fetch-data.sh" glove-100)
case $type in
HNSW*) sp="--ef 64" ;;
*) sp="--nprobe 16" ;;
esac
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$pid/stat"; }
field() { awk -v k="$1:" '$1 == k { printf "%d", $2 / 1024 }' "/proc/$pid/$2"; }
mkdir -p "$MV_HOME"
start_node
mv-create g --dim 100 --metric cosine
mv-insert -q g "$data/base.fvecs"
mv-index g --type "$type"
log "glove-100 with $type ready; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "MV_HUGEPAGES=x, $(date -u '+%F %H:%M') UTC, $type, load $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo "hp round ready_cpu_s anon_huge_MiB rss_MiB search1_cpu_s search2_cpu_s"
for r in $(seq "$rounds"); do
	for hp in 0 1; do
		stop_node
		MV_HUGEPAGES=$hp start_node 0.005
		c0=$(cpu) huge=$(field AnonHugePages smaps_rollup) rss=$(field VmRSS status)
		mv-search -q g -k 10 $sp "$data/query.fvecs" >/dev/null
		c1=$(cpu)
		mv-search -q g -k 10 $sp "$data/query.fvecs" >/dev/null
		c2=$(cpu)
		echo "$hp $r $c0 $huge $rss $(calc %.2f "$c1 - $c0") $(calc %.2f "$c2 - $c1")" |
			tee -a "$tmp/out"
	done
done
names=(hp round ready_cpu_s anon_huge_MiB rss_MiB search1_cpu_s search2_cpu_s)
for col in 3 6 7; do
	m0=$(median $(awk -v c=$col '$1 == 0 { print $c }' "$tmp/out"))
	m1=$(median $(awk -v c=$col '$1 == 1 { print $c }' "$tmp/out"))
	echo "median ${names[col - 1]}: off $m0, on $m1, on/off $(calc %.2f "$m1 / $m0")"
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
