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

# segbytes: bytes of segment files (vectors, columns, delete logs).
segbytes() {
	find "$MV_HOME/segments" -type f ! -name '*.idx' -printf '%s\n' \
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
        t, kl = struct.unpack_from('<BI', rec, q)
        q += 5
        k = rec[q:q + kl].decode()
        q += kl
        if t == 0:
            vl = struct.unpack_from('<I', rec, q)[0]
            q += 4
            kv[k] = rec[q:q + vl]
            q += vl
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
