#!/bin/bash
# bench/mixed.sh - search throughput of 8 concurrent clients at mixed ef
# (HNSW) and mixed nprobe (IVF) against one client, through mv-noded over
# its socket (issue 9).  Bash.  Build first: make all bench/mixed.
#
#   bench/mixed.sh [ROWS]        (ROWS of glove-100's base, default 100000)
#
# Starts its own mv-noded (OMP_NUM_THREADS=1: one core per search, so that
# the clients are what runs in parallel; OMP_WAIT_POLICY=PASSIVE) on a
# temporary MV_HOME under /tmp, inserts the first ROWS vectors of
# glove-100, and for each index (HNSW32, then IVF256,Flat) runs bench/mixed:
# one client alone, then CLIENTS (default 8) at once, SECS (default 3)
# seconds each, ROUNDS times (default 3) in turns, single queries (k 10) at
# ef 16/32/64/128 or nprobe 1/4/16/64 in turns; medians over the rounds,
# and the range of the rounds' ratios.  Prints a Markdown table; target (issue 9): ratio
# >= 1.8 on 2 cores.  Environment: CLIENTS, SECS, MV_BUSY_POLL_US (default
# 0 here: no busy-polling clients), KEEP=1 keeps the temporary directory.
set -euo pipefail

prog=mixed.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n 5p "$0" | sed 's/^# //'; exit 0; }
rows=${1:-100000}
CLIENTS=${CLIENTS:-8}
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# The clients share the node's 2 cores: a client busy-polling for its
# answer (libmv/client.h) takes a core from the node's searches.
export MV_BUSY_POLL_US=${MV_BUSY_POLL_US:-0}
unset MV_ADDR MV_USER || true
for t in mv-noded mv-create mv-insert mv-index mv-ls; do
	[ -x "cmd/$t/$t" ] || die "cmd/$t/$t is not built; run make"
	PATH=$root/cmd/$t:$PATH
done
[ -x bench/mixed ] || die "bench/mixed is not built; run make bench/mixed"

tmp=$(mktemp -d /tmp/mv-mixed-bench.XXXXXX)
pid=
cleanup() {
	rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ "$rc" = 0 ] || [ ! -s "$tmp/node.log" ] || tail -n 20 "$tmp/node.log" >&2
	if [ "${KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

data=$(scripts/fetch-data.sh glove-100)
dim=$(od -An -tu4 -N4 "$data/base.fvecs" | tr -d ' ')
head -c $((rows * (4 + 4 * dim))) "$data/base.fvecs" >"$tmp/base.fvecs"
seq 0 $((rows - 1)) >"$tmp/ids.txt"

export MV_HOME=$tmp/home
mkdir -p "$MV_HOME"
mv-noded 2>>"$tmp/node.log" &
pid=$!
for _ in $(seq 600); do
	mv-ls >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || die "mv-noded exited at start"
	sleep 0.1
done
mv-create -q bench --dim "$dim" --metric cosine
mv-insert -q bench --ids "$tmp/ids.txt" "$tmp/base.fvecs"

echo "| index | settings, in turns | 1 client QPS | $CLIENTS clients QPS | ratio | rounds' ratios |"
echo "|---|---|---:|---:|---:|---:|"
for type in HNSW32 IVF256,Flat; do
	case $type in
	HNSW*) set -- -p ef=16 -p ef=32 -p ef=64 -p ef=128 ;;
	*) set -- -p nprobe=1 -p nprobe=4 -p nprobe=16 -p nprobe=64 ;;
	esac
	log "$type: mv-index on $rows rows"
	mv-index -q bench --type "$type"
	bench/mixed -c "$CLIENTS" -r "$ROUNDS" -t "$SECS" "$@" bench "$data/query.fvecs" >"$tmp/out"
	f() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$tmp/out"; }
	echo "| $type | $(f params) | $(f qps_1) | $(f "qps_$CLIENTS") | $(f ratio) | $(f ratio_min)-$(f ratio_max) |"
done
log "load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
