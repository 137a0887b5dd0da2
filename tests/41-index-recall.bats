#!/usr/bin/env bats
# Index recall on real data, against mv's own brute force (issue 3):
#
#   fashion-mnist (l2, 784 dims; Debian's dataset-fashion-mnist through
#   scripts/fetch-data.sh): the first 20,000 base rows and 200 queries;
#   HNSW32, IVF256,Flat, IVF256,SQ8 and IVF256,PQ16.
#   glove-100 (cosine, 100 dims; ../shared/datasets/glove-100, else
#   scripts/fetch-data.sh): the first 50,000 base rows and 200 queries;
#   HNSW32 and IVF256,Flat.
#
# The ground truth of each subset is mv-search's brute-force answer, taken
# before the collection has an index.  Thresholds sit below values measured
# on a 2-core Debian 12 machine (noted next to each), with margin.
#
# Fetching fashion-mnist needs apt-get (root: tests run as root in CI);
# when it fails the fashion tests fail, unless the machine cannot reach
# the Debian mirror at all, in which case they skip and say so.

load helpers/mv
load helpers/index

K=10
NQ=200
FM_ROWS=20000
GL_ROWS=50000

# Exit 0 when the Debian mirror of the apt sources (or deb.debian.org)
# cannot be reached over TCP and no proxy is configured.
debian_unreachable() {
	local url host port
	if [ -n "${http_proxy:-}${https_proxy:-}" ] ||
		apt-config dump 2>/dev/null | grep -qi 'Acquire::https\?::Proxy "[^"]'; then
		return 1
	fi
	url=$(grep -hoE 'https?://[^/[:space:]]+' /etc/apt/sources.list \
		/etc/apt/sources.list.d/* 2>/dev/null | head -n 1)
	url=${url:-http://deb.debian.org}
	host=${url#*://}
	port=80
	case $url in https:*) port=443 ;; esac
	case $host in *:*) port=${host##*:} host=${host%%:*} ;; esac
	! timeout 10 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

npm_unreachable() {
	[ -z "${http_proxy:-}${https_proxy:-}" ] &&
		! timeout 10 bash -c 'exec 3<>/dev/tcp/registry.npmjs.org/443' 2>/dev/null
}

setup_file() {
	setup_file_node
	cd "$BATS_FILE_TMPDIR" || return 1

	# fashion-mnist: FM_STATE ok, failed or unreachable.
	if FM=$(sh "$MV_ROOT/scripts/fetch-data.sh" fashion-mnist 2>fetch-fm.err) &&
		[ -r "$FM/base.fvecs" ] && [ -r "$FM/query.fvecs" ]; then
		FM_STATE=ok
		# fvecs records of 4 + 784 * 4 bytes.
		head -c $((FM_ROWS * 3140)) "$FM/base.fvecs" >fm_base.fvecs
		head -c $((NQ * 3140)) "$FM/query.fvecs" >fm_q.fvecs
		mv-create fm --dim 784 --metric l2
		mv-insert fm fm_base.fvecs
		mv-search fm -k "$K" fm_q.fvecs >fm_truth.tsv
	elif debian_unreachable; then
		FM_STATE=unreachable
	else
		FM_STATE=failed
	fi

	# glove-100: GL_STATE likewise.
	if { G=$(glove_dir) ||
		G=$(sh "$MV_ROOT/scripts/fetch-data.sh" glove-100 2>fetch-gl.err); } &&
		[ -r "$G/base.fvecs" ] && [ -r "$G/query.fvecs" ]; then
		GL_STATE=ok
		# fvecs records of 4 + 100 * 4 bytes.
		head -c $((GL_ROWS * 404)) "$G/base.fvecs" >gl_base.fvecs
		head -c $((NQ * 404)) "$G/query.fvecs" >gl_q.fvecs
		mv-create gl --dim 100 --metric cosine
		mv-insert gl gl_base.fvecs
		mv-search gl -k "$K" gl_q.fvecs >gl_truth.tsv
	elif npm_unreachable; then
		GL_STATE=unreachable
	else
		GL_STATE=failed
	fi
	export FM FM_STATE G GL_STATE
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
	cd "$BATS_FILE_TMPDIR" || return 1
}

need_fm() {
	case $FM_STATE in
	ok) ;;
	unreachable) skip "fashion-mnist: the Debian mirror cannot be reached" ;;
	*) fail "scripts/fetch-data.sh fashion-mnist failed: $(tail -n 5 fetch-fm.err)" ;;
	esac
	assert_rows fm "$FM_ROWS"
	assert_equal "$(line_count fm_truth.tsv)" $((NQ * K))
}

need_gl() {
	case $GL_STATE in
	ok) ;;
	unreachable) skip "glove-100: not in ../shared/datasets and npm cannot be reached" ;;
	*) fail "glove-100: not in ../shared/datasets and scripts/fetch-data.sh failed: $(tail -n 5 fetch-gl.err 2>/dev/null)" ;;
	esac
	assert_rows gl "$GL_ROWS"
	assert_equal "$(line_count gl_truth.tsv)" $((NQ * K))
}

# measure NAME QUERIES TRUTH LABEL SEARCH-OPTION...: recall@K of one
# search, printed to the TAP stream and echoed.
measure() {
	local name=$1 q=$2 truth=$3 label=$4 r
	shift 4
	mv-search "$name" -k "$K" "$@" "$q" >"got.$name.tsv" ||
		fail "mv-search $name $* failed"
	r=$(recall_tsv "got.$name.tsv" "$truth" "$K")
	echo "# $label $*: recall@$K $r" >&3
	echo "$r"
}

@test "fashion-mnist HNSW32: recall@10 >= 0.98 at ef 64 and 128" {
	need_fm
	run -0 mv-index fm --type HNSW32
	assert_equal "$(ix_index fm)" HNSW32
	r16=$(measure fm fm_q.fvecs fm_truth.tsv "fashion HNSW32" --ef 16)
	r64=$(measure fm fm_q.fvecs fm_truth.tsv "fashion HNSW32" --ef 64)
	r128=$(measure fm fm_q.fvecs fm_truth.tsv "fashion HNSW32" --ef 128)
	# Measured: ef 16 0.995, ef 64 0.9995, ef 128 0.9995; with FAISS
	# patch 05's sparser level 0: 0.975, 0.9985, 1.000.
	at_least "$r64" 0.98 || fail "ef 64: recall $r64"
	at_least "$r128" 0.98 || fail "ef 128: recall $r128"
	at_least "$r128" "$r16" || fail "ef 128 ($r128) worse than ef 16 ($r16)"
}

@test "fashion-mnist IVF256,Flat: recall@10 >= 0.97 at nprobe 16, exact at 256, lower at 1" {
	need_fm
	run -0 mv-index fm --type IVF256,Flat
	assert_equal "$(ix_index fm)" IVF256,Flat
	r1=$(measure fm fm_q.fvecs fm_truth.tsv "fashion IVF256,Flat" --nprobe 1)
	r16=$(measure fm fm_q.fvecs fm_truth.tsv "fashion IVF256,Flat" --nprobe 16)
	# Measured: nprobe 1 0.62, nprobe 16 0.998.
	at_least "$r16" 0.97 || fail "nprobe 16: recall $r16"
	below "$r1" "$r16" || fail "nprobe 1 ($r1) not below nprobe 16 ($r16)"
	# Every list probed: the exact neighbours.  (Only the ids: squared
	# distances of ~2e6 are past float32's exact integers, and brute
	# force (|x|^2 + |y|^2 - 2xy) and IVF (sum of squares) round them
	# differently, by a few units.)
	mv-search fm -k "$K" --nprobe 256 fm_q.fvecs >all.tsv
	r=$(recall_tsv all.tsv fm_truth.tsv "$K")
	assert_equal "$r" 1.0000
}

@test "fashion-mnist IVF256,SQ8: recall@10 >= 0.97 at nprobe 16" {
	need_fm
	run -0 mv-index fm --type IVF256,SQ8
	assert_equal "$(ix_index fm)" IVF256,SQ8
	r16=$(measure fm fm_q.fvecs fm_truth.tsv "fashion IVF256,SQ8" --nprobe 16)
	# Measured: 0.994.
	at_least "$r16" 0.97 || fail "nprobe 16: recall $r16"
}

@test "fashion-mnist IVF256,PQ16: recall@10 > 0.5 at nprobe 16, below IVF256,Flat" {
	need_fm
	# PQ16 with 8-bit codes.  "np" turns off FAISS's polysemous training,
	# which index_factory enables for PQ and which mv never uses: with it,
	# the build takes ~50 s on 2 cores instead of ~11 s, for the same
	# index and the same recall.
	run -0 mv-index fm --type IVF256,PQ16np
	assert_equal "$(ix_index fm)" IVF256,PQ16np
	r16=$(measure fm fm_q.fvecs fm_truth.tsv "fashion IVF256,PQ16np" --nprobe 16)
	# Measured: 0.630 (IVF256,Flat: 0.998).
	at_least "$r16" 0.5 || fail "nprobe 16: recall $r16"
	below "$r16" 0.95 || fail "nprobe 16: recall $r16, as good as exact: is the index used?"
}

@test "glove-100 HNSW32: recall@10 >= 0.98 at ef 128, >= 0.97 at ef 64" {
	need_gl
	run -0 mv-index gl --type HNSW32
	assert_equal "$(ix_index gl)" HNSW32
	r16=$(measure gl gl_q.fvecs gl_truth.tsv "glove HNSW32" --ef 16)
	r64=$(measure gl gl_q.fvecs gl_truth.tsv "glove HNSW32" --ef 64)
	r128=$(measure gl gl_q.fvecs gl_truth.tsv "glove HNSW32" --ef 128)
	# Measured: ef 16 0.950, ef 64 0.9945, ef 128 1.000 (in-process FAISS,
	# bench/faiss_index: 0.950, 0.993, 0.999); with FAISS patch 05's
	# sparser level 0: 0.9365, 0.992, 0.996.
	at_least "$r64" 0.97 || fail "ef 64: recall $r64"
	at_least "$r128" 0.98 || fail "ef 128: recall $r128"
	below "$r16" "$r128" || fail "ef 128 ($r128) not better than ef 16 ($r16)"
}

@test "glove-100 IVF256,Flat: recall@10 >= 0.93 at nprobe 16, >= 0.97 at nprobe 32" {
	need_gl
	run -0 mv-index gl --type IVF256,Flat
	assert_equal "$(ix_index gl)" IVF256,Flat
	r1=$(measure gl gl_q.fvecs gl_truth.tsv "glove IVF256,Flat" --nprobe 1)
	r16=$(measure gl gl_q.fvecs gl_truth.tsv "glove IVF256,Flat" --nprobe 16)
	r32=$(measure gl gl_q.fvecs gl_truth.tsv "glove IVF256,Flat" --nprobe 32)
	# Measured: nprobe 1 0.50, 16 0.9615, 32 0.9895.
	at_least "$r16" 0.93 || fail "nprobe 16: recall $r16"
	at_least "$r32" 0.97 || fail "nprobe 32: recall $r32"
	below "$r1" "$r16" || fail "nprobe 1 ($r1) not below nprobe 16 ($r16)"
	# Every list probed: the same ids as brute force (cosine distances
	# may differ in the last digit between the two paths).
	mv-search gl -k "$K" --nprobe 256 gl_q.fvecs >all.tsv
	r=$(recall_tsv all.tsv gl_truth.tsv "$K")
	assert_equal "$r" 1.0000
}
