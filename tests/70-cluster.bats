#!/usr/bin/env bats
# 70-cluster.bats - three mv-noded in cluster mode on a real etcd and a
# real S3 (Ceph RGW): the commit log is followed by every node, a flush is
# visible through every node as soon as it returns, a node killed and
# restarted catches up, and etcd going away stops writes (75) but not
# searches.  etcd is this file's own (it is stopped and started again);
# RGW is the run's (MV_TEST_S3_ENDPOINT...) or this file's.

load helpers/mv
load helpers/nodes3

setup_file() {
	nodes3_setup_file
}

teardown_file() {
	nodes3_teardown_file
}

# Every node holds every segment (num_replicas=2 of three): the tests
# here are about following the commit log; 73-place.bats is placement's.
setup() {
	nodes3_setup
	for i in 1 2 3; do
		node_up "$i" --num_replicas=2
	done
}

teardown() {
	[ -z "${PROXY:-}" ] || kill -- -"$PROXY" 2>/dev/null
	nodes3_teardown
	[ -z "${RGW_DIR:-}" ] || sh "$MV_ROOT/scripts/rgw.sh" stop "$RGW_DIR"
	# A test that failed with etcd stopped: the next ones need it.
	etcd_up >/dev/null 2>&1 || true
}

# The id of the nearest neighbour of vector "V" through node I.
nearest() {
	echo "$2" | mv-search -a "${ADDR[$1]}" -k 1 things | cut -f3
}

# brute_ok ADDR: the top 5 of each query of q.txt through ADDR are the
# brute-force ones in want.
brute_ok() {
	mv-search -a "$1" -k 5 things "$BATS_TEST_TMPDIR/q.txt" |
		cut -f1-3 >"$BATS_TEST_TMPDIR/got"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
}

# search_reqs N: N single-query SEARCHes of things (dim 4), one request
# file for mvgen.py wire.
search_reqs() {
	python3 -c 'import struct, sys
for i in range(int(sys.argv[1])):
    sys.stdout.buffer.write(b"SEARCH things 1 1 16\n" +
                            struct.pack("<4f", i % 9, 1, 1, 1))' "$1"
}

# revision_reads I: the etcd revision reads node I's reads waited for.
revision_reads() {
	mv-stat -a "${ADDR[$1]}" --io | cut -f7
}

@test "searches that arrive together share etcd revision reads; a flush that returned is still seen by the next search, under that load" {
	local d=$BATS_TEST_TMPDIR before after j r pids=()
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '100 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	search_reqs 200 >"$d/req.bin"
	before=$(revision_reads 2)
	for j in 1 2 3 4 5 6 7 8; do
		python3 "$MV_HELPERS/mvgen.py" wire "${ADDR[2]}" --idle 20 \
			<"$d/req.bin" >"$d/out.$j" &
		pids+=($!)
	done
	# Meanwhile: each flush through node 1 is found by the next search
	# through node 2.
	for r in 1 2 3 4 5; do
		printf '%d %d.5 %d 1 -%d\n' "$r" "$r" "$r" "$r" |
			mv-insert -q -a "${ADDR[1]}" --ids-first things
		[ "$(nearest 2 "$r.5 $r 1 -$r")" = "$r" ] ||
			fail "round $r: node 2 did not find it"
	done
	wait "${pids[@]}"
	after=$(revision_reads 2)
	for j in 1 2 3 4 5 6 7 8; do
		# Binary hits follow each answer line: count the lines' starts.
		[ "$(grep -ao 'OK nq=1 k=1 bytes=' "$d/out.$j" | wc -l)" = 200 ] ||
			fail "connection $j: $(grep -ao 'OK nq=1' "$d/out.$j" | wc -l) answers of 200"
	done
	# 1,600 SEARCHes and 5 searches: fewer reads than searches.
	echo "# revision reads: $((after - before)) for 1605 searches" >&3
	[ $((after - before)) -gt 0 ] && [ $((after - before)) -lt 1605 ] ||
		fail "$((after - before)) revision reads for 1605 searches"
}

@test "a flush through node 1 is searchable through nodes 2 and 3 as soon as it returns" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	run -0 mv-ls -a "${ADDR[3]}"
	assert_output --regexp "^things${T}4${T}l2${T}0${T}"
	for r in $(seq 1 8); do
		printf '%d %d.5 %d 1 -%d\n' "$r" "$r" "$r" "$r" |
			mv-insert -q -a "${ADDR[1]}" --ids-first things
		for i in 2 3; do
			got=$(nearest "$i" "$r.5 $r 1 -$r")
			[ "$got" = "$r" ] || fail "round $r: node $i found '$got'"
		done
	done
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}4${T}l2${T}8${T}"
	# Deletes and drops travel too, from any node to every other.
	echo 7 | mv-delete -q -a "${ADDR[3]}" things
	[ "$(nearest 1 '7.5 7 1 -7')" != 7 ] || fail "delete not seen by node 1"
	run -0 mv-drop -a "${ADDR[2]}" things
	run -1 mv-ls -a "${ADDR[1]}" things
	# A collection created through one node is there at once for writes
	# through another, and dropped through a third.
	for r in 1 2 3 4 5; do
		mv-create -q -a "${ADDR[1]}" "c$r" --dim 2
		echo "1 $r" | mv-insert -q -a "${ADDR[2]}" "c$r"
		echo 0 | mv-delete -q -a "${ADDR[3]}" "c$r"
		mv-drop -q -a "${ADDR[3]}" "c$r"
		mv-create -q -a "${ADDR[2]}" "c$r" --dim 3
	done
	run -0 mv-ls -a "${ADDR[1]}"
	assert_output --partial "c5${T}3${T}l2${T}0"
}

@test "a named session on one node stays invisible everywhere until mv-flush returns" {
	run -0 mv-create -a "${ADDR[2]}" things --dim 4
	echo '100 1 2 3 4' | mv-insert -q -a "${ADDR[2]}" --ids-first \
		--session s1 things
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only \
		"/${MV_USER}/${CID}_property/session/s1"
	assert_output --partial '"no":'
	for i in 1 2 3; do
		run -0 mv-ls -a "${ADDR[$i]}" things
		assert_output --regexp "^things${T}4${T}l2${T}0${T}"
	done
	run -0 mv-flush -a "${ADDR[2]}" s1
	for i in 1 3; do
		[ "$(nearest "$i" '1 2 3 4')" = 100 ] || fail "node $i"
	done
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only \
		"/${MV_USER}/${CID}_property/session/s1"
	assert_output ""
	# Every node's live key, with its address; a clean stop takes its
	# own away at once (its lease is revoked).
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only --prefix \
		"/${MV_USER}/${CID}_property/live/"
	for i in 1 2 3; do
		assert_output --partial "\"addr\":\"${ADDR[$i]}\""
	done
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only \
		"/${MV_USER}/${CID}_property"
	assert_output --regexp '^\{"format":1,"nodes":\[\{"no":[123],"addr":'
	kill -TERM "${PID[3]}"
	wait "${PID[3]}"
	PID[3]=
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only --prefix \
		"/${MV_USER}/${CID}_property/live/"
	refute_output --partial "${ADDR[3]}"
	assert_output --partial "${ADDR[1]}"
}

@test "exact search through each node and through a master equals brute force over all the data" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 8
	# Three batches of random rows, one through each node.
	for i in 1 2 3; do
		python3 -c 'import random, sys
random.seed(int(sys.argv[1]))
for r in range(200):
    print(" ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))' "$i" \
			>"$BATS_TEST_TMPDIR/d$i.txt"
		mv-insert -q -a "${ADDR[$i]}" --print-ids things \
			"$BATS_TEST_TMPDIR/d$i.txt" >"$BATS_TEST_TMPDIR/ids$i"
	done
	python3 -c 'import random
random.seed(99)
for r in range(20):
    print(" ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))' \
		>"$BATS_TEST_TMPDIR/q.txt"
	# Each node assigns ids from its own block: take them as printed.
	python3 -c 'import sys
rows, ids = [], []
for i in "123":
    rows += [list(map(float, l.split())) for l in open(sys.argv[1] + "/d" + i + ".txt")]
    ids += [int(l) for l in open(sys.argv[1] + "/ids" + i)]
assert len(rows) == len(ids) == 600 and len(set(ids)) == 600
for qi, l in enumerate(open(sys.argv[1] + "/q.txt")):
    q = list(map(float, l.split()))
    d = sorted((sum((a - b) ** 2 for a, b in zip(q, r)), i)
               for i, r in zip(ids, rows))
    for rank, (dist, i) in enumerate(d[:5]):
        print(qi, rank + 1, i, sep="\t")' "$BATS_TEST_TMPDIR" \
		>"$BATS_TEST_TMPDIR/want"
	for i in 1 2 3; do
		brute_ok "${ADDR[$i]}" || fail "node $i differs from brute force"
	done
	# One master in front of the three: it lists them up, and a search
	# through it (sent to any of them) is brute force too.
	local master=127.0.0.1:$(free_ports 1)
	mv-masterd --listen="$master" --etcd="$ETCD" --cluster_id="$CID" \
		--user="$MV_USER" </dev/null >>"$BATS_TEST_TMPDIR/n9.log" 2>&1 3>&- &
	PID[9]=$!
	poll 10 bash -c "[ \"\$(mv-stat -a $master | cut -f2 | grep -c '^up$')\" = 3 ]"
	for i in 1 2 3; do
		brute_ok "$master" ||
			fail "search $i through the master differs from brute force"
	done
}

@test "a node killed with SIGKILL: the others keep answering; restarted, it catches up" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	kill -KILL "${PID[3]}"
	wait "${PID[3]}" 2>/dev/null || true
	PID[3]=
	echo '2 2 2 2 2' | mv-insert -q -a "${ADDR[2]}" --ids-first things
	[ "$(nearest 1 '2 2 2 2')" = 2 ] || fail "node 1"
	[ "$(nearest 2 '1 1 1 1')" = 1 ] || fail "node 2"
	run -69 mv-ls -a "${ADDR[3]}"
	node_up 3 --num_replicas=2
	[ "$(nearest 3 '2 2 2 2')" = 2 ] || fail "node 3 did not catch up"
	echo '3 3 3 3 3' | mv-insert -q -a "${ADDR[3]}" --ids-first things
	[ "$(nearest 1 '3 3 3 3')" = 3 ] || fail "node 1 after node 3's flush"
	grep -q "joined cluster '$CID' as node" "$BATS_TEST_TMPDIR/n3.log"
}

@test "uploads a node killed mid-stream left in S3 are aborted when it starts again; another node's are not" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	# The collection's directory in the bucket: <user>/<name>-<token>.
	run -0 etcdctl --endpoints="$ETCD" get --print-value-only \
		"/$MV_USER/things/schema"
	local token dir no
	token=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' <<<"$output")
	[ -n "$token" ]
	dir=$MV_USER/things-$token
	no=$(sed -n "s/.*joined cluster '$CID' as node \([0-9]*\).*/\1/p" \
		"$BATS_TEST_TMPDIR/n3.log")
	[ -n "$no" ]
	kill -KILL "${PID[3]}"
	wait "${PID[3]}" 2>/dev/null || true
	PID[3]=
	# What a kill during a large flush leaves: an upload begun, a part
	# sent, never completed nor aborted; and one of another node's.
	python3 "$MV_ROOT/tests/helpers/s3uploads.py" start "$dir/n$no-1-dead.vec"
	python3 "$MV_ROOT/tests/helpers/s3uploads.py" start "$dir/n$((no + 7))-1-busy.vec"
	run -0 python3 "$MV_ROOT/tests/helpers/s3uploads.py" list "$dir/"
	assert_equal "${#lines[@]}" 2
	node_up 3 --num_replicas=2
	run -0 python3 "$MV_ROOT/tests/helpers/s3uploads.py" list "$dir/"
	assert_output "$dir/n$((no + 7))-1-busy.vec"
	grep -q "aborted 1 unfinished uploads of this node's" "$BATS_TEST_TMPDIR/n3.log"
	python3 "$MV_ROOT/tests/helpers/s3uploads.py" abort "$dir/"
	[ "$(nearest 3 '1 1 1 1')" = 1 ]
}

@test "etcd stopped: a write exits 75, searches answer; etcd back: writes work again" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	# Nodes 2 and 3 hold it (a read waits until its node applied the
	# flush): what they hold is what they answer from without etcd.
	[ "$(nearest 2 '1 1 1 1')" = 1 ]
	[ "$(nearest 3 '1 1 1 1')" = 1 ]
	url=$ETCD
	etcd_down
	run -75 --separate-stderr mv-insert -a "${ADDR[1]}" --ids-first \
		things <<<'2 2 2 2 2'
	assert_regex "$stderr" "etcd"
	run -75 --separate-stderr mv-index -a "${ADDR[1]}" things --type Flat
	assert_regex "$stderr" "etcd"
	[ "$(nearest 2 '1 1 1 1')" = 1 ] || fail "node 2 stopped answering"
	[ "$(nearest 3 '1 1 1 1')" = 1 ] || fail "node 3 stopped answering"
	etcd_up
	[ "$ETCD" = "$url" ] || fail "etcd came back on another URL"
	echo '3 3 3 3 3' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	for i in 1 2 3; do
		[ "$(nearest "$i" '3 3 3 3')" = 3 ] || fail "node $i"
		[ "$(nearest "$i" '2 2 2 2')" != 2 ] || fail "the failed write shows"
	done
	# The failed flush's files, kept while etcd could not say whether it
	# committed, go once it answers that it did not.
	for _ in $(seq 50); do
		grep -q 'a flush that did not commit: its 1 files removed' \
			"$BATS_TEST_TMPDIR/n1.log" && break
		sleep 0.1
	done
	grep -q 'a flush that did not commit: its 1 files removed' \
		"$BATS_TEST_TMPDIR/n1.log"
}

# s3_proxy_up PORT: a proxy from PORT to S3, its pid in PROXY (setsid:
# socat and the children serving open connections in a group of their
# own, which s3_proxy_down stops).
s3_proxy_up() {
	setsid socat "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr" \
		"TCP:${MV_TEST_S3_ENDPOINT#http://}" &
	PROXY=$!
}

s3_proxy_down() {
	kill -- -"$PROXY"
	wait "$PROXY" 2>/dev/null || true
}

# node_via_proxy I PORT [FLAG...]: node I started again, reaching S3
# through a proxy on PORT (s3_proxy_up).
node_via_proxy() {
	local i=$1 p=$2
	shift 2
	s3_proxy_up "$p"
	MV_TEST_S3_ENDPOINT=http://127.0.0.1:$p node_restart "$i" "$@"
}

# node_restart I [FLAG...]: stop node I, then node_up it again with these
# flags (and the caller's environment).
node_restart() {
	kill "${PID[$1]}"
	wait "${PID[$1]}" || true
	node_up "$@"
}

@test "S3 unreachable: a write exits 75 and leaves nothing, searches answer; S3 back: writes work again" {
	local p
	# Node 1 reaches S3 through a proxy that this test stops and starts.
	p=$(free_ports 1)
	node_via_proxy 1 "$p" --num_replicas=2
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	s3_proxy_down
	run -75 --separate-stderr mv-insert -a "${ADDR[1]}" --ids-first \
		things <<<'2 2 2 2 2'
	assert_regex "$stderr" "s3|S3"
	# An index build writes a file too: 75, and no index.
	run -75 --separate-stderr mv-index -a "${ADDR[1]}" things --type Flat
	assert_regex "$stderr" "index build failed: .*(s3|S3)"
	run -0 mv-ls -a "${ADDR[1]}" things
	assert_output --regexp "${T}-\$"
	[ "$(nearest 1 '1 1 1 1')" = 1 ] || fail "node 1 stopped answering"
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}4${T}l2${T}1${T}"
	s3_proxy_up "$p"
	sleep 0.2
	echo '3 3 3 3 3' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	for i in 1 2 3; do
		[ "$(nearest "$i" '3 3 3 3')" = 3 ] || fail "node $i"
		[ "$(nearest "$i" '2 2 2 2')" != 2 ] || fail "the failed write shows"
	done
	s3_proxy_down
	PROXY=
}

@test "radosgw stopped: every node's writes exit 75, searches answer; radosgw started again: writes work, nothing restarted" {
	local i
	# An RGW of this test's own, the one it stops: the run's serves the
	# other tests meanwhile.  The three nodes go over to it.
	sh "$MV_ROOT/scripts/rgw.sh" start "$BATS_TEST_TMPDIR/rgw" \
		>"$BATS_TEST_TMPDIR/rgw.env"
	RGW_DIR=$BATS_TEST_TMPDIR/rgw
	for i in 1 2 3; do
		kill "${PID[$i]}"
		wait "${PID[$i]}" || true
	done
	# (a test's environment is its own: the next tests keep the run's)
	set -a
	. "$BATS_TEST_TMPDIR/rgw.env"
	set +a
	for i in 1 2 3; do
		node_up "$i" --num_replicas=2
	done
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	sh "$MV_ROOT/scripts/rgw.sh" pause "$RGW_DIR"
	for i in 1 2 3; do
		run -75 --separate-stderr mv-insert -a "${ADDR[$i]}" --ids-first \
			things <<<"$((i + 1)) 2 2 2 2"
		assert_regex "$stderr" "s3|S3"
		[ "$(nearest "$i" '1 1 1 1')" = 1 ] || fail "node $i stopped answering"
	done
	run -0 mv-ls -a "${ADDR[3]}" things
	assert_output --regexp "^things${T}4${T}l2${T}1${T}"
	sh "$MV_ROOT/scripts/rgw.sh" resume "$RGW_DIR"
	for i in 1 2 3; do
		echo "$((i + 10)) 3 3 3 $i" | mv-insert -q -a "${ADDR[$i]}" --ids-first things
	done
	for i in 1 2 3; do
		[ "$(nearest "$i" '3 3 3 2')" = 12 ] || fail "node $i"
		[ "$(nearest "$i" '2 2 2 2')" != 2 ] || fail "a failed write shows"
	done
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}4${T}l2${T}4${T}"
}

@test "S3 unreachable while a follower reads another node's segment: nothing applied, reads wait (75); S3 back: applied once" {
	local p
	# Node 2 reaches S3 through a proxy, and its follower's store read of
	# another node's vector file is held 3 s (MV_TEST_PAUSE_APPLY): the
	# proxy goes away meanwhile, so the read fails (follow.c's read_ahead).
	p=$(free_ports 1)
	MV_TEST_PAUSE_APPLY=3000 node_via_proxy 2 "$p" --num_replicas=2
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	run -0 mv-ls -a "${ADDR[2]}" things
	gen vecs 30 4 --seed 31 --ids-first 1 >"$BATS_TEST_TMPDIR/a.txt"
	gen vecs 2 4 --seed 32 >"$BATS_TEST_TMPDIR/q.txt"
	run -0 mv-insert -a "${ADDR[1]}" --ids-first things "$BATS_TEST_TMPDIR/a.txt"
	poll 20 grep -q "test pause: MV_TEST_PAUSE_APPLY, " "$BATS_TEST_TMPDIR/n2.log" ||
		fail "node 2 did not start reading node 1's segment"
	s3_proxy_down
	# the read fails once the pause is over: the revision is not applied,
	# and a read through node 2 waits for it, then says so
	poll 30 grep -q "things.*unreachable.*trying again" "$BATS_TEST_TMPDIR/n2.log" ||
		fail "node 2's read of node 1's segment did not fail as unreachable"
	run -75 --separate-stderr mv-ls -a "${ADDR[2]}" things
	assert_regex "$stderr" "behind"
	s3_proxy_up "$p"
	# applied once, whole: every row once, exact search = brute force
	poll 30 mv-ls -a "${ADDR[2]}" things >/dev/null 2>&1
	run -0 mv-get -a "${ADDR[2]}" things --all
	assert_equal "${#lines[@]}" 30
	assert_equal "$(cut -f1 <<<"$output" | sort -u | wc -l)" 30
	awk_knn "$BATS_TEST_TMPDIR/a.txt" "$BATS_TEST_TMPDIR/q.txt" 30 l2 \
		>"$BATS_TEST_TMPDIR/want.tsv"
	mv-search -a "${ADDR[2]}" -k 30 things "$BATS_TEST_TMPDIR/q.txt" \
		>"$BATS_TEST_TMPDIR/got.tsv"
	diff "$BATS_TEST_TMPDIR/want.tsv" "$BATS_TEST_TMPDIR/got.tsv"
	s3_proxy_down
	PROXY=
}

@test "an index build, a drop and a merge through a node still applying a flush act on that flush" {
	# Node 2's follower takes 1.5 s over each of node 1's vector files
	# (MV_TEST_PAUSE_APPLY): a build asked of it right after a flush
	# through node 1 returned must wait for that flush, not index what
	# node 2 had applied so far (nothing: "no flushed rows to index").
	MV_TEST_PAUSE_APPLY=1500 node_restart 2 --num_replicas=2
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	run -0 mv-ls -a "${ADDR[2]}" things
	gen vecs 30 4 --seed 41 --ids-first 1 >"$BATS_TEST_TMPDIR/a.txt"
	run -0 mv-insert -a "${ADDR[1]}" --ids-first things "$BATS_TEST_TMPDIR/a.txt"
	run -0 mv-index -a "${ADDR[2]}" things --type Flat
	run -0 mv-index -a "${ADDR[2]}" things --status
	assert_line "state=done"
	assert_line "rows=30"
	# A drop through node 2 right after node 1's build returned finds
	# that build's index (it is not "no index" there).
	gen vecs 30 4 --seed 42 --ids-first 31 >"$BATS_TEST_TMPDIR/b.txt"
	run -0 mv-insert -a "${ADDR[1]}" --ids-first things "$BATS_TEST_TMPDIR/b.txt"
	run -0 mv-index -a "${ADDR[1]}" things --type HNSW32
	run -0 mv-index -a "${ADDR[2]}" things --drop
	run -0 mv-ls -a "${ADDR[3]}" things
	assert_output --regexp "^things${T}4${T}l2${T}60${T}[0-9]+${T}-$"
	# A merge through node 2 right after a flush through node 1 takes
	# that flush's segment in too: one segment holds all 90 rows.
	gen vecs 30 4 --seed 43 --ids-first 61 >"$BATS_TEST_TMPDIR/c.txt"
	run -0 mv-insert -a "${ADDR[1]}" --ids-first things "$BATS_TEST_TMPDIR/c.txt"
	run -0 mv-index -a "${ADDR[2]}" things --compact
	run -0 mv-ls -a "${ADDR[3]}" things
	assert_output --regexp "^things${T}4${T}l2${T}90${T}1${T}-$"
}

@test "DELETE filter= through a node still applying a flush deletes that flush's matching rows too" {
	MV_TEST_PAUSE_APPLY=1500 node_restart 2 --num_replicas=2
	run -0 mv-create -a "${ADDR[1]}" things --dim 2 --field n:int64
	run -0 mv-ls -a "${ADDR[2]}" things
	for i in $(seq 1 10); do
		printf '{"id":%d,"vector":[%d,1],"n":%d}\n' "$i" "$i" "$i"
	done | mv-insert -q -a "${ADDR[1]}" --format jsonl things
	# On the wire (mv-delete asks DESCRIBE first, which waits already).
	printf 'USER %s\nDELETE things filter=n<=4\nFLUSH\n' "$MV_USER" |
		python3 "$MV_HELPERS/mvgen.py" wire "${ADDR[2]}" >"$BATS_TEST_TMPDIR/out"
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_line "OK n=4"
	assert_line --regexp "^OK inserted=0 deleted=4( |$)"
	run -0 mv-get -a "${ADDR[3]}" things --all --fields n
	assert_equal "$(cut -f1 <<<"$output" | sort -n | tr '\n' ' ')" "5 6 7 8 9 10 "
}

@test "an index built and a merge made on one node are used by the others; a second node on a data_dir refuses" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 8
	for i in 1 2 3; do
		python3 -c 'import random, sys
random.seed(int(sys.argv[1]))
for r in range(300):
    print(" ".join("%.4f" % random.uniform(-1, 1) for _ in range(8)))' "$i" \
			>"$BATS_TEST_TMPDIR/d$i.txt"
		mv-insert -q -a "${ADDR[$i]}" things "$BATS_TEST_TMPDIR/d$i.txt"
	done
	head -n 5 "$BATS_TEST_TMPDIR/d2.txt" >"$BATS_TEST_TMPDIR/q.txt"
	mv-search -a "${ADDR[3]}" -k 3 things "$BATS_TEST_TMPDIR/q.txt" \
		>"$BATS_TEST_TMPDIR/exact"
	run -0 mv-index -a "${ADDR[2]}" things --compact
	run -0 mv-index -a "${ADDR[2]}" things --type HNSW32
	for i in 1 3; do
		run -0 mv-ls -a "${ADDR[$i]}" things
		assert_output --regexp "^things${T}8${T}l2${T}900${T}1${T}HNSW32"
		mv-search -a "${ADDR[$i]}" -k 3 things "$BATS_TEST_TMPDIR/q.txt" \
			>"$BATS_TEST_TMPDIR/got$i"
		# The queries are rows: each finds itself first, at distance 0.
		diff <(cut -f1-3 "$BATS_TEST_TMPDIR/exact" | awk '$2 == 1') \
			<(cut -f1-3 "$BATS_TEST_TMPDIR/got$i" | awk '$2 == 1') ||
			fail "node $i"
	done
	run -75 --separate-stderr timeout 10 mv-noded \
		--listen=127.0.0.1:1 --etcd="$ETCD" --cluster_id="$CID" \
		--data_dir="$BATS_TEST_TMPDIR/n2" \
		--s3_endpoint="$MV_TEST_S3_ENDPOINT" --s3_bucket="$MV_TEST_S3_BUCKET"
	assert_regex "$stderr" "in use by another process"
}

@test "SIGKILL of the writer during flushes: each flush is whole or absent on every node" {
	local r pid rc base nd acked=()
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	for r in $(seq 1 8); do
		base=$((r * 10000))
		# 3,000 rows in one flush; node 1 is killed at a random point
		# of the insert, its flush or just after.
		python3 -c 'import sys
b = int(sys.argv[1])
for i in range(3000):
    print(b + i, i % 7, i % 5, 1, -1)' "$base" >"$BATS_TEST_TMPDIR/in"
		mv-insert -q -a "${ADDR[1]}" --ids-first things \
			<"$BATS_TEST_TMPDIR/in" 2>/dev/null &
		pid=$!
		sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", r % 300 / 1000 }')"
		kill -9 "${PID[1]}"
		wait "${PID[1]}" 2>/dev/null || true
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" -eq 0 ] && acked+=("$r")
		node_up 1 --num_replicas=2
	done
	echo "flushes that returned 0: ${acked[*]:-none}" >&3
	# Every node: per round, all 3,000 rows or none; every flush that
	# returned 0 whole.
	for nd in 1 2 3; do
		run -0 mv-get -q -a "${ADDR[$nd]}" --all things
		printf '%s\n' "$output" | cut -f1 >"$BATS_TEST_TMPDIR/ids$nd"
		echo "node $nd: $(wc -l <"$BATS_TEST_TMPDIR/ids$nd") rows" >&3
		run python3 -c 'import sys, collections
c = collections.Counter(int(l) // 10000 for l in open(sys.argv[1]) if l.strip())
acked = set(int(x) for x in sys.argv[2:])
bad = [r for r, k in c.items() if k != 3000]
miss = [r for r in acked if c[r] != 3000]
print("partial" if bad else "", [(r, c[r]) for r in bad], "missing" if miss else "", miss)
sys.exit(1 if bad or miss else 0)' "$BATS_TEST_TMPDIR/ids$nd" "${acked[@]}"
		[ "$status" -eq 0 ] || {
			echo "node $nd: $output" >&2
			return 1
		}
	done
	# The three nodes hold the same rows.
	cmp "$BATS_TEST_TMPDIR/ids1" "$BATS_TEST_TMPDIR/ids2"
	cmp "$BATS_TEST_TMPDIR/ids1" "$BATS_TEST_TMPDIR/ids3"
}

@test "a merge on one node never shows the other nodes a row twice" {
	local r i
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	for r in 1 2; do
		# 12 small flushes of 40 distinct rows, then a merge on node 1
		# while node 2 searches for every row, again and again.
		for i in $(seq 1 12); do
			python3 -c 'import sys
b = int(sys.argv[1])
for i in range(40):
    print(b + i, (b + i) % 13, i % 7, 1, -1)' "$(( (r * 100 + i) * 1000 ))" |
				mv-insert -q -a "${ADDR[1]}" --ids-first things
		done
		# Until the merge returned on node 1, then 30 more searches
		# (node 2 applies it from the commit log meanwhile).
		rm -f "$BATS_TEST_TMPDIR/merged"
		(
			n=0
			while [ ! -f "$BATS_TEST_TMPDIR/merged" ] || [ $n -lt 30 ]; do
				[ ! -f "$BATS_TEST_TMPDIR/merged" ] || n=$((n + 1))
				echo "0 0 0 0" | mv-search -a "${ADDR[2]}" -k 2000 things |
					cut -f3 | sort | uniq -d
			done
		) >"$BATS_TEST_TMPDIR/dups$r" &
		local watcher=$!
		run -0 mv-index -a "${ADDR[1]}" things --compact
		touch "$BATS_TEST_TMPDIR/merged"
		wait "$watcher"
		[ ! -s "$BATS_TEST_TMPDIR/dups$r" ] ||
			fail "round $r: node 2 returned ids twice: $(head -c 200 "$BATS_TEST_TMPDIR/dups$r")"
	done
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}4${T}l2${T}960${T}"
}

@test "two clusters on one etcd, with their own users and storage, see only their own collections" {
	run -0 mv-create -a "${ADDR[1]}" things --dim 2
	echo "1 2" | mv-insert -q -a "${ADDR[1]}" things
	# Cluster Y: another cluster id and user, segments in a directory.
	local uy=y$MV_USER port home=$BATS_TEST_TMPDIR/y
	port=$(free_ports 1)
	mkdir -p "$home" "$BATS_TEST_TMPDIR/ystore"
	MV_HOME=$home mv-noded --listen=127.0.0.1:$port --etcd="$ETCD" \
		--cluster_id="y$CID" --user="$uy" --data_dir="$home" \
		--s3_endpoint="file:$BATS_TEST_TMPDIR/ystore" \
		</dev/null >>"$home.log" 2>&1 3>&- &
	PID[4]=$!
	for _ in $(seq 1 200); do
		answers "127.0.0.1:$port" && break
		kill -0 "${PID[4]}" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "${PID[4]}" 2>/dev/null ||
		fail "cluster Y's node did not start: $(tail -n 5 "$home.log")"
	run -0 mv-create -a "127.0.0.1:$port" -u "$uy" mine --dim 2
	echo "3 4" | mv-insert -q -a "127.0.0.1:$port" -u "$uy" mine
	run -0 mv-ls -a "127.0.0.1:$port" -u "$uy"
	assert_output --regexp "^mine${T}2${T}l2${T}1${T}"
	# Neither cluster serves the other's collections.
	run -1 mv-ls -a "127.0.0.1:$port" things
	run -0 mv-ls -a "127.0.0.1:$port"
	assert_output ''
	run -0 mv-ls -a "${ADDR[2]}" -u "$uy"
	assert_output ''
	# Both restart (each loads only its own), and X's data is whole.
	kill "${PID[4]}" "${PID[2]}"
	wait "${PID[4]}" "${PID[2]}" || :
	node_up 2 --num_replicas=2
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}2${T}l2${T}1${T}"
	run -0 mv-ls -a "${ADDR[2]}" -u "$uy"
	assert_output ''
	# Words, not bare digits: "404" also matched a port in "listening on".
	run -1 grep -E 'cannot|failed|\b404\b' "$BATS_TEST_TMPDIR/n2.log"
}
