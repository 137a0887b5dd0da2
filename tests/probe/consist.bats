#!/usr/bin/env bats
# A consistency probe, not part of the suite (bats runs tests/*.bats
# only): three cluster nodes, one writer of inserts, upserts and deletes
# (each flushed), readers searching exactly for every row through all
# three, background merges, an IVF index, and (PROBE_RESTARTS, default 6)
# restarts of nodes 2 and 3 every 5 s.  consist.py checks every answer
# against the history: no duplicate, and each id absent or at a version
# the flushes allow (the last one returned before the search began, or
# one in flight during it).  PROBE_SECS (40), PROBE_REPLICAS (1),
# PROBE_GET (readers' indices, e.g. 1,2: mv-get --all through them too),
# PROBE_FILTER=T (rows carry their version in field ver; every other
# search filters on ver >= T).
#
#   bats tests/probe/consist.bats
#   PROBE_RESTARTS=0 PROBE_SECS=15 bats tests/probe/consist.bats
load ../helpers/mv
load ../helpers/nodes3
setup_file() { nodes3_setup_file; }
teardown_file() { nodes3_teardown_file; }
setup() { nodes3_setup; }
teardown() { nodes3_teardown; }
@test "probe: consistency under writes, merges, an index and restarts" {
	R=${PROBE_REPLICAS:-1}
	for i in 1 2 3; do node_up $i --num_replicas=$R ${PROBE_FLAGS:-}; done
	if [ -n "${PROBE_FILTER:-}" ]; then
		run -0 mv-create -a "${ADDR[1]}" things --dim 8 --field ver:int64
	else
		run -0 mv-create -a "${ADDR[1]}" things --dim 8
	fi
	python3 "$BATS_TEST_DIRNAME/consist.py" "${ADDR[1]}" "${ADDR[1]},${ADDR[3]},${ADDR[2]}" ${PROBE_SECS:-40} things $BATS_TEST_TMPDIR/res > $BATS_TEST_TMPDIR/out 2>&1 &
	py=$!
	for r in $(seq 1 ${PROBE_RESTARTS:-6}); do
		sleep 5
		n=$((r % 2 + 2)); kill ${PID[$n]}; wait ${PID[$n]} || true; node_up $n --num_replicas=$R ${PROBE_FLAGS:-}
		if [ $r = 1 ] || [ $r = 4 ]; then mv-index -q -a "${ADDR[1]}" things --type IVF16,Flat || echo "index failed" >&3; fi
	done
	st=0; wait $py || st=$?
	cat $BATS_TEST_TMPDIR/out >&3
	cat $BATS_TEST_TMPDIR/res.ops >&3
	mv-ls -a "${ADDR[1]}" >&3
	[ $st = 0 ]
}
