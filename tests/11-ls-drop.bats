#!/usr/bin/env bats
# mv-ls (columns, --header, row counts) and mv-drop (files, sessions).

load helpers/mv

setup() {
	mv_setup
	start_node
}

teardown() {
	mv_teardown_own_node
}

@test "mv-ls with no collections prints nothing; --header prints the header" {
	need_own_node
	run -0 --separate-stderr mv-ls
	assert_output ""
	run -0 mv-ls --header
	assert_output "name${T}dim${T}metric${T}rows${T}segments${T}index"
}

@test "mv-ls prints one TSV line per collection, oldest first" {
	need_own_node
	run -0 mv-create zeta --dim 4
	run -0 mv-create alpha --dim 8 --metric ip
	run -0 mv-create mid --dim 3 --metric cosine
	run -0 mv-ls
	assert_equal "${#lines[@]}" 3
	assert_line -n 0 "zeta${T}4${T}l2${T}0${T}0${T}-"
	assert_line -n 1 "alpha${T}8${T}ip${T}0${T}0${T}-"
	assert_line -n 2 "mid${T}3${T}cosine${T}0${T}0${T}-"
	run -0 mv-ls --header
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "name${T}dim${T}metric${T}rows${T}segments${T}index"
	assert_line -n 1 "zeta${T}4${T}l2${T}0${T}0${T}-"
	run -0 mv-ls --header alpha
	assert_equal "${#lines[@]}" 2
	assert_line -n 1 "alpha${T}8${T}ip${T}0${T}0${T}-"
}

@test "mv-ls counts flushed rows and segments" {
	run -0 mv-create "$C" --dim 4
	gen vecs 5 4 --seed 1 >a.txt
	gen vecs 7 4 --seed 2 >b.txt
	run -0 mv-insert "$C" a.txt
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}5${T}[1-9][0-9]*${T}-\$"
	run -0 mv-insert "$C" b.txt
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}12${T}[1-9][0-9]*${T}-\$"
}

@test "mv-ls of an unknown collection exits 1" {
	run -1 --separate-stderr mv-ls nosuch
	assert_output ""
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^mv-ls: .*nosuch"
}

@test "mv-ls of a bad name exits 65" {
	run -65 --separate-stderr mv-ls 9lives
	assert_regex "$stderr" "^mv-ls: "
}

@test "mv-drop removes the collection; its name can be reused" {
	run -0 mv-create "$C" --dim 4
	run -0 mv-insert "$C" < <(gen vecs 10 4)
	assert_rows "$C" 10
	run -0 mv-drop "$C"
	run -1 mv-ls "$C"
	run -0 mv-ls
	refute_match "^$C${T}"
	run -0 mv-create "$C" --dim 2
	run -0 mv-ls "$C"
	assert_output "$C${T}2${T}l2${T}0${T}0${T}-"
	run -0 mv-search "$C" < <(printf '0 0\n')
	assert_output ""
}

# Sizes of the regular files under MV_HOME that are not the metadata log,
# the socket or a config file: the collections' data.
data_bytes() {
	find "$MV_HOME" -type f ! -name 'meta.log*' ! -name 'mv.conf' \
		-printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

data_files_gone() {
	[ "$(data_bytes)" -lt "$1" ]
}

@test "mv-drop removes the collection's files" {
	need_own_node
	run -0 mv-create "$C" --dim 64
	before=$(data_bytes)
	gen vecs 4000 64 --format fvecs >big.fvecs
	run -0 mv-insert "$C" big.fvecs
	after=$(data_bytes)
	# 4000 x 64 float32 = 1 MiB of vectors are somewhere on disk.
	[ $((after - before)) -ge 500000 ] || fail "data grew by $((after - before)) bytes only"
	run -0 mv-drop "$C"
	poll 10 data_files_gone $((before + 65536)) ||
		fail "$(data_bytes) bytes of data left after the drop (before: $before)"
}

@test "mv-drop aborts the open sessions on the collection" {
	run -0 mv-create "$C" --dim 2
	run -0 mv-insert --session "s$C" "$C" < <(printf '1 1\n2 2\n')
	run -0 mv-flush --list
	assert_line --regexp "^s$C${T}"
	run -0 mv-drop "$C"
	run -0 mv-flush --list
	refute_match "^s$C${T}"
	run -0 mv-create "$C" --dim 2
	run -1 --separate-stderr mv-flush "s$C"
	assert_regex "$stderr" "^mv-flush: .*s$C"
	assert_rows "$C" 0
}

@test "mv-drop of an unknown collection exits 1; usage exits 64" {
	run -1 --separate-stderr mv-drop nosuch
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^mv-drop: .*nosuch"
	run -64 mv-drop
	run -65 mv-drop 1bad
}

@test "mv-stat prints the embedded node as one TSV line" {
	run -0 mv-stat
	assert_equal "${#lines[@]}" 1
	assert_line -n 0 --regexp "^[^$T]+$T[^$T]+$T[0-9]+$T[0-9]+$T[0-9]+\$"
}

# insert_drop_flush NAME ROWS: on one connection INSERT ROWS zero vectors of
# dimension 4 into NAME, then mv-drop NAME from another client, then FLUSH
# on the first connection; prints the two replies.
insert_drop_flush() {
	python3 - "$(wire_addr)" "$1" "$2" <<'PY'
import socket, subprocess, sys
addr, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(addr[len("unix:"):])
f = s.makefile("rb")
payload = bytes(n * 16)
s.sendall(b"INSERT %s %d - %d\n" % (name.encode(), n, len(payload)) + payload)
print(f.readline().decode().strip())
subprocess.run(["mv-drop", name], check=True)
s.sendall(b"FLUSH\n")
print(f.readline().decode().strip())
PY
}

@test "a FLUSH of rows for a collection dropped meanwhile fails, leaving no files" {
	need_own_node
	run -0 mv-create "$C" --dim 4
	run -0 insert_drop_flush "$C" 3
	assert_line -n 0 "OK n=3 first_id=0"
	assert_line -n 1 --regexp "^ERR NOTFOUND .*$C.*dropped"
	# A batch large enough to stream its vectors to storage while it
	# arrives (4.8 MB).
	run -0 mv-create "$C" --dim 4
	run -0 insert_drop_flush "$C" 300000
	assert_line -n 0 "OK n=300000 first_id=0"
	assert_line -n 1 --regexp "^ERR NOTFOUND .*$C.*dropped"
	run -0 find "$MV_HOME/segments" -type f
	assert_output ""
	assert_serving
}
