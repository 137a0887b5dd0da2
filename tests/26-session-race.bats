#!/usr/bin/env bats
# Named sessions under concurrent and failing clients: a connection's rows
# reach the session only when its input is complete (HANDOFF), so a COMMIT
# by another client never races with a half-sent input, and an input that
# fails or is cut off leaves nothing behind; a client stalled mid-payload
# holds no lock that others need.

load helpers/mv

setup() {
	mv_setup
	S=s$C
}

teardown() {
	mv_teardown
}

# sock: the node's Unix socket path.
sock() {
	echo "$MV_HOME/mv.sock"
}

@test "rows of every mv-insert --session that exited 0 are committed, with mv-flush racing" {
	start_own_node
	run -0 mv-create "$C" --dim 64
	for r in $(seq 1 10); do
		gen vecs 5000 64 --seed "$r" >"in$r.txt"
	done
	pids=()
	for r in $(seq 1 10); do
		mv-insert --session "$S" "$C" "in$r.txt" 2>"err$r" &
		pids+=($!)
	done
	# Commit the session over and over while the inserts run.
	(
		end=$((SECONDS + 50))
		while [ "$SECONDS" -lt "$end" ]; do
			mv-flush "$S" >/dev/null 2>&1 || true
			[ -e stop ] && break
		done
		exit 0
	) &
	flusher=$!
	for p in "${pids[@]}"; do
		wait "$p" || fail "an mv-insert failed: $(cat err*)"
	done
	touch stop
	wait "$flusher"
	mv-flush "$S" >/dev/null 2>&1 || true
	assert_rows "$C" 50000
}

# The sequence of issue 10, spoken raw: A binds S, B commits S, A inserts
# again and completes its input; no acknowledged row is lost.
@test "a COMMIT by another connection does not orphan a bound connection's rows" {
	start_own_node
	run -0 wire <<<"CREATE $C 1 l2"
	cat >race.py <<'EOF'
import socket, struct, sys
path, coll, sess = sys.argv[1:4]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s, s.makefile("rb")

def ask(c, line, payload=b""):
    c[0].sendall(line.encode() + b"\n" + payload)
    r = c[1].readline().decode().rstrip("\n")
    print(r)
    return r

def row(i):
    return struct.pack("<q", i) + struct.pack("<f", float(i))

a, b = conn(), conn()
ask(a, "SESSION %s" % sess)
ask(a, "INSERT %s 1 ids 12" % coll, row(1))
ask(b, "COMMIT %s" % sess)
ask(a, "INSERT %s 1 ids 12" % coll, row(2))
ask(a, "HANDOFF")
a[0].close()
ask(b, "COMMIT %s" % sess)
EOF
	run -0 timeout 20 python3 race.py "$(sock)" "$C" "$S"
	assert_line -n 0 "OK rows=0"
	assert_line -n 1 "OK n=1"
	assert_line -n 2 "OK inserted=0 deleted=0"
	assert_line -n 3 "OK n=1"
	assert_line -n 4 "OK rows=2"
	assert_line -n 5 "OK inserted=2 deleted=0"
	assert_rows "$C" 2
	run -0 mv-get "$C" < <(printf '1\n2\n')
	assert_output "1${T}1
2${T}2"
}

@test "an mv-insert --session refused for a bad last line leaves nothing in the session" {
	start_own_node
	run -0 mv-create "$C" --dim 200
	# More rows than one 8 MiB request holds: a part goes out before the
	# bad line is read.
	gen vecs 12000 200 >v.txt
	echo "1 2 x" >>v.txt
	run -65 mv-insert --session "$S" "$C" v.txt
	run mv-flush "$S"
	assert_rows "$C" 0
	run -0 mv-flush --list
	refute_match "^$S${T}$C${T}[1-9]"
}

@test "a client that disconnects before HANDOFF leaves nothing in the session" {
	start_own_node
	run -0 wire <<<"CREATE $C 1 l2"
	{
		printf 'SESSION %s\n' "$S"
		printf 'INSERT %s 2 ids 24\n' "$C"
		gen i64 1 2
		gen f32 1 2
	} >req.bin
	run -0 wire <req.bin
	assert_line -n 0 "OK rows=0"
	assert_line -n 1 "OK n=2"
	run -0 wire <<<"SESSION $S"
	assert_output "OK rows=0"
}

# A python client that sends an INSERT header and half its payload in a
# session, then sleeps.
stall() {
	cat >stall.py <<'EOF'
import socket, sys, time
path, coll, sess, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rb")
s.sendall(("SESSION %s\n" % sess).encode())
f.readline()
s.sendall(("INSERT %s 1000 - 4000\n" % coll).encode() + b"\0" * 2000)
open("stalled", "w").close()
s.settimeout(secs)
try:
    got = s.recv(100)
    print("closed" if got == b"" else "answer " + got.decode().strip())
except socket.timeout:
    print("open")
EOF
	timeout 60 python3 stall.py "$(sock)" "$@"
}

@test "a client stalled mid-INSERT in a session blocks no one else" {
	start_own_node
	run -0 wire < <(printf '%s\n' "CREATE $C 1 l2" "CREATE ${C}x 1 l2")
	run -0 mv-insert --session "${S}o" "$C" < <(printf '5\n')
	stall "$C" "$S" 30 >stall.out &
	sp=$!
	poll 20 test -e stalled
	sleep 0.2
	# SESSIONS, another session's commands, DROP, a plain insert.
	run -0 timeout 5 mv-flush --list
	assert_line --regexp "^${S}o${T}$C${T}1${T}"
	run -0 timeout 5 mv-insert --session "$S" "$C" < <(printf '7\n')
	run -0 timeout 5 mv-flush "${S}o"
	run -0 timeout 5 mv-flush "$S"
	run -0 timeout 5 mv-drop "${C}x"
	run -0 timeout 5 mv-insert "$C" < <(printf '9\n')
	assert_rows "$C" 3
	kill "$sp" 2>/dev/null || true
	wait "$sp" || true
}

@test "a payload stalled longer than io_timeout drops the connection and its rows" {
	start_own_node --io_timeout=2
	run -0 wire <<<"CREATE $C 1 l2"
	SECONDS=0
	run -0 stall "$C" "$S" 20
	assert_output "closed"
	[ "$SECONDS" -lt 15 ] || fail "dropped after $SECONDS s"
	run -0 wire <<<"SESSION $S"
	assert_output "OK rows=0"
	grep -q "io_timeout" "$MV_LOG" || fail "the node did not log the drop"
}

@test "cosine session inputs handed off one after the other keep their raw vectors" {
	# The first HANDOFF's rows start streaming to storage (normalised in
	# memory behind the stream); the second's are appended raw.
	start_own_node
	run -0 mv-create "$C" --dim 64 --metric cosine
	gen vecs 24001 64 --seed 5 --format fvecs >a.fvecs
	gen vecs 24000 64 --seed 6 --format fvecs >b.fvecs
	run -0 mv-insert --session "$S" "$C" a.fvecs
	run -0 mv-insert --session "$S" "$C" b.fvecs
	run -0 mv-flush "$S"
	assert_rows "$C" 48001
	cat a.fvecs b.fvecs >ab.fvecs
	mv-get "$C" --all --format fvecs >got.fvecs
	cmp ab.fvecs got.fvecs
	run -0 mv-search "$C" -k 1 < <(gen vecs 1 64 --seed 6)
	assert_output --regexp "^0${T}1${T}24001${T}"
}
