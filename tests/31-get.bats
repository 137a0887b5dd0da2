#!/usr/bin/env bats
# mv-get: rows by id (text, fvecs, jsonl), unknown ids counted on stderr,
# --all exports the whole collection.

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

@test "mv-get prints id TAB values, in the order of the ids read" {
	run -0 mv-create "$C" --dim 3
	run -0 mv-insert --ids-first "$C" < <(printf '10 1 2 3\n20 -0.5 0 8\n30 0.125 1e3 -7\n')
	printf '30\n10\n' >ids.txt
	run -0 --separate-stderr mv-get "$C" ids.txt
	assert_equal "$stderr" ""
	assert_output "30${T}0.125,1000,-7
10${T}1,2,3"
	run -0 mv-get "$C" < <(printf '20\n')
	assert_output "20${T}-0.5,0,8"
}

@test "unknown ids are skipped and counted on stderr" {
	run -0 mv-create "$C" --dim 1
	run -0 mv-insert --ids-first "$C" < <(printf '1 1\n2 2\n')
	run -0 --separate-stderr mv-get "$C" < <(printf '5\n1\n6\n7\n2\n')
	assert_output "1${T}1
2${T}2"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-get:(.*[^0-9])?3([^0-9]|$)'
}

@test "mv-get -q keeps the count of unknown ids off stderr" {
	run -0 mv-create "$C" --dim 1
	run -0 mv-insert --ids-first "$C" < <(printf '1 1\n')
	run -0 --separate-stderr mv-get -q "$C" < <(printf '1\n6\n')
	assert_output "1${T}1"
	assert_equal "$stderr" ""
}

@test "mv-get --format fvecs writes fvecs records" {
	run -0 mv-create "$C" --dim 5
	gen vecs 8 5 --format fvecs >v.fvecs
	run -0 mv-insert --ids <(seq 0 7) "$C" v.fvecs
	mv-get "$C" --format fvecs < <(printf '0\n1\n2\n') >out.fvecs
	gen fvecs-head v.fvecs 3 >want.fvecs
	cmp want.fvecs out.fvecs
}

@test "mv-get --format jsonl writes one object per row" {
	run -0 mv-create "$C" --dim 2 --field tag:string --field price:float64
	printf '{"id":4,"vector":[1,2],"tag":"a b","price":1.5}\n' >v.jsonl
	run -0 mv-insert "$C" v.jsonl
	run -0 mv-get "$C" --format jsonl < <(printf '4\n')
	assert_equal "${#lines[@]}" 1
	run -0 python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["id"] == 4 and o["vector"] == [1, 2], o
assert o["tag"] == "a b" and o["price"] == 1.5, o
' "$output"
}

@test "mv-get --all exports every row in id order, without deleted ones" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf '5 5 5\n3 3 3\n9 9 9\n')
	run -0 mv-insert --ids-first "$C" < <(printf '1 1 1\n7 7 7\n')
	run -0 mv-delete "$C" < <(printf '9\n')
	run -0 mv-get "$C" --all
	assert_output "1${T}1,1
3${T}3,3
5${T}5,5
7${T}7,7"
}

@test "mv-get --all of a large collection round-trips" {
	run -0 mv-create "$C" --dim 32
	gen vecs 20000 32 --format fvecs >v.fvecs
	run -0 mv-insert "$C" v.fvecs
	mv-get "$C" --all --format fvecs >out.fvecs
	cmp v.fvecs out.fvecs
	[ "$(mv-get "$C" --all | wc -l)" -eq 20000 ]
}

@test "mv-get --all of an empty collection prints nothing" {
	run -0 mv-create "$C" --dim 2
	run -0 --separate-stderr mv-get "$C" --all
	assert_output ""
	assert_equal "$stderr" ""
}

@test "mv-get --all | head -1 ends quietly" {
	run -0 mv-create "$C" --dim 16
	run -0 mv-insert "$C" < <(gen vecs 20000 16 --format fvecs)
	run -0 bash -c 'timeout 60 mv-get "$1" --all 2>err.txt | head -1; echo "status=${PIPESTATUS[0]}"' _ "$C"
	assert_line -n 1 --regexp '^status=(0|141)$'
	run -0 cat err.txt
	assert_output ""
}

@test "mv-get errors: unknown collection 1, missing file 66, bad id 65" {
	run -0 mv-create "$C" --dim 2
	run -1 --separate-stderr mv-get nosuch < <(printf '1\n')
	assert_regex "$stderr" '^mv-get: .*nosuch'
	run -66 --separate-stderr mv-get "$C" nofile.txt
	assert_regex "$stderr" '^mv-get: .*nofile\.txt'
	printf '1\nabc\n' >ids.txt
	run -65 --separate-stderr mv-get "$C" ids.txt
	assert_regex "$stderr" '^mv-get: ids\.txt:2: '
	run -64 mv-get
	run -64 mv-get "$C" --format parquet --all
}
