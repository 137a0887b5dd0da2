#!/usr/bin/env bats
# 72-sync.bats - sync_level in a cluster of three mv-noded on a real etcd
# and a real S3 (Ceph RGW): a flush answers only once sync_level other
# nodes have applied its revision (LOAD applied=), a stopped replica makes
# it exit 75 in bounded time saying it committed, and sync_level=1 needs
# one replica only.  etcd is this file's own; RGW the run's (MV_TEST_*) or
# this file's.

load helpers/mv

free_ports() {
	python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

setup_file() {
	# This file's own etcd, as 70-cluster.bats: a node loads every
	# user's collections it finds in etcd, and other files' clusters
	# keep theirs in other stores (a shared directory, say).
	MV_TEST_ETCD=$(sh "$MV_ROOT/scripts/etcd.sh" start \
		"$BATS_FILE_TMPDIR/etcd") || return 1
	MV_TEST_ETCD=${MV_TEST_ETCD#MV_TEST_ETCD=}
	echo "$BATS_FILE_TMPDIR/etcd" >"$BATS_FILE_TMPDIR/own-etcd"
	if [ -z "${MV_TEST_S3_ENDPOINT:-}" ]; then
		sh "$MV_ROOT/scripts/rgw.sh" start "$BATS_FILE_TMPDIR/rgw" \
			>"$BATS_FILE_TMPDIR/rgw.env" || return 1
		echo "$BATS_FILE_TMPDIR/rgw" >"$BATS_FILE_TMPDIR/own-rgw"
		set -a
		. "$BATS_FILE_TMPDIR/rgw.env"
		set +a
	fi
	export MV_TEST_ETCD MV_TEST_S3_ENDPOINT MV_TEST_S3_BUCKET \
		AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

teardown_file() {
	if [ -f "$BATS_FILE_TMPDIR/own-etcd" ]; then
		sh "$MV_ROOT/scripts/etcd.sh" stop "$(cat "$BATS_FILE_TMPDIR/own-etcd")"
	fi
	if [ -f "$BATS_FILE_TMPDIR/own-rgw" ]; then
		sh "$MV_ROOT/scripts/rgw.sh" stop "$(cat "$BATS_FILE_TMPDIR/own-rgw")"
	fi
}

# node_up I SYNC_LEVEL: start node I (1..3) with num_replicas=2 and that
# sync_level, and wait until it accepts.
node_up() {
	local i=$1 home=$BATS_TEST_TMPDIR/n$1 t=$((MV_START_TIMEOUT * 20))
	mkdir -p "$home"
	MV_HOME=$home mv-noded --listen="${ADDR[$i]}" --etcd="$MV_TEST_ETCD" \
		--cluster_id="$CID" --data_dir="$home" \
		--s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" --num_nodes=3 \
		--num_replicas=2 --sync_level="$2" --sync_timeout=3 \
		</dev/null >>"$home.log" 2>&1 3>&- &
	PID[$i]=$!
	while [ $t -gt 0 ]; do
		kill -0 "${PID[$i]}" 2>/dev/null || {
			tail -n 30 "$home.log" >&2
			return 1
		}
		socat -u OPEN:/dev/null "TCP:${ADDR[$i]}" 2>/dev/null && return 0
		sleep 0.05
		t=$((t - 1))
	done
	tail -n 30 "$home.log" >&2
	return 1
}

setup() {
	local p
	CID=sync${BATS_TEST_NUMBER}_$RANDOM
	export MV_USER=u${BATS_TEST_NUMBER}_$RANDOM
	p=($(free_ports 3))
	ADDR=([1]=127.0.0.1:${p[0]} [2]=127.0.0.1:${p[1]} [3]=127.0.0.1:${p[2]})
	PID=()
	# nodes 1 and 3 wait for two replicas, node 2 for one
	node_up 1 2
	node_up 2 1
	node_up 3 2
	# every node live before the first flush
	mv-create -a "${ADDR[1]}" things --dim 4
}

teardown() {
	for i in 1 2 3; do
		[ -n "${PID[$i]:-}" ] && kill -CONT "${PID[$i]}" 2>/dev/null
		[ -n "${PID[$i]:-}" ] && kill "${PID[$i]}" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -n "${PID[$i]:-}" ] && wait "${PID[$i]}" 2>/dev/null
	done
	if [ -n "${BATS_TEST_COMPLETED:-}" ]; then
		return 0
	fi
	for i in 1 2 3; do
		echo "--- node $i" >&2
		tail -n 20 "$BATS_TEST_TMPDIR/n$i.log" >&2
	done
}

# The revision node I has applied (its LOAD reply's applied=).
applied() {
	printf 'LOAD\nQUIT\n' | socat -t 5 - "TCP:${ADDR[$1]}" |
		sed -n 's/^OK .* applied=\([0-9]*\).*/\1/p'
}

# Commit session S through node I by hand; prints the reply line.
commit() {
	printf 'COMMIT %s\nQUIT\n' "$2" | socat -t 10 - "TCP:${ADDR[$1]}" |
		head -n 1
}

@test "sync_level=2: when a flush through node 1 returns, nodes 2 and 3 have applied its revision" {
	local r line rev a
	for r in 1 2 3; do
		printf '%d %d 1 1 1\n' "$r" "$r" |
			mv-insert -q -a "${ADDR[1]}" --ids-first --session "s$r" things
		line=$(commit 1 "s$r")
		[[ $line =~ ^OK\ inserted=1\ deleted=0\ rev=([0-9]+)$ ]] || {
			echo "COMMIT answered '$line'" >&2
			return 1
		}
		rev=${BASH_REMATCH[1]}
		for i in 2 3; do
			a=$(applied "$i")
			echo "flush rev $rev, node $i applied $a"
			[ "$a" -ge "$rev" ]
		done
	done
	# A replica that cannot apply for a second holds the flush that long.
	kill -STOP "${PID[3]}"
	(sleep 1; kill -CONT "${PID[3]}") &
	local cont=$! t0=$(date +%s%N)
	echo '9 9 9 9 9' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	local ms=$((($(date +%s%N) - t0) / 1000000))
	wait "$cont"
	echo "flush took $ms ms"
	[ "$ms" -ge 800 ]
	run -0 bash -c "echo '9 9 9 9' | mv-search -a ${ADDR[3]} -k 1 things | cut -f3"
	assert_output 9
}

@test "sync_level=2 with a replica stopped: the flush exits 75 within sync_timeout saying it committed; the data is there" {
	kill -STOP "${PID[3]}"
	local t0=$(date +%s)
	run -75 mv-insert -a "${ADDR[1]}" --ids-first things <<<'7 7 7 7 7'
	local s=$(($(date +%s) - t0))
	kill -CONT "${PID[3]}"
	echo "$output; $s s"
	assert_output --regexp 'flush committed at revision [0-9]+ but only 1 of 2 replicas loaded it: node [0-9]+ \(127\.0\.0\.1:[0-9]+\) no answer; not within 3 s'
	[ "$s" -le 8 ]
	# durable: every node has it, node 3 once it runs again
	for i in 1 2 3; do
		run -0 bash -c "echo '7 7 7 7' | mv-search -a ${ADDR[$i]} -k 1 things | cut -f3"
		assert_output 7
	done
}

@test "sync_level=2 with a replica gone (stopped cleanly): the flush exits 75 at once, naming the live nodes" {
	kill "${PID[3]}"
	wait "${PID[3]}"
	PID[3]=
	local t0=$(date +%s)
	run -75 mv-insert -a "${ADDR[1]}" --ids-first things <<<'6 6 6 6 6'
	local s=$(($(date +%s) - t0))
	assert_output --partial 'flush committed at revision'
	assert_output --partial 'but only 1 of 2 replicas loaded it: only 1 other node is live'
	[ "$s" -le 2 ]
	run -0 bash -c "echo '6 6 6 6' | mv-search -a ${ADDR[2]} -k 1 things | cut -f3"
	assert_output 6
}

@test "sync_level=1 with one replica stopped: a flush through node 2 succeeds" {
	kill -STOP "${PID[3]}"
	run -0 mv-insert -a "${ADDR[2]}" --ids-first things <<<'5 5 5 5 5'
	kill -CONT "${PID[3]}"
	run -0 bash -c "echo '5 5 5 5' | mv-search -a ${ADDR[1]} -k 1 things | cut -f3"
	assert_output 5
}

@test "sync_level above num_replicas, or num_replicas above num_nodes-1, is refused with 78" {
	local c="--etcd=$MV_TEST_ETCD --s3_endpoint=file:/tmp --listen=127.0.0.1:1"
	run -0 mv-noded -n $c --num_nodes=3 --num_replicas=2 --sync_level=2
	run -78 mv-noded -n $c --num_nodes=3 --num_replicas=2 --sync_level=3
	assert_output --partial 'sync_level 3 exceeds num_replicas 2'
	run -78 mv-noded -n $c --num_nodes=3 --num_replicas=3
	assert_output --partial 'num_replicas 3 exceeds num_nodes - 1'
}
