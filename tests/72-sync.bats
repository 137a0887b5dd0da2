#!/usr/bin/env bats
# 72-sync.bats - sync_level in a cluster of three mv-noded on a real etcd
# and a real S3 (Ceph RGW): a flush answers only once sync_level other
# holders of its unit (num_replicas=2 of three nodes: every node) have
# applied its revision and loaded it (LOAD loaded=), a stopped replica makes
# it exit 75 in bounded time saying it committed, and sync_level=1 needs
# one replica only.  etcd is this file's own; RGW the run's (MV_TEST_*) or
# this file's.

load helpers/mv
load helpers/nodes3

setup_file() {
	nodes3_setup_file
}

teardown_file() {
	nodes3_teardown_file
}

# sync_node_up I SYNC_LEVEL: node I with num_replicas=2 and that sync_level.
sync_node_up() {
	node_up "$1" --num_nodes=3 --num_replicas=2 --sync_level="$2" \
		--sync_timeout=3
}

setup() {
	nodes3_setup
	# nodes 1 and 3 wait for two replicas, node 2 for one
	sync_node_up 1 2
	sync_node_up 2 1
	sync_node_up 3 2
	# every node live before the first flush
	mv-create -a "${ADDR[1]}" things --dim 4
}

teardown() {
	nodes3_teardown
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
	local c="--etcd=$ETCD --s3_endpoint=file:/tmp --listen=127.0.0.1:1"
	run -0 mv-noded -n $c --num_nodes=3 --num_replicas=2 --sync_level=2
	run -78 mv-noded -n $c --num_nodes=3 --num_replicas=2 --sync_level=3
	assert_output --partial 'sync_level 3 exceeds num_replicas 2'
	run -78 mv-noded -n $c --num_nodes=3 --num_replicas=3
	assert_output --partial 'num_replicas 3 exceeds num_nodes - 1'
}
