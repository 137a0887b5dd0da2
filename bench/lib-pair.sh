# bench/lib-pair.sh - what bench/apply.sh and bench/catchup.sh share: two
# cluster nodes of a build on a real etcd and a real Ceph RGW.  Sourced
# after the script defines log and cd's to the tree's root, with the
# builds (NAME=BINDIR...) as its arguments.
#
# Sets up: a scratch directory $tmp (removed at exit unless KEEP=1;
# every pid in the array pids is continued and stopped then, etcd and
# RGW too, and on failure the end of each log in $tmp is shown); names[]
# and dirs[] from the NAME=BINDIR arguments ("tree" stands for this
# tree's cmd/*/, copied flat into $tmp); etcd (ETCD) and RGW
# (MV_TEST_S3_ENDPOINT, MV_TEST_S3_BUCKET) started.
#
# usec: microseconds of the wall clock.  free_port: a free TCP port.
# pair_node HOME [ENV...]: an mv-noded of the build in $bin for user $u
# in cluster $cid (num_replicas=1, no auto-compaction, NODE_FLAGS
# added), its log $tmp/HOME.log, run with the ENV assignments; its address
# in $addr, its pid in $pid (added to pids); returns once it answers
# mv-ls, dies if it exits or takes 60 s.

usec() { local t=$EPOCHREALTIME; echo "${t/./}"; }
free_port() {
	python3 -S -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mv-pair.XXXXXX")
pids=()
pair_cleanup() {
	local rc=$? p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	sh scripts/etcd.sh stop "$tmp/etcd" >/dev/null 2>&1 || true
	sh scripts/rgw.sh stop "$tmp/rgw" >/dev/null 2>&1 || true
	if [ "$rc" != 0 ]; then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] && { log "end of $f:"; tail -n 15 "$f" >&2; }
		done
	fi
	[ "${KEEP:-0}" = 1 ] && log "kept $tmp" || rm -rf "$tmp"
	exit "$rc"
}
trap pair_cleanup EXIT
trap 'exit 130' INT TERM HUP

names=() dirs=()
for a in "$@"; do
	n=${a%%=*} d=${a#*=}
	if [ "$d" = tree ]; then
		d=$tmp/bin-$n
		mkdir -p "$d"
		for t in cmd/mv-*/; do
			t=${t%/}
			cp "$t/${t#cmd/}" "$d/"
		done
	fi
	[ -x "$d/mv-noded" ] || { log "$d/mv-noded: not found"; exit 1; }
	names+=("$n") dirs+=("$d")
done

env=$(sh scripts/etcd.sh start "$tmp/etcd") || { log "etcd did not start"; exit 1; }
export "$env"
ETCD=$MV_TEST_ETCD
for v in $(sh scripts/rgw.sh start "$tmp/rgw"); do export "${v?}"; done
[ -n "${MV_TEST_S3_ENDPOINT:-}" ] || { log "rgw did not start"; exit 1; }

pair_node() {
	local home=$1 port
	shift
	port=$(free_port)
	addr=127.0.0.1:$port
	mkdir -p "$tmp/$home"
	env "$@" MV_HOME="$tmp/$home" "$bin/mv-noded" --listen="$addr" \
		--etcd="$ETCD" --cluster_id="$cid" --data_dir="$tmp/$home" \
		--user="$u" --s3_endpoint="$MV_TEST_S3_ENDPOINT" \
		--s3_bucket="$MV_TEST_S3_BUCKET" --num_replicas=1 \
		--auto_compact=false ${NODE_FLAGS:-} </dev/null \
		>>"$tmp/$home.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 600); do
		"$bin/mv-ls" -a "$addr" -u "$u" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { log "mv-noded $home exited at start"; exit 1; }
		sleep 0.1
	done
	log "mv-noded $home did not answer in 60 s"
	exit 1
}
