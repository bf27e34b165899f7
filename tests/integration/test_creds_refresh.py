#!/usr/bin/python3
# asan: skip (torch DataLoader workers abort inside CPython under the preloaded ASan runtime, as in test_pytorch; refresh itself runs under ASan in unit/test_credbox)
"""Temporary credentials that expire every 20 s, over a 60 s read loop, in
the two long-lived shapes users run:

- a PyTorch DataLoader whose 2 workers are fork()ed from a process that
  opened the client (web identity, as EKS IRSA gives: STS issues new keys
  at each refresh);
- dscd serving a reader's chunks from S3 (instance role from IMDSv2, as
  on EC2), its cache too small to keep them, so it keeps going to S3.

Every S3 request goes through sigv4_proxy.py, which checks each signature
(botocore) with the issued secret and refuses expired keys. Asserted: 0
requests signed with expired credentials (none refused, none forwarded),
0 read errors, and the keys were refreshed (several generations used).

Run through tests/run.sh, with /usr/bin/python3 (python3-torch).
"""
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awsenv
from test_python_client import use_library_under_test

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = os.environ.get("DSC_TEST_ENDPOINT")
BUCKET = os.environ.get("DSC_TEST_BUCKET")
BIN = Path(os.environ.get("DSC_TEST_BIN", "build/bin"))
ROLE_ARN = "arn:aws:iam::123456789012:role/dsc-reader"
PREFIX = "creds-refresh/"
SECONDS = 60
LIFETIME = 20

LOADER = r'''
import hashlib, os, sys, time
import torch
sys.path.insert(0, os.environ["DSC_BINDINGS"])
import dsc

urls = sys.argv[1].split(",")
want = dict(zip(urls, sys.argv[2].split(",")))
client = dsc.Client(cache_dir="")          # every read goes to S3
with client.open(urls[0]) as f:            # the parent signs first
    assert hashlib.sha256(f.read()).hexdigest() == want[urls[0]]

class Objects(torch.utils.data.Dataset):
    def __len__(self):
        return 10 ** 6
    def __getitem__(self, i):
        url = urls[i % len(urls)]
        with client.open(url) as f:
            ok = hashlib.sha256(f.read()).hexdigest() == want[url]
        time.sleep(0.02)
        return int(ok)

end = time.time() + float(sys.argv[3])
loader = torch.utils.data.DataLoader(Objects(), batch_size=4, num_workers=2,
                                     multiprocessing_context="fork")
reads = bad = 0
for batch in loader:
    reads += len(batch)
    bad += len(batch) - int(batch.sum())
    if time.time() > end:
        break
print("loader: %d reads, %d wrong" % (reads, bad))
sys.exit(1 if bad or reads == 0 else 0)
'''


def main():
    use_library_under_test()
    if not ENDPOINT or not BUCKET:
        sys.exit("DSC_TEST_ENDPOINT / DSC_TEST_BUCKET not set: run through tests/run.sh")
    import hashlib
    import peerlib
    s3 = peerlib.s3()           # the test server's own client (s3rver keys)
    rng = random.Random(20)
    objects = {}
    for i in range(24):
        key = "%sobj-%02d" % (PREFIX, i)
        objects[key] = rng.randbytes(40000 + 997 * i)
        s3.put_object(Bucket=BUCKET, Key=key, Body=objects[key])
    failures = []
    try:
        with awsenv.AwsEnv(lifetime=LIFETIME, upstream=ENDPOINT) as aws:
            tmp = Path(tempfile.mkdtemp(dir=aws.dir))
            script = tmp / "loader.py"
            script.write_text(LOADER)
            token = aws.home.write_file("web-token", "fake-web-identity-token")
            common = dict(AWS_ENDPOINT_URL=aws.proxy.url, DSC_LOG="warn",
                          DSC_LIBRARY=os.environ["DSC_LIBRARY"],
                          DSC_BINDINGS=str(ROOT / "bindings" / "python"))
            # The DataLoader: web identity.
            urls = ["s3://%s/%s" % (BUCKET, k) for k in sorted(objects)]
            sums = [hashlib.sha256(objects[k]).hexdigest() for k in sorted(objects)]
            env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=ROLE_ARN,
                          **common)
            loader = subprocess.Popen(
                ["/usr/bin/python3", str(script), ",".join(urls), ",".join(sums),
                 str(SECONDS)], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            # dscd: the instance role; a cache of 256 KiB for 1.3 MB of data.
            verify = tmp / "verify"
            verify.mkdir()
            for k, v in objects.items():
                (verify / k[len(PREFIX):]).write_bytes(v)
            denv = aws.env(imds=True, **common)
            denv.update(DSC_CHUNK_SIZE="65536", DSC_CACHE_SIZE="262144",
                        DSC_PEER_SECRET="refresh-test-secret")
            dscd_log = open(tmp / "dscd.log", "w")
            port_file = tmp / "dscd.port"
            dscd = subprocess.Popen(
                [str(BIN / "dscd"), "--listen", "127.0.0.1:0", "--port-file",
                 str(port_file), "--cache-dir", str(tmp / "dscd-cache")],
                env=denv, stdout=dscd_log, stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 20
                while not port_file.exists() and time.time() < deadline:
                    time.sleep(0.05)
                addr = "127.0.0.1:%s" % port_file.read_text().strip()
                # The reader has keys of its own (static) and no cache: every
                # chunk it reads is one dscd fetches from S3 with its role.
                renv = dict(os.environ, AWS_ENDPOINT_URL=aws.proxy.url,
                            AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                            DSC_CHUNK_SIZE="65536", DSC_PEERS=addr,
                            DSC_CACHE_DIR=str(tmp / "reader-cache"),
                            DSC_CACHE_SIZE="262144",
                            DSC_PEER_SECRET="refresh-test-secret", DSC_LOG="warn")
                epoch = subprocess.run(
                    [str(BIN / "dsc-epoch"), "-j", "2", "--duration", str(SECONDS),
                     "--verify", str(verify), "s3://%s/%s" % (BUCKET, PREFIX)],
                    env=renv, capture_output=True, text=True, timeout=SECONDS + 120)
                out, _ = loader.communicate(timeout=120)
            finally:
                if loader.poll() is None:
                    loader.kill()
                dscd.terminate()
                dscd.wait(30)
                dscd_log.close()
            print(out.strip())
            print(epoch.stdout.strip()[-400:])
            entries = aws.proxy.entries()
            by_source = {}
            for e in entries:
                by_source.setdefault(e.get("source"), []).append(e)

            def check(cond, what):
                print(("ok   " if cond else "FAIL ") + what, flush=True)
                if not cond:
                    failures.append(what)

            check(loader.returncode == 0, "DataLoader: 60 s of reads in 2 forked "
                  "workers, every one right (exit %s)" % loader.returncode)
            check(epoch.returncode == 0, "dsc-epoch through dscd: 60 s, every "
                  "byte verified (exit %s: %s)" % (epoch.returncode,
                                                   epoch.stderr.strip()[-300:]))
            check(not [e for e in entries if e.get("expired")],
                  "0 requests signed with expired credentials (of %d)" % len(entries))
            check(not [e for e in entries if e["verdict"] != "ok"],
                  "every request verified: %s" % sorted(
                      {(e["verdict"], e.get("code")) for e in entries}))
            for source, name in (("sts_web", "DataLoader (web identity)"),
                                 ("imds", "dscd (IMDS role)")):
                used = {e["access_key"] for e in entries
                        if (e.get("source") or "").startswith(source)}
                span = [e["time"] for e in entries
                        if (e.get("source") or "").startswith(source)]
                check(len(used) >= 3 and span and span[-1] - span[0] > 40,
                      "%s: %d keys used over %.0f s (keys live %d s)"
                      % (name, len(used), span[-1] - span[0] if span else 0,
                         LIFETIME))
            print("dscd log: %s" % (tmp / "dscd.log").read_text().strip()[-500:])
    finally:
        for k in objects:
            s3.delete_object(Bucket=BUCKET, Key=k)
    print("creds-refresh: %d checks failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
