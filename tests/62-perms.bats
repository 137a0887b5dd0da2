#!/usr/bin/env bats
# Permissions: what the node writes is its owner's alone, whatever the
# umask (DESIGN.md, security): data files 0600, directories and unix
# sockets 0700, every listening socket and not only the first.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

# Files left out of the check, as a regular expression on the name: none.
META_FILES_RE=''

# modes_wrong DIR...: every file, directory and socket under each DIR (and
# DIR itself) whose mode is not what it must be, as "mode type path".
modes_wrong() {
	find "$@" \( -type d -printf '%m dir %p\n' \) -o \
		\( -type s -printf '%m sock %p\n' \) -o \
		\( -type f -printf '%m file %p\n' \) -o -printf '%m other %p\n' |
		awk -v meta="$META_FILES_RE" '{
			n = split($3, parts, "/")
			if ($2 == "file" && meta != "" && parts[n] ~ meta) next
			want = $2 == "file" ? "600" : "700"
			if ($1 != want) print
		}'
}

@test "umask 022: data files 0600, directories and both unix sockets 0700" {
	need_own_node
	umask 022
	# The node creates MV_HOME, a separate data_dir and its parents.
	export MV_HOME=$BATS_TEST_TMPDIR/home
	data=$BATS_TEST_TMPDIR/var/lib/mv
	sock2=$BATS_TEST_TMPDIR/second.sock
	MV_OWN_NODE=1
	export MV_LOG=$BATS_TEST_TMPDIR/node.log
	mv-noded --data_dir="$data" --listen="unix:$MV_HOME/mv.sock" \
		--listen="unix:$sock2" </dev/null >>"$MV_LOG" 2>&1 3>&- &
	export MV_NODE_PID=$!
	wait_node
	run -0 mv-create "$C" --dim 8
	# Small flushes, a large one that streams to a file as it arrives, a
	# session, deletes, an index and a compaction: every kind of file.
	for s in 1 2 3; do
		gen vecs 50 8 --seed "$s" --ids-first $((s * 1000)) >v$s.txt
		run -0 mv-insert --ids-first "$C" v$s.txt
	done
	gen vecs 70000 8 --seed 9 --ids-first 100000 --format text >big.txt
	run -0 mv-insert --ids-first --session s1 "$C" big.txt
	run -0 mv-flush s1
	run -0 mv-index "$C" --type Flat
	run -0 mv-index "$C" --compact
	# After the compaction, which would collect the delete log: two rows
	# of many, too few for the background pass to rewrite their segment.
	printf '1000\n2001\n' >del.txt
	run -0 mv-delete "$C" del.txt
	# Through the second socket too.
	run -0 mv-ls -a "unix:$sock2"
	run -0 modes_wrong "$MV_HOME" "$BATS_TEST_TMPDIR/var" "$sock2"
	assert_output ''
	# The data_dir's parents are the node's too.
	assert_equal "$(stat -c %a "$BATS_TEST_TMPDIR/var/lib")" 700
	# Something of each kind was looked at.
	[ -S "$sock2" ] && [ -S "$MV_HOME/mv.sock" ] || fail "no sockets"
	[ -n "$(find "$data" -type f -name '*.vec')" ] || fail "no segment file"
	[ -n "$(find "$data" -type f -name '*.del')" ] || fail "no delete file"
	[ -n "$(find "$data" -type f -name '*.idx')" ] || fail "no index file"
}

@test "umask 000: still 0600 and 0700" {
	need_own_node
	umask 000
	export MV_HOME=$BATS_TEST_TMPDIR/home
	MV_OWN_NODE=1
	export MV_LOG=$BATS_TEST_TMPDIR/node.log
	mv-noded </dev/null >>"$MV_LOG" 2>&1 3>&- &
	export MV_NODE_PID=$!
	wait_node
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" < <(gen vecs 10 4)
	run -0 modes_wrong "$MV_HOME"
	assert_output ''
}
