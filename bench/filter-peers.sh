#!/bin/bash
# bench/filter-peers.sh - filtered search (issue 8): mv and LanceDB in one
# run, on the same rows, field, queries and exact filtered ground truth.
# Bash.  Needs `make all bench/filter` and node (LanceDB is installed
# into bench/peers/node_modules with `npm ci` when missing).
#
#   bench/filter-peers.sh [--rows N] [--nq Q] BASE.fvecs QUERY.fvecs
#
# mv: its own mv-noded (one thread: OMP and OpenBLAS) in a temporary
# MV_HOME, and bench/filter (exact, HNSW32 at each ef of EFS, IVF1024,Flat
# at each nprobe of NPROBES; --sel SEL) with --gt-out, which writes the
# ground truth of each filter and the field f of each row, and --single Q
# (each query also as a request of its own, as LanceDB is called).  LanceDB:
# bench/peers/lance_filter.mjs on those rows, field, queries and ground
# truth (exact, IVF_FLAT 1024 at each nprobes of NPROBES, IVF_HNSW_SQ M 32
# efConstruction 40 at each ef of EFS), one thread (LANCE_CPU_THREADS,
# TOKIO_WORKER_THREADS, RAYON_NUM_THREADS).  Output: the two Markdown
# tables on stdout, mv's first; progress on stderr.
#
# Environment: EFS ("32 64 128"), NPROBES ("16 32 64"), SEL ("500 100 10
# 1": f < B, 50%, 10%, 1%, 0.1% of the rows; the unfiltered search always
# runs), LANCE_INDEXES ("exact ivf hnsw"), MV_BENCH_DIR (where the
# temporary directory goes, default data/), KEEP=1 keeps it.
set -euo pipefail

prog=filter-peers.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "$*"; exit 1; }
usage() {
	sed -n '7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

root=$(cd "$(dirname "$0")/.." && pwd)
rows=200000
nq=1000
while [ $# -gt 0 ]; do
	case $1 in
	--rows) [ $# -ge 2 ] || usage; rows=$2; shift ;;
	--nq) [ $# -ge 2 ] || usage; nq=$2; shift ;;
	-h | --help) usage ;;
	-*) log "unknown option '$1'"; usage ;;
	*) break ;;
	esac
	shift
done
[ $# = 2 ] || usage
base=$(realpath "$1")
query=$(realpath "$2")
EFS=${EFS:-32 64 128}
NPROBES=${NPROBES:-16 32 64}
SEL=${SEL:-500 100 10 1}
cd "$root"
for t in cmd/mv-noded/mv-noded bench/filter; do
	[ -x "$t" ] || die "$t is not built; run make all bench/filter"
done
command -v node >/dev/null || die "node is not on PATH"
if ! (cd bench/peers && node -e 'require.resolve("@lancedb/lancedb")') 2>/dev/null; then
	log "npm ci in bench/peers (LanceDB)"
	(cd bench/peers && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

mkdir -p "${MV_BENCH_DIR:-$root/data}"
tmp=$(mktemp -d "${MV_BENCH_DIR:-$root/data}/filter-peers.XXXXXX")
pid=
cleanup() {
	rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ "$rc" = 0 ] || [ ! -s "$tmp/mv.log" ] || tail -n 20 "$tmp/mv.log" >&2
	if [ "${KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export MV_HOME=$tmp/mv OMP_WAIT_POLICY=PASSIVE RUST_LOG=error LANCEDB_LOG=error
unset MV_ADDR MV_USER || true
mkdir -p "$MV_HOME" "$tmp/gt"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 cmd/mv-noded/mv-noded 2>"$tmp/mv.log" &
pid=$!
for i in $(seq 600); do
	[ -S "$MV_HOME/mv.sock" ] && break
	kill -0 "$pid" 2>/dev/null || die "mv-noded exited at start"
	[ "$i" -lt 600 ] || die "mv-noded did not start in 60 s"
	sleep 0.1
done
log "mv at $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $rows rows, $nq queries"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bench/filter --rows "$rows" --nq "$nq" \
	--types "HNSW32 IVF1024,Flat" --ef "$EFS" --nprobe "$NPROBES" --sel "$SEL" \
	--single "$nq" --gt-out "$tmp/gt" "$base" "$query"
kill -TERM "$pid"
wait "$pid" || true
pid=
echo
log "LanceDB"
(cd bench/peers && LANCE_CPU_THREADS=1 TOKIO_WORKER_THREADS=1 RAYON_NUM_THREADS=1 \
	node lance_filter.mjs --rows "$rows" --nq "$nq" --gt "$tmp/gt" \
	--dir "$tmp/lance" --sel "1000 $SEL" --nprobes "$NPROBES" --ef "$EFS" \
	--indexes "${LANCE_INDEXES:-exact ivf hnsw}" "$base" "$query") 2>"$tmp/lance.err" ||
	{ tail -n 5 "$tmp/lance.err" >&2; die "lance_filter.mjs failed"; }
