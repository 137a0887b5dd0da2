#!/usr/bin/env bats
# The bool scalar type: mv-create --field NAME:bool, jsonl true and false
# (null or absent: false), printed as true/false by mv-get and mv-search
# --fields and as JSON booleans by mv-get --format jsonl, kept across a
# compaction and a restart; any other JSON value exits 65 naming the field.

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

@test "bool fields: true, false, null and absent, through get, search, compaction and a restart" {
	run -0 mv-create "$C" --dim 2 --field ok:bool --field n:int64
	run -0 wire <<<"DESCRIBE $C"
	assert_output --partial " fields=ok:bool,n:int64"
	printf '%s\n' '{"id":1,"vector":[1,0],"ok":true,"n":5}' \
		'{"id":2,"vector":[0,1],"ok":false,"n":6}' >a.jsonl
	printf '%s\n' '{"id":3,"vector":[3,3],"ok":null,"n":7}' \
		'{"id":4,"vector":[4,4],"n":8}' >b.jsonl
	run -0 mv-insert "$C" a.jsonl
	run -0 mv-insert "$C" b.jsonl
	want="1${T}1,0${T}true${T}5
2${T}0,1${T}false${T}6
3${T}3,3${T}false${T}7
4${T}4,4${T}false${T}8"
	run -0 mv-get "$C" --all
	assert_output "$want"
	run -0 mv-get "$C" --format jsonl < <(printf '1\n3\n4\n')
	run -0 python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
assert [r["id"] for r in rows] == [1, 3, 4], rows
assert [r["ok"] for r in rows] == [True, False, False], rows
assert [r["n"] for r in rows] == [5, 7, 8], rows
' "$output"
	run -0 mv-search "$C" -k 2 --fields ok,n < <(printf '1 0\n0 1\n')
	assert_output "0${T}1${T}1${T}0${T}true${T}5
0${T}2${T}2${T}2${T}false${T}6
1${T}1${T}2${T}0${T}false${T}6
1${T}2${T}1${T}2${T}true${T}5"
	run -0 mv-index "$C" --compact
	run -0 mv-get "$C" --all
	assert_output "$want"
	restart_node
	run -0 wire <<<"DESCRIBE $C"
	assert_output --partial " fields=ok:bool,n:int64"
	run -0 mv-get "$C" --all
	assert_output "$want"
}

@test "a bool field given anything but true, false or null exits 65 naming it" {
	run -0 mv-create "$C" --dim 1 --field flag:bool
	for v in 1 0 '"true"' 1.5 '[true]' '{}'; do
		printf '{"id":1,"vector":[1],"flag":%s}\n' "$v" >v.jsonl
		run -65 --separate-stderr mv-insert "$C" v.jsonl
		assert_regex "$stderr" "^mv-insert: .*'flag'.*true or false"
	done
	run -0 --separate-stderr mv-get "$C" --all
	assert_output ""
	run -64 --separate-stderr mv-create "${C}x" --dim 1 --field flag:boolean
	assert_regex "$stderr" "^mv-create: .*string or bool"
}
