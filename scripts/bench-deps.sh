#!/bin/sh
# scripts/bench-deps.sh - what `make bench-peers` needs beyond the build:
# Debian's python3-hnswlib, python3-numpy, gnuplot-nox, nodejs and npm
# (installed with apt-get when missing; root, or sudo), then LanceDB
# (@lancedb/lancedb) from npm with `npm ci` into bench/peers/node_modules
# from the committed bench/peers/package-lock.json.  Idempotent: does
# nothing when all is there.  Exit 0, 1 on failure.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
prog=bench-deps.sh

need=
/usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null ||
	need="$need python3-hnswlib python3-numpy"
command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
	echo "$prog: installing$need" >&2
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >&2
fi

peers=$root/bench/peers
if ! (cd "$peers" && node -e 'require.resolve("@lancedb/lancedb")') 2>/dev/null ||
	[ -n "$(find "$peers/package-lock.json" -newer \
		"$peers/node_modules/.package-lock.json" 2>/dev/null)" ]; then
	echo "$prog: npm ci in bench/peers (LanceDB)" >&2
	(cd "$peers" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
