#!/usr/bin/env bats
# The line protocol of docs/PROTOCOL.md, spoken raw to the node: handshake,
# text verbs, binary payloads, ordering of one connection, and the node
# surviving garbage, overlong lines and clients that vanish mid-payload.

load helpers/mv

setup_file() {
	setup_file_node
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
}

# Print the hex-free decoded transcript of a binary request file.
wire_decode() {
	wire "${1:-2}" <req.bin | gen decode
}

@test "HELLO answers OK with version, server and limits" {
	run -0 wire <<<"HELLO 1"
	assert_output --regexp '^OK( [A-Za-z_]+=[^ ]+)+$'
	[[ " $output " == *" version=1 "* ]]
	[[ " $output " == *" server=mv-noded/$MV_VERSION "* ]]
	[[ " $output " == *" maxline=65536 "* ]]
	[[ " $output " == *" maxpayload=1073741824 "* ]]
}

@test "PING answers OK, with LF or CRLF" {
	run -0 wire <<<"PING"
	assert_output "OK"
	run -0 wire < <(printf 'PING\r\n')
	assert_output "OK"
}

@test "pipelined requests are answered in order, one reply each" {
	run -0 wire < <(printf 'PING\nHELLO 1\nPING\nPING\n')
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "OK"
	assert_line -n 1 --regexp '^OK version=1 '
	assert_line -n 2 "OK"
	assert_line -n 3 "OK"
}

@test "QUIT answers OK and closes the connection" {
	run -0 wire < <(printf 'QUIT\nPING\n')
	assert_output "OK"
}

@test "garbage line gets ERR PROTO and the connection keeps serving" {
	run -0 wire < <(printf 'FROBNICATE 1 2 3\nPING\n\001\002\376\377 junk\nPING\n')
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 --regexp '^ERR PROTO .+'
	assert_line -n 1 "OK"
	assert_line -n 2 --regexp '^ERR PROTO .+'
	assert_line -n 3 "OK"
	assert_serving
}

@test "text verbs with wrong arguments get ERR PROTO and the connection keeps serving" {
	run -0 wire < <(printf 'CREATE x\nCREATE x 4 nosuchmetric\nDESCRIBE\nDROP\nCREATE x notanumber l2\nPING\n')
	assert_equal "${#lines[@]}" 6
	for n in 0 1 2 3; do
		assert_line -n "$n" --regexp '^ERR PROTO .+'
	done
	# PROTOCOL.md does not say whether a non-numeric dim is PROTO or BADDIM.
	assert_line -n 4 --regexp '^ERR (PROTO|BADDIM) .+'
	assert_line -n 5 "OK"
}

@test "data verbs with unparsable arguments get ERR PROTO; the node keeps serving" {
	# The node cannot know how many payload bytes follow, so it may close.
	for req in 'INSERT' 'INSERT x 1' 'INSERT x one - 16' 'SEARCH' 'SEARCH x 1 1' \
		'DELETE x' 'DELETE x 1 -8' 'GET x'; do
		run -0 wire < <(printf '%s\n' "$req")
		assert_line -n 0 --regexp '^ERR PROTO .+'
	done
	assert_serving
}

@test "a line over 64 KiB gets ERR PROTO line too long and is closed" {
	{
		head -c 70000 /dev/zero | tr '\0' 'A'
		printf '\nPING\n'
	} >req.bin
	run -0 wire <req.bin
	assert_output "ERR PROTO line too long"
	assert_serving
}

@test "a 10 MB protocol line is refused and the node keeps serving" {
	head -c 10000000 /dev/zero | tr '\0' 'B' >req.bin
	printf '\nPING\n' >>req.bin
	run -0 wire <req.bin
	assert_output "ERR PROTO line too long"
	assert_serving
}

@test "a line just under 64 KiB is read whole (unknown verb, not too long)" {
	{
		head -c 65000 /dev/zero | tr '\0' 'X'
		printf '\nPING\n'
	} >req.bin
	run -0 wire <req.bin
	assert_equal "${#lines[@]}" 2
	assert_line -n 0 --regexp '^ERR PROTO '
	refute_line -n 0 "ERR PROTO line too long"
	assert_line -n 1 "OK"
}

@test "text verbs in one pipeline see each other in order" {
	run -0 wire < <(printf '%s\n' \
		"CREATE $C 4 l2" "DESCRIBE $C" "LS $C" "CREATE $C 4 l2" \
		"CREATE $C 4 l2 if-not-exists" "DROP $C" "DESCRIBE $C" "PING")
	assert_equal "${#lines[@]}" 9
	assert_line -n 0 "OK"
	assert_line -n 1 "OK name=$C dim=4 metric=l2 rows=0 segments=0 index=- fields=-"
	assert_line -n 2 "$(printf '%s\t4\tl2\t0\t0\t-' "$C")"
	assert_line -n 3 "END"
	assert_line -n 4 --regexp '^ERR EXISTS '
	assert_line -n 5 "OK exists=1"
	assert_line -n 6 "OK"
	assert_line -n 7 --regexp '^ERR NOTFOUND '
	assert_line -n 8 "OK"
}

@test "CREATE with fields shows them in DESCRIBE, in declaration order" {
	run -0 wire < <(printf '%s\n' \
		"CREATE $C 3 cosine price:float64 tag:string n:int64" "DESCRIBE $C")
	assert_line -n 0 "OK"
	assert_line -n 1 "OK name=$C dim=3 metric=cosine rows=0 segments=0 index=- fields=price:float64,tag:string,n:int64"
}

@test "CREATE refuses bad and reserved names with ERR BADNAME" {
	run -0 wire < <(printf '%s\n' "CREATE 1bad 4 l2" "CREATE config 4 l2" \
		"CREATE user_list 4 l2" "CREATE collection_list 4 l2" \
		"CREATE x_property 4 l2" "CREATE _x 4 l2" "PING")
	assert_equal "${#lines[@]}" 7
	for n in 0 1 2 3 4 5; do
		assert_line -n "$n" --regexp '^ERR BADNAME '
	done
	assert_line -n 6 "OK"
}

@test "unknown collection gets ERR NOTFOUND" {
	run -0 wire < <(printf '%s\n' "DESCRIBE nosuch" "DROP nosuch" "LS nosuch" "PING")
	assert_line -n 0 --regexp '^ERR NOTFOUND '
	assert_line -n 1 --regexp '^ERR NOTFOUND '
	assert_line -n 2 --regexp '^ERR NOTFOUND '
	assert_line -n 3 "OK"
}

@test "the reply code comes from the error, not from words in its message" {
	# Absent collections whose names hold "session" or "exists".
	run -0 wire < <(printf '%s\n' "DROP session_log" "DROP exists_x" \
		"DESCRIBE session_log" "PING")
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 --regexp "^ERR NOTFOUND .*'session_log'"
	assert_line -n 1 --regexp "^ERR NOTFOUND .*'exists_x'"
	assert_line -n 2 --regexp "^ERR NOTFOUND .*'session_log'"
	assert_line -n 3 "OK"
}

@test "INSERT FLUSH SEARCH pipelined on one connection apply in order" {
	{
		printf 'CREATE %s 4 l2\n' "$C"
		printf 'INSERT %s 2 ids 48\n' "$C"
		gen i64 10 11
		gen f32 1 0 0 0 1 2 0 0
		printf 'SEARCH %s 2 1 16\n' "$C"
		gen f32 1 0 0 0
		printf 'FLUSH\n'
		printf 'SEARCH %s 2 1 16\n' "$C"
		gen f32 1 0 0 0
		printf 'DESCRIBE %s\n' "$C"
	} >req.bin
	run -0 wire_decode
	assert_equal "${#lines[@]}" 10
	assert_line -n 0 "OK"
	assert_line -n 1 --regexp '^OK n=2( |$)'
	# Unflushed rows are invisible, even to their own connection.
	assert_line -n 2 "OK nq=1 k=2 bytes=24"
	assert_line -n 3 "ids -9223372036854775808 -9223372036854775808"
	assert_line -n 5 "OK inserted=2 deleted=0"
	assert_line -n 6 "OK nq=1 k=2 bytes=24"
	assert_line -n 7 "ids 10 11"
	assert_line -n 8 "dist 0 4"
	assert_line -n 9 --regexp "^OK name=$C dim=4 metric=l2 rows=2 segments=[1-9][0-9]* index=- fields=-\$"
}

@test "INSERT without ids gets consecutive server ids" {
	{
		printf 'CREATE %s 2 l2\n' "$C"
		printf 'INSERT %s 3 - 24\n' "$C"
		gen f32 1 1 2 2 3 3
		printf 'FLUSH\n'
		printf 'SEARCH %s 3 1 8\n' "$C"
		gen f32 0 0
	} >req.bin
	run -0 wire_decode
	assert_line -n 1 --regexp '^OK n=3 (.* )?first_id=-?[0-9]+( |$)'
	first=$(sed -n '2s/.*first_id=\(-*[0-9]*\).*/\1/p' <<<"$output")
	assert_line -n 2 "OK inserted=3 deleted=0"
	assert_line -n 3 "OK nq=1 k=3 bytes=36"
	assert_line -n 4 "ids $first $((first + 1)) $((first + 2))"
	assert_line -n 5 "dist 2 8 18"
}

@test "a client's unflushed work is discarded when it disconnects" {
	{
		printf 'CREATE %s 4 l2\n' "$C"
		printf 'INSERT %s 1 ids 24\n' "$C"
		gen i64 1
		gen f32 1 1 1 1
		printf 'FLUSH\n'
	} >req.bin
	run -0 wire_decode
	assert_line -n 2 "OK inserted=1 deleted=0"
	# Its inserts never appear, its deletes never happen.
	{
		printf 'INSERT %s 1 - 16\n' "$C"
		gen f32 1 2 3 4
		printf 'DELETE %s 1 8\n' "$C"
		gen i64 1
	} >req.bin
	run -0 wire_decode
	assert_line -n 0 --regexp '^OK n=1'
	assert_line -n 1 "OK n=1"
	run -0 wire < <(printf 'FLUSH\nDESCRIBE %s\n' "$C")
	assert_line -n 0 "OK inserted=0 deleted=0"
	assert_line -n 1 --regexp " rows=1 "
	run -0 mv-get "$C" < <(printf '1\n')
	assert_output "1${T}1,1,1,1"
}

@test "a payload whose size does not match n x dim gets ERR BADDIM and is skipped" {
	{
		printf 'CREATE %s 4 l2\n' "$C"
		printf 'INSERT %s 1 - 12\n' "$C"
		gen f32 1 2 3
		printf 'PING\nFLUSH\n'
	} >req.bin
	run -0 wire_decode
	assert_equal "${#lines[@]}" 4
	assert_line -n 1 --regexp '^ERR BADDIM '
	assert_line -n 2 "OK"
	assert_line -n 3 "OK inserted=0 deleted=0"
}

@test "NaN in a payload gets ERR BADDATA row N and adds nothing" {
	{
		printf 'CREATE %s 2 l2\n' "$C"
		printf 'INSERT %s 1 - 8\n' "$C"
		gen f32 5 5
		printf 'INSERT %s 3 - 24\n' "$C"
		gen f32 1 2 3 nan 5 6
		printf 'INSERT %s 1 - 8\n' "$C"
		gen f32 inf 1
		printf 'FLUSH\n'
	} >req.bin
	run -0 wire_decode
	assert_equal "${#lines[@]}" 5
	assert_line -n 1 --regexp '^OK n=1'
	assert_line -n 2 "ERR BADDATA row 2: NaN or Inf"
	assert_line -n 3 "ERR BADDATA row 1: NaN or Inf"
	assert_line -n 4 "OK inserted=1 deleted=0"
}

@test "an id given twice in one INSERT gets ERR DUPID; an existing one too" {
	{
		printf 'CREATE %s 1 l2\n' "$C"
		printf 'INSERT %s 2 ids 24\n' "$C"
		gen i64 5 5
		gen f32 1 2
		printf 'INSERT %s 1 ids 12\n' "$C"
		gen i64 6
		gen f32 1
		printf 'FLUSH\n'
		printf 'INSERT %s 1 ids 12\n' "$C"
		gen i64 6
		gen f32 9
		printf 'INSERT %s 1 ids,upsert 12\n' "$C"
		gen i64 6
		gen f32 9
		printf 'FLUSH\n'
	} >req.bin
	run -0 wire_decode
	assert_equal "${#lines[@]}" 7
	assert_line -n 1 --regexp '^ERR DUPID id 5( |$)'
	assert_line -n 2 --regexp '^OK n=1'
	assert_line -n 3 "OK inserted=1 deleted=0"
	assert_line -n 4 --regexp '^ERR DUPID id 6( |$)'
	assert_line -n 5 --regexp '^OK n=1'
	assert_line -n 6 --regexp '^OK inserted=1 '
}

@test "a client that disconnects mid-payload does not disturb the node" {
	run -0 wire < <(printf 'CREATE %s 250 l2\n' "$C")
	assert_output "OK"
	run -0 wire < <(printf 'INSERT %s 1 - 1000\n0123456789' "$C")
	assert_output ""
	assert_serving
	# A complete insert of the same size still works afterwards.
	{
		printf 'INSERT %s 1 - 1000\n' "$C"
		gen vecs 1 250 --format fvecs | tail -c 1000
		printf 'FLUSH\n'
	} >req.bin
	run -0 wire_decode
	assert_line -n 0 --regexp '^OK n=1'
	assert_line -n 1 "OK inserted=1 deleted=0"
	assert_rows "$C" 1
}

@test "a client stuck mid-payload or mid-line does not block others" {
	run -0 wire < <(printf 'CREATE %s 250 l2\n' "$C")
	printf 'INSERT %s 1 - 1000\n0123456789' "$C" >stuck1
	printf 'PIN' >stuck2
	wire 1 12 <stuck1 >/dev/null 3>&- &
	p1=$!
	wire 1 12 <stuck2 >/dev/null 3>&- &
	p2=$!
	sleep 0.5
	# socat, not python: its start-up alone can take seconds on a busy
	# machine.
	a=$(wire_addr)
	case $a in unix:*) a=UNIX-CONNECT:${a#unix:} ;; *) a=TCP:$a ;; esac
	run -0 timeout 5 socat -t 3 - "$a" <<<"PING"
	assert_output "OK"
	run -0 mv-ls "$C"
	wait "$p1" "$p2"
	assert_rows "$C" 0
}

@test "SESSION binds a connection to a named session that outlives it" {
	{
		printf 'CREATE %s 2 l2\n' "$C"
		printf 'SESSION s%s\n' "$C"
		printf 'INSERT %s 2 ids 32\n' "$C"
		gen i64 1 2
		gen f32 1 1 2 2
		printf 'HANDOFF\n'
	} >req.bin
	run -0 wire_decode
	assert_line -n 1 "OK rows=0"
	assert_line -n 2 --regexp '^OK n=2'
	assert_line -n 3 "OK rows=2"
	run -0 wire < <(printf 'SESSIONS\nDESCRIBE %s\nSESSION s%s\n' "$C" "$C")
	assert_line --regexp "^s$C${T}$C${T}2${T}[0-9]+\$"
	assert_line --regexp " rows=0 "
	assert_line "OK rows=2"
	run -0 wire < <(printf 'COMMIT s%s\nDESCRIBE %s\nABORT s%s\nCOMMIT s%s\n' "$C" "$C" "$C" "$C")
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "OK inserted=2 deleted=0"
	assert_line -n 1 --regexp " rows=2 "
	assert_line -n 2 --regexp '^ERR NOSESSION '
	assert_line -n 3 --regexp '^ERR NOSESSION '
}

@test "DELETE is pending until FLUSH and FLUSH counts removed rows" {
	{
		printf 'CREATE %s 1 l2\n' "$C"
		printf 'INSERT %s 3 ids 36\n' "$C"
		gen i64 1 2 3
		gen f32 1 2 3
		printf 'FLUSH\n'
		printf 'DELETE %s 2 16\n' "$C"
		gen i64 2 99
		printf 'DESCRIBE %s\n' "$C"
		printf 'FLUSH\n'
		printf 'DESCRIBE %s\n' "$C"
	} >req.bin
	run -0 wire_decode
	assert_equal "${#lines[@]}" 7
	assert_line -n 2 "OK inserted=3 deleted=0"
	assert_line -n 3 "OK n=2"
	assert_line -n 4 --regexp " rows=3 "
	assert_line -n 5 "OK inserted=0 deleted=1"
	assert_line -n 6 --regexp " rows=2 "
}

@test "GET and SCAN return ids and vectors" {
	{
		printf 'CREATE %s 2 l2\n' "$C"
		printf 'INSERT %s 2 ids 32\n' "$C"
		gen i64 7 3
		gen f32 1 2 3 4
		printf 'FLUSH\n'
		printf 'GET %s 2 16\n' "$C"
		gen i64 3 42
		printf 'SCAN %s -1 10\n' "$C"
		printf 'SCAN %s 7 10\n' "$C"
	} >req.bin
	run -0 bash -c 'python3 "$1" wire "$2" <req.bin | python3 "$1" decode 2' _ "$MV_HELPERS/mvgen.py" "$(wire_addr)"
	assert_equal "${#lines[@]}" 12
	assert_line -n 2 "OK inserted=2 deleted=0"
	# GET 3 (found) and 42 (unknown): one row, 8 + 2 x 4 bytes.
	assert_line -n 3 "OK n=1 bytes=16"
	assert_line -n 4 "ids 3"
	assert_line -n 5 "vecs 3 4"
	# SCAN from the start: both rows in id order, 2 x 8 + 2 x 2 x 4 bytes.
	assert_line -n 6 "OK n=2 bytes=32"
	assert_line -n 7 "ids 3 7"
	assert_line -n 8 "vecs 3 4 1 2"
	# SCAN past the last id: the end.
	assert_line -n 9 "OK n=0 bytes=0"
	assert_line -n 10 "ids "
}

@test "STAT lists the embedded node as one line" {
	run -0 wire <<<"STAT"
	assert_equal "${#lines[@]}" 2
	assert_line -n 0 --regexp "^[^$T]+$T[^$T]+$T[0-9]+$T[0-9]+$T[0-9]+\$"
	assert_line -n 1 "END"
}
