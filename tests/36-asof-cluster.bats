#!/usr/bin/env bats
# 36-asof-cluster.bats - the time axis in a cluster (issue 8): flushes
# through two mv-noded on a real etcd and S3 (helpers/nodes3), then, as of
# every flush and through either node, the history, mv-get --all and an
# exact mv-search equal a model of the operations.

load helpers/mv
load helpers/nodes3

setup_file() {
	nodes3_setup_file
}

teardown_file() {
	nodes3_teardown_file
}

# Two nodes, each holding every segment.
setup() {
	nodes3_setup
	node_up 1 --num_replicas=1
	node_up 2 --num_replicas=1
}

teardown() {
	nodes3_teardown
}

@test "as of every flush, through either node: history, get --all and search equal the model" {
	local op fl i n
	cd "$BATS_TEST_TMPDIR" || fail "no test directory"
	run -0 mv-create -a "${ADDR[1]}" t --dim 2
	# The operations, alternating between the nodes, one flush each;
	# want.N: the rows after operation N, in id order.
	printf '1 0 0\n2 1 0\n3 2 0\n4 3 0\n' |
		mv-insert -q -a "${ADDR[1]}" --ids-first t
	printf '1\t0,0\n2\t1,0\n3\t2,0\n4\t3,0\n' >want.1
	printf '5 4 0\n6 5 0\n' | mv-insert -q -a "${ADDR[2]}" --ids-first t
	{ cat want.1; printf '5\t4,0\n6\t5,0\n'; } >want.2
	echo 2 | mv-delete -q -a "${ADDR[1]}" t
	grep -v '^2	' want.2 >want.3
	echo '3 9 9' | mv-insert -q -a "${ADDR[2]}" --upsert --ids-first t
	sed 's/^3	2,0$/3	9,9/' want.3 >want.4
	echo 5 | mv-delete -q -a "${ADDR[1]}" t
	grep -v '^5	' want.4 >want.5
	mv-ls -a "${ADDR[1]}" --history t >hist.1
	mv-ls -a "${ADDR[2]}" --history t >hist.2
	diff hist.1 hist.2 >/dev/null || fail "the nodes' histories differ: $(diff hist.1 hist.2)"
	assert_equal "$(wc -l <hist.1)" 5
	echo '0 0' >q.txt
	op=0
	for fl in $(cut -f1 hist.1); do
		op=$((op + 1))
		n=$(wc -l <want.$op)
		for i in 1 2; do
			mv-get -a "${ADDR[$i]}" t --all --as-of "$fl" >got ||
				fail "mv-get --as-of $fl through node $i failed"
			diff want.$op got >/dev/null ||
				fail "mv-get --all --as-of $fl through node $i: $(diff want.$op got | head -4)"
			# Exact search from (0, 0): every row, nearest first.
			mv-search -a "${ADDR[$i]}" -k 10 --as-of "$fl" t q.txt |
				cut -f3 >got
			awk -F '[\t,]' '{ print ($2 * $2 + $3 * $3) "\t" $1 }' \
				want.$op | sort -n -k1,1 -k2,2n | cut -f2 >want.ids
			diff want.ids got >/dev/null ||
				fail "mv-search --as-of $fl through node $i: $(diff want.ids got | head -4)"
			assert_equal "$(wc -l <got)" "$n"
		done
	done
}
