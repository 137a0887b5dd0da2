#!/usr/bin/env bats
# Housekeeping (issue 10): compaction fits one metadata transaction and
# settles, writes the right sizes in the metadata, and deleted rows give
# their space back: delete logs are collected, indexed segments are
# rewritten without their deleted rows, and no restart (clean or kill -9)
# in between brings a deleted row back.

load helpers/mv
load helpers/index

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

# segfiles: the segment files of the node, sorted (names only).
segfiles() {
	find "$MV_HOME/segments" -type f -printf '%f\n' 2>/dev/null | sort
}

# delfiles: how many delete logs lie in storage.
delfiles() {
	find "$MV_HOME/segments" -type f -name '*.del' 2>/dev/null | wc -l |
		tr -d ' '
}

# segbytes: bytes of segment files (vectors, columns, delete logs) of the
# collection $C.
segbytes() {
	find "$MV_HOME/segments" -path "*/$C-*" -type f ! -name '*.idx' \
		-printf '%s\n' \
		2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# meta_data: replay $MV_HOME/meta.log (node stopped) and print one line per
# data key: leaf<TAB>type<TAB>size<TAB>rows.
meta_data() {
	python3 - "$MV_HOME/meta.log" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
kv, p = {}, 8
while p + 8 <= len(b):
    n, _ = struct.unpack_from('<II', b, p)
    p += 8
    rec, p = b[p:p + n], p + n
    nops, q = struct.unpack_from('<I', rec, 0)[0], 4
    for _ in range(nops):
        t = rec[q]
        if t in (3, 6):		# revision, lease grant: two u64
            q += 17
            continue
        if t == 7:		# lease revoke: one u64
            q += 9
            continue
        kl = struct.unpack_from('<I', rec, q + 1)[0]
        q += 5
        k = rec[q:q + kl].decode()
        q += kl
        if t in (0, 4, 5):	# put; with revisions; with a lease
            vl = struct.unpack_from('<I', rec, q)[0]
            q += 4
            kv[k] = rec[q:q + vl]
            q += vl + {0: 0, 4: 32, 5: 8}[t]
        elif t == 1:
            kv.pop(k, None)
        else:
            for x in [x for x in kv if x.startswith(k)]:
                del kv[x]
for k, v in sorted(kv.items()):
    if '/data/' not in k:
        continue
    j = json.loads(v)
    print('%s\t%s\t%s\t%s' % (k.rsplit('/', 1)[1], j.get('type'),
                              j.get('size'), j.get('rows')))
PY
}

@test "compaction of 8 small flushes with 14 fields succeeds and settles" {
	start_own_node
	fields=()
	for i in $(seq 1 14); do
		fields+=(--field "f$i:int64")
	done
	run -0 mv-create "$C" --dim 2 "${fields[@]}"
	for i in $(seq 1 8); do
		run -0 mv-insert --ids-first "$C" < <(printf '%s %s 1\n' "$i" "$i")
	done
	run -0 mv-index "$C" --compact
	assert_rows "$C" 8
	# Background passes (every 2 s) must not rewrite anything any more.
	sleep 1
	before=$(segfiles)
	sleep 5
	assert_equal "$(segfiles)" "$before"
	run -0 mv-get "$C" --all
	assert_equal "${#lines[@]}" 8
	run -1 grep -c 'compaction failed' "$MV_LOG"
}

@test "auto_compact=false leaves small flushes to mv-index --compact" {
	start_own_node --auto_compact=false
	run -0 mv-create "$C" --dim 2
	# 9 small segments: more than the 8 a background pass waits for.
	for i in $(seq 1 9); do
		run -0 mv-insert --ids-first "$C" < <(printf '%s %s 1\n' "$i" "$i")
	done
	# Two background passes (every 2 s) and more: nothing merged.
	sleep 5
	run -0 mv-ls "$C"
	assert_equal "$(cut -f5 <<<"$output")" 9
	run -0 mv-index "$C" --compact
	run -0 mv-ls "$C"
	assert_equal "$(cut -f5 <<<"$output")" 1
	assert_rows "$C" 9
	# The default merges them in the background.
	restart_node
	for i in $(seq 10 17); do
		run -0 mv-insert --ids-first "$C" < <(printf '%s %s 1\n' "$i" "$i")
	done
	for _ in $(seq 1 50); do
		run -0 mv-ls "$C"
		[ "$(cut -f5 <<<"$output")" -lt 9 ] && break
		sleep 0.2
	done
	assert [ "$(cut -f5 <<<"$output")" -lt 9 ]
}

@test "compaction writes the sizes of its files in the metadata" {
	start_own_node
	run -0 mv-create "$C" --dim 2 --field price:float64 --field tag:string
	for i in 1 2 3; do
		run -0 mv-insert "$C" --format jsonl < <(
			for r in $(seq 1 20); do
				printf '{"id":%d,"vector":[%d,%d],"price":%d.5,"tag":"t%d"}\n' \
					$((i * 100 + r)) "$r" "$i" "$r" "$r"
			done)
	done
	run -0 mv-index "$C" --compact
	run -0 mv-get "$C" --all
	assert_equal "${#lines[@]}" 60
	stop_node
	meta_data >meta.tsv
	cat meta.tsv
	# one merged segment: its vector file and two columns
	assert_equal "$(wc -l <meta.tsv)" 3
	while IFS=$T read -r leaf type size rows; do
		f=$(find "$MV_HOME/segments" -name "$leaf")
		[ -n "$f" ] || fail "no file $leaf"
		assert_equal "$size" "$(stat -c %s "$f")"
		assert_equal "$rows" 60
	done <meta.tsv
	start_node
	run -0 mv-get "$C" < <(printf '305\n')
	assert_output "305${T}5,3${T}5.5${T}t5"
}
# check_live NAME DELETED QUERIES N: NAME has N rows, and neither mv-get nor
# mv-search (queries: the deleted rows' own vectors) shows an id listed in
# the file DELETED.
check_live() {
	local got
	got=$(rows "$1") || fail "mv-ls $1 failed"
	[ "$got" = "$4" ] || fail "$1 has '$got' rows, expected $4"
	mv-get "$1" --all | cut -f1 | sort >all.ids ||
		fail "mv-get --all failed"
	assert_equal "$(wc -l <all.ids)" "$4"
	[ -z "$(comm -12 all.ids <(sort "$2"))" ] ||
		fail "mv-get --all shows deleted rows: $(comm -12 all.ids <(sort "$2") | head -3)"
	run -0 --separate-stderr mv-get "$1" "$2"
	assert_output ""
	mv-search "$1" -k 10 --nprobe 16 "$3" >hits.tsv || fail "mv-search failed"
	[ "$(wc -l <hits.tsv)" -eq $(($(wc -l <"$3") * 10)) ] ||
		fail "$(wc -l <hits.tsv) hits"
	cut -f3 hits.tsv | sort -u >hit.ids
	[ -z "$(comm -12 hit.ids <(sort "$2"))" ] ||
		fail "mv-search shows deleted rows: $(comm -12 hit.ids <(sort "$2") | head -3)"
}

# crash_restart: kill -9 the node and start it again on the same data.
crash_restart() {
	kill_node
	start_node
}

# no_history: this test's node keeps no time axis (mv.conf, so restarts
# keep it too): merges drop every deleted row, as with history_retention
# 0; with history they keep those the retained flushes need (35-asof).
no_history() {
	mkdir -p "$BATS_TEST_TMPDIR/home"
	printf 'history_retention = 0\n' >"$BATS_TEST_TMPDIR/home/mv.conf"
}

@test "deleted rows give their space back; delete logs go; no restart brings them back" {
	no_history
	start_own_node
	run -0 mv-create "$C" --dim 4
	gen vecs 3000 4 --seed 7 --ids-first 1 >v.txt
	for n in 0 1 2; do
		sed -n "$((n * 1000 + 1)),$((n * 1000 + 1000))p" v.txt |
			mv-insert --ids-first "$C" || fail "insert $n"
	done
	# 750 deletes in two flushes: odd ids up to 1500
	seq 1 2 749 >d1.txt
	seq 751 2 1499 >d2.txt
	cat d1.txt d2.txt >del.txt
	before=$(segbytes)
	run -0 mv-delete "$C" d1.txt
	run -0 mv-delete "$C" d2.txt
	awk 'NR % 2 == 1 && NR <= 1500 && NR % 75 == 1 { $1 = ""; print }' \
		v.txt >q.txt
	check_live "$C" del.txt q.txt 2250
	crash_restart
	check_live "$C" del.txt q.txt 2250
	run -0 mv-index "$C" --compact
	check_live "$C" del.txt q.txt 2250
	delfiles_are() { [ "$(delfiles)" = "$1" ]; }
	poll 10 delfiles_are 0 || fail "$(delfiles) delete logs left"
	after=$(segbytes)
	echo "# $before bytes before, $after after" >&3
	[ "$after" -lt "$before" ] || fail "$after bytes after, $before before"
	crash_restart
	check_live "$C" del.txt q.txt 2250
	assert_equal "$(delfiles)" 0
	restart_node
	check_live "$C" del.txt q.txt 2250
	assert_equal "$(delfiles)" 0
	# a deleted id inserted again is there once
	run -0 mv-insert --ids-first "$C" < <(printf '1 9 9 9 9\n')
	restart_node
	run -0 mv-get "$C" < <(printf '1\n')
	assert_output "1${T}9,9,9,9"
	assert_rows "$C" 2251
}

@test "deleted rows of indexed segments give their space back; a rebuild does not bring them back" {
	no_history
	start_own_node
	run -0 mv-create "$C" --dim 16
	run -0 mv-create "${C}_bf" --dim 16
	gen vecs 3000 16 --seed 1 --ids-first 0 >v.txt
	for n in 0 1 2; do
		sed -n "$((n * 1000 + 1)),$((n * 1000 + 1000))p" v.txt |
			mv-insert --ids-first "$C" || fail "insert $n"
	done
	# 700 deletes: ids 0..599 (most of the first segment), 1000..1099
	{ seq 0 599; seq 1000 1099; } >del.txt
	awk '$1 >= 600 && !($1 >= 1000 && $1 < 1100)' v.txt >live.txt
	run -0 mv-insert --ids-first "${C}_bf" live.txt
	awk 'NR % 50 == 1 { $1 = ""; print }' v.txt >q.txt
	mv-search "${C}_bf" -k 10 q.txt >bf.tsv
	run -0 mv-index "$C" --type IVF16,Flat
	before=$(segbytes)
	run -0 mv-delete "$C" del.txt
	check_live "$C" del.txt q.txt 2300
	mv-search "$C" -k 10 --nprobe 16 q.txt >got.tsv
	same got.tsv bf.tsv "IVF16,Flat after the deletes"
	crash_restart
	check_live "$C" del.txt q.txt 2300
	run -0 mv-index "$C" --compact
	delfiles_are() { [ "$(delfiles)" = "$1" ]; }
	poll 10 delfiles_are 0 || fail "$(delfiles) delete logs left"
	after=$(segbytes)
	echo "# $before bytes before, $after after" >&3
	[ "$after" -lt "$before" ] || fail "$after bytes after, $before before"
	check_live "$C" del.txt q.txt 2300
	mv-search "$C" -k 10 --nprobe 16 q.txt >got.tsv
	same got.tsv bf.tsv "IVF16,Flat after --compact"
	assert_equal "$(ix_index "$C")" IVF16,Flat
	# new search defaults rewrite the index key: it keeps the retired files
	run -0 mv-index "$C" --param nprobe=16
	crash_restart
	assert_equal "$(ix_index "$C")" IVF16,Flat
	check_live "$C" del.txt q.txt 2300
	mv-search "$C" -k 10 --nprobe 16 q.txt >got.tsv
	same got.tsv bf.tsv "IVF16,Flat after kill -9"
	# a rebuild covers only the rows still there
	run -0 mv-index "$C" --type IVF16,Flat
	check_live "$C" del.txt q.txt 2300
	mv-search "$C" -k 10 --nprobe 16 q.txt >got.tsv
	same got.tsv bf.tsv "IVF16,Flat rebuilt"
	restart_node
	check_live "$C" del.txt q.txt 2300
	mv-search "$C" -k 10 --nprobe 16 q.txt >got.tsv
	same got.tsv bf.tsv "IVF16,Flat rebuilt, after a restart"
	mv-get "$C" --all | sort >a.txt
	mv-get "${C}_bf" --all | sort >b.txt
	same a.txt b.txt "rows"
	run -1 grep -c 'searching without the index' "$MV_LOG"
}

@test "kill -9 while the background pass merges, rewrites and collects keeps deleted rows deleted" {
	no_history
	start_own_node
	run -0 mv-create "$C" --dim 4
	gen vecs 3000 4 --seed 9 --ids-first 1 >v.txt
	for n in $(seq 0 9); do
		sed -n "$((n * 300 + 1)),$((n * 300 + 300))p" v.txt |
			mv-insert --ids-first "$C" || fail "insert $n"
	done
	awk 'NR % 100 == 1 { $1 = ""; print }' v.txt >q.txt
	: >del.txt
	live=3000
	for round in 1 2 3 4 5 6; do
		# most of one segment, and a few rows of the next
		{ seq $((round * 300 - 299)) $((round * 300 - 100))
		  seq $((round * 300 + 1)) $((round * 300 + 20)); } >d.txt
		run -0 mv-delete "$C" d.txt
		cat d.txt >>del.txt
		sort -u del.txt -o del.txt
		live=$((3000 - $(wc -l <del.txt)))
		# somewhere in the 2 s between background passes
		sleep "$((RANDOM % 25 / 10)).$((RANDOM % 10))"
		crash_restart
		check_live "$C" del.txt q.txt "$live"
	done
	run -0 mv-index "$C" --compact
	delfiles_are() { [ "$(delfiles)" = "$1" ]; }
	poll 10 delfiles_are 0 || fail "$(delfiles) delete logs left"
	crash_restart
	check_live "$C" del.txt q.txt "$live"
	assert_equal "$(delfiles)" 0
	# one segment, and no file that the metadata does not name
	assert_equal "$(segs "$C")" 1
	assert_equal "$(segfiles | wc -l)" 1
}
