#!/bin/sh
# Run libFuzzer targets of build/fuzz/ for SECONDS each, one at a time and
# niced: run.sh SECONDS TARGET...  New inputs go to build/fuzz/corpus/T
# (the seeds in tests/fuzz/corpus/T are only read), a crash to
# build/fuzz/artifacts/T/.  Prints "fuzz: T: ok" or "fuzz: T: FAILED" per
# target and exits non-zero if one failed.  FUZZ_SEED=N fixes libFuzzer's
# seed (the test command's short run uses one, so that its outcome does not
# depend on luck; the campaigns of `make fuzz` draw a new one each time).
set -u
cd "$(dirname "$0")/../.."
secs=$1
shift
out=build/fuzz
# Scratch files (meta's log directories, reply's socket) in memory when
# possible: fsync on a disk would be most of a run.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
failed=0
for t in "$@"; do
	bin=$out/$t
	name=${t#fuzz_}
	seeds=tests/fuzz/corpus/$name
	work=$out/corpus/$name
	art=$out/artifacts/$name
	mkdir -p "$work" "$art"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 -artifact_prefix="$art/"
	[ -n "${FUZZ_SEED:-}" ] && set -- "$@" -seed="$FUZZ_SEED"
	[ -f "tests/fuzz/$name.dict" ] && set -- "$@" -dict="tests/fuzz/$name.dict"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $name: FAILED (not built)"
		failed=$((failed + 1))
		continue
	fi
	if nice -n 19 "$bin" "$@" "$work" "$seeds" >"$out/$name.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log")
		echo "fuzz: $name: ok (${runs:-?} runs in ${secs}s)"
	else
		echo "fuzz: $name: FAILED, see $out/$name.log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|artifact_prefix)' \
			"$out/$name.log" | head -n 5
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
