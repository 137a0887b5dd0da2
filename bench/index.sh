#!/bin/bash
# bench/index.sh - mv's indexed search side by side with in-process FAISS
# of the same build, on the very same index, in one run (issue 3).  Bash.
# Build first: make && make bench/faiss_index bench/latency bench/recall.
#
#   bench/index.sh [--quick] [--strict] [--datasets LIST] [--types LIST]
#                  [--ef LIST] [--nprobe LIST] [--no-build-check]
#
#   LIST: space- or comma-separated (--types: spaces only, the factory
#   strings have commas).  Defaults: --datasets "glove-100
#   fashion-mnist", --types "HNSW32 IVF1024,Flat", --ef "16 32 64 128 256",
#   --nprobe "1 4 16 64".  --quick: glove-100 only, ef "32 128", nprobe
#   "4 32", REPEAT=1, 2,000 single queries, no build check.
#
# The binaries (cmd/*/mv-*, bench/faiss_index, latency, recall) are copied
# into the temporary directory first, so that the whole run uses one build.
# For each data set a fresh mv-noded (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS
# =1, OMP_WAIT_POLICY=PASSIVE, its own MV_HOME in a temporary directory
# under /tmp, removed on exit) gets one collection (ids = base rows); then
# for each index type:
#   1. `mv-index NAME --type T`, timed; the node's VmRSS after the build;
#   2. build check (unless --no-build-check): bench/faiss_index builds the
#      index in-process by mv's procedure (one thread) and the script
#      compares its bytes with the FAISS bytes of the node's .idx file;
#   3. the node is restarted (it loads the index from its file) and, after
#      a warm-up search, its VmRSS is read again;
#   4. for each ef / nprobe, REPEAT times, in turns:
#      - mv-search of all queries (-k 10) timed with `date +%s.%N` around
#        the process: start, reading the query file, 3 SEARCH requests of
#        <= 4096 queries, printing the TSV, exit; recall@10 by bench/recall;
#      - bench/latency: single-query mv_client_search calls over one
#        persistent connection (median, p90, p99);
#      - bench/faiss_index --mv-idx on the node's .idx file (the same
#        index): one batch search of all queries (recall@10, QPS) and a
#        single-query loop (median ...);
#      the best of the REPEAT runs is kept for each figure (highest QPS,
#      lowest median), since the machine may be shared;
#   5. the node's VmRSS after the sweep, against faiss_index's VmRSS after
#      loading the same index.
# Targets (issue 3): |recall_mv - recall_faiss| <= 0.005; mv-search QPS >=
# 90% of FAISS's batch QPS; median single-query latency + <= 100 us over
# FAISS's; node VmRSS <= 1.2 x faiss_index's (glove-100 HNSW32).
# Prints Markdown tables on stdout, progress on stderr.
#
# Environment: REPEAT (default 3), SINGLE (queries in the single-query
# loops, default all), KEEP=1 keeps the temporary directory.  --strict
# exits 1 when a target is missed.
set -euo pipefail

prog=index.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
usage() {
	sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

datasets="glove-100 fashion-mnist"
types="HNSW32 IVF1024,Flat"
efs="16 32 64 128 256"
nprobes="1 4 16 64"
build_check=1
strict=0
quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--strict) strict=1 ;;
	--no-build-check) build_check=0 ;;
	--datasets | --types | --ef | --nprobe)
		[ $# -ge 2 ] || usage
		v=${2//,/ }
		case $1 in
		--datasets) datasets=$v ;;
		--types) types=$2 ;;
		--ef) efs=$v ;;
		--nprobe) nprobes=$v ;;
		esac
		set_by_user="${set_by_user:-} $1"
		shift
		;;
	-h | --help) usage ;;
	*) log "unknown argument '$1'"; usage ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	case ${set_by_user:-} in *--datasets*) ;; *) datasets=glove-100 ;; esac
	case ${set_by_user:-} in *--ef*) ;; *) efs="32 128" ;; esac
	case ${set_by_user:-} in *--nprobe*) ;; *) nprobes="4 32" ;; esac
	REPEAT=${REPEAT:-1}
	SINGLE=${SINGLE:-2000}
	build_check=0
fi
REPEAT=${REPEAT:-3}
SINGLE=${SINGLE:-0}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
unset MV_ADDR MV_USER || true

for t in mv-noded mv-create mv-insert mv-search mv-index mv-ls; do
	[ -x "cmd/$t/$t" ] || die "cmd/$t/$t is not built; run make"
done
for t in faiss_index latency recall; do
	[ -x "bench/$t" ] || die "bench/$t is not built; run make bench/$t"
done
make -q all 2>/dev/null || log "warning: the binaries are older than the sources (make)"

. "$root/bench/lib.sh"
bench_scratch /tmp/mv-index-bench.XXXXXX

bench_bin mv-noded mv-create mv-insert mv-search mv-index mv-ls \
	faiss_index latency recall
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- libmv cmd bench 2>/dev/null || rev="$rev + uncommitted changes"
built=$(date -u -r cmd/mv-noded/mv-noded '+%Y-%m-%d %H:%M UTC')

now() { date +%s.%N; }
# key<TAB>value output of latency / recall; "# key<TAB>value" of faiss_index
field() { awk -F '\t' -v k="$1" '$1 == k || $1 == "# " k { print $2; exit }' "$2"; }
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
ok() { if awk "BEGIN { exit !($1) }"; then echo ok; else echo MISSED; fi; }
best_max() { printf '%s\n' "$@" | sort -g | tail -n 1; }
best_min() { printf '%s\n' "$@" | sort -g | head -n 1; }
mb() { calc '%.0f' "$1 / 1024"; }

missed=0
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
	data=$(scripts/fetch-data.sh "$ds")
	base=$data/base.fvecs
	query=$data/query.fvecs
	gt=$data/groundtruth.ivecs
	dim=$(od -An -tu4 -N4 "$base" | tr -d ' ')
	rec=$((4 + 4 * dim))
	nb=$(($(stat -L -c %s "$base") / rec))
	nq=$(($(stat -L -c %s "$query") / rec))
	single=$SINGLE
	[ "$single" -gt 0 ] && [ "$single" -le "$nq" ] || single=$nq
	coll=${ds//-/_}

	export MV_HOME=$tmp/$ds
	mkdir -p "$MV_HOME"
	log "$ds: $nb x $dim, $nq queries, $metric; starting mv-noded on $MV_HOME"
	start_node
	seq 0 $((nb - 1)) >"$tmp/ids.txt"
	mv-create -q "$coll" --dim "$dim" --metric "$metric"
	t0=$(now)
	mv-insert -q "$coll" --ids "$tmp/ids.txt" "$base"
	t1=$(now)
	rm -f "$tmp/ids.txt"
	log "$ds: inserted in $(calc '%.1f' "$t1 - $t0") s; node VmRSS $(mb "$(rss_of "$pid")") MiB"
	cat "$query" >/dev/null

	for type in $types; do
		case $type in
		HNSW*) pkey=ef; fkey=--ef; values=$efs ;;
		IVF*) pkey=nprobe; fkey=--nprobe; values=$nprobes ;;
		*) die "index type '$type': HNSW... or IVF... only" ;;
		esac
		log "$ds $type: mv-index (one thread)"
		t0=$(now)
		mv-index -q "$coll" --type "$type"
		t1=$(now)
		build_s=$(calc '%.1f' "$t1 - $t0")
		rss_build=$(rss_of "$pid")
		mapfile -t idxs < <(find "$MV_HOME/segments" -name '*.idx')
		[ "${#idxs[@]}" = 1 ] || die "want one .idx file under $MV_HOME/segments, found ${#idxs[@]}"
		idx=${idxs[0]}
		idx_mb=$(calc '%.1f' "$(stat -c %s "$idx") / 1048576")
		log "$ds $type: built in $build_s s, $idx_mb MiB; node VmRSS $(mb "$rss_build") MiB"

		same="not checked"
		fbuild_s=
		if [ "$build_check" = 1 ]; then
			log "$ds $type: build check: the same procedure in-process"
			first=${values%% *}
			faiss_index --metric "$metric" --type "$type" --base "$base" \
				--save "$tmp/check.faiss" "$fkey" "$first" --nq 100 \
				--single 0 "$query" "$gt" >"$tmp/check.out"
			fbuild_s=$(calc '%.1f' "$(field build_s "$tmp/check.out")")
			len=$(stat -c %s "$tmp/check.faiss")
			if [ "$(stat -c %s "$idx")" -ge "$len" ] &&
				cmp -s <(tail -c "$len" "$idx") "$tmp/check.faiss"; then
				same="identical"
			else
				same="DIFFERENT"
			fi
			rm -f "$tmp/check.faiss"
			log "$ds $type: in-process build $fbuild_s s; bytes $same"
		fi

		log "$ds $type: restarting mv-noded (loads the index file)"
		stop_node
		start_node
		mv-search -q "$coll" -k 10 "$query" >/dev/null
		rss_load=$(rss_of "$pid")

		rows=$tmp/rows.md
		: >"$rows"
		frss=
		for v in $values; do
			mv_t=() lat_m=() lat_9=() lat_99=() lat_q=() f_q=() f_m=() f_9=() f_99=() f_sq=()
			for r in $(seq "$REPEAT"); do
				t0=$(now)
				mv-search -q "$coll" -k 10 "--$pkey" "$v" "$query" >"$tmp/mv.tsv"
				t1=$(now)
				mv_t+=("$(calc '%.4f' "$t1 - $t0")")
				latency -n "$single" -p "$pkey=$v" --gt "$gt" "$coll" \
					"$query" >"$tmp/lat.out"
				lat_m+=("$(field median_us "$tmp/lat.out")")
				lat_9+=("$(field p90_us "$tmp/lat.out")")
				lat_99+=("$(field p99_us "$tmp/lat.out")")
				lat_q+=("$(field qps "$tmp/lat.out")")
				faiss_index --metric "$metric" --mv-idx "$idx" "$fkey" "$v" \
					--single "$single" "$query" "$gt" >"$tmp/faiss.out"
				row=$(grep -v '^#' "$tmp/faiss.out" | tail -n 1)
				IFS=$'\t' read -r _ _ frec fq fm f9 f99 fsq fsrec <<<"$row"
				f_q+=("$fq") f_m+=("$fm") f_9+=("$f9") f_99+=("$f99") f_sq+=("$fsq")
				[ -n "$frss" ] || frss=$(field rss_kb "$tmp/faiss.out")
				log "$ds $type $pkey=$v run $r: mv-search ${mv_t[-1]} s," \
					"latency median ${lat_m[-1]} us; faiss batch $fq QPS," \
					"single median $fm us"
			done
			recall -k 10 --metric "$metric" "$tmp/mv.tsv" "$gt" >"$tmp/recall.out"
			mrec=$(calc '%.4f' "$(field recall@10 "$tmp/recall.out")")
			lrec=$(field recall "$tmp/lat.out")
			mv_s=$(best_min "${mv_t[@]}")
			mq=$(calc '%.1f' "$nq / $mv_s")
			fq=$(best_max "${f_q[@]}")
			ratio=$(calc '%.1f' "100 * $mq / $fq")
			drec=$(calc '%+.4f' "$mrec - $frec")
			lm=$(best_min "${lat_m[@]}")
			fm=$(best_min "${f_m[@]}")
			dlat=$(calc '%+.1f' "$lm - $fm")
			l99=$(best_min "${lat_99[@]}")
			f99=$(best_min "${f_99[@]}")
			lq=$(best_max "${lat_q[@]}")
			fsq=$(best_max "${f_sq[@]}")
			ok_r=$(ok "$drec <= 0.005 && $drec >= -0.005")
			ok_q=$(ok "$ratio >= 90")
			ok_l=$(ok "$dlat <= 100")
			for s in "$ok_r" "$ok_q" "$ok_l"; do
				[ "$s" = ok ] || missed=$((missed + 1))
			done
			echo "| $pkey=$v | $mrec | $frec | $drec $ok_r | $mq | $fq | $ratio % $ok_q | $lm ($l99) | $fm ($f99) | $dlat $ok_l | $lq / $fsq | $lrec / $fsrec |" >>"$rows"
		done
		rss_end=$(rss_of "$pid")
		rr_load=$(calc '%.2f' "$rss_load / $frss")
		rr_end=$(calc '%.2f' "$rss_end / $frss")
		rr_build=$(calc '%.2f' "$rss_build / $frss")
		if [ "$ds $type" = "glove-100 HNSW32" ]; then
			ok_m=$(ok "$rr_load <= 1.2 && $rr_end <= 1.2")
			[ "$ok_m" = ok ] || missed=$((missed + 1))
		else
			ok_m="(no target)"
		fi
		{
			echo "### $ds, $type ($nb x $dim, $metric, $nq queries, k=10)"
			echo
			echo "Build: mv-index $build_s s (one thread), index file $idx_mb MiB;" \
				"in-process build by the same procedure: ${fbuild_s:-not run}${fbuild_s:+ s}, bytes $same."
			echo
			echo "| $pkey | recall mv | recall FAISS | diff | mv-search QPS | FAISS batch QPS | mv/FAISS | mv latency median (p99) us | FAISS single median (p99) us | added us | single-query QPS mv / FAISS | single-query recall mv / FAISS |"
			echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
			cat "$rows"
			echo
			echo "Resident memory (VmRSS): faiss_index after loading the index $(mb "$frss") MiB;" \
				"mv-noded after the build $(mb "$rss_build") MiB (${rr_build} x)," \
				"after a restart and one search $(mb "$rss_load") MiB (${rr_load} x)," \
				"after the sweep $(mb "$rss_end") MiB (${rr_end} x); target <= 1.2 x: $ok_m"
			echo
		} >>"$results"
	done
	stop_node
	rm -rf "$MV_HOME" "$MV_HOME.log"
done

cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
faiss=$(grep -q ' avx2' /proc/cpuinfo && echo "FAISS 1.7.3 AVX2" || echo "FAISS 1.7.3")
echo "mv indexed search against in-process FAISS, $started; $(nproc --all) cores ($cpu), $mem, $faiss"
echo "mv at $rev (binaries of $built), copied for the run"
echo "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE for mv-noded and faiss_index;" \
	"best of $REPEAT runs; single-query loops over $( [ "$SINGLE" -gt 0 ] && echo "$SINGLE" || echo all) queries;" \
	"load average $load0 at the start, $(cut -d ' ' -f 1-3 /proc/loadavg) at the end"
echo
cat "$results"
if [ "$missed" = 0 ]; then
	echo "all targets met"
else
	echo "$missed target(s) missed"
	[ "$strict" = 0 ] || exit 1
fi
