#!/bin/bash
# bench/cluster.sh - an mv cluster next to an embedded node, in one run
# (issue 7).  Bash (uses $EPOCHREALTIME).  Build first: make bench-cluster.
#
#   bench/cluster.sh
#
# Starts on this machine a real etcd (scripts/etcd.sh), a real Ceph RGW
# (scripts/rgw.sh), three mv-noded in cluster mode on them, mv-masterd, and
# one embedded mv-noded (no etcd, local store), all on loopback TCP, and
# measures on glove-100 (cosine), the cluster against the embedded node:
#
#  insert   mv-insert of SUBSET base vectors (fvecs) into a new collection,
#           to the durable flush it returns after: through node 1, through
#           the master, and into the embedded node;
#  exact    search, k=10: the NQ queries in one mv-search (QPS), and one
#           at a time over one connection (bench/latency: p50/p99), through
#           node 2, through the master (mv-search only: bench/latency talks
#           to one node) and the embedded node; recall@10 (bench/recall,
#           ground truth of the subset by bench/gt);
#  hnsw     the same after `mv-index --type HNSW32` on node 1 (the others
#           load the index from S3), with ef=EF;
#  path     the cost of the cluster path per query: latency node 2 minus
#           embedded (the visibility wait: one etcd revision read per
#           query; v1 has no fan-out), the etcd read alone (one curl
#           over a kept-alive connection), and the tool's cost per call of going
#           through the master (HELLO + NODE + a second connection): NCALL
#           single-query mv-search processes each through node 2, the
#           master and the embedded node;
#  visible  flush on node 1 to found by a search on nodes 2 and 3
#           (and node 1 itself) (bench/visible, ROUNDS rounds; median and
#           max), against a
#           flush and search on the embedded node itself;
#  kill     bench/latency on node 2 before, during (node 3 gets SIGKILL
#           0.3 s into the run) and after (node 3's live key expired);
#           every search must answer; NCALL searches through the master
#           while node 3 is dead too.  Node 3 is started again (its
#           catch-up time is printed) for the next run.
#
# Every figure is the median of REPEAT runs (maxima: the max) with its
# ratio to the embedded node's figure of the same run.  Prints a Markdown
# report on stdout, progress on stderr.  Everything it starts is stopped
# at exit.
#
# scripts/rgw.sh runs RGW's beast frontend with `tcp_nodelay=1`: without
# it, a small GET on a kept-alive connection waits ~40 ms for the body
# (RGW's Nagle against the client's delayed ACK), which is what a
# follower's segment download pays.
#
# Environment: SUBSET (base vectors, default 50000; 0 = all 331,479), NQ
# (queries, default 2000), NLAT (queries of a latency run, default 1000),
# EF (64), ROUNDS (100), NCALL (50), REPEAT (3), THREADS (OMP_NUM_THREADS
# of the nodes, default all cores), NUM_REPLICAS (of the three nodes,
# default 2: every node holds every unit; 0: each unit on one node, so
# searches fan out, and no SIGKILL runs), MV_BENCH_DIR (default data/),
# KEEP=1 keeps the temporary directory.  Takes about 8 minutes on 2 busy cores.
set -euo pipefail

if [ $# -gt 0 ]; then
	echo "usage: bench/cluster.sh   (settings in the environment; see the file)" >&2
	exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SUBSET=${SUBSET:-50000}
NQ=${NQ:-2000}
NLAT=${NLAT:-1000}
EF=${EF:-64}
ROUNDS=${ROUNDS:-100}
NCALL=${NCALL:-50}
REPEAT=${REPEAT:-3}
THREADS=${THREADS:-$(nproc)}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS ETCDCTL_API=3
unset MV_ADDR MV_USER MV_HOME || true

for t in mv-noded mv-masterd mv-create mv-insert mv-search mv-index mv-ls \
	mv-drop mv-stat; do
	if [ ! -x "cmd/$t/$t" ]; then
		echo "cluster.sh: cmd/$t/$t is not built; run make bench-cluster" >&2
		exit 1
	fi
	PATH=$root/cmd/$t:$PATH
done
for t in latency recall gt visible; do
	if [ ! -x "bench/$t" ]; then
		echo "cluster.sh: bench/$t is not built; run make bench-cluster" >&2
		exit 1
	fi
done
export PATH

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usec() { local t=$EPOCHREALTIME; echo "${t/./}"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
field() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$2"; }
free_ports() {
	python3 -S -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

data=$(scripts/fetch-data.sh glove-100)
dim=100
rec=$((4 + 4 * dim))
nb=$(($(stat -L -c %s "$data/base.fvecs") / rec))
[ "$SUBSET" -gt 0 ] && [ "$SUBSET" -lt "$nb" ] || SUBSET=$nb
[ "$NQ" -gt 0 ] && [ "$NQ" -le 10000 ] || NQ=10000
[ "$NLAT" -le "$NQ" ] || NLAT=$NQ

mkdir -p "${MV_BENCH_DIR:-$root/data}"
tmp=$(mktemp -d "${MV_BENCH_DIR:-$root/data}/cluster.XXXXXX")
declare -A PID=() ADDR=()
etcd_on= rgw_on=

stop_pid() {
	local p=$1 i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local rc=$? k
	trap - EXIT INT TERM HUP
	for k in "${!PID[@]}"; do
		[ -n "${PID[$k]}" ] && stop_pid "${PID[$k]}"
	done
	if [ "$rc" != 0 ]; then
		for k in "$tmp"/*.log; do
			[ -s "$k" ] || continue
			echo "--- $k" >&2
			tail -n 15 "$k" >&2
		done
	fi
	[ -z "$etcd_on" ] || sh scripts/etcd.sh stop "$tmp/etcd" || true
	[ -z "$rgw_on" ] || sh "$rgw_sh" stop "$tmp/rgw" || true
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
log "glove-100: $SUBSET base vectors, $NQ queries; temporary directory $tmp; load $load0"

# The subset, its queries and their exact ground truth.
head -c $((SUBSET * rec)) "$data/base.fvecs" >"$tmp/base.fvecs"
head -c $((NQ * rec)) "$data/query.fvecs" >"$tmp/query.fvecs"
head -c "$rec" "$data/query.fvecs" >"$tmp/q1.fvecs"
seq 0 $((SUBSET - 1)) >"$tmp/ids.txt"
t0=$(usec)
bench/gt -m cosine -k 10 "$tmp/base.fvecs" "$tmp/query.fvecs" \
	"$tmp/gt.ivecs" "$tmp/gtd.fvecs" >/dev/null
log "ground truth of the subset in $(calc %.1f "($(usec) - $t0) / 1e6") s"
base=$tmp/base.fvecs query=$tmp/query.fvecs gt=$tmp/gt.ivecs gtd=$tmp/gtd.fvecs
mb=$(calc %.1f "$SUBSET * $rec / 1e6")

# The servers.
etcd_on=1
env=$(sh scripts/etcd.sh start "$tmp/etcd") || die "etcd did not start"
ETCD=${env#MV_TEST_ETCD=}
rgw_sh=scripts/rgw.sh
rgw_on=1
sh "$rgw_sh" start "$tmp/rgw" >"$tmp/rgw.env" || die "RGW did not start"
set -a
. "$tmp/rgw.env"
set +a
log "etcd at $ETCD, RGW at $MV_TEST_S3_ENDPOINT"

ports=($(free_ports 5))
ADDR=([n1]=127.0.0.1:${ports[0]} [n2]=127.0.0.1:${ports[1]}
	[n3]=127.0.0.1:${ports[2]} [master]=127.0.0.1:${ports[3]}
	[emb]=127.0.0.1:${ports[4]})

# wait_up KEY: until mv-ls answers at ADDR[KEY] (60 s); prints the seconds.
wait_up() {
	local k=$1 t0 i=0
	t0=$(usec)
	until mv-ls -a "${ADDR[$k]}" >/dev/null 2>&1; do
		kill -0 "${PID[$k]}" 2>/dev/null || die "$k exited at start"
		i=$((i + 1))
		[ "$i" -lt 600 ] || die "$k did not answer in 60 s"
		sleep 0.1
	done
	calc %.2f "($(usec) - $t0) / 1e6"
}

node_up() {
	local n=$1 home=$tmp/$1
	mkdir -p "$home"
	MV_HOME=$home mv-noded --listen="${ADDR[$n]}" --etcd="$ETCD" \
		--cluster_id=bench --data_dir="$home" \
		--s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" \
		--num_replicas="${NUM_REPLICAS:-2}" \
		</dev/null >>"$tmp/$n.log" 2>&1 &
	PID[$n]=$!
}

for n in n1 n2 n3; do
	node_up "$n"
	wait_up "$n" >/dev/null
done
mkdir -p "$tmp/emb"
MV_HOME=$tmp/emb mv-noded --listen="${ADDR[emb]}" --data_dir="$tmp/emb" \
	</dev/null >>"$tmp/emb.log" 2>&1 &
PID[emb]=$!
mv-masterd --listen="${ADDR[master]}" --etcd="$ETCD" --cluster_id=bench \
	</dev/null >>"$tmp/master.log" 2>&1 &
PID[master]=$!
wait_up emb >/dev/null
wait_up master >/dev/null
i=0
until [ "$(mv-stat -a "${ADDR[master]}" 2>/dev/null | grep -cw up)" -ge 3 ]; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || die "the master does not see 3 nodes up: $(mv-stat -a "${ADDR[master]}" 2>&1)"
	sleep 0.1
done
log "3 nodes, the master and the embedded node are up"

# --- insert: durable mv-insert of the subset.
ins_n1=() ins_m=() ins_e=()
for r in $(seq "$REPEAT"); do
	for k in emb n1 master; do
		mv-create -q -a "${ADDR[$k]}" "ins$r$k" --dim "$dim" --metric cosine
		sync
		t0=$(usec)
		mv-insert -q -a "${ADDR[$k]}" "ins$r$k" "$base"
		s=$(calc %.3f "($(usec) - $t0) / 1e6")
		mv-drop -q -a "${ADDR[$k]}" "ins$r$k"
		case $k in emb) ins_e+=("$s") ;; n1) ins_n1+=("$s") ;; master) ins_m+=("$s") ;; esac
	done
	log "insert run $r: embedded ${ins_e[-1]} s, node 1 ${ins_n1[-1]} s, master ${ins_m[-1]} s"
done
ins_e_s=$(median "${ins_e[@]}") ins_n1_s=$(median "${ins_n1[@]}") ins_m_s=$(median "${ins_m[@]}")

# --- the search collection: the subset with ids = row numbers.
for k in emb n1; do
	mv-create -q -a "${ADDR[$k]}" glove --dim "$dim" --metric cosine
	mv-insert -q -a "${ADDR[$k]}" --ids "$tmp/ids.txt" glove "$base"
done
for k in n2 n3 master; do
	rows=$(mv-ls -a "${ADDR[$k]}" glove | cut -f 4)
	[ "$rows" = "$SUBSET" ] || die "$k sees $rows rows, not $SUBSET"
done

# search_round KIND: one run of every search measurement (KIND exact or
# hnsw), appending to the arrays named KIND_*.
declare -A M=()
add() { M[$1]="${M[$1]:-} $2"; }
search_round() {
	local kind=$1 k p t0 s i out
	p=() ; [ "$kind" = hnsw ] && p=(--ef "$EF")
	for k in emb n2 master; do
		t0=$(usec)
		mv-search -q -a "${ADDR[$k]}" -k 10 "${p[@]}" glove "$query" >"$tmp/$kind-$k.tsv"
		s=$(calc %.4f "($(usec) - $t0) / 1e6")
		add "$kind.qps.$k" "$(calc %.1f "$NQ / $s")"
	done
	for k in emb n2; do
		out=$tmp/lat-$kind-$k.out
		bench/latency -a "${ADDR[$k]}" -k 10 -n "$NLAT" --warmup 100 \
			${p:+-p "ef=$EF"} --gt "$gt" glove "$query" >"$out"
		add "$kind.p50.$k" "$(field median_us "$out")"
		add "$kind.p99.$k" "$(field p99_us "$out")"
		add "$kind.recall.$k" "$(field recall "$out")"
	done
	for k in emb n2 master; do
		t0=$(usec)
		for i in $(seq "$NCALL"); do
			mv-search -q -a "${ADDR[$k]}" -k 10 "${p[@]}" glove "$tmp/q1.fvecs" >/dev/null
		done
		add "$kind.call.$k" "$(calc %.2f "($(usec) - $t0) / 1e3 / $NCALL")"
	done
}
med() { median ${M[$1]}; }
mx() { maxof ${M[$1]}; }

for r in $(seq "$REPEAT"); do
	search_round exact
	log "exact run $r: QPS$(for k in emb n2 master; do printf ' %s %s' $k "$(echo ${M[exact.qps.$k]} | awk '{ print $NF }')"; done)"
done
for k in emb n2 master; do
	bench/recall -k 10 --metric cosine "$tmp/exact-$k.tsv" "$gt" "$gtd" >"$tmp/rec-exact-$k.out"
done

# The etcd revision read alone: what the visibility wait adds at least.
etcd_us=()
for r in $(seq "$REPEAT"); do
	# One curl, 500 requests over one kept-alive connection.
	etcd_us+=("$(curl -s -d '{"key":"eA=="}' -w '\n%{time_total}\n' \
		$(printf "$ETCD/v3/kv/range %.0s" $(seq 500)) |
		awk '/^[0-9.]+$/ { print $1 * 1e6 }' | tail -n 400 | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }')")
done
etcd_read=$(median "${etcd_us[@]}")

# --- HNSW32, built on node 1 (and on the embedded node).
idx_e=() idx_c=()
t0=$(usec)
mv-index -q -a "${ADDR[emb]}" glove --type HNSW32
idx_e_s=$(calc %.1f "($(usec) - $t0) / 1e6")
t0=$(usec)
mv-index -q -a "${ADDR[n1]}" glove --type HNSW32
idx_c_s=$(calc %.1f "($(usec) - $t0) / 1e6")
t0=$(usec)
for k in n2 n3; do
	mv-ls -a "${ADDR[$k]}" glove | grep -q HNSW32 || die "$k has no HNSW32 index"
done
idx_seen=$(calc %.2f "($(usec) - $t0) / 1e6")
log "HNSW32 built in $idx_e_s s (embedded), $idx_c_s s (node 1)"
for r in $(seq "$REPEAT"); do
	search_round hnsw
	log "hnsw run $r: QPS$(for k in emb n2 master; do printf ' %s %s' $k "$(echo ${M[hnsw.qps.$k]} | awk '{ print $NF }')"; done)"
done
for k in emb n2 master; do
	bench/recall -k 10 --metric cosine "$tmp/hnsw-$k.tsv" "$gt" "$gtd" >"$tmp/rec-hnsw-$k.out"
done

# --- visibility: flush on node 1, found on nodes 2 and 3.
mv-create -q -a "${ADDR[n1]}" vis --dim 4
mv-create -q -a "${ADDR[emb]}" vis --dim 4
for r in $(seq "$REPEAT"); do
	bench/visible -n "$ROUNDS" --id0 $((r * 1000000)) vis "${ADDR[n1]}" \
		"${ADDR[n2]}" "${ADDR[n3]}" "${ADDR[n1]}" >"$tmp/vis.out"
	bench/visible -n "$ROUNDS" --id0 $((r * 1000000)) vis "${ADDR[emb]}" \
		"${ADDR[emb]}" >"$tmp/vis-emb.out"
	for f in flush_median_ms reader1_median_ms reader1_max_ms reader1_first_try \
		reader2_median_ms reader2_max_ms reader2_first_try \
		reader3_median_ms reader3_max_ms; do
		add "vis.$f" "$(field "$f" "$tmp/vis.out")"
	done
	for f in flush_median_ms reader1_median_ms reader1_max_ms reader1_first_try; do
		add "visemb.$f" "$(field "$f" "$tmp/vis-emb.out")"
	done
	log "visible run $r: node 2 $(field reader1_median_ms "$tmp/vis.out") ms, node 3 $(field reader2_median_ms "$tmp/vis.out") ms, embedded $(field reader1_median_ms "$tmp/vis-emb.out") ms (medians)"
done

# --- node 3 killed with SIGKILL while node 2 answers (HNSW32, ef=EF).
lat_n2() {
	bench/latency -a "${ADDR[n2]}" -k 10 -n "$1" --warmup 50 -p "ef=$EF" \
		--gt "$gt" glove "$query" >"$2" || die "a search on node 2 failed ($2)"
}
live_count() {
	etcdctl --endpoints="$ETCD" get --prefix --keys-only \
		/default/bench_property/live/ | grep -c live/ || true
}
# Without replicas a killed node's units are unreachable until its lease
# expires (searches exit 75 naming them, by design): nothing to time.
kill_runs=$REPEAT
if [ "${NUM_REPLICAS:-2}" = 0 ]; then
	kill_runs=0
	log "NUM_REPLICAS=0: no SIGKILL runs (a killed node's units have no other copy)"
fi
for r in $(seq "$kill_runs"); do
	lat_n2 "$NLAT" "$tmp/kill-before.out"
	nd=$((NLAT * 3 > NQ ? NQ : NLAT * 3))
	bench/latency -a "${ADDR[n2]}" -k 10 -n "$nd" --warmup 0 -p "ef=$EF" \
		--gt "$gt" glove "$query" >"$tmp/kill-during.out" &
	lp=$!
	sleep 0.3
	kill -KILL "${PID[n3]}"
	wait "${PID[n3]}" 2>/dev/null || true
	PID[n3]=
	wait "$lp" || die "a search on node 2 failed while node 3 was killed"
	# Through the master, while node 3 is dead (its live key may linger).
	fails=0
	for i in $(seq "$NCALL"); do
		mv-search -q -a "${ADDR[master]}" -k 10 --ef "$EF" glove "$tmp/q1.fvecs" \
			>/dev/null 2>>"$tmp/kill-master.err" || fails=$((fails + 1))
	done
	add kill.master_fails "$fails"
	i=0
	while [ "$(live_count)" -gt 2 ]; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || die "node 3's live key is still there after 30 s"
		sleep 0.1
	done
	lat_n2 "$NLAT" "$tmp/kill-after.out"
	for ph in before during after; do
		add "kill.p50.$ph" "$(field median_us "$tmp/kill-$ph.out")"
		add "kill.p99.$ph" "$(field p99_us "$tmp/kill-$ph.out")"
	done
	node_up n3
	s=$(wait_up n3) || die "node 3 did not come back"
	add kill.restart "$s"
	log "kill run $r: node 2 p99 before $(field p99_us "$tmp/kill-before.out") us, during $(field p99_us "$tmp/kill-during.out") us, after $(field p99_us "$tmp/kill-after.out") us; master: $fails failed; node 3 back in ${M[kill.restart]##* } s"
done
rows=$(mv-ls -a "${ADDR[n3]}" glove | cut -f 4)
[ "$rows" = "$SUBSET" ] || die "node 3 restarted sees $rows rows, not $SUBSET"
load1=$(cut -d ' ' -f 1-3 /proc/loadavg)

# --- the report.
cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo
echo "mv cluster benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), glove-100 subset: $SUBSET x $dim, cosine, $NQ queries, k=10"
echo "machine: $cpu, $(nproc) cores, $mem; 3 mv-noded (etcd 1 member, Ceph RGW memstore, beast tcp_nodelay=1), mv-masterd, 1 embedded mv-noded, all on this machine;" \
	"OMP_NUM_THREADS=$THREADS; median of $REPEAT runs; load average $load0 at start, $load1 at end"
echo
echo "| measure | cluster | embedded | cluster / embedded |"
echo "|---|---|---|---|"
e=$ins_e_s
echo "| durable insert, $SUBSET vectors ($mb MB fvecs), through node 1 | $ins_n1_s s ($(calc %.1f "$mb / $ins_n1_s") MB/s) | $e s ($(calc %.1f "$mb / $e") MB/s) | $(ratio "$ins_n1_s" "$e") x time |"
echo "| the same through the master | $ins_m_s s ($(calc %.1f "$mb / $ins_m_s") MB/s) | | $(ratio "$ins_m_s" "$e") x time |"
for kind in exact hnsw; do
	lbl=$kind; [ $kind = hnsw ] && lbl="HNSW32 ef=$EF"
	e=$(med "$kind.qps.emb")
	echo "| $lbl: mv-search of $NQ queries, through node 2 | $(med "$kind.qps.n2") QPS | $e QPS | $(ratio "$(med "$kind.qps.n2")" "$e") x QPS |"
	echo "| $lbl: the same through the master | $(med "$kind.qps.master") QPS | | $(ratio "$(med "$kind.qps.master")" "$e") x QPS |"
	echo "| $lbl: recall@10 (mv-search, node 2 / master) | $(field recall@10 "$tmp/rec-$kind-n2.out") / $(field recall@10 "$tmp/rec-$kind-master.out") | $(field recall@10 "$tmp/rec-$kind-emb.out") | |"
	e=$(med "$kind.p50.emb")
	echo "| $lbl: one query per request ($NLAT), node 2, p50 | $(med "$kind.p50.n2") us | $e us | $(ratio "$(med "$kind.p50.n2")" "$e") x |"
	e=$(med "$kind.p99.emb")
	echo "| $lbl: the same, p99 | $(med "$kind.p99.n2") us | $e us | $(ratio "$(med "$kind.p99.n2")" "$e") x |"
	echo "| $lbl: cluster path per query (p50 node 2 - embedded) | $(calc %.0f "$(med "$kind.p50.n2") - $(med "$kind.p50.emb")") us | | |"
	e=$(med "$kind.call.emb")
	echo "| $lbl: one mv-search process per query ($NCALL), through node 2 | $(med "$kind.call.n2") ms | $e ms | $(ratio "$(med "$kind.call.n2")" "$e") x |"
	echo "| $lbl: the same through the master | $(med "$kind.call.master") ms | | $(ratio "$(med "$kind.call.master")" "$e") x |"
done
echo "| etcd revision read alone (curl, one kept-alive connection, p50) | $etcd_read us | | |"
echo "| HNSW32 build (node 1 / embedded); seen on nodes 2 and 3 after | $idx_c_s s; $idx_seen s | $idx_e_s s | $(ratio "$idx_c_s" "$idx_e_s") x |"
e=$(med visemb.flush_median_ms)
echo "| flush of 1 row (insert + FLUSH), p50 | $(med vis.flush_median_ms) ms | $e ms | $(ratio "$(med vis.flush_median_ms)" "$e") x |"
e=$(med visemb.reader1_median_ms)
echo "| flush returned on node 1 to found on node 2: median / max ($ROUNDS rounds) | $(med vis.reader1_median_ms) / $(mx vis.reader1_max_ms) ms | $e / $(mx visemb.reader1_max_ms) ms (same node) | $(ratio "$(med vis.reader1_median_ms)" "$e") x |"
echo "| the same, node 3 | $(med vis.reader2_median_ms) / $(mx vis.reader2_max_ms) ms | | $(ratio "$(med vis.reader2_median_ms)" "$e") x |"
echo "| the same, node 1 itself (the writer) | $(med vis.reader3_median_ms) / $(mx vis.reader3_max_ms) ms | | $(ratio "$(med vis.reader3_median_ms)" "$e") x |"
echo "| rounds found by the first search (node 2, node 3 / embedded) | $(med vis.reader1_first_try), $(med vis.reader2_first_try) of $ROUNDS | $(med visemb.reader1_first_try) of $ROUNDS | |"
e=$(med hnsw.p50.emb)
if [ "$kill_runs" = 0 ]; then
	echo "| node 3 SIGKILL | not run: NUM_REPLICAS=0 | | |"
else
	for ph in before during after; do
		echo "| node 3 SIGKILL: node 2 HNSW32 latency $ph, p50 / p99 | $(med "kill.p50.$ph") / $(med "kill.p99.$ph") us | $e / $(med hnsw.p99.emb) us | $(ratio "$(med "kill.p99.$ph")" "$(med hnsw.p99.emb)") x p99 |"
	done
	echo "| node 3 SIGKILL: searches through the master that failed | $(maxof ${M[kill.master_fails]}) of $NCALL (worst run) | | |"
	echo "| node 3 restarted: answering after | $(med kill.restart) s | | |"
fi
