#!/usr/bin/env bats
# mv-delete: removes flushed rows, reports how many, honoured by mv-search,
# mv-get and mv-ls; an unknown id is not an error.

load helpers/mv

setup_file() {
	setup_file_node
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
	run -0 mv-create "$C" --dim 2
	# ids 1..10, vector (i, 0)
	seq 1 10 | awk '{ print $1, $1, 0 }' >v.txt
	run -0 mv-insert --ids-first "$C" v.txt
}

@test "mv-delete removes flushed rows and reports how many" {
	printf '3\n5\n' >del.txt
	run -0 mv-delete "$C" del.txt
	assert_output --regexp '(^|[^0-9])2([^0-9]|$)'
	assert_rows "$C" 8
	run -0 mv-search "$C" -k 10 < <(printf '4 0\n')
	assert_equal "${#lines[@]}" 8
	refute_match "^0${T}[0-9]+${T}3${T}"
	refute_match "^0${T}[0-9]+${T}5${T}"
	assert_line -n 0 "0${T}1${T}4${T}0"
	assert_line -n 1 "0${T}2${T}2${T}4"
	assert_line -n 2 "0${T}3${T}6${T}4"
	run -0 mv-get "$C" --all
	assert_equal "${#lines[@]}" 8
	refute_match "^3${T}"
	refute_match "^5${T}"
}

@test "mv-delete of ids that do not exist is not an error and reports 0" {
	run -0 mv-delete "$C" < <(printf '99\n-7\n')
	assert_output --regexp '(^|[^0-9])0([^0-9]|$)'
	assert_rows "$C" 10
}

@test "mv-delete of an id twice removes the row once" {
	run -0 mv-delete "$C" < <(printf '4\n4\n11\n')
	assert_output --regexp '(^|[^0-9])1([^0-9]|$)'
	assert_rows "$C" 9
}

@test "mv-get counts deleted ids as unknown" {
	run -0 mv-delete "$C" < <(printf '2\n')
	run -0 --separate-stderr mv-get "$C" < <(printf '1\n2\n3\n')
	assert_output "1${T}1,0
3${T}3,0"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-get: .*1'
}

@test "a deleted id can be inserted again" {
	run -0 mv-delete "$C" < <(printf '7\n')
	run -0 mv-insert --ids-first "$C" < <(printf '7 70 70\n')
	assert_rows "$C" 10
	run -0 mv-get "$C" < <(printf '7\n')
	assert_output "7${T}70,70"
}

@test "a delete does not remove a row inserted in its own flush" {
	S=s$C
	run -0 mv-delete --session "$S" "$C" < <(printf '1\n')
	run -0 mv-insert --session "$S" --ids-first "$C" < <(printf '50 5 5\n')
	run -0 mv-delete --session "$S" "$C" < <(printf '50\n')
	run -0 mv-flush "$S"
	run -0 --separate-stderr mv-get "$C" < <(printf '1\n50\n')
	assert_output "50${T}5,5"
	assert_rows "$C" 10
}

@test "mv-delete --batch commits every N ids" {
	seq 1 10 >del.txt
	run -0 mv-delete --batch 3 "$C" del.txt
	assert_rows "$C" 0
	run -0 mv-get "$C" --all
	assert_output ""
}

@test "mv-delete of a bad id exits 65 naming the line, deletes nothing" {
	printf '1\n2\nx3\n' >del.txt
	run -65 --separate-stderr mv-delete "$C" del.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-delete: del\.txt:3: '
	assert_rows "$C" 10
}

@test "mv-delete: unknown collection 1, missing file 66, usage 64" {
	run -1 --separate-stderr mv-delete nosuch < <(printf '1\n')
	assert_regex "$stderr" '^mv-delete: .*nosuch'
	run -66 --separate-stderr mv-delete "$C" nofile.txt
	assert_regex "$stderr" '^mv-delete: .*nofile\.txt'
	run -64 mv-delete
	assert_rows "$C" 10
}

@test "mv-ls rows and searches honour deletes across segments" {
	seq 11 20 | awk '{ print $1, $1, 0 }' >w.txt
	run -0 mv-insert --ids-first "$C" w.txt
	run -0 mv-delete "$C" < <(seq 1 2 20)
	assert_rows "$C" 10
	run -0 mv-search "$C" -k 20 < <(printf '0 0\n')
	assert_equal "${#lines[@]}" 10
	run -0 bash -c "cut -f3 <<<'$output' | sort -n | tr '\n' ' '"
	assert_output "2 4 6 8 10 12 14 16 18 20 "
}
