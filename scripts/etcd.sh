#!/bin/sh
# etcd.sh - a throw-away one-member etcd for tests.
#
#   sh scripts/etcd.sh start DIR   start etcd on free loopback ports with its
#                                  data, log and pid in DIR, wait until it is
#                                  healthy (at most ~10 s) and print
#                                  MV_TEST_ETCD=http://127.0.0.1:PORT
#   sh scripts/etcd.sh stop DIR    stop it and wait until it is gone
#
# start on a DIR whose etcd was stopped starts it again, with its data, on
# the same ports (the same URL), as a server coming back would.
#
# Quiet on success but for that line; on failure the end of DIR/etcd.log
# goes to stderr and the exit status is 1.  A short heartbeat makes etcd's
# smallest lease ttl 1 s (it is 15 heartbeats, rounded up to whole seconds),
# so that tests of lease expiry are quick.
set -u

die() {
	echo "etcd.sh: $*" >&2
	exit 1
}

# Two free loopback ports (bound to port 0, then released).
free_ports() {
	python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# 0 while process $1 exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

start() {
	dir=$1
	mkdir -p "$dir" || die "cannot create '$dir'"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/etcd.pid" ] && alive "$(cat "$dir/etcd.pid")"; then
		cat "$dir/etcd.env"
		return 0
	fi
	command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server)"
	again=
	[ -s "$dir/etcd.ports" ] && [ -d "$dir/data" ] && again=1
	for try in 1 2 3; do
		if [ -n "$again" ]; then
			set -- $(cat "$dir/etcd.ports")
		else
			ports=$(free_ports) || die "cannot find free ports"
			set -- $ports
			rm -rf "$dir/data"
		fi
		url=http://127.0.0.1:$1
		peer=http://127.0.0.1:$2
		nohup etcd --name default \
			--data-dir "$dir/data" \
			--listen-client-urls "$url" --advertise-client-urls "$url" \
			--listen-peer-urls "$peer" \
			--initial-advertise-peer-urls "$peer" \
			--initial-cluster "default=$peer" \
			--heartbeat-interval 50 --election-timeout 500 \
			--logger zap --log-outputs stderr --log-level warn \
			</dev/null >>"$dir/etcd.log" 2>&1 &
		pid=$!
		echo "$pid" >"$dir/etcd.pid"
		i=0
		while [ $i -lt 100 ] && alive "$pid"; do
			if curl -sf -m 1 "$url/health" 2>/dev/null |
				grep -q '"health":"true"'; then
				echo "MV_TEST_ETCD=$url" >"$dir/etcd.env"
				echo "$1 $2" >"$dir/etcd.ports"
				cat "$dir/etcd.env"
				return 0
			fi
			sleep 0.1
			i=$((i + 1))
		done
		# Lost a race for a port, or too slow: stop it and try again.
		kill "$pid" 2>/dev/null
		stop_pid "$pid"
		[ -z "$again" ] || break	# its ports are its URL
	done
	tail -n 20 "$dir/etcd.log" >&2
	rm -f "$dir/etcd.pid"
	die "etcd did not become healthy (log: $dir/etcd.log)"
}

# Stop process $1: TERM, up to 5 s, then KILL.
stop_pid() {
	kill "$1" 2>/dev/null
	i=0
	while alive "$1" && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if alive "$1"; then
		kill -9 "$1" 2>/dev/null
		sleep 0.1
	fi
}

stop() {
	[ -f "$1/etcd.pid" ] || return 0
	stop_pid "$(cat "$1/etcd.pid")"
	rm -f "$1/etcd.pid" "$1/etcd.env"	# etcd.ports and data stay
}

[ $# -eq 2 ] || die "usage: etcd.sh start|stop DIR"
case $1 in
start) start "$2" ;;
stop) stop "$2" ;;
*) die "usage: etcd.sh start|stop DIR" ;;
esac
