#!/usr/bin/env bats
# mv-search: the TSV it prints, k, ties, and l2/ip/cosine results checked
# against an independent brute force in awk (awk_knn, helpers/mv.bash).

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

@test "one line per hit: query_no, rank, id, distance; ties by smaller id" {
	run -0 mv-create "$C" --dim 4
	printf '5 -1 0 0 0\n1 0 0 0 0\n3 0 2 0 0\n4 1 1 1 1\n2 1 0 0 0\n' >v.txt
	run -0 mv-insert --ids-first "$C" v.txt
	run -0 --separate-stderr mv-search "$C" -k 3 < <(printf '0 0 0 0\n1 1 1 1\n')
	assert_equal "$stderr" ""
	assert_output "0${T}1${T}1${T}0
0${T}2${T}2${T}1
0${T}3${T}5${T}1
1${T}1${T}4${T}0
1${T}2${T}2${T}3
1${T}3${T}1${T}4"
}

@test "k larger than the rows gives fewer lines, never a placeholder" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf '1 0 0\n2 1 1\n3 2 2\n')
	run -0 mv-search "$C" -k 10 < <(printf '0 0\n5 5\n')
	assert_equal "${#lines[@]}" 6
	refute_output --partial "${T}-1${T}"
	assert_line -n 2 "0${T}3${T}3${T}8"
	assert_line -n 3 "1${T}1${T}3${T}18"
}

@test "k defaults to 10" {
	run -0 mv-create "$C" --dim 3
	run -0 mv-insert "$C" < <(gen vecs 25 3)
	run -0 mv-search "$C" < <(gen vecs 2 3 --seed 5)
	assert_equal "${#lines[@]}" 20
	assert_line -n 9 --regexp "^0${T}10${T}"
	assert_line -n 19 --regexp "^1${T}10${T}"
}

@test "l2: squared Euclidean distances equal an awk brute force" {
	run -0 mv-create "$C" --dim 8 --metric l2
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	gen vecs 3 8 --seed 12 >q.txt
	run -0 mv-insert --ids-first "$C" base.txt
	awk_knn base.txt q.txt 5 l2 >want.tsv
	mv-search "$C" -k 5 q.txt >got.tsv
	diff want.tsv got.tsv
}

@test "ip: inner products, highest first, equal an awk brute force" {
	run -0 mv-create "$C" --dim 8 --metric ip
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	gen vecs 3 8 --seed 12 >q.txt
	run -0 mv-insert --ids-first "$C" base.txt
	awk_knn base.txt q.txt 5 ip >want.tsv
	mv-search "$C" -k 5 q.txt >got.tsv
	diff want.tsv got.tsv
}

@test "cosine: similarities, highest first, match an awk brute force" {
	run -0 mv-create "$C" --dim 8 --metric cosine
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	gen vecs 3 8 --seed 12 >q.txt
	run -0 mv-insert --ids-first "$C" base.txt
	awk_knn base.txt q.txt 5 cosine >want.tsv
	mv-search "$C" -k 5 q.txt >got.tsv
	cut -f1-3 want.tsv >want.ids
	cut -f1-3 got.tsv >got.ids
	diff want.ids got.ids
	paste want.tsv got.tsv | awk -F'\t' '{ d = $4 - $8; if (d < 0) d = -d
		if (d > 1e-5) { print "line " NR ": " $4 " vs " $8; bad = 1 } }
		END { exit bad }'
}

@test "cosine ignores the length of vectors" {
	run -0 mv-create "$C" --dim 2 --metric cosine
	run -0 mv-insert --ids-first "$C" < <(printf '1 10 0\n2 0 0.5\n3 1 1\n')
	run -0 mv-search "$C" -k 3 < <(printf '2 0\n')
	assert_line -n 0 "0${T}1${T}1${T}1"
	assert_line -n 1 --regexp "^0${T}2${T}3${T}0\\.7071067"
	assert_line -n 2 "0${T}3${T}2${T}0"
}

@test "queries are read in every input format" {
	run -0 mv-create "$C" --dim 8
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	run -0 mv-insert --ids-first "$C" base.txt
	gen vecs 3 8 --seed 12 >q.txt
	gen vecs 3 8 --seed 12 --format fvecs >q.fvecs
	gen vecs 3 8 --seed 12 --format jsonl >q.jsonl
	mv-search "$C" -k 4 q.txt >a.tsv
	mv-search "$C" -k 4 q.fvecs >b.tsv
	mv-search "$C" -k 4 <q.fvecs >c.tsv
	mv-search "$C" -k 4 q.jsonl >d.tsv
	gen vecs 3 8 --seed 12 --sep , | mv-search "$C" -k 4 >e.tsv
	[ "$(line_count a.tsv)" -eq 12 ]
	cmp a.tsv b.tsv
	cmp a.tsv c.tsv
	cmp a.tsv d.tsv
	cmp a.tsv e.tsv
}

@test "search merges results from every flushed segment" {
	run -0 mv-create "$C" --dim 8
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	for part in 0 1 2 3; do
		sed -n "$((part * 10 + 1)),$((part * 10 + 10))p" base.txt >p$part.txt
		run -0 mv-insert --ids-first "$C" p$part.txt
	done
	assert_rows "$C" 40
	gen vecs 3 8 --seed 12 >q.txt
	awk_knn base.txt q.txt 7 l2 >want.tsv
	mv-search "$C" -k 7 q.txt >got.tsv
	diff want.tsv got.tsv
}

@test "an empty query input prints nothing and exits 0" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert "$C" < <(printf '1 1\n')
	run -0 --separate-stderr mv-search "$C" </dev/null
	assert_output ""
	assert_equal "$stderr" ""
}

@test "search parameters are accepted on a collection without index" {
	run -0 mv-create "$C" --dim 8
	gen vecs 40 8 --seed 11 --ids-first 0 >base.txt
	run -0 mv-insert --ids-first "$C" base.txt
	gen vecs 3 8 --seed 12 >q.txt
	mv-search "$C" -k 5 q.txt >a.tsv
	mv-search "$C" -k 5 --nprobe 8 q.txt >b.tsv
	mv-search "$C" -k 5 --ef 32 q.txt >c.tsv
	cmp a.tsv b.tsv
	cmp a.tsv c.tsv
}

@test "mv-search | head -1 ends quietly" {
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" < <(gen vecs 3000 4 --format fvecs)
	gen vecs 300 4 --seed 3 >q.txt
	run -0 bash -c 'set -o pipefail; timeout 60 mv-search "$1" -k 100 q.txt 2>err.txt | head -1; echo "status=${PIPESTATUS[0]}"' _ "$C"
	assert_line -n 0 --regexp "^0${T}1${T}"
	assert_line -n 1 --regexp '^status=(0|141)$'
	run -0 cat err.txt
	assert_output ""
	assert_serving
}

@test "concurrent searches from several clients agree" {
	run -0 mv-create "$C" --dim 8
	run -0 mv-insert "$C" < <(gen vecs 2000 8 --format fvecs)
	gen vecs 20 8 --seed 3 >q.txt
	mv-search "$C" -k 10 q.txt >ref.tsv
	for n in 1 2 3 4 5 6; do
		mv-search "$C" -k 10 q.txt >out$n.tsv 3>&- &
	done
	wait
	for n in 1 2 3 4 5 6; do
		cmp ref.tsv out$n.tsv
	done
}

@test "mv-search usage and errors: -k 0 and -k x 64, unknown 1, missing 66" {
	run -0 mv-create "$C" --dim 2
	printf '1 1\n' >q.txt
	run -64 mv-search "$C" -k 0 q.txt
	run -64 mv-search "$C" -k x q.txt
	run -64 mv-search
	run -1 --separate-stderr mv-search nosuch q.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-search: .*nosuch'
	run -66 --separate-stderr mv-search "$C" nofile.txt
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^mv-search: .*nofile\.txt'
}

@test "mv-search: a query of the wrong dimension exits 65 naming file and line" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert "$C" < <(printf '1 1\n')
	printf '1 1\n2 2\n1 2 3\n' >q.txt
	run -65 --separate-stderr mv-search "$C" q.txt
	assert_regex "$stderr" '^mv-search: q\.txt:3: '
	printf '1 1\nnan 2\n' >q.txt
	run -65 --separate-stderr mv-search "$C" q.txt
	assert_regex "$stderr" '^mv-search: q\.txt:2: '
}

@test "negative ids are ranked and returned like any other; -2^63 is refused" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --ids-first "$C" < <(printf -- '-1 1 0\n-2 2 0\n5 3 0\n-7 4 0\n')
	run -0 mv-search "$C" -k 4 < <(printf '0 0\n')
	assert_output "0${T}1${T}-1${T}1
0${T}2${T}-2${T}4
0${T}3${T}5${T}9
0${T}4${T}-7${T}16"
	# Ties go to the smaller id, negative ones included.
	run -0 mv-search "$C" -k 3 < <(printf '3 0\n')
	assert_output "0${T}1${T}5${T}0
0${T}2${T}-7${T}1
0${T}3${T}-2${T}1"
	run -0 mv-insert --ids-first "$C" < <(printf -- '-3 3 0\n')
	run -0 mv-search "$C" -k 4 < <(printf '3 0\n')
	assert_output "0${T}1${T}-3${T}0
0${T}2${T}5${T}0
0${T}3${T}-7${T}1
0${T}4${T}-2${T}1"
	run -0 mv-get "$C" < <(printf -- '-7\n-1\n5\n')
	assert_output "-7${T}4,0
-1${T}1,0
5${T}3,0"
	run -0 mv-delete "$C" < <(printf -- '-1\n')
	run -0 mv-search "$C" -k 10 < <(printf '0 0\n')
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "0${T}1${T}-2${T}4"
	# The smallest int64 is the empty-slot marker: never an id.
	run -65 mv-insert --ids-first "$C" < <(printf -- '-9223372036854775808 1 1\n')
	run -0 wire < <(printf 'INSERT %s 1 ids 16\n' "$C"; gen i64 -9223372036854775808; gen f32 1 1)
	assert_output --regexp "^ERR BADDATA "
	run -0 mv-search "$C" -k 10 < <(printf '0 0\n')
	assert_equal "${#lines[@]}" 4
}

@test "assigned ids never wrap: past the largest int64 the insert is refused" {
	run -0 mv-create "$C" --dim 1
	run -0 mv-insert --ids-first "$C" < <(printf '9223372036854775805 5\n')
	run -0 mv-insert --print-ids "$C" < <(printf '1\n')
	assert_output "9223372036854775806"
	run -0 mv-insert --print-ids "$C" < <(printf '2\n')
	assert_output "9223372036854775807"
	run -65 --separate-stderr mv-insert --print-ids "$C" < <(printf '3\n')
	assert_output ""
	assert_regex "$stderr" "^mv-insert: .*ids"
	run -65 --separate-stderr mv-insert "$C" < <(printf '3\n4\n')
	assert_rows "$C" 3
	run -0 mv-search "$C" -k 5 < <(printf '0\n')
	assert_output "0${T}1${T}9223372036854775806${T}1
0${T}2${T}9223372036854775807${T}4
0${T}3${T}9223372036854775805${T}25"
	# Room for one more: a request for two is refused whole.
	run -0 mv-create "${C}b" --dim 1
	run -0 mv-insert --ids-first "${C}b" < <(printf '9223372036854775806 5\n')
	run -65 mv-insert "${C}b" < <(printf '1\n2\n')
	run -0 mv-insert --print-ids "${C}b" < <(printf '1\n')
	assert_output "9223372036854775807"
}
