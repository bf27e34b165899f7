#!/usr/bin/python3
"""One cache directory, two S3 endpoints holding the same bucket and key
with different bytes - and, worst case, the same ETag (the second endpoint
is literal_s3.py answering the first one's ETag, as a hostile or careless
server may). Each endpoint's reader must get its own bytes, before and
after the other filled the cache, and an open on one endpoint must not
take size or ETag from the other's cached metadata.

Run through tests/run.sh (s3rver, bucket and credentials in the
environment), with /usr/bin/python3.
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(HERE))

from literal_s3 import LiteralS3  # noqa: E402
from test_python_client import use_library_under_test  # noqa: E402

KEY = "two-endpoints/obj.bin"
SIZE = 300 * 1024          # 3 chunks of 128 KiB: a partial last one too


def main():
    use_library_under_test()
    import dsc
    endpoint = os.environ["DSC_TEST_ENDPOINT"]
    bucket = os.environ["DSC_TEST_BUCKET"]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    one = bytes((i * 7 + 1) % 251 for i in range(SIZE))
    two = bytes((i * 13 + 5) % 241 for i in range(SIZE))
    etag = s3.put_object(Bucket=bucket, Key=KEY, Body=one)["ETag"]
    passed = failed = 0

    def check(ok, name, detail=""):
        nonlocal passed, failed
        passed += bool(ok)
        failed += not ok
        print("  %s %s%s" % ("ok  " if ok else "FAIL", name,
                             "" if ok else ": " + detail))

    tmp = tempfile.mkdtemp(prefix="dsc-two-endpoints-")
    cache = os.path.join(tmp, "cache")
    cfg = dict(cache_dir=cache, chunk_size=128 * 1024, addressing="path",
               access_key_id="S3RVER", secret_access_key="S3RVER",
               region="us-east-1")
    try:
        with LiteralS3({(bucket, KEY): two}, etags={(bucket, KEY): etag}) as other:
            def read(url_endpoint):
                with dsc.Client(endpoint=url_endpoint, **cfg) as c:
                    with c.open("s3://%s/%s" % (bucket, KEY)) as f:
                        return f.etag, f.read(), c.stats()

            e1, got1, _ = read(endpoint)
            check(got1 == one, "endpoint 1 reads its own bytes")
            other.reset()
            e2, got2, st2 = read(other.url)
            check(e2 == e1, "both endpoints answer the same ETag (the worst case)",
                  "%r vs %r" % (e1, e2))
            check(got2 == two, "endpoint 2 reads its own bytes, not endpoint 1's "
                  "cached chunks", "got %s" % ("endpoint 1's" if got2 == one else "other"))
            methods = [m for m, _, _ in other.targets()]
            check("HEAD" in methods, "endpoint 2's open asked endpoint 2 (no "
                  "metadata from endpoint 1)", "requests: %r" % methods)
            check(methods.count("GET") == 3, "endpoint 2's 3 chunks came from endpoint 2",
                  "requests: %r" % methods)
            _, again1, st1 = read(endpoint)
            check(again1 == one, "endpoint 1 still reads its own bytes")
            check(st1["hits"] >= 3 and st1["s3_gets"] == 0,
                  "and from the cache (both stay cached side by side)",
                  "hits %d, GETs %d" % (st1["hits"], st1["s3_gets"]))
            other.reset()
            _, again2, st2 = read(other.url)
            check(again2 == two and [m for m, _, _ in other.targets()].count("GET") == 0,
                  "endpoint 2's chunks are cached under its own identity",
                  "requests: %r" % other.targets())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("two-endpoints: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
