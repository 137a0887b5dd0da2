#!/usr/bin/env bats
# mv-insert ids (--ids, --print-ids, server ids), duplicates and --upsert,
# --batch, and atomicity of a whole input (a killed mv-insert leaves nothing).

load helpers/mv

setup_file() {
	setup_file_node
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
}

_tmp_files_exist() {
	[ -n "$(find "$MV_HOME" -name '.tmp-*' -print -quit)" ]
}

_no_tmp_files() {
	! _tmp_files_exist
}

@test "--ids FILE gives the ids, one per line" {
	run -0 mv-create "$C" --dim 2
	printf '100\n200\n-5\n' >ids.txt
	printf '1 1\n2 2\n3 3\n' >v.txt
	run -0 mv-insert --ids ids.txt "$C" v.txt
	run -0 mv-get "$C" --all
	assert_output "-5${T}3,3
100${T}1,1
200${T}2,2"
}

@test "--print-ids: consecutive, increasing, unique across inserts" {
	run -0 mv-create "$C" --dim 3
	gen vecs 5 3 --seed 1 >a.txt
	gen vecs 4 3 --seed 2 >b.txt
	run -0 mv-insert --print-ids "$C" a.txt
	assert_equal "${#lines[@]}" 5
	a=("${lines[@]}")
	for n in 1 2 3 4; do
		assert_equal "${a[$n]}" "$((a[0] + n))"
	done
	run -0 mv-insert --print-ids "$C" b.txt
	assert_equal "${#lines[@]}" 4
	b=("${lines[@]}")
	for n in 1 2 3; do
		assert_equal "${b[$n]}" "$((b[0] + n))"
	done
	printf '%s\n' "${a[@]}" "${b[@]}" | sort -n >printed
	assert_equal "$(sort -un printed | wc -l)" 9
	mv-get "$C" --all | cut -f1 | sort -n >stored
	diff printed stored
	# Input order: the i-th id is the i-th vector.
	run -0 mv-get "$C" < <(printf '%s\n' "${b[2]}")
	assert_output "${b[2]}${T}$(sed -n 3p b.txt | tr ' ' ,)"
}

@test "server ids never collide with ids given by the user" {
	run -0 mv-create "$C" --dim 1
	printf '0 1\n1 1\n2 1\n3 1\n1000 1\n' >v.txt
	run -0 mv-insert --ids-first "$C" v.txt
	run -0 mv-insert --print-ids "$C" < <(printf '5\n6\n7\n')
	assert_equal "${#lines[@]}" 3
	for id in "${lines[@]}"; do
		case $id in 0 | 1 | 2 | 3 | 1000) fail "server id $id collides" ;; esac
	done
	assert_rows "$C" 8
}

@test "an id twice in the input exits 65 and inserts nothing" {
	run -0 mv-create "$C" --dim 2
	printf '1 1 1\n2 2 2\n1 3 3\n' >v.txt
	run -65 --separate-stderr mv-insert --ids-first "$C" v.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-insert: v\.txt:3: id 1 given twice$'
	assert_rows "$C" 0
	printf '4\n5\n4\n' >ids.txt
	run -65 --separate-stderr mv-insert --ids ids.txt "$C" < <(printf '1 1\n2 2\n3 3\n')
	assert_regex "$stderr" '^mv-insert: ids\.txt:3: id 4 given twice$'
	assert_rows "$C" 0
	# Comments and blank lines count: the line of the id file is named.
	printf '# ids\n4\n\n5\n4\n' >ids.txt
	run -65 --separate-stderr mv-insert --ids ids.txt "$C" < <(printf '1 1\n2 2\n3 3\n')
	assert_regex "$stderr" '^mv-insert: ids\.txt:5: id 4 given twice$'
	printf '{"id":8,"vector":[1,1]}\n{"id":9,"vector":[2,2]}\n{"id":8,"vector":[3,3]}\n' >v.jsonl
	run -65 --separate-stderr mv-insert "$C" v.jsonl
	assert_regex "$stderr" '^mv-insert: v\.jsonl:3: id 8 given twice$'
	assert_rows "$C" 0
}

@test "an id twice across input files exits 65 and inserts nothing" {
	run -0 mv-create "$C" --dim 2
	printf '1 1 1\n2 2 2\n' >a.txt
	printf '3 3 3\n2 4 4\n' >b.txt
	run -65 --separate-stderr mv-insert --ids-first "$C" a.txt b.txt
	assert_regex "$stderr" '^mv-insert: b\.txt:2: id 2 given twice$'
	assert_rows "$C" 0
}

@test "an id already in the collection exits 65 and changes nothing" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 1\n2 2 2\n')
	run -65 --separate-stderr mv-insert --ids-first "$C" < <(printf '3 3 3\n2 9 9\n')
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^mv-insert: -:2: id 2 already in collection '$C'\$"
	printf '7\n1\n' >ids.txt
	printf '1 1\n2 2\n' >v.fvecs.txt
	run -65 --separate-stderr mv-insert --ids ids.txt "$C" v.fvecs.txt
	assert_regex "$stderr" "^mv-insert: ids\\.txt:2: id 1 already in collection '$C'\$"
	assert_rows "$C" 2
	run -0 mv-get "$C" --all
	assert_output "1${T}1,1
2${T}2,2"
}

@test "--upsert replaces existing rows in the same flush" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 1\n2 2 2\n')
	run -0 mv-insert --upsert --ids-first "$C" < <(printf '3 3 3\n2 9 9\n')
	assert_rows "$C" 3
	run -0 mv-get "$C" --all
	assert_output "1${T}1,1
2${T}9,9
3${T}3,3"
	# The old vector of id 2 is gone from search too.
	run -0 mv-search "$C" -k 3 < <(printf '2 2\n')
	assert_line -n 0 "0${T}1${T}1${T}2"
	refute_match "^0${T}[0-9]+${T}2${T}0\$"
	assert_line --regexp "^0${T}[0-9]+${T}2${T}98\$"
}

@test "--batch N commits every N rows, each batch atomic" {
	run -0 mv-create "$C" --dim 2
	gen vecs 10 2 >v.txt
	run -0 mv-insert --batch 3 --print-ids "$C" v.txt
	assert_equal "${#lines[@]}" 10
	assert_rows "$C" 10
	run -64 mv-insert --batch 0 "$C" v.txt
	run -64 mv-insert --batch x "$C" v.txt
	assert_rows "$C" 10
}

@test "--batch commits rows as they come and says how many on failure" {
	run -0 mv-create "$C" --dim 2
	gen vecs 6 2 >good.txt
	printf '1 1\n1 2 3\n' >bad.txt
	{
		cat good.txt
		# The first two batches are committed while the input is open.
		poll 10 rows_are "$C" 6 || touch never
		cat bad.txt
	} | command mv-insert --batch 3 "$C" 2>err.txt && st=0 || st=$?
	assert_equal "$st" 65
	assert_rows "$C" 6
	run -0 cat err.txt
	assert_line --regexp '^mv-insert: -:8: '
	assert_output --regexp '(^|[^0-9])6([^0-9]|$)'
	assert_file_not_exists never
}

@test "an mv-insert killed mid-stream leaves nothing" {
	run -0 mv-create "$C" --dim 8
	gen vecs 2000 8 --seed 1 >part1.txt
	gen vecs 2000 8 --seed 2 >part2.txt
	{ (cat part1.txt; sleep 2; cat part2.txt) | command mv-insert "$C"; } 2>/dev/null 3>&- &
	sleep 1
	pid=$(pgrep -n -P $! mv-insert || pgrep -n -f "mv-insert $C\$")
	[ -n "$pid" ] || fail "mv-insert not running"
	kill -KILL "$pid"
	wait $! || true
	sleep 0.3
	assert_rows "$C" 0
	assert_serving
	# The killed client's pending rows do not surface with a later flush.
	run -0 mv-insert "$C" < <(printf '1 2 3 4 5 6 7 8\n')
	assert_rows "$C" 1
}

@test "a large mv-insert killed mid-stream leaves no file behind" {
	# Past 4 MiB the node writes the vectors to a temporary as they come:
	# the disconnect must remove it.
	run -0 mv-create "$C" --dim 128
	gen vecs 40000 128 --seed 5 --format fvecs >big.fvecs
	{ (cat big.fvecs; sleep 3) | command mv-insert --format fvecs "$C"; } 2>/dev/null 3>&- &
	poll 10 _tmp_files_exist || fail "no temporary while the data streamed"
	pid=$(pgrep -n -P $! mv-insert || pgrep -n -f "mv-insert --format fvecs $C\$")
	[ -n "$pid" ] || fail "mv-insert not running"
	kill -KILL "$pid"
	wait $! || true
	poll 10 _no_tmp_files || fail "left behind: $(find "$MV_HOME" -name '.tmp-*')"
	assert_rows "$C" 0
	assert_serving
}

@test "exit 0 means durable and visible to every other client" {
	run -0 mv-create "$C" --dim 4
	gen vecs 100 4 --format fvecs >v.fvecs
	run -0 mv-insert "$C" v.fvecs
	run -0 wire <<<"DESCRIBE $C"
	assert_output --regexp " rows=100 "
	run -0 mv-search "$C" -k 1 < <(gen vecs 1 4)
	assert_equal "${#lines[@]}" 1
}

@test "a reader never sees part of a flush" {
	run -0 mv-create "$C" --dim 8
	gen vecs 60000 8 --format fvecs >v.fvecs
	command mv-insert --batch 5000 "$C" v.fvecs 3>&- &
	ipid=$!
	seen=
	while _alive "$ipid"; do
		seen+=" $(rows "$C")"
	done
	wait "$ipid"
	seen+=" $(rows "$C")"
	for r in $seen; do
		[ $((r % 5000)) -eq 0 ] || fail "a reader saw $r rows, not whole batches of 5000:$seen"
	done
	assert_rows "$C" 60000
}

@test "the reserved id -2^63 is refused in every input, naming FILE:N" {
	run -0 mv-create "$C" --dim 2
	printf '1\n-9223372036854775808\n' >ids.txt
	run -65 --separate-stderr mv-insert --ids ids.txt "$C" < <(printf '1 1\n2 2\n')
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-insert: ids\.txt:2: .*reserved'
	printf '1 1 1\n2 2 2\n-9223372036854775808 3 3\n' >v.txt
	run -65 --separate-stderr mv-insert --ids-first "$C" v.txt
	assert_regex "$stderr" '^mv-insert: v\.txt:3: .*reserved'
	printf '{"id":1,"vector":[1,1]}\n{"id":-9223372036854775808,"vector":[2,2]}\n' >v.jsonl
	run -65 --separate-stderr mv-insert "$C" v.jsonl
	assert_regex "$stderr" '^mv-insert: v\.jsonl:2: .*reserved'
	assert_rows "$C" 0
	# Its neighbours are ordinary ids.
	printf -- '-9223372036854775807 1 1\n9223372036854775807 2 2\n' >v.txt
	run -0 mv-insert --ids-first "$C" v.txt
	assert_rows "$C" 2
}
