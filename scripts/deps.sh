#!/bin/sh
# Install everything mv needs on Debian 12 and build FAISS from Debian's
# source with mv's own patches (scripts/faiss-patches/*.patch, applied in
# name order with patch -p1; each says why): the C API (libfaiss_c.a), which
# Debian does not ship compiled, and libfaiss itself, the AVX2 variant where
# the CPU has AVX2, else a generic one (never Debian's prebuilt libfaiss.a,
# which lacks the patches).  The build is cached in $MV_DEPS (default
# /var/cache/mv-deps, or ~/.cache/mv-deps when not root) so that it runs once
# per machine; its stamp names the patch set's checksum, so a cache built
# with other patches (or none) is rebuilt from clean source.  The Makefile
# compiles with -DMV_FAISS_PATCHED only when that stamp matches its own
# patches.  Safe to run again: it skips what is done.
set -eu

PKGS="build-essential cmake pkg-config dpkg-dev curl ca-certificates
libfaiss-dev libopenblas-dev libopenblas0-pthread libzstd-dev libjansson-dev
libcurl4-openssl-dev openssl etcd-server etcd-client bats bats-support bats-assert
bats-file socat mandoc zstd netcat-openbsd python3 libssl-dev patch faketime
parallel
python3-hnswlib
clang-14 libclang-rt-14-dev libfuzzer-14-dev
radosgw ceph-mon ceph-osd"

if [ "$(id -u)" = 0 ]; then
	: "${MV_DEPS:=/var/cache/mv-deps}"
	SUDO=
else
	: "${MV_DEPS:=$HOME/.cache/mv-deps}"
	SUDO=sudo
fi
FAISS_VER=1.7.3
PATCHES="$(cd "$(dirname "$0")" && pwd)/faiss-patches"
# Keep in step with FAISS_PATCHSUM in the Makefile.
PATCHSUM=$(cat "$PATCHES"/*.patch | sha256sum | cut -c1-12)
STAMP="$MV_DEPS/faiss-$FAISS_VER/.done-$PATCHSUM"

say() { printf 'deps: %s\n' "$*" >&2; }

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing Debian packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

if [ -f "$STAMP" ]; then
	say "FAISS $FAISS_VER (patches $PATCHSUM) already built in $MV_DEPS"
	exit 0
fi

src="$MV_DEPS/src"
out="$MV_DEPS/faiss-$FAISS_VER"
if [ -d "$src/faiss" ] || [ -d "$out" ]; then
	# Built before with another patch set, or none: start from clean
	# source (keeping the downloaded source package) and build it all.
	say "FAISS in $MV_DEPS lacks patch set $PATCHSUM: rebuilding it"
	rm -rf "$src/faiss" "$src"/build-* "$out"
fi
mkdir -p "$src" "$out/lib"

if ! ls "$src"/faiss_*.dsc >/dev/null 2>&1; then
	if ! ls /etc/apt/sources.list.d/*deb-src* >/dev/null 2>&1; then
		say "adding a deb-src entry for bookworm main"
		$SUDO sh -c 'cat > /etc/apt/sources.list.d/mv-deb-src.sources' <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		$SUDO apt-get update -q >/dev/null
	fi
	say "fetching Debian's faiss source package"
	(cd "$src" && apt-get source --download-only faiss >/dev/null 2>&1)
fi
(cd "$src" && dpkg-source -x faiss_*.dsc faiss >/dev/null)
for p in "$PATCHES"/*.patch; do
	say "applying $(basename "$p")"
	patch -p1 -s -N -d "$src/faiss" <"$p"
done

jobs=$(nproc 2>/dev/null || echo 2)

# The C API, compiled against the very headers of the source tree.
if [ ! -f "$out/lib/libfaiss_c.a" ]; then
	say "building the FAISS C API"
	b="$src/build-capi"
	rm -rf "$b" && mkdir -p "$b"
	for f in "$src"/faiss/c_api/*.cpp "$src"/faiss/c_api/impl/*.cpp "$src"/faiss/c_api/utils/*.cpp; do
		[ -f "$f" ] || continue
		o="$b/$(echo "${f#"$src"/faiss/c_api/}" | tr / _).o"
		echo "g++ -O2 -fPIC -std=c++11 -DNDEBUG -I$src/faiss -I$src/faiss/c_api -c $f -o $o"
	done | xargs -P "$jobs" -I{} sh -c '{}'
	ar rcs "$out/lib/libfaiss_c.a" "$b"/*.o
	mkdir -p "$out/include/faiss"
	(cd "$src/faiss/c_api" && find . -name '*.h' | while read -r h; do
		mkdir -p "$out/include/faiss/c_api/$(dirname "$h")"
		cp "$h" "$out/include/faiss/c_api/$h"
	done)
fi

# FAISS itself, patched: the AVX2 build where the CPU has AVX2, else a
# generic one (the Makefile links libfaiss_avx2.a when it is there, else
# libfaiss.a, found here before Debian's).
if grep -q ' avx2' /proc/cpuinfo; then
	opt=avx2 target=faiss_avx2
else
	opt=generic target=faiss
fi
if [ ! -f "$out/lib/lib$target.a" ]; then
	say "building FAISS $FAISS_VER ($opt) (a few minutes, once per machine)"
	b="$src/build-$opt"
	mkdir -p "$b"
	(cd "$b" && cmake -S "$src/faiss" -B . -DCMAKE_BUILD_TYPE=Release \
		-DFAISS_OPT_LEVEL=$opt -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF \
		-DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
		-DBLA_VENDOR=OpenBLAS -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null &&
		make -j"$jobs" $target >/dev/null)
	cp "$b/faiss/lib$target.a" "$out/lib/"
fi
# The C++ headers of the very tree built, ahead of Debian's in the include
# path, so that mv compiles against what it links.
(cd "$src/faiss" && find faiss -name '*.h' | while read -r h; do
	mkdir -p "$out/include/$(dirname "$h")"
	cp "$h" "$out/include/$h"
done)
touch "$STAMP"
say "FAISS $FAISS_VER (patches $PATCHSUM) ready in $out"
