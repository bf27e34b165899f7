#!/usr/bin/python3
"""Differential test: libdsc's SigV4 signer against botocore's S3SigV4Auth.

Generates requests with awkward keys, query strings and hosts from a fixed
seed, signs each with botocore and with libdsc (through the sigv4_sign test
tool), and requires byte-identical Authorization headers.

Run with Debian's /usr/bin/python3, which has python3-botocore (1.29); other
interpreters on PATH may lack it. The tool is looked up at
$BUILD/tests/tools/sigv4_sign (BUILD defaults to "build") under the
repository root.
"""
import datetime
import os
import random
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials

SEED = 20240601
COUNT = 400
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / os.environ.get("BUILD", "build") / "tests" / "tools" / "sigv4_sign"

# (scheme, host as written in the endpoint URL, port or None). Default ports
# written explicitly must vanish from the Host header; upper case must be
# folded (libdsc lowercases the endpoint host, botocore the URL's).
ENDPOINTS = [
    ("https", "s3.amazonaws.com", None),
    ("https", "s3.eu-west-1.amazonaws.com", None),
    ("https", "s3.ap-southeast-2.amazonaws.com", 443),
    ("http", "minio.test", 80),
    ("https", "storage.example.com", 8443),
    ("http", "S3.Example.COM", 9000),
    ("http", "localhost", 9000),
    ("http", "127.0.0.1", 4566),
    ("http", "[::1]", 9000),
]
DNS_BUCKETS = ["examplebucket", "my-data-01", "dsc-test", "a1b", "x" * 63]
PATH_BUCKETS = DNS_BUCKETS + ["bucket.with.dots", "Legacy_Bucket"]

AWKWARD_ASCII = " +%=&?#~!*()':@,;$[]{}^`|\\\"<>-_."
UNICODE = ["é", "ü", "ß", "Ω", "日本語", "数据集", "데이터", "😀", "🧪",
           "👩‍🔬", "\u00a0", "\u2028", "\ufeff", "\U0010fffd"]
WORD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
B64 = WORD + "+/"


def uri_encode(text, keep_slash):
    """libdsc's dsc_uri_encode: every UTF-8 byte outside A-Za-z0-9-_.~
    (and '/' for paths) as upper-case %XX."""
    safe = set(b"-_.~" + WORD.encode() + (b"/" if keep_slash else b""))
    return "".join(chr(b) if b in safe else "%%%02X" % b
                   for b in text.encode("utf-8"))


def awkward_text(rng, max_pieces):
    parts = []
    for _ in range(rng.randint(1, max_pieces)):
        roll = rng.random()
        if roll < 0.4:
            parts.append("".join(rng.choice(WORD)
                                 for _ in range(rng.randint(1, 8))))
        elif roll < 0.7:
            parts.append(rng.choice(AWKWARD_ASCII) * rng.randint(1, 2))
        else:
            parts.append(rng.choice(UNICODE))
    return "".join(parts)


def truncate_utf8(text, limit):
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")


def make_key(rng):
    segments = [awkward_text(rng, 5) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.1:
        segments.insert(rng.randrange(len(segments) + 1),
                        rng.choice([".", "..", ""]))
    key = "/".join(segments)
    if rng.random() < 0.2:
        key = key.replace("/", "/" * rng.randint(2, 3), 1) or "a//b"
    if rng.random() < 0.15:
        key = "/" + key
    if rng.random() < 0.15:
        key += "/"
    if rng.random() < 0.06:
        # S3's limit is 1024 bytes of UTF-8.
        while len(key.encode("utf-8")) < 1024:
            key += "/" + awkward_text(rng, 8)
        key = truncate_utf8(key, rng.randint(900, 1024))
    return key


def token(rng, low, high):
    body = "".join(rng.choice(B64) for _ in range(rng.randint(low, high)))
    return body + "=" * rng.randint(0, 2)


def make_query(rng, listing):
    q = []
    if listing:
        if rng.random() < 0.8:
            q.append(("list-type", "2"))
        if rng.random() < 0.7:
            q.append(("prefix", make_key(rng) if rng.random() < 0.8 else ""))
        if rng.random() < 0.5:
            q.append(("delimiter", rng.choice(["/", "", "%", "+", " "])))
        if rng.random() < 0.4:
            q.append(("continuation-token", token(rng, 8, 120)))
        if rng.random() < 0.4:
            q.append(("max-keys", str(rng.choice([0, 1, 2, 1000, 999999]))))
        if rng.random() < 0.2:
            q.append(("start-after", make_key(rng)))
        if rng.random() < 0.2:
            q.append(("encoding-type", "url"))
    elif rng.random() < 0.3:
        q.append(rng.choice([
            ("versionId", token(rng, 10, 40)),
            ("partNumber", str(rng.randint(1, 10000))),
            ("response-content-disposition",
             'attachment; filename="%s"' % awkward_text(rng, 3)),
            ("response-content-type", "text/plain; charset=utf-8"),
        ]))
    if rng.random() < 0.2:
        q.append((rng.choice(["versions", "acl", "tagging", "uploads"]), ""))
    if rng.random() < 0.2:
        # Repeated names: ordered by encoded value.
        name = rng.choice(["x-dup", awkward_text(rng, 2)])
        for _ in range(rng.randint(2, 4)):
            q.append((name, rng.choice(["", "a", "B", "/", "+", ".", "~",
                                        awkward_text(rng, 2)])))
    if rng.random() < 0.15:
        name = make_key(rng) if rng.random() < 0.5 else awkward_text(rng, 3)
        q.append((name, awkward_text(rng, 3)))
    rng.shuffle(q)
    return q


def random_date(rng):
    start = datetime.datetime(2001, 1, 1)
    span = int((datetime.datetime(2037, 12, 31) - start).total_seconds())
    return start + datetime.timedelta(seconds=rng.randrange(span))


def random_credentials(rng):
    if rng.random() < 0.2:
        return "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    ak = rng.choice(["AKIA", "ASIA"]) + "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    return ak, "".join(rng.choice(B64) for _ in range(40))


def header_case(rng, name):
    return rng.choice([name, name.upper(), "-".join(
        w.capitalize() for w in name.split("-"))])


def make_request(rng):
    scheme, ep_host, port = rng.choice(ENDPOINTS)
    literal = ep_host.startswith("[") or ep_host == "localhost" or \
        all(c.isdigit() or c == "." for c in ep_host)
    vhost = not literal and rng.random() < 0.5
    bucket = rng.choice(DNS_BUCKETS if vhost else PATH_BUCKETS)
    listing = rng.random() < 0.3
    key = "" if listing else make_key(rng)

    # As dsc_target_build builds them.
    host = (bucket + "." if vhost else "") + ep_host.lower()
    if port and port != {"http": 80, "https": 443}[scheme]:
        host += ":%d" % port
    if vhost:
        path = "/" + uri_encode(key, True)
    else:
        path = "/" + uri_encode(bucket, False) + ("/" + uri_encode(key, True)
                                                   if key else "")
    url_host = (bucket + "." if vhost else "") + ep_host
    url = "%s://%s%s%s" % (scheme, url_host,
                           ":%d" % port if port else "", path)

    ak, sk = random_credentials(rng)
    extra = []
    if not listing and rng.random() < 0.4:
        a = rng.randrange(10**9)
        extra.append(("range", rng.choice(["bytes=%d-%d" % (a, a + rng.randrange(10**7)),
                                           "bytes=%d-" % a, "bytes=-%d" % (a + 1)])))
    if rng.random() < 0.3:
        extra.append(("x-amz-security-token", token(rng, 100, 400)))
    return {
        "method": rng.choice(["GET", "HEAD"]),
        "url": url, "host": host, "path": path,
        "query": make_query(rng, listing),
        "extra": extra,
        "region": rng.choice(REGIONS),
        "when": random_date(rng),
        "ak": ak, "sk": sk,
        "name_case": [header_case(rng, n) for n in
                      ("host", "x-amz-date", "x-amz-content-sha256")
                      + tuple(n for n, _ in extra)],
        "order_seed": rng.random(),
    }


class FrozenClock(datetime.datetime):
    """botocore 1.29 stamps requests with datetime.datetime.utcnow()."""
    now = None

    @classmethod
    def utcnow(cls):
        return cls.now


class RecordingS3Auth(botocore.auth.S3SigV4Auth):
    """Keeps the canonical request, to show it when signatures differ."""
    def canonical_request(self, request):
        self.last_canonical = super().canonical_request(request)
        return self.last_canonical


def sign_botocore(req):
    token_value = dict(req["extra"]).get("x-amz-security-token")
    creds = botocore.credentials.Credentials(req["ak"], req["sk"], token_value)
    headers = {"Range": v for n, v in req["extra"] if n == "range"}
    r = botocore.awsrequest.AWSRequest(req["method"], req["url"],
                                       headers=headers, params=req["query"])
    # Sign the empty-body hash, as libdsc does (botocore would anyway for
    # a body-less request without Content-MD5).
    r.context["payload_signing_enabled"] = True
    auth = RecordingS3Auth(creds, "s3", req["region"])
    FrozenClock.now = req["when"]
    auth.add_auth(r)
    amz_date = req["when"].strftime("%Y%m%dT%H%M%SZ")
    if r.headers["X-Amz-Date"] != amz_date or \
            r.headers["X-Amz-Content-SHA256"] != EMPTY_SHA256:
        raise RuntimeError("botocore did not use the frozen clock/empty hash")
    if urlsplit(req["url"]).path != req["path"]:
        raise RuntimeError("URL path differs from the signed path")
    return r.headers["Authorization"], auth.last_canonical


def hexs(text):
    return text.encode("utf-8").hex()


def tool_line(req):
    amz_date = req["when"].strftime("%Y%m%dT%H%M%SZ")
    headers = list(zip(req["name_case"],
                       [req["host"], amz_date, EMPTY_SHA256]
                       + [v for _, v in req["extra"]]))
    random.Random(req["order_seed"]).shuffle(headers)
    pairs = lambda kvs: ",".join(hexs(n) + "=" + hexs(v) for n, v in kvs)
    fields = [req["method"], req["path"], None, None, EMPTY_SHA256,
              req["region"], "s3", amz_date, req["ak"], req["sk"]]
    fields = [hexs(f) if f is not None else "" for f in fields]
    fields[2] = pairs(req["query"])
    fields[3] = pairs(headers)
    return "\t".join(fields)


def main():
    sys.stdout.reconfigure(errors="backslashreplace")
    if not os.access(TOOL, os.X_OK):
        print("sigv4-botocore: %s not built (make tests)" % TOOL)
        return 1
    fake_datetime = types.ModuleType("datetime")
    fake_datetime.__dict__.update(datetime.__dict__)
    fake_datetime.datetime = FrozenClock
    botocore.auth.datetime = fake_datetime

    # Harness check: the S3 documentation's GET Object example must come
    # out of botocore with its published signature.
    doc = {"method": "GET", "url": "https://examplebucket.s3.amazonaws.com/test.txt",
           "host": "examplebucket.s3.amazonaws.com", "path": "/test.txt",
           "query": [], "extra": [("range", "bytes=0-9")], "region": "us-east-1",
           "when": datetime.datetime(2013, 5, 24), "ak": "AKIAIOSFODNN7EXAMPLE",
           "sk": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "name_case": ["host", "x-amz-date", "x-amz-content-sha256", "range"],
           "order_seed": 0}
    if not sign_botocore(doc)[0].endswith(
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"):
        print("sigv4-botocore: harness does not reproduce the S3 example")
        return 1

    rng = random.Random(SEED)
    reqs = [doc] + [make_request(rng) for _ in range(COUNT)]
    expected = [sign_botocore(r) for r in reqs]
    run = subprocess.run([str(TOOL), "-c"], capture_output=True,
                         input="".join(tool_line(r) + "\n" for r in reqs)
                         .encode("ascii"))
    out = run.stdout.decode("utf-8", errors="replace").split("\n")[:-1]
    if len(out) != len(reqs):
        print("sigv4-botocore: tool gave %d lines for %d requests (rc %d): %s"
              % (len(out), len(reqs), run.returncode, run.stderr.decode()))
        return 1

    passed = failed = 0
    for i, (req, (want, want_creq), line) in enumerate(zip(reqs, expected, out)):
        got, _, got_creq = line.partition("\t")
        if got == want:
            passed += 1
            continue
        failed += 1
        print("MISMATCH #%d: %s %s query=%r" % (i, req["method"], req["url"],
                                                 req["query"]))
        print("  botocore: %s\n  libdsc:   %s" % (want, got))
        print("  --- botocore canonical request\n%s" % want_creq)
        try:
            print("  --- libdsc canonical request\n%s"
                  % bytes.fromhex(got_creq).decode("utf-8", errors="replace"))
        except ValueError:
            print("  --- libdsc canonical request unavailable")
    print("sigv4-botocore: %d passed, %d failed" % (passed, failed))
    return 1 if failed or run.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
