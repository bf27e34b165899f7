#!/usr/bin/python3
"""A stalled GET delays only the readers of its own chunk.

Process A reads 8 objects whose GETs the fault proxy never answers, so A
holds those chunks' single-flight locks for the whole test. Meanwhile this
process reads 2,560 other chunks through the same cache directory and the
same origin: none may take over 3 s. (With locks shared by 4,096 stripes,
about 99 % of such runs had a read waiting behind one of A's stalls.)

Run through tests/run.sh (s3rver, bucket and credentials in the
environment), with /usr/bin/python3.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(HERE))

from faultproxy import ProxyProcess, Rule  # noqa: E402
from test_python_client import use_library_under_test  # noqa: E402

CHUNK = 64 * 1024
CALM_OBJECTS, CALM_SIZE = 5, 32 * 1024 * 1024   # 2,560 chunks
STALLED = 8

# Process A: read the stalled objects, one thread each, until killed.
HOLDER = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
import dsc
c = dsc.Client(endpoint=sys.argv[2], cache_dir=sys.argv[3], chunk_size=%d,
               addressing="path", request_timeout_ms=600000, max_retries=0)
urls = sys.argv[4:]
threads = [threading.Thread(target=c.read, args=(u,), daemon=True) for u in urls]
for t in threads:
    t.start()
for t in threads:
    t.join()
""" % CHUNK


def main():
    use_library_under_test()
    import dsc
    endpoint = os.environ["DSC_TEST_ENDPOINT"]
    bucket = os.environ["DSC_TEST_BUCKET"]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    stalled = ["stall/held-%d" % i for i in range(STALLED)]
    calm = ["stall/calm-%d" % i for i in range(CALM_OBJECTS)]
    for k in stalled:
        s3.put_object(Bucket=bucket, Key=k, Body=os.urandom(CHUNK))
    blob = os.urandom(CALM_SIZE)
    for k in calm:
        s3.put_object(Bucket=bucket, Key=k, Body=blob)

    tmp = tempfile.mkdtemp(prefix="dsc-flight-stall-")
    cache = os.path.join(tmp, "cache")
    holder = None
    failed = 0
    try:
        rules = [Rule("stall", method="GET", path="/stall/held-")]
        with ProxyProcess(endpoint.replace("http://", ""), rules) as proxy:
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLDER, str(ROOT / "bindings" / "python"),
                 proxy.url, cache] + ["s3://%s/%s" % (bucket, k) for k in stalled],
                env=os.environ.copy())
            deadline = time.monotonic() + 20
            while proxy.counts().get("stall", 0) < STALLED:
                if time.monotonic() > deadline or holder.poll() is not None:
                    print("FAIL the holder's 8 GETs never reached the proxy: %r"
                          % proxy.counts())
                    return 1
                time.sleep(0.05)
            worst, reads = 0.0, 0
            t_all = time.monotonic()
            with dsc.Client(endpoint=proxy.url, cache_dir=cache, chunk_size=CHUNK,
                            addressing="path", prefetch_threads=0) as c:
                for k in calm:
                    url = "s3://%s/%s" % (bucket, k)
                    for off in range(0, CALM_SIZE, CHUNK):
                        t0 = time.monotonic()
                        got = c.read(url, off, CHUNK)
                        worst = max(worst, time.monotonic() - t0)
                        reads += 1
                        if got != blob[off:off + CHUNK]:
                            print("FAIL wrong bytes at %s@%d" % (url, off))
                            return 1
                st = c.stats()
            still = holder.poll() is None and proxy.counts().get("stall", 0) == STALLED
            holder.kill()   # before the proxy goes: A's reads end killed, not refused
            holder.wait()
            print("  %d chunk reads in %.1f s beside 8 stalled GETs; slowest %.3f s; "
                  "%d GETs" % (reads, time.monotonic() - t_all, worst, st["s3_gets"]))
            for ok, name in [
                (reads == 2560, "2,560 unrelated chunks read"),
                (st["s3_gets"] == 2560, "each fetched once"),
                (still, "the 8 GETs were still stalled at the end"),
                (worst < 3.0, "no read took over 3 s (slowest %.3f s)" % worst),
            ]:
                print("  %s %s" % ("ok  " if ok else "FAIL", name))
                failed += not ok
    finally:
        if holder and holder.poll() is None:
            holder.kill()
            holder.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("flight-stall: %s" % ("passed" if not failed else "%d failed" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
