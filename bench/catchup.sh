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
. bench/lib-pair.sh

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

echo "build	round	lat_ms	flushes	catchup_ms	flushes_per_s"
for r in $(seq "$ROUNDS"); do
	for lat in $LATS; do
		for i in "${!names[@]}"; do
			bin=${dirs[$i]} cid=cu${r}x${lat}x$i u=u${r}x${lat}x$i
			pair_node "a$r$lat$i"
			A=$addr pa=$pid
			pair_node "b$r$lat$i" MV_TEST_PAUSE_APPLY="$lat"
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
