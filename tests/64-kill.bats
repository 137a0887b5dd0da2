#!/usr/bin/env bats
# Kills that count: the node is killed with SIGKILL at a random moment of an
# insert and its flush, a session commit, a delete, a compaction or an index
# build, MV_KILL_ITERS times (default 100), and restarted each time.  After
# every restart: each flush whose tool exited 0 is there whole, byte for
# byte (mv-get --all); a flush whose tool did not exit 0 is entirely there
# or entirely absent (a kill between commit and reply leaves it whole with
# exit 69); nothing else is there; deleted ids stay deleted; mv-ls counts
# the same rows; searches return no duplicate and no absent id.  The
# figures go to fd 3 and to $MV_KILL_REPORT when set (docs/RELIABILITY.md);
# MV_KILL_DEBUG=FILE gets one line of timings per kill.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

DIM=8
SIZES=(200 1000 4000)	# rows of a group (one flush), in turn
KINDS=(insert session delete compact index)

# make_groups N: the rows of groups 1..N, consecutive ids from 1, from one
# mvgen.py run: group g is ids gstart[g] .. gstart[g]+nrows[g]-1, in
# g$g.txt (text, ids first), g$g.a and g$g.b (its halves, for a session),
# g$g.tsv (as mv-get --all prints it) and g$g.del (the ids of its first
# half, for a delete).
make_groups() {
	local g total=0
	: >groups.txt
	for g in $(seq 1 "$1"); do
		nrows[$g]=${SIZES[$((g % ${#SIZES[@]}))]}
		gstart[$g]=$((total + 1))
		total=$((total + nrows[$g]))
		echo "$g ${gstart[$g]} ${nrows[$g]}" >>groups.txt
	done
	gen vecs "$total" "$DIM" --seed 7 --ids-first 1 >rows.txt
	awk 'NR == FNR { s[$1] = $2; n[$1] = $3; last = $1; next }
		FNR == 1 { g = 1 }
		{
			while ($1 >= s[g] + n[g]) {
				close("g" g ".txt"); close("g" g ".a"); close("g" g ".b")
				close("g" g ".tsv"); close("g" g ".del"); g++
			}
			off = $1 - s[g]
			print > ("g" g ".txt")
			print > ("g" g (off < n[g] / 2 ? ".a" : ".b"))
			v = $2; for (i = 3; i <= NF; i++) v = v "," $i
			print $1 "\t" v > ("g" g ".tsv")
			if (off < n[g] / 2) print $1 > ("g" g ".del")
		}' groups.txt rows.txt
}

# delay_between LO HI: a random time in [LO, HI] ms as seconds for sleep(1),
# without a fork.
delay_between() {
	local ms=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
	printf -v delay '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# now_ms VAR: the time in ms into VAR, without a fork.
now_ms() {
	printf -v "$1" '%s' $((${EPOCHREALTIME/./} / 1000))
}

# running PID: the process is there and no zombie, without a fork.
running() {
	local st=
	read -r st </proc/"$1"/stat 2>/dev/null || return 1
	st=${st##*) }
	case ${st%% *} in
	Z | X | '') return 1 ;;
	esac
}

# node_up: start_node, with fewer forks while it waits: the test restarts
# the node a hundred times on a busy machine.
node_up() {
	local sock=$MV_HOME/mv.sock tries=$((MV_START_TIMEOUT * 50))
	mv-noded </dev/null >>"$MV_LOG" 2>&1 3>&- &
	MV_NODE_PID=$!
	while [ "$tries" -gt 0 ]; do
		if ! running "$MV_NODE_PID"; then
			wait "$MV_NODE_PID" 2>/dev/null || true
			tail -n 20 "$MV_LOG" >&2
			fail "mv-noded exited at start"
		fi
		if [ -S "$sock" ] &&
			socat -u OPEN:/dev/null "UNIX-CONNECT:$sock" 2>/dev/null; then
			return 0
		fi
		sleep 0.02
		tries=$((tries - 1))
	done
	tail -n 20 "$MV_LOG" >&2
	fail "mv-noded did not accept on $sock within ${MV_START_TIMEOUT}s"
}

# run_op KIND ITER: run the operation to its end (a kill ends it early) and
# leave its tool's exit status in ist.  An insert or a session makes group
# ITER, pending until the next check decides it; a delete takes the first
# half of the oldest whole group not deleted from yet (status 1 if none).
run_op() {
	local kind=$1 it=$2 g n
	opg=
	case $kind in
	insert | session)
		g=$it
		del[$g]=0
		state[$g]=pending
		opg=$g
		ist=0
		if [ "$kind" = insert ]; then
			command mv-insert --ids-first "$C" g$g.txt >/dev/null 2>op.err || ist=$?
		else
			# Two tools fill the session; the commit is mv-flush's.
			command mv-insert --ids-first --session "s$it" "$C" g$g.a >/dev/null 2>op.err &&
				command mv-insert --ids-first --session "s$it" "$C" g$g.b >/dev/null 2>>op.err &&
				command mv-flush "s$it" >/dev/null 2>>op.err || ist=$?
		fi
		;;
	delete)
		for g in "${!state[@]}"; do
			if [ "${state[$g]}" = whole ] && [ "${del[$g]}" = 0 ] &&
				{ [ -z "$opg" ] || [ "$g" -lt "$opg" ]; }; then
				opg=$g
			fi
		done
		[ -n "$opg" ] || return 1
		del[$opg]=pending
		ist=0
		command mv-delete "$C" g$opg.del >/dev/null 2>op.err || ist=$?
		;;
	compact)
		ist=0
		command mv-index "$C" --compact >/dev/null 2>op.err || ist=$?
		;;
	index)
		local spec=Flat
		[ $((it % 2)) -eq 0 ] || spec=IVF16,Flat
		ist=0
		command mv-index "$C" --type "$spec" >/dev/null 2>op.err || ist=$?
		;;
	esac
	return 0
}

# check ITER: decide the pending group from what the node holds, then
# compare everything with what must be there.
check() {
	local it=$1 g n h cnt low
	command mv-get "$C" --all >all.tsv || fail "iteration $it: mv-get --all failed"
	if [ -n "$opg" ]; then
		n=${nrows[$opg]}
		h=$((n / 2))
		read -r cnt low < <(awk -v lo="${gstart[$opg]}" -v hi=$((gstart[$opg] + n)) -v h="$h" \
			'$1 >= lo && $1 < hi { c++; if ($1 < lo + h) l++ } END { print c + 0, l + 0 }' all.tsv)
	fi
	if [ -n "$opg" ] && [ "${state[$opg]}" = pending ]; then
		if [ "$cnt" -eq "$n" ]; then
			state[$opg]=whole
			cat g$opg.tsv >>want.tsv
			nwant=$((nwant + n))
		elif [ "$cnt" -eq 0 ]; then
			state[$opg]=absent
		else
			fail "iteration $it ($kind, tool exit $ist): $cnt of the $n rows of flush $opg are there"
		fi
		if [ "$ist" -eq 0 ] && [ "${state[$opg]}" != whole ]; then
			fail "iteration $it ($kind): the tool exited 0 but its $n rows are not there"
		fi
	fi
	if [ -n "$opg" ] && [ "${del[$opg]}" = pending ]; then
		if [ "$low" -eq 0 ]; then
			del[$opg]=$h
			awk -v lo="${gstart[$opg]}" -v hi=$((gstart[$opg] + h)) \
				'$1 < lo || $1 >= hi' want.tsv >want.new
			mv want.new want.tsv
			nwant=$((nwant - h))
		elif [ "$low" -eq "$h" ]; then
			del[$opg]=0
		else
			fail "iteration $it (delete, tool exit $ist): $low of the $h deleted rows of flush $opg are still there"
		fi
		if [ "$ist" -eq 0 ] && [ "${del[$opg]}" = 0 ]; then
			fail "iteration $it (delete): mv-delete exited 0 but the rows are still there"
		fi
	fi
	# Everything that must be there (groups are made in id order and
	# mv-get --all prints by id), and nothing else.
	if ! cmp -s want.tsv all.tsv; then
		diff want.tsv all.tsv | head -n 10 >&2
		fail "iteration $it ($kind, tool exit $ist): mv-get --all differs from the flushes that must be there ($(wc -l <want.tsv) rows wanted, $(wc -l <all.tsv) there)"
	fi
	# mv-ls's rows column (one exec: this runs a hundred times).
	IFS=$'\t' read -r _ _ _ got _ < <(command mv-ls "$C")
	[ "$got" = "$nwant" ] ||
		fail "iteration $it ($kind): mv-ls counts '$got' rows, $nwant are there"
	# Searches: no duplicate id per query, no id that is not there.
	command mv-search -k 10 "$C" q.txt >s.tsv || fail "iteration $it: mv-search failed"
	awk -F'\t' 'NR == FNR { ok[$1] = 1; next }
		{ if (seen[$1 SUBSEP $3]++) { print "duplicate id " $3 " for query " $1; bad = 1 }
		  if (!($3 in ok)) { print "absent id " $3 " for query " $1; bad = 1 } }
		END { exit bad }' want.tsv s.tsv >&2 ||
		fail "iteration $it ($kind): bad search results (see above)"
}

@test "SIGKILL at random points of insert, session commit, delete, compaction and index build" {
	start_own_node
	iters=${MV_KILL_ITERS:-100}
	run -0 mv-create "$C" --dim "$DIM"
	gen vecs 20 "$DIM" --seed 999 >q.txt
	: >want.tsv
	nwant=0
	declare -A state nrows gstart del dur kills exit0 whole69 absent69 late codes
	nk=${#KINDS[@]}
	make_groups $((nk + iters))
	# One unkilled run of each kind (iterations 1-5): the committed base,
	# and how long each kind takes, the window of its kills.
	for it in $(seq 1 "$nk"); do
		kind=${KINDS[$((it - 1))]}
		now_ms t0
		run_op "$kind" "$it"
		now_ms t1
		dur[$kind]=$((t1 - t0))
		[ "$ist" -eq 0 ] || fail "unkilled $kind exited $ist: $(cat op.err)"
		check "$it"
	done
	now_ms t_start
	for it in $(seq $((nk + 1)) $((nk + iters))); do
		kind=${KINDS[$((it % nk))]}
		# From the start of the tool to a little after its usual end; the
		# killer and the tool start together.
		delay_between $((dur[$kind] / 20)) $((dur[$kind] * 12 / 10))
		(sleep "$delay" && kill -KILL "$MV_NODE_PID") 3>&- &
		kpid=$!
		now_ms t0
		run_op "$kind" "$it" || { kind=insert; run_op insert "$it"; }
		now_ms t1
		ended=0
		if running "$kpid"; then
			ended=1	# before the kill: its time refines the window
			late[$kind]=$((${late[$kind]:-0} + 1))
			dur[$kind]=$(((dur[$kind] + t1 - t0) / 2))
		fi
		wait "$kpid" || true
		_wait_gone "$MV_NODE_PID" 10 || fail "mv-noded survived SIGKILL"
		MV_NODE_PID=
		kills[$kind]=$((${kills[$kind]:-0} + 1))
		codes[$ist]=$((${codes[$ist]:-0} + 1))
		# A node gone mid-request is "daemon unreachable", nothing else.
		[ "$ist" -eq 0 ] || [ "$ist" -eq 69 ] ||
			fail "iteration $it ($kind): the tool exited $ist: $(cat op.err)"
		[ "$ist" -eq 0 ] || grep -q '^mv-[a-z]*: ' op.err ||
			fail "iteration $it ($kind): exit $ist without a message: $(cat op.err)"
		node_up
		now_ms t2
		check "$it"
		now_ms t3
		echo "it $it $kind delay $delay dur ${dur[$kind]} ended $ended ist $ist tool $((t1 - t0)) restart $((t2 - t1)) check $((t3 - t2))" >>"${MV_KILL_DEBUG:-/dev/null}"
		if [ "$ist" -eq 0 ]; then
			exit0[$kind]=$((${exit0[$kind]:-0} + 1))
		elif [ -n "$opg" ]; then
			if [ "${state[$opg]}" = whole ] && { [ "$kind" != delete ] || [ "${del[$opg]}" != 0 ]; }; then
				whole69[$kind]=$((${whole69[$kind]:-0} + 1))
			else
				absent69[$kind]=$((${absent69[$kind]:-0} + 1))
			fi
		fi
	done
	now_ms t_end
	secs=$(((t_end - t_start) / 1000))
	total=0
	{
		echo "kills: $iters in ${secs}s; rows at the end: $(wc -l <want.tsv | tr -d ' '); tool exit statuses: $(for c in "${!codes[@]}"; do printf '%s:%s ' "$c" "${codes[$c]}"; done)"
		for kind in "${KINDS[@]}"; do
			total=$((total + ${kills[$kind]:-0}))
			echo "$kind: ${kills[$kind]:-0} kills, tool exit 0: ${exit0[$kind]:-0}, killed after the tool ended: ${late[$kind]:-0}, failed but committed whole: ${whole69[$kind]:-0}, failed and absent: ${absent69[$kind]:-0}"
		done
	} >figures.txt
	sed 's/^/# /' figures.txt >&3
	[ -z "${MV_KILL_REPORT:-}" ] || cp figures.txt "$MV_KILL_REPORT"
	[ "$total" -eq "$iters" ] || fail "$total kills counted, $iters wanted"
}
