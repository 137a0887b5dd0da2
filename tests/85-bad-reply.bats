#!/usr/bin/env bats
# Malformed replies: a tool facing a node that answers nonsense (absurd
# counts, sizes that overflow, negative byte counts, a SCAN that does not
# advance) exits 76 with one "mv-TOOL: malformed reply ..." line, and never
# crashes, hangs or allocates what the reply claims.  No reply: a node gone
# after a commit was sent leaves exit 69 saying the outcome is unknown.
# The node is a small fake server answering each request verb with a
# fixed reply.

load helpers/mv

setup() {
	mv_setup
	SOCK=$BATS_TEST_TMPDIR/fake.sock
	cat >fake.py <<'PY'
import os, socket, sys
# fake.py SOCK VERB=REPLY...: answer each request by its verb (REPLY with
# backslash escapes; CLOSE: close the connection instead, as a node killed
# before it answers); unknown verbs get "OK".  Payload bytes announced on
# the request line are read and dropped.
path = sys.argv[1]
replies = {}
for a in sys.argv[2:]:
    verb, _, rep = a.partition('=')
    replies[verb] = rep.encode().decode('unicode_escape').encode('latin-1')
payload_word = {'INSERT': 4, 'DELETE': 3, 'GET': 3, 'SEARCH': 4}
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + '.tmp')
srv.listen(8)
os.rename(path + '.tmp', path)
while True:
    conn, _ = srv.accept()
    f = conn.makefile('rb')
    while True:
        line = f.readline()
        if not line:
            break
        w = line.decode('latin-1').split()
        if not w:
            continue
        i = payload_word.get(w[0])
        if i is not None and len(w) > i:
            f.read(int(w[i]))
        rep = replies.get(w[0], b'OK\n')
        if rep == b'CLOSE':
            break
        try:
            conn.sendall(rep)
        except OSError:
            break
    f.close()
    conn.close()
PY
}

teardown() {
	if [ -n "${FAKE_PID:-}" ]; then
		kill "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	FAKE_PID=
}

DESC='DESCRIBE=OK name=c dim=2 metric=l2 rows=1 segments=1 index=- fields=-\n'

# fake VERB=REPLY...: (re)start the fake node on $SOCK.
fake() {
	teardown
	rm -f "$SOCK"
	python3 fake.py "$SOCK" "$@" &
	FAKE_PID=$!
	poll 10 test -S "$SOCK"
}

# malformed STATUS TOOL ARGS...: the tool exits 76 with one line saying
# the reply is malformed, within 20 seconds.
malformed() {
	local tool=$1
	shift
	run -76 --separate-stderr timeout -k 5 20 "$tool" -a "unix:$SOCK" "$@"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^$tool: malformed reply"
}

@test "GET: a row count whose size overflows -> 76, no crash" {
	printf '1\n' >ids.txt
	fake "$DESC" 'GET=OK n=2305843009213693952 bytes=16\n0123456789abcdef'
	malformed mv-get c ids.txt
	fake "$DESC" 'GET=OK n=4611686018427387904 bytes=0\n'
	malformed mv-get c ids.txt
}

@test "GET: a negative or absurd byte count -> 76" {
	printf '1\n' >ids.txt
	fake "$DESC" 'GET=OK n=1 bytes=-1\n'
	malformed mv-get c ids.txt
	fake "$DESC" 'GET=OK n=1 bytes=-9223372036854775808\n'
	malformed mv-get c ids.txt
	fake "$DESC" 'GET=OK n=-1 bytes=16\n0123456789abcdef'
	malformed mv-get c ids.txt
	fake "$DESC" 'GET=OK n=1 bytes=99999999999999999999999999999999999999999999\n'
	malformed mv-get c ids.txt
}

@test "GET: more rows than ids asked for -> 76" {
	printf '1\n' >ids.txt
	# Two rows of dim 2 (24 bytes each) for one id.
	fake "$DESC" 'GET=OK n=2 bytes=32\n\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\0\0\x80\x3f\0\0\x80\x3f\0\0\x80\x3f\0\0\x80\x3f'
	malformed mv-get c ids.txt
}

@test "SCAN: a reply that does not advance -> 76, not an endless loop" {
	# One row, id 5, forever.
	fake "$DESC" 'SCAN=OK n=1 bytes=16\n\x05\0\0\0\0\0\0\0\0\0\x80\x3f\0\0\x80\x3f'
	malformed mv-get c --all
}

@test "SCAN: an overflowing row count -> 76" {
	fake "$DESC" 'SCAN=OK n=2305843009213693952 bytes=16\n0123456789abcdef'
	malformed mv-get c --all
}

@test "SEARCH: a negative byte count -> 76, no crash" {
	fake "$DESC" 'SEARCH=OK nq=1 k=1 bytes=-1\n'
	malformed mv-search -k 1 c < <(printf '1 1\n')
	fake "$DESC" 'SEARCH=OK nq=1 k=1 bytes=-9223372036854775808\n'
	malformed mv-search -k 1 c < <(printf '1 1\n')
}

@test "INSERT: a first_id whose run of ids overflows, or none -> 76" {
	fake "$DESC" 'INSERT=OK n=2 first_id=9223372036854775807\n' 'FLUSH=OK inserted=2 deleted=0\n'
	malformed mv-insert --print-ids c < <(printf '1 1\n2 2\n')
	fake "$DESC" 'INSERT=OK n=2\n' 'FLUSH=OK inserted=2 deleted=0\n'
	malformed mv-insert --print-ids c < <(printf '1 1\n2 2\n')
}

@test "DESCRIBE: an absurd dimension -> 76" {
	fake 'DESCRIBE=OK name=c dim=4611686018427387904 metric=l2 rows=1 segments=1 index=- fields=-\n'
	malformed mv-get c < <(printf '1\n')
	fake 'DESCRIBE=OK name=c dim=-3 metric=l2 rows=1 segments=1 index=- fields=-\n'
	malformed mv-search c < <(printf '1 1\n')
}

@test "a reply that is no reply at all -> 76" {
	fake 'DESCRIBE=HELLO WORLD\n'
	malformed mv-get c < <(printf '1\n')
	fake 'DESCRIBE=OK dim=2\n'
	malformed mv-search c < <(printf '1 1\n')
}

# gone STATUS TOOL ARGS...: the tool exits 69 with one line.
gone() {
	local tool=$1
	shift
	run -69 --separate-stderr timeout -k 5 20 "$tool" -a "unix:$SOCK" "$@"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^$tool: "
}

@test "node gone after the commit was sent: 69, the outcome is unknown" {
	fake "$DESC" 'INSERT=OK n=2 first_id=0\n' 'FLUSH=CLOSE'
	gone mv-insert c < <(printf '1 1\n2 2\n')
	assert_regex "$stderr" 'outcome is unknown: check with mv-get .* mv-ls'
	fake "$DESC" 'DELETE=OK n=1\n' 'FLUSH=CLOSE'
	gone mv-delete c < <(printf '1\n')
	assert_regex "$stderr" 'outcome is unknown: check with mv-get .* mv-ls'
	fake 'COMMIT=CLOSE'
	gone mv-flush s
	assert_regex "$stderr" 'outcome is unknown: check with mv-get .* mv-ls'
}

@test "node gone before the commit: 69, nothing committed, no doubt" {
	fake "$DESC" 'INSERT=CLOSE'
	gone mv-insert c < <(printf '1 1\n2 2\n')
	refute_regex "$stderr" unknown
	fake 'DESCRIBE=CLOSE'
	gone mv-delete c < <(printf '1\n')
	refute_regex "$stderr" unknown
}

@test "a TCP address that never completes the connection: 69 within MV_CONNECT_TIMEOUT, no hang" {
	# A listener whose backlog is full: the kernel drops further SYNs, as
	# a host gone from the network does.
	python3 - >port <<'PY' &
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.3)
print(port, flush=True)
time.sleep(60)
PY
	local bh=$!
	for _ in $(seq 1 50); do
		[ -s port ] && break
		sleep 0.1
	done
	t0=$(date +%s%N)
	MV_CONNECT_TIMEOUT=1 run -69 --separate-stderr timeout 30 \
		mv-ls -a "127.0.0.1:$(cat port)"
	t1=$(date +%s%N)
	kill "$bh"
	assert_regex "$stderr" "^mv-ls: cannot connect to '127.0.0.1:[0-9]+': no answer within 1 s"
	[ $(((t1 - t0) / 1000000)) -lt 5000 ] ||
		fail "took $(((t1 - t0) / 1000000)) ms"
	# A bad value is refused.
	MV_CONNECT_TIMEOUT=x run -64 --separate-stderr mv-ls -a "127.0.0.1:1"
	assert_regex "$stderr" "MV_CONNECT_TIMEOUT"
}
