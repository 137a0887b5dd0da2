#!/bin/bash
# bench/catchup.sh - how fast a cluster node catches up with flushes it
# missed (issue 7: follow.c applies a watch's revisions in order, reading
# their files ahead, several at once).  Bash (uses $EPOCHREALTIME).
#
#   bench/catchup.sh NAME=BINDIR...
#
# Starts a real etcd (scripts/etcd.sh) and a real Ceph RGW
# (scripts/rgw.sh) once, then ROUNDS times, for each build NAME in turn
# (BINDIR holds its mv-* binaries, flat; "tree" stands for this tree's
# cmd/*/), for each store latency LAT in LATS: two mv-noded A and B in
# cluster mode (a cluster of the round's own, num_replicas=1: B holds and
# reads every segment whole), B started with MV_TEST_PAUSE_APPLY=LAT (each
# of its store reads of another node's file waits LAT ms first: a remote
# S3's latency; 0: RGW on loopback as it is); collection "c" (dim 100)
# created through A; B stopped (SIGSTOP) while A commits NF flushes of
# ROWS random rows each; then B continued (SIGCONT) and timed until it
# serves all NF x ROWS rows (mv-ls through B, which waits until B has
# applied what was committed before it).  Prints one row per build, round
# and latency: the catch-up time (ms) and flushes per second.  Progress on
# stderr.
#
# Environment: NF (flushes, default 60), ROWS (1000), LATS ("0 20"),
# ROUNDS (3), KEEP=1 keeps the scratch directory.  NF flushes must commit
# within B's lease (10 s): a stopped node's live key goes with it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
NF=${NF:-60}
ROWS=${ROWS:-1000}
LATS=${LATS:-0 20}
ROUNDS=${ROUNDS:-3}
export OMP_WAIT_POLICY=PASSIVE ETCDCTL_API=3
unset MV_ADDR MV_USER MV_HOME || true
[ $# -gt 0 ] || { echo "usage: bench/catchup.sh NAME=BINDIR..." >&2; exit 64; }

log() { printf 'catchup.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usec() { local t=$EPOCHREALTIME; echo "${t/./}"; }
free_port() {
	python3 -S -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mv-catchup.XXXXXX")
pids=()
cleanup() {
	local rc=$? p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	sh scripts/etcd.sh stop "$tmp/etcd" >/dev/null 2>&1 || true
	sh scripts/rgw.sh stop "$tmp/rgw" >/dev/null 2>&1 || true
	if [ "$rc" != 0 ]; then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] && { log "end of $f:"; tail -n 15 "$f" >&2; }
		done
	fi
	[ "${KEEP:-0}" = 1 ] && log "kept $tmp" || rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The builds: NAME=DIR, "tree" for this tree's binaries.
names=() dirs=()
for a in "$@"; do
	n=${a%%=*} d=${a#*=}
	if [ "$d" = tree ]; then
		d=$tmp/bin-$n
		mkdir -p "$d"
		for t in cmd/mv-*/; do
			t=${t%/}
			cp "$t/${t#cmd/}" "$d/"
		done
	fi
	[ -x "$d/mv-noded" ] || die "$d/mv-noded: not found"
	names+=("$n") dirs+=("$d")
done

env=$(sh scripts/etcd.sh start "$tmp/etcd") || die "etcd did not start"
export "$env"
ETCD=$MV_TEST_ETCD
for v in $(sh scripts/rgw.sh start "$tmp/rgw"); do export "${v?}"; done
[ -n "${MV_TEST_S3_ENDPOINT:-}" ] || die "rgw did not start"

log "$NF flushes of $ROWS x 100 random floats"
python3 -S - "$NF" "$ROWS" "$tmp" <<'EOF'
import random, struct, sys
nf, rows, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = random.Random(7); hdr = struct.pack("<i", 100)
for f in range(nf):
    with open("%s/f%d.fvecs" % (d, f), "wb") as out:
        for i in range(rows):
            out.write(hdr + struct.pack("<100f", *[r.uniform(-1, 1) for _ in range(100)]))
EOF

# node HOME [ENV...]: an mv-noded of the build in $bin for user $u, its
# address in $addr, its pid in $pid.  (A user belongs to one cluster:
# each round has its own.)
node() {
	local home=$1 port
	shift
	port=$(free_port)
	addr=127.0.0.1:$port
	mkdir -p "$tmp/$home"
	env "$@" MV_HOME="$tmp/$home" "$bin/mv-noded" --listen="$addr" \
		--etcd="$ETCD" --cluster_id="$cid" --data_dir="$tmp/$home" \
		--user="$u" --s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" --num_replicas=1 \
		--auto_compact=false </dev/null >>"$tmp/$home.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 600); do
		"$bin/mv-ls" -a "$addr" -u "$u" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || die "mv-noded $home exited at start"
		sleep 0.1
	done
	die "mv-noded $home did not answer in 60 s"
}

echo "build	round	lat_ms	flushes	catchup_ms	flushes_per_s"
for r in $(seq "$ROUNDS"); do
	for lat in $LATS; do
		for i in "${!names[@]}"; do
			bin=${dirs[$i]} cid=cu${r}x${lat}x$i u=u${r}x${lat}x$i
			node "a$r$lat$i"
			A=$addr pa=$pid
			node "b$r$lat$i" MV_TEST_PAUSE_APPLY="$lat"
			B=$addr pb=$pid
			"$bin/mv-create" -a "$A" -u "$u" c --dim 100 >/dev/null
			"$bin/mv-ls" -a "$B" -u "$u" c >/dev/null
			kill -STOP "$pb"
			t=$(usec)
			for f in $(seq 0 $((NF - 1))); do
				"$bin/mv-insert" -q -a "$A" -u "$u" c "$tmp/f$f.fvecs"
			done
			[ $(($(usec) - t)) -lt 9000000 ] ||
				log "warning: the flushes took over 9 s (B's lease is 10 s)"
			t0=$(usec)
			kill -CONT "$pb"
			until [ "$("$bin/mv-ls" -a "$B" -u "$u" c 2>/dev/null |
				cut -f4)" = "$((NF * ROWS))" ]; do
				sleep 0.005
			done
			ms=$((($(usec) - t0) / 1000))
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${names[$i]}" "$r" \
				"$lat" "$NF" "$ms" \
				"$(awk -v n="$NF" -v ms="$ms" 'BEGIN { printf "%.0f", n * 1000 / (ms ? ms : 1) }')"
			kill -TERM "$pa" "$pb"
			wait "$pa" "$pb" 2>/dev/null || true
			pids=()
		done
	done
done
