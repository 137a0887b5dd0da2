#!/bin/sh
# Run the unit tests, the bats suite, a short run of every fuzz target and
# the engine's layering check (scripts/layers.sh), then print one summary
# line "N passed, N failed" over all four.  Exit non-zero if anything
# failed.
set -u
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
out=$(mktemp -d)
rgw_dir=
# Stop what this run started, whatever way it ends.
cleanup() {
	sh scripts/etcd.sh stop "$out/etcd" >/dev/null 2>&1
	[ -z "$rgw_dir" ] || sh scripts/rgw.sh stop "$rgw_dir" >/dev/null 2>&1
	rm -rf "$out" ${rgw_dir:+"$rgw_dir"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# One etcd for every test that needs one (MV_TEST_ETCD).
if env=$(sh scripts/etcd.sh start "$out/etcd"); then
	export "$env"
fi
# One Ceph RGW (scripts/rgw.sh) for every S3 test of the run, unless the
# caller gives one; a test that finds none starts its own.
if [ -z "${MV_TEST_S3_ENDPOINT:-}" ] && command -v radosgw >/dev/null; then
	rgw_dir=$(mktemp -d /tmp/mv-check-rgw.XXXXXX)
	if rgw_env=$(sh scripts/rgw.sh start "$rgw_dir"); then
		for v in $rgw_env; do export "${v?}"; done
	fi
fi

# The fuzz targets build (clang, ASan) and then run briefly in the
# background, niced, and the unit tests run beside the bats suite too:
# the suite mostly waits on daemons, and so do the unit tests on their
# servers (a minute of wall time for 16 s of CPU).  The unit tests get an
# etcd of their own (test_meta.c starts one when MV_TEST_ETCD is unset):
# their seam tests compact etcd's history, which the cluster tests'
# watches would see.  Their output is printed after the suite's.
if [ "${MV_CHECK_FUZZ:-1}" != 0 ]; then
	(if nice -n 19 make -s fuzz-build >"$out/fuzzbuild" 2>&1; then
		nice -n 19 make -s fuzz-smoke >"$out/fuzz" 2>&1
	else
		echo built=no >"$out/fuzzfail"
	fi) &
	fuzzjob=$!
fi
(env -u MV_TEST_ETCD ./tests/unit/run-unit >"$out/unit" 2>&1) &
unitjob=$!
# Two bats files at a time (GNU parallel; the tests of a file stay in
# order, in one process): the suite mostly waits on daemons, so two cores
# run two files in little more than the time of one.  MV_BATS_JOBS=1 runs
# one file at a time.
jobs=${MV_BATS_JOBS:-2}
par=
if [ "$jobs" -gt 1 ] && command -v parallel >/dev/null; then
	par="--jobs $jobs --no-parallelize-within-files"
	export PARALLEL="--will-cite"
fi
# shellcheck disable=SC2086
bats $par --print-output-on-failure --timing --formatter tap tests/ |
	tee "$out/bats"
bats_rc=$?
wait "$unitjob"
unit_rc=$?
cat "$out/unit"
# A short run of every fuzz target (tests/fuzz/README), one result each;
# MV_CHECK_FUZZ=0 (make asan) leaves them out.
if [ "${MV_CHECK_FUZZ:-1}" = 0 ]; then
	: >"$out/fuzz"
else
	wait "$fuzzjob"
	if [ -e "$out/fuzzfail" ]; then
		cat "$out/fuzzbuild"
		for t in tests/fuzz/fuzz_*.c; do
			t=${t##*/fuzz_}
			echo "fuzz: ${t%.c}: FAILED (build)"
		done >"$out/fuzz"
	fi
	cat "$out/fuzz"
fi
# The engine's files call each other in layers, never in a circle.
if sh scripts/layers.sh >"$out/layers" 2>&1; then
	lp=1 lf=0
else
	lp=0 lf=1
fi
cat "$out/layers"

up=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$out/unit" | tail -n 1)
uf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$out/unit" | tail -n 1)
bp=$(grep -c '^ok ' "$out/bats")
bf=$(grep -c '^not ok ' "$out/bats")
fp=$(grep -c '^fuzz: .*: ok' "$out/fuzz")
ff=$(grep -c '^fuzz: .*: FAILED' "$out/fuzz")
: "${up:=0}" "${uf:=0}"
[ "$unit_rc" -eq 0 ] || [ "$uf" -gt 0 ] || uf=$((uf + 1))
[ "$bats_rc" -eq 0 ] || [ "$bf" -gt 0 ] || bf=$((bf + 1))
echo "unit: $up passed, $uf failed; bats: $bp passed, $bf failed;" \
	"fuzz: $fp passed, $ff failed; layers: $lp passed, $lf failed"
echo "$((up + bp + fp + lp)) passed, $((uf + bf + ff + lf)) failed"
[ $((uf + bf + ff + lf)) -eq 0 ]
