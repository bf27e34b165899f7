#!/usr/bin/python3
"""Keys are sent byte for byte as signed. In S3 "a/../b" is a key of its
own, not "b"; an HTTP client that normalises the path after signing reads
another object (or another bucket's), and a server that checks SigV4
refuses it. s3rver normalises keys itself, so the origin here is
literal_s3.py: literal keys, every signature checked with botocore over
the target as received. The stand-in is first checked against boto3
(its own signatures pass, a wrong secret is refused). Then each dot key is
read through libdsc, with and without a cache: it must come back with its
own bytes, and the only targets sent must be its signed path.

Run through tests/run.sh (the library under test in $DSC_LIBRARY or
$OUT), with /usr/bin/python3 (botocore).
"""
import os
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(HERE))

from literal_s3 import LiteralS3  # noqa: E402
from test_python_client import use_library_under_test  # noqa: E402

BUCKET = "bkt"
DOT_KEYS = ["a/../b", "./c", "d/./e", "f/..", "g/...h", "zzz/../b",
            "../bkt2/x", "i/../../j"]
# What a normalising client would read instead: other bytes, so it shows.
DECOYS = [(BUCKET, "b"), (BUCKET, "c"), (BUCKET, "d/e"), (BUCKET, "f"),
          ("bkt2", "x"), (BUCKET, "j"), ("j", "")]


def boto(url, secret="S3RVER"):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id="S3RVER",
                        aws_secret_access_key=secret, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def main():
    use_library_under_test()
    import dsc
    objects = {}
    for i, (b, k) in enumerate([(BUCKET, k) for k in DOT_KEYS] + DECOYS):
        objects[(b, k)] = ("%s/%s #%d|" % (b, k, i)).encode() * 300
    passed = failed = 0

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print("  ok   %s" % name)
        except Exception as e:  # noqa: BLE001 - reported and counted
            failed += 1
            print("  FAIL %s: %s" % (name, e))

    tmp = tempfile.mkdtemp(prefix="dsc-dots-")
    try:
        with LiteralS3(objects) as s3:
            def botocore_signature_accepted():
                got = boto(s3.url).get_object(Bucket=BUCKET, Key="d/e")["Body"].read()
                assert got == objects[(BUCKET, "d/e")]

            def wrong_secret_refused():
                try:
                    boto(s3.url, secret="not-the-secret").get_object(Bucket=BUCKET, Key="d/e")
                except botocore.exceptions.ClientError as e:
                    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e
                    return
                raise AssertionError("a wrong signature was accepted")

            check("stand-in accepts botocore's signature", botocore_signature_accepted)
            check("stand-in refuses a wrong signature", wrong_secret_refused)

            for cache in ("", os.path.join(tmp, "cache")):
                for key in DOT_KEYS:
                    def read_literal(key=key, cache=cache):
                        s3.reset()
                        with dsc.Client(endpoint=s3.url, cache_dir=cache,
                                        addressing="path", access_key_id="S3RVER",
                                        secret_access_key="S3RVER",
                                        region="us-east-1") as c:
                            with c.open("s3://%s/%s" % (BUCKET, key)) as f:
                                got = f.read()
                        want = "/%s/%s" % (BUCKET, urllib.parse.quote(key, safe="/~"))
                        seen = s3.targets()
                        assert {t for _, t, _ in seen} == {want}, \
                            "sent %r, signed %r" % (seen, want)
                        assert got == objects[(BUCKET, key)], \
                            "read %r..., not the key's own bytes" % got[:20]
                    check("%s (%s)" % (key, "cache" if cache else "no cache"),
                          read_literal)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("dot-segments: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
