# tests/helpers/cluster_user.bash - the hooks of a bats file whose tests
# each run a cluster user on the file's own etcd (helpers/cluster.bash):
# load it after helpers/mv and helpers/cluster; a file that needs more in
# a hook defines that hook after the load.

setup_file() {
	cluster_setup_file
}

teardown_file() {
	cluster_teardown_file
}

setup() {
	cluster_user_setup
}

teardown() {
	cluster_teardown
}
