#!/bin/sh
# Run the unit tests and the bats suite, then print one summary line
# "N passed, N failed" over both.  Exit non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

./tests/unit/run-unit | tee "$out/unit"
unit_rc=$?
bats --print-output-on-failure --formatter tap tests/ | tee "$out/bats"
bats_rc=$?

up=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$out/unit" | tail -n 1)
uf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$out/unit" | tail -n 1)
bp=$(grep -c '^ok ' "$out/bats")
bf=$(grep -c '^not ok ' "$out/bats")
: "${up:=0}" "${uf:=0}"
[ "$unit_rc" -eq 0 ] || [ "$uf" -gt 0 ] || uf=$((uf + 1))
[ "$bats_rc" -eq 0 ] || [ "$bf" -gt 0 ] || bf=$((bf + 1))
echo "unit: $up passed, $uf failed; bats: $bp passed, $bf failed"
echo "$((up + bp)) passed, $((uf + bf)) failed"
[ $((uf + bf)) -eq 0 ]
