#!/usr/bin/env bats
# 79-s3-tls.bats - S3 over https with a private CA, and temporary
# credentials (issue 7): mv-noded in cluster mode on an etcd of the file's
# own and an RGW of the file's own (scripts/rgw.sh --tls --sts) that
# answers https only, with a certificate from a throw-away CA, and issues
# temporary credentials (STS AssumeRole).  The CA comes from s3_ca_file or
# AWS_CA_BUNDLE (the key wins); without it, or with a CA file missing or
# damaged, the node does not start (78) and says why.  Temporary
# credentials go with AWS_SESSION_TOKEN; another session's token is
# refused (77).

load helpers/mv
load helpers/nodes3

setup_file() {
	etcd_up || return 1
	sh "$MV_ROOT/scripts/rgw.sh" start "$BATS_FILE_TMPDIR/rgw" --tls --sts \
		>"$BATS_FILE_TMPDIR/rgw.env" || return 1
	set -a
	. "$BATS_FILE_TMPDIR/rgw.env"
	set +a
	export MV_TEST_S3_ENDPOINT MV_TEST_S3_BUCKET MV_TEST_S3_CA \
		MV_TEST_S3_ROLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

teardown_file() {
	etcd_down
	sh "$MV_ROOT/scripts/rgw.sh" stop "$BATS_FILE_TMPDIR/rgw"
}

setup() {
	nodes3_setup
	unset AWS_CA_BUNDLE AWS_SESSION_TOKEN
}

teardown() {
	[ -z "${PROXY:-}" ] || tls_proxy_down
	nodes3_teardown
}

# round_trip I [FLAG...]: node I (num_replicas=0) takes a collection of
# 300 rows (one flush: its files go to S3), its searches equal brute
# force; restarted, it reads the segment back from S3 (mv-stat --io) and
# still answers the same.
round_trip() {
	local i=$1 d=$BATS_TEST_TMPDIR
	shift
	node_up "$i" --num_replicas=0 --auto_compact=false "$@" || return 1
	gen vecs 300 16 --seed 7 --ids-first 1 >"$d/rows.txt"
	gen vecs 4 16 --seed 8 >"$d/q.txt"
	gen knn "$d/rows.txt" "$d/q.txt" 5 l2 >"$d/want"
	mv-create -a "${ADDR[$i]}" things --dim 16 || return 1
	mv-insert -q -a "${ADDR[$i]}" --ids-first things "$d/rows.txt" ||
		return 1
	mv-search -a "${ADDR[$i]}" -k 5 things "$d/q.txt" >"$d/got" || return 1
	diff "$d/want" "$d/got" || return 1
	kill "${PID[$i]}"
	wait "${PID[$i]}" || true
	node_up "$i" --num_replicas=0 --auto_compact=false "$@" || return 1
	mv-search -a "${ADDR[$i]}" -k 5 things "$d/q.txt" >"$d/got" || return 1
	diff "$d/want" "$d/got" || return 1
	[ "$(mv-stat -a "${ADDR[$i]}" --io | cut -f6)" -gt 0 ] || {
		echo "the restarted node read nothing from S3" >&2
		return 1
	}
}

# refused I CODE TEXT [FLAG...]: node I does not start; it exits CODE and
# its log says TEXT.
refused() {
	local i=$1 code=$2 text=$3 st=0
	shift 3
	! node_up "$i" "$@" 2>/dev/null || {
		echo "node $i started" >&2
		return 1
	}
	wait "${PID[$i]}" || st=$?
	PID[$i]=
	[ "$st" = "$code" ] || {
		echo "node $i exited $st, not $code: $(tail -n 2 "$BATS_TEST_TMPDIR/n$i.log")" >&2
		return 1
	}
	grep -qF -- "$text" "$BATS_TEST_TMPDIR/n$i.log" || {
		echo "no '$text' in: $(tail -n 2 "$BATS_TEST_TMPDIR/n$i.log")" >&2
		return 1
	}
}

# assume_role [NAME]: temporary credentials from RGW's STS, signed with
# the test user's keys: "ACCESS SECRET TOKEN".
assume_role() {
	curl -sSf --cacert "$MV_TEST_S3_CA" --aws-sigv4 "aws:amz:us-east-1:sts" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		--data "Action=AssumeRole&DurationSeconds=3600&RoleArn=$MV_TEST_S3_ROLE&RoleSessionName=${1:-mv}&Version=2011-06-15" \
		"$MV_TEST_S3_ENDPOINT/" | python3 -c 'import re, sys
x = sys.stdin.read()
print(" ".join(re.search("<%s>([^<]+)</%s>" % (t, t), x).group(1)
               for t in ("AccessKeyId", "SecretAccessKey", "SessionToken")))'
}

@test "https with s3_ca_file: insert, flush and an exact search through a cluster node; restarted, it reads the segment back over https" {
	[[ $MV_TEST_S3_ENDPOINT == https://* ]]
	round_trip 1 --s3_ca_file="$MV_TEST_S3_CA"
}

@test "https with AWS_CA_BUNDLE: the same; s3_ca_file wins over it" {
	local d=$BATS_TEST_TMPDIR
	AWS_CA_BUNDLE=$MV_TEST_S3_CA round_trip 1
	# Node 1 gone, node 2 loads the segment from S3.
	kill "${PID[1]}"
	wait "${PID[1]}" || true
	AWS_CA_BUNDLE=$d/missing.pem node_up 2 --num_replicas=0 \
		--s3_ca_file="$MV_TEST_S3_CA"
	run -0 mv-search -a "${ADDR[2]}" -k 5 things "$d/q.txt"
	diff "$d/want" <(echo "$output")
}

@test "https without the private CA, or with another CA: the node does not start (78) and names the certificate problem" {
	refused 1 78 "its TLS certificate does not verify with the system's CAs"
	grep -qF "unable to get local issuer certificate" "$BATS_TEST_TMPDIR/n1.log"
	# The system's CAs alone (not the private one), as the only CAs.
	refused 2 78 "does not verify with the CAs of s3_ca_file '/etc/ssl/certs/ca-certificates.crt'" \
		--s3_ca_file=/etc/ssl/certs/ca-certificates.crt
	AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
		refused 3 78 "with the CAs of AWS_CA_BUNDLE '/etc/ssl/certs/ca-certificates.crt'"
}

@test "a CA file missing, not PEM or damaged: the node does not start (78) naming the file; s3_ca_file needs https" {
	local d=$BATS_TEST_TMPDIR
	refused 1 78 "s3_ca_file '$d/nope.pem': No such file or directory" \
		--s3_ca_file="$d/nope.pem"
	AWS_CA_BUNDLE=$d/nope.pem \
		refused 1 78 "AWS_CA_BUNDLE '$d/nope.pem': No such file or directory"
	echo "not a certificate" >"$d/text.pem"
	refused 2 78 "s3_ca_file '$d/text.pem': no PEM certificate in it" \
		--s3_ca_file="$d/text.pem"
	# The CA's certificate with one base64 character changed, after a
	# good certificate.
	cp /etc/ssl/certs/ca-certificates.crt "$d/bad.pem"
	sed '3s/^./%/' "$MV_TEST_S3_CA" >>"$d/bad.pem"
	refused 3 78 "s3_ca_file '$d/bad.pem': certificate $(($(grep -c BEGIN /etc/ssl/certs/ca-certificates.crt) + 1)) is damaged" \
		--s3_ca_file="$d/bad.pem"
	MV_TEST_S3_ENDPOINT=${MV_TEST_S3_ENDPOINT/https/http} \
		refused 1 78 "'s3_ca_file' needs an https:// s3_endpoint" \
		--s3_ca_file="$MV_TEST_S3_CA"
}

@test "temporary credentials (RGW's STS): insert, flush and an exact search with AWS_SESSION_TOKEN; another session's token, or none, is refused (77)" {
	local ak sk tk other
	read -r ak sk tk < <(assume_role one)
	read -r _ _ other < <(assume_role two)
	[ -n "$tk" ] && [ -n "$other" ] || fail "no credentials from STS"
	AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_SESSION_TOKEN=$tk \
		round_trip 1 --s3_ca_file="$MV_TEST_S3_CA"
	AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_SESSION_TOKEN=$other \
		refused 2 77 "HTTP 403 AccessDenied" --s3_ca_file="$MV_TEST_S3_CA"
	AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk \
		refused 3 77 "HTTP 403 AccessDenied" --s3_ca_file="$MV_TEST_S3_CA"
}

# tls_proxy_up PORT [CERT KEY]: on PORT, a plain TCP proxy to RGW (the
# node sees RGW's own certificate), or with CERT and KEY a TLS server of
# its own that passes the decrypted bytes on to RGW; its pid in PROXY
# (setsid: socat and its children in a group that tls_proxy_down stops).
tls_proxy_up() {
	local rgw=${MV_TEST_S3_ENDPOINT#https://} listen
	listen="TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr"
	[ $# -lt 3 ] ||
		listen="OPENSSL-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr,cert=$2,key=$3,verify=0"
	if [ $# -lt 3 ]; then
		setsid socat "$listen" "TCP:$rgw" &
	else
		setsid socat "$listen" "OPENSSL:$rgw,cafile=$MV_TEST_S3_CA" &
	fi
	PROXY=$!
	wait_tcp "127.0.0.1:$1"
}

tls_proxy_down() {
	kill -- -"$PROXY" 2>/dev/null
	wait "$PROXY" 2>/dev/null || true
	PROXY=
}

# wait_tcp HOST:PORT: until something accepts there (5 s at most).
wait_tcp() {
	local t=100
	until socat -u OPEN:/dev/null "TCP:$1" 2>/dev/null; do
		t=$((t - 1))
		[ $t -gt 0 ] || return 1
		sleep 0.05
	done
}

@test "a certificate that stops verifying after the node started: a write exits 78 (ERR CONFIG) naming it, nothing committed; the right one back, writes go on" {
	local d=$BATS_TEST_TMPDIR p
	p=$(free_ports 1)
	tls_proxy_up "$p"
	MV_TEST_S3_ENDPOINT=https://127.0.0.1:$p node_up 1 --num_replicas=0 \
		--s3_ca_file="$MV_TEST_S3_CA"
	run -0 mv-create -a "${ADDR[1]}" things --dim 4
	echo '1 1 1 1 1' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	# Another server on the same port, with a certificate of its own.
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$d/k.pem" \
		-out "$d/c.pem" 2>/dev/null
	tls_proxy_down
	tls_proxy_up "$p" "$d/c.pem" "$d/k.pem"
	run -78 --separate-stderr mv-insert -a "${ADDR[1]}" --ids-first \
		things <<<'2 2 2 2 2'
	assert_regex "$stderr" "^mv-insert: .*s3 endpoint 'https://127.0.0.1:$p': its TLS certificate does not verify with the CAs of s3_ca_file"
	run -0 mv-get -a "${ADDR[1]}" --all things
	assert_output "1${T}1,1,1,1"
	tls_proxy_down
	tls_proxy_up "$p"
	echo '3 3 3 3 3' | mv-insert -q -a "${ADDR[1]}" --ids-first things
	run -0 mv-get -a "${ADDR[1]}" --all things
	assert_output "1${T}1,1,1,1
3${T}3,3,3,3"
	tls_proxy_down
}

@test "an https endpoint that answers in plain http: the node does not start (78) and says so, at once" {
	local t0 p
	p=$(free_ports 1)
	setsid python3 -m http.server --bind 127.0.0.1 "$p" >/dev/null 2>&1 &
	PROXY=$!
	wait_tcp "127.0.0.1:$p"
	t0=$SECONDS
	MV_TEST_S3_ENDPOINT=https://127.0.0.1:$p \
		refused 1 78 "s3 endpoint 'https://127.0.0.1:$p' does not answer TLS"
	grep -qF "wrong version number" "$BATS_TEST_TMPDIR/n1.log"
	[ $((SECONDS - t0)) -lt 5 ] || fail "took $((SECONDS - t0)) s: retried"
}
