#!/bin/bash
# bench/restart.sh - a node's memory with an index against in-process
# FAISS's, and how soon a restarted node answers (issue 9).  Bash.
# Build first: make && make bench/faiss_index.
#
#   bench/restart.sh [--datasets LIST] [--types LIST] [--sweep LIST]
#                    [--cold]
#
#   Defaults: --datasets glove-100, --types "IVF1024,Flat HNSW32"
#   (spaces only), --sweep "1 4 16 64" for IVF, "16 32 64 128 256" for
#   HNSW.  --cold also restarts once with the collection's files dropped
#   from the page cache (dd iflag=nocache, these files only).
#
# The binaries are copied into a temporary directory under /tmp first.
# For each data set one mv-noded (OMP_NUM_THREADS=1, its own MV_HOME)
# gets one collection and the whole base; for each index type:
#   1. `mv-index NAME --type T`, then the node's memory;
#   2. bench/faiss_index --mv-idx on the node's own .idx file: FAISS's
#      VmRSS after reading the same index in-process, and after searching
#      every query at each sweep value;
#   3. the node is stopped and started again: the time from the exec of
#      mv-noded to "ready" (the first mv-ls that connects, polled every
#      5 ms) and to the end of the first answered mv-search (one query;
#      started as soon as the node is ready), the node's CPU seconds and
#      memory at each; with --cold once more, the files first dropped from
#      the page cache;
#   4. mv-search of every query at each sweep value (QPS of each process),
#      then the memory, and again 2.5 s later (the node trims its heap
#      every 2 s).
# Memory is VmRSS, RssAnon and RssFile of /proc/PID/status, in MiB; DIAG=1
# also lists the node's largest mappings on stderr.
# Prints Markdown tables on stdout, progress on stderr.  KEEP=1 keeps the
# temporary directory.
set -euo pipefail

prog=restart.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
usage() {
	sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

datasets=glove-100
types="IVF1024,Flat HNSW32"
sweep=
cold=0
while [ $# -gt 0 ]; do
	case $1 in
	--datasets) [ $# -ge 2 ] || usage; datasets=${2//,/ }; shift ;;
	--types) [ $# -ge 2 ] || usage; types=$2; shift ;;
	--sweep) [ $# -ge 2 ] || usage; sweep=${2//,/ }; shift ;;
	--cold) cold=1 ;;
	-h | --help) usage ;;
	*) log "unknown argument '$1'"; usage ;;
	esac
	shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
unset MV_ADDR MV_USER || true
for t in mv-noded mv-create mv-insert mv-search mv-index mv-ls; do
	[ -x "cmd/$t/$t" ] || die "cmd/$t/$t is not built; run make"
done
[ -x bench/faiss_index ] || die "bench/faiss_index is not built; run make bench/faiss_index"

. "$root/bench/lib.sh"
bench_scratch /tmp/mv-restart-bench.XXXXXX

bench_bin mv-noded mv-create mv-insert mv-search mv-index mv-ls faiss_index
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- libmv cmd bench 2>/dev/null || rev="$rev + uncommitted changes"

now() { date +%s.%N; }
mib() { calc '%.0f' "$1 / 1024"; }
# "VmRSS RssAnon RssFile" in MiB; DIAG=1: the largest mappings on stderr
mem_of() {
	[ "${DIAG:-0}" = 0 ] || awk '/^[0-9a-f]+-[0-9a-f]+ / { m = $6 ? $6 : "[anon " $1 "]" }
		/^Rss:/ { r[m] += $2 }
		END { for (m in r) if (r[m] >= 4096) printf "  %7.1f MiB %s\n", r[m] / 1024, m }' \
		"/proc/$1/smaps" | sort -rn >&2
	awk '/^VmRSS:/ { v = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
	     END { printf "%.0f %.0f %.0f", v / 1024, a / 1024, f / 1024 }' \
		"/proc/$1/status"
}

# CPU seconds (user + system) the process has used
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# Restart; sets t_ready, t_first (s from the exec), c_ready, c_first (the
# node's CPU s), m_ready, m_first.
restart() {
	local t0 t1 t2
	stop_node
	if [ "${1:-}" = cold ]; then
		find "$MV_HOME/segments" -type f -exec \
			dd if={} iflag=nocache count=0 status=none \;
	fi
	t0=$(now)
	mv-noded 2>>"$MV_HOME.log" &
	pid=$!
	node_wait 0.005
	t1=$(now)
	m_ready=$(mem_of "$pid")
	c_ready=$(cpu_of "$pid")
	mv-search -q "$coll" -k 10 "$tmp/q1.fvecs" >/dev/null
	t2=$(now)
	m_first=$(mem_of "$pid")
	c_first=$(cpu_of "$pid")
	t_ready=$(calc '%.3f' "$t1 - $t0")
	t_first=$(calc '%.3f' "$t2 - $t0")
}

results=$tmp/results.md
: >"$results"
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

for ds in $datasets; do
	case $ds in
	glove-100) metric=cosine ;;
	fashion-mnist) metric=l2 ;;
	*) die "unknown data set '$ds'" ;;
	esac
	data=$(scripts/fetch-data.sh "$ds" 2>/dev/null)
	base=$data/base.fvecs
	query=$data/query.fvecs
	gt=$data/groundtruth.ivecs
	dim=$(od -An -tu4 -N4 "$base" | tr -d ' ')
	rec=$((4 + 4 * dim))
	nb=$(($(stat -L -c %s "$base") / rec))
	nq=$(($(stat -L -c %s "$query") / rec))
	head -c "$rec" "$query" >"$tmp/q1.fvecs"
	coll=${ds//-/_}
	export MV_HOME=$tmp/$ds
	mkdir -p "$MV_HOME"
	log "$ds: $nb x $dim; starting mv-noded on $MV_HOME"
	start_node 0.005
	seq 0 $((nb - 1)) >"$tmp/ids.txt"
	mv-create -q "$coll" --dim "$dim" --metric "$metric"
	mv-insert -q "$coll" --ids "$tmp/ids.txt" "$base"
	rm -f "$tmp/ids.txt"
	log "$ds: inserted; node (VmRSS RssAnon RssFile) $(mem_of "$pid") MiB"
	for type in $types; do
		case $type in
		HNSW*) pkey=ef; values=${sweep:-16 32 64 128 256} ;;
		IVF*) pkey=nprobe; values=${sweep:-1 4 16 64} ;;
		*) die "index type '$type': HNSW... or IVF... only" ;;
		esac
		t0=$(now)
		mv-index -q "$coll" --type "$type"
		t1=$(now)
		m_build=$(mem_of "$pid")
		mapfile -t idxs < <(find "$MV_HOME/segments" -name '*.idx')
		[ "${#idxs[@]}" = 1 ] || die "want one .idx file, found ${#idxs[@]}"
		idx=${idxs[0]}
		log "$ds $type: built in $(calc '%.1f' "$t1 - $t0") s; node $m_build MiB"
		first=${values%% *}
		faiss_index --metric "$metric" --mv-idx "$idx" "--$pkey" "${values// /,}" \
			--single 0 "$query" "$gt" >"$tmp/faiss.out"
		frss=$(awk -F '\t' '$1 == "# rss_kb" { print $2 }' "$tmp/faiss.out")
		frss=$(mib "$frss")
		frss_end=$(awk -F '\t' '$1 == "# rss_end_kb" { print $2 }' "$tmp/faiss.out")
		frss_end=$(mib "$frss_end")
		cold_row=
		restart
		log "$ds $type: restarted: ready $t_ready s ($m_ready MiB)," \
			"first answer $t_first s ($m_first MiB)"
		if [ "$cold" = 1 ]; then
			saved=("$t_ready" "$t_first" "$c_ready" "$c_first" "$m_ready" "$m_first")
			restart cold
			log "$ds $type: cold restart: ready $t_ready s, first answer $t_first s"
			set -- $m_first
			cold_row="| cold restart (its files dropped from the page cache), first query answered | $1 | $2 | $3 | $(calc '%.2f' "$1 / $frss") | $t_first (ready $t_ready) | $c_first |"
			t_ready=${saved[0]} t_first=${saved[1]} c_ready=${saved[2]}
			c_first=${saved[3]} m_ready=${saved[4]} m_first=${saved[5]}
		fi
		qps=
		for v in $values; do
			t0=$(now)
			mv-search -q "$coll" -k 10 "--$pkey" "$v" "$query" >/dev/null
			t1=$(now)
			qps="$qps $pkey=$v $(calc '%.0f' "$nq / ($t1 - $t0)")"
		done
		m_sweep=$(mem_of "$pid")
		sleep 2.5	# the node's housekeeper trims its heap every 2 s
		m_idle=$(mem_of "$pid")
		ratio() { calc '%.2f' "${1%% *} / $frss"; }
		{
			echo "#### $ds, $type ($nb x $dim, $metric)"
			echo
			echo "| point | VmRSS MiB | RssAnon MiB | RssFile MiB | x FAISS | s from exec | node CPU s |"
			echo "|---|---:|---:|---:|---:|---:|---:|"
			echo "| faiss_index, index read | $frss | | | 1.00 | | |"
			echo "| faiss_index, after its sweep | $frss_end | | | $(calc '%.2f' "$frss_end / $frss") | | |"
			set -- $m_build
			echo "| mv-noded after the build | $1 | $2 | $3 | $(ratio "$1") | | |"
			set -- $m_ready
			echo "| restarted, ready | $1 | $2 | $3 | $(ratio "$1") | $t_ready | $c_ready |"
			set -- $m_first
			echo "| restarted, first query answered | $1 | $2 | $3 | $(ratio "$1") | $t_first | $c_first |"
			set -- $m_sweep
			echo "| after the sweep | $1 | $2 | $3 | $(ratio "$1") | | |"
			set -- $m_idle
			echo "| 2.5 s later | $1 | $2 | $3 | $(ratio "$1") | | |"
			[ -z "$cold_row" ] || echo "$cold_row"
			echo
			echo "mv-search QPS (all $nq queries, one process each):$qps"
			echo
		} >>"$results"
	done
	stop_node
	rm -rf "$MV_HOME" "$MV_HOME.log"
done

echo "mv memory and restart against in-process FAISS, $started; mv at $rev;" \
	"$(nproc --all) cores; OMP_NUM_THREADS=1; load average $load0 at the" \
	"start, $(cut -d ' ' -f 1-3 /proc/loadavg) at the end"
echo
cat "$results"
