# tests/helpers/nodes3.bash - three mv-noded in cluster mode on a real
# etcd of the file's own ($ETCD, scripts/etcd.sh) and a real S3 (Ceph RGW:
# the run's MV_TEST_S3_* or the file's own, scripts/rgw.sh), for
# 70-cluster.bats and 72-sync.bats.  Load after helpers/mv.  The file's
# own etcd, since 70-cluster stops and starts it; each test is a cluster
# of its own, with its own user.

# free_ports N: N TCP ports nobody listens on now.
free_ports() {
	python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# etcd_up / etcd_down: start this file's etcd (again: same URL, same
# data) and stop it.
etcd_up() {
	local env
	env=$(sh "$MV_ROOT/scripts/etcd.sh" start "$BATS_FILE_TMPDIR/etcd") ||
		return 1
	export ETCD=${env#MV_TEST_ETCD=}
}

etcd_down() {
	sh "$MV_ROOT/scripts/etcd.sh" stop "$BATS_FILE_TMPDIR/etcd"
}

nodes3_setup_file() {
	etcd_up || return 1
	if [ -z "${MV_TEST_S3_ENDPOINT:-}" ]; then
		sh "$MV_ROOT/scripts/rgw.sh" start "$BATS_FILE_TMPDIR/rgw" \
			>"$BATS_FILE_TMPDIR/rgw.env" || return 1
		echo "$BATS_FILE_TMPDIR/rgw" >"$BATS_FILE_TMPDIR/own-rgw"
		set -a
		. "$BATS_FILE_TMPDIR/rgw.env"
		set +a
	fi
	export MV_TEST_S3_ENDPOINT MV_TEST_S3_BUCKET AWS_ACCESS_KEY_ID \
		AWS_SECRET_ACCESS_KEY
}

nodes3_teardown_file() {
	etcd_down
	if [ -f "$BATS_FILE_TMPDIR/own-rgw" ]; then
		sh "$MV_ROOT/scripts/rgw.sh" stop "$(cat "$BATS_FILE_TMPDIR/own-rgw")"
	fi
}

# nodes3_setup: a cluster id, a user and three free addresses (ADDR[1..3])
# for this test.
nodes3_setup() {
	local p
	CID=c${BATS_TEST_NUMBER}_$RANDOM
	export MV_USER=u${BATS_TEST_NUMBER}_$RANDOM
	p=($(free_ports 3))
	ADDR=([1]=127.0.0.1:${p[0]} [2]=127.0.0.1:${p[1]} [3]=127.0.0.1:${p[2]})
	PID=()
}

# node_start I [FLAG...]: start node I (1..3) of this test's cluster, on
# its port, as the test's user (a user belongs to one cluster), with these
# extra flags; PID[I] is its pid.
node_start() {
	local i=$1 home=$BATS_TEST_TMPDIR/n$1
	shift
	mkdir -p "$home"
	MV_HOME=$home mv-noded --listen="${ADDR[$i]}" --etcd="$ETCD" \
		--cluster_id="$CID" --user="$MV_USER" --data_dir="$home" \
		--s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" "$@" \
		</dev/null >>"$home.log" 2>&1 3>&- &
	PID[$i]=$!
}

# node_up I [FLAG...]: node_start, then wait until it answers (it is live
# then: MV_START_TIMEOUT).
node_up() {
	local i=$1 end=$(($(date +%s) + MV_START_TIMEOUT))
	node_start "$@"
	while [ "$(date +%s)" -lt "$end" ]; do
		kill -0 "${PID[$i]}" 2>/dev/null || {
			tail -n 30 "$BATS_TEST_TMPDIR/n$i.log" >&2
			return 1
		}
		answers "${ADDR[$i]}" && return 0
		sleep 0.05
	done
	tail -n 30 "$BATS_TEST_TMPDIR/n$i.log" >&2
	return 1
}

# nodes3_teardown: stop the nodes (stopped ones resumed first); after a
# failure, the end of each node's log; under `make asan`, a node's
# sanitizer report in its log fails the test.
nodes3_teardown() {
	local i
	for i in "${!PID[@]}"; do
		[ -n "${PID[$i]:-}" ] && kill -CONT "${PID[$i]}" 2>/dev/null
		[ -n "${PID[$i]:-}" ] && kill "${PID[$i]}" 2>/dev/null
	done
	for i in "${!PID[@]}"; do
		[ -n "${PID[$i]:-}" ] && wait "${PID[$i]}" 2>/dev/null
	done
	if [ -n "${BATS_TEST_COMPLETED:-}" ]; then
		sanitizer_clean_logs "$BATS_TEST_TMPDIR"/n[0-9].log
		return
	fi
	for i in 1 2 3; do
		echo "--- node $i" >&2
		tail -n 20 "$BATS_TEST_TMPDIR/n$i.log" >&2
	done
}
