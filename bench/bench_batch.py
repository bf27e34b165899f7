#!/usr/bin/python3
"""Batch reads of small objects against a loop of open + read (issue 15,
item 5): 2,000 objects of 128 KiB from s3rver behind faultproxy.py adding
30 ms to every answer (S3-like latency), default settings.

  cold: a fresh cache; a loop of dsc.Client.open().read() vs read_batch in
        batches of 64 (as MapDataset.__getitems__ reads a DataLoader batch)
  warm: the same reads again, everything cached (after one listing of
        the prefix, which renews metadata older than its TTL)

Goals: cold >= 8x the loop, warm >= 1.5x. Run by `make bench-batch`.
Env: BENCH_BATCH_N (2000), BENCH_BATCH_KIB (128), BENCH_BATCH_LAT_MS (30).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bindings" / "python"))
os.environ.setdefault("DSC_LIBRARY", str(ROOT / "lib" / "libdsc.so.0"))

N = int(os.environ.get("BENCH_BATCH_N", 2000))
SIZE = int(os.environ.get("BENCH_BATCH_KIB", 128)) * 1024
LAT = int(os.environ.get("BENCH_BATCH_LAT_MS", 30))
BATCH = 64
BUCKET = "bench-batch"


def loop(client, urls):
    total = 0
    for u in urls:
        with client.open(u) as f:
            total += len(f.read())
    return total


def batched(client, urls):
    total = 0
    for i in range(0, len(urls), BATCH):
        for item in client.read_batch(urls[i:i + BATCH]):
            total += len(item)
    return total


def timed(fn, client, urls):
    t0 = time.perf_counter()
    got = fn(client, urls)
    dt = time.perf_counter() - t0
    assert got == len(urls) * SIZE, (got, len(urls) * SIZE)
    return dt


def main():
    import boto3
    from botocore.config import Config
    from faultproxy import ProxyProcess
    import dsc
    state = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    endpoint = subprocess.check_output(
        [str(ROOT / "scripts" / "s3rver.sh"), "start", str(state / "s3rver"),
         BUCKET], text=True).strip()
    proxy = None
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                          aws_secret_access_key="S3RVER", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"},
                                        max_pool_connections=16))
        rng = random.Random(1)
        blob = rng.randbytes(SIZE)
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda i: s3.put_object(Bucket=BUCKET, Key="o/%05d" % i,
                                                Body=blob), range(N)))
        proxy = ProxyProcess(endpoint.split("//", 1)[1],
                             rules=[{"fault": "latency", "latency_ms": LAT}])
        os.environ.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                          AWS_REGION="us-east-1")
        urls = ["s3://%s/o/%05d" % (BUCKET, i) for i in range(N)]
        rows = {}
        for name, fn in (("loop", loop), ("read_batch", batched)):
            cache = state / ("cache-" + name)
            with dsc.Client(endpoint=proxy.url, cache_dir=str(cache)) as c:
                cold = timed(fn, c, urls)
                # The loop's cold pass outlasts the metadata TTL (60 s):
                # one listing renews it for both, as a dataset's listing does.
                c.list("s3://%s/o/" % BUCKET)
                warm = min(timed(fn, c, urls) for _ in range(3))
            rows[name] = (cold, warm)
            shutil.rmtree(cache, ignore_errors=True)
        print("bench_batch: %s; %d objects x %d KiB, s3rver behind a %d ms "
              "latency proxy, default settings, 2-core VM" % (
                  dsc.version() if hasattr(dsc, "version") else "libdsc",
                  N, SIZE // 1024, LAT))
        print("%-11s %10s %12s %10s %12s" % ("", "cold s", "cold obj/s",
                                             "warm s", "warm obj/s"))
        for name, (cold, warm) in rows.items():
            print("%-11s %10.2f %12.0f %10.3f %12.0f" % (name, cold, N / cold,
                                                         warm, N / warm))
        rc, rw = rows["loop"][0] / rows["read_batch"][0], \
            rows["loop"][1] / rows["read_batch"][1]
        print("read_batch / loop: cold %.1fx (goal >= 8), warm %.2fx (goal >= 1.5)"
              % (rc, rw))
        return 0 if rc >= 8 and rw >= 1.5 else 1
    finally:
        if proxy:
            proxy.stop()
        subprocess.run([str(ROOT / "scripts" / "s3rver.sh"), "stop",
                        str(state / "s3rver")], check=False)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
