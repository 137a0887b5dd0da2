#!/bin/sh
# List, for each engine file (libmv/engine/*.o), the engine files whose
# functions or data it uses, from nm's defined and undefined symbols; fail
# if two or more of them use each other in a circle.  The engine must stay
# layered: each file calls only files below it (docs/ARCHITECTURE.md).
# Prints "layers: ok" and the order found (lowest first), or
# "layers: FAILED" and the files in the circle; exits 1 then.
set -eu
export LC_ALL=C
cd "$(dirname "$0")/.."
dir=${1:-libmv/engine}
# the objects of the sources there now (not those of a removed file)
objs=
for c in "$dir"/*.c; do
	if [ ! -f "${c%.c}.o" ]; then
		echo "layers: FAILED (no ${c%.c}.o: run make first)"
		exit 1
	fi
	objs="$objs ${c%.c}.o"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# symbol file, for every global symbol an engine object defines
for o in $objs; do
	f=$(basename "$o" .o)
	nm -g --defined-only "$o" | awk -v f="$f" 'NF == 3 { print $3, f }'
done | sort -u >"$tmp/defs"

# "user used" pairs, one per line, and each file paired with itself so
# that a file using no other still shows up
for o in $objs; do
	f=$(basename "$o" .o)
	echo "$f $f"
	nm -g --undefined-only "$o" | awk '{ print $NF }' | sort -u |
		join -o 2.2 - "$tmp/defs" | sort -u |
		awk -v f="$f" '$1 != f { print f, $1 }'
done >"$tmp/edges"

awk '$1 != $2 { u[$1] = u[$1] " " $2; next } { if (!($1 in u)) u[$1] = "" }
     END { for (f in u) printf "%-10s uses:%s\n", f, (u[f] == "" ? " (none)" : u[f]) }' \
	"$tmp/edges" | sort

# tsort wants "before after": the used file comes before its user.
if awk '{ print $2, $1 }' "$tmp/edges" | tsort >"$tmp/order" 2>"$tmp/err"; then
	echo "layers: ok, lowest first:" $(cat "$tmp/order")
else
	echo "layers: FAILED, files calling each other in a circle:"
	sed -n 's/^tsort: //p' "$tmp/err" | grep -v 'input contains a loop' |
		sed 's/^/  /'
	exit 1
fi
