#!/usr/bin/env bats
# Crashes: a node killed with SIGKILL again and again in the middle of
# flushes keeps every batch whole or not at all, and the rows committed
# before; half-written files are cleaned at start; a clean SIGTERM finishes
# or refuses a flush but never half-writes it.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

DIM=16
ROWS=30000
BATCH=1000

# rows_file ITER: ROWS text lines "id v1..vDIM" with ids ITER*1000000+0..,
# values derived from the id so that any row can be checked alone.
rows_file() {
	awk -v it="$1" -v n="$ROWS" -v d="$DIM" 'BEGIN {
		for (r = 0; r < n; r++) {
			id = it * 1000000 + r; line = id
			for (j = 0; j < d; j++) line = line " " ((id * 31 + j * 7) % 97) / 8
			print line
		}
	}'
}

# rand_sleep MS: sleep a random time between 0 and 1.1 x MS milliseconds.
rand_sleep() {
	sleep "$(awk -v r="$RANDOM" -v d="$1" 'BEGIN { printf "%.3f", r / 32768 * d * 1.1 / 1000 }')"
}

# timed_insert ARGS...: mv-insert that must succeed; its duration in ms is
# left in dur_ms.
timed_insert() {
	local t0
	t0=$(date +%s%N)
	mv-insert "$@" >/dev/null || fail "mv-insert $* failed"
	dur_ms=$((($(date +%s%N) - t0) / 1000000))
}

# check_rows: every row of mv-get --all has the vector of its id; prints
# "iteration count" for each iteration with rows, and fails unless each
# iteration's rows are exactly the first COUNT of its file.
check_rows() {
	mv-get "$C" --all | awk -F'\t' -v d="$DIM" '
		{
			id = $1; n = split($2, v, ",")
			if (n != d) { print "bad dim for id " id > "/dev/stderr"; bad = 1 }
			for (j = 0; j < d; j++)
				if (v[j + 1] != sprintf("%.9g", ((id * 31 + j * 7) % 97) / 8)) {
					print "bad vector for id " id ": " $2 > "/dev/stderr"; bad = 1; break
				}
			it = int(id / 1000000); off = id % 1000000
			cnt[it]++; if (!(it in max) || off > max[it]) max[it] = off
		}
		END {
			for (it in cnt) {
				if (max[it] != cnt[it] - 1) {
					print "iteration " it ": " cnt[it] " rows but max offset " max[it] > "/dev/stderr"; bad = 1
				}
				print it, cnt[it]
			}
			exit bad
		}' | sort -n
}

@test "SIGKILL during flushes: every batch whole or absent, committed rows kept" {
	start_own_node
	run -0 mv-create "$C" --dim "$DIM"
	declare -A kept
	# Iteration 0 runs whole: it is committed data that every later crash
	# must keep, and its duration sets the window for the random kills.
	rows_file 0 >p.txt
	timed_insert --batch "$BATCH" --ids-first "$C" p.txt
	kept[0]=$ROWS
	iters=${MV_CRASH_ITERS:-12}
	for iter in $(seq 1 "$iters"); do
		rows_file "$iter" >p.txt
		command mv-insert --batch "$BATCH" --ids-first "$C" p.txt \
			>/dev/null 2>ins.err 3>&- &
		ipid=$!
		# A random moment: from before the first batch to after the last.
		rand_sleep "$dur_ms"
		kill_node
		wait "$ipid" && ist=0 || ist=$?
		start_node
		check_rows >counts.txt || fail "iteration $iter: rows are not whole batches (see above)"
		while read -r it cnt; do
			[ $((cnt % BATCH)) -eq 0 ] ||
				fail "iteration $iter: $cnt rows of iteration $it, not a multiple of $BATCH"
			if [ "$it" -lt "$iter" ]; then
				[ "$cnt" -eq "${kept[$it]:-0}" ] ||
					fail "iteration $iter: iteration $it had ${kept[$it]:-0} rows, now $cnt"
			fi
			kept[$it]=$cnt
		done <counts.txt
		for it in "${!kept[@]}"; do
			grep -q "^$it " counts.txt || [ "${kept[$it]}" -eq 0 ] ||
				fail "iteration $iter: the ${kept[$it]} rows of iteration $it are gone"
		done
		if [ "$ist" -eq 0 ]; then
			[ "${kept[$iter]:-0}" -eq "$ROWS" ] ||
				fail "iteration $iter: mv-insert exited 0 but only ${kept[$iter]:-0} rows are there"
		fi
		total=0
		for it in "${!kept[@]}"; do total=$((total + kept[$it])); done
		assert_rows "$C" "$total"
	done
	echo "# insert of $ROWS rows: ${dur_ms} ms; rows kept per iteration: $(for it in "${!kept[@]}"; do printf '%s:%s ' "$it" "${kept[$it]}"; done)" >&3
}

# Bytes of the regular files under MV_HOME other than the metadata log.
data_bytes() {
	find "$MV_HOME" -type f ! -name 'meta.log*' ! -name 'mv.conf' \
		-printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

data_below() {
	[ "$(data_bytes)" -lt "$1" ]
}

@test "files half-written by a crash are removed when the node starts" {
	start_own_node
	run -0 mv-create "$C" --dim "$DIM"
	base=$(data_bytes)
	rows_file 0 >p.txt
	timed_insert --ids-first "$C" p.txt
	for iter in 1 2 3 4 5 6; do
		rows_file "$iter" >p.txt
		command mv-insert --ids-first "$C" p.txt >/dev/null 2>&1 3>&- &
		ipid=$!
		rand_sleep "$dur_ms"
		kill_node
		wait "$ipid" || true
		start_node
	done
	# Dropping the collection must give back all of its space: whatever a
	# crash left half-written was either cleaned at start or is still
	# known to the node and dropped with it.
	run -0 mv-drop "$C"
	poll 10 data_below $((base + 65536)) ||
		fail "$(data_bytes) bytes left under MV_HOME after the drop (empty: $base): $(find "$MV_HOME" -type f -printf '%P %s\n')"
}

@test "SIGKILL while large inserts stream to storage: whole or absent, no leftovers" {
	# 29999 x 128 floats (15 MB) per insert: the node writes the segment
	# file while the data arrives, so the kills land in that phase too.
	DIM=128 ROWS=29999
	start_own_node
	run -0 mv-create "$C" --dim "$DIM"
	base=$(data_bytes)
	rows_file 0 >p.txt
	timed_insert --ids-first "$C" p.txt
	for iter in 1 2 3 4 5; do
		rows_file "$iter" >p.txt
		command mv-insert --ids-first "$C" p.txt >/dev/null 2>&1 3>&- &
		ipid=$!
		rand_sleep "$dur_ms"
		kill_node
		wait "$ipid" && ist=0 || ist=$?
		start_node
		check_rows >counts.txt || fail "iteration $iter: rows are damaged (see above)"
		while read -r it cnt; do
			[ "$cnt" -eq "$ROWS" ] ||
				fail "iteration $iter: $cnt rows of iteration $it, not all $ROWS"
		done <counts.txt
		grep -q '^0 ' counts.txt || fail "iteration $iter: the committed rows are gone"
		[ "$ist" -ne 0 ] || grep -q "^$iter " counts.txt ||
			fail "iteration $iter: mv-insert exited 0 but its rows are not there"
	done
	run -0 mv-drop "$C"
	poll 10 data_below $((base + 65536)) ||
		fail "$(data_bytes) bytes left under MV_HOME after the drop: $(find "$MV_HOME" -type f -printf '%P %s\n')"
}

@test "SIGTERM during an insert: the flush is finished or refused, never half" {
	start_own_node
	run -0 mv-create "$C" --dim "$DIM"
	rows_file 0 >p.txt
	timed_insert --ids-first "$C" p.txt
	total=$ROWS
	for iter in 1 2 3 4; do
		rows_file "$iter" >p.txt
		command mv-insert --ids-first "$C" p.txt >/dev/null 2>ins.err 3>&- &
		ipid=$!
		rand_sleep "$dur_ms"
		stop_node
		assert_equal "$MV_NODE_STATUS" 0
		wait "$ipid" && ist=0 || ist=$?
		start_node
		got=$(mv-get "$C" --all | awk -F'\t' -v it="$iter" 'int($1 / 1000000) == it' | wc -l)
		case $ist in
		0) assert_equal "$got" "$ROWS" ;;
		69 | 75)
			[ "$got" -eq 0 ] ||
				fail "mv-insert exited $ist ($(cat ins.err)) but its $got rows were committed"
			grep -q '^mv-insert: ' ins.err || fail "no error message: $(cat ins.err)"
			;;
		*) fail "mv-insert exited $ist: $(cat ins.err)" ;;
		esac
		total=$((total + got))
		assert_rows "$C" "$total"
	done
}
