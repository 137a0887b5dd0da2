#!/bin/bash
# bench/apply.sh - a node's mv-flush while its follower reads another
# node's large segment from S3 (issue 7: follow.c's read-ahead).  Bash
# (uses $EPOCHREALTIME).
#
#   bench/apply.sh NAME=BINDIR...
#
# Starts a real etcd (scripts/etcd.sh) and a real Ceph RGW
# (scripts/rgw.sh) once, then ROUNDS times, for each build NAME in turn
# (BINDIR holds its mv-* binaries, flat; "tree" stands for this tree's
# cmd/*/): two mv-noded A and B in cluster mode on them (a cluster id of
# the round's own, num_replicas=1: B holds and reads every segment),
# collection "big" created through A, "small" through B; NFLUSH sessions
# of 10 rows staged on B into "small"; then A inserts and flushes N random
# vectors of dim 100 into "big" (one segment, N x 400 bytes), and as soon
# as that returns B's sessions are flushed one after another with
# mv-flush, each timed (wall, ms) while B's follower reads A's segment;
# then until B answers with A's rows.  Prints per round the first
# mv-flush's time, where B says that flush's time went (its -vv log:
# "files", writing the segment to S3 without a lock, and "metadata",
# from then until committed: waiting for node.commit and the etcd
# transaction), the median and max of the NFLUSH mv-flush, the time
# until B serves A's rows (from A's mv-insert returning), and B's CPU
# time (user+sys of mv-noded over the round, from /proc).  Progress on
# stderr.
#
# Environment: N (rows of A's segment, default 100000), NFLUSH (10),
# ROUNDS (3), KEEP=1 keeps the scratch directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-100000}
NFLUSH=${NFLUSH:-10}
ROUNDS=${ROUNDS:-3}
export OMP_WAIT_POLICY=PASSIVE ETCDCTL_API=3
unset MV_ADDR MV_USER MV_HOME || true
[ $# -gt 0 ] || { echo "usage: bench/apply.sh NAME=BINDIR..." >&2; exit 64; }

log() { printf 'apply.sh: %s\n' "$*" >&2; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# cpu PID: user+sys clock ticks of PID so far.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
NODE_FLAGS=-vv
. bench/lib-pair.sh

log "A's segment: $N x 100 random floats"
python3 -S - "$N" >"$tmp/big.fvecs" <<'EOF'
import random, struct, sys
n = int(sys.argv[1]); r = random.Random(7); out = sys.stdout.buffer
hdr = struct.pack("<i", 100)
for i in range(n):
    out.write(hdr + struct.pack("<100f", *[r.uniform(-1, 1) for _ in range(100)]))
EOF
python3 -S -c 'import random
r = random.Random(8)
for i in range(10): print(" ".join("%.4f" % r.uniform(-1, 1) for _ in range(100)))' >"$tmp/small.txt"

echo "build	round	first_ms	files_ms	metadata_ms	median_ms	max_ms	B_serves_A_ms	B_cpu_s"
for r in $(seq "$ROUNDS"); do
	for i in "${!names[@]}"; do
		bin=${dirs[$i]} cid=apply${r}x$i u=u${r}x$i
		pair_node "a$r$i"
		A=$addr pa=$pid
		pair_node "b$r$i"
		B=$addr pb=$pid
		"$bin/mv-create" -a "$A" -u "$u" big --dim 100 >/dev/null
		"$bin/mv-create" -a "$B" -u "$u" small --dim 100 >/dev/null
		"$bin/mv-ls" -a "$B" -u "$u" big >/dev/null
		for s in $(seq "$NFLUSH"); do
			"$bin/mv-insert" -q -a "$B" -u "$u" --session "s$s" small \
				"$tmp/small.txt"
		done
		c0=$(cpu "$pb")
		"$bin/mv-insert" -q -a "$A" -u "$u" big "$tmp/big.fvecs"
		t0=$(usec)
		ms=()
		for s in $(seq "$NFLUSH"); do
			t=$(usec)
			"$bin/mv-flush" -q -a "$B" -u "$u" "s$s"
			ms+=("$(( ($(usec) - t) / 1000 ))")
		done
		until [ "$("$bin/mv-ls" -a "$B" -u "$u" big | cut -f4)" = "$N" ]; do
			sleep 0.01
		done
		serve=$(( ($(usec) - t0) / 1000 ))
		c1=$(cpu "$pb")
		split=$(sed -n 's/.* flush of [0-9]* rows.*: files \([0-9]*\) ms, metadata \([0-9]*\) ms.*/\1\t\2/p' \
			"$tmp/b$r$i.log" | head -n 1)
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${names[$i]}" "$r" \
			"${ms[0]}" "$split" "$(median "${ms[@]}")" \
			"$(printf '%s\n' "${ms[@]}" | sort -g | tail -n 1)" \
			"$serve" "$(awk -v t="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" \
				'BEGIN { printf "%.2f", t / hz }')"
		kill -TERM "$pa" "$pb"
		wait "$pa" "$pb" 2>/dev/null || true
		pids=()
	done
done
