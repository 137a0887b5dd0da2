#!/usr/bin/env bats
# mv-masterd with a real etcd and real mv-noded processes: the nodes'
# LOAD, the master's verbs, least-loaded routing, heartbeats (a killed
# node is down, then up again), a restart of the master, nodes joining
# through the watch, the allow-list, named sessions, and tools that ask
# the master again when a node does not answer.  The nodes are embedded
# ones on TCP ports, registered by the tests with the membership keys of
# the cluster contract (helpers/cluster.bash).

load helpers/mv
load helpers/cluster

setup_file() {
	cluster_setup_file
}

teardown_file() {
	cluster_teardown_file
}

setup() {
	cluster_test_setup
}

teardown() {
	cluster_teardown
}

# own_user_node1: a user of the test's own (one etcd serves the file, a
# user one cluster: U, its property PROP), node 1 and a master, node 1
# up; BEFORE, the property then.
own_user_node1() {
	U=u${BATS_TEST_NUMBER}x$RANDOM
	PROP=/$U/${CLUSTER}_property
	start_cluster_node 1 --user="$U"
	start_master --user="$U"
	poll 5 state_is "$NODE_1" up
	BEFORE=$(ectl get --print-value-only "$PROP")
}

# no_stray_member: after a node refused to start, nothing joined: the
# property is BEFORE, and node 1 is the one node listed, up.
no_stray_member() {
	refute_output --partial "joined cluster"
	run -0 ectl get --print-value-only "$PROP"
	assert_output "$BEFORE"
	run -0 mv-stat -a "$MASTER"
	assert_output --regexp "^$NODE_1${T}up${T}"
	assert_equal "${#lines[@]}" 1
}

# A node that answers the master's heartbeat with load 0 but accepts no
# other connection: the master sends clients there, and they find nobody.
start_fake_node() {
	local no=$1 pid pf=$CLUSTER_DIR/fake-$1.port
	rm -f "$pf"
	# It takes a port of its own (bind to 0) and names it in $pf once it
	# listens: a port picked before (free_port) could be taken meanwhile
	# by another test's connection, and then it had nowhere to listen.
	python3 - "$no" "$pf" >>"$CLUSTER_DIR/fake.log" 2>&1 3>&- <<'EOF' &
import os, socket, sys
no, pf = sys.argv[1], sys.argv[2]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
with open(pf + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(pf + ".tmp", pf)
c, _ = ls.accept()		# the master's heartbeat connection
ls.close()			# every later connection is refused
f = c.makefile("rwb")
for line in f:
    if line.strip() == b"LOAD":
        f.write(b"OK no=%s load=0 conns=0 mem=0 segments=0 applied=0\n" % no.encode())
        f.flush()
EOF
	pid=$!
	echo "$pid" >>"$CLUSTER_DIR/pids"
	# python's start took over 5 s on a loaded machine.
	poll 30 test -s "$pf" ||
		fail "the fake node did not listen (pid $pid $(_alive "$pid" && echo alive || echo gone)): $(cat "$CLUSTER_DIR/fake.log")"
	FAKE=127.0.0.1:$(cat "$pf")
}

@test "LOAD answers the node's number, load, connections, memory, segments and applied revision" {
	start_tcp_node 4
	run -0 mv-create -a "$NODE_4" "$C" --dim 2
	run -0 mv-insert -a "$NODE_4" "$C" < <(printf '1 2\n3 4\n')
	run -0 bash -c "printf 'LOAD\nQUIT\n' | python3 '$MV_HELPERS/mvgen.py' wire '$NODE_4' --idle 5"
	assert_line -n 0 --regexp '^OK no=4 load=1 conns=1 mem=[1-9][0-9]* segments=1 applied=0 held=[1-9][0-9]* limit=0 loaded=0$'
}

@test "mv-masterd: --help, --version, -n, and configuration errors exit 78" {
	run -0 mv-masterd --help
	assert_line -n 0 --partial "usage: mv-masterd"
	run -0 mv-masterd --version
	assert_output "mv-masterd (mv) $MV_VERSION"
	run -78 mv-masterd --listen=127.0.0.1:1
	assert_output "mv-masterd: no etcd: give --etcd=http://HOST:PORT (the cluster's metadata)"
	run -78 mv-masterd --etcd="$MV_TEST_ETCD"
	assert_output "mv-masterd: no listen address: give --listen=HOST:PORT"
	run -78 mv-masterd --etcd="$MV_TEST_ETCD" --listen=127.0.0.1:1 --heartbeat_timeout=0
	assert_output "mv-masterd: bad value for 'heartbeat_timeout': '0' (want 1 to 3600 seconds)"
	run -78 mv-masterd --etcd="$MV_TEST_ETCD" --listen=127.0.0.1:1 --allow=nonsense
	assert_output --regexp "^mv-masterd: .*nonsense"
	run -78 mv-masterd --etcd="$MV_TEST_ETCD" --listen=127.0.0.1:1 --bogus=1
	assert_output "mv-masterd: unknown key 'bogus'"
	run -64 mv-masterd stray
	assert_line -n 0 "mv-masterd: unknown argument 'stray'"
	printf 'etcd = %s\nlisten = 127.0.0.1:1\nheartbeat_timeout = 5\n' \
		"$MV_TEST_ETCD" >"$MV_HOME/mv.conf"
	run -0 mv-masterd -n
	assert_output "mv-masterd: configuration ok"
	# One mv.conf serves the master and the nodes: a node checks the
	# master's key, and the master takes the nodes' keys.
	printf 's3_endpoint = file:%s\n' "$BATS_TEST_TMPDIR/s3" >>"$MV_HOME/mv.conf"
	run -0 mv-noded -n
	assert_output "mv-noded: configuration ok"
	run -0 mv-masterd -n
	run -78 mv-noded -n --heartbeat_timeout=0.5
	assert_output "mv-noded: bad value for 'heartbeat_timeout': '0.5' (want 1 to 3600 seconds)"
	printf 'etcd\n' >"$BATS_TEST_TMPDIR/bad.conf"
	run -78 mv-masterd -c "$BATS_TEST_TMPDIR/bad.conf"
	assert_output "mv-masterd: $BATS_TEST_TMPDIR/bad.conf:1: want key = value"
}

@test "the master's protocol: HELLO, PING, NODES, NODE with no live node, FORGET, unknown verbs" {
	start_master
	run -0 master_says HELLO 1
	assert_output "OK version=1 server=mv-masterd/$MV_VERSION maxline=1024"
	run -0 master_says PING
	assert_output "OK"
	run -0 master_says NODES
	assert_output "END"
	# None up: the master waits for one, 2 s at most.
	SECONDS=0
	run -0 master_says NODE
	assert_output "ERR BUSY no live node"
	[ "$SECONDS" -ge 1 ]
	[ "$SECONDS" -le 4 ]
	run -0 master_says NODE session=9bad
	assert_output --regexp "^ERR BADNAME "
	run -0 master_says NODE coll=9bad
	assert_output --regexp "^ERR BADNAME "
	run -0 master_says NODE session=a coll=b
	assert_output "ERR PROTO session= and coll= do not go together"
	run -0 master_says NODE where=here
	assert_output "ERR PROTO bad argument 'where=here': want session=NAME, coll=NAME or avoid=HOST:PORT"
	run -0 master_says INSERT x 1 2 8
	assert_output "ERR PROTO unknown verb for mv-masterd: ask NODE for a node"
	run -0 master_says FORGET
	assert_output "ERR PROTO wrong number of arguments"
	run -0 master_says FORGET -1
	assert_output "ERR PROTO bad node number '-1': want a number or HOST:PORT"
	run -0 master_says FORGET 4294967296
	assert_output "ERR PROTO bad node number '4294967296': want a number or HOST:PORT"
	run -0 master_says FORGET 3
	assert_output "ERR NOTFOUND node 3 is not a member"
	run -0 master_says FORGET 127.0.0.1:1
	assert_output "ERR NOTFOUND the node at 127.0.0.1:1 is not a member"
	run -75 mv-ls -a "$MASTER"
	assert_output "mv-ls: no live node"
}

@test "NODE answers the least loaded live node, ties to the lowest number" {
	start_tcp_node 1
	start_tcp_node 2
	join_node 1
	join_node 2
	start_master
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 node_of_next_client
	assert_output "$NODE_1"
	# Four idle clients on node 1: its load is 5 at the next heartbeat.
	hold_conns "$NODE_1" 4
	poll 10 bash -c "mv-stat -a '$MASTER' | grep -q '^$NODE_1${T}up${T}5${T}'" ||
		{ mv-stat -a "$MASTER"; false; }
	for i in 1 2 3; do
		run -0 node_of_next_client
		assert_output "$NODE_2"
	done
	run -0 master_says NODE
	assert_output "OK addr=$NODE_2 no=2"
	# A collection's index commands: the node ranked first for its name,
	# whatever the loads (node 1 is the busier), each time; avoided, the
	# other.  Over many names, both nodes are first for some.
	local a c first other seen=
	for c in c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11 c12; do
		run -0 master_says NODE coll=$c
		first=$output
		seen+=" ${first##* }"
		for i in 1 2; do
			run -0 master_says NODE coll=$c
			assert_output "$first"
		done
		[[ $first == *"addr=$NODE_1 "* ]] && other=$NODE_2 || other=$NODE_1
		a=${first#OK addr=}
		run -0 master_says NODE coll=$c avoid=${a%% *}
		assert_output --partial "addr=$other "
	done
	[[ $seen == *no=1* && $seen == *no=2* ]]
}

@test "tools through the master reach a node: every tool with -a MASTER" {
	start_tcp_node 1
	join_node 1
	start_master
	run -0 mv-create -a "$MASTER" "$C" --dim 4
	run -0 mv-insert -a "$MASTER" --ids-first "$C" < <(printf '10 1 0 0 0\n20 0 1 0 0\n30 0 0 1 0\n')
	run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '0 1 0 0\n')
	assert_output "0${T}1${T}20${T}0"
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}3${T}"
	# It was node 1 that did the work.
	run -0 mv-ls -a "$NODE_1" "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}3${T}"
	# The other tools too.
	run -0 mv-get -a "$MASTER" "$C" < <(printf '30
')
	assert_output "30${T}0,0,1,0"
	run -0 mv-delete -a "$MASTER" "$C" < <(printf '20
')
	run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '0 1 0 0
')
	assert_output "0${T}1${T}10${T}2"
	run -0 mv-index -a "$MASTER" "$C" --type Flat
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}2${T}.*${T}Flat$"
	run -0 mv-drop -a "$MASTER" "$C"
	run -1 mv-ls -a "$NODE_1" "$C"
}

@test "a cluster started all at once serves the tools at once, as README's block runs them" {
	# Its own user: a user belongs to one cluster.
	export MV_USER=u${BATS_TEST_NUMBER}_$RANDOM
	# A tool sent before any node is up: the master waits for one.
	start_master --user="$MV_USER"
	mv-create -a "$MASTER" "$C" --dim 2 >"$BATS_TEST_TMPDIR/create.out" 2>&1 &
	early=$!
	start_cluster_node 1 --user="$MV_USER"
	start_cluster_node 2 --user="$MV_USER"
	wait "$early" || { cat "$BATS_TEST_TMPDIR/create.out"; false; }
	# Nodes up as soon as they accept: no heartbeat period to wait for,
	# though the master's first heartbeat found them not listening yet.
	run -0 mv-insert -a "$MASTER" --ids-first "$C" < <(printf '1 1 0\n2 0 1\n')
	run -0 mv-stat -a "$MASTER"
	assert_line --regexp "^$NODE_1${T}up${T}"
	assert_line --regexp "^$NODE_2${T}up${T}"
	run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '0 1\n')
	assert_output "0${T}1${T}2${T}0"
}

@test "README's cluster block: mv-masterd -b and mv-noded -b return once serving, tools on the next line" {
	export MV_USER=u${BATS_TEST_NUMBER}_$RANDOM
	local port pid i
	port=$(free_port)
	MASTER=127.0.0.1:$port
	pid=$(mv-masterd -b --listen="$MASTER" --etcd="$MV_TEST_ETCD" \
		--cluster_id="$CLUSTER" --user="$MV_USER" 2>>"$CLUSTER_DIR/master.log")
	echo "$pid" >>"$CLUSTER_DIR/pids"
	for i in 1 2 3; do
		pid=$(mv-noded -b --listen="127.0.0.1:$(free_port)" --master="$MASTER" \
			--etcd="$MV_TEST_ETCD" --cluster_id="$CLUSTER" --user="$MV_USER" \
			--data_dir="$CLUSTER_DIR/b$i" --s3_endpoint="file:$CLUSTER_DIR/shared" \
			2>>"$CLUSTER_DIR/b$i.log")
		echo "$pid" >>"$CLUSTER_DIR/pids"
	done
	export MV_ADDR=$MASTER
	run -0 mv-create words --dim 2
	run -0 mv-insert --ids-first words < <(printf '1 1 0\n2 0 1\n')
	run -0 mv-search words -k 1 < <(printf '0 1\n')
	assert_output "0${T}1${T}2${T}0"
	run -0 mv-stat
	assert_equal "$(grep -c "${T}up${T}" <<<"$output")" 3
	# A failed start: the daemon's message and status are the command's.
	run -78 mv-masterd -b --listen="$MASTER"
	assert_output --partial "no etcd"
	run -78 mv-masterd -b --listen="$MASTER" --etcd="$MV_TEST_ETCD"
	assert_output --partial "in use"
}

@test "mv-stat -a MASTER lists every node: up, or down when it does not answer or is not live" {
	start_tcp_node 1
	start_tcp_node 2
	join_node 1
	join_node 2
	join_node 3 "127.0.0.1:$(free_port)"	# nobody there
	start_master
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 mv-stat -a "$MASTER" --header
	assert_line -n 0 "address${T}state${T}load${T}memory${T}segments"
	assert_line -n 1 --regexp "^$NODE_1${T}up${T}[0-9]+${T}[1-9][0-9]*${T}0$"
	assert_line -n 2 --regexp "^$NODE_2${T}up${T}[0-9]+${T}[1-9][0-9]*${T}0$"
	assert_line -n 3 --regexp "^127\.0\.0\.1:[0-9]+${T}down${T}0${T}0${T}0$"
	[ "${#lines[@]}" -eq 4 ]
	# A node whose live key is gone is down at once.
	leave_node 2
	poll 5 state_is "$NODE_2" down
	# A node's own address still gives its own line.
	run -0 mv-stat -a "$NODE_1"
	assert_output --regexp "^$NODE_1${T}up${T}"
}

@test "SIGKILL of a node: down within the heartbeat timeout, no client sent there, up again when it answers" {
	start_tcp_node 1
	start_tcp_node 2
	join_node 1
	join_node 2
	start_master
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 mv-create -a "$NODE_1" "$C" --dim 2
	run -0 mv-create -a "$NODE_2" "$C" --dim 2
	kill_tcp_node 2
	SECONDS=0
	# Meanwhile tools through the master still work.
	for i in 1 2; do
		run -0 mv-ls -a "$MASTER" "$C"
	done
	poll 8 state_is "$NODE_2" down
	# Down within the heartbeat timeout (3 s) and a heartbeat round.
	[ "$SECONDS" -le 6 ]
	poll 3 grep -q "node 2 at $NODE_2 is down" "$MASTER_LOG"
	for i in 1 2 3 4 5 6; do
		run -0 node_of_next_client
		assert_output "$NODE_1"
	done
	start_tcp_node 2
	poll 8 state_is "$NODE_2" up
	# Clients go there again, once it is the least loaded.
	hold_conns "$NODE_1" 2
	poll 10 next_client_is "$NODE_2"
}

@test "a tool sent to a node that does not answer asks the master again; 69 when none answers" {
	start_tcp_node 1
	start_fake_node 5
	join_node 5 "$FAKE"
	start_master
	poll 5 state_is "$FAKE" up
	run -0 node_of_next_client
	assert_output "$FAKE"
	join_node 1
	poll 5 state_is "$NODE_1" up
	# The fake node is the least loaded: the tools go there first.
	run -0 mv-create -a "$MASTER" "$C" --dim 2
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "^$C${T}2${T}"
	run -0 mv-ls -a "$NODE_1" "$C"
	leave_node 1
	poll 5 state_is "$NODE_1" down
	run -69 mv-ls -a "$MASTER"
	assert_output --regexp "^mv-ls: the master at '$MASTER' named nodes that do not answer, 3 times: .*'$FAKE'"
}

@test "master restarted: nothing was kept, tools work at once" {
	start_tcp_node 1
	join_node 1
	start_master
	run -0 mv-create -a "$MASTER" "$C" --dim 2
	kill -TERM "$MASTER_PID"
	_wait_gone "$MASTER_PID" 10
	assert_equal "$MV_NODE_STATUS" 0
	grep -q "stopped" "$MASTER_LOG"
	run -69 mv-ls -a "$MASTER"
	start_master
	run -0 mv-insert -a "$MASTER" "$C" < <(printf '1 2\n3 4\n')
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}2${T}"
	run -0 mv-stat -a "$MASTER"
	assert_output --regexp "^$NODE_1${T}up${T}"
	# SIGKILL too: the next master knows as much.
	kill -KILL "$MASTER_PID"
	_wait_gone "$MASTER_PID" 10
	start_master
	run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '1 2\n')
	assert_output --regexp "^0${T}1${T}[0-9]+${T}0$"
	# It wrote nothing, in MV_HOME or in etcd.
	run -0 ls -A "$MV_HOME"
	assert_output ""
	run -0 ectl get --prefix --keys-only /
	refute_output --partial "master"
}

@test "a node joining is learned from the watch; one leaving is down" {
	start_tcp_node 1
	join_node 1
	start_master
	poll 5 state_is "$NODE_1" up
	start_tcp_node 2
	join_node 2
	poll 5 state_is "$NODE_2" up
	grep -q "node 2 at $NODE_2 is live" "$MASTER_LOG"
	run -0 mv-stat -a "$MASTER"
	[ "${#lines[@]}" -eq 2 ]
	leave_node 2
	poll 5 state_is "$NODE_2" down
	for i in 1 2 3; do
		run -0 node_of_next_client
		assert_output "$NODE_1"
	done
}

@test "etcd stopped: the master keeps its nodes and routes; etcd back: it follows again" {
	own_etcd_start "$BATS_TEST_TMPDIR/etcd"
	start_tcp_node 1
	join_node 1
	start_master
	poll 5 state_is "$NODE_1" up
	own_etcd_stop "$BATS_TEST_TMPDIR/etcd"
	sleep 1
	run -0 mv-create -a "$MASTER" "$C" --dim 2
	run -0 mv-stat -a "$MASTER"
	assert_output --regexp "^$NODE_1${T}up${T}"
	poll 5 grep -q "the nodes known are kept" "$MASTER_LOG"
	own_etcd_start "$BATS_TEST_TMPDIR/etcd"
	start_tcp_node 2
	join_node 2
	poll 5 state_is "$NODE_2" up
	grep -q "etcd answers again" "$MASTER_LOG"
	run -0 mv-ls -a "$MASTER"
}

@test "nodes in cluster mode register themselves: tools and sessions through the master, a killed node is down" {
	start_cluster_node 1 --num_replicas=1
	start_cluster_node 2 --num_replicas=1
	start_master
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 mv-create -a "$MASTER" "$C" --dim 2
	run -0 mv-insert -a "$MASTER" --ids-first "$C" < <(printf '1 1 0\n2 0 1\n')
	run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '0 1\n')
	assert_output "0${T}1${T}2${T}0"
	# A session lives on one node; its key sends its commands there.
	run -0 mv-insert -a "$MASTER" --ids-first --session S "$C" < <(printf '3 5 5\n')
	run -0 ectl get --print-value-only "$PROP/session/S"
	assert_output --regexp '"no":[12]'
	for i in 1 2 3; do
		run -0 mv-insert -a "$MASTER" --ids-first --session S "$C" < <(printf '%d 6 6\n' $((i + 3)))
	done
	run -0 mv-flush -a "$MASTER" S
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}6${T}"
	# SIGKILL: down within the timeout; every tool goes to the other.
	kill_tcp_node 2
	poll 8 state_is "$NODE_2" down
	for i in 1 2 3; do
		run -0 mv-search -a "$MASTER" "$C" -k 1 < <(printf '0 1\n')
		assert_output "0${T}1${T}2${T}0"
	done
	start_cluster_node 2 --num_replicas=1
	poll 5 state_is "$NODE_2" up
}

@test "mv-index through the master: a build, its --status and a second build meet on one node" {
	# A user of its own: one etcd serves the file, a user one cluster.
	export MV_USER=u${BATS_TEST_NUMBER}_$RANDOM
	start_cluster_node 1 --user="$MV_USER"
	start_cluster_node 2 --user="$MV_USER"
	start_master --user="$MV_USER"
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 mv-create -a "$MASTER" "$C" --dim 64
	python3 -c 'import random, struct, sys
r = random.Random(7)
w = sys.stdout.buffer
for i in range(30000):
    w.write(struct.pack("<i64f", 64, *[r.random() for _ in range(64)]))
' >"$BATS_TEST_TMPDIR/v.fvecs"
	run -0 mv-insert -a "$MASTER" "$C" "$BATS_TEST_TMPDIR/v.fvecs"
	run -0 mv-index -a "$MASTER" "$C" --type HNSW32 --no-wait
	# Each question below goes to the master again: the least loaded
	# node would be the other one, which knows nothing of the build.
	run -0 mv-index -a "$MASTER" "$C" --status
	assert_line --regexp "^state=(running|done)$"
	assert_line "spec=HNSW32"
	run -75 mv-index -a "$MASTER" "$C" --type Flat
	assert_output --regexp "an index build of '$C' \(HNSW32, started .* is under way"
	poll 60 bash -c "mv-index -a '$MASTER' '$C' --status | grep -qx state=done"
	run -0 mv-ls -a "$MASTER" "$C"
	assert_output --regexp "${T}HNSW32$"
}

@test "a node that cannot listen on its address exits 78 and joins nobody: no stray member" {
	own_user_node1
	local home=$CLUSTER_DIR/cnode9
	# A fresh data directory given node 1's port, as a typo would.
	mkdir -p "$home"
	MV_HOME=$home run -78 mv-noded --listen="$NODE_1" --etcd="$MV_TEST_ETCD" \
		--cluster_id="$CLUSTER" --user="$U" --data_dir="$home" \
		--s3_endpoint="file:$CLUSTER_DIR/shared"
	assert_output --partial "cannot listen on '$NODE_1'"
	no_stray_member
	# Given a free port, the same directory joins as the next node.
	start_cluster_node 9 --user="$U"
	poll 5 state_is "$NODE_9" up
	run -0 mv-stat -a "$MASTER"
	assert_equal "${#lines[@]}" 2
}

@test "a copy of a live node's data directory is refused (78) once the live key outlives a lease; a killed node takes its number again at once" {
	own_user_node1
	local home=$CLUSTER_DIR/cnode9
	# Node 1's directory copied (a cloned machine), started elsewhere.
	mkdir -p "$home"
	cp "$CLUSTER_DIR/cnode1/node.json" "$home/"
	MV_HOME=$home run -78 timeout 40 mv-noded --listen="127.0.0.1:$(free_port)" \
		--etcd="$MV_TEST_ETCD" --cluster_id="$CLUSTER" --user="$U" \
		--data_dir="$home" --s3_endpoint="file:$CLUSTER_DIR/shared"
	assert_output --partial "node 1 is live at $NODE_1, and '$home' names that number: it is that node's data directory or a copy of it; give this node a data_dir of its own"
	no_stray_member
	# Killed, and started again on its address: its own live key, at once.
	kill_tcp_node 1
	start_cluster_node 1 --user="$U"
	poll 5 state_is "$NODE_1" up
	run -1 grep -q "waiting for it to end" "$CLUSTER_DIR/cnode1.log"
}

@test "mv-stat --forget N or ADDR: a member down for good is listed no more, its number never given again; a live one is refused" {
	U=u${BATS_TEST_NUMBER}x$RANDOM
	PROP=/$U/${CLUSTER}_property
	start_cluster_node 1 --user="$U"
	start_cluster_node 2 --user="$U"
	start_master --user="$U"
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	# Up, it is refused; a number nobody has is not found.
	run -1 mv-stat -a "$MASTER" --forget 2
	assert_output "mv-stat: node 2 is live at $NODE_2: stop it first"
	run -1 mv-stat -a "$MASTER" --forget "$NODE_2"
	assert_output "mv-stat: node 2 is live at $NODE_2: stop it first"
	run -1 mv-stat -a "$MASTER" --forget 7
	assert_output "mv-stat: node 7 is not a member"
	run -64 mv-stat -a "$NODE_1" --forget 2
	assert_output --partial "--forget needs a master's address"
	run -64 mv-stat -a "$MASTER" --io
	assert_output --partial "--io needs a node's address"
	run -64 mv-stat -a "$MASTER" --forget x
	# Stopped for good: listed down until forgotten, then not at all.
	kill -TERM "$NODE_2_PID"
	_wait_gone "$NODE_2_PID" 10
	poll 5 state_is "$NODE_2" down
	# By the address mv-stat lists it at (or by its number, 2).
	run -0 mv-stat -a "$MASTER" --forget "$NODE_2"
	assert_output ""
	poll 5 grep -q "node 2 is no longer a member" "$MASTER_LOG"
	run -0 mv-stat -a "$MASTER"
	assert_output --regexp "^$NODE_1${T}up${T}"
	assert_equal "${#lines[@]}" 1
	run -1 mv-stat -a "$MASTER" --forget 2
	# A new node takes 3, not the number of the one forgotten: its files
	# (n2-...) and its directory's node.json still name 2.
	start_cluster_node 3 --user="$U"
	poll 5 state_is "$NODE_3" up
	grep -q "joined cluster '$CLUSTER' as node 3" "$CLUSTER_DIR/cnode3.log"
	# Started again from its directory, the forgotten node is 2 again.
	start_cluster_node 2 --user="$U"
	poll 5 state_is "$NODE_2" up
	grep -c "joined cluster '$CLUSTER' as node 2" "$CLUSTER_DIR/cnode2.log" |
		grep -qx 2
	run -0 mv-stat -a "$MASTER"
	assert_equal "${#lines[@]}" 3
}

@test "a client outside the master's allow-list is refused with DENIED (77); a node refusing the master is down, and the log says why" {
	start_tcp_node 1
	join_node 1
	start_master --allow=10.0.0.0/8
	run -0 timeout 5 socat -u "TCP:$MASTER" STDOUT
	assert_output "ERR DENIED address not allowed"
	run -77 mv-stat -a "$MASTER"
	assert_output "mv-stat: address not allowed"
	run -77 mv-ls -a "$MASTER"
	assert_output "mv-ls: address not allowed"
	grep -q "refused a connection from an address not allowed" "$MASTER_LOG"
	# The heartbeats go out all the same: the node is up for those allowed.
	cluster_teardown
	: >"$CLUSTER_DIR/pids"
	start_tcp_node 1
	join_node 1
	start_master --allow=10.0.0.0/8 --allow=127.0.0.0/8
	run -0 mv-ls -a "$MASTER"
	# A node whose allow-list leaves the master out refuses its
	# heartbeats: down, and the master's log says why.
	start_tcp_node 2 --allow=10.0.0.0/8
	join_node 2
	poll 5 grep -q "node 2 at $NODE_2 does not answer the heartbeat: it refuses the master's address: its allow must cover it" "$MASTER_LOG"
	run -0 mv-stat -a "$MASTER"
	assert_line --regexp "^$NODE_2${T}down${T}"
	# A node reachable from other hosts with the default list says so.
	run -0 mv-noded -n --listen=0.0.0.0:7531
	assert_line --partial "listening on 0.0.0.0:7531 with the default allow (127.0.0.1/32, ::1/128): clients on other hosts are refused; set allow (mv.conf(5))"
}

@test "a named session's commands go to the node that holds it" {
	start_tcp_node 1
	start_tcp_node 2
	join_node 1
	join_node 2
	start_master
	poll 5 state_is "$NODE_1" up
	poll 5 state_is "$NODE_2" up
	run -0 mv-create -a "$NODE_1" "$C" --dim 2
	run -0 mv-create -a "$NODE_2" "$C" --dim 2
	hold_session S1 2
	for i in 1 2 3 4; do
		run -0 master_says NODE session=S1
		assert_output "OK addr=$NODE_2 no=2"
	done
	run -0 mv-insert -a "$MASTER" --session S1 "$C" < <(printf '1 2\n3 4\n')
	run -0 mv-insert -a "$MASTER" --session S1 "$C" < <(printf '5 6\n')
	run -0 mv-flush -a "$MASTER" S1
	run -0 mv-ls -a "$NODE_2" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}3${T}"
	run -0 mv-ls -a "$NODE_1" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}0${T}"
	# Sessions on two nodes, committed by one mv-flush: each on its node.
	hold_session S3 1
	hold_session S4 2
	run -0 mv-insert -a "$MASTER" --session S3 "$C" < <(printf '7 8\n')
	run -0 mv-insert -a "$MASTER" --session S4 "$C" < <(printf '9 9\n')
	# The list through the master is every node's, not one node's.
	run -0 mv-flush -a "$MASTER" --list
	assert_line --regexp "^S3${T}$C${T}1${T}[0-9]+$"
	assert_line --regexp "^S4${T}$C${T}1${T}[0-9]+$"
	assert_equal "${#lines[@]}" 2
	run -0 mv-flush -a "$MASTER" S3 S4
	run -0 mv-ls -a "$NODE_1" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}1${T}"
	run -0 mv-ls -a "$NODE_2" "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}4${T}"
	# A session nobody holds: the least loaded node, as any client.
	run -0 master_says NODE session=S2
	assert_output --regexp "^OK addr=127\.0\.0\.1:[0-9]+ no=[12]$"
	# The holder is down: try again later, never another node.
	hold_session S5 1
	run -0 mv-insert -a "$MASTER" --session S5 "$C" < <(printf '1 1\n')
	kill_tcp_node 2
	poll 8 state_is "$NODE_2" down
	run -75 mv-flush -a "$MASTER" S1
	assert_output "mv-flush: session 'S1' is held by node 2, which is down"
	# A list that lacks a node's sessions says so, and exits 75.
	run -75 mv-flush -a "$MASTER" --list
	assert_line --regexp "^S5${T}$C${T}1${T}[0-9]+$"
	assert_line "mv-flush: node $NODE_2 is down: its sessions are not listed"
	assert_line "mv-flush: the list lacks the sessions of 1 node of 2"
	assert_equal "${#lines[@]}" 3
}
