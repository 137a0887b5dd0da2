#!/bin/sh
# The README's two commands: `sh scripts/run.sh demo` and
# `sh scripts/run.sh check`.  Installs what is missing (Debian packages,
# the FAISS C API and AVX2 build, cached once per machine), builds, then
# runs the demo or the whole test suite.
set -eu
cd "$(dirname "$0")/.."
target=${1:-demo}
case $target in
demo|check|bench) ;;
*) echo "usage: sh scripts/run.sh demo|check|bench" >&2; exit 64 ;;
esac
sh scripts/deps.sh
make -j"$(nproc 2>/dev/null || echo 2)" all tests/unit/run-unit
exec make --no-print-directory "$target"
