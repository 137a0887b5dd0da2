#!/usr/bin/env bats
# Slow work holds no global lock: while an index drop copies its vectors,
# or an automatic flush runs, the rest of the node goes on.  The slow part
# is stretched by a test pause (MV_TEST_PAUSE_*=ms, see node_test_pause in
# libmv/engine/util.c), which logs its start and its end: the other work
# must finish between the two.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

# paused VAR: the node's log says the pause VAR has started.
paused() {
	grep -q "test pause: $1, " "$MV_LOG"
}

# pause_over VAR: ... and that it has ended.
pause_over() {
	grep -q "test pause: $1 over" "$MV_LOG"
}

@test "a flush of another collection does not wait for an index drop's copy" {
	export MV_TEST_PAUSE_INDEX_DROP=5000
	start_own_node
	run -0 mv-create "$C" --dim 8
	gen vecs 500 8 --seed 1 | mv-insert -q "$C"
	run -0 mv-index -q "$C" --type Flat
	assert_equal "$(mv-ls "$C" | cut -f6)" Flat
	run -0 mv-create "${C}_b" --dim 4
	gen vecs 10 4 --seed 2 >b.txt
	mv-index -q "$C" --drop 3>&- &
	drop=$!
	poll 20 paused MV_TEST_PAUSE_INDEX_DROP || fail "the drop's copy did not start"
	run -0 mv-insert -q "${C}_b" b.txt
	if pause_over MV_TEST_PAUSE_INDEX_DROP; then
		fail "the flush of ${C}_b returned only after the drop's copy ended"
	fi
	_alive "$drop" || fail "the drop ended before the flush"
	wait "$drop" || fail "mv-index --drop failed"
	assert_rows "${C}_b" 10
	assert_rows "$C" 500
	assert_equal "$(mv-ls "$C" | cut -f6)" -
}

@test "an automatic flush does not hold up accepting a new connection" {
	export MV_TEST_PAUSE_AUTOFLUSH=5000
	start_own_node --auto_flush=true --flush_interval=200
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >rows.txt
	# The rows, then the end of the input once ./go exists: the
	# connection stays open, and the rows go by an automatic flush.
	{ (cat rows.txt
	   for _ in $(seq 1200); do [ -e go ] && break; sleep 0.05; done
	  ) | command mv-insert -q "$C"; } 3>&- &
	ins=$!
	poll 20 paused MV_TEST_PAUSE_AUTOFLUSH || fail "no automatic flush started"
	# socat, not the python wire helper: its start alone can take
	# seconds on a loaded machine.
	run -0 timeout 20 socat -t 0.2 - "UNIX-CONNECT:$MV_HOME/mv.sock" <<<"PING"
	assert_output OK
	if pause_over MV_TEST_PAUSE_AUTOFLUSH; then
		fail "the new connection was answered only after the automatic flush"
	fi
	touch go
	wait "$ins" || fail "mv-insert failed"
	assert_rows "$C" 300
}

@test "a flush of another collection does not wait for a cosine flush's normalisation" {
	export MV_TEST_PAUSE_NORMALISE=5000
	start_own_node
	run -0 mv-create "$C" --dim 8 --metric cosine
	run -0 mv-create "${C}_b" --dim 4
	gen vecs 500 8 --seed 1 >a.txt
	gen vecs 10 4 --seed 2 >b.txt
	mv-insert -q "$C" a.txt 3>&- &
	ins=$!
	poll 20 paused MV_TEST_PAUSE_NORMALISE || fail "the cosine flush did not start normalising"
	run -0 mv-insert -q "${C}_b" b.txt
	if pause_over MV_TEST_PAUSE_NORMALISE; then
		fail "the flush of ${C}_b returned only after the normalisation ended"
	fi
	wait "$ins" || fail "mv-insert into the cosine collection failed"
	assert_rows "$C" 500
	assert_rows "${C}_b" 10
}

@test "shutdown waits for an automatic flush made inline by an INSERT, and answers it" {
	export MV_TEST_PAUSE_AUTOFLUSH=3000
	start_own_node --auto_flush=true --flush_interval=600000 --flush_limit=4096
	run -0 mv-create "$C" --dim 4
	# 1,000 rows of 24 bytes: past flush_limit within the first INSERT.
	gen vecs 1000 4 --seed 1 >rows.txt
	mv-insert -q "$C" rows.txt 2>ins.err 3>&- &
	ins=$!
	poll 20 paused MV_TEST_PAUSE_AUTOFLUSH || fail "no inline automatic flush started"
	kill -TERM "$MV_NODE_PID"
	_wait_gone "$MV_NODE_PID" 30 || fail "the node did not stop"
	MV_NODE_PID=
	rc=0
	wait "$ins" || rc=$?
	over=$(grep -n "test pause: MV_TEST_PAUSE_AUTOFLUSH over" "$MV_LOG" | cut -d: -f1)
	stopped=$(grep -n " stopped$" "$MV_LOG" | tail -n 1 | cut -d: -f1)
	[ -n "$over" ] && [ -n "$stopped" ] && [ "$over" -lt "$stopped" ] ||
		fail "the node stopped without waiting for the automatic flush"
	# Answered (the flush refused: the node was shutting down), not a
	# connection closed under it (69).
	[ "$rc" = 75 ] || fail "mv-insert exited $rc: $(cat ins.err)"
	grep -q 'shutting down' ins.err || fail "mv-insert: $(cat ins.err)"
	start_node
	assert_rows "$C" 0
}

@test "an index drop waits for a merge under way, which rewrites an indexed segment; both succeed, every row once" {
	local comp
	export MV_TEST_PAUSE_COMPACT=3000
	# No history kept: deleted rows are the merge's to drop.
	start_own_node --auto_compact=false --history_retention=0
	run -0 mv-create "$C" --dim 4
	gen vecs 200 4 --seed 3 --ids-first 1 >rows.txt
	mv-insert -q --ids-first "$C" rows.txt
	run -0 mv-index -q "$C" --type Flat
	# Half the rows of the indexed segment deleted: the merge rewrites
	# it (and retires it from the index) when it commits.
	cut -d' ' -f1 rows.txt | head -n 100 >del.txt
	run -0 mv-delete "$C" del.txt
	mv-index -q "$C" --compact 3>&- &
	comp=$!
	poll 20 paused MV_TEST_PAUSE_COMPACT || fail "the merge did not start"
	# The drop, under way beside the merge, read vectors of a segment
	# the merge's commit retires and failed it (75, changed under the
	# merge); it now waits for the merge to end.
	run -0 mv-index -q "$C" --drop
	pause_over MV_TEST_PAUSE_COMPACT || fail "the drop did not wait for the merge"
	wait "$comp" || fail "the merge failed"
	assert_equal "$(mv-ls "$C" | cut -f6)" -
	assert_rows "$C" 100
	# Every kept row once, with its vector.
	tail -n 100 rows.txt | cut -d' ' -f1 | mv-get "$C" | cut -f1 | sort -n >got
	tail -n 100 rows.txt | cut -d' ' -f1 | sort -n | diff - got
}
