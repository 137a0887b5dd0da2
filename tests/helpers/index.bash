# tests/helpers/index.bash - helpers of the index tests (40-index.bats,
# 41-index-recall.bats).  Load after helpers/mv:
#
#   load helpers/mv
#   load helpers/index

# recall_tsv GOT TRUTH [K]: recall@K of the mv-search TSV GOT against the
# mv-search TSV TRUTH (brute force): for each query of TRUTH, the fraction
# of its ids of rank <= K that GOT also has at rank <= K; the mean over
# those queries, printed with 4 decimals.  A query missing from GOT counts
# 0.  Independent of mvgen.py's recall-tsv (which pools the hits instead of
# averaging per query).
recall_tsv() {
	awk -F'\t' -v k="${3:-10}" '
		NR == FNR {
			if ($2 <= k) got[$1 SUBSEP $3] = 1
			next
		}
		$2 <= k {
			if (!($1 in nt)) { nt[$1] = 0; nf[$1] = 0; nq++ }
			nt[$1]++
			if (($1 SUBSEP $3) in got) nf[$1]++
		}
		END {
			s = 0
			for (q in nt) s += nf[q] / nt[q]
			printf "%.4f\n", nq ? s / nq : 0
		}' "$1" "$2"
}

# at_least X Y: X >= Y as numbers.
at_least() {
	awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 >= y + 0) }'
}

# below X Y: X < Y as numbers.
below() {
	awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 < y + 0) }'
}

# ix_get NAME KEY: one value of `mv-index NAME --status` (state, index,
# spec, progress, rows, elapsed, error).
ix_get() {
	mv-index "$1" --status | sed -n "s/^$2=//p"
}

# ix_index NAME: the index column of mv-ls.
ix_index() {
	mv-ls "$1" | cut -f6
}

# segs NAME: the segments column of mv-ls.
segs() {
	mv-ls "$1" | cut -f5
}

# idx_files: the index files under $MV_HOME/segments.
idx_files() {
	find "$MV_HOME/segments" -name '*.idx' -type f 2>/dev/null | sort
}

# idx_count: how many there are.
idx_count() {
	idx_files | wc -l | tr -d ' '
}

idx_count_is() {
	[ "$(idx_count)" = "$1" ]
}

# build_running NAME: a build is under way and has made progress.
build_running() {
	local st
	st=$(mv-index "$1" --status) || return 1
	grep -qx 'state=running' <<<"$st" &&
		awk -F= '$1 == "progress" { exit !($2 + 0 > 0) }' <<<"$st"
}

# build_past NAME P: a build is under way with progress >= P.
build_past() {
	local st
	st=$(mv-index "$1" --status) || return 1
	grep -qx 'state=running' <<<"$st" &&
		awk -F= -v p="$2" '$1 == "progress" { exit !($2 + 0 >= p) }' <<<"$st"
}

# build_ended NAME: no build is running.
build_ended() {
	[ "$(ix_get "$1" state)" != running ]
}

# wait_build NAME [SECONDS]: wait for the running build to end (default
# 120 s) and fail unless it ended in state=done.
wait_build() {
	poll "${2:-120}" build_ended "$1" ||
		fail "the build of $1 did not end within ${2:-120}s: $(mv-index "$1" --status | tr '\n' ' ')"
	local st
	st=$(ix_get "$1" state)
	[ "$st" = "done" ] ||
		fail "the build of $1 ended in state '$st': $(mv-index "$1" --status | tr '\n' ' ')"
}

# same FILE1 FILE2 WHAT: fail with a diff excerpt unless the files are equal.
same() {
	cmp -s "$1" "$2" && return 0
	fail "$3: $1 and $2 differ:
$(diff "$1" "$2" | head -n 20)"
}

# parallel_same FLAG NPROC VALUE...: NPROC background processes, process p
# running 6 searches of $D/q32.txt with FLAG VALUE[p % count] ("def": no
# flag) at once; every answer must equal seqVALUE.tsv of the sequential run.
# Leaves the number of answers compared in n.
parallel_same() {
	local flag=$1 nproc=$2 p rep v f pids=()
	shift 2
	local vals=("$@")
	for p in $(seq 1 "$nproc"); do
		v=${vals[$((p % ${#vals[@]}))]}
		(
			for rep in 1 2 3 4 5 6; do
				if [ "$v" = def ]; then
					mv-search "$C" -k 10 "$D/q32.txt"
				else
					mv-search "$C" -k 10 "$flag" "$v" "$D/q32.txt"
				fi >"par.$p.$rep.$v.tsv" 2>"par.$p.$rep.err" ||
					echo "$p.$rep exit $?" >>fails
			done
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	[ ! -e fails ] || fail "failed searches: $(cat fails) $(cat par.*.err)"
	n=0
	for f in par.*.tsv; do
		v=${f%.tsv}
		v=${v##*.}
		same "$f" "seq$v.tsv" "parallel search $f ($flag $v)"
		n=$((n + 1))
	done
}

# vec_lines FILE IDS...: the text lines (vectors, without the leading id)
# of the rows with these ids from an --ids-first text FILE.
vec_lines() {
	local f=$1
	shift
	awk -v want=" $* " 'index(want, " " $1 " ") { $1 = ""; sub(/^ /, ""); print }' "$f"
}

# node_log_tail [N]: the last N lines of the node's log, for failure
# messages.
node_log_tail() {
	tail -n "${1:-20}" "$MV_LOG" 2>/dev/null
}
