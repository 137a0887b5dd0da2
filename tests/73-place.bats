#!/usr/bin/env bats
# 73-place.bats - placement in a cluster of three mv-noded on a real etcd
# and a real S3 (Ceph RGW): each unit (an index, or a segment no index
# covers) is held by 1 + num_replicas nodes, a search through any node
# fans out to the holders of what it does not hold and equals brute force
# over all the rows, a stopped replica changes nothing, a stopped only
# copy fails searches with 75 naming what is missing until its lease
# expires and the others load its units, GET reads every row through
# a node holding few of them, and an index dropped or replaced by one
# covering fewer segments leaves no segment unserved for a moment, and
# a holder asked for a unit it has yet to load waits for its placer.  etcd is this file's own; RGW the run's
# (MV_TEST_*) or this file's.

load helpers/mv
load helpers/nodes3

setup_file() {
	nodes3_setup_file
}

teardown_file() {
	nodes3_teardown_file
}

setup() {
	nodes3_setup
}

teardown() {
	nodes3_teardown
}

# place_up R: the three nodes with num_replicas=R, merges off (they would
# change the segments under the test).
place_up() {
	local i
	for i in 1 2 3; do
		node_up "$i" --num_replicas="$1" --auto_compact=false
	done
}

# load_rows: 12 flushes of 150 rows of dim 8 (ids 1..1800, given), four
# through each node: 12 segments; rows in rows.txt, queries in q.txt.
load_rows() {
	local b i
	run -0 mv-create -a "${ADDR[1]}" things --dim 8
	python3 -c 'import random
random.seed(7)
for i in range(1, 1801):
    print(i, " ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))
' >"$BATS_TEST_TMPDIR/rows.txt"
	python3 -c 'import random
random.seed(99)
for r in range(20):
    print(" ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))
' >"$BATS_TEST_TMPDIR/q.txt"
	for b in $(seq 0 11); do
		i=$((b % 3 + 1))
		sed -n "$((b * 150 + 1)),$((b * 150 + 150))p" \
			"$BATS_TEST_TMPDIR/rows.txt" |
			mv-insert -q -a "${ADDR[$i]}" --ids-first things
	done
	want_exact
}

# want_exact: the exact top 5 of each query of q.txt over every row of
# rows.txt, into want.
want_exact() {
	python3 -c 'import sys
rows = [l.split() for l in open(sys.argv[1] + "/rows.txt")]
rows = [(int(r[0]), list(map(float, r[1:]))) for r in rows]
for qi, l in enumerate(open(sys.argv[1] + "/q.txt")):
    q = list(map(float, l.split()))
    d = sorted((sum((a - b) ** 2 for a, b in zip(q, v)), i) for i, v in rows)
    for rank, (dist, i) in enumerate(d[:5]):
        print(qi, rank + 1, i, sep="\t")' "$BATS_TEST_TMPDIR" \
		>"$BATS_TEST_TMPDIR/want"
}

# search_ok I: a search through node I equals brute force.
search_ok() {
	mv-search -a "${ADDR[$1]}" -k 5 things "$BATS_TEST_TMPDIR/q.txt" \
		>"$BATS_TEST_TMPDIR/got$1" || return 1
	cut -f1-3 "$BATS_TEST_TMPDIR/got$1" | diff "$BATS_TEST_TMPDIR/want" -
}

# held I: the segments node I serves now (mv-stat's last column).
held() {
	mv-stat -a "${ADDR[$1]}" | cut -f5
}

# held_sum_is N: the nodes' held segments add up to N.  No share is
# checked: rendezvous hashing gives one node all 12 units now and then
# (with num_replicas=1, each node is among a unit's two holders with
# chance 2/3, so all 12 with (2/3)^12, about one run in 130).
held_sum_is() {
	local a b c
	a=$(held 1) b=$(held 2) c=$(held 3)
	echo "held: $a $b $c" >&2
	[ $((a + b + c)) -eq "$1" ]
}

@test "num_replicas=1: each segment on two nodes; search through each node equals brute force, with a stopped node, with an index, while a node is killed; GET reads every row" {
	local i
	place_up 1
	load_rows
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}8${T}l2${T}1800${T}12${T}"
	poll 10 held_sum_is 24
	for i in 1 2 3; do
		search_ok "$i" || fail "search through node $i"
	done
	# Any one node stopped: its units have a replica elsewhere, and
	# searches through the others answer at once.  With the sum above,
	# every unit is on exactly two nodes.
	local s o
	for s in 1 2 3; do
		kill -STOP "${PID[$s]}"
		for o in 1 2 3; do
			[ "$o" = "$s" ] && continue
			search_ok "$o" ||
				fail "search through node $o with node $s stopped"
		done
		kill -CONT "${PID[$s]}"
	done
	search_ok 3 || fail "search through node 3 resumed"
	# GET of every id through the node that holds the fewest segments.
	local few=1
	for i in 2 3; do
		[ "$(held "$i")" -lt "$(held "$few")" ] && few=$i
	done
	cut -d' ' -f1 "$BATS_TEST_TMPDIR/rows.txt" |
		mv-get -a "${ADDR[$few]}" things >"$BATS_TEST_TMPDIR/get"
	python3 -c 'import sys
want = {}
for l in open(sys.argv[1] + "/rows.txt"):
    r = l.split()
    want[int(r[0])] = list(map(float, r[1:]))
got = 0
for l in open(sys.argv[1] + "/get"):
    r = l.rstrip("\n").split("\t")
    v = list(map(float, r[1].split(",")))
    assert len(v) == 8 and all(abs(a - b) < 1e-6 for a, b in zip(v, want[int(r[0])])), l
    got += 1
assert got == 1800, got' "$BATS_TEST_TMPDIR" || fail "GET through node $few"
	# An index over the 12 segments is one unit; a 13th segment another.
	run -0 mv-index -a "${ADDR[1]}" things --type Flat
	sed -n '1,10p' "$BATS_TEST_TMPDIR/rows.txt" |
		awk '{ $1 = $1 + 5000; print }' >"$BATS_TEST_TMPDIR/more.txt"
	mv-insert -q -a "${ADDR[2]}" --ids-first things "$BATS_TEST_TMPDIR/more.txt"
	cat "$BATS_TEST_TMPDIR/more.txt" >>"$BATS_TEST_TMPDIR/rows.txt"
	# 13 segments served twice: the index's 12 on its two holders
	poll 10 held_total_is 26
	want_exact
	for i in 1 2 3; do
		search_ok "$i" || fail "indexed search through node $i"
	done
	# SIGKILL of a holder while searches run through the others: each
	# answers, and right, before its lease ends and after.
	(
		for i in $(seq 1 40); do
			search_ok 2 && search_ok 3 || exit 1
			sleep 0.05
		done
	) &
	local loop=$!
	sleep 0.5
	kill -KILL "${PID[1]}"
	wait "${PID[1]}" 2>/dev/null || true
	PID[1]=
	wait "$loop" || fail "a search through node 2 or 3 failed once node 1 was killed"
}

@test "num_replicas=0: a stopped node's units fail searches with 75 naming them, then its lease expires and the others load them" {
	local i
	place_up 0
	load_rows
	poll 10 held_sum_is 12
	for i in 1 2 3; do
		search_ok "$i" || fail "search through node $i"
	done
	# Stop a node that holds units (node 3 holds none in about one run
	# of 130: (2/3)^12); a and b are the other two.
	local s=3 a=1 b=2
	[ "$(held 3)" -gt 0 ] || s=2 a=1 b=3
	[ "$(held "$s")" -gt 0 ]
	kill -STOP "${PID[$s]}"
	run -75 --separate-stderr mv-search -a "${ADDR[$a]}" -k 5 things \
		"$BATS_TEST_TMPDIR/q.txt"
	assert_regex "$stderr" "^mv-search: .*'things'.* unit.* unreachable: n[0-9]+-[0-9]+-[0-9a-f]+\.vec"
	# The lease (10 s) expires; the other two load the stopped node's
	# units.
	poll 30 search_ok "$a"
	search_ok "$b" || fail "search through node $b"
	poll 10 held_pair_is "$a" "$b" 12
	kill -CONT "${PID[$s]}"
}

# held_total_is N: the three nodes hold N segments between them.
held_total_is() {
	[ $(($(held 1) + $(held 2) + $(held 3))) -eq "$1" ]
}

# held_pair_is I J N: nodes I and J hold N segments between them.
held_pair_is() {
	[ $(($(held "$1") + $(held "$2"))) -eq "$3" ]
}

@test "sync_level=1: a flush waiting on a stopped holder goes on once the holder's lease expires and another node holds its unit" {
	local i r t0 ms waited=
	for i in 1 2 3; do
		node_up "$i" --num_replicas=1 --sync_level=1 --sync_timeout=25 \
			--auto_compact=false
	done
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	# Flushes through node 1 with node 3 stopped: a flush whose unit node
	# 3 holds beside node 1 (one in three) waits on node 3 until its
	# lease (10 s) expires; then the unit's holders are nodes 1 and 2,
	# and node 2 loads it.  Before, the wait kept asking node 3 and the
	# flush exited 75 at sync_timeout.
	kill -STOP "${PID[3]}"
	for r in $(seq 1 30); do
		t0=$(date +%s%N)
		run mv-insert -a "${ADDR[1]}" --ids-first things <<<"$r $r $r $r $r"
		ms=$((($(date +%s%N) - t0) / 1000000))
		echo "flush $r: exit $status in $ms ms: $output" >&2
		[ "$status" = 0 ] || break
		if [ "$ms" -gt 4000 ]; then
			waited=$r
			break
		fi
	done
	kill -CONT "${PID[3]}"
	[ "$status" = 0 ] || fail "flush $r: exit $status after $ms ms: $output"
	[ -n "$waited" ] || fail "no flush had node 3 as its unit's other holder"
	[ "$ms" -lt 20000 ]
	run -0 bash -c "echo '$r $r $r $r' | mv-search -a ${ADDR[2]} -k 1 things | cut -f3"
	assert_output "$r"
}

@test "num_replicas=0: an index dropped through one node: searches through every node at once equal brute force" {
	local i r
	place_up 0
	load_rows
	poll 10 held_sum_is 12
	for r in 1 2 3; do
		run -0 mv-index -a "${ADDR[1]}" things --type Flat
		for i in 1 2 3; do
			search_ok "$i" || fail "round $r: indexed search through node $i"
		done
		# The segments the index covered are units again, each on one
		# node, which must serve it as soon as it has applied the drop.
		run -0 mv-index -a "${ADDR[$((r % 3 + 1))]}" things --drop
		for i in 3 2 1; do
			search_ok "$i" || fail "round $r: search through node $i after the drop"
		done
	done
}

@test "num_replicas=0: an index replaced by one that covers fewer segments: searches through every node at once equal brute force" {
	local i build
	# Node 1's builds pause 3 s after taking their segments.
	export MV_TEST_PAUSE_BUILD=3000
	node_up 1 --num_replicas=0 --auto_compact=false
	unset MV_TEST_PAUSE_BUILD
	node_up 2 --num_replicas=0 --auto_compact=false
	node_up 3 --num_replicas=0 --auto_compact=false
	load_rows
	poll 10 held_sum_is 12
	# Node 1 builds over the 12 segments; meanwhile a 13th, and node 2's
	# index over all 13, which node 1's then replaces.
	mv-index -q -a "${ADDR[1]}" things --type Flat 3>&- &
	build=$!
	poll 20 grep -q "test pause: MV_TEST_PAUSE_BUILD, " \
		"$BATS_TEST_TMPDIR/n1.log" || fail "the build did not start"
	awk '{ $1 = $1 + 5000; print }' "$BATS_TEST_TMPDIR/rows.txt" |
		sed -n 1,150p >"$BATS_TEST_TMPDIR/more.txt"
	mv-insert -q -a "${ADDR[3]}" --ids-first things "$BATS_TEST_TMPDIR/more.txt"
	run -0 mv-index -a "${ADDR[2]}" things --type Flat
	cat "$BATS_TEST_TMPDIR/more.txt" >>"$BATS_TEST_TMPDIR/rows.txt"
	want_exact
	for i in 1 2 3; do
		search_ok "$i" || fail "search through node $i, node 2's index"
	done
	wait "$build" || fail "node 1's build failed"
	# The 13th segment is a unit again, on one node, which must serve
	# it as soon as it has applied node 1's index.
	for i in 3 2 1; do
		search_ok "$i" || fail "search through node $i, node 1's index"
	done
	# node 1's build took the 12 segments' rows
	run -0 mv-index -a "${ADDR[1]}" things --status
	assert_line state=done
	assert_line rows=1800
}

@test "num_replicas=0: a node stopped cleanly: its units move, and searches through the others wait for their new holders to load them, never 75" {
	local a b
	# The placers of nodes 1 and 3 pause 1.5 s before they load what
	# they newly hold (S3 slow, or a large unit).
	export MV_TEST_PAUSE_PLACE=1500
	node_up 1 --num_replicas=0 --auto_compact=false
	node_up 3 --num_replicas=0 --auto_compact=false
	unset MV_TEST_PAUSE_PLACE
	node_up 2 --num_replicas=0 --auto_compact=false
	load_rows
	poll 10 held_sum_is 12
	[ "$(held 2)" -gt 0 ] || skip "node 2 holds no unit (one run in 130)"
	# Node 2 stops: its lease revoked, its units go to nodes 1 and 3,
	# which are held up loading them.
	kill "${PID[2]}"
	wait "${PID[2]}" || true
	PID[2]=
	# Through both at once: whichever got a unit of node 2's is asked for
	# it by the other while its placer is held up.
	search_ok 1 &
	a=$!
	search_ok 3 &
	b=$!
	wait "$a" || fail "search through node 1 while the units move"
	wait "$b" || fail "search through node 3 while the units move"
	grep -q "test pause: MV_TEST_PAUSE_PLACE, " "$BATS_TEST_TMPDIR/n1.log" \
		"$BATS_TEST_TMPDIR/n3.log" || fail "no placer paused"
	poll 10 held_pair_is 1 3 12
}

@test "a node that cannot listen (its port taken) exits without joining: nothing is placed on it, searches through the others answer" {
	local i home=$BATS_TEST_TMPDIR/n4
	place_up 0
	load_rows
	poll 10 held_sum_is 12
	mkdir -p "$home"
	# Node 1's port: the fourth node has loaded everything when it
	# finds the port taken.
	run -78 --separate-stderr env MV_HOME="$home" mv-noded \
		--listen="${ADDR[1]}" --etcd="$ETCD" --cluster_id="$CID" \
		--user="$MV_USER" --data_dir="$home" \
		--s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" 3>&-
	assert_regex "$stderr" "in use"
	refute_regex "$stderr" "listening on"
	for i in 1 2 3; do
		search_ok "$i" || fail "search through node $i after the fourth node's start"
	done
}

@test "num_replicas=0: searches through the others while a node stops cleanly wait for its units' new holders, never 75" {
	local a b
	node_up 1 --num_replicas=0 --auto_compact=false
	node_up 2 --num_replicas=0 --auto_compact=false
	# Node 3's stop pauses 1 s once its live key is revoked and it has
	# stopped following the commit log (it refuses requests: behind).
	export MV_TEST_PAUSE_STOP=1000
	node_up 3 --num_replicas=0 --auto_compact=false
	unset MV_TEST_PAUSE_STOP
	load_rows
	poll 10 held_sum_is 12
	[ "$(held 3)" -gt 0 ] || skip "node 3 holds no unit (one run in 130)"
	for a in 1 2; do
		search_ok "$a" || fail "search through node $a"
	done
	kill "${PID[3]}"
	poll 10 grep -q "test pause: MV_TEST_PAUSE_STOP, " \
		"$BATS_TEST_TMPDIR/n3.log" || fail "node 3 did not pause"
	# A flush node 3 will never apply (far from every query).
	echo "9001 50 50 50 50 50 50 50 50" |
		mv-insert -q -a "${ADDR[1]}" --ids-first things
	search_ok 1 &
	a=$!
	search_ok 2 &
	b=$!
	wait "$a" || fail "search through node 1 while node 3 stops"
	wait "$b" || fail "search through node 2 while node 3 stops"
	wait "${PID[3]}" || true
	PID[3]=
}

# held_search_start: nodes 1 to 3 with num_replicas=0 and merges off,
# node 1's searches held 2.5 s (HELD_MS) between their own part and the others'
# (MV_TEST_PAUSE_FANOUT), load_rows' 12 segments loaded by their holders
# (node 2's searches are not held; a holder answers units= without
# fanning out); then a search of every row through node 1, in the
# background (SEARCH_PID, its hits in got), returning once it is held.
held_search_start() {
	MV_TEST_PAUSE_FANOUT=${HELD_MS:-2500} node_up 1 --num_replicas=0 --auto_compact=false
	node_up 2 --num_replicas=0 --auto_compact=false
	node_up 3 --num_replicas=0 --auto_compact=false
	load_rows
	echo "0 0 0 0 0 0 0 0" >"$BATS_TEST_TMPDIR/zero"
	poll 20 bash -c "[ \$(mv-search -a ${ADDR[2]} -k 2000 things $BATS_TEST_TMPDIR/zero | wc -l) = 1800 ]"
	mv-search -a "${ADDR[1]}" -k 2000 things "$BATS_TEST_TMPDIR/zero" \
		>"$BATS_TEST_TMPDIR/got" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	SEARCH_PID=$!
	poll 20 grep -q "test pause: MV_TEST_PAUSE_FANOUT, " "$BATS_TEST_TMPDIR/n1.log"
}

# held_search_whole: the held search ended well, with every row once.
held_search_whole() {
	wait "$SEARCH_PID" || fail "the search failed: $(cat "$BATS_TEST_TMPDIR/err")"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/got")" 1800
	assert_equal "$(cut -f3 "$BATS_TEST_TMPDIR/got" | sort -u | wc -l)" 1800
}

@test "num_replicas=0: every part of a search is cut at one flush: an upsert of every row committed during the fan-out shows each row once, never none" {
	held_search_start
	# Every row upserted through node 2 while node 1's search is held.
	awk '{ $2 = $2 + 10; print }' "$BATS_TEST_TMPDIR/rows.txt" |
		mv-insert -q -a "${ADDR[2]}" --ids-first --upsert things
	held_search_whole
	# After it, every row at its new version (squared norm over 81).
	run -0 mv-search -a "${ADDR[2]}" -k 2000 things "$BATS_TEST_TMPDIR/zero"
	assert_equal "${#lines[@]}" 1800
	assert_equal "$(cut -f4 <<<"$output" | awk '$1 < 81' | wc -l)" 0
}

@test "num_replicas=0: a merge committed during a search's fan-out: the units it merged away are searched in the merged one, every row once, never none" {
	held_search_start
	# Node 2 merges the 12 segments into one while it is held.
	run -0 mv-index -a "${ADDR[2]}" things --compact
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}8${T}l2${T}1800${T}1${T}"
	held_search_whole
}

@test "num_replicas=0: units that move to the searching node during its fan-out (a node stopped) are searched at the search's cut too: an upsert of every row meanwhile shows each row once" {
	HELD_MS=4000 held_search_start
	# Node 3 stops: its units move, some to node 1, which searches those
	# itself; every row is upserted through node 2 meanwhile.
	kill -TERM "${PID[3]}"
	wait "${PID[3]}" || true
	PID[3]=
	awk '{ $2 = $2 + 10; print }' "$BATS_TEST_TMPDIR/rows.txt" |
		mv-insert -q -a "${ADDR[2]}" --ids-first --upsert things
	held_search_whole
}

@test "num_replicas=0: a node restarted while flushes commit goes live only once it has applied them: searches through the others never wait on it" {
	local ins t0
	place_up 0
	load_rows
	poll 10 held_sum_is 12
	kill -TERM "${PID[2]}"
	wait "${PID[2]}" || true
	# Node 2 starts again.  While it loads (held 2 s between its read of
	# the commit log's revision and its reads of the files), node 1
	# flushes 150 rows more; its follower is then held 7 s before it
	# applies them (a large backlog, a slow store).
	python3 -c 'import random
random.seed(11)
for i in range(1801, 1951):
    print(i, " ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))
' >"$BATS_TEST_TMPDIR/more.txt"
	(
		poll 20 grep -q "test pause: MV_TEST_PAUSE_LOAD, " \
			"$BATS_TEST_TMPDIR/n2.log" &&
			mv-insert -q -a "${ADDR[1]}" --ids-first things \
				<"$BATS_TEST_TMPDIR/more.txt"
	) 3>&- &
	ins=$!
	MV_TEST_PAUSE_LOAD=2000 MV_TEST_PAUSE_FOLLOW=7000 node_start 2 \
		--num_replicas=0 --auto_compact=false
	wait "$ins" || fail "the flush through node 1 during node 2's load"
	poll 10 eval '[ "$(grep -c "listening on" "$BATS_TEST_TMPDIR/n2.log")" = 2 ]'
	cat "$BATS_TEST_TMPDIR/more.txt" >>"$BATS_TEST_TMPDIR/rows.txt"
	want_exact
	# Node 1 would have seen node 2's live key by now, had it been put.
	sleep 1
	grep -q "test pause: MV_TEST_PAUSE_FOLLOW, " "$BATS_TEST_TMPDIR/n2.log"
	grep -q "test pause: MV_TEST_PAUSE_FOLLOW over" \
		"$BATS_TEST_TMPDIR/n2.log" && fail "the follower's pause is over already"
	# Node 2 is not live yet: nodes 1 and 3 answer over every row at
	# once, without waiting for node 2 (before: 75 "node 2 behind" after
	# 5 s).
	t0=$(date +%s%N)
	search_ok 1 || fail "search through node 1 while node 2 catches up"
	search_ok 3 || fail "search through node 3 while node 2 catches up"
	[ $(($(date +%s%N) - t0)) -lt 3000000000 ] || fail "the searches waited"
	# Then node 2 goes live, serves its share, and answers itself.
	poll 20 grep -q "caught up with revision" "$BATS_TEST_TMPDIR/n2.log"
	poll 10 held_sum_is 13
	search_ok 2
	search_ok 1
}
