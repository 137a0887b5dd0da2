#!/usr/bin/env bats
# memory_limit and the design's Reduce mode: an embedded node refuses an
# INSERT past its memory_limit (ERR BUSY, exit 75, nothing kept) and takes
# inserts again once memory is freed; a node of a cluster past its limit
# relays the connection to the live node with the most room instead, so
# that the client's inserts, flush and named session go there, and fails
# with 75 only when no node has room.  Cluster nodes use etcd (this
# file's own) and a shared directory as storage (helpers/cluster.bash).

load helpers/mv
load helpers/cluster
load helpers/cluster_user

setup() {
	cluster_user_setup
	C=c$RANDOM
}

# node N LIMIT: cluster node N of user U with memory_limit LIMIT, told
# the master's address when one runs.
node() {
	start_cluster_node "$1" --user="$U" --memory_limit="$2" \
		${MASTER:+--master="$MASTER"}
}

master() {
	start_master --user="$U"
}

teardown() {
	mv_teardown
	cluster_teardown
}

# held ADDR: the bytes LOAD says the node holds (memory_limit's measure).
held() {
	printf 'LOAD\nQUIT\n' |
		python3 "$MV_HELPERS/mvgen.py" wire "$1" --idle 5 |
		sed -n 's/^OK .* held=\([0-9]*\) .*/\1/p'
}

# wire ADDR: the requests on stdin sent over one connection to ADDR; the
# answers (and payloads) on stdout.
wire() {
	python3 "$MV_HELPERS/mvgen.py" wire "$1" --idle 10
}

# rows_at ADDR NAME: flushed live rows of NAME through the node at ADDR.
rows_at() {
	mv-ls -a "$1" "$2" | cut -f4
}

# all_found ADDR NAME FILE: every vector of FILE ("id v...") is found
# through ADDR as its own nearest neighbour, under its id.
all_found() {
	local got
	got=$(cut -d' ' -f2- "$3" | mv-search -a "$1" -k 1 "$2" | cut -f3) ||
		return 1
	[ "$got" = "$(cut -d' ' -f1 "$3")" ]
}

# nodes_limited N...: the master's NODES limits lists each node N up
# with its limit (its heartbeat came).
nodes_limited() {
	local out n addrv
	out=$(master_says NODES limits) || return 1
	for n in "$@"; do
		addrv=NODE_$n
		grep -q "^${!addrv}${T}up${T}.*${T}[1-9][0-9]*\$" <<<"$out" ||
			return 1
	done
}

@test "embedded: an insert past memory_limit exits 75 and keeps nothing; reads go on; after a delete and merge, or a drop, inserts pass" {
	# No history kept: a merge then gives deleted rows back at once.
	start_own_node --memory_limit=64K --auto_compact=false \
		--history_retention=0
	run -0 mv-create "$C" --dim 16
	gen vecs 200 16 --ids-first 1 >small.txt
	gen vecs 2000 16 --ids-first 1000 >big.txt
	run -0 mv-insert --ids-first "$C" small.txt
	assert_rows "$C" 200
	h=$(held "unix:$MV_HOME/mv.sock")
	[ "$h" -ge 12800 ] || fail "LOAD says held=$h after 200 rows of 64 bytes"
	run -0 mv-stat --limits
	assert_output --regexp "^[^$T]+${T}up${T}[0-9]+${T}[0-9]+${T}1${T}$h${T}65536\$"
	run -75 --separate-stderr mv-insert --ids-first "$C" big.txt
	assert_regex "$stderr" "memory_limit=65536"
	grep -q "memory_limit=65536" "$MV_LOG" || fail "the refusal is not logged"
	assert_rows "$C" 200
	[ "$(held "unix:$MV_HOME/mv.sock")" = "$h" ] ||
		fail "the refused insert left bytes counted"
	# Reads keep working.
	run -0 all_found "unix:$MV_HOME/mv.sock" "$C" small.txt
	# 800 rows would pass the limit too, until a delete and the merge
	# that drops the deleted rows free memory.
	head -n 800 big.txt >part.txt
	run -75 mv-insert --ids-first "$C" part.txt
	cut -d' ' -f1 small.txt | head -n 150 | mv-delete "$C"
	run -0 bash -c "printf 'COMPACT $C\nQUIT\n' | python3 '$MV_HELPERS/mvgen.py' wire 'unix:$MV_HOME/mv.sock' --idle 5"
	assert_line -n 0 --regexp "^OK merged=1 segments=1$"
	assert_rows "$C" 50
	h2=$(held "unix:$MV_HOME/mv.sock")
	[ "$h2" -lt $((h / 2)) ] || fail "held=$h2 after the merge, $h before"
	run -0 mv-insert --ids-first "$C" part.txt
	assert_rows "$C" 850
	run -75 mv-insert --ids-first "$C" small.txt
	# A drop frees it all.
	run -0 mv-drop "$C"
	[ "$(held "unix:$MV_HOME/mv.sock")" = 0 ]
	run -0 mv-create "$C" --dim 16
	run -0 mv-insert --ids-first "$C" part.txt
	assert_rows "$C" 800
}

# insert_req NAME N FIRST: an INSERT of N vectors of dimension 16 with ids
# FIRST.. (raw wire bytes).
insert_req() {
	python3 - "$@" <<'EOF'
import struct, sys
name, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ids = b"".join(struct.pack("<q", first + i) for i in range(n))
vecs = b"".join(struct.pack("<16f", *[((first + i) * 16 + j) % 97 / 8.0
                                      for j in range(16)]) for i in range(n))
sys.stdout.buffer.write(b"INSERT %s %d ids %d\n" % (name.encode(), n,
                                                    len(ids) + len(vecs)))
sys.stdout.buffer.write(ids + vecs)
EOF
}

@test "cluster: node 1 past its memory_limit relays to node 2: a batch pending on node 1 stays there (BUSY), then inserts, flush and a session go through node 2" {
	master
	node 1 20K
	node 2 1G
	poll 10 nodes_limited 1 2 || { master_says NODES limits; false; }
	run -0 mv-stat -a "$MASTER" --limits --header
	assert_line -n 0 "address${T}state${T}load${T}memory${T}segments${T}held${T}limit"
	assert_line -n 1 --regexp "^$NODE_1${T}up${T}.*${T}20480\$"
	assert_line -n 2 --regexp "^$NODE_2${T}up${T}.*${T}1073741824\$"
	run -0 mv-create -a "$NODE_1" "$C" --dim 16
	# On the wire: the first INSERT fits; the second would pass the limit
	# with rows of the connection pending: BUSY, nothing of it kept; the
	# FLUSH commits the first on node 1; the next INSERT moves the
	# connection to node 2, whose answers the client gets.
	{
		insert_req "$C" 100 1
		insert_req "$C" 300 1001
		printf 'FLUSH\n'
		insert_req "$C" 300 2001
		printf 'FLUSH\nQUIT\n'
	} >req.bin
	run -0 wire "$NODE_1" <req.bin
	assert_line -n 0 "OK n=100"
	assert_line -n 1 --regexp "^ERR BUSY .*memory_limit=20480: this connection's unflushed rows stay whole on this node"
	assert_line -n 2 --regexp "^OK inserted=100 deleted=0 rev=[0-9]+$"
	assert_line -n 3 "OK n=300"
	assert_line -n 4 --regexp "^OK inserted=300 deleted=0 rev=[0-9]+$"
	assert_line -n 5 "OK"
	[ "${#lines[@]}" -eq 6 ]
	grep -q "goes on through node at $NODE_2" "$CLUSTER_DIR/cnode1.log"
	for n in 1 2; do
		addrv=NODE_$n
		run -0 rows_at "${!addrv}" "$C"
		assert_output 400
	done
	# A whole mv-insert through node 1 (past its limit now).
	gen vecs 300 16 --seed 3 --ids-first 3001 >a.txt
	run -0 mv-insert -a "$NODE_1" --ids-first "$C" a.txt
	[ "$(grep -c "goes on through node at $NODE_2" "$CLUSTER_DIR/cnode1.log")" -eq 2 ] ||
		fail "node 1 did not log the second relay"
	# Node 2 wrote the segments (its files carry its number).
	ls "$CLUSTER_DIR/shared/$U/"*/ | grep -q '^n2-' ||
		fail "no file of node 2 in storage"
	for n in 1 2; do
		addrv=NODE_$n
		run -0 rows_at "${!addrv}" "$C"
		assert_output 700
		run -0 all_found "${!addrv}" "$C" a.txt
	done
	# A named session: relayed, invisible until mv-flush through the master.
	gen vecs 100 16 --seed 2 --ids-first 5001 >s.txt
	run -0 mv-insert -a "$NODE_1" --session "s$C" --ids-first "$C" s.txt
	run -0 rows_at "$NODE_2" "$C"
	assert_output 700
	run -0 mv-flush -a "$MASTER" "s$C"
	for n in 1 2; do
		addrv=NODE_$n
		run -0 rows_at "${!addrv}" "$C"
		assert_output 800
	done
	run -0 all_found "$NODE_1" "$C" s.txt
}

@test "cluster without a master: every node past its memory_limit (asked with LOAD): exit 75, nothing stored; a node with room joins: it takes the insert" {
	unset MASTER
	node 1 1K
	node 2 1K
	run -0 mv-create -a "$NODE_1" "$C" --dim 16
	gen vecs 100 16 --ids-first 1 >a.txt
	run -75 --separate-stderr mv-insert -a "$NODE_1" --ids-first "$C" a.txt
	assert_regex "$stderr" "memory_limit=1024.*no other live node has room"
	run -0 rows_at "$NODE_2" "$C"
	assert_output 0
	run -0 rows_at "$NODE_1" "$C"
	assert_output 0
	# Node 3 has room: node 1 finds it through its live key and LOAD.
	node 3 1G
	run -0 mv-insert -a "$NODE_1" --ids-first "$C" a.txt
	grep -q "goes on through node at $NODE_3" "$CLUSTER_DIR/cnode1.log" ||
		fail "node 1 did not relay to node 3"
	ls "$CLUSTER_DIR/shared/$U/"*/ | grep -q '^n3-' ||
		fail "no file of node 3 in storage"
	run -0 rows_at "$NODE_2" "$C"
	assert_output 100
	run -0 all_found "$NODE_1" "$C" a.txt
}

@test "a relayed connection is never relayed back to a node it came through (VIA), nor through more than 8" {
	master
	node 1 1G
	node 2 1K
	poll 10 nodes_limited 1 2 || { master_says NODES limits; false; }
	run -0 mv-create -a "$NODE_1" "$C" --dim 16
	# As node 1 relays to node 2: VIA node 1 first.  Node 2 is past its
	# limit; node 1 has room but the connection came from there.
	{
		printf 'VIA %s\n' "$NODE_1"
		insert_req "$C" 100 1
		printf 'QUIT\n'
	} >req.bin
	run -0 wire "$NODE_2" <req.bin
	assert_line -n 0 "OK"
	assert_line -n 1 --regexp "^ERR BUSY .*memory_limit=1024: no other live node$"
	run -0 rows_at "$NODE_1" "$C"
	assert_output 0
	# Without VIA the same insert goes on through node 1.
	{
		insert_req "$C" 100 1
		printf 'FLUSH\nQUIT\n'
	} | wire "$NODE_2" >out.txt
	grep -q '^OK inserted=100 ' out.txt || fail "$(cat out.txt)"
	grep -q "goes on through node at $NODE_1\$" "$CLUSTER_DIR/cnode2.log"
	# Node 3 has room: a connection that came through node 1 goes there,
	# and node 3 is told it came through nodes 1 and 2.
	node 3 1G
	poll 10 nodes_limited 1 2 3 || { master_says NODES limits; false; }
	{
		printf 'VIA %s\n' "$NODE_1"
		insert_req "$C" 100 201
		printf 'FLUSH\nQUIT\n'
	} | wire "$NODE_2" >out.txt
	grep -q '^OK inserted=100 ' out.txt || fail "$(cat out.txt)"
	grep -qF "goes on through node at $NODE_3 (it came through $NODE_1)" \
		"$CLUSTER_DIR/cnode2.log"
	for n in 1 2 3; do
		addrv=NODE_$n
		run -0 rows_at "${!addrv}" "$C"
		assert_output 200
	done
	# Through 8 nodes already: not relayed again.
	{
		printf 'VIA h1:1,h2:2,h3:3,h4:4,h5:5,h6:6,h7:7,%s\n' "$NODE_1"
		insert_req "$C" 100 401
		printf 'QUIT\n'
	} >req.bin
	run -0 wire "$NODE_2" <req.bin
	assert_line -n 0 "OK"
	assert_line -n 1 --regexp "^ERR BUSY .*memory_limit=1024: the connection came through 8 nodes already"
	# Lists that are not one.
	for v in 'a,,b' ',a' 'a,' '1,2,3,4,5,6,7,8,9' 'a b'; do
		run -0 wire "$NODE_2" <<<"VIA $v"
		assert_output --regexp "^ERR PROTO"
	done
}
