#!/usr/bin/env bats
# mv-create: options, --if-not-exists, names (bad and reserved), and the
# exit statuses of DESIGN.md.

load helpers/mv

setup_file() {
	setup_file_node
}

teardown_file() {
	stop_node
}

setup() {
	mv_setup
}

@test "mv-create makes an l2 collection by default" {
	run -0 mv-create "$C" --dim 4
	run -0 mv-ls "$C"
	assert_output "$C${T}4${T}l2${T}0${T}0${T}-"
}

@test "mv-create --metric ip and cosine" {
	run -0 mv-create "${C}_ip" --dim 8 --metric ip
	run -0 mv-create "${C}_cos" --dim 100 --metric cosine
	run -0 mv-create "${C}_l2" --dim 1 --metric l2
	run -0 mv-ls "${C}_ip"
	assert_output "${C}_ip${T}8${T}ip${T}0${T}0${T}-"
	run -0 mv-ls "${C}_cos"
	assert_output "${C}_cos${T}100${T}cosine${T}0${T}0${T}-"
	run -0 mv-ls "${C}_l2"
	assert_output "${C}_l2${T}1${T}l2${T}0${T}0${T}-"
}

@test "mv-create --field declares scalar fields in order" {
	run -0 mv-create "$C" --dim 3 --field price:float64 --field tag:string --field n:int64
	run -0 wire <<<"DESCRIBE $C"
	assert_output "OK name=$C dim=3 metric=l2 rows=0 segments=0 index=- fields=price:float64,tag:string,n:int64"
}

@test "mv-create of an existing collection exits 1 and changes nothing" {
	run -0 mv-create "$C" --dim 4 --metric ip
	run -1 --separate-stderr mv-create "$C" --dim 8
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^mv-create: .*$C"
	run -0 mv-ls "$C"
	assert_output "$C${T}4${T}ip${T}0${T}0${T}-"
}

@test "mv-create --if-not-exists succeeds when it exists, and keeps it" {
	run -0 mv-create "$C" --dim 4 --if-not-exists
	run -0 mv-create "$C" --dim 4 --if-not-exists
	run -0 mv-insert "$C" < <(printf '1 2 3 4\n')
	run -0 mv-create "$C" --dim 4 --if-not-exists
	run -0 mv-ls "$C"
	assert_output --regexp "^$C${T}4${T}l2${T}1${T}[1-9][0-9]*${T}-\$"
}

@test "mv-create accepts names of 1 and 64 characters, letters digits underscore" {
	long=$C$(printf '%0*d' $((64 - ${#C})) 0)
	[ "${#long}" -eq 64 ]
	run -0 mv-create "$long" --dim 2
	run -0 mv-create x --dim 2
	run -0 mv-create "A_b9_${C}" --dim 2
	run -0 mv-ls
	assert_line --regexp "^$long${T}2${T}"
	assert_line --regexp "^x${T}2${T}"
	assert_line --regexp "^A_b9_${C}${T}2${T}"
	run -0 mv-drop x
	run -0 mv-drop "$long"
}

@test "mv-create refuses bad names with exit 65" {
	long=a$(printf '%064d' 0)
	mv-ls >before.txt
	for name in 1abc _abc a-b "a b" "a.b" "" "$long" "é" "a/b" "a;b"; do
		run -65 --separate-stderr mv-create "$name" --dim 4
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" '^mv-create: .+'
	done
	mv-ls >after.txt
	diff before.txt after.txt
}

@test "mv-create refuses reserved names with exit 65" {
	for name in config collection_list user_list x_property "${C}_property"; do
		run -65 --separate-stderr mv-create "$name" --dim 4
		assert_equal "${#stderr_lines[@]}" 1
		assert_regex "$stderr" '^mv-create: .+'
	done
	run -0 mv-ls
	refute_match "^(config|collection_list|user_list|[A-Za-z0-9_]*_property)$T"
}

@test "mv-create usage errors exit 64" {
	run -64 --separate-stderr mv-create
	assert_regex "$stderr" 'usage: mv-create'
	run -64 mv-create "$C"
	run -64 mv-create "$C" --dim
	run -64 mv-create "$C" --dim 0
	run -64 mv-create "$C" --dim -3
	run -64 mv-create "$C" --dim abc
	run -64 mv-create "$C" --dim 4 --metric hamming
	run -64 mv-create "$C" --dim 4 --field price
	run -64 mv-create "$C" --dim 4 --field price:blob
	run -64 mv-create "$C" --dim 4 --no-such-option
	run -0 mv-ls
	refute_output --partial "$C"
}

@test "mv-create reaches the node through -a and MV_ADDR too" {
	sock=${MV_TEST_ADDR:-unix:$MV_HOME/mv.sock}
	run -0 env -u MV_HOME mv-create "${C}_a" --dim 2 -a "$sock"
	run -0 env -u MV_HOME MV_ADDR="$sock" mv-create "${C}_e" --dim 2
	run -0 mv-ls "${C}_a"
	run -0 mv-ls "${C}_e"
}

@test "a user name namespaces collections (-u and MV_USER)" {
	run -0 mv-create "$C" --dim 2 -u alice
	run -0 mv-create "$C" --dim 3 -u bob
	run -0 mv-ls -u alice "$C"
	assert_output "$C${T}2${T}l2${T}0${T}0${T}-"
	run -0 env MV_USER=bob mv-ls "$C"
	assert_output "$C${T}3${T}l2${T}0${T}0${T}-"
	run -0 mv-insert -u alice "$C" < <(printf '1 1\n')
	run -0 mv-ls -u bob "$C"
	assert_output "$C${T}3${T}l2${T}0${T}0${T}-"
	run -1 mv-ls "$C"
	# A bad user name: usage (64) or bad name (65); DESIGN.md says neither.
	run mv-create "$C" --dim 2 -u 9bad
	[[ $status == 64 || $status == 65 ]] || fail "mv-create -u 9bad exited $status"
}

@test "mv-create -h and --help exit 0; --version prints the version" {
	run -0 mv-create --help
	assert_output --partial "mv-create"
	run -0 mv-create -h
	run -0 mv-create --version
	assert_output --partial "$MV_VERSION"
}
