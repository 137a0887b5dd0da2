#!/usr/bin/env bats
# A damaged metadata store never costs data: a bad record in the middle of
# meta.log stops the node (exit 78) with the file and the offset, and
# nothing on disk changes; only a torn tail is cut.  The start-up sweep
# deletes only what is provably the node's own leftovers.

load helpers/mv

setup() {
	mv_setup
	need_own_node
}

teardown() {
	mv_teardown
}

DIM=4

# three_flushes: a collection with three flushed inserts of 100 rows each.
three_flushes() {
	run -0 mv-create "$C" --dim "$DIM"
	for it in 0 1 2; do
		gen vecs 100 "$DIM" --seed "$it" --ids-first $((it * 100)) >v$it.txt
		run -0 mv-insert --ids-first "$C" v$it.txt
	done
	assert_rows "$C" 300
}

segment_files() {
	(cd "$MV_HOME/segments" && find . -type f -printf '%P %s\n' | sort)
}

@test "a bit flipped in the middle of meta.log: the node refuses (78), deletes nothing, starts once repaired" {
	start_own_node
	three_flushes
	stop_node
	segment_files >files.before
	[ "$(wc -l <files.before)" -ge 3 ] || fail "expected segment files: $(cat files.before)"
	cp "$MV_HOME/meta.log" meta.log.before
	size=$(stat -c %s "$MV_HOME/meta.log")
	flip_bit "$MV_HOME/meta.log" $((size / 3))
	cp "$MV_HOME/meta.log" meta.log.damaged

	run -78 timeout 10 mv-noded
	assert_output --partial "meta.log"
	assert_output --partial "damaged record at byte offset"
	refute_output --partial "orphaned"
	# Nothing changed: the log as it was, every segment file still there.
	cmp "$MV_HOME/meta.log" meta.log.damaged || fail "meta.log was changed"
	segment_files >files.after
	diff files.before files.after || fail "segment files changed"
	[ ! -e "$MV_HOME/meta.log.tmp" ] || fail "a snapshot was written"

	# A second try does the same.
	run -78 timeout 10 mv-noded
	cmp "$MV_HOME/meta.log" meta.log.damaged || fail "meta.log was changed"

	# Repaired, the node starts with every row.
	flip_bit "$MV_HOME/meta.log" $((size / 3))
	cmp "$MV_HOME/meta.log" meta.log.before
	start_node
	assert_rows "$C" 300
	segment_files >files.after
	diff files.before files.after || fail "segment files changed"
}

@test "a torn tail of meta.log is still cut and the node starts with every flush" {
	start_own_node
	three_flushes
	stop_node
	segment_files >files.before
	# Half of a record, as a crash during an append leaves it.
	printf '\100\0\0\0\1\2\3\4partial' >>"$MV_HOME/meta.log"
	start_node
	assert_rows "$C" 300
	segment_files >files.after
	diff files.before files.after || fail "segment files changed"
}

@test "the start-up sweep deletes only the node's own leftovers, and logs them" {
	start_own_node
	three_flushes
	stop_node
	dir=$(cd "$MV_HOME/segments" && find . -mindepth 2 -maxdepth 2 -type d -name "$C-*" -printf '%P\n')
	[ -n "$dir" ] || fail "no directory of $C under segments: $(segment_files)"
	user=${dir%%/*}
	segs=$MV_HOME/segments
	# Leftovers of this node: files of its own naming that no metadata
	# names, in a collection's directory (a flush cut by a crash) or in
	# the directory of a collection no longer known (a drop cut by a
	# crash), and its store's temporaries.
	ours="$dir/1700000000000-0123456789abcdef.vec
$dir/1700000000000-0123456789abcdef.price.col
$dir/1700000000001-fedcba9876543210.del
$dir/1700000000002-00000000ffffffff.idx
$user/gone-0123456789abcdef/1700000000000-0123456789abcdef.vec"
	# Not provably its own: any other name, anywhere.
	theirs="README
$user/notes.txt
$dir/notes.txt
$dir/1700000000000-0123456789abcdef.vec.bak
$dir/other-node/1700000000000-0123456789abcdef.vec
someone/else-0123456789abcdef/1700000000000-0123456789abcdef.vec.part
$user/gone-0123456789abcdef/keep.me"
	for f in $ours $theirs; do
		mkdir -p "$segs/$(dirname "$f")"
		echo data >"$segs/$f"
	done
	echo tmp >"$segs/$dir/.tmp-123-abc"
	start_node
	assert_rows "$C" 300
	for f in $ours; do
		[ ! -e "$segs/$f" ] || fail "leftover $f was not removed"
		grep -q "removed orphaned file '$f'" "$MV_LOG" ||
			fail "the removal of $f was not logged: $(grep -i orph "$MV_LOG")"
	done
	for f in $theirs; do
		[ -e "$segs/$f" ] || fail "$f, not provably the node's, was deleted"
	done
	[ ! -e "$segs/$dir/.tmp-123-abc" ] || fail "the temporary was not removed"
	grep -q "kept 7 files" "$MV_LOG" || fail "the kept files were not reported: $(tail -5 "$MV_LOG")"
	# And once more: nothing left to remove, the data intact.
	stop_node
	start_node
	assert_rows "$C" 300
	for f in $theirs; do
		[ -e "$segs/$f" ] || fail "$f deleted at the second start"
	done
}

@test "a bit flipped in a segment file: the node refuses (74), names the file, deletes nothing" {
	start_own_node
	three_flushes
	stop_node
	segment_files >files.before
	f=$(cd "$MV_HOME/segments" && find . -name '*.vec' -printf '%P\n' | sort | sed -n 2p)
	[ -n "$f" ] || fail "no segment file"
	cp "$MV_HOME/segments/$f" seg.before
	flip_bit "$MV_HOME/segments/$f" 70
	cp "$MV_HOME/segments/$f" seg.damaged

	run -74 timeout 10 mv-noded
	assert_output --partial "$f"
	assert_output --partial "checksum mismatch"
	refute_output --partial "removed"
	cmp "$MV_HOME/segments/$f" seg.damaged || fail "the damaged file was changed"
	segment_files >files.after
	diff files.before files.after || fail "segment files changed"

	# Repaired, every row is back.
	cp seg.before "$MV_HOME/segments/$f"
	start_node
	assert_rows "$C" 300
}
