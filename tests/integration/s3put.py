#!/usr/bin/python3
"""Tiny boto3 helper for tests:
  put ENDPOINT KEY SIZE BYTE   uploads SIZE bytes of value BYTE
  putfile ENDPOINT KEY PATH    uploads the file at PATH
  delete ENDPOINT KEY          deletes the object
to DSC_TEST_BUCKET/KEY."""
import os
import sys

import boto3
from botocore.config import Config

op, endpoint, key = sys.argv[1:4]
assert op in ("put", "putfile", "delete")
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
else:
    s3.delete_object(Bucket=bucket, Key=key)
