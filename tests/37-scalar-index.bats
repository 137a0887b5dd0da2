#!/usr/bin/env bats
# Scalar indexes for --filter (issue 8, docs/ARCHITECTURE.md "Filtered
# search"): a segment of 10,000 rows gets a sorted index of a numeric or
# string column the first time a filter bounds it (a range, ==, in, like
# 'prefix%'), and a selective filter then finds its rows through it.  The
# answers are checked against python3's evaluation of the same predicate
# over the jsonl inserted, with deleted rows, before and after a restart;
# memory_limit's count (mv-stat --limits, held) shows each index built
# once, 4 bytes a row.

load helpers/mv

N=10000

setup_file() {
	setup_file_node
	D=$BATS_FILE_TMPDIR
	export D
	cat >"$D/ref.py" <<'EOF'
import json, random, sys

def data(argv):
    n, rng = int(argv[0]), random.Random(11)
    tags = ["red", "green", "blue"]
    with open("base.jsonl", "w") as f:
        for i in range(n):
            r = {"id": i * 3 + 1,
                 "vector": [round(rng.uniform(-1, 1), 3) for _ in range(4)],
                 "n": rng.randrange(1000) if i % 50 else
                      rng.choice([-2**63, 2**63 - 1, -1, 0]),
                 "price": round(rng.uniform(0, 100), 2) if i % 40 else
                          rng.choice([0.0, -0.0, 1e300, -1e300]),
                 "tag": tags[rng.randrange(3)],
                 "word": "w%d" % rng.randrange(2000) if i % 30 else
                         rng.choice(["", "w", "w1\\", "w10"])}
            f.write(json.dumps(r) + "\n")
    with open("q.txt", "w") as f:
        for _ in range(3):
            f.write(" ".join("%.3f" % rng.uniform(-1, 1) for _ in range(4)) + "\n")

def rows(dead):
    gone = {int(l) for l in open(dead) if l.strip()} if dead else set()
    for l in open("base.jsonl"):
        r = json.loads(l)
        if r["id"] not in gone:
            yield r

# knn EXPR K [DEAD]: "qno<TAB>rank<TAB>id", the exact l2 top-K (ties by id).
def knn(argv):
    p, k = eval("lambda r: " + argv[0]), int(argv[1])
    base = [r for r in rows(argv[2] if len(argv) > 2 else None) if p(r)]
    for qi, l in enumerate(open("q.txt")):
        q = [float(x) for x in l.split()]
        sc = sorted((sum((a - b) ** 2 for a, b in zip(q, r["vector"])), r["id"])
                    for r in base)
        for rank, (s, i) in enumerate(sc[:k]):
            print("%d\t%d\t%d" % (qi, rank + 1, i))

# want DEAD PYEXPR...: want.I, the ids of the I-th expression (python
# starts slowly here: one run for all of them), and want.knn, the top 5
# of the last one.
def want(argv):
    base = list(rows(argv[0] or None))
    for i, e in enumerate(argv[1:]):
        p = eval("lambda r: " + e)
        with open("want.%d" % i, "w") as f:
            for r in base:
                if p(r):
                    f.write("%d\n" % r["id"])
    with open("want.knn", "w") as f:
        sys.stdout = f
        knn([argv[-1], "5", argv[0]])

{"data": data, "want": want}[sys.argv[1]](sys.argv[2:])
EOF
	(cd "$D" && python3 ref.py data "$N") || return 1
	head -1 "$D/q.txt" >"$D/q1.txt"
	mv-create "${P}s" --dim 4 --field n:int64 --field price:float64 \
		--field tag:string --field word:string >/dev/null &&
		mv-insert "${P}s" "$D/base.jsonl" >/dev/null
}

teardown_file() {
	stop_node
	# The node the restart test started (its pid is that test's).
	if [ -s "$D/pid" ]; then
		MV_NODE_PID=$(cat "$D/pid")
		stop_node
	fi
}

setup() {
	mv_setup
	F=${P}s
}

ref() {
	(cd "$D" && python3 ref.py "$@")
}

# held: the bytes memory_limit counts on the node (mv-stat --limits).
held() {
	mv-stat --limits | cut -f6
}

# The filters, and the same predicates for python: selective ones on n,
# price, id and word (through the indexes), a wide one (the scan), an or.
MVF=('n == 7' 'n in [3, 500, 999]' '10 < n <= 12 and tag == "red"'
	'n == -9223372036854775808' 'n >= 9223372036854775807'
	'n < 0.5 and n > -1.5' 'price < 0.3' 'price == 0'
	'50 <= price < 50.2 and n < 500' 'id >= 3001 and id < 3100'
	'word == "w17"' 'word in ["w1", "w10", "w1999", "nothing"]'
	'word == "" and n < 900' 'word == "w1\\"'
	'word like "w12%"' '"w5" <= word < "w51"'
	'n < 500' 'n == 7 or price < 0.1' 'n < 5')
PYF=('r["n"] == 7' 'r["n"] in (3, 500, 999)'
	'10 < r["n"] <= 12 and r["tag"] == "red"' 'r["n"] == -2**63'
	'r["n"] == 2**63 - 1' 'r["n"] in (-1, 0)' 'r["price"] < 0.3'
	'r["price"] == 0' '50 <= r["price"] < 50.2 and r["n"] < 500'
	'3001 <= r["id"] < 3100'
	'r["word"] == "w17"' 'r["word"] in ("w1", "w10", "w1999")'
	'r["word"] == "" and r["n"] < 900' 'r["word"] == "w1\\"'
	'r["word"].startswith("w12")' '"w5" <= r["word"] < "w51"'
	'r["n"] < 500' 'r["n"] == 7 or r["price"] < 0.1' 'r["n"] < 5')

# all_filters [DEAD [REUSE [COUNT]]]: each filter's rows by mv-search -k N
# (all of them, for one query; GET and SCAN test rows one by one and take
# no index) are python's, and the last one's exact top 5 too.  REUSE=1
# takes python's answers of the call before (python starts slowly here);
# COUNT: only the first COUNT filters.
all_filters() {
	local i got n=${3:-${#MVF[@]}}
	[ "${2:-0}" = 1 ] || ref want "${1:-}" "${PYF[@]}"
	for ((i = 0; i < n; i++)); do
		[ -s "$D/want.$i" ] || fail "'${PYF[i]}' matches nothing: a useless check"
		mv-search "$F" -k "$N" --filter "${MVF[i]}" "$D/q1.txt" |
			cut -f3 | sort -n >got || fail "mv-search --filter '${MVF[i]}' failed"
		sort -n "$D/want.$i" | cmp -s - got ||
			fail "--filter '${MVF[i]}': $(wc -l <got) rows, python: $(wc -l <"$D/want.$i")"
	done
	[ "$n" = "${#MVF[@]}" ] || return 0
	mv-search "$F" -k 5 --filter "${MVF[-1]}" "$D/q.txt" | cut -f1-3 >got.tsv
	diff "$D/want.knn" got.tsv >/dev/null ||
		fail "mv-search -k 5 --filter '${MVF[-1]}': $(diff "$D/want.knn" got.tsv | head -4)"
}

@test "selective filters through sorted indexes give python's rows" {
	local h0 h1 h2
	h0=$(held)
	all_filters
	h1=$(held)
	# Indexes of n, price, id, word and tag: 4 bytes a row each, counted.
	[ $((h1 - h0)) -ge $((5 * 4 * N)) ] && [ $((h1 - h0)) -le $((5 * 4 * N + 4096)) ] ||
		fail "held grew by $((h1 - h0)) bytes, not 5 x 4 x $N"
	# Built once: filters on the same fields again build nothing more.
	all_filters "" 1 16
	h2=$(held)
	assert_equal "$h2" "$h1"
}

@test "deleted rows are left out, as by the scan" {
	# Half the rows of the selective filters, and every 13th id.
	ref want "" 'r["n"] in (7, 3, 500, 999, -1, 0)'
	awk 'NR % 2' "$D/want.0" >dead
	seq 1 39 $((3 * N)) >>dead
	run -0 mv-delete "$F" dead
	all_filters "$PWD/dead"
	cp dead "$D/dead"	# python's answers stay for the next test
}

@test "after a restart the indexes are built again, with the same answers" {
	need_own_node
	local h0 h1
	restart_node
	echo "$MV_NODE_PID" >"$D/pid"
	h0=$(held)
	all_filters "$D/dead" 1
	h1=$(held)
	[ $((h1 - h0)) -ge $((5 * 4 * N)) ] ||
		fail "held grew by $((h1 - h0)) bytes after the restart"
}
