#!/usr/bin/env bats
# 76-s3read.bats - a cluster node reads from S3 only what it needs (issue
# 7): two mv-noded with num_replicas=0 on a real etcd and a real S3 (Ceph
# RGW).  The node that does not hold a unit reads the header and block A
# of its vector file (range reads), not the file: mv-stat --io's store_read
# stays far below the file's size, while the holder reads it whole; its
# searches (fanned out) and GETs (which map the file) still answer right,
# and a damaged block B, which the range reads did not check, is refused
# by GET (ERR IO, exit 75, naming the file) rather than a row silently
# left out.
# etcd is this file's own; RGW the run's (MV_TEST_*) or this file's.

load helpers/mv
load helpers/nodes3

setup_file() {
	nodes3_setup_file
}

teardown_file() {
	nodes3_teardown_file
}

setup() {
	nodes3_setup
}

teardown() {
	nodes3_teardown
}

# store_read I: the bytes node I has read from S3 (mv-stat --io).
store_read() {
	mv-stat -a "${ADDR[$1]}" --io | cut -f6
}

# held I: the segments node I serves.
held() {
	mv-stat -a "${ADDR[$1]}" | cut -f5
}

held_sum_is() {
	[ $(($(held 1) + $(held 2))) -eq "$1" ]
}

# two_up: nodes 1 and 2, num_replicas=0, merges off.
two_up() {
	node_up 1 --num_replicas=0 --auto_compact=false &&
		node_up 2 --num_replicas=0 --auto_compact=false
}

# vec_files: "<store path> <size>" of each vector file of 'things', from
# the metadata.
vec_files() {
	local token
	token=$(ETCDCTL_API=3 timeout 20 etcdctl --endpoints="$ETCD" get \
		--print-value-only "/$MV_USER/things/schema" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
	ETCDCTL_API=3 timeout 20 etcdctl --endpoints="$ETCD" get --prefix \
		"/$MV_USER/things/data/" | python3 -c 'import json, sys
lines = sys.stdin.read().split("\n")
for k, v in zip(lines[0::2], lines[1::2]):
    j = json.loads(v)
    if j["type"] == "vectors":
        print("%s/things-%s/%s %d" % (sys.argv[1], sys.argv[2],
                                      k.rsplit("/", 1)[1], j["size"]))' \
		"$MV_USER" "$token"
}

# s3 METHOD KEY [CURL ARGS...]: one signed request to the test bucket.
s3() {
	local m=$1 key=$2
	shift 2
	curl -sSf -X "$m" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"$MV_TEST_S3_ENDPOINT/$MV_TEST_S3_BUCKET/$key" "$@"
}

# small_unit: nodes 1 and 2, one flush of 3,000 rows of 64 dimensions
# (a 772 kB vector file with its header at the start); o the node that
# does not hold it, stopped; f and size its vector file.
small_unit() {
	two_up
	run -0 mv-create -a "${ADDR[1]}" things --dim 64
	gen vecs 3000 64 --seed 5 --ids-first 1 >"$BATS_TEST_TMPDIR/rows.txt"
	run -0 mv-insert -q -a "${ADDR[1]}" --ids-first things \
		"$BATS_TEST_TMPDIR/rows.txt"
	poll 10 held_sum_is 1 || fail "held: $(held 1) $(held 2)"
	if [ "$(held 1)" = 1 ]; then o=2; else o=1; fi
	read -r f size < <(vec_files)
	kill "${PID[$o]}"
	wait "${PID[$o]}" || true
}

# search_ok I: a search through node I equals brute force (want).
search_ok() {
	mv-search -a "${ADDR[$1]}" -k 5 things "$BATS_TEST_TMPDIR/q.txt" \
		>"$BATS_TEST_TMPDIR/s$1" &&
		diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/s$1"
}

# get_ok I IDS...: mv-get through node I gives each id's row as inserted.
get_ok() {
	local i=$1 id want got
	shift
	printf '%s\n' "$@" | mv-get -a "${ADDR[$i]}" things >"$BATS_TEST_TMPDIR/got" ||
		return 1
	for id in "$@"; do
		want=$(awk -v id="$id" '$1 == id { $1 = ""; sub(/^ /, "");
			n = split($0, v, " "); s = ""
			for (j = 1; j <= n; j++) s = s (j > 1 ? "," : "") v[j] + 0
			print s }' "$BATS_TEST_TMPDIR/rows.txt")
		got=$(awk -F'\t' -v id="$id" '$1 == id { n = split($2, v, ",");
			s = ""; for (j = 1; j <= n; j++) s = s (j > 1 ? "," : "") v[j] + 0
			print s }' "$BATS_TEST_TMPDIR/got")
		[ -n "$want" ] && [ "$got" = "$want" ] || {
			echo "GET $id through node $i: '$got', want '$want'" >&2
			return 1
		}
	done
}

@test "num_replicas=0: the node that does not hold a 5 MB unit reads its header and ids only (range reads), the holder all of it; searches and GETs through either answer right" {
	local f size o h i
	two_up
	run -0 mv-create -a "${ADDR[1]}" things --dim 64
	# 20,000 x 64 floats: a 5.1 MB vector file, streamed as it arrived
	# (past 4 MiB), so its header is a trailer.
	gen vecs 20000 64 --seed 3 --ids-first 1 >"$BATS_TEST_TMPDIR/rows.txt"
	gen vecs 5 64 --seed 4 >"$BATS_TEST_TMPDIR/q.txt"
	gen knn "$BATS_TEST_TMPDIR/rows.txt" "$BATS_TEST_TMPDIR/q.txt" 5 l2 \
		>"$BATS_TEST_TMPDIR/want"
	run -0 mv-insert -q -a "${ADDR[1]}" --ids-first things \
		"$BATS_TEST_TMPDIR/rows.txt"
	poll 10 held_sum_is 1 || fail "held: $(held 1) $(held 2)"
	read -r f size < <(vec_files)
	[ "$size" -gt 5000000 ] || fail "vector file of $size bytes"
	if [ "$(held 1)" = 1 ]; then h=1 o=2; else h=2 o=1; fi
	echo "holder $h, other $o, file $f of $size bytes" >&2

	# Restarted, the holder reads the file whole; the other its header
	# and block A: 8 bytes a row of the 256 of a row of vectors.  The
	# holder first: while it is away the other holds its units.
	for i in "$h" "$o"; do
		kill "${PID[$i]}"
		wait "${PID[$i]}" || true
		node_up "$i" --num_replicas=0 --auto_compact=false
	done
	poll 10 held_sum_is 1 || fail "held after restarts: $(held 1) $(held 2)"
	run -0 mv-ls -a "${ADDR[$o]}" things
	assert_output --regexp "^things${T}64${T}l2${T}20000${T}"
	echo "store_read: holder $(store_read "$h"), other $(store_read "$o")" >&2
	[ "$(store_read "$h")" -ge "$size" ] ||
		fail "the holder read $(store_read "$h") bytes of $size"
	[ "$(store_read "$o")" -lt $((size / 20)) ] ||
		fail "the other node read $(store_read "$o") bytes of $size"

	# Searches through either node equal brute force (the other asks the
	# holder); GET through the other maps the file and reads it whole.
	search_ok 1 || fail "search through node 1"
	search_ok 2 || fail "search through node 2"
	get_ok "$o" 1 12345 20000 || fail "GET through the other node"
	get_ok "$h" 1 12345 20000 || fail "GET through the holder"
	[ "$(store_read "$o")" -ge "$size" ] ||
		fail "GET through the other node read $(store_read "$o") bytes"
}

@test "num_replicas=0: a bit flipped in block B of a unit the node does not hold, unchecked by its range reads, is refused by GET (ERR IO, 75, naming the file), never a row left out" {
	local f size o i
	small_unit
	# Restarted, the other node reads the header and block A only.
	node_up "$o" --num_replicas=0 --auto_compact=false
	run -0 mv-ls -a "${ADDR[$o]}" things
	assert_output --regexp "^things${T}64${T}l2${T}3000${T}"
	[ "$(store_read "$o")" -lt $((size / 20)) ] ||
		fail "the other node read $(store_read "$o") bytes of $size"
	# One bit of the last row's vector (block B ends the file) flipped
	# in S3.
	s3 GET "$f" -o "$BATS_TEST_TMPDIR/seg" || fail "cannot fetch $f"
	flip_bit "$BATS_TEST_TMPDIR/seg" $((size - 10))
	s3 PUT "$f" --data-binary "@$BATS_TEST_TMPDIR/seg" >/dev/null ||
		fail "cannot put $f"
	run -75 mv-get -a "${ADDR[$o]}" things <<<"3000"
	assert_output --partial "$(basename "$f")"
	assert_output --partial "checksum mismatch"
	# The ids and the columns were fine: the rows are there, counted.
	run -0 mv-ls -a "${ADDR[$o]}" things
	assert_output --regexp "^things${T}64${T}l2${T}3000${T}"
}

# segments_are I N: mv-ls through node I counts N segments of 'things'.
segments_are() {
	[ "$(mv-ls -a "${ADDR[$1]}" things | cut -f5)" = "$2" ]
}

@test "num_replicas=1: a merge of three small segments on node 1 makes node 2 read the merged file only, not again the 5 MB index and the segment it covers; its searches still equal brute force" {
	local before after big f size idx merged
	node_up 1 --num_replicas=1 --auto_compact=false
	node_up 2 --num_replicas=1 --auto_compact=false
	run -0 mv-create -a "${ADDR[1]}" things --dim 64
	gen vecs 20000 64 --seed 3 --ids-first 1 >"$BATS_TEST_TMPDIR/rows.txt"
	gen vecs 150 64 --seed 6 --ids-first 20001 >"$BATS_TEST_TMPDIR/small.txt"
	gen vecs 5 64 --seed 4 >"$BATS_TEST_TMPDIR/q.txt"
	run -0 mv-insert -q -a "${ADDR[1]}" --ids-first things \
		"$BATS_TEST_TMPDIR/rows.txt"
	# A Flat index over the big segment (exact): the index is one unit
	# and no merge input.  Then three small flushes.
	run -0 mv-index -a "${ADDR[1]}" things --type Flat
	for i in 0 1 2; do
		sed -n "$((i * 50 + 1)),$((i * 50 + 50))p" \
			"$BATS_TEST_TMPDIR/small.txt" |
			mv-insert -q -a "${ADDR[1]}" --ids-first things
	done
	cat "$BATS_TEST_TMPDIR/small.txt" >>"$BATS_TEST_TMPDIR/rows.txt"
	gen knn "$BATS_TEST_TMPDIR/rows.txt" "$BATS_TEST_TMPDIR/q.txt" 5 l2 \
		>"$BATS_TEST_TMPDIR/want"
	poll 10 segments_are 2 4 || fail "node 2: $(mv-ls -a "${ADDR[2]}" things)"
	# Both nodes hold every unit (1 + num_replicas = 2).
	poll 10 held_sum_is 8 || fail "held: $(held 1) $(held 2)"
	idx=$(ETCDCTL_API=3 timeout 20 etcdctl --endpoints="$ETCD" get \
		--prefix "/$MV_USER/things/data/" --print-value-only |
		python3 -c 'import json, sys
print(sum(json.loads(l)["size"] for l in sys.stdin
          if l.strip() and json.loads(l)["type"] == "index"))')
	[ "$idx" -gt 5000000 ] || fail "index of $idx bytes"
	big=$(vec_files | sort -k2,2n | tail -n 1)
	before=$(store_read 2)

	run -0 bash -c "printf 'COMPACT things\nQUIT\n' |
		python3 '$MV_HELPERS/mvgen.py' wire '${ADDR[1]}' --idle 5"
	assert_output --partial "OK merged=3 segments=2"
	poll 10 segments_are 2 2 || fail "node 2: $(mv-ls -a "${ADDR[2]}" things)"
	after=$(store_read 2)
	merged=0
	while read -r f size; do
		[ "$f $size" = "$big" ] || merged=$((merged + size))
	done < <(vec_files)
	echo "node 2 read $((after - before)) bytes for the reload; merged" \
		"file $merged, index $idx, big segment ${big##* }" >&2
	[ "$merged" -gt 0 ] || fail "no merged file"
	[ $((after - before)) -le "$merged" ] ||
		fail "node 2 read $((after - before)) bytes, the merged file is $merged"
	run -0 mv-ls -a "${ADDR[2]}" things
	assert_output --regexp "^things${T}64${T}l2${T}20150${T}2${T}Flat"
	search_ok 1 || fail "search through node 1"
	search_ok 2 || fail "search through node 2"
	get_ok 2 1 20000 20001 20150 || fail "GET through node 2"
}

@test "num_replicas=0: a bit flipped in block A (the ids) of a unit the node does not hold stops its restart (74), naming the file; repaired, it starts" {
	local f size o st
	small_unit
	# Block A follows the 64-byte header of a file flushed whole.
	s3 GET "$f" -o "$BATS_TEST_TMPDIR/good" || fail "cannot fetch $f"
	cp "$BATS_TEST_TMPDIR/good" "$BATS_TEST_TMPDIR/bad"
	flip_bit "$BATS_TEST_TMPDIR/bad" 70
	s3 PUT "$f" --data-binary "@$BATS_TEST_TMPDIR/bad" >/dev/null ||
		fail "cannot put $f"
	! node_up "$o" --num_replicas=0 --auto_compact=false 2>/dev/null ||
		fail "node $o started on a damaged file"
	st=0
	wait "${PID[$o]}" || st=$?
	[ "$st" = 74 ] || fail "node $o exited $st"
	grep -q "$(basename "$f").*checksum mismatch" "$BATS_TEST_TMPDIR/n$o.log" ||
		fail "no error naming the file: $(tail -n 3 "$BATS_TEST_TMPDIR/n$o.log")"
	s3 PUT "$f" --data-binary "@$BATS_TEST_TMPDIR/good" >/dev/null ||
		fail "cannot put $f back"
	node_up "$o" --num_replicas=0 --auto_compact=false
	run -0 mv-ls -a "${ADDR[$o]}" things
	assert_output --regexp "^things${T}64${T}l2${T}3000${T}"
}
