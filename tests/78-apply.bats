#!/usr/bin/env bats
# 78-apply.bats - a follower's incremental apply (follow.c) reads another
# node's new files from the store without node.commit, so that the node's
# own flushes do not wait for those reads (issue 7).  Node 2 follows with
# a test pause (MV_TEST_PAUSE_APPLY: node_test_pause) in its store read of
# another node's vector file, standing for a slow S3 or a large segment;
# while it is held there, its own mv-flush of another collection returns
# at once, a flush of the same collection waits for the apply (the other
# node's rows count in its duplicate check), and afterwards its searches
# see every flush, each row once.  A node behind by several revisions
# reads their files several at once, and applies them in order.  Two
# cluster nodes on the file's own
# etcd and a shared directory for storage (helpers/cluster.bash); both
# hold every unit (num_replicas=1).

load helpers/mv
load helpers/cluster
load helpers/cluster_user

# The pause: long against a flush (tens of ms here), short of the 5 s a
# search waits for its node to apply (MV_VISIBLE_WAIT_MS).
PAUSE_MS=4000

# pauses: how many of node 2's pauses have started.
pauses() {
	grep -c "test pause: MV_TEST_PAUSE_APPLY, " "$CLUSTER_DIR/cnode2.log"
}

paused() {
	[ "$(pauses)" -ge 1 ]
}

pause_over() {
	grep -q "test pause: MV_TEST_PAUSE_APPLY over" "$CLUSTER_DIR/cnode2.log"
}

# two_nodes: node 1, and node 2 with the pause; collection "things"
# created through node 1 and known to node 2, "mine" through node 2.
two_nodes() {
	start_cluster_node 1 --user="$U" --num_replicas=1 --auto_compact=false
	MV_TEST_PAUSE_APPLY=$PAUSE_MS start_cluster_node 2 --user="$U" \
		--num_replicas=1 --auto_compact=false
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 4
	run -0 mv-create -a "$NODE_2" -u "$U" mine --dim 4
	run -0 mv-ls -a "$NODE_2" -u "$U" things
	gen vecs 40 4 --seed 21 --ids-first 1 >a.txt
	gen vecs 30 4 --seed 22 --ids-first 1001 >b.txt
	gen vecs 3 4 --seed 23 >q.txt
}

# exact ADDR COLL BASE: an exact search of every row through node ADDR
# equals the awk brute force over BASE, and COLL has BASE's rows once.
exact() {
	local n
	n=$(line_count "$3")
	awk_knn "$3" q.txt "$n" l2 >want.tsv
	mv-search -a "$1" -u "$U" -k "$n" "$2" q.txt >got.tsv
	diff want.tsv got.tsv || fail "$2 through $1 is not the brute force of its rows"
	run -0 mv-get -a "$1" -u "$U" "$2" --all
	assert_equal "${#lines[@]}" "$n"
	assert_equal "$(cut -f1 <<<"$output" | sort -u | wc -l)" "$n"
}

@test "node 2 reads node 1's segment: its own flush of another collection returns meanwhile, and both are seen" {
	local t0 ms
	two_nodes
	# staged first: mv-insert's DESCRIBE waits, as every read does, until
	# node 2 has applied what was committed before it
	run -0 mv-insert -a "$NODE_2" -u "$U" --session s1 --ids-first mine b.txt
	run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things a.txt
	poll 20 paused || fail "node 2 did not start reading node 1's segment"
	t0=$(date +%s%N)
	run -0 mv-flush -a "$NODE_2" -u "$U" s1
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "# node 2's flush: $ms ms during a $PAUSE_MS ms read" >&3
	[ "$ms" -lt $((PAUSE_MS / 2)) ] ||
		fail "node 2's flush took $ms ms: it waited for the follower's read"
	pause_over && echo "# (the read was over when the flush returned)" >&3
	# both flushes, each row once, through both nodes
	exact "$NODE_2" things a.txt
	exact "$NODE_2" mine b.txt
	exact "$NODE_1" things a.txt
	exact "$NODE_1" mine b.txt
	# node 2 read only node 1's file ahead, never its own
	assert_equal "$(pauses)" 1
}

@test "node 2's flush of the same collection waits for node 1's rows: a reused id is refused (65), a new one commits once" {
	two_nodes
	run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things a.txt
	poll 20 paused || fail "node 2 did not start reading node 1's segment"
	# id 7 is node 1's, committed but not yet in node 2's memory
	run -65 mv-insert -a "$NODE_2" -u "$U" --ids-first things < <(
		printf '7 1 2 3 4\n')
	assert_output --partial "id 7 already in collection 'things'"
	run -0 mv-insert -a "$NODE_2" -u "$U" --ids-first things b.txt
	cat a.txt b.txt >ab.txt
	exact "$NODE_2" things ab.txt
	exact "$NODE_1" things ab.txt
	# one pause: node 2's own segment was not read from the store
	assert_equal "$(pauses)" 1
}

# before_first_over: node 2's reads of node 1's files started before the
# first of them ended (its log, in order).
before_first_over() {
	awk '/test pause: MV_TEST_PAUSE_APPLY over/ { exit }
	     /test pause: MV_TEST_PAUSE_APPLY, / { n++ }
	     END { print n + 0 }' "$CLUSTER_DIR/cnode2.log"
}

@test "node 2, six flushes behind, reads node 1's files of several at once, then applies them in order: every row once" {
	local started
	start_cluster_node 1 --user="$U" --num_replicas=1 --auto_compact=false
	start_cluster_node 2 --user="$U" --num_replicas=1 --auto_compact=false
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 4
	run -0 mv-ls -a "$NODE_2" -u "$U" things
	kill -TERM "$NODE_2_PID"
	_wait_gone "$NODE_2_PID" 10 || fail "node 2 did not stop"
	# node 2 again, its follower held after its load while node 1
	# commits six flushes; then each store read of node 1's files takes
	# 1.5 s, a slow S3's latency
	(
		MV_TEST_PAUSE_FOLLOW=8000 MV_TEST_PAUSE_APPLY=1500 \
			start_cluster_node 2 --user="$U" --num_replicas=1 \
			--auto_compact=false
	) 3>&- &
	started=$!
	poll 20 grep -q "test pause: MV_TEST_PAUSE_FOLLOW, " \
		"$CLUSTER_DIR/cnode2.log" || fail "node 2's follower did not start"
	gen vecs 60 4 --seed 31 --ids-first 1 >all.txt
	gen vecs 3 4 --seed 23 >q.txt
	split -l 10 all.txt part.
	for f in part.*; do
		run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things "$f"
	done
	grep -q "test pause: MV_TEST_PAUSE_FOLLOW over" "$CLUSTER_DIR/cnode2.log" &&
		fail "node 2's follower went on before node 1's six flushes"
	wait "$started" || fail "node 2 did not start again"
	poll 30 grep -q "caught up with revision" "$CLUSTER_DIR/cnode2.log" ||
		fail "node 2 did not catch up"
	# (a search waits until node 2 has applied what was committed before)
	exact "$NODE_2" things all.txt
	exact "$NODE_1" things all.txt
	# one read of each of node 1's six files, several under way at once
	# (one revision at a time: one)
	assert_equal "$(pauses)" 6
	echo "# reads started before the first ended: $(before_first_over)" >&3
	[ "$(before_first_over)" -ge 2 ] ||
		fail "node 2 read one revision at a time"
}
