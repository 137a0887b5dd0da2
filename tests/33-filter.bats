#!/usr/bin/env bats
# --filter (issue 8, DESIGN.md "Filters"): mv-search, mv-get and mv-delete
# over the scalar fields and id.  Every answer is checked against the same
# predicate evaluated by python3 over the jsonl that was inserted (ref.py
# below), top-k with exact distances; before and after an index build
# (HNSW, IVF), with deleted rows, and every error (exit 64, the column).

load helpers/mv

# The data: N rows of dim 8; n = id % 1000 gives a selectivity by bound
# (n < 500: 50%, n < 10: 1%, n < 1: 0.1%), m a small signed int, price a
# float, tag strings with spaces, %, quotes and non-ASCII bytes.
N=6000

setup_file() {
	setup_file_node
	D=$BATS_FILE_TMPDIR
	export D
	cat >"$D/ref.py" <<'EOF'
import json, math, os, random, re, sys

BASE = os.environ.get("BASE") or "base.jsonl"

def data(argv):
    n, seed = int(argv[0]), 7
    rng = random.Random(seed)
    tags = ["red", "green", "blue", "dark red", "50% off", "caf\u00e9",
            "it's", 'say "hi"', "", "r_d", "redder"]
    with open("base.jsonl", "w") as f:
        for i in range(n):
            r = {"id": i, "vector": [round(rng.uniform(-1, 1), 3) for _ in range(8)],
                 "n": i % 1000, "m": rng.randint(-50, 50),
                 "price": round(rng.uniform(0, 100), 2),
                 "tag": tags[rng.randrange(len(tags))]}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open("q.txt", "w") as f:
        for _ in range(20):	# 20: batches go through BLAS
            f.write(" ".join("%.3f" % rng.uniform(-1, 1) for _ in range(8)) + "\n")

def like(s, pat):
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c)
                 for c in pat)
    return re.fullmatch(rx, s, re.S) is not None

def rows(dead):
    gone = set()
    if dead:
        gone = {int(l) for l in open(dead) if l.strip()}
    for l in open(BASE, encoding="utf-8"):
        r = json.loads(l)
        if r["id"] not in gone:
            yield r

def pred(expr):
    return eval("lambda r: " + expr, {"like": like})

# ids EXPR [DEAD]: the matching ids, ascending.
def ids(argv):
    p = pred(argv[0])
    for r in rows(argv[1] if len(argv) > 1 else None):
        if p(r):
            print(r["id"])

# knn EXPR K METRIC [DEAD]: "qno<TAB>rank<TAB>id" of the exact top-K
# among the matching rows (l2 ascending, ip/cosine descending, ties by id).
def knn(argv):
    p, k, metric = pred(argv[0]), int(argv[1]), argv[2]
    base = [r for r in rows(argv[3] if len(argv) > 3 else None) if p(r)]
    for qi, l in enumerate(open("q.txt")):
        q = [float(x) for x in l.split()]
        sc = []
        for r in base:
            v = r["vector"]
            if metric == "l2":
                s = sum((a - b) ** 2 for a, b in zip(q, v))
            else:
                s = -sum(a * b for a, b in zip(q, v))
                if metric == "cosine":
                    s /= math.sqrt(sum(a * a for a in v) * sum(a * a for a in q)) or 1
            sc.append((s, r["id"]))
        sc.sort()
        for rank, (s, i) in enumerate(sc[:k]):
            print("%d\t%d\t%d" % (qi, rank + 1, i))

# recall GOT WANT: share of WANT's (qno, id) pairs that GOT has.
def recall(argv):
    got = {tuple(l.rstrip("\n").split("\t")[0:3:2]) for l in open(argv[0])}
    want = [tuple(l.rstrip("\n").split("\t")[0:3:2]) for l in open(argv[1])]
    print("%.4f" % (sum(w in got for w in want) / max(len(want), 1)))

{"data": data, "ids": ids, "knn": knn, "recall": recall}[sys.argv[1]](sys.argv[2:])
EOF
	(cd "$D" && python3 ref.py data "$N") || return 1
	# One collection for the read-only tests.
	mv-create "${P}f" --dim 8 --field n:int64 --field m:int64 \
		--field price:float64 --field tag:string >/dev/null &&
		mv-insert "${P}f" "$D/base.jsonl" >/dev/null
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
	F=${P}f
}

ref() {
	(cd "$D" && python3 ref.py "$@")
}

# same_ids EXPR PYEXPR [DEAD]: mv-get --all --filter EXPR on $F gives the
# ids python finds.
same_ids() {
	local got want
	got=$(mv-get "$F" --all --filter "$1" | cut -f1) ||
		fail "mv-get --filter '$1' failed"
	want=$(ref ids "$2" ${3:+"$3"})
	[ "$got" = "$want" ] || fail "--filter '$1': $(wc -l <<<"$got") rows, python: $(wc -l <<<"$want") (first got: $(head -3 <<<"$got" | tr '\n' ' '); want: $(head -3 <<<"$want" | tr '\n' ' '))"
}

# same_knn COLL K EXPR PYEXPR [DEAD [mv-search args]]: the exact top-K.
same_knn() {
	local c=$1 k=$2 e=$3 pe=$4 dead=${5:-}
	shift 5 2>/dev/null || shift $#
	mv-search "$c" -k "$k" --filter "$e" "$@" "$D/q.txt" | cut -f1-3 >got.tsv ||
		fail "mv-search --filter '$e' failed"
	ref knn "$pe" "$k" l2 ${dead:+"$dead"} >want.tsv
	diff want.tsv got.tsv >/dev/null ||
		fail "mv-search --filter '$e' -k $k: $(diff want.tsv got.tsv | head -6)"
}

@test "comparisons on int64, float64, string and id, either side" {
	same_ids 'n == 7' 'r["n"] == 7'
	same_ids 'n != 7' 'r["n"] != 7'
	same_ids 'n < 10' 'r["n"] < 10'
	same_ids 'n <= 10' 'r["n"] <= 10'
	same_ids 'n > 990' 'r["n"] > 990'
	same_ids 'n >= 990' 'r["n"] >= 990'
	same_ids '10 > n' 'r["n"] < 10'
	same_ids 'm < -45' 'r["m"] < -45'
	same_ids 'price >= 99.5' 'r["price"] >= 99.5'
	same_ids 'price < 0.5' 'r["price"] < 0.5'
	same_ids 'price == 50' 'r["price"] == 50'
	same_ids 'price > 99' 'r["price"] > 99'
	same_ids 'n < 2.5' 'r["n"] < 2.5'
	same_ids 'id < 30' 'r["id"] < 30'
	same_ids 'id == 4321' 'r["id"] == 4321'
	same_ids 'tag == "red"' 'r["tag"] == "red"'
	same_ids "tag == 'dark red'" 'r["tag"] == "dark red"'
	same_ids 'tag != "red"' 'r["tag"] != "red"'
	same_ids 'tag < "c"' 'r["tag"].encode() < b"c"'
	same_ids 'tag >= "red"' 'r["tag"].encode() >= b"red"'
	same_ids 'tag == ""' 'r["tag"] == ""'
}

@test "strings with spaces, %, quotes and non-ASCII travel intact" {
	same_ids 'tag == "50% off"' 'r["tag"] == "50% off"'
	same_ids 'tag == "café"' 'r["tag"] == "café"'
	same_ids "tag == 'it\\'s'" 'r["tag"] == "it'"'"'s"'
	same_ids 'tag == "say \"hi\""' 'r["tag"] == "say \"hi\""'
}

@test "ranges, in, not in, like" {
	same_ids '10 < n <= 20' '10 < r["n"] <= 20'
	same_ids '0 <= m < 3' '0 <= r["m"] < 3'
	same_ids '1.5 < price < 2.5' '1.5 < r["price"] < 2.5'
	same_ids 'n in [1, 5, 999]' 'r["n"] in (1, 5, 999)'
	same_ids 'n not in [0, 1, 2]' 'r["n"] not in (0, 1, 2)'
	same_ids 'id in [3, 5, 7, 100000]' 'r["id"] in (3, 5, 7)'
	same_ids 'tag in ["red", "blue"]' 'r["tag"] in ("red", "blue")'
	same_ids 'tag not in ["red", "blue", ""]' 'r["tag"] not in ("red", "blue", "")'
	same_ids 'tag like "red%"' 'like(r["tag"], "red%")'
	same_ids 'tag like "%red"' 'like(r["tag"], "%red")'
	same_ids 'tag like "%ee%"' 'like(r["tag"], "%ee%")'
	same_ids 'tag like "r_d"' 'like(r["tag"], "r_d")'
	same_ids 'tag like "%"' 'True'
}

@test "and, or, not, their symbols, parentheses and precedence" {
	same_ids 'n < 100 and tag == "red"' 'r["n"] < 100 and r["tag"] == "red"'
	same_ids 'n < 100 && m > 0' 'r["n"] < 100 and r["m"] > 0'
	same_ids 'n < 5 or tag == "blue"' 'r["n"] < 5 or r["tag"] == "blue"'
	same_ids 'n < 5 || n > 995' 'r["n"] < 5 or r["n"] > 995'
	same_ids 'not n < 995' 'not r["n"] < 995'
	same_ids '!(n < 995)' 'not r["n"] < 995'
	same_ids 'n < 50 or m > 40 and price < 30' 'r["n"] < 50 or (r["m"] > 40 and r["price"] < 30)'
	same_ids '(n < 50 or m > 40) and price < 30' '(r["n"] < 50 or r["m"] > 40) and r["price"] < 30'
	same_ids 'not (tag like "%red%" or n >= 10) and m != 0' 'not (like(r["tag"], "%red%") or r["n"] >= 10) and r["m"] != 0'
	same_ids 'n > 1000' 'False'
}

@test "mv-get with ids returns only those that match; jsonl export" {
	run -0 --separate-stderr mv-get "$F" --filter 'n < 3' < <(printf '0\n1\n5\n1002\n7000\n')
	assert_equal "$(cut -f1 <<<"$output")" "0
1
1002"
	mv-get "$F" --all --filter 'tag == "café" and n < 300' --format jsonl >got.jsonl
	python3 - "$D/base.jsonl" got.jsonl <<'EOF'
import json, sys
want = [r for r in map(json.loads, open(sys.argv[1], encoding="utf-8"))
        if r["tag"] == "café" and r["n"] < 300]
got = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(want) > 5 and len(got) == len(want), (len(got), len(want))
for w, g in zip(want, got):
    assert g["id"] == w["id"] and g["tag"] == w["tag"] and g["n"] == w["n"], (g, w)
EOF
}

@test "mv-search: the k nearest among the matching rows, brute force" {
	same_knn "$F" 10 'n < 500' 'r["n"] < 500'
	same_knn "$F" 10 'n < 10' 'r["n"] < 10'
	same_knn "$F" 5 'tag == "blue" and m >= 0' 'r["tag"] == "blue" and r["m"] >= 0'
	same_knn "$F" 10 'n < 200 or price > 95' 'r["n"] < 200 or r["price"] > 95'
	# --fields still line up with the hits.
	mv-search "$F" -k 3 --filter 'n < 10' --fields n,tag "$D/q.txt" >f.tsv
	awk -F'\t' '$5 >= 10 || $3 % 1000 != $5 { exit 1 }' f.tsv ||
		fail "a hit with n >= 10: $(head -3 f.tsv)"
}

@test "fewer than k matches gives exactly the matches, nothing for none" {
	run -0 mv-search "$F" -k 10 --filter 'id in [3, 5, 7]' "$D/q.txt"
	assert_equal "$(wc -l <<<"$output")" 60
	assert_equal "$(cut -f3 <<<"$output" | sort -un | tr '\n' ' ')" "3 5 7 "
	run -0 --separate-stderr mv-search "$F" -k 10 --filter 'n > 5000' "$D/q.txt"
	assert_output ""
}

@test "bad filters exit 64 and name the column, before anything is sent" {
	for tool in "mv-search $F" "mv-get $F --all" "mv-delete $F"; do
		t=${tool%% *}
		run -64 --separate-stderr $tool --filter 'n <' </dev/null
		assert_regex "$stderr" "^$t: --filter: col [0-9]+: "
		run -64 --separate-stderr $tool --filter 'nosuch == 1' </dev/null
		assert_regex "$stderr" "^$t: --filter: col 1: .*nosuch"
		run -64 --separate-stderr $tool --filter 'n < 3 and tag > 5' </dev/null
		assert_regex "$stderr" "^$t: --filter: col [0-9]+: "
		run -64 --separate-stderr $tool --filter 'price like "a%"' </dev/null
		assert_regex "$stderr" "^$t: --filter: col [0-9]+: "
		run -64 --separate-stderr $tool --filter '(n < 3' </dev/null
		assert_regex "$stderr" "^$t: --filter: col [0-9]+: "
		run -64 --separate-stderr $tool --filter '' </dev/null
		assert_regex "$stderr" "^$t: --filter: col [0-9]+: "
	done
	assert_rows "$F" "$N"
	# The node checks too: ERR PROTO with the column, the connection lives.
	run -0 wire <<EOF
SEARCH $F 1 0 0 filter=n%20%3C
SCAN $F 0 1 filter=zz%3D%3D1
DELETE $F filter=tag%3E5
GET $F 0 0 filter=n%3D%3D1
PING
EOF
	assert_line --index 0 --regexp '^ERR PROTO filter: col [0-9]+: '
	assert_line --index 1 --regexp '^ERR PROTO filter: col 1: .*zz'
	assert_line --index 2 --regexp '^ERR PROTO filter: col [0-9]+: '
	assert_line --index 3 'OK n=0 bytes=0'
	assert_line --index 4 OK
}

@test "mv-delete --filter removes exactly the matching rows; flushed; sessions" {
	run -0 mv-create "$C" --dim 8 --field n:int64 --field m:int64 \
		--field price:float64 --field tag:string
	run -0 mv-insert "$C" "$D/base.jsonl"
	want=$(ref ids 'r["n"] < 20 and r["tag"] == "red"' | wc -l)
	run -0 --separate-stderr mv-delete "$C" --filter 'n < 20 and tag == "red"'
	assert_equal "$stderr" "mv-delete: removed $want rows"
	assert_rows "$C" $((N - want))
	mv-get "$C" --all | cut -f1 >left
	ref ids 'not (r["n"] < 20 and r["tag"] == "red")' >want_left
	diff want_left left >/dev/null || fail "rows left differ"
	# Nothing matches: nothing removed.
	run -0 --separate-stderr mv-delete "$C" --filter 'n > 5000'
	assert_equal "$stderr" "mv-delete: removed 0 rows"
	# --session: pending until mv-flush, then gone.
	run -0 mv-delete "$C" --session s1 --filter 'id < 100'
	assert_rows "$C" $((N - want))
	run -0 mv-flush s1
	gone=$(cat left | awk '$1 < 100' | wc -l)
	assert_rows "$C" $((N - want - gone))
	run -0 mv-get "$C" --filter 'id < 100' --all
	assert_output ""
	run -64 mv-delete "$C" --filter 'n < 1' ids.txt
	run -64 mv-delete "$C" --filter 'n < 1' --batch 10
}

@test "deleted rows never come back from a filtered search or export" {
	run -0 mv-create "$C" --dim 8 --field n:int64 --field m:int64 \
		--field price:float64 --field tag:string
	run -0 mv-insert "$C" "$D/base.jsonl"
	# Delete the nearest matching rows of every query, and more.
	ref knn 'r["n"] < 10' 3 l2 | cut -f3 | sort -un >dead
	seq 0 7 2000 >>dead
	run -0 mv-delete "$C" dead
	F=$C same_ids 'n < 10' 'r["n"] < 10' "$PWD/dead"
	same_knn "$C" 10 'n < 10' 'r["n"] < 10' "$PWD/dead"
	same_knn "$C" 10 'n < 500' 'r["n"] < 500' "$PWD/dead"
}

# index_case SPEC ARGS...: filtered searches through an index of SPEC at
# high and low selectivity, with rows deleted after the build: exactly k
# rows, all matching and live, recall against exact.
index_case() {
	local spec=$1 min=$2
	shift 2
	run -0 mv-create "$C" --dim 8 --field n:int64 --field m:int64 \
		--field price:float64 --field tag:string
	run -0 mv-insert "$C" "$D/base.jsonl"
	run -0 mv-index "$C" --type "$spec"
	seq 1 11 6000 >dead
	run -0 mv-delete "$C" dead
	# One more segment, unindexed, that matches too: merged.
	python3 - "$D/base.jsonl" >more.jsonl <<'EOF'
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(l)
    if r["id"] < 500:
        r["id"] += 100000
        r["vector"] = [-x for x in r["vector"]]	# no exact ties
        print(json.dumps(r, ensure_ascii=False))
EOF
	run -0 mv-insert "$C" more.jsonl
	cat "$D/base.jsonl" more.jsonl >all.jsonl
	# 900 and 800: through the index (more than 4096 rows match, more
	# than the widened index search computes); 500 and 3: exact over the
	# matching rows.
	for sel in 'n < 900' 'n < 800' 'n < 500' 'n < 3'; do
		py="r['n'] < ${sel#n < }"
		mv-search "$C" -k 10 --filter "$sel" "$@" "$D/q.txt" >got.tsv ||
			fail "mv-search $spec --filter '$sel'"
		# Exactly k hits per query, each matching and live.
		assert_equal "$(wc -l <got.tsv)" 200
		cut -f3 got.tsv | sort -u >hit_ids
		BASE=$PWD/all.jsonl ref ids "$py" "$PWD/dead" | sort -u >ok_ids
		BASE=$PWD/all.jsonl ref knn "$py" 10 l2 "$PWD/dead" >want.tsv
		bad=$(comm -23 hit_ids ok_ids | head -3)
		[ -z "$bad" ] || fail "$spec '$sel': ids not matching or deleted: $bad"
		r=$(ref recall "$PWD/got.tsv" "$PWD/want.tsv")
		awk -v r="$r" -v m="$min" 'BEGIN { exit !(r >= m) }' ||
			fail "$spec '$sel': recall $r < $min"
	done
}

# A narrow search, so that the plan takes the index at 900 and 800 (the
# exact search would cost more than the widened index search: ef 12
# widened by 1/sqrt(share) is 13 or 14, times 256 rows, under the 4,900
# and 4,360 live rows that match in the index).
@test "through an HNSW index: k nearest matching, at high and low selectivity" {
	index_case HNSW16 0.9 --ef 12
}

@test "through an IVF index: k nearest matching, at high and low selectivity" {
	index_case IVF16,Flat 0.8 --nprobe 4
}

@test "through a fast-scan IVF index (no selector there): k nearest matching" {
	index_case IVF16,PQ8x4fs 0.5 --nprobe 4
}
