#!/usr/bin/python3
"""s3uploads.py - multipart uploads on the test's S3 (RGW), for tests that
check what a node leaves in the bucket.  SigV4 with the standard library.

  s3uploads.py list PREFIX    the keys of the uploads under PREFIX, one a line
  s3uploads.py start KEY      begin an upload of KEY and send one 5 MiB part
                              (as a node killed mid-stream leaves it)
  s3uploads.py abort PREFIX   abort every upload under PREFIX

Endpoint, bucket and keys: MV_TEST_S3_ENDPOINT, MV_TEST_S3_BUCKET,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (region us-east-1).
"""
import datetime
import hashlib
import hmac
import os
import re
import sys
import urllib.parse
import urllib.request

EP = os.environ["MV_TEST_S3_ENDPOINT"].rstrip("/")
BUCKET = os.environ["MV_TEST_S3_BUCKET"]
AK = os.environ["AWS_ACCESS_KEY_ID"]
SK = os.environ["AWS_SECRET_ACCESS_KEY"]
REGION = "us-east-1"


def q(s):
    return urllib.parse.quote(s, safe="-_.~")


def call(method, key, query, body=b""):
    """One signed request; the answer's body (raises on a non-2xx)."""
    host = urllib.parse.urlsplit(EP).netloc
    path = "/" + BUCKET + ("/" + urllib.parse.quote(key, safe="/-_.~")
                           if key else "")
    cq = "&".join(q(k) + "=" + q(v) for k, v in sorted(query.items()))
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    ph = hashlib.sha256(body).hexdigest()
    hdr = {"host": host, "x-amz-content-sha256": ph, "x-amz-date": amz}
    names = ";".join(sorted(hdr))
    creq = "\n".join([method, path, cq] +
                     [k + ":" + hdr[k] for k in sorted(hdr)] +
                     ["", names, ph])
    scope = "/".join([day, REGION, "s3", "aws4_request"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + SK).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    hdr["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, "
                            "SignedHeaders=%s, Signature=%s" %
                            (AK, scope, names, sig))
    del hdr["host"]
    req = urllib.request.Request(EP + path + ("?" + cq if cq else ""),
                                 data=body if method in ("PUT", "POST")
                                 else None, method=method, headers=hdr)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def uploads(prefix):
    body = call("GET", None, {"uploads": "", "prefix": prefix})
    return re.findall(r"<Upload>.*?<Key>(.*?)</Key>.*?"
                      r"<UploadId>(.*?)</UploadId>", body, re.S)


def main():
    cmd, arg = sys.argv[1], sys.argv[2]
    if cmd == "list":
        for key, _ in uploads(arg):
            print(key)
    elif cmd == "start":
        body = call("POST", arg, {"uploads": ""})
        uid = re.search(r"<UploadId>(.*?)</UploadId>", body).group(1)
        call("PUT", arg, {"partNumber": "1", "uploadId": uid},
             b"\1" * (5 << 20))
    elif cmd == "abort":
        for key, uid in uploads(arg):
            call("DELETE", key, {"uploadId": uid})
    else:
        sys.exit("usage: s3uploads.py list|start|abort ARG")


main()
