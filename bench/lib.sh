# bench/lib.sh - what the benchmark scripts share, sourced after they
# define log and root (the tree's root).
#
# bench_scratch TEMPLATE: a scratch directory $tmp (mktemp -d TEMPLATE),
# removed at exit unless KEEP=1; the node whose pid is in $pid is stopped
# then, and on failure the end of $MV_HOME.log is shown.
# start_node [STEP]: mv-noded on $MV_HOME (its log $MV_HOME.log), $pid,
# waited for with node_wait STEP; stop_node: SIGTERM, and its exit
# status must be 0.  node_wait [STEP]: until the node answers mv-ls,
# asked every STEP seconds (0.1); it dies if the node exits or takes
# 60 s.  calc FORMAT EXPR: awk's printf of EXPR.  median VALUE...: the
# median of the values (the mean of the middle two for an even count).
# bench_bin NAME...: copies of the tools (cmd/NAME/NAME for mv-*, else
# bench/NAME) in $tmp/bin, first in PATH, so that one run uses one build
# even if the tree is rebuilt meanwhile.

bench_cleanup() {
	rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "$rc" != 0 ] && [ -n "${MV_HOME:-}" ] && [ -s "$MV_HOME.log" ]; then
		log "failed; the end of mv-noded's log:"
		tail -n 20 "$MV_HOME.log" >&2
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}

bench_scratch() {
	tmp=$(mktemp -d "$1")
	pid=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

bench_bin() {
	bin=$tmp/bin
	mkdir -p "$bin"
	for t in "$@"; do
		case $t in
		mv-*) cp "$root/cmd/$t/$t" "$bin/" ;;
		*) cp "$root/bench/$t" "$bin/" ;;
		esac
	done
	PATH=$bin:$PATH
	export PATH
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

node_wait() {
	local end=$((SECONDS + 60))
	until mv-ls >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { pid=; die "mv-noded exited at start"; }
		[ "$SECONDS" -lt "$end" ] || die "mv-noded did not accept connections in 60 s"
		sleep "${1:-0.1}"
	done
}

start_node() {
	mv-noded 2>>"$MV_HOME.log" &
	pid=$!
	node_wait "${1:-0.1}"
}

stop_node() {
	kill -TERM "$pid"
	wait "$pid" || { log "mv-noded exited with status $?"; pid=; exit 1; }
	pid=
}
