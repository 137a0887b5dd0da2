#!/bin/bash
# bench/cluster-mixed.sh - single-query search throughput through one
# cluster node (a real etcd from scripts/etcd.sh, the segment store a
# shared directory), 1 client against C at once, for two builds of
# mv-noded in turns: what a search's etcd revision read costs when many
# arrive together.
#
#   bench/cluster-mixed.sh OLD_TREE [NEW_TREE] [ROWS]
#
# OLD_TREE and NEW_TREE are built trees (NEW_TREE defaults to this one;
# both need bench/mixed: make all bench/mixed).  ROWS of glove-100's base
# (default 100000) are inserted once and indexed with HNSW32; each build
# then serves the same data directory in turn, ROUNDS times (default 3),
# and bench/mixed measures SECS seconds (default 3) of 1 client and of
# CLIENTS (default 8) at ef 16/32/64/128 in turns.  Prints a Markdown
# table: per build, the medians of QPS alone and together, the etcd
# revision reads per search (mv-stat --io, new builds only), and the
# ratio new/old.  OMP_NUM_THREADS=1 as bench/mixed.sh.
set -euo pipefail

prog=cluster-mixed.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
if [ $# -lt 1 ] || [ $# -gt 3 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	echo "usage: bench/cluster-mixed.sh OLD_TREE [NEW_TREE] [ROWS]" >&2
	exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "$1" && pwd)
new=$(cd "${2:-$root}" && pwd)
rows=${3:-100000}
CLIENTS=${CLIENTS:-8}
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
for tree in "$old" "$new"; do
	[ -x "$tree/cmd/mv-noded/mv-noded" ] && [ -x "$tree/bench/mixed" ] ||
		die "$tree: mv-noded or bench/mixed not built (make all bench/mixed)"
done
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export MV_BUSY_POLL_US=${MV_BUSY_POLL_US:-0}
unset MV_ADDR MV_USER || true
cd "$root"

tmp=$(mktemp -d /tmp/mv-cluster-mixed.XXXXXX)
pid=
cleanup() {
	rc=$?
	[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	sh scripts/etcd.sh stop "$tmp/etcd" >/dev/null 2>&1 || true
	[ "$rc" = 0 ] || tail -n 20 "$tmp/node.log" >&2 || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

etcd=$(sh scripts/etcd.sh start "$tmp/etcd")
etcd=${etcd#MV_TEST_ETCD=}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
mkdir -p "$tmp/data" "$tmp/store"

# up TREE: that build's mv-noded on the cluster's one node, ready.
up() {
	MV_HOME=$tmp/data "$1/cmd/mv-noded/mv-noded" --listen="$addr" \
		--etcd="$etcd" --cluster_id=bench --user=bench \
		--data_dir="$tmp/data" --s3_endpoint="file:$tmp/store" \
		--num_replicas=0 2>>"$tmp/node.log" &
	pid=$!
	for _ in $(seq 600); do
		"$new/cmd/mv-ls/mv-ls" -a "$addr" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || die "mv-noded exited at start"
		sleep 0.1
	done
	die "mv-noded did not answer"
}
down() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

data=$(scripts/fetch-data.sh glove-100)
head -c $((rows * 404)) "$data/base.fvecs" >"$tmp/base.fvecs"
up "$new"
"$new/cmd/mv-create/mv-create" -q -a "$addr" bench --dim 100 --metric cosine
"$new/cmd/mv-insert/mv-insert" -q -a "$addr" bench "$tmp/base.fvecs"
"$new/cmd/mv-index/mv-index" -q -a "$addr" bench --type HNSW32
down

declare -A q1 qc reads
for r in $(seq "$ROUNDS"); do
	for tree in "$old" "$new"; do
		up "$tree"
		"$tree/bench/mixed" -a "$addr" -c "$CLIENTS" -r 1 -t "$SECS" \
			-p ef=16 -p ef=32 -p ef=64 -p ef=128 bench \
			"$data/query.fvecs" >"$tmp/out"
		f() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$tmp/out"; }
		q1[$tree]+="$(f qps_1) "
		qc[$tree]+="$(f "qps_$CLIENTS") "
		io=$("$new/cmd/mv-stat/mv-stat" -a "$addr" --io | cut -f7)
		reads[$tree]+="${io:--} "
		down
		log "round $r, $tree: 1 client $(f qps_1), $CLIENTS: $(f "qps_$CLIENTS") QPS, revision reads ${io:--}"
	done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "| build | 1 client QPS | $CLIENTS clients QPS | $CLIENTS / 1 |"
echo "|---|---:|---:|---:|"
for tree in "$old" "$new"; do
	a=$(med <<<"${q1[$tree]}")
	b=$(med <<<"${qc[$tree]}")
	echo "| $tree | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') |"
done
echo
echo "revision reads of each node run (new build; '-' where STAT io has no such field): ${reads[$new]}"
log "load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
