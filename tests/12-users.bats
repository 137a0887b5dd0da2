#!/usr/bin/env bats
# Users only namespace data: -u USER (or MV_USER) selects /<user>/...,
# each user sees its own collections, and the namespaces survive a restart.

load helpers/mv

setup() {
	mv_setup
	start_own_node
}

teardown() {
	mv_teardown_own_node
}

@test "the same name under two users is two collections" {
	run -0 mv-create docs --dim 2
	run -0 mv-create -u alice docs --dim 3 --metric ip
	echo "1 2" | mv-insert docs
	printf '1 2 3\n4 5 6\n' | MV_USER=alice mv-insert docs
	run -0 mv-ls
	assert_output "docs${T}2${T}l2${T}1${T}1${T}-"
	run -0 mv-ls -u alice
	assert_output "docs${T}3${T}ip${T}2${T}1${T}-"
	run -0 mv-get -u alice docs --all
	assert_line -n 0 "0${T}1,2,3"
	assert_line -n 1 "1${T}4,5,6"
	run -1 mv-ls -u bob docs
}

@test "users and their collections survive a restart; drop is per user" {
	run -0 mv-create -u alice a --dim 2
	echo "7 8" | mv-insert -u alice a
	restart_node
	run -0 mv-ls -u alice
	assert_output "a${T}2${T}l2${T}1${T}1${T}-"
	run -0 --separate-stderr mv-ls
	assert_output ""
	run -0 mv-drop -u alice a
	run -0 --separate-stderr mv-ls -u alice
	assert_output ""
	run -0 mv-create a --dim 2
}

@test "a bad user name is refused" {
	run -65 mv-ls -u 1bad
	run -65 mv-ls -u user_list
}
