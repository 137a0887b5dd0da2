#!/usr/bin/env bats
# --as-of FLUSH|TIME (issue 8, DESIGN.md "The time axis"): mv-search and
# mv-get answer as the collection stood right after a flush: rows committed
# later absent, rows deleted later present, upserts as they were.  Every
# answer is checked against the state after that flush kept by python3
# (model.py below) from the operations the test itself applied: exact
# search, through IVF and HNSW indexes, get by ids, get --all, with a
# filter; after a compaction and a restart; TIME forms and every error.

load helpers/mv

# Flush 1 inserts N rows; then inserts, deletes and upserts (ops below).
N=2000

setup_file() {
	setup_file_node
	D=$BATS_FILE_TMPDIR
	export D
	cat >"$D/model.py" <<'EOF'
import json, random, sys

# Each operation is one flush: (kind, first id, last id); upserts give
# new vectors and v = the operation's number.  gen writes the operations
# and, for each, the expected answers as of it (one python run: the
# machine is slow to start one).
def ops(n):
    return [("insert", 0, n - 1), ("insert", n, n + 299),
            ("delete", 0, 399), ("upsert", 400, 899),
            ("insert", n + 300, n + 499), ("delete", n, n + 99),
            ("upsert", 1000, 1099)]

def vec(rng):
    return [round(rng.uniform(-1, 1), 3) for _ in range(4)]

def gen(argv):
    n = int(argv[0])
    rng = random.Random(11)
    for i, (kind, a, b) in enumerate(ops(n), 1):
        with open("op%d" % i, "w") as f:
            for x in range(a, b + 1):
                if kind == "delete":
                    f.write("%d\n" % x)
                else:
                    f.write(json.dumps({"id": x, "vector": vec(rng),
                                        "g": x % 10, "v": i}) + "\n")
        with open("op%d.kind" % i, "w") as f:
            f.write(kind + "\n")
    with open("q.txt", "w") as f:
        for _ in range(5):
            f.write(" ".join("%.3f" % x for x in vec(rng)) + "\n")
    for i in range(1, len(ops(n)) + 1):
        for name, fn, expr in (("all", all_, None),
                               ("allf", all_, FILTER_ALL),
                               ("knn", knn, None),
                               ("knnf", knn, FILTER_KNN)):
            with open("%s.%d" % (name, i), "w") as f:
                fn(i, expr, f)

# The filters of the checks, as python writes them (FALL, FKNN in bash).
FILTER_ALL = 'r["g"] == 4 or r["id"] >= 2000'
FILTER_KNN = 'r["g"] < 3'

def state(upto):
    rows = {}
    for i in range(1, upto + 1):
        kind = open("op%d.kind" % i).read().strip()
        for l in open("op%d" % i):
            if kind == "delete":
                rows.pop(int(l), None)
            else:
                r = json.loads(l)
                rows[r["id"]] = r
    return rows

def pred(expr):
    return eval("lambda r: " + (expr or "True"))

# all.OP: "id<TAB>g<TAB>v" of the rows after operation OP (allf: those
# matching FILTER_ALL).
def all_(op, expr, f):
    p = pred(expr)
    for i, r in sorted(state(op).items()):
        if p(r):
            f.write("%d\t%d\t%d\n" % (i, r["g"], r["v"]))

# knn.OP: "qno<TAB>rank<TAB>id<TAB>g<TAB>v", the exact l2 top-10 (knnf:
# among the rows matching FILTER_KNN).
def knn(op, expr, f):
    p = pred(expr)
    base = [r for r in state(op).values() if p(r)]
    for qi, l in enumerate(open("q.txt")):
        q = [float(x) for x in l.split()]
        sc = sorted((sum((a - b) ** 2 for a, b in zip(q, r["vector"])),
                     r["id"], r) for r in base)
        for rank, (s, i, r) in enumerate(sc[:10]):
            f.write("%d\t%d\t%d\t%d\t%d\n" % (qi, rank + 1, i, r["g"], r["v"]))

gen(sys.argv[2:])
EOF
	(cd "$D" && python3 model.py gen "$N") || return 1
	NOPS=7
	export NOPS
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
}

# A test's own node (start_own_node, and its restarts) stops with it.
teardown() {
	mv_teardown
}

# The filters of model.py's FILTER_ALL and FILTER_KNN.
FALL='g == 4 or id >= 2000'
FKNN='g < 3'

# apply COLL: the operations, one flush each.
apply_ops() {
	local i kind
	mv-create "$1" --dim 4 --field g:int64 --field v:int64 >/dev/null ||
		return 1
	for i in $(seq 1 "$NOPS"); do
		kind=$(cat "$D/op$i.kind")
		case $kind in
		insert) mv-insert "$1" "$D/op$i" --format jsonl ;;
		upsert) mv-insert --upsert "$1" "$D/op$i" --format jsonl ;;
		delete) mv-delete "$1" "$D/op$i" ;;
		esac >/dev/null 2>&1 || return 1
	done
}

# flushes COLL: the flush numbers of the operations, oldest first.
flushes() {
	mv-ls --history "$1" | cut -f1
}

# same_all COLL OP FLUSH [EXPR]: mv-get --all --as-of, and mv-get of
# every id ever used, give the rows after operation OP (matching FALL).
same_all() {
	local c=$1 op=$2 fl=$3 e=${4:-} want=$D/all.$2
	[ -z "$e" ] || want=$D/allf.$op
	mv-get "$c" --all --as-of "$fl" ${e:+--filter "$e"} | cut -f1,3- >got.tsv ||
		fail "mv-get --all --as-of $fl failed"
	diff "$want" got.tsv >/dev/null ||
		fail "mv-get --all --as-of $fl ${e:+--filter '$e'}: $(diff "$want" got.tsv | head -4)"
	seq 0 $((N + 600)) | mv-get "$c" --as-of "$fl" ${e:+--filter "$e"} 2>/dev/null |
		cut -f1,3- >got.tsv || fail "mv-get --as-of $fl failed"
	diff "$want" got.tsv >/dev/null ||
		fail "mv-get ids --as-of $fl: $(diff "$want" got.tsv | head -4)"
}

# same_knn COLL OP FLUSH [EXPR [mv-search args]]: the exact top-10 as of
# FLUSH (among the rows matching FKNN).
same_knn() {
	local c=$1 op=$2 fl=$3 e=${4:-} want=$D/knn.$2
	shift 4 2>/dev/null || shift $#
	[ -z "$e" ] || want=$D/knnf.$op
	mv-search "$c" -k 10 --fields g,v --as-of "$fl" ${e:+--filter "$e"} "$@" \
		"$D/q.txt" | cut -f1-3,5- >got.tsv || fail "mv-search --as-of $fl failed"
	diff "$want" got.tsv >/dev/null ||
		fail "mv-search --as-of $fl ${e:+--filter '$e'}: $(diff "$want" got.tsv | head -4)"
}

# check_every COLL [search args]: as of each flush, search (exact and with
# a filter), get by ids and get --all equal the model.
check_every() {
	local c=$1 op=0 fl
	shift
	for fl in $(flushes "$c"); do
		op=$((op + 1))
		same_knn "$c" "$op" "$fl" '' "$@"
		same_knn "$c" "$op" "$fl" "$FKNN" "$@"
		same_all "$c" "$op" "$fl"
		same_all "$c" "$op" "$fl" "$FALL"
	done
	[ "$op" = "$NOPS" ] || fail "$op flushes in the history, $NOPS expected"
}

@test "as of every flush: exact search, get by ids, get --all, with a filter; upserts as they were" {
	apply_ops "${P}a" || fail "applying the operations failed"
	check_every "${P}a"
	# The latest flush is now.
	mv-search "${P}a" -k 10 "$D/q.txt" >now.tsv
	mv-search "${P}a" -k 10 --as-of "$(flushes "${P}a" | tail -1)" \
		"$D/q.txt" >latest.tsv
	diff now.tsv latest.tsv
}

@test "as of every flush through an IVF index and an HNSW index" {
	apply_ops "${P}i" || fail "applying the operations failed"
	run -0 mv-index "${P}i" --type IVF16,Flat
	run -0 mv-ls "${P}i"
	assert_output --partial 'IVF16,Flat'
	check_every "${P}i" --nprobe 16
	run -0 mv-index "${P}i" --type HNSW32
	# HNSW (ef 20: through the index with a selector, not the exact
	# branch): every hit a row of that flush with its fields, recall high.
	local op=0 fl
	for fl in $(flushes "${P}i"); do
		op=$((op + 1))
		mv-search "${P}i" -k 10 --ef 20 --fields g,v --as-of "$fl" \
			"$D/q.txt" | cut -f1-3,5- >got.tsv
		[ "$(wc -l <got.tsv)" = 50 ] || fail "HNSW as of $fl: $(wc -l <got.tsv) hits"
		r=$(awk -F'\t' -v all="$D/all.$op" -v knn="$D/knn.$op" '
			BEGIN {
				while ((getline l < all) > 0) { split(l, a, "\t"); row[a[1]] = a[2] "\t" a[3] }
				while ((getline l < knn) > 0) { split(l, a, "\t"); want[a[1] " " a[3]] = 1 }
			}
			!(($3) in row) || row[$3] != $4 "\t" $5 { bad++ }
			($1 " " $3) in want { hit++ }
			END { printf "%d %.2f\n", bad, hit / 50 }' got.tsv)
		[ "${r% *}" = 0 ] || fail "HNSW as of $fl: ${r% *} hits not rows of that flush"
		awk -v r="${r#* }" 'BEGIN { exit !(r >= 0.9) }' ||
			fail "HNSW as of $fl: recall ${r#* }"
	done
}

@test "after a compaction and across a restart the history still answers" {
	need_own_node
	start_own_node --auto_compact=false
	apply_ops "${P}c" || fail "applying the operations failed"
	segs=$(mv-ls "${P}c" | cut -f5)
	run -0 mv-index "${P}c" --compact
	[ "$(mv-ls "${P}c" | cut -f5)" -lt "$segs" ] || fail "nothing merged"
	check_every "${P}c"
	restart_node --auto_compact=false
	check_every "${P}c"
	# An index over the merged segment answers the same.
	run -0 mv-index "${P}c" --type IVF16,Flat
	check_every "${P}c" --nprobe 16
	# A merged segment's deletions survive another merge and a restart.
	printf '%d\n' $((N + 450)) | mv-delete "${P}c" >/dev/null 2>&1
	run -0 mv-index "${P}c" --compact
	restart_node --auto_compact=false
	local fl
	fl=$(flushes "${P}c" | sed -n "${NOPS}p")
	same_all "${P}c" "$NOPS" "$fl"
	same_knn "${P}c" "$NOPS" "$fl"
	run -0 --separate-stderr mv-get "${P}c" --as-of "$(flushes "${P}c" | tail -1)" < <(printf '%d\n' $((N + 450)))
	assert_output ''
	run -0 --separate-stderr mv-get "${P}c" --as-of "$fl" < <(printf '%d\n' $((N + 450)))
	assert_equal "$(cut -f1 <<<"$output")" $((N + 450))
	# Once their flushes leave history_retention (pruned by the first
	# background pass), a merge gives the deleted rows and logs back.
	bytes() {
		find "$MV_HOME/segments" -path "*/${P}c-*" -type f ! -name '*.idx' \
			-printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
	}
	before=$(bytes)
	[ "$(find "$MV_HOME/segments" -name '*.del' | wc -l)" -gt 0 ] ||
		fail "no delete log kept for the history"
	restart_node --auto_compact=false --history_retention=1s
	pruned() { [ -z "$(mv-ls --history "${P}c")" ]; }
	poll 30 pruned || fail "history not pruned"
	run -0 mv-index "${P}c" --compact
	[ "$(bytes)" -lt "$before" ] || fail "$(bytes) bytes after, $before before"
	nodel() { [ "$(find "$MV_HOME/segments" -name '*.del' | wc -l)" = 0 ]; }
	poll 10 nodel || fail "delete logs left"
	restart_node --auto_compact=false
	mv-get "${P}c" --all | cut -f1,3- >got.tsv
	grep -v "^$((N + 450))\b" "$D/all.$NOPS" >want.tsv
	diff want.tsv got.tsv >/dev/null || fail "rows after the merge: $(diff want.tsv got.tsv | head -4)"
	run -1 --separate-stderr mv-get "${P}c" --all --as-of 1
	assert_regex "$stderr" "no retained history"
}

# scan_pages COLL FLUSH SIZE [EXPR]: the ids of SCAN asof=FLUSH in pages
# of SIZE rows, each page after the last id of the one before, one a line,
# and "pages N" (the last, empty page counted).
scan_pages() {
	python3 - "$(wire_addr)" "$@" <<'PY'
import socket, sys, urllib.parse
addr, coll, fl, size = sys.argv[1:5]
expr = sys.argv[5] if len(sys.argv) > 5 else ""
if addr.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(addr[len("unix:"):])
else:
    s = socket.create_connection(tuple(addr.rsplit(":", 1)))
f = s.makefile("rb")
after, pages = -1, 0
while True:
    line = "SCAN %s %d %s asof=%s" % (coll, after, size, fl)
    if expr:
        line += " filter=" + urllib.parse.quote(expr, safe="")
    s.sendall((line + "\n").encode())
    head = f.readline().decode().split()
    assert head[0] == "OK", head
    n, nbytes = int(head[1][2:]), int(head[2][6:])
    body = f.read(nbytes)
    pages += 1
    if n == 0:
        break
    ids = [int.from_bytes(body[8 * i:8 * i + 8], "little", signed=True)
           for i in range(n)]
    print("\n".join(str(i) for i in ids))
    after = ids[-1]
print("pages", pages)
PY
}

@test "SCAN as of a flush in pages of 3 (the ids of then sorted once), with and without a filter" {
	apply_ops "${P}p" || fail "applying the operations failed"
	local fl op=0 e want
	for fl in $(flushes "${P}p" | head -n $((NOPS - 1))); do
		op=$((op + 1))
		for e in '' "$FALL"; do
			want=$D/all.$op
			[ -z "$e" ] || want=$D/allf.$op
			scan_pages "${P}p" "$fl" 3 "$e" >got.txt ||
				fail "paged SCAN asof=$fl failed"
			{ cut -f1 "$want"
			  echo "pages $(( ($(wc -l <"$want") + 2) / 3 + 1 ))"
			} >want.txt
			diff want.txt got.txt >/dev/null ||
				fail "SCAN asof=$fl ${e:+filter '$e'} in pages: $(diff want.txt got.txt | head -4)"
		done
	done
}

@test "TIME forms: ISO 8601 and @SECONDS give the last flush at or before" {
	apply_ops "${P}t" || fail "applying the operations failed"
	mv-ls --history "${P}t" >hist.tsv
	local fl iso
	while IFS=$'\t' read -r fl iso _; do
		mv-get "${P}t" --all --as-of "$fl" >want.tsv
		mv-get "${P}t" --all --as-of "$iso" >got.tsv
		diff want.tsv got.tsv >/dev/null || fail "--as-of $iso is not flush $fl"
	done <hist.tsv
	# A second after the latest flush: the latest; whole seconds and no Z.
	last=$(tail -1 hist.tsv | cut -f2)
	s=$(( $(date -u -d "${last%.*}" +%s) + 1 ))
	mv-get "${P}t" --all >now.tsv
	run -0 mv-get "${P}t" --all --as-of "@$s"
	assert_equal "$output" "$(cat now.tsv)"
	run -0 mv-get "${P}t" --all --as-of "$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%S)"
	assert_equal "$output" "$(cat now.tsv)"
	run -0 mv-get "${P}t" --all --as-of "$(date -u -d "@$((s + 3600))" +%Y-%m-%dT%H:%M:%S+01:00)"
	assert_equal "$output" "$(cat now.tsv)"
	# Before the first flush: exit 1, and how far back the history goes.
	first=$(head -1 hist.tsv | cut -f1)
	s=$(( $(date -u -d "$(head -1 hist.tsv | cut -f2 | cut -d. -f1)" +%s) - 1 ))
	run -1 --separate-stderr mv-search "${P}t" --as-of "@$s" "$D/q.txt"
	assert_regex "$stderr" "^mv-search: --as-of @$s: before the retained history of '${P}t', which goes back to flush $first \\("
}

@test "errors: a future flush, bad syntax (64), an unknown collection" {
	apply_ops "${P}e" || fail "applying the operations failed"
	last=$(flushes "${P}e" | tail -1)
	run -1 --separate-stderr mv-search "${P}e" --as-of $((last + 1)) "$D/q.txt"
	assert_regex "$stderr" "^mv-search: collection '${P}e' has no flush $((last + 1)): its latest is $last; the retained history goes back to flush 1 \\([0-9T:Z-]+\\)\$"
	run -1 --separate-stderr mv-get "${P}e" --all --as-of $((last + 5))
	assert_regex "$stderr" "^mv-get: .*has no flush $((last + 5))"
	# Calendar limits: Feb 29 outside leap years, day 31 of 30-day
	# months, hour 24, a leap second anywhere but 23:59:60 UTC.
	for bad in 0 -3 yesterday 2026-13-01 2026-01-01T25:00:00Z @ @x 1.5 '' \
	    2025-02-29T00:00:00Z 1900-02-29 2026-04-31 2026-11-31T12:00:00Z \
	    2026-01-01T24:00:00Z 2016-12-31T12:59:60Z 2016-12-31T23:59:60+01:00; do
		run -64 --separate-stderr mv-search "${P}e" --as-of "$bad" "$D/q.txt"
		assert_regex "$stderr" "^mv-search: --as-of"
		run -64 --separate-stderr mv-get "${P}e" --all --as-of "$bad"
		assert_regex "$stderr" "^mv-get: --as-of"
	done
	# Their neighbours parse (before the history: exit 1, not 64).
	for ok in 2024-02-29T00:00:00Z 2000-02-29 2026-03-31 \
	    2016-12-31T23:59:60Z 2017-01-01T00:59:60+01:00; do
		run -1 --separate-stderr mv-get "${P}e" --all --as-of "$ok"
		assert_regex "$stderr" "^mv-get: --as-of .*: before the retained history"
	done
	run -64 --separate-stderr mv-get "${P}e" --all --as-of 1 --as-of 2
	run -1 --separate-stderr mv-get nosuch --all --as-of 1
	assert_regex "$stderr" "nosuch"
	# On the wire: asof= on SEARCH, GET and SCAN.
	run -0 wire <<EOF
SCAN ${P}e -1 2 asof=zz
SCAN ${P}e -1 2 asof=$((last + 1))
GET ${P}e 0 0 asof=0
SEARCH ${P}e 1 0 0 asof=1 filter=g%3C3
PING
EOF
	assert_line -n 0 'ERR PROTO asof: want a flush number'
	assert_line -n 1 --regexp "^ERR .*has no flush $((last + 1))"
	assert_line -n 2 'ERR PROTO asof: want a flush number'
	assert_line -n 3 --regexp '^OK nq=0 k=1 '
	assert_line -n 4 OK
}

@test "history pruned: an older flush exits 1 and says how far back it goes" {
	need_own_node
	start_own_node --history_retention=0
	mv-create "${P}p" --dim 2 >/dev/null
	printf '1 1 1\n' | mv-insert --ids-first "${P}p" >/dev/null
	# Flush 1 left no record (history_retention 0): not in the history.
	restart_node
	printf '2 2 2\n' | mv-insert --ids-first "${P}p" >/dev/null
	run -1 --separate-stderr mv-get "${P}p" --all --as-of 1
	assert_regex "$stderr" "^mv-get: flush 1 of '${P}p' is not in the retained history, which goes back to flush 2 \\([0-9T:Z-]+\\)\$"
	run -0 mv-get "${P}p" --all --as-of 2
	assert_equal "$(cut -f1 <<<"$output")" "$(printf '1\n2')"
}
