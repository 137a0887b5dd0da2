#!/usr/bin/env bats
# Bad input: every malformed thing gets a clear one-line error with the
# exit status of DESIGN.md ("mv-TOOL: FILE:N: what is wrong" for bad data),
# changes nothing, and the node keeps serving other clients.

load helpers/mv

setup_file() {
	setup_file_node
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
	run -0 mv-create "$C" --dim 4
	printf '1 1 1 1 1\n2 2 2 2 2\n3 3 3 3 3\n' >base.txt
	run -0 mv-insert --ids-first "$C" base.txt
	mv-get "$C" --all >before.tsv
}

# unchanged: same rows as before the bad command, node still serving.
unchanged() {
	assert_rows "$C" 3
	mv-get "$C" --all >after.tsv
	diff before.tsv after.tsv
	assert_serving
	run -0 mv-insert "$C" < <(printf '9 9 9 9\n')
	assert_rows "$C" 4
}

# insert_fails STATUS REGEX ARGS...: mv-insert exits STATUS with exactly one
# stderr line matching REGEX.
insert_fails() {
	local st=$1 re=$2
	shift 2
	run "-$st" --separate-stderr mv-insert "$@"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "$re"
}

@test "text: wrong dimension on line 3 -> 65 FILE:3" {
	printf '1 2 3 4\n5 6 7 8\n1 2 3\n4 4 4 4\n' >bad.txt
	insert_fails 65 '^mv-insert: bad\.txt:3: .+' "$C" bad.txt
	unchanged
}

@test "text on stdin: wrong dimension on line 2 -> 65 -:2" {
	insert_fails 65 '^mv-insert: -:2: .+' "$C" < <(printf '1 2 3 4\n1 2 3 4 5\n')
	unchanged
}

@test "text: every line has the wrong dimension for the collection -> 65 FILE:1" {
	printf '1 2 3 4 5\n1 2 3 4 5\n' >bad.txt
	insert_fails 65 '^mv-insert: bad\.txt:1: .+' "$C" bad.txt
	unchanged
}

@test "fvecs: a file of another dimension -> 65 FILE:1" {
	gen vecs 5 8 --format fvecs >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:1: .+' "$C" bad.fvecs
	unchanged
}

@test "fvecs: record 3 of another dimension -> 65 FILE:3" {
	gen vecs 5 4 --format fvecs --dim-at 3:5 >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:3: .+' "$C" bad.fvecs
	unchanged
}

@test "text: NaN and Inf -> 65 naming the line" {
	for v in nan NaN inf -inf Infinity 1e39; do
		printf '1 2 3 4\n1 %s 3 4\n' "$v" >bad.txt
		insert_fails 65 '^mv-insert: bad\.txt:2: .+' "$C" bad.txt
	done
	unchanged
}

@test "fvecs: NaN in record 4 -> 65 FILE:4" {
	gen vecs 6 4 --format fvecs --nan 4 >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:4: .+' "$C" bad.fvecs
	unchanged
}

@test "jsonl: NaN or a huge number in a vector -> 65 FILE:N" {
	printf '{"vector":[1,2,3,4]}\n{"vector":[1,2,NaN,4]}\n' >bad.jsonl
	insert_fails 65 '^mv-insert: bad\.jsonl:2: .+' "$C" bad.jsonl
	printf '{"vector":[1,2,3,4]}\n{"vector":[1,2,3,4]}\n{"vector":[1,2,1e40,4]}\n' >bad.jsonl
	insert_fails 65 '^mv-insert: bad\.jsonl:3: .+' "$C" bad.jsonl
	unchanged
}

@test "text: non-numeric values -> 65 naming the line" {
	for v in x 1.2.3 0x 3a - "" '"1"'; do
		printf '1 2 3 4\n1 2 3 4\n1 2 3 4\n1 2 %s 4\n' "$v" >bad.txt
		insert_fails 65 '^mv-insert: bad\.txt:4: .+' "$C" bad.txt
	done
	unchanged
}

@test "fvecs: a truncated last record -> 65 FILE:3" {
	gen vecs 3 4 --format fvecs --cut 5 >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:3: .+' "$C" bad.fvecs
	gen vecs 3 4 --format fvecs --cut 18 >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:3: .+' "$C" bad.fvecs
	unchanged
}

@test "bvecs: a truncated last record -> 65 FILE:2" {
	run -0 mv-create "${C}b" --dim 4
	gen vecs 2 4 --format bvecs --cut 1 >bad.bvecs
	run -65 --separate-stderr mv-insert "${C}b" bad.bvecs
	assert_regex "$stderr" '^mv-insert: bad\.bvecs:2: .+'
	assert_rows "${C}b" 0
	unchanged
}

@test "fvecs: a zero or negative dimension in a record -> 65 naming it" {
	gen vecs 3 4 --format fvecs --dim-at 2:0 >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:2: .+' "$C" bad.fvecs
	{
		printf '\377\377\377\377'
		gen f32 1 2 3 4
	} >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:1: .+' "$C" bad.fvecs
	{
		gen vecs 1 4 --format fvecs
		printf '\000\000\000\200'
	} >bad.fvecs
	insert_fails 65 '^mv-insert: bad\.fvecs:2: .+' "$C" bad.fvecs
	unchanged
}

@test "npy: a truncated array or a 3-D shape -> 65" {
	dict="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
	{
		printf '\223NUMPY\001\000\166\000%s%*s\n' "$dict" $((117 - ${#dict})) ""
		gen f32 1 2 3 4 5 6
	} >bad.npy
	insert_fails 65 '^mv-insert: bad\.npy(:[0-9]+)?: .+' "$C" bad.npy
	dict="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }"
	{
		printf '\223NUMPY\001\000\166\000%s%*s\n' "$dict" $((117 - ${#dict})) ""
		gen f32 1 2 3 4
	} >bad.npy
	insert_fails 65 '^mv-insert: bad\.npy(:[0-9]+)?: .+' "$C" bad.npy
	unchanged
}

@test "jsonl: malformed lines, missing vector, wrong field types -> 65 FILE:N" {
	run -0 mv-create "${C}j" --dim 2 --field price:float64 --field n:int64
	good='{"vector":[1,2],"price":1.5,"n":1}'
	for bad in '{"vector":[1,2],' '{"price":1,"n":1}' '{"vector":[1,"a"],"price":1,"n":1}' \
		'{"vector":[1,2],"price":"cheap","n":1}' '{"vector":[1,2],"price":1,"n":1.5}' \
		'{"vector":[1,2,3],"price":1,"n":1}' '[1,2]' 'not json'; do
		printf '%s\n%s\n' "$good" "$bad" >bad.jsonl
		run -65 --separate-stderr mv-insert "${C}j" bad.jsonl
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" '^mv-insert: bad\.jsonl:2: .+'
	done
	assert_rows "${C}j" 0
	unchanged
}

@test "a bad file after a good one: nothing of either is inserted" {
	gen vecs 10 4 --format fvecs >good.fvecs
	printf '1 2 3 4\n1 2 x 4\n' >bad.txt
	insert_fails 65 '^mv-insert: bad\.txt:2: .+' "$C" good.fvecs bad.txt
	unchanged
}

@test "bad data far into a large input: nothing inserted" {
	gen vecs 50000 4 >big.txt
	printf '1 2 3\n' >>big.txt
	insert_fails 65 '^mv-insert: big\.txt:50001: .+' "$C" big.txt
	unchanged
}

@test "unknown collection -> 1" {
	printf '1 2 3 4\n' >v.txt
	insert_fails 1 '^mv-insert: .*nosuch' nosuch v.txt
	unchanged
}

@test "bad collection name -> 65" {
	printf '1 2 3 4\n' >v.txt
	for name in 1abc a-b config x_property; do
		insert_fails 65 '^mv-insert: .+' "$name" v.txt
	done
	unchanged
}

@test "an id file shorter than the vectors -> 65 naming the first record without an id" {
	printf '1 2 3 4\n5 6 7 8\n9 9 9 9\n' >v.txt
	printf '10\n11\n' >ids.txt
	insert_fails 65 '^mv-insert: v\.txt:3: .*ids\.txt' --ids ids.txt "$C" v.txt
	printf '# a comment\n\n' >ids.txt
	insert_fails 65 '^mv-insert: -:1: .*ids\.txt' --ids ids.txt "$C" <v.txt
	unchanged
}

@test "an id file longer than the vectors -> 65" {
	printf '1 2 3 4\n' >v.txt
	printf '10\n11\n' >ids.txt
	insert_fails 65 '^mv-insert: .+' --ids ids.txt "$C" v.txt
	unchanged
}

@test "a bad id in an id file -> 65 naming its line" {
	printf '1 2 3 4\n5 6 7 8\n' >v.txt
	printf '10\nten\n' >ids.txt
	insert_fails 65 '^mv-insert: ids\.txt:2: .+' --ids ids.txt "$C" v.txt
	printf '10\n99999999999999999999\n' >ids.txt
	insert_fails 65 '^mv-insert: ids\.txt:2: .+' --ids ids.txt "$C" v.txt
	# The reserved id is a bad id of the id file, not of the vectors.
	printf '10\n-9223372036854775808\n' >ids.txt
	insert_fails 65 '^mv-insert: ids\.txt:2: .+' --ids ids.txt "$C" v.txt
	unchanged
}

@test "the reserved id in mv-delete and mv-get input -> 65 naming FILE:N" {
	printf '1\n-9223372036854775808\n' >ids.txt
	run -65 --separate-stderr mv-delete "$C" ids.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-delete: ids\.txt:2: .*reserved'
	run -65 --separate-stderr mv-get "$C" <ids.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-get: -:2: .*reserved'
	unchanged
}

@test "a bad user name -> 65, like a bad collection name" {
	printf '1 2 3 4\n' >v.txt
	for name in 1abc a-b user_list; do
		insert_fails 65 "^mv-insert: .*'$name'" -u "$name" "$C" v.txt
		run -65 --separate-stderr mv-ls -u "$name"
		assert_regex "$stderr" "^mv-ls: .*'$name'"
	done
	run -65 env MV_USER=1abc mv-get "$C" --all
	unchanged
}

@test "a 10 MB text line -> 65 naming the line; the node keeps serving" {
	{
		printf '1 2 3 4\n'
		head -c 10000000 /dev/zero | tr '\0' '7'
		printf '\n5 6 7 8\n'
	} >big.txt
	insert_fails 65 '^mv-insert: big\.txt:2: .+' "$C" big.txt
	{
		printf '1 2 3 4\n'
		awk 'BEGIN { for (i = 0; i < 2500000; i++) printf "1 "; print "" }'
	} >big.txt
	insert_fails 65 '^mv-insert: big\.txt:2: .+' "$C" big.txt
	unchanged
}

@test "a 10 MB jsonl line -> 65 naming the line" {
	{
		printf '{"vector":[1,2,3,4]}\n{"vector":[1,2,3,4],"pad":"'
		head -c 10000000 /dev/zero | tr '\0' 'x'
		printf '"\n'
	} >big.jsonl
	run --separate-stderr mv-insert "$C" big.jsonl
	# An unknown key may be ignored (then both rows land) or refused.
	if [ "$status" -eq 0 ]; then
		assert_rows "$C" 5
	else
		assert_equal "$status" 65
		assert_regex "$stderr" '^mv-insert: big\.jsonl:2: .+'
		unchanged
	fi
}

@test "a missing input file -> 66 and nothing inserted" {
	printf '1 2 3 4\n' >v.txt
	insert_fails 66 '^mv-insert: .*nofile\.txt' "$C" v.txt nofile.txt
	insert_fails 66 '^mv-insert: .*noids\.txt' --ids noids.txt "$C" v.txt
	unchanged
}

@test "a directory as input fails with a message naming it" {
	mkdir adir
	run --separate-stderr mv-insert "$C" adir
	assert_failure
	assert_regex "$stderr" '^mv-insert: .*adir'
	unchanged
}

@test "usage errors -> 64 and nothing inserted" {
	printf '1 2 3 4\n' >v.txt
	run -64 --separate-stderr mv-insert
	assert_regex "$stderr" 'usage: mv-insert'
	run -64 mv-insert --no-such-flag "$C" v.txt
	run -64 mv-insert --format nosuch "$C" v.txt
	run -64 mv-insert --ids-first --ids v.txt "$C" v.txt
	unchanged
}

@test "node not running -> 69" {
	printf '1 2 3 4\n' >v.txt
	run -69 --separate-stderr env -u MV_ADDR MV_HOME="$BATS_TEST_TMPDIR/none" mv-insert "$C" v.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-insert: .+'
	unchanged
}

@test "a wrong-dimension vector sent by an older client is refused by the node (65)" {
	# The node notices too: the raw INSERT of 5 floats into dim 4.
	{
		printf 'INSERT %s 1 - 20\n' "$C"
		gen f32 1 2 3 4 5
		printf 'FLUSH\n'
	} >req.bin
	run -0 wire <req.bin
	assert_line -n 0 --regexp '^ERR BADDIM '
	assert_line -n 1 "OK inserted=0 deleted=0"
	unchanged
}

@test "many bad clients in a row leave the node serving" {
	for n in $(seq 1 8); do
		printf 'INSERT %s 1 - 16\n\001\002' "$C" | wire 0.2 >/dev/null
		printf '\377\376garbage\n' | wire 0.2 >/dev/null
		if mv-insert "$C" < <(printf '1 2 x\n') 2>/dev/null; then
			fail "bad insert accepted"
		fi
	done
	unchanged
}
