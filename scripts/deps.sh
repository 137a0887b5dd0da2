#!/bin/sh
# Install everything mv needs on Debian 12 and build the FAISS pieces that
# Debian does not ship compiled: the C API (libfaiss_c.a) and, where the CPU
# has AVX2, the AVX2 variant of libfaiss.  The FAISS build is cached in
# $MV_DEPS (default /var/cache/mv-deps, or ~/.cache/mv-deps when not root)
# so that it runs once per machine.  Safe to run again: it skips what is done.
set -eu

PKGS="build-essential cmake pkg-config dpkg-dev curl ca-certificates
libfaiss-dev libopenblas-dev libopenblas0-pthread libzstd-dev libjansson-dev
libcurl4-openssl-dev etcd-server etcd-client bats bats-support bats-assert
bats-file socat mandoc zstd netcat-openbsd python3 libssl-dev
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
STAMP="$MV_DEPS/faiss-$FAISS_VER/.done"

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
	say "FAISS $FAISS_VER already built in $MV_DEPS"
	exit 0
fi

src="$MV_DEPS/src"
out="$MV_DEPS/faiss-$FAISS_VER"
mkdir -p "$src" "$out/lib"

if [ ! -d "$src/faiss" ]; then
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
	(cd "$src" && apt-get source --download-only faiss >/dev/null 2>&1 &&
		dpkg-source -x faiss_*.dsc faiss >/dev/null)
fi

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

# The AVX2 build of FAISS itself, where the CPU has AVX2.
if grep -q ' avx2' /proc/cpuinfo && [ ! -f "$out/lib/libfaiss_avx2.a" ]; then
	say "building FAISS $FAISS_VER with AVX2 (a few minutes, once per machine)"
	b="$src/build-avx2"
	mkdir -p "$b"
	(cd "$b" && cmake -S "$src/faiss" -B . -DCMAKE_BUILD_TYPE=Release \
		-DFAISS_OPT_LEVEL=avx2 -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF \
		-DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
		-DBLA_VENDOR=OpenBLAS -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null &&
		make -j"$jobs" faiss_avx2 >/dev/null)
	cp "$b/faiss/libfaiss_avx2.a" "$out/lib/"
fi
touch "$STAMP"
say "FAISS $FAISS_VER ready in $out"
