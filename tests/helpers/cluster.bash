# tests/helpers/cluster.bash - a cluster of real daemons for the bats
# suite: etcd, mv-masterd and mv-noded processes on free loopback ports,
# with cleanup.  Load after helpers/mv (`load helpers/cluster`).
#
# etcd: one of the file's own (scripts/etcd.sh), stopped by
# cluster_teardown_file.  Each test gets its own cluster id ($CLUSTER).
#
# Nodes here are embedded mv-noded processes listening on TCP as well,
# registered by the test itself: the membership keys of the cluster
# contract (docs/PROTOCOL.md, "Cluster membership") are written with
# etcdctl, live keys with a lease of an hour that the test revokes or
# deletes to make a node leave.

export ETCDCTL_API=3

# cluster_setup_file: an etcd of the file's own, even when the run has
# one (MV_TEST_ETCD), so that etcdctl's membership keys of one file's
# tests never meet another's.
cluster_setup_file() {
	local env
	env=$(sh "$MV_ROOT/scripts/etcd.sh" start "$BATS_FILE_TMPDIR/etcd") ||
		return 1
	export "$env"
	export MV_OWN_ETCD=$BATS_FILE_TMPDIR/etcd
}

cluster_teardown_file() {
	if [ -n "${MV_OWN_ETCD:-}" ]; then
		sh "$MV_ROOT/scripts/etcd.sh" stop "$MV_OWN_ETCD"
	fi
}

# cluster_setup: a fresh cluster id and process list for this test.
cluster_setup() {
	export CLUSTER=c${BATS_TEST_NUMBER}_$$_$RANDOM
	export PROP=/default/${CLUSTER}_property
	export CLUSTER_DIR=$BATS_TEST_TMPDIR/cluster
	mkdir -p "$CLUSTER_DIR"
	: >"$CLUSTER_DIR/pids"
	cd "$BATS_TEST_TMPDIR" || return 1
}

# cluster_test_setup: setup() of a cluster file: a node of the test's own
# (skipped with MV_TEST_ADDR), a fresh cluster, MV_HOME under it.
cluster_test_setup() {
	need_own_node
	mv_setup
	cluster_setup || return 1
	export MV_HOME=$CLUSTER_DIR/home
	mkdir -p "$MV_HOME"
}

# cluster_user_setup: cluster_test_setup and a user of the test's own
# (U), whose membership keys are under PROP: one etcd serves a file's
# tests, and a user belongs to one cluster.
cluster_user_setup() {
	cluster_test_setup || return 1
	U=u${BATS_TEST_NUMBER}x$RANDOM
	PROP=/$U/${CLUSTER}_property
}

# cluster_teardown: stop every daemon this test started (SIGTERM, then
# SIGKILL after 5 s) and delete its keys; under `make asan`, a daemon's
# sanitizer report in its log fails the test.
cluster_teardown() {
	local pid
	[ -f "$CLUSTER_DIR/pids" ] || return 0
	while read -r pid; do
		_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done <"$CLUSTER_DIR/pids"
	while read -r pid; do
		_wait_gone "$pid" 5 || { kill -KILL "$pid" 2>/dev/null; _wait_gone "$pid" 5; }
	done <"$CLUSTER_DIR/pids"
	timeout -k 1 5 etcdctl --endpoints="$MV_TEST_ETCD" --dial-timeout=1s \
		del --prefix "$PROP" >/dev/null 2>&1
	if [ -f "$CLUSTER_DIR/etcds" ]; then
		while read -r dir; do
			own_etcd_stop "$dir"
		done <"$CLUSTER_DIR/etcds"
	fi
	sanitizer_clean_logs "$CLUSTER_DIR"/*.log
}

# own_etcd_start DIR: an etcd of the test's own (scripts/etcd.sh), which
# comes back with its data on the same URL when started again on DIR;
# sets MV_TEST_ETCD for this test.  own_etcd_stop DIR stops it (and
# cluster_teardown does, too).
own_etcd_start() {
	local env
	env=$(sh "$MV_ROOT/scripts/etcd.sh" start "$1") || return 1
	export "$env"
	echo "$1" >>"$CLUSTER_DIR/etcds"
}

own_etcd_stop() {
	sh "$MV_ROOT/scripts/etcd.sh" stop "$1"
}

ectl() {
	timeout -k 2 20 etcdctl --endpoints="$MV_TEST_ETCD" "$@"
}

# free_port: a TCP port nobody listens on now.
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_tcp HOST:PORT PID NAME: until the daemon there answers
# (MV_START_TIMEOUT); fail with the log when PID exits first.
wait_tcp() {
	local addr=$1 pid=$2 log=$3 end=$(($(date +%s) + MV_START_TIMEOUT))
	while [ "$(date +%s)" -lt "$end" ]; do
		if ! _alive "$pid"; then
			echo "pid $pid exited before $addr answered; $log:" >&2
			tail -n 30 "$log" >&2
			return 1
		fi
		answers "$addr" && return 0
		sleep 0.05
	done
	echo "nothing answers on $addr after ${MV_START_TIMEOUT}s; $log:" >&2
	tail -n 30 "$log" >&2
	return 1
}

# start_master [flags...]: mv-masterd for $CLUSTER on a free port (or
# MASTER_PORT when set: a restart on the same address).  Sets MASTER (its
# address), MASTER_PID, MASTER_LOG.
start_master() {
	local port=${MASTER_PORT:-$(free_port)}
	MASTER_PORT=$port
	MASTER=127.0.0.1:$port
	MASTER_LOG=$CLUSTER_DIR/master.log
	echo "--- start_master $* ($(date +%T.%N))" >>"$MASTER_LOG"
	mv-masterd --listen="$MASTER" --etcd="$MV_TEST_ETCD" \
		--cluster_id="$CLUSTER" "$@" </dev/null >>"$MASTER_LOG" 2>&1 3>&- &
	MASTER_PID=$!
	echo "$MASTER_PID" >>"$CLUSTER_DIR/pids"
	wait_tcp "$MASTER" "$MASTER_PID" "$MASTER_LOG"
}

# start_tcp_node N [flags...]: an embedded mv-noded numbered N (node_no),
# on its own MV_HOME, listening on a free TCP port (the same one again on
# a restart).  Sets NODE_N (its address) and NODE_N_PID.
start_tcp_node() {
	local n=$1 home=$CLUSTER_DIR/node$1 port pidv addrv pid
	shift
	addrv=NODE_$n
	pidv=NODE_${n}_PID
	port=${!addrv:-}
	port=${port##*:}
	[ -n "$port" ] || port=$(free_port)
	mkdir -p "$home"
	MV_HOME=$home mv-noded --listen="127.0.0.1:$port" \
		--listen="unix:$home/mv.sock" --node_no="$n" "$@" \
		</dev/null >>"$home.log" 2>&1 3>&- &
	pid=$!
	echo "$pid" >>"$CLUSTER_DIR/pids"
	printf -v "$addrv" '%s' "127.0.0.1:$port"
	printf -v "$pidv" '%s' "$pid"
	wait_tcp "127.0.0.1:$port" "$pid" "$home.log"
}

# start_cluster_node N [flags...]: mv-noded in cluster mode on etcd and a
# shared directory ($CLUSTER_DIR/shared), on a free TCP port (the same one
# again on a restart); it registers itself.  Sets NODE_N and NODE_N_PID.
start_cluster_node() {
	local n=$1 home=$CLUSTER_DIR/cnode$1 port pid addrv=NODE_$1
	shift
	port=${!addrv:-}
	port=${port##*:}
	[ -n "$port" ] || port=$(free_port)
	mkdir -p "$home" "$CLUSTER_DIR/shared"
	MV_HOME=$home mv-noded --listen="127.0.0.1:$port" \
		--etcd="$MV_TEST_ETCD" --cluster_id="$CLUSTER" \
		--data_dir="$home" --s3_endpoint="file:$CLUSTER_DIR/shared" \
		"$@" </dev/null >>"$home.log" 2>&1 3>&- &
	pid=$!
	echo "$pid" >>"$CLUSTER_DIR/pids"
	printf -v "$addrv" '%s' "127.0.0.1:$port"
	printf -v "NODE_${n}_PID" '%s' "$pid"
	wait_tcp "127.0.0.1:$port" "$pid" "$home.log"
}

# kill_tcp_node N: SIGKILL node N and wait until it is gone.
kill_tcp_node() {
	local pidv=NODE_${1}_PID
	kill -KILL "${!pidv}"
	_wait_gone "${!pidv}" 10
}

# join_node N [ADDR]: add node N (at ADDR, default NODE_N) to the property
# key, as a node joining does, and put its live key with a lease.
join_node() {
	local n=$1 addrv=NODE_$1 addr lease
	addr=${2:-${!addrv}}
	python3 - "$n" "$addr" "$(ectl get --print-value-only "$PROP")" >"$CLUSTER_DIR/prop" <<'EOF' || return 1
import json, sys, time
n, addr, cur = int(sys.argv[1]), sys.argv[2], sys.argv[3]
p = json.loads(cur) if cur.strip() else {"format": 1, "nodes": []}
p["nodes"] = [x for x in p["nodes"] if x["no"] != n]
p["nodes"].append({"no": n, "addr": addr, "joined": int(time.time() * 1000)})
p["nodes"].sort(key=lambda x: x["no"])
print(json.dumps(p, separators=(",", ":")))
EOF
	ectl put "$PROP" "$(cat "$CLUSTER_DIR/prop")" >/dev/null || return 1
	lease=$(ectl lease grant 3600 | awk '{ print $2 }')
	[ -n "$lease" ] || return 1
	ectl put --lease="$lease" "$PROP/live/$n" "{\"no\":$n,\"addr\":\"$addr\"}" >/dev/null
}

# leave_node N: delete node N's live key (its lease ended).
leave_node() {
	ectl del "$PROP/live/$1" >/dev/null
}

# hold_session NAME N: node N holds the named session NAME.
hold_session() {
	local addrv=NODE_$2
	ectl put "$PROP/session/$1" "{\"no\":$2,\"addr\":\"${!addrv}\"}" >/dev/null
}

# master_says VERB...: one request to the master, its answer on stdout
# (then QUIT, whose OK is not shown).
master_says() {
	printf '%s\nQUIT\n' "$*" | timeout -k 2 20 socat -t 5 - "TCP:$MASTER" |
		sed '$d'
}

# hold_conns ADDR N: N idle client connections to ADDR for a minute (a
# node's load goes up by N), ended with the test.
hold_conns() {
	local host=${1%:*} port=${1##*:} n=$2
	(
		exec 3>&-
		for ((i = 0; i < n; i++)); do
			exec {fd}<>"/dev/tcp/$host/$port" || exit 1
		done
		exec sleep 60
	) &
	echo $! >>"$CLUSTER_DIR/pids"
}

# node_of_next_client: the address NODE answers now.
node_of_next_client() {
	master_says NODE | sed -n 's/^OK addr=\([^ ]*\) .*/\1/p'
}

# next_client_is ADDR: NODE answers ADDR now.
next_client_is() {
	[ "$(node_of_next_client)" = "$1" ]
}

# state_is ADDR STATE: mv-stat -a MASTER lists ADDR in STATE.
state_is() {
	mv-stat -a "$MASTER" | grep -q "^$1${T}$2${T}"
}
