#!/usr/bin/env bats
# The time axis's records (DESIGN.md "The time axis"): every flush of a
# collection (inserts, deletes, upserts; not a compaction) has a number and
# a commit time, and `mv-ls --history NAME` prints the retained ones as
# flush, time (ISO 8601 UTC), inserted, deleted, rows.  history_retention
# bounds them (0 keeps none); they outlive a restart and go with a drop.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

ISO='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

# history_cols: mv-ls --history $C without the times: flush, inserted,
# deleted, rows per line.
history_cols() {
	command mv-ls --history "$C" | cut -f1,3-
}

@test "every flush has a number, a commit time and its counts; a compaction adds none; a restart keeps them" {
	start_own_node
	run -0 mv-create "$C" --dim 2
	t0=$(date -u +%s)
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 1\n2 2 2\n3 3 3\n')
	run -0 mv-insert --ids-first "$C" < <(printf '4 4 4\n5 5 5\n')
	run -0 mv-delete "$C" < <(printf '2\n2\n99\n')
	run -0 mv-insert --upsert --ids-first "$C" < <(printf '3 9 9\n')
	t1=$(date -u +%s)
	run -0 mv-ls --history "$C"
	assert_equal "${#lines[@]}" 4
	for l in "${lines[@]}"; do
		assert_regex "$l" "^[0-9]+${T}${ISO}${T}[0-9]+${T}[0-9]+${T}[0-9]+\$"
	done
	# Numbers increase; times are ordered and within the test's span.
	command mv-ls --history "$C" >hist.tsv
	python3 - "$t0" "$t1" hist.tsv <<'PY'
import calendar, sys, time
t0, t1 = int(sys.argv[1]), int(sys.argv[2])
rows = [l.split('\t') for l in open(sys.argv[3]).read().splitlines()]
nums = [int(r[0]) for r in rows]
assert nums == sorted(nums) and len(set(nums)) == len(nums), nums
ts = [calendar.timegm(time.strptime(r[1][:19], '%Y-%m-%dT%H:%M:%S'))
      for r in rows]
assert ts == sorted(ts), ts
assert t0 <= ts[0] and ts[-1] <= t1, (t0, ts, t1)
PY
	# inserted, deleted (an id twice and an unknown one count once and
	# not at all), rows after; the upsert replaces a row.
	assert_equal "$(history_cols | cut -f2-)" "$(printf '3\t0\t3\n2\t0\t5\n0\t1\t4\n1\t1\t4')"
	before=$(history_cols)
	run -0 mv-index "$C" --compact
	assert_equal "$(history_cols)" "$before"
	restart_node
	assert_equal "$(history_cols)" "$before"
	run -0 mv-ls --header --history "$C"
	assert_line -n 0 "flush${T}time${T}inserted${T}deleted${T}rows"
	assert_equal "${#lines[@]}" 5
	# A drop takes the history with it.
	run -0 mv-drop "$C"
	run -0 mv-create "$C" --dim 2
	run -0 mv-ls --history "$C"
	assert_output ''
}

@test "mv-ls --history: usage errors and an unknown collection" {
	start_own_node
	run -64 --separate-stderr mv-ls --history
	assert_regex "$stderr" "^mv-ls: .*--history needs a collection NAME"
	run -1 --separate-stderr mv-ls --history nosuch
	assert_regex "$stderr" "^mv-ls: .*nosuch"
}

@test "history_retention: 0 keeps none, a short one is pruned, a bad one is refused" {
	start_own_node --history_retention=0
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 1\n')
	run -0 mv-ls --history "$C"
	assert_output ''
	restart_node --history_retention=1s
	run -0 mv-insert --ids-first "$C" < <(printf '2 2 2\n')
	run -0 mv-ls --history "$C"
	assert_equal "${#lines[@]}" 1
	# Pruned by the first background pass after the start (every 60 s
	# then), once older than a second.
	restart_node --history_retention=1s
	for _ in $(seq 1 60); do
		[ -z "$(command mv-ls --history "$C")" ] && break
		sleep 0.2
	done
	run -0 mv-ls --history "$C"
	assert_output ''
	assert_rows "$C" 2
	stop_node
	run -78 --separate-stderr mv-noded --history_retention=abc
	assert_regex "$stderr" "history_retention"
}
