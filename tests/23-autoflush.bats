#!/usr/bin/env bats
# auto_flush: a connected client's data is flushed every flush_interval ms
# and whenever it passes flush_limit bytes; without auto_flush nothing shows
# before the end of the input.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

# slow_insert PART1 PART2 SECONDS [mv-insert args...]: feed PART1, wait,
# feed PART2, in the background; MV_INSERT_PID is the pipeline.  SECONDS
# "gate" waits instead for the file ./go (60 s at most), not for a clock
# that a loaded machine (make asan) can outrun.
slow_insert() {
	local p1=$1 p2=$2 wait=$3
	shift 3
	{ (cat "$p1"
	   if [ "$wait" = gate ]; then
		for _ in $(seq 1200); do [ -e go ] && break; sleep 0.05; done
	   else
		sleep "$wait"
	   fi
	   cat "$p2") | command mv-insert "$@" "$C"; } 3>&- &
	MV_INSERT_PID=$!
}

@test "auto_flush by interval: rows appear while mv-insert still reads" {
	start_own_node --auto_flush=true --flush_interval=200
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >part1.txt
	gen vecs 200 4 --seed 2 >part2.txt
	slow_insert part1.txt part2.txt 3
	poll 2.5 rows_are "$C" 300 || fail "rows: $(rows "$C"), expected 300 while the input is open"
	_alive "$MV_INSERT_PID" || fail "mv-insert ended before part 2"
	wait "$MV_INSERT_PID"
	assert_rows "$C" 500
}

@test "auto_flush by size: flush_limit bytes of data trigger a flush" {
	start_own_node --auto_flush=true --flush_interval=600000 --flush_limit=65536
	run -0 mv-create "$C" --dim 16
	# 3000 x 16 float32 = 192000 bytes, about three flush_limit's worth.
	gen vecs 3000 16 --seed 1 >part1.txt
	gen vecs 10 16 --seed 2 >part2.txt
	slow_insert part1.txt part2.txt 3
	poll 2.5 eval '[ "$(rows "$C")" -gt 0 ]' || fail "no rows visible before the end of input"
	_alive "$MV_INSERT_PID" || fail "mv-insert ended before part 2"
	got=$(rows "$C")
	[ "$got" -le 3000 ]
	wait "$MV_INSERT_PID"
	assert_rows "$C" 3010
}

@test "flush_limitition is the configuration key, in mv.conf too" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	printf 'auto_flush = true\nflush_interval = 600000\nflush_limitition = 65536\n' >"$MV_HOME/mv.conf"
	MV_OWN_NODE=1
	start_node
	run -0 mv-create "$C" --dim 16
	gen vecs 3000 16 --seed 1 >part1.txt
	gen vecs 10 16 --seed 2 >part2.txt
	slow_insert part1.txt part2.txt 3
	poll 2.5 eval '[ "$(rows "$C")" -gt 0 ]' || fail "no rows visible before the end of input"
	wait "$MV_INSERT_PID"
	assert_rows "$C" 3010
}

@test "without auto_flush nothing is visible before the input ends" {
	start_own_node
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >part1.txt
	gen vecs 200 4 --seed 2 >part2.txt
	# Part 2 waits for the gate file: under load (make asan) a timed
	# pause could end before the check below.
	slow_insert part1.txt part2.txt gate
	sleep 1
	assert_rows "$C" 0
	touch go
	wait "$MV_INSERT_PID"
	assert_rows "$C" 500
}

@test "auto_flush: a client killed mid-stream keeps what was auto-flushed only" {
	start_own_node --auto_flush=true --flush_interval=200
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >part1.txt
	gen vecs 200 4 --seed 2 >part2.txt
	slow_insert part1.txt part2.txt gate
	poll 10 rows_are "$C" 300 || fail "rows: $(rows "$C"), expected 300"
	pkill -KILL -P "$MV_INSERT_PID" -x mv-insert
	touch go
	wait "$MV_INSERT_PID" || true
	sleep 0.5
	assert_rows "$C" 300
}

@test "a flag wins over mv.conf" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	printf 'auto_flush = true\nflush_interval = 200\n' >"$MV_HOME/mv.conf"
	MV_OWN_NODE=1
	start_node --auto_flush=false
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >part1.txt
	gen vecs 200 4 --seed 2 >part2.txt
	# Part 2 waits for the gate file: under load (make asan) a timed
	# pause could end before the check below.
	slow_insert part1.txt part2.txt gate
	sleep 1
	assert_rows "$C" 0
	touch go
	wait "$MV_INSERT_PID"
	assert_rows "$C" 500
}

@test "-c FILE names the configuration file" {
	need_own_node
	export MV_HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$MV_HOME"
	printf 'auto_flush = true\nflush_interval = 200\n' >"$BATS_TEST_TMPDIR/other.conf"
	MV_OWN_NODE=1
	start_node -c "$BATS_TEST_TMPDIR/other.conf"
	run -0 mv-create "$C" --dim 4
	gen vecs 300 4 --seed 1 >part1.txt
	gen vecs 200 4 --seed 2 >part2.txt
	slow_insert part1.txt part2.txt 3
	poll 2.5 rows_are "$C" 300 || fail "rows: $(rows "$C"), expected 300 while the input is open"
	wait "$MV_INSERT_PID"
	assert_rows "$C" 500
}
