#!/usr/bin/env bats
# 75-holders.bats - the cluster's flush guarantees and merges, on a real
# etcd (the file's own) and a shared directory for storage: sync_level
# counts a new unit's holders that loaded it (LOAD loaded=), not any node
# that applied it; an automatic flush waits for sync_level too and says
# on the connection's next command that it fell short; background merges
# go on when node 1 is gone; a user claimed by another cluster is
# refused (78, or 77 for a CREATE), also when two clusters claim it at
# the same moment.  A node that never answers is a live key of the test's
# own (helpers/cluster.bash join_node) at an address nobody listens on.

load helpers/mv
load helpers/cluster
load helpers/cluster_user

# holders PATH NO...: the two holders of unit PATH among node numbers
# NO... (num_replicas=1), sorted: place.c's rendezvous hashing.
holders() {
	python3 - "$@" <<'EOF'
import sys
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
def h(unit, no):
    v = 0xcbf29ce484222325
    for b in unit.encode():
        v = ((v ^ b) * 0x100000001b3) & M
    return mix(v ^ mix(no))
unit, nos = sys.argv[1], [int(n) for n in sys.argv[2:]]
top = sorted(nos, key=lambda n: (-h(unit, n), n))[:2]
print(" ".join(str(n) for n in sorted(top)))
EOF
}

# new_vec: the storage path of the newest vector file (a flush's unit),
# by the time in its name (n<N>-<ms>-<random>.vec).
new_vec() {
	(cd "$CLUSTER_DIR/shared" && ls "$U"/*/*.vec |
		awk -F- '{ print $(NF - 1), $0 }' | sort -n | tail -n 1 |
		cut -d' ' -f2)
}

@test "sync_level=1 waits for a holder of the new unit: node 2 applying it is not enough when the other holder is node 3" {
	local i vec hs rc seen=0
	for i in 1 2; do
		start_cluster_node "$i" --user="$U" --num_replicas=1 \
			--sync_level=1 --sync_timeout=2 --auto_compact=false
	done
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 2
	# Node 3 is live and never answers.
	join_node 3 "127.0.0.1:$(free_port)"
	for i in $(seq 1 30); do
		run mv-insert -a "$NODE_1" -u "$U" --ids-first things <<<"$i $i 0"
		rc=$status
		vec=$(new_vec)
		hs=$(holders "$vec" 1 2 3)
		echo "flush $i: $vec held by $hs: exit $rc: $output"
		if [ "$hs" = "1 3" ]; then
			[ "$rc" -eq 75 ]
			assert_output --regexp "flush committed at revision [0-9]+ but only 0 of 1 replicas loaded it: node 3 \(127\.0\.0\.1:[0-9]+\) .*; not within 2 s"
			seen=$i
			break
		fi
		# node 1 and node 2, or node 2 and node 3: node 2 loaded it
		[ "$rc" -eq 0 ]
	done
	[ "$seen" -gt 0 ]
	# It committed all the same: node 2 sees every row.
	run -0 mv-ls -a "$NODE_2" -u "$U" things
	assert_output --regexp "^things${T}2${T}l2${T}$seen${T}"
	# LOAD says up to where a node holds what it should.
	run -0 bash -c "printf 'LOAD\nQUIT\n' | socat -t 5 - TCP:$NODE_2"
	assert_output --regexp 'applied=([0-9]+) .*loaded=[0-9]+'
}

# talk ADDR STEP...: one connection to ADDR as user U; each step is
# ins:ID (an INSERT of the row ID, vector ID 0: its reply, a tab and the
# milliseconds it took), wait:FILE:TEXT (until FILE holds TEXT, 15 s at
# most) or rows:N (until mv-ls through ADDR counts N rows in things, 15 s
# at most; prints the milliseconds it took).
talk() {
	python3 - "$U" "$@" <<'EOF'
import socket, struct, sys, time
user, addr, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
host, port = addr.rsplit(":", 1)
sk = socket.create_connection((host, int(port)))
sk.settimeout(30)
f = sk.makefile("rb")
def ask(req):
    t = time.monotonic()
    sk.sendall(req)
    line = f.readline().decode().rstrip("\n")
    print("%s\t%d" % (line, (time.monotonic() - t) * 1000), flush=True)
ask(b"USER %s\n" % user.encode())
for st in steps:
    kind, arg = st.split(":", 1)
    if kind == "ins":
        i = int(arg)
        p = struct.pack("<q2f", i, i, 0)
        ask(b"INSERT things 1 ids %d\n" % len(p) + p)
    elif kind == "rows":
        import subprocess
        t = time.monotonic()
        while time.monotonic() < t + 15:
            ls = subprocess.run(["mv-ls", "-a", addr, "-u", user, "things"],
                                capture_output=True, text=True).stdout
            if ls.split("\t")[3:4] == [arg]:
                break
            time.sleep(0.05)
        print("rows %s\t%d" % (arg, (time.monotonic() - t) * 1000), flush=True)
    else:
        path, text = arg.split(":", 1)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            with open(path) as lf:
                if text in lf.read():
                    break
            time.sleep(0.05)
EOF
}

@test "an automatic flush (flush_interval) waits for sync_level; falling short, it says so on the connection's next command" {
	start_cluster_node 1 --user="$U" --num_replicas=1 --sync_level=1 \
		--sync_timeout=1 --auto_flush=true --flush_interval=100
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 2
	# Node 2, the other holder of every unit, never answers.
	join_node 2 "127.0.0.1:$(free_port)"
	run -0 talk "$NODE_1" ins:1 rows:1 ins:2
	assert_line -n 1 --regexp "^OK n=1${T}"
	assert_line -n 3 --regexp "^ERR BUSY automatic flush committed at revision [0-9]+ but only 0 of 1 replicas loaded it: node 2 \(127\.0\.0\.1:[0-9]+\) .*; not within 1 s"
	# The first row committed; the second was refused with the error.
	run -0 mv-ls -a "$NODE_1" -u "$U" things
	assert_output --regexp "^things${T}2${T}l2${T}1${T}"
}

@test "an automatic flush at flush_limit answers its INSERT at once; the next command waits for sync_level and says it fell short" {
	start_cluster_node 1 --user="$U" --num_replicas=1 --sync_level=1 \
		--sync_timeout=1 --auto_flush=true --flush_limit=1
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 2
	join_node 2 "127.0.0.1:$(free_port)"
	run -0 talk "$NODE_1" ins:1 ins:2
	assert_line -n 1 --regexp "^OK n=1${T}[0-9]+$"
	assert_line -n 2 --regexp "^ERR BUSY automatic flush committed at revision [0-9]+ but only 0 of 1 replicas loaded it.*${T}[0-9]+$"
	local ms=${lines[2]##*$T}
	echo "the next command took $ms ms"
	[ "$ms" -ge 900 ]
	run -0 mv-ls -a "$NODE_1" -u "$U" things
	assert_output --regexp "^things${T}2${T}l2${T}1${T}"
}

@test "an automatic flush short of sync_level holds up no other connection's: the ticker never waits for replicas" {
	start_cluster_node 1 --user="$U" --num_replicas=1 --sync_level=1 \
		--sync_timeout=6 --auto_flush=true --flush_interval=100
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 2
	join_node 2 "127.0.0.1:$(free_port)"
	# Connection A's rows are committed; its wait is still owed.
	run -0 talk "$NODE_1" ins:1 rows:1
	assert_line -n 2 --regexp "^rows 1${T}"
	# Connection B's rows are flushed by the ticker well within the
	# 6 s that A's wait for node 2 would take.
	run -0 talk "$NODE_1" ins:2 rows:2
	assert_line -n 1 --regexp "^OK n=1${T}"
	local ms=${lines[2]##*$T}
	echo "B's row flushed after $ms ms"
	[ "$ms" -lt 3000 ]
}

@test "background merges go on when node 1 is gone: node 2 merges what it flushes" {
	local i
	for i in 1 2; do
		start_cluster_node "$i" --user="$U" --num_replicas=1
	done
	run -0 mv-create -a "$NODE_2" -u "$U" things --dim 2
	kill -TERM "$NODE_1_PID"
	_wait_gone "$NODE_1_PID" 10
	for i in $(seq 1 9); do
		mv-insert -q -a "$NODE_2" -u "$U" --ids-first things <<<"$i $i 0"
	done
	segs() {
		mv-ls -a "$NODE_2" -u "$U" things | cut -f5
	}
	echo "segments: $(segs)"
	poll 15 eval '[ "$(segs)" -lt 9 ]' || fail "node 2 never merged: $(segs) segments"
	run -0 mv-ls -a "$NODE_2" -u "$U" things
	assert_output --regexp "^things${T}2${T}l2${T}9${T}"
}

@test "a node of another cluster_id for a user that a cluster holds exits 78 naming that cluster" {
	start_cluster_node 1 --user="$U"
	local home=$CLUSTER_DIR/other
	mkdir -p "$home"
	run -78 --separate-stderr timeout 20 env MV_HOME="$home" mv-noded \
		--listen="127.0.0.1:$(free_port)" --etcd="$MV_TEST_ETCD" \
		--cluster_id="x$CLUSTER" --user="$U" --data_dir="$home" \
		--s3_endpoint="file:$CLUSTER_DIR/shared"
	echo "$stderr"
	assert_regex "$stderr" "user '$U' belongs to cluster '$CLUSTER'"
	# Nothing of the other cluster's claim is left.
	run -0 ectl get --print-value-only "/$U/config/x$CLUSTER"
	assert_output ''
	# The cluster holding the user starts again.
	kill -TERM "$NODE_1_PID"
	_wait_gone "$NODE_1_PID" 10
	start_cluster_node 1 --user="$U"
}

@test "a collection for a user that another cluster holds is refused, naming that cluster" {
	start_cluster_node 1 --user="$U"
	start_cluster_node 2 --user="v$U" --cluster_id="x$CLUSTER"
	run -77 mv-create -a "$NODE_2" -u "$U" things --dim 2
	assert_output "mv-create: user '$U' belongs to cluster '$CLUSTER', not to 'x$CLUSTER': a user belongs to one cluster"
	run -0 ectl get --print-value-only "/$U/config/x$CLUSTER"
	assert_output ''
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 2
}

@test "two clusters creating a user's first collection at the same moment: exactly one gets the user, every time" {
	start_cluster_node 1 --user="a$U"
	start_cluster_node 2 --user="b$U" --cluster_id="x$CLUSTER"
	local i rc1 rc2 keys other
	for i in 1 2 3 4 5 6 7 8; do
		# The same collection name, then two different ones.
		other=things
		[ $((i % 2)) = 0 ] && other=stuff
		mv-create -a "$NODE_1" -u "r$i$U" things --dim 2 \
			>"out1.$i" 2>&1 &
		local p1=$!
		mv-create -a "$NODE_2" -u "r$i$U" "$other" --dim 2 \
			>"out2.$i" 2>&1 &
		local p2=$!
		rc1=0 rc2=0
		wait "$p1" || rc1=$?
		wait "$p2" || rc2=$?
		echo "round $i: cluster 1 exit $rc1, cluster 2 exit $rc2"
		cat "out1.$i" "out2.$i"
		# One wins, the other is refused naming the winner.
		if [ "$rc1" = 0 ]; then
			assert_equal "$rc2" 77
			grep -q "belongs to cluster '$CLUSTER'" "out2.$i"
			want=$CLUSTER
		else
			assert_equal "$rc1" 77
			assert_equal "$rc2" 0
			grep -q "belongs to cluster 'x$CLUSTER'" "out1.$i"
			want=x$CLUSTER
		fi
		# Only the winner's claim is left in etcd.
		keys=$(ectl get --prefix --keys-only "/r$i$U/config/" | grep -v '^$')
		assert_equal "$keys" "/r$i$U/config/$want"
	done
}
