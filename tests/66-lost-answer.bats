#!/usr/bin/env bats
# 66-lost-answer.bats - etcd applies a commit but its answer is lost on
# the way back (a connection cut, a timeout): the node cannot know
# whether the commit applied, so the files it names must stay until etcd
# says (follow.c's limbo), or a commit that did apply would name files
# that are gone.  Node 1 reaches etcd through tests/helpers/etcd_drop.py,
# which loses the answer of one transaction on demand; node 2 talks to
# etcd directly.  For a flush, a merge and an index build: the tool says
# it could not finish (75), and afterwards every row is there once,
# through both nodes and after node 1 restarts, with every file etcd
# names in storage.  Two cluster nodes on the file's own etcd and a
# shared directory for storage; both hold every unit (num_replicas=1).

load helpers/mv
load helpers/cluster
load helpers/cluster_user

# drop_proxy: etcd_drop.py in front of the file's etcd; sets ETCD_VIA.
drop_proxy() {
	local pf=$CLUSTER_DIR/drop.port
	python3 "$MV_ROOT/tests/helpers/etcd_drop.py" "${MV_TEST_ETCD#http://}" \
		"$pf" "$CLUSTER_DIR/drop.trigger" "$CLUSTER_DIR/drop.log" \
		</dev/null >>"$CLUSTER_DIR/drop.out" 2>&1 3>&- &
	echo $! >>"$CLUSTER_DIR/pids"
	poll 30 test -s "$pf" || fail "the proxy did not listen: $(cat "$CLUSTER_DIR/drop.out")"
	ETCD_VIA=http://127.0.0.1:$(cat "$pf")
}

# two_nodes: node 1 through the proxy, node 2 direct; collection things.
two_nodes() {
	drop_proxy
	MV_TEST_ETCD=$ETCD_VIA start_cluster_node 1 --user="$U" \
		--num_replicas=1 --auto_compact=false
	start_cluster_node 2 --user="$U" --num_replicas=1 --auto_compact=false
	run -0 mv-create -a "$NODE_1" -u "$U" things --dim 4
	gen vecs 3 4 --seed 33 >q.txt
}

# lose_next: the next transaction through the proxy loses its answer.
lose_next() {
	: >"$CLUSTER_DIR/drop.trigger"
}

lost() {
	[ ! -e "$CLUSTER_DIR/drop.trigger" ] &&
		grep -q "dropped the answer" "$CLUSTER_DIR/drop.log"
}

# whole ADDR BASE: through ADDR, things holds BASE's rows, each once, and
# an exact search is the brute force over them.
whole() {
	local n
	n=$(line_count "$2")
	awk_knn "$2" q.txt "$n" l2 >want.tsv
	mv-search -a "$1" -u "$U" -k "$n" things q.txt >got.tsv ||
		fail "search through $1 failed"
	diff want.tsv got.tsv || fail "things through $1 is not the brute force of its rows"
	run -0 mv-get -a "$1" -u "$U" things --all
	assert_equal "${#lines[@]}" "$n"
	assert_equal "$(cut -f1 <<<"$output" | sort -u | wc -l)" "$n"
}

# named_files_exist: every data file etcd names for things is in storage.
named_files_exist() {
	local k f n=0
	for k in $(ectl get --prefix --keys-only "/$U/things/data/"); do
		f=${k##*/}
		[ -n "$(find "$CLUSTER_DIR/shared" -name "$f")" ] ||
			fail "etcd names '$f', which storage does not hold"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "etcd names no file of things"
}

# everywhere BASE: whole through both nodes, the files there, and still
# whole once node 1 has restarted.
everywhere() {
	poll 10 whole "$NODE_1" "$1" || whole "$NODE_1" "$1"
	poll 10 whole "$NODE_2" "$1" || whole "$NODE_2" "$1"
	named_files_exist
	kill -TERM "$NODE_1_PID"
	_wait_gone "$NODE_1_PID" 20
	MV_TEST_ETCD=$ETCD_VIA start_cluster_node 1 --user="$U" \
		--num_replicas=1 --auto_compact=false
	whole "$NODE_1" "$1"
	whole "$NODE_2" "$1"
	named_files_exist
}

@test "a flush whose answer from etcd is lost: 75, then whole everywhere" {
	two_nodes
	gen vecs 20 4 --seed 31 --ids-first 1 >a.txt
	run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things a.txt
	lose_next
	gen vecs 10 4 --seed 32 --ids-first 101 >b.txt
	run -75 --separate-stderr mv-insert -a "$NODE_1" -u "$U" --ids-first things b.txt
	lost || fail "no answer was lost: $(cat "$CLUSTER_DIR/drop.log" 2>&1)"
	# etcd applied it: the rows are there.
	cat a.txt b.txt >ab.txt
	everywhere ab.txt
}

@test "a merge whose answer from etcd is lost: 75, then every row still there once" {
	two_nodes
	: >all.txt
	# (not i: bats's run -0 sets it)
	for g in 1 2 3; do
		gen vecs 10 4 --seed $((40 + g)) --ids-first $((g * 100)) >f$g.txt
		run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things f$g.txt
		cat f$g.txt >>all.txt
	done
	run -0 mv-ls -a "$NODE_1" -u "$U" things
	assert_output --regexp "^things${T}4${T}l2${T}30${T}3${T}"
	lose_next
	run -75 --separate-stderr mv-index -a "$NODE_1" -u "$U" --compact things
	lost || fail "no answer was lost: $(cat "$CLUSTER_DIR/drop.log" 2>&1)"
	everywhere all.txt
	run -0 mv-ls -a "$NODE_2" -u "$U" things
	assert_output --regexp "^things${T}4${T}l2${T}30${T}1${T}"
}

@test "an index build whose answer from etcd is lost: 75, then the index is used everywhere" {
	two_nodes
	gen vecs 30 4 --seed 51 --ids-first 1 >a.txt
	run -0 mv-insert -a "$NODE_1" -u "$U" --ids-first things a.txt
	lose_next
	run -75 --separate-stderr mv-index -a "$NODE_1" -u "$U" things --type Flat
	lost || fail "no answer was lost: $(cat "$CLUSTER_DIR/drop.log" 2>&1)"
	assert_regex "$stderr" "outcome is unknown"
	everywhere a.txt
	for a in "$NODE_1" "$NODE_2"; do
		run -0 mv-ls -a "$a" -u "$U" things
		assert_output --regexp "${T}Flat\$"
	done
	# Neither node met a missing index file on the way.
	! grep -i "no such file" "$CLUSTER_DIR"/cnode*.log ||
		fail "a node looked for a file that was gone"
}
