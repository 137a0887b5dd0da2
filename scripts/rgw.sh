#!/bin/sh
# A throw-away S3 for tests: Ceph's RGW on a one-node Ceph whose OSD keeps
# its data in memory (memstore), all state under DIR, loopback only.
#
#   sh scripts/rgw.sh start DIR [--tls] [--sts]
#                                 prints MV_TEST_S3_ENDPOINT=..., _BUCKET,
#                                 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#   sh scripts/rgw.sh stop DIR    stops rgw, osd, then mon; removes DIR's data
#   sh scripts/rgw.sh pause DIR   stops radosgw alone: S3 is away, its data
#                                 kept by the OSD
#   sh scripts/rgw.sh resume DIR  starts radosgw again, on the same port, and
#                                 waits until it answers
#
# --tls: RGW answers https only, with a server certificate for 127.0.0.1
# from a throw-away CA made here with openssl (DIR/tls, kept until stop);
# start also prints MV_TEST_S3_CA=DIR/tls/ca.pem, the CA's certificate.
# --sts: RGW's STS is on, with a role the test user may assume (AssumeRole
# signed for service "sts") that may do anything in S3; start also prints
# MV_TEST_S3_ROLE=arn:aws:iam:::role/NAME.
#
# Needs radosgw ceph-mon ceph-osd (and openssl for --tls: scripts/deps.sh)
# and root or a user that may run them.  Every wait is bounded; start takes about 7 s here.  A failed
# start prints the daemons' log tails and exits 75 after stopping them.
# RGW frees deleted objects at once (rgw gc settings): a full memstore OSD
# makes every write hang, and by default RGW keeps deleted data 2 hours.
set -eu

KEY=MVTESTACCESSKEY00001
STS_KEY=mvtestststkey001	# RGW's key of its tokens: 16 bytes
ROLE=mvtest
SECRET=mvtestsecretkey000000000000000000000001
BUCKET=mv-test
MEMSTORE_BYTES=$((1024 << 20))	# a cap; RAM holds only what is stored

say() { printf 'rgw.sh: %s\n' "$*" >&2; }

usage() {
	echo "usage: sh scripts/rgw.sh start DIR [--tls] [--sts] | stop DIR |" \
		"pause DIR | resume DIR" >&2
	exit 64
}

# Two free loopback ports, one python without site imports (fast).
free_ports() {
	python3 -S -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0))
b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# 0 if PID is a live (not zombie) process whose command line names $2.
alive() {
	[ -r "/proc/$1/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "$2"
}

# stop_one DIR NAME: TERM, wait up to 10 s, then KILL.
stop_one() {
	pf="$1/run/$2.pid"
	[ -f "$pf" ] || return 0
	pid=$(cat "$pf")
	if alive "$pid" "$2"; then
		kill "$pid" 2>/dev/null || true
		i=0
		while alive "$pid" "$2" && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if alive "$pid" "$2"; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pf"
}

stop() {
	d=$1
	stop_one "$d" radosgw
	stop_one "$d" ceph-osd
	stop_one "$d" ceph-mon
	rm -rf "$d/mon" "$d/osd" "$d/rgw" "$d/tls"
}

# make_certs DIR: DIR/ca.pem, a CA's certificate (valid 2 days), and
# DIR/server.pem, DIR/server.key, a server certificate it signed for IP
# 127.0.0.1 (the name mv's URL holds).  EC P-256 keys: fast to make.
make_certs() {
	t=$1
	log=$DIR/log/openssl.out
	mkdir -p "$t"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
		-subj "/CN=mv test CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >>"$log" 2>&1 ||
		return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$t/server.key" -out "$t/server.csr" \
		-subj "/CN=127.0.0.1" >>"$log" 2>&1 || return 1
	printf '%s\n' "subjectAltName=IP:127.0.0.1" \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" >"$t/server.ext"
	openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" \
		-CAkey "$t/ca.key" -CAcreateserial -days 2 \
		-extfile "$t/server.ext" -out "$t/server.pem" >>"$log" 2>&1
}

fail() {
	say "$*"
	for l in "$DIR"/log/*.log; do
		[ -f "$l" ] || continue
		echo "--- $l" >&2
		tail -n 15 "$l" >&2
	done
	stop "$DIR"
	exit 75
}

# Run "$@" in the background as daemon NAME, pid in DIR/run/NAME.pid.
daemon() {
	name=$1
	shift
	"$@" >>"$DIR/log/$name.out" 2>&1 &
	echo $! >"$DIR/run/$name.pid"
}

# Start radosgw (DIR/ceph.conf) and wait until it answers on $url.
rgw_up() {
	daemon radosgw radosgw -c "$DIR/ceph.conf" -n client.rgw.a -f
	i=0
	# shellcheck disable=SC2086
	until curl -s -o /dev/null --max-time 1 $cacert "$url/"; do
		alive "$(cat "$DIR/run/radosgw.pid")" radosgw ||
			fail "radosgw exited"
		i=$((i + 1))
		[ $i -lt 300 ] || fail "radosgw does not answer on $url"
		sleep 0.1
	done
}

start() {
	need="ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool curl"
	need="$need python3${TLS:+ openssl}"
	for b in $need; do
		command -v "$b" >/dev/null ||
			{ say "'$b' missing: run sh scripts/deps.sh"; exit 69; }
	done
	[ -f "$DIR/run/ceph-mon.pid" ] && stop "$DIR"
	mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/crash"
	DIR=$(cd "$DIR" && pwd)
	ports=$(free_ports)
	monport=${ports% *} port=${ports#* }
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osduuid=$(cat /proc/sys/kernel/random/uuid)
	front="endpoint=127.0.0.1:$port"
	url="http://127.0.0.1:$port"
	cacert=
	if [ -n "$TLS" ]; then
		make_certs "$DIR/tls" || fail "openssl could not make the certificates"
		front="ssl_endpoint=127.0.0.1:$port"
		front="$front ssl_certificate=$DIR/tls/server.pem"
		front="$front ssl_private_key=$DIR/tls/server.key"
		url="https://127.0.0.1:$port"
		cacert="--cacert $DIR/tls/ca.pem"
	fi
	conf="$DIR/ceph.conf"
	cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$monport
mon initial members = a
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
pid file =
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
[mon]
public addr = v2:127.0.0.1:$monport
mon data = $DIR/mon/\$name
mon data avail crit = 0
mon warn on pool no redundancy = false
paxos propose interval = 0.1
[osd]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd data = $DIR/osd/\$name
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
[client.rgw.a]
ms mon client mode = crc
rgw data = $DIR/rgw/\$name
rgw frontends = beast $front tcp_nodelay=1
rgw gc obj min wait = 0
rgw gc processor period = 2
EOF
	if [ -n "$STS" ]; then
		printf '%s\n' "rgw sts key = $STS_KEY" \
			"rgw s3 auth use sts = true" >>"$conf"
	fi
	ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. \
		--cap mon 'allow *' >/dev/null 2>&1 || fail "ceph-authtool failed"
	ceph-mon -c "$conf" -i a --mkfs --keyring "$DIR/keyring" \
		>>"$DIR/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
	daemon ceph-mon ceph-mon -c "$conf" -i a -f
	id=$(timeout 30 ceph -c "$conf" --connect-timeout 20 osd new "$osduuid" \
		2>>"$DIR/log/ceph.out") || fail "ceph osd new failed"
	mkdir -p "$DIR/osd/osd.$id"
	ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$osduuid" \
		>>"$DIR/log/mkfs.out" 2>&1 || fail "ceph-osd --mkfs failed"
	daemon ceph-osd ceph-osd -c "$conf" -i "$id" -f
	timeout 60 radosgw-admin -c "$conf" user create --uid=test \
		--display-name=test --access-key=$KEY --secret-key=$SECRET \
		>>"$DIR/log/admin.out" 2>&1 || fail "radosgw-admin user create failed"
	if [ -n "$STS" ]; then
		timeout 60 radosgw-admin -c "$conf" role create \
			--role-name=$ROLE --path=/ --assume-role-policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/test"]},"Action":["sts:AssumeRole"]}]}' \
			>>"$DIR/log/admin.out" 2>&1 ||
			fail "radosgw-admin role create failed"
		timeout 60 radosgw-admin -c "$conf" role-policy put \
			--role-name=$ROLE --policy-name=all --policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":"arn:aws:s3:::*"}]}' \
			>>"$DIR/log/admin.out" 2>&1 ||
			fail "radosgw-admin role-policy put failed"
	fi
	echo "$url $cacert" >"$DIR/run/url"
	rgw_up
	# shellcheck disable=SC2086
	code=$(curl -s -o "$DIR/log/bucket.out" -w '%{http_code}' --max-time 10 $cacert \
		-X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$url/$BUCKET") || code=000
	[ "$code" = 200 ] || fail "create bucket '$BUCKET': HTTP $code"
	echo "MV_TEST_S3_ENDPOINT=$url"
	echo "MV_TEST_S3_BUCKET=$BUCKET"
	echo "AWS_ACCESS_KEY_ID=$KEY"
	echo "AWS_SECRET_ACCESS_KEY=$SECRET"
	[ -z "$TLS" ] || echo "MV_TEST_S3_CA=$DIR/tls/ca.pem"
	[ -z "$STS" ] || echo "MV_TEST_S3_ROLE=arn:aws:iam:::role/$ROLE"
}

[ $# -ge 2 ] || usage
cmd=$1 DIR=$2
shift 2
TLS=''
STS=''
for o in "$@"; do
	case $cmd/$o in
	start/--tls) TLS=1 ;;
	start/--sts) STS=1 ;;
	*) usage ;;
	esac
done
case $cmd in
start) start ;;
stop) stop "$DIR" ;;
pause) stop_one "$DIR" radosgw ;;
resume)
	[ -f "$DIR/run/url" ] || { say "no rgw.sh start in '$DIR'"; exit 64; }
	read -r url cacert <"$DIR/run/url"
	rgw_up
	;;
*) usage ;;
esac
