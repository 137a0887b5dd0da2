#!/usr/bin/env bats
# The embedded node as a process: readiness, clean SIGTERM, one daemon per
# data directory, stale sockets, configuration errors, tools exit 69 when
# it is not there.  (A flush during the node's shutdown: 60-crash.bats.)

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
	if [ -n "${OTHER_PID:-}" ] && _alive "$OTHER_PID"; then
		kill -KILL "$OTHER_PID"
	fi
}

@test "SIGTERM shuts the node down cleanly and the data survives" {
	start_own_node
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" < <(gen vecs 50 4)
	SECONDS=0
	stop_node
	assert_equal "$MV_NODE_STATUS" 0
	[ "$SECONDS" -le 5 ]
	start_node
	assert_rows "$C" 50
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}50${T}"
}

@test "SIGTERM with a search in flight: the search is answered, then the node stops" {
	local s
	start_own_node
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 0 0 0\n2 0 1 0 0\n')
	stop_node
	# Each search held 2 s once it has been read (a long one).
	MV_TEST_PAUSE_SEARCH=2000 start_node
	printf '0 1 0 0\n' | mv-search -k 1 "$C" >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/err" 3>&- &
	s=$!
	poll 10 grep -q "test pause: MV_TEST_PAUSE_SEARCH, " "$MV_LOG"
	kill -TERM "$MV_NODE_PID"
	wait "$s" || fail "the search in flight: $(cat "$BATS_TEST_TMPDIR/err")"
	assert_equal "$(cut -f3 "$BATS_TEST_TMPDIR/out")" 2
	wait "$MV_NODE_PID" || fail "the node's exit status"
	MV_NODE_PID=
	# No new connection meanwhile: the socket went first.
	run -69 mv-ls
}

@test "a node restarted many times keeps its collections and rows" {
	start_own_node
	run -0 mv-create "$C" --dim 4 --metric ip
	# (not $i: bats's run clobbers a global i)
	for n in 1 2 3 4 5; do
		run -0 mv-insert "$C" < <(gen vecs 10 4 --seed "$n")
		restart_node
		assert_rows "$C" $((n * 10))
	done
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}4${T}ip${T}50${T}"
}

@test "a second daemon on the same MV_HOME refuses to start" {
	start_own_node
	run -0 mv-create "$C" --dim 4
	run timeout 10 mv-noded
	assert_failure
	[ "$status" -ne 124 ] || fail "the second daemon did not exit"
	assert_serving
	run -0 mv-ls "$C"
	assert_output --partial "$C"
}

@test "mv-noded -b returns once it serves, with its pid; a start that fails returns its status" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	OTHER_PID=$(mv-noded -b 2>>"$BATS_TEST_TMPDIR/node.log")
	[[ "$OTHER_PID" =~ ^[0-9]+$ ]]
	# Serving when the command returns: a tool on the next line works.
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" < <(gen vecs 5 4)
	# In a session of its own: a terminal's hangup is not its.
	run -0 ps -o sid= -p "$OTHER_PID"
	assert_equal "${output// /}" "$OTHER_PID"
	# The daemon's own failure, its message and its status, is the command's.
	run -75 mv-noded -b
	assert_output --partial "is in use by another process"
	run -64 mv-noded -b --listen=256.1.1.1:5
	kill -TERM "$OTHER_PID"
	_wait_gone "$OTHER_PID" 10
	grep -q "stopped" "$BATS_TEST_TMPDIR/node.log"
	start_own_node
	assert_rows "$C" 5
}

@test "a second daemon on the same data_dir but another socket refuses too" {
	start_own_node
	run timeout 10 mv-noded --listen="unix:$BATS_TEST_TMPDIR/other.sock"
	assert_failure
	[ "$status" -ne 124 ] || fail "the second daemon did not exit"
	assert_serving
}

@test "a stale socket left by a crash is replaced" {
	start_own_node
	run -0 mv-create "$C" --dim 4
	kill_node
	[ -S "$MV_HOME/mv.sock" ] || skip "the killed node left no socket file"
	start_node
	assert_serving
	run -0 mv-ls "$C"
}

@test "a stale socket file that nobody listens on is replaced" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$MV_HOME/mv.sock"
	[ -S "$MV_HOME/mv.sock" ]
	MV_OWN_NODE=1
	start_node
	assert_serving
}

@test "the node listens where listen= says, and the tools follow -a" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	sock=$BATS_TEST_TMPDIR/alt.sock
	MV_OWN_NODE=1
	mv-noded --listen="unix:$sock" </dev/null >>"$MV_HOME.log" 2>&1 3>&- &
	export MV_NODE_PID=$!
	poll 10 socat -u OPEN:/dev/null "UNIX-CONNECT:$sock" || fail "no socket at $sock: $(cat "$MV_HOME.log")"
	run -0 mv-create "$C" --dim 2 -a "unix:$sock"
	run -0 env MV_ADDR="unix:$sock" mv-ls "$C"
	assert_output --regexp "^$C${T}2${T}"
}

@test "the node listens on TCP 127.0.0.1 when asked" {
	need_own_node
	port=$((20000 + RANDOM % 20000))
	start_own_node --listen="unix:$BATS_TEST_TMPDIR/home/mv.sock" --listen="127.0.0.1:$port"
	run -0 mv-create "$C" --dim 2 -a "127.0.0.1:$port"
	run -0 mv-insert -a "127.0.0.1:$port" "$C" < <(printf '1 2\n')
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}2${T}l2${T}1${T}"
}

@test "an unknown key in mv.conf is a configuration error (exit 78)" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	printf 'no_such_key = 1\n' >"$MV_HOME/mv.conf"
	run -78 timeout 10 mv-noded
	printf 'auto_flush = maybe\n' >"$MV_HOME/mv.conf"
	run -78 timeout 10 mv-noded
	printf 'flush_interval = -5\n' >"$MV_HOME/mv.conf"
	run -78 timeout 10 mv-noded
}

@test "mv-noded --help exits 0 and --version prints the version" {
	run -0 mv-noded --help
	run -0 mv-noded --version
	assert_output --partial "$MV_VERSION"
}

@test "every tool exits 69 when no node answers" {
	export MV_HOME=$BATS_TEST_TMPDIR/nonode
	mkdir -p "$MV_HOME"
	unset MV_ADDR
	printf '1 2\n' >v.txt
	printf '1\n' >ids.txt
	for cmd in "mv-create x --dim 2" "mv-insert x v.txt" "mv-search x v.txt" \
		"mv-get x ids.txt" "mv-delete x ids.txt" "mv-flush s" "mv-flush --list" \
		"mv-ls" "mv-drop x" "mv-stat"; do
		run -69 --separate-stderr $cmd
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" "^${cmd%% *}: "
	done
	run -69 mv-ls -a "unix:$BATS_TEST_TMPDIR/nowhere.sock"
	run -69 env MV_ADDR=127.0.0.1:1 mv-ls
}

@test "keys the node cannot honour are refused with 78, in mv.conf and as flags; memory_limit takes a size" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	# (history_retention is honoured since the time axis's records: 34-history;
	# memory_limit since the Reduce mode: 74-reduce.)
	for v in 1G 512MiB 0 4096; do
		run -0 timeout 10 mv-noded -n "--memory_limit=$v"
		printf '# a comment\nmemory_limit = %s\n' "$v" >"$MV_HOME/mv.conf"
		run -0 timeout 10 mv-noded -n
	done
	for v in lots -1 1T; do
		rm -f "$MV_HOME/mv.conf"
		run -78 --separate-stderr timeout 10 mv-noded -n "--memory_limit=$v"
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" "^mv-noded: bad value for 'memory_limit'"
		printf '# a comment\nmemory_limit = %s\n' "$v" >"$MV_HOME/mv.conf"
		run -78 --separate-stderr timeout 10 mv-noded -n
		assert_regex "$stderr" "^mv-noded: .*mv.conf:2: bad value for 'memory_limit'"
	done
	rm -f "$MV_HOME/mv.conf"
	# The cluster's keys need etcd, and etcd needs storage and TCP.
	for kv in s3_endpoint=http://127.0.0.1:9000 s3_bucket=mv \
		s3_region=us-east-1 master=127.0.0.1:7530 num_replicas=1 \
		num_nodes=2; do
		run -78 --separate-stderr timeout 10 mv-noded "--$kv"
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" "^mv-noded: .*${kv%%=*}.*needs 'etcd'"
		run -78 --separate-stderr timeout 10 mv-noded -n "--$kv"
	done
	run -78 --separate-stderr timeout 10 mv-noded -n --etcd=http://127.0.0.1:1
	assert_regex "$stderr" "^mv-noded: cluster mode .*needs 's3_endpoint'"
	run -78 --separate-stderr timeout 10 mv-noded -n --etcd=http://127.0.0.1:1 \
		--s3_endpoint=http://127.0.0.1:1
	assert_regex "$stderr" "^mv-noded: cluster mode .*needs 's3_bucket'"
	run -78 --separate-stderr timeout 10 mv-noded -n --etcd=http://127.0.0.1:1 \
		--s3_endpoint=file:/tmp/x
	assert_regex "$stderr" "^mv-noded: cluster mode .*needs a TCP 'listen'"
	run -78 --separate-stderr timeout 10 mv-noded -n --etcd=http://127.0.0.1:1 \
		--s3_endpoint=file:relative --listen=127.0.0.1:0
	assert_regex "$stderr" "want file:/absolute/path"
	run -0 timeout 10 mv-noded -n --etcd=http://127.0.0.1:1 \
		--s3_endpoint=file:/tmp/x --listen=127.0.0.1:0
	# Nothing was served or written meanwhile.
	[ ! -e "$MV_HOME/meta.log" ] || fail "a refused configuration wrote data"
	# The values of the embedded node itself are fine.
	printf 'num_replicas = 0\nnum_nodes = 1\nsync_level = 0\n' >"$MV_HOME/mv.conf"
	run -0 timeout 10 mv-noded -n
}

# segs NAME: the segments column of mv-ls.
segs() {
	mv-ls "$1" | cut -f5
}

@test "4,200 collections survive a restart, all listed and all housekept" {
	start_own_node
	# One connection, one CREATE after the other (each is a durable
	# metadata transaction: about a minute in all).
	timeout 600 python3 - "$MV_HOME/mv.sock" <<'PY' >created.txt
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"".join(b"CREATE c%d 2 l2\n" % i for i in range(4200)))
f = s.makefile("rb")
for i in range(4200):
    sys.stdout.write(f.readline().decode())
PY
	assert_equal "$(grep -c '^OK$' created.txt)" 4200
	run -0 mv-ls
	assert_equal "${#lines[@]}" 4200
	restart_node
	run -0 mv-ls
	assert_equal "${#lines[@]}" 4200
	assert_line -n 0 "c0${T}2${T}l2${T}0${T}0${T}-"
	assert_line -n 4199 "c4199${T}2${T}l2${T}0${T}0${T}-"
	# The newest collection gets its small segments merged like the first.
	for n in 1 2 3 4 5 6 7 8 9; do
		run -0 mv-insert c4199 < <(printf '%d 0\n' "$n")
	done
	run -0 mv-insert c0 < <(printf '1 1\n')
	poll 20 eval '[ "$(segs c4199)" -lt 9 ]' ||
		fail "c4199 still has $(segs c4199) segments"
	assert_rows c4199 9
	restart_node
	run -0 mv-ls
	assert_equal "${#lines[@]}" 4200
	assert_rows c4199 9
	assert_rows c0 1
	run -0 mv-search c4199 -k 1 < <(printf '9 0\n')
	assert_output "0${T}1${T}8${T}0"
}

@test "assigned ids are never handed out twice, across restarts and kill -9" {
	start_own_node
	run -0 mv-create "$C" --dim 1
	run -0 mv-insert --print-ids "$C" < <(printf '1\n2\n')
	assert_output "0
1"
	# Ids handed out to a batch that is never flushed are not reused
	# either: another writer could hold them.
	run -0 wire < <(printf 'INSERT %s 2 - 8\n' "$C"; gen f32 3 4)
	assert_output --regexp "^OK n=2 first_id=[0-9]+\$"
	unflushed=${output##*first_id=}
	kill_node
	start_node
	run -0 mv-insert --print-ids "$C" < <(printf '5\n')
	[ "$output" -gt "$((unflushed + 1))" ] ||
		fail "id $output assigned again after a restart (the unflushed batch had $unflushed and $((unflushed + 1)))"
	after_kill=$output
	restart_node
	run -0 mv-insert --print-ids "$C" < <(printf '6\n7\n')
	[ "${lines[0]}" -gt "$after_kill" ] || fail "id ${lines[0]} after $after_kill"
	assert_equal "${lines[1]}" $((lines[0] + 1))
	assert_rows "$C" 5
}

# data_nodes: the "node" of every data record in the metadata, sorted.
data_nodes() {
	grep -ao '"type":"[a-z]*","size":[0-9]*,"node":[0-9]*' "$MV_HOME/meta.log" |
		sed 's/.*"node"://' | sort -u
}

@test "node_no is written in every data record; 0 by default" {
	start_own_node
	run -0 mv-create "$C" --dim 2 --field tag:string
	run -0 mv-insert --format jsonl "$C" < <(printf '{"vector":[1,2],"tag":"a"}\n')
	run -0 data_nodes
	assert_output "0"
	restart_node --node_no=7
	run -0 mv-insert --format jsonl "$C" < <(printf '{"vector":[3,4],"tag":"b"}\n')
	run -0 mv-delete "$C" < <(printf '0\n')
	stop_node
	# A vector file, its column and a delete log.
	for t in vectors scalar delete; do
		grep -aq "\"type\":\"$t\",\"size\":[0-9]*,\"node\":7," "$MV_HOME/meta.log" ||
			fail "no $t record of node 7"
	done
	run -0 data_nodes
	assert_output "0
7"
	printf 'node_no = 12\n' >"$MV_HOME/mv.conf"
	run -0 timeout 10 mv-noded -n
	run -78 timeout 10 mv-noded --node_no=-1
	run -78 timeout 10 mv-noded --node_no=x
}

@test "SIGHUP does not stop the node: it is logged and ignored" {
	start_own_node
	run -0 mv-create "$C" --dim 2
	kill -HUP "$MV_NODE_PID"
	poll 5 grep -q 'SIGHUP ignored' "$MV_LOG" || fail "no SIGHUP line in the log"
	assert_serving
	run -0 mv-insert "$C" < <(printf '1 2\n')
	assert_rows "$C" 1
	stop_node
	assert_equal "$MV_NODE_STATUS" 0
}

# On a VM a page touched afresh costs a fault that can take most of a
# restart's CPU time (the index's lists, the id map): the node asks glibc's
# malloc for transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1,
# set by re-executing itself at start), keeping the user's own tunables;
# MV_HUGEPAGES=0 leaves them as they are.
@test "the node runs with glibc.malloc.hugetlb=1 added to the user's GLIBC_TUNABLES" {
	start_own_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
	run -0 cat "/proc/$MV_NODE_PID/comm"
	assert_output mv-noded
	run -0 mv-create "$C" --dim 128
	run -0 mv-insert "$C" < <(gen vecs 20000 128)
	# Where the kernel gives huge pages on request, the segment read
	# into the heap at start sits in some (MV_HUGEPAGES=0 below: none).
	restart_node
	# (Not under AddressSanitizer: its allocator is not glibc's malloc.)
	local thp=1
	grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled && thp=0
	ldd "$(command -v mv-noded)" | grep -q libasan && thp=0
	if [ "$thp" = 1 ]; then
		run -0 awk '/^AnonHugePages:/ { print $2 }' "/proc/$MV_NODE_PID/smaps_rollup"
		[ "$output" -gt 0 ]
	fi
	stop_node
	# glibc splits the tunables in place: /proc shows them cut at ':'.
	GLIBC_TUNABLES=glibc.malloc.arena_max=4 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "GLIBC_TUNABLES=glibc.malloc.arena_max=4"
	assert_line "glibc.malloc.hugetlb=1"
	stop_node
	GLIBC_TUNABLES=glibc.malloc.hugetlb=0 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "GLIBC_TUNABLES=glibc.malloc.hugetlb=0"
	stop_node
	MV_HUGEPAGES=0 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	refute_line --partial "GLIBC_TUNABLES="
	assert_rows "$C" 20000
	if [ "$thp" = 1 ]; then
		run -0 awk '/^AnonHugePages:/ { print $2 }' "/proc/$MV_NODE_PID/smaps_rollup"
		assert_output 0
	fi
}

# OpenBLAS's threads spin for about 0.1 s after every call (sgemm in a
# batch search) unless OPENBLAS_THREAD_TIMEOUT says otherwise, taking the
# cores the next single queries want: the node sets it to 4 (2^4 cycles)
# at start, as above, and OMP_WAIT_POLICY to PASSIVE for FAISS's OpenMP
# threads; a value the user set is kept, also with
# MV_HUGEPAGES=0 or the user's own hugetlb tunable.
@test "the node runs with OPENBLAS_THREAD_TIMEOUT=4 and OMP_WAIT_POLICY=PASSIVE unless the user set them" {
	unset OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT
	start_own_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "OPENBLAS_THREAD_TIMEOUT=4"
	assert_line "OMP_WAIT_POLICY=PASSIVE"
	stop_node
	OMP_WAIT_POLICY=ACTIVE start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "OMP_WAIT_POLICY=ACTIVE"
	assert_line "OPENBLAS_THREAD_TIMEOUT=4"
	stop_node
	OPENBLAS_THREAD_TIMEOUT=20 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "OPENBLAS_THREAD_TIMEOUT=20"
	assert_line "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
	stop_node
	MV_HUGEPAGES=0 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "OPENBLAS_THREAD_TIMEOUT=4"
	refute_line --partial "GLIBC_TUNABLES="
	run -0 cat "/proc/$MV_NODE_PID/comm"
	assert_output mv-noded
	stop_node
	GLIBC_TUNABLES=glibc.malloc.hugetlb=0 OPENBLAS_THREAD_TIMEOUT=8 start_node
	run -0 sh -c "tr '\0' '\n' < /proc/$MV_NODE_PID/environ"
	assert_line "OPENBLAS_THREAD_TIMEOUT=8"
	assert_line "GLIBC_TUNABLES=glibc.malloc.hugetlb=0"
	stop_node
}
