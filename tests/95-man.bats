#!/usr/bin/env bats
# Man pages: every binary has one, they pass mandoc -Tlint, and every
# EXAMPLES entry runs against a real node with the output the page shows.
# Also --help (fits a screen) and --version of every binary.

load helpers/mv

setup() {
	mv_setup
}

teardown() {
	mv_teardown
}

binaries() {
	local d
	for d in "$MV_ROOT"/cmd/mv-*/; do
		basename "$d"
	done
}

@test "every binary has a man page" {
	for b in $(binaries); do
		case $b in
		*d) [ -f "$MV_ROOT/man/$b.8" ] || fail "no man/$b.8" ;;
		*) [ -f "$MV_ROOT/man/$b.1" ] || fail "no man/$b.1" ;;
		esac
	done
}

@test "every man page passes mandoc -Tlint -Wwarning" {
	command -v mandoc >/dev/null || fail "mandoc is not installed"
	run -0 mandoc -Tlint -Wwarning "$MV_ROOT"/man/*
	assert_output ""
}

@test "every section 1 and 8 page lists the exit statuses" {
	for page in "$MV_ROOT"/man/*.[18]; do
		grep -q '^\.Sh EXIT STATUS' "$page" || fail "$page: no EXIT STATUS"
	done
	for page in "$MV_ROOT"/man/mv-*.1; do
		for st in 0 1 64 65 69; do
			sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /p' "$page" | grep -qw "$st" ||
				fail "$page: exit status $st not listed"
		done
	done
}

@test "every binary: --help exits 0 and fits a screen, --version prints the version" {
	for b in $(binaries); do
		run -0 "$b" --help
		[ "${#lines[@]}" -le 24 ] || fail "$b --help: ${#lines[@]} lines"
		run -0 bash -c "$b --help 2>&1 | awk '{ if (length > m) m = length } END { print m + 0 }'"
		[ "$output" -le 80 ] || fail "$b --help: lines of $output columns"
		run -0 "$b" --version
		assert_output --partial "$MV_VERSION"
		case $b in
		# A daemon's flags are its mv.conf keys: an unknown one is bad
		# configuration.
		*d) run -78 "$b" --no_such_key=1 ;;
		*) run -64 "$b" --no-such-option ;;
		esac
	done
}

@test "every EXAMPLES entry of the section 1 pages runs as shown" {
	need_own_node
	bad=
	for page in "$MV_ROOT"/man/*.1; do
		name=$(basename "$page" .1)
		mkdir -p "$BATS_TEST_TMPDIR/$name"
		cd "$BATS_TEST_TMPDIR/$name"
		export MV_HOME=$BATS_TEST_TMPDIR/$name/home
		MV_OWN_NODE=1
		start_node
		if ! python3 "$MV_HELPERS/manex.py" run "$page" >ex.out 2>&1; then
			bad+=$(cat ex.out)$'\n'
		fi
		stop_node
	done
	[ -z "$bad" ] || fail "$bad"
}

@test "the man pages have examples to run" {
	n=0
	for page in "$MV_ROOT"/man/*.1; do
		n=$((n + $(python3 "$MV_HELPERS/manex.py" list "$page" | wc -l)))
	done
	[ "$n" -ge 20 ] || fail "only $n example commands in man/*.1"
}
