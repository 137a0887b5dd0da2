#!/usr/bin/env bats
# A restarted node reads its IVF index and the segments it covers through
# mappings instead of reading them whole (issue 9): the same answers, GET
# still gives the rows as inserted without keeping the segment resident,
# and damage is still refused at start-up: a bad index falls back to brute
# force over every row, a bad segment stops the node (74).

load helpers/mv
load helpers/index

setup() {
	mv_setup
	need_own_node
}

teardown() {
	mv_teardown
}

# rss_kb PATTERN: kB resident in the node's mappings of files matching it.
rss_kb() {
	awk -v pat="$1" '/^[0-9a-f]+-[0-9a-f]+ / { in_f = ($6 ~ pat) }
		in_f && /^Rss:/ { kb += $2 } END { print kb + 0 }' \
		"/proc/$MV_NODE_PID/smaps"
}

@test "a restarted node reads its IVF index and covered segment through mappings: same answers, GET as inserted and not resident, damage refused" {
	start_own_node
	run -0 mv-create "$C" --dim 16 --metric cosine
	# 20,000 x 16 floats: a 1.2 MiB vector file, 320 pages.
	gen vecs 20000 16 --seed 7 --ids-first 0 >v.txt
	gen vecs 20 16 --seed 8 >q.txt
	run -0 mv-insert -q --ids-first "$C" v.txt
	mv-search "$C" -k 5 q.txt >bf.tsv
	run -0 mv-index "$C" --type IVF16,Flat
	mv-search "$C" -k 5 --nprobe 16 q.txt >built.tsv
	# nprobe = nlist: exact, the same ids (FAISS's kernel rounds the
	# similarities' last digit otherwise).
	cut -f 1-3 bf.tsv >bf.ids
	cut -f 1-3 built.tsv >built.ids
	same built.ids bf.ids "IVF16,Flat at nprobe 16 after the build"

	restart_node
	mv-search "$C" -k 5 --nprobe 16 q.txt >restarted.tsv
	same restarted.tsv built.tsv "IVF16,Flat at nprobe 16 after the restart"
	# GET reads the raw rows from the mapped segment; the checksum pass
	# over the file leaves no more than a few pages resident.
	printf '0\n12345\n19999\n' | mv-get "$C" >got.txt
	for id in 0 12345 19999; do
		want=$(awk -v id="$id" '$1 == id { $1 = ""; sub(/^ /, ""); gsub(/ /, ","); print }' v.txt)
		run -0 grep "^$id	" got.txt
		[ "$(cut -f 2 <<<"$output" | tr ',' '\n' | awk '{ printf "%s%s", (NR > 1 ? "," : ""), $1 + 0 }')" = \
			"$(tr ',' '\n' <<<"$want" | awk '{ printf "%s%s", (NR > 1 ? "," : ""), $1 + 0 }')" ] ||
			fail "GET $id: '$output', want '$want'"
	done
	kb=$(rss_kb '\.vec$')
	[ "$kb" -lt 512 ] || fail "${kb} kB of the 1.2 MiB segment resident after GET"

	# A damaged index: refused, brute force over every row instead.
	stop_node
	idx=$(find "$MV_HOME/segments" -name '*.idx')
	vec=$(find "$MV_HOME/segments" -name '*.vec')
	cp "$idx" idx.good
	flip_bit "$idx" $(($(stat -c %s "$idx") - 1000))
	start_node
	grep -q "checksum mismatch; searching without the index" "$MV_LOG" ||
		fail "no warning about the damaged index: $(tail -n 5 "$MV_LOG")"
	mv-search "$C" -k 5 --nprobe 16 q.txt >fallback.tsv
	same fallback.tsv bf.tsv "brute force after the index was refused"
	assert_rows "$C" 20000

	# A damaged vector block of a covered segment stops the node.
	stop_node
	cp idx.good "$idx"
	flip_bit "$vec" $(($(stat -c %s "$vec") - 1000))
	run -74 timeout 10 mv-noded
	assert_output --partial "checksum mismatch"
	assert_output --partial "$(basename "$vec")"
}
