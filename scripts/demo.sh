#!/bin/sh
# demo.sh - the quick-start demo on the embedded default (`make demo`).
# POSIX sh.
#
# Starts a private mv-noded (MV_HOME in a temporary directory, or
# $MV_DEMO_HOME), creates the collection `glove` (dim 100, cosine), inserts
# the 331,479 GloVe word vectors of glove-100 (scripts/fetch-data.sh), lists
# the collections, searches the first 5 held-out words, deletes a row and
# searches again, then stops the node with SIGTERM.  Everything it starts is
# stopped and its temporary directory removed on exit, error or ^C
# (MV_DEMO_KEEP=1 keeps the directory).  Needs `make` first.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

for t in mv-noded mv-create mv-insert mv-ls mv-search mv-delete mv-drop mv-index; do
	if [ ! -x "cmd/$t/$t" ]; then
		echo "demo: cmd/$t/$t is not built; run make first" >&2
		exit 1
	fi
	PATH=$root/cmd/$t:$PATH
done
export PATH

data=$(scripts/fetch-data.sh glove-100)

if [ -n "${MV_DEMO_HOME:-}" ]; then
	mkdir -p "$MV_DEMO_HOME"
	MV_HOME=$(cd "$MV_DEMO_HOME" && pwd)
	tmp_home=
else
	MV_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mv-demo.XXXXXX")
	tmp_home=$MV_HOME
fi
export MV_HOME
unset MV_ADDR MV_USER || true
export OMP_WAIT_POLICY=PASSIVE
work=$MV_HOME/demo-work
mkdir -p "$work"

pid=
cleanup() {
	rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "$rc" != 0 ] && [ -s "$MV_HOME/noded.log" ]; then
		echo "demo: failed; the end of mv-noded's log:" >&2
		tail -n 20 "$MV_HOME/noded.log" >&2
	fi
	if [ -n "$tmp_home" ] && [ "${MV_DEMO_KEEP:-0}" != 1 ]; then
		rm -rf "$tmp_home"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

t_start=$(date +%s)
say() { printf '\n## %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

if mv-ls >/dev/null 2>&1; then
	echo "demo: a node already serves $MV_HOME; stop it or pick another MV_DEMO_HOME" >&2
	exit 1
fi

say "Start the embedded node (MV_HOME=$MV_HOME)"
show "mv-noded &"
mv-noded 2>"$MV_HOME/noded.log" &
pid=$!

# Ready when the socket accepts: poll with a tool (exit 69 = no answer).
i=0
until mv-ls >/dev/null 2>&1; do
	if ! kill -0 "$pid" 2>/dev/null; then
		pid=
		echo "demo: mv-noded exited before accepting connections" >&2
		exit 1
	fi
	i=$((i + 1))
	if [ "$i" -ge 300 ]; then
		echo "demo: mv-noded did not accept connections within 30 s" >&2
		exit 1
	fi
	sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null; then
	pid=
	echo "demo: mv-noded exited at start" >&2
	exit 1
fi
echo "ready: $MV_HOME/mv.sock"

# A kept MV_DEMO_HOME may hold the previous run's collection.
mv-drop -q glove >/dev/null 2>&1 || true
say "Create a collection of 100-d GloVe word vectors, cosine metric"
show "mv-create glove --dim 100 --metric cosine"
mv-create glove --dim 100 --metric cosine

n=$(($(wc -c <"$data/base.fvecs") / 404))
seq 0 $((n - 1)) >"$work/ids.txt"
say "Insert $n vectors (ids = row numbers of base.fvecs)"
show "mv-insert glove --ids ids.txt $data/base.fvecs"
t0=$(date +%s)
mv-insert -q glove --ids "$work/ids.txt" "$data/base.fvecs"
echo "inserted and flushed in $(($(date +%s) - t0)) s"

say "List the collections"
show "mv-ls --header"
mv-ls --header

# The first 5 query vectors (fvecs records of 4 + 100 * 4 bytes).
head -c $((5 * 404)) "$data/query.fvecs" >"$work/q5.fvecs"
say "Search the 5 nearest neighbours of 5 held-out words"
show "mv-search glove -k 5 q5.fvecs"
mv-search glove -k 5 "$work/q5.fvecs" >"$work/hits.tsv"
cat "$work/hits.tsv"

words() { # TSV on stdin -> "query 'w' -> w1 w2 ..."
	if [ -r "$data/base_words.txt" ] && [ -r "$data/query_words.txt" ]; then
		awk -F '\t' -v bw="$data/base_words.txt" -v qw="$data/query_words.txt" '
			BEGIN {
				while ((getline w < qw) > 0 && nq < 5) q[nq++] = w
				while ((getline w < bw) > 0) b[nb++] = w
			}
			NR == 1 || $1 != last {
				if (line != "") print line
				line = sprintf("query %-12s ->", "\047" q[$1] "\047")
				last = $1
			}
			{ line = line " " (($3 in b) ? b[$3] : "#" $3) }
			END { if (line != "") print line }'
	else
		cat >/dev/null
	fi
}
echo
words <"$work/hits.tsv"

victim=$(head -n 1 "$work/hits.tsv" | cut -f 3)
vword=$(sed -n "$((victim + 1))p" "$data/base_words.txt" 2>/dev/null || true)
[ -z "$vword" ] || vword="('$vword') "
say "Delete row $victim ${vword}and search the first word again"
show "echo $victim | mv-delete glove"
echo "$victim" | mv-delete glove
head -c 404 "$data/query.fvecs" >"$work/q1.fvecs"
show "mv-search glove -k 5 q1.fvecs"
mv-search glove -k 5 "$work/q1.fvecs" >"$work/hits1.tsv"
cat "$work/hits1.tsv"
echo
words <"$work/hits1.tsv"
show "mv-ls"
mv-ls

# An approximate index, then the same queries through it: all 10,000
# queries, timed, and their recall against the exact answers.
head -c $((1000 * 404)) "$data/query.fvecs" >"$work/q1000.fvecs"
mv-search glove -k 10 "$work/q1000.fvecs" >"$work/exact.tsv"
say "Build an IVF index (1024 lists, 32 probed by default) in the node"
show "mv-index glove --type IVF_FLAT --param nlist=1024 --param nprobe=32"
mv-index glove --type IVF_FLAT --param nlist=1024 --param nprobe=32
show "mv-ls"
mv-ls
say "Search 1,000 queries through the index; recall@10 against exact search"
show "mv-search glove -k 10 q1000.fvecs > ivf.tsv"
t0=$(date +%s%N)
mv-search glove -k 10 "$work/q1000.fvecs" >"$work/ivf.tsv"
t1=$(date +%s%N)
awk -F '\t' -v ms=$(( (t1 - t0) / 1000000 )) '
	NR == FNR { want[$1 " " $3] = 1; n++; next }
	($1 " " $3) in want { hit++ }
	END { printf "recall@10 %.4f over %d hits, %d ms for 1,000 queries\n", hit / n, n, ms }' \
	"$work/exact.tsv" "$work/ivf.tsv"
show "mv-search glove -k 5 --nprobe 128 q5.fvecs"
mv-search glove -k 5 --nprobe 128 "$work/q5.fvecs" >"$work/hits.tsv"
words <"$work/hits.tsv"

say "Stop the node"
show "kill -TERM $pid"
kill -TERM "$pid"
if wait "$pid"; then
	echo "mv-noded stopped cleanly"
else
	echo "demo: mv-noded exited with status $?" >&2
	pid=
	exit 1
fi
pid=
echo
echo "demo done in $(($(date +%s) - t_start)) s"
