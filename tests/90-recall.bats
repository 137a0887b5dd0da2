#!/usr/bin/env bats
# Recall: exact search against the ground truth of glove-100 (the shared
# data set, or scripts/fetch-data.sh's copy; generated clustered data with a
# python brute-force ground truth when neither is there), and indexes
# against exact search with a threshold (pgvector's recall tests).

load helpers/mv

NQ=2000
K=10

setup_file() {
	setup_file_node
	cd "$BATS_FILE_TMPDIR" || return 1
	if G=$(glove_dir) || { [ -n "${MV_FETCH_DATA:-}" ] &&
		G=$(sh "$MV_ROOT/scripts/fetch-data.sh" glove-100); }; then
		export MV_DATA=glove G
		export DIM=100 NBASE=$(($(stat -L -c %s "$G/base.fvecs") / 404))
		head -c $((NQ * 404)) "$G/query.fvecs" >q.fvecs
		# The ground truth as mv-search TSV (ids = base rows).
		python3 - "$G/groundtruth.ivecs" "$NQ" "$K" >truth.tsv <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
for q in range(int(sys.argv[2])):
    (d,) = struct.unpack("<i", f.read(4))
    ids = struct.unpack("<%di" % d, f.read(4 * d))
    for r, i in enumerate(ids[:int(sys.argv[3])], 1):
        print("%d\t%d\t%d\t0" % (q, r, i))
PY
		mv-create "${P}glove" --dim 100 --metric cosine
		mv-insert --ids <(seq 0 $((NBASE - 1))) "${P}glove" "$G/base.fvecs"
		head -c $((20000 * 404)) "$G/base.fvecs" >sub.fvecs
	else
		export MV_DATA=generated
		export DIM=24 NBASE=4000
		echo "# glove-100 not found: generated clustered data" >&3
		gen clusters $((NBASE + 200)) "$DIM" 40 --seed 5 >all.txt
		head -n "$NBASE" all.txt >base.txt
		tail -n 200 all.txt | cut -d' ' -f2- >q.txt
		gen knn base.txt q.txt "$K" cosine >truth.tsv
		mv-create "${P}glove" --dim "$DIM" --metric cosine
		mv-insert --ids-first "${P}glove" base.txt
		cp base.txt sub.txt
	fi
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
	cd "$BATS_FILE_TMPDIR"
}

queries() {
	if [ "$MV_DATA" = glove ]; then echo q.fvecs; else echo q.txt; fi
}

# recall GOT TRUTH: recall@K of one mv-search TSV against another.
recall() {
	gen recall-tsv "$1" "$2" "$K"
}

# at_least X Y: X >= Y as numbers.
at_least() {
	awk -v x="$1" -v y="$2" 'BEGIN { exit !(x >= y) }'
}

@test "exact search matches the ground truth (recall@10 >= 0.999)" {
	run -0 mv-ls "${P}glove"
	assert_output --regexp "^${P}glove${T}$DIM${T}cosine${T}$NBASE${T}"
	mv-search "${P}glove" -k "$K" "$(queries)" >flat.tsv
	r=$(recall flat.tsv truth.tsv)
	echo "# $MV_DATA exact recall@$K: $r" >&3
	at_least "$r" 0.999 || fail "exact search recall@$K is $r"
	if [ "$MV_DATA" = glove ] && [ -x "$MV_ROOT/bench/recall" ]; then
		run -0 "$MV_ROOT/bench/recall" -k "$K" --metric cosine --nq "$NQ" \
			flat.tsv "$G/groundtruth.ivecs" "$G/groundtruth_dist.fvecs"
		assert_line --regexp "^recall@${K}_ties${T}(1|1\\.0+|0\\.99[0-9]*)\$"
	fi
}

@test "IVF index: recall@10 >= 0.90 at nprobe 32, and nprobe 1 is worse" {
	if [ "$MV_DATA" = glove ]; then spec=IVF1024,Flat; else spec=IVF32,Flat; fi
	run -0 mv-index "${P}glove" --type "$spec"
	run -0 mv-ls "${P}glove"
	assert_output --regexp "${T}$spec\$"
	mv-search "${P}glove" -k "$K" --nprobe 32 "$(queries)" >ivf32.tsv
	mv-search "${P}glove" -k "$K" --nprobe 1 "$(queries)" >ivf1.tsv
	r32=$(recall ivf32.tsv truth.tsv)
	r1=$(recall ivf1.tsv truth.tsv)
	echo "# $MV_DATA $spec recall@$K: nprobe 1 $r1, nprobe 32 $r32" >&3
	at_least "$r32" 0.90 || fail "nprobe 32: recall $r32"
	at_least "$r32" "$r1" || fail "nprobe 32 ($r32) worse than nprobe 1 ($r1)"
	[ "$r1" != "$r32" ] || fail "nprobe changes nothing ($r1)"
}

@test "mv-index --drop goes back to exact results" {
	mv-search "${P}glove" -k "$K" "$(queries)" >before.tsv
	run -0 mv-index "${P}glove" --drop
	run -0 mv-ls "${P}glove"
	assert_output --regexp "${T}-\$"
	mv-search "${P}glove" -k "$K" "$(queries)" >after.tsv
	r=$(recall after.tsv truth.tsv)
	at_least "$r" 0.999 || fail "exact search after --drop: recall $r"
}

@test "HNSW index: recall@10 against exact search >= 0.98 at ef 256" {
	run -0 mv-create "${P}sub" --dim "$DIM" --metric cosine
	if [ "$MV_DATA" = glove ]; then
		run -0 mv-insert "${P}sub" sub.fvecs
	else
		run -0 mv-insert --ids-first "${P}sub" sub.txt
	fi
	mv-search "${P}sub" -k "$K" "$(queries)" >exact.tsv
	run -0 mv-index "${P}sub" --type HNSW32
	mv-search "${P}sub" -k "$K" --ef 16 "$(queries)" >ef16.tsv
	mv-search "${P}sub" -k "$K" --ef 256 "$(queries)" >ef256.tsv
	r16=$(recall ef16.tsv exact.tsv)
	r256=$(recall ef256.tsv exact.tsv)
	echo "# $MV_DATA HNSW32 recall@$K vs exact: ef 16 $r16, ef 256 $r256" >&3
	at_least "$r256" 0.98 || fail "ef 256: recall $r256 (ef 16: $r16)"
	at_least "$r256" "$r16" || fail "ef 256 ($r256) worse than ef 16 ($r16)"
}

@test "rows inserted after an index is built are found too" {
	run -0 mv-create "${P}late" --dim 4
	run -0 mv-insert --ids-first "${P}late" < <(gen vecs 500 4 --ids-first 0)
	run -0 mv-index "${P}late" --type IVF4,Flat
	run -0 mv-insert --ids-first "${P}late" < <(printf '9000 100 100 100 100\n')
	run -0 mv-search "${P}late" -k 1 --nprobe 4 < <(printf '100 100 100 100\n')
	assert_output "0${T}1${T}9000${T}0"
}
