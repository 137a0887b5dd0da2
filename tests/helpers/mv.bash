# tests/helpers/mv.bash - shared helpers of the mv end-to-end suite.
#
# Load with `load helpers/mv` at the top of a tests/NN-area.bats file.  It
# puts the freshly built binaries on PATH (or MV_BIN=dir), starts and stops
# embedded mv-noded daemons with their own MV_HOME under the bats temporary
# directories, speaks the raw protocol (tests/helpers/mvgen.py wire), and
# makes small deterministic data sets (mvgen.py, pure python3: no numpy).
#
# Environment:
#   MV_BIN=DIR        the binaries to test (default: the repository's cmd/*/)
#   MV_TEST_ADDR=A    run against a live daemon (unix:PATH or HOST:PORT);
#                     tests that must start, kill or configure their own
#                     node skip
#   MV_TIMEOUT=S      seconds a tool may take (60); MV_START_TIMEOUT=S for a
#                     node to accept on its socket (15)
#   MV_GLOVE=DIR      glove-100 elsewhere; MV_NO_GLOVE=1 uses generated data
#                     instead; MV_FETCH_DATA=1 lets 90-recall run
#                     scripts/fetch-data.sh when the data set is absent
#   MV_CRASH_ITERS=N  kill -9 rounds of 60-crash.bats (12)

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

# The tree's top: tests/ holds the test files, tests/probe/ the probes.
MV_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
[ -f "$MV_ROOT/libmv/mv.h" ] || MV_ROOT=$(cd "$MV_ROOT/.." && pwd)
MV_HELPERS=$MV_ROOT/tests/helpers
if [ -n "${MV_BIN:-}" ]; then
	PATH=$MV_BIN:$PATH
else
	for _d in "$MV_ROOT"/cmd/*/; do
		PATH=${_d%/}:$PATH
	done
	unset _d
fi
export PATH
export OMP_WAIT_POLICY=PASSIVE
# Tools find the node through MV_HOME, which every test sets; never ~/.mv.
unset MV_USER
if [ -n "${MV_TEST_ADDR:-}" ]; then
	export MV_ADDR=$MV_TEST_ADDR
else
	unset MV_ADDR
fi
T=$'\t'
MV_SHARED=${MV_SHARED:-$MV_ROOT/../shared}
MV_VERSION=$(sed -n 's/^#define MV_VERSION "\(.*\)"/\1/p' "$MV_ROOT/libmv/mv.h")
# Seconds a tool or a daemon start may take before the test gives up.
MV_TIMEOUT=${MV_TIMEOUT:-60}
MV_START_TIMEOUT=${MV_START_TIMEOUT:-15}

# Every tool runs under timeout(1), so that a hung tool fails its test
# instead of the whole suite; `command mv-x` reaches the binary itself.
for _t in create insert flush delete search get index ls drop stat; do
	eval "mv-$_t() { timeout -k 5 \"\$MV_TIMEOUT\" mv-$_t \"\$@\"; }"
done
unset _t

gen() {
	python3 "$MV_HELPERS/mvgen.py" "$@"
}

# ---------------------------------------------------------------- daemons

# _alive PID: the process exists and is not a zombie.
_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# True when the tests drive a live daemon given by MV_TEST_ADDR.
live_daemon() {
	[ -n "${MV_TEST_ADDR:-}" ]
}

# Skip a test that must start, stop or configure its own node.
need_own_node() {
	if live_daemon; then
		skip "needs its own mv-noded (MV_TEST_ADDR is set)"
	fi
}

# start_node [flags...]: start the embedded node in MV_HOME (default: a
# directory under BATS_TEST_TMPDIR, or BATS_FILE_TMPDIR from setup_file)
# and wait until its socket accepts.  Exports MV_HOME, MV_NODE_PID, MV_LOG.
start_node() {
	if live_daemon; then
		export MV_ADDR=$MV_TEST_ADDR
		return 0
	fi
	if [ -z "${MV_HOME:-}" ]; then
		if [ -n "${BATS_TEST_TMPDIR:-}" ] && [ -d "$BATS_TEST_TMPDIR" ] &&
			[ -z "${_MV_IN_SETUP_FILE:-}" ]; then
			MV_HOME=$BATS_TEST_TMPDIR/home
		else
			MV_HOME=$BATS_FILE_TMPDIR/home
		fi
	fi
	export MV_HOME
	unset MV_ADDR
	mkdir -p "$MV_HOME"
	export MV_LOG=${MV_HOME}.log
	echo "--- start_node $* ($(date +%T.%N))" >>"$MV_LOG"
	mv-noded "$@" </dev/null >>"$MV_LOG" 2>&1 3>&- &
	export MV_NODE_PID=$!
	# For stop_node in another shell: a test that restarts a file's
	# shared node changes MV_NODE_PID in its own shell only.
	echo "$MV_NODE_PID" >"$MV_HOME.pid"
	wait_node
}

# wait_node: poll until the node's socket accepts; fail with its log when it
# exits or does not become ready within MV_START_TIMEOUT seconds.
wait_node() {
	local sock=$MV_HOME/mv.sock tries=$((MV_START_TIMEOUT * 20))
	while [ "$tries" -gt 0 ]; do
		if ! _alive "$MV_NODE_PID"; then
			wait "$MV_NODE_PID" 2>/dev/null
			echo "mv-noded (pid $MV_NODE_PID) exited with status $? before it was ready; log $MV_LOG:" >&2
			tail -n 40 "$MV_LOG" >&2
			return 1
		fi
		if [ -S "$sock" ] &&
			socat -u OPEN:/dev/null "UNIX-CONNECT:$sock" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "mv-noded (pid $MV_NODE_PID) did not accept on $sock within ${MV_START_TIMEOUT}s; log $MV_LOG:" >&2
	tail -n 40 "$MV_LOG" >&2
	return 1
}

# _wait_gone PID SECONDS: wait until PID has exited; reap it when it is our
# child and leave its exit status in MV_NODE_STATUS.
_wait_gone() {
	local pid=$1 tries=$(($2 * 20))
	while _alive "$pid" && [ "$tries" -gt 0 ]; do
		sleep 0.05
		tries=$((tries - 1))
	done
	if _alive "$pid"; then
		return 1
	fi
	MV_NODE_STATUS=
	wait "$pid" 2>/dev/null && MV_NODE_STATUS=0 || MV_NODE_STATUS=$?
	return 0
}

# stop_node: SIGTERM and wait (10 s, then SIGKILL and fail).
stop_node() {
	live_daemon && return 0
	_newer_node
	[ -n "${MV_NODE_PID:-}" ] || return 0
	if ! _alive "$MV_NODE_PID"; then
		_wait_gone "$MV_NODE_PID" 1
		MV_NODE_PID=
		return 0
	fi
	kill -TERM "$MV_NODE_PID"
	if ! _wait_gone "$MV_NODE_PID" 10; then
		kill -KILL "$MV_NODE_PID" 2>/dev/null
		_wait_gone "$MV_NODE_PID" 5
		echo "mv-noded (pid $MV_NODE_PID) ignored SIGTERM for 10s; killed" >&2
		MV_NODE_PID=
		return 1
	fi
	MV_NODE_PID=
	sanitizer_clean
}

# _newer_node: MV_NODE_PID from $MV_HOME.pid when a test restarted the
# node in its own shell (teardown_file then held the first node's PID and
# left the second running): only an mv-noded serving this MV_HOME.
_newer_node() {
	local p
	[ -n "${MV_HOME:-}" ] && [ -f "$MV_HOME.pid" ] || return 0
	p=$(cat "$MV_HOME.pid")
	[ -n "$p" ] && [ "$p" != "${MV_NODE_PID:-}" ] && _alive "$p" || return 0
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = mv-noded ] || return 0
	tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
		grep -qxF "MV_HOME=$MV_HOME" || return 0
	MV_NODE_PID=$p
}

# Under `make asan`, a node's report of a memory error, leak or undefined
# behaviour fails the test that ran it.
sanitizer_clean() {
	[ -n "${MV_LOG:-}" ] || return 0
	sanitizer_clean_logs "$MV_LOG"
}

# sanitizer_clean_logs FILE...: 1 (and the report) if a daemon's log
# FILE holds a sanitizer's report; files that do not exist are skipped.
sanitizer_clean_logs() {
	local f rc=0
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
			echo "a daemon reported a sanitizer error in $f:" >&2
			grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | head -n 40 >&2
			rc=1
		fi
	done
	return "$rc"
}

# flip_bit FILE OFFSET: xor bit 3 of the byte at OFFSET.
flip_bit() {
	python3 -c '
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 8]))
' "$1" "$2"
}

# kill_node: SIGKILL and wait.
kill_node() {
	live_daemon && return 0
	[ -n "${MV_NODE_PID:-}" ] || return 0
	kill -KILL "$MV_NODE_PID" 2>/dev/null
	_wait_gone "$MV_NODE_PID" 10
	MV_NODE_PID=
}

# For setup_file()/teardown_file() of files that share one node.
setup_file_node() {
	_MV_IN_SETUP_FILE=1 start_node "$@"
}

# A prefix for the fixed collection names of a file: empty with a node of
# our own, unique on a live daemon.
if [ -n "${MV_TEST_ADDR:-}" ]; then
	P=t$(printf '%s' "${BATS_RUN_TMPDIR##*-}" | tr -cd 'A-Za-z0-9')_
else
	P=
fi

# Per-test setup: a unique collection name in $C, cwd in the test's tmpdir.
mv_setup() {
	C=t${BATS_TEST_NUMBER}_c
	if live_daemon; then
		C=t${BATS_TEST_NUMBER}_$$_${RANDOM}
	fi
	cd "$BATS_TEST_TMPDIR" || return 1
}

# start_own_node [flags...]: a node of this test alone, in a fresh MV_HOME
# under BATS_TEST_TMPDIR (skips with MV_TEST_ADDR); mv_teardown stops it.
start_own_node() {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	MV_OWN_NODE=1
	start_node "$@"
}

# restart_node [flags...]: stop (SIGTERM) and start again on the same MV_HOME.
restart_node() {
	stop_node || return 1
	start_node "$@"
}

# Per-test teardown: stop a node that the test started (start_own_node, or
# start_node in a file without a shared node); kill it if it will not stop.
mv_teardown() {
	if [ -n "${MV_OWN_NODE:-}" ] && [ -n "${MV_NODE_PID:-}" ] &&
		_alive "$MV_NODE_PID"; then
		stop_node
	fi
}
mv_teardown_own_node() {
	MV_OWN_NODE=1 mv_teardown
}

# ---------------------------------------------------------------- wire

# The node's address, for the raw protocol tests.
wire_addr() {
	echo "${MV_TEST_ADDR:-unix:$MV_HOME/mv.sock}"
}

# wire [IDLE [HOLD]]: send stdin on one connection, print everything the
# node answers until it closes, or is quiet for IDLE (default 2) seconds
# after the end of stdin; HOLD keeps the connection open that many seconds
# after sending.
wire() {
	timeout -k 2 60 python3 "$MV_HELPERS/mvgen.py" wire "$(wire_addr)" \
		--idle "${1:-2}" --hold "${2:-0}"
}

# ping: true when a new connection answers PING with OK.
ping_ok() {
	[ "$(printf 'PING\n' | wire 2)" = OK ]
}

# ---------------------------------------------------------------- data

# rows NAME: flushed, not deleted rows, as mv-ls reports them.
rows() {
	mv-ls "$1" | cut -f4
}

# assert_rows NAME N
assert_rows() {
	local got
	got=$(rows "$1") || fail "mv-ls $1 failed"
	[ "$got" = "$2" ] || fail "collection $1 has '$got' rows, expected $2"
}

# assert_serving: the daemon still answers another client.
assert_serving() {
	ping_ok || fail "the node no longer answers PING"
	run -0 mv-ls
}

# answers HOST:PORT: a daemon there answers a PING, with OK or a refusal
# (a cluster node answers once it is live; connecting succeeds from its
# listen on).
answers() {
	[ -n "$(printf 'PING\nQUIT\n' | socat -t 1 -T 2 - "TCP:$1" 2>/dev/null |
		head -n 1)" ]
}

# poll SECONDS CMD...: run CMD every 50 ms until it succeeds or SECONDS
# (fractions allowed) of wall-clock time have passed.
poll() {
	local end
	end=$(($(date +%s%N) + $(awk -v s="$1" 'BEGIN { printf "%.0f", s * 1e9 }')))
	shift
	while :; do
		"$@" && return 0
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# awk_knn BASE QUERIES K METRIC: exact top-K as mv-search prints it; BASE
# has the id first.  Computed in double precision by awk, sorted by sort(1).
awk_knn() {
	local order='-k3,3g'
	[ "$4" = l2 ] || order='-k3,3gr'
	awk -v metric="$4" '
		NR == FNR { id[NR] = $1; for (i = 2; i <= NF; i++) b[NR, i - 1] = $i
			nb = NR; d = NF - 1; next }
		{
			for (r = 1; r <= nb; r++) {
				s = 0; na = 0; nq = 0
				for (i = 1; i <= d; i++) {
					x = $i; y = b[r, i]
					if (metric == "l2") s += (x - y) * (x - y)
					else { s += x * y; na += y * y; nq += x * x }
				}
				if (metric == "cosine") s = s / sqrt(na * nq)
				printf "%d %d %.17g\n", FNR - 1, id[r], s
			}
		}' "$1" "$2" |
		sort -k1,1n "$order" -k2,2n |
		awk -v k="$3" '{ if (NR == 1 || $1 != q) { q = $1; r = 0 }
			if (++r <= k) printf "%d\t%d\t%d\t%.9g\n", $1, r, $2, $3 }'
}

rows_are() {
	[ "$(rows "$1")" = "$2" ]
}

# refute_match REGEX: no line of $output matches the extended REGEX (works
# on an empty output, where bats-assert's refute_line trips over set -u).
refute_match() {
	if grep -qE -- "$1" <<<"$output"; then
		fail "a line of the output matches '$1':
$output"
	fi
}

# line_count FILE
line_count() {
	wc -l <"$1" | tr -d ' '
}

# glove_dir: the glove-100 directory if it is there (MV_GLOVE, the shared
# datasets, or scripts/fetch-data.sh's data/glove-100), else status 1.
# MV_NO_GLOVE=1 pretends it is absent, to exercise the fallbacks.
glove_dir() {
	local d
	[ -z "${MV_NO_GLOVE:-}" ] || return 1
	for d in "${MV_GLOVE:-}" "$MV_SHARED/datasets/glove-100" \
		"$MV_ROOT/data/glove-100"; do
		if [ -n "$d" ] && [ -r "$d/base.fvecs" ] &&
			[ -r "$d/query.fvecs" ] && [ -r "$d/groundtruth.ivecs" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}
