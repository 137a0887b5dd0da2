#!/usr/bin/env bats
# Session expiry and automatic flushes time themselves with the monotonic
# clock: a jump of the wall clock neither expires a session nor flushes
# early (forward), nor holds them back (backward).  The node runs under
# libfaketime (Debian's faketime, scripts/deps.sh), whose offset is read
# from a file at every call; CLOCK_MONOTONIC is left alone.  Each test
# checks first that the node's wall clock did move (the date of its log
# lines), or it would prove nothing.

load helpers/mv

FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1

setup() {
	mv_setup
	[ -r "$FAKETIME_LIB" ] || fail "no $FAKETIME_LIB: install faketime (scripts/deps.sh)"
	echo +0 >"$BATS_TEST_TMPDIR/faketime"
}

teardown() {
	exec 5>&- 2>/dev/null || true
	mv_teardown
}

# faked_node FLAGS...: the node under libfaketime, offset "+0" for now.
# (An ASan build, make asan, must be told that its runtime does not come
# first among the libraries.)
faked_node() {
	LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$BATS_TEST_TMPDIR/faketime \
		FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		start_own_node "$@"
}

# held_insert N: N rows of dimension 4 into $C on a raw connection that
# stays open (fd 5), once the node has answered OK: a pending batch.
held_insert() {
	local n=$1
	{ printf 'INSERT %s %d - %d\n' "$C" "$n" $((n * 16))
	  gen f32 $(seq 1 $((n * 4))); } >held.bin
	mkfifo req
	socat - "UNIX-CONNECT:$MV_HOME/mv.sock" <req >resp 3>&- &
	exec 5>req
	cat held.bin >&5
	poll 20 grep -q "^OK n=$n" resp || fail "INSERT not answered: $(cat resp)"
}

# clock_moved DAYS: after a SIGHUP, the node logs a line dated DAYS days
# from today (UTC): its CLOCK_REALTIME is the faked one.
clock_moved() {
	local want n
	want=$(date -u -d "$1 days" +%Y-%m-%d)
	n=$(grep -c 'SIGHUP ignored' "$MV_LOG" || true)
	kill -HUP "$MV_NODE_PID"
	poll 10 eval '[ "$(grep -c "SIGHUP ignored" "$MV_LOG")" -gt "$n" ]' ||
		fail "no log line for SIGHUP"
	grep 'SIGHUP ignored' "$MV_LOG" | tail -n 1 | grep -q "^$want" ||
		fail "the node's wall clock did not move $1 days: $(grep 'SIGHUP ignored' "$MV_LOG" | tail -n 1)"
}

@test "the wall clock jumps 3 days ahead: no session expires, no automatic flush comes early" {
	faked_node --auto_flush=true --flush_interval=600000 --session_ttl=600
	run -0 mv-create "$C" --dim 4
	gen vecs 10 4 --seed 1 >s.txt
	run -0 mv-insert -q --session S "$C" s.txt
	held_insert 5
	echo +3d >"$BATS_TEST_TMPDIR/faketime"
	clock_moved +3
	# 40 ticks of the ticker (50 ms) with the clock 3 days ahead.
	sleep 2
	got=$(rows "$C")
	[ "$got" = 0 ] || fail "an automatic flush came early: $got rows"
	got=$(mv-flush --list | cut -f1)
	[ "$got" = S ] || fail "session S expired: sessions '$got'"
	run -0 mv-flush -q S
	assert_rows "$C" 10
}

@test "the wall clock jumps 3 days back: sessions still expire, automatic flushes still come" {
	faked_node --auto_flush=true --flush_interval=5000 --session_ttl=5
	run -0 mv-create "$C" --dim 4
	gen vecs 10 4 --seed 1 >s.txt
	# The slow parts first: the jump must come within 5 s of both.
	held_insert 5
	run -0 mv-insert -q --session S "$C" s.txt
	echo -3d >"$BATS_TEST_TMPDIR/faketime"
	clock_moved -3
	poll 30 rows_are "$C" 5 ||
		fail "the pending rows were not flushed automatically: $(rows "$C") rows"
	poll 30 grep -q "session 'S' expired" "$MV_LOG" || fail "session S did not expire"
	# Both came after the jump: the expiry's log line is dated 3 days back.
	grep "session 'S' expired" "$MV_LOG" | grep -q "^$(date -u -d '-3 days' +%Y-%m-%d)" ||
		fail "session S expired before the clock moved"
	run -0 mv-flush --list
	refute_match '^S'
	assert_rows "$C" 5
}
