#!/usr/bin/env bats
# mv-insert input formats: fvecs, bvecs, npy, text (spaces, tabs, commas,
# --ids-first), jsonl with scalar fields; by extension, --format, sniffed on
# stdin.  Values are k/8 so that they print back exactly with %.9g.

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

# The expected mv-get text of text FILE whose first number is the id.
expect_rows() {
	awk '{ printf "%s\t", $1; for (i = 2; i <= NF; i++) printf "%s%s", $i, (i < NF ? "," : "\n") }' "$1"
}

@test "text: spaces, tabs, commas and mixed separators" {
	run -0 mv-create "$C" --dim 4
	printf '1 2 3 4\n0.5\t-1\t2.25\t8\n-3,4,5,6\n1  2\t3,4\n' >v.txt
	run -0 mv-insert --print-ids "$C" v.txt
	assert_equal "${#lines[@]}" 4
	ids=("${lines[@]}")
	assert_rows "$C" 4
	run -0 mv-get "$C" < <(printf '%s\n' "${ids[@]}")
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "${ids[0]}${T}1,2,3,4"
	assert_line -n 1 "${ids[1]}${T}0.5,-1,2.25,8"
	assert_line -n 2 "${ids[2]}${T}-3,4,5,6"
	assert_line -n 3 "${ids[3]}${T}1,2,3,4"
}

@test "text --ids-first takes the id from the first number" {
	run -0 mv-create "$C" --dim 3
	printf '7 1 2 3\n1000000000000 -1 -2 -3\n0,0.125,0.25,0.5\n' >v.txt
	run -0 mv-insert --ids-first "$C" v.txt
	assert_rows "$C" 3
	run -0 mv-get "$C" < <(printf '0\n7\n1000000000000\n')
	assert_line -n 0 "0${T}0.125,0.25,0.5"
	assert_line -n 1 "7${T}1,2,3"
	assert_line -n 2 "1000000000000${T}-1,-2,-3"
}

@test "fvecs: a file round-trips through mv-get --all --format fvecs" {
	run -0 mv-create "$C" --dim 16
	gen vecs 300 16 --format fvecs >v.fvecs
	run -0 mv-insert "$C" v.fvecs
	assert_rows "$C" 300
	mv-get "$C" --all --format fvecs >out.fvecs
	cmp v.fvecs out.fvecs
}

@test "fvecs values match the text of the same vectors" {
	run -0 mv-create "$C" --dim 5
	gen vecs 20 5 --seed 9 --format fvecs >v.fvecs
	gen vecs 20 5 --seed 9 --format text --ids-first 0 >v.txt
	run -0 mv-insert --print-ids "$C" v.fvecs
	first=${lines[0]}
	mv-get "$C" --all >got.tsv
	awk -v f="$first" '{ $1 = $1 + f; print }' v.txt >v.shifted
	expect_rows v.shifted >want.tsv
	diff want.tsv got.tsv
}

@test "bvecs: bytes become float values" {
	run -0 mv-create "$C" --dim 3
	printf '\003\000\000\000\000\001\377\003\000\000\000\200\002\010' >v.bvecs
	run -0 mv-insert --ids <(printf '1\n2\n') "$C" v.bvecs
	run -0 mv-get "$C" --all
	assert_output "1${T}0,1,255
2${T}128,2,8"
}

@test "bvecs: a generated file matches its text form" {
	run -0 mv-create "$C" --dim 12
	gen vecs 50 12 --seed 4 --format bvecs >v.bvecs
	run -0 mv-insert --print-ids "$C" v.bvecs
	assert_equal "${#lines[@]}" 50
	first=${lines[0]}
	mv-get "$C" --all --format fvecs >out.fvecs
	python3 - v.bvecs out.fvecs <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
f = open(sys.argv[2], "rb").read()
bi = fi = 0
while bi < len(b):
    d = struct.unpack_from("<i", b, bi)[0]
    vals = list(b[bi + 4:bi + 4 + d])
    bi += 4 + d
    assert struct.unpack_from("<i", f, fi)[0] == d
    got = struct.unpack_from("<%df" % d, f, fi + 4)
    fi += 4 + 4 * d
    assert [float(v) for v in vals] == list(got), (vals, got)
assert fi == len(f)
EOF
}

# npy v1.0: magic, version, header length, a dict padded with spaces and
# ended by a newline so that the data starts at a multiple of 64.
write_npy() {
	local rows=$1 cols=$2 descr=${3:-<f4}
	local dict="{'descr': '$descr', 'fortran_order': False, 'shape': ($rows, $cols), }"
	local pad=$((64 - (10 + ${#dict} + 1) % 64))
	printf '\223NUMPY\001\000'
	printf "\\$(printf '%03o' $(((${#dict} + pad + 1) % 256)))\\$(printf '%03o' $(((${#dict} + pad + 1) / 256)))"
	printf '%s%*s\n' "$dict" "$pad" ""
}

@test "npy: a 2-D float32 array written by printf" {
	run -0 mv-create "$C" --dim 4
	{
		write_npy 3 4
		# 1 2 3 4 / 0.5 0 -1 2 / 4 4 4 4 as little-endian float32
		printf '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100'
		printf '\000\000\000\077\000\000\000\000\000\000\200\277\000\000\000\100'
		printf '\000\000\200\100\000\000\200\100\000\000\200\100\000\000\200\100'
	} >v.npy
	[ $(($(stat -c %s v.npy) % 16)) -eq 0 ]
	run -0 mv-insert --ids <(printf '10\n11\n12\n') "$C" v.npy
	run -0 mv-get "$C" --all
	assert_output "10${T}1,2,3,4
11${T}0.5,0,-1,2
12${T}4,4,4,4"
}

@test "npy: a float64 array is refused with exit 65" {
	run -0 mv-create "$C" --dim 1
	{
		write_npy 1 1 '<f8'
		printf '\000\000\000\000\000\000\360\077'
	} >v.npy
	run -65 --separate-stderr mv-insert "$C" v.npy
	assert_regex "$stderr" '^mv-insert: v\.npy(:[0-9]+)?: '
	assert_rows "$C" 0
}

@test "jsonl: ids and scalar fields, shown by mv-search --fields and mv-get" {
	run -0 mv-create "$C" --dim 2 --field price:float64 --field tag:string --field n:int64
	cat >v.jsonl <<'EOF'
{"id":7,"vector":[1,0],"price":9.5,"tag":"red","n":3}
{"id":8,"vector":[0,1],"price":0.25,"tag":"green","n":-4}
{"id": 9, "n": 12, "tag": "blue", "vector": [2, 2], "price": 100}
EOF
	run -0 mv-insert "$C" v.jsonl
	assert_rows "$C" 3
	run -0 mv-search "$C" -k 2 --fields price,tag < <(printf '1 0\n')
	assert_output "0${T}1${T}7${T}0${T}9.5${T}red
0${T}2${T}8${T}2${T}0.25${T}green"
	run -0 mv-search "$C" -k 1 --fields n < <(printf '2 2\n')
	assert_output "0${T}1${T}9${T}0${T}12"
	run -0 mv-get "$C" --fields price,tag,n < <(printf '9\n7\n')
	assert_output "9${T}2,2${T}100${T}blue${T}12
7${T}1,0${T}9.5${T}red${T}3"
}

@test "jsonl: mv-get --format jsonl gives the rows back" {
	run -0 mv-create "$C" --dim 3 --field price:float64 --field tag:string --field n:int64
	gen vecs 30 3 --format jsonl --ids-first 100 >v.jsonl
	run -0 mv-insert "$C" v.jsonl
	mv-get "$C" --all --format jsonl >out.jsonl
	python3 - v.jsonl out.jsonl <<'EOF'
import json, sys
want = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(want), (len(got), len(want))
for w, g in zip(want, got):
    for k in w:
        assert g.get(k) == w[k], (k, w, g)
EOF
}

@test "the format is chosen by --format when the extension says nothing" {
	run -0 mv-create "$C" --dim 4
	gen vecs 10 4 --format fvecs >v.bin
	run -0 mv-insert --format fvecs "$C" v.bin
	gen vecs 5 4 >v.dat
	run -0 mv-insert --format text "$C" v.dat
	assert_rows "$C" 15
	run -64 mv-insert --format parquet "$C" v.dat
	assert_rows "$C" 15
}

@test "formats are sniffed on stdin: fvecs, text, jsonl, npy" {
	run -0 mv-create "$C" --dim 4
	gen vecs 10 4 --format fvecs | mv-insert "$C"
	assert_rows "$C" 10
	gen vecs 3 4 --seed 2 | mv-insert "$C"
	assert_rows "$C" 13
	gen vecs 2 4 --seed 3 --sep , | mv-insert "$C"
	assert_rows "$C" 15
	printf '{"vector":[1,2,3,4]}\n{"vector":[4,3,2,1]}\n' | mv-insert "$C"
	assert_rows "$C" 17
	{
		write_npy 1 4
		printf '\000\000\200\077\000\000\200\077\000\000\200\077\000\000\200\077'
	} | mv-insert "$C"
	assert_rows "$C" 18
}

@test "several input files are one atomic batch" {
	run -0 mv-create "$C" --dim 4
	gen vecs 10 4 --format fvecs >a.fvecs
	gen vecs 5 4 --seed 5 >b.txt
	run -0 mv-insert --print-ids "$C" a.fvecs b.txt
	assert_equal "${#lines[@]}" 15
	assert_rows "$C" 15
}

@test "an empty input inserts nothing and exits 0" {
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" </dev/null
	: >empty.fvecs
	: >empty.txt
	: >empty.jsonl
	run -0 mv-insert "$C" empty.fvecs
	run -0 mv-insert "$C" empty.txt
	run -0 mv-insert --print-ids "$C" empty.jsonl
	assert_output ""
	assert_rows "$C" 0
}

@test "a progress bar is not drawn when stderr is not a terminal" {
	run -0 mv-create "$C" --dim 8
	gen vecs 2000 8 --format fvecs >v.fvecs
	run -0 --separate-stderr mv-insert "$C" v.fvecs
	assert_equal "$stderr" ""
}
