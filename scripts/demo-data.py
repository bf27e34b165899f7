#!/usr/bin/python3
"""Make the demo's sample dataset: N shard-like objects of random bytes,
uploaded with boto3 and kept locally for byte verification.

usage: demo-data.py ENDPOINT BUCKET PREFIX LOCALDIR [COUNT] [SIZE_KIB]"""
import concurrent.futures
import os
import random
import sys

import boto3
from botocore.config import Config

endpoint, bucket, prefix, local = sys.argv[1:5]
count = int(sys.argv[5]) if len(sys.argv) > 5 else 64
size_kib = int(sys.argv[6]) if len(sys.argv) > 6 else 1024
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"},
                                max_pool_connections=8))
os.makedirs(local, exist_ok=True)


def make(i):
    name = "shard-%05d.bin" % i
    path = os.path.join(local, name)
    rng = random.Random(i)
    # Varying sizes, like real shards.
    data = rng.randbytes(size_kib * 1024 // 2 + rng.randrange(size_kib * 1024))
    with open(path, "wb") as f:
        f.write(data)
    s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)
    return len(data)


with concurrent.futures.ThreadPoolExecutor(8) as ex:
    total = sum(ex.map(make, range(count)))
print("demo: uploaded %d objects, %.1f MiB to s3://%s/%s" %
      (count, total / 1048576, bucket, prefix))
