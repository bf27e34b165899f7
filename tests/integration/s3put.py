#!/usr/bin/python3
"""Tiny boto3 helper for tests:
  put ENDPOINT KEY SIZE BYTE   uploads SIZE bytes of value BYTE
  putfile ENDPOINT KEY PATH    uploads the file at PATH
  delete ENDPOINT KEY          deletes the object
to DSC_TEST_BUCKET/KEY;
  putmany ENDPOINT PREFIX COUNT MIN MAX
uploads PREFIX000000.. of the sizes and bytes many_object() gives (the C
tests compute the same: tests/integration/test_prefetch_loop.c)."""
import os
import sys

import boto3
from botocore.config import Config



def many_object(i, lo, hi):
    """Object i of a putmany set: its size and bytes."""
    size = lo + (i * 7919) % (hi - lo + 1)
    return bytes((i * 131 + j * 7 + (j >> 8)) & 0xFF for j in range(size))


op, endpoint, key = sys.argv[1:4]
assert op in ("put", "putfile", "delete", "putmany")
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
bucket = os.environ["DSC_TEST_BUCKET"]
if op == "put":
    size, byte = sys.argv[4:6]
    s3.put_object(Bucket=bucket, Key=key, Body=bytes([int(byte)]) * int(size))
elif op == "putfile":
    with open(sys.argv[4], "rb") as f:
        s3.put_object(Bucket=bucket, Key=key, Body=f.read())
elif op == "putmany":
    from concurrent.futures import ThreadPoolExecutor
    count, lo, hi = (int(v) for v in sys.argv[4:7])

    def put(i):
        s3.put_object(Bucket=bucket, Key="%s%06d" % (key, i),
                      Body=many_object(i, lo, hi))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))
else:
    s3.delete_object(Bucket=bucket, Key=key)
