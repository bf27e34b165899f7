#!/usr/bin/python3
"""Tiny boto3 helper for tests: put ENDPOINT KEY SIZE BYTE
uploads SIZE bytes of value BYTE to DSC_TEST_BUCKET/KEY."""
import os
import sys

import boto3
from botocore.config import Config

op, endpoint, key, size, byte = sys.argv[1:6]
assert op == "put"
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
s3.put_object(Bucket=os.environ["DSC_TEST_BUCKET"], Key=key,
              Body=bytes([int(byte)]) * int(size))
