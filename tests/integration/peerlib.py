"""Helpers of the peer tests (and bench/bench_peers.py): dscd processes,
reader processes, an independent signer of the peer protocol, and GET
counts from s3rver's log. Everything runs on 127.0.0.1 as real processes.
Needs DSC_TEST_ENDPOINT, DSC_TEST_BUCKET, DSC_TEST_S3RVER_LOG and
DSC_TEST_STATE (tests/run.sh sets them); DSC_PEER_TEST_CHUNK sets the chunk
size (default 128 KiB)."""
import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("BUILD", "build")
BIN = BUILD / "bin"
TOOL = BUILD / "tests" / "tools" / "peer_tool"
ENDPOINT = os.environ["DSC_TEST_ENDPOINT"]
BUCKET = os.environ["DSC_TEST_BUCKET"]
S3RVER_LOG = os.environ["DSC_TEST_S3RVER_LOG"]
STATE = Path(os.environ["DSC_TEST_STATE"])
CHUNK = int(os.environ.get("DSC_PEER_TEST_CHUNK", 128 * 1024))


failures = []


def check(cond, what, quiet_ok=False):
    """Record one assertion; the test goes on, so one run shows them all."""
    if not (cond and quiet_ok):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run_test(main, *prefixes):
    """Run main(), then delete the objects it uploaded under prefixes
    (other tests list the whole bucket); exit 1 if a check failed."""
    try:
        main()
    finally:
        for p in prefixes:
            delete_prefix(p)
    print("%d checks failed" % len(failures))
    sys.exit(1 if failures else 0)


def s3():
    return boto3.client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id="S3RVER",
        aws_secret_access_key="S3RVER", region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=8))


def upload_dataset(prefix, sizes, local_dir, seed):
    """Objects prefix/obj-NNN of the given sizes; a copy of each in
    local_dir (for dsc-epoch --verify). Returns {key: (bytes, etag)}."""
    import random
    rng = random.Random(seed)
    client = s3()
    local_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, size in enumerate(sizes):
        key = "%sobj-%03d" % (prefix, i)
        data = rng.randbytes(size)
        etag = client.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]
        (local_dir / ("obj-%03d" % i)).write_bytes(data)
        out[key] = (data, etag)
    return out


def delete_prefix(prefix):
    """Tests clean up: other tests list the whole bucket."""
    client = s3()
    for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=o["Key"])


def chunks_of(size):
    return (size + CHUNK - 1) // CHUNK


class S3Log:
    """GETs s3rver logged since the mark, per key."""
    LINE = re.compile(r"info\S*: (.+) (200|206) \d+ms")

    def __init__(self):
        self.mark()

    def mark(self):
        self.pos = os.path.getsize(S3RVER_LOG)

    @staticmethod
    def settle(quiet=0.5, limit=10.0):
        """s3rver logs a request after its body went out: a client may be
        done before the line is written. Wait until the log is quiet."""
        end = time.time() + limit
        size = -1
        while time.time() < end:
            now = os.path.getsize(S3RVER_LOG)
            if now == size:
                return
            size = now
            time.sleep(quiet)

    def gets(self, keys, statuses=("200", "206")):
        """Answers per key since the mark. s3rver logs no method: a HEAD
        is a 200 too; statuses=("206",) counts only ranged GETs."""
        self.settle()
        counts = dict.fromkeys(keys, 0)
        with open(S3RVER_LOG, "rb") as f:
            f.seek(self.pos)
            text = f.read().decode("utf-8", "replace")
        # s3rver logs the request path with a few leading characters cut
        # off ("est/peers/obj-001" for /dsc-test/peers/obj-001): match the
        # key at the end.
        for line in text.splitlines():
            m = self.LINE.search(line)
            if not m or m.group(2) not in statuses:
                continue
            path = m.group(1)
            for key in counts:
                if path.endswith("/" + key) or path == key:
                    counts[key] += 1
                    break
        return counts


def base_env(secret):
    env = dict(os.environ)
    env.update(AWS_ENDPOINT_URL=ENDPOINT, DSC_CHUNK_SIZE=str(CHUNK),
               DSC_META_TTL_MS="600000", DSC_PEER_SECRET=secret,
               DSC_PEER_TIMEOUT_MS="3000", DSC_PEER_BACKOFF_MS="30000",
               DSC_LOG="warn")
    return env


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    """Signal a server we started (by its PID), kill it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Dscd:
    """One node's daemon on a free port."""

    def __init__(self, name, cache_dir, secret, extra_env=None, port=0,
                 host="127.0.0.1"):
        self.name = name
        self.cache_dir = Path(cache_dir)
        self.port_file = STATE / ("dscd-%s.port" % name)
        self.log_path = STATE / ("dscd-%s.log" % name)
        if self.port_file.exists():
            self.port_file.unlink()
        env = base_env(secret)
        env.update(extra_env or {})
        env.pop("DSC_PEERS", None)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BIN / "dscd"), "--listen", "%s:%d" % (host, port), "--port-file",
             str(self.port_file), "--cache-dir", str(self.cache_dir)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("dscd %s did not start:\n%s" %
                                   (name, self.log_path.read_text()))
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        self.addr = "%s:%d" % (host, self.port)

    def url(self, path):
        return "http://%s%s" % (self.addr, path)

    def metrics(self):
        with urllib.request.urlopen(self.url("/metrics"), timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        self.log.close()
        return self.proc.returncode


def reader(node_dir, peers, self_addr, secret, prefix, verify_dir, threads=4,
           epochs=1, extra_env=None):
    """Start dsc-epoch as one node's reader process."""
    env = base_env(secret)
    env.update(DSC_CACHE_DIR=str(node_dir), DSC_PEERS=",".join(peers))
    if self_addr:
        env["DSC_SELF"] = self_addr
    env.update(extra_env or {})
    return subprocess.Popen(
        [str(BIN / "dsc-epoch"), "-j", str(threads), "-e", str(epochs),
         "--verify", str(verify_dir), "s3://%s/%s" % (BUCKET, prefix)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=180):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def peer_counts(out):
    """(chunks from peers, peer errors, bad answers) over all epochs."""
    hits = errors = bad = 0
    for m in re.finditer(r"peers: (\d+) chunks from peers .*?, (\d+) peer "
                         r"errors \((\d+) bad answers\)", out):
        hits += int(m.group(1))
        errors += int(m.group(2))
        bad += int(m.group(3))
    return hits, errors, bad


# --- the protocol, written again here (independent of lib/peer/proto.c) ---

def enc(s):
    return urllib.parse.quote(s, safe="")


def origin_of(endpoint):
    """The canonical origin libdsc names an endpoint by (part of ids)."""
    return subprocess.check_output([str(TOOL), "origin", endpoint], text=True).strip()


ORIGIN = origin_of(ENDPOINT)


def chunk_id(bucket, key, etag, size, cs, index, origin=ORIGIN):
    return subprocess.check_output(
        [str(TOOL), "id", origin, bucket, key, etag, str(size), str(cs), str(index)],
        text=True).strip()


def sign(secret, method, path, target, origin, bucket, key, etag, size, cs,
         index, t, nonce):
    msg = "dsc-peer-2\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%d\n%d\n%d\n%d\n%s" % (
        method, path, enc(target), enc(origin), bucket, enc(key), enc(etag), size,
        cs, index, t, nonce)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def answer_mac(secret, auth, body):
    """The X-Dsc-Mac of an answer: Poly1305 of body || le64(len) under the
    one-time key HMAC-SHA256(secret, "dsc-peer-2-answer\n" auth)."""
    from cryptography.hazmat.primitives import poly1305
    key = hmac.new(secret.encode(), ("dsc-peer-2-answer\n" + auth).encode(),
                   hashlib.sha256).digest()
    return poly1305.Poly1305.generate_tag(
        key, body + len(body).to_bytes(8, "little")).hex()


def chunk_headers(target, secret, method, bucket, key, etag, size, cs, index,
                  t=None, path_id=None, nonce=None, origin=ORIGIN):
    t = int(time.time()) if t is None else t
    nonce = nonce or os.urandom(16).hex()
    cid = path_id or chunk_id(bucket, key, etag, size, cs, index)
    path = "/v2/chunk/" + cid
    auth = sign(secret, method, path, target, origin, bucket, key, etag, size,
                cs, index, t, nonce)
    return path, {
        "X-Dsc-Target": enc(target), "X-Dsc-Origin": enc(origin),
        "X-Dsc-Bucket": bucket, "X-Dsc-Key": enc(key), "X-Dsc-Etag": enc(etag),
        "X-Dsc-Size": str(size), "X-Dsc-Chunk": "%d/%d" % (cs, index),
        "X-Dsc-Time": str(t), "X-Dsc-Nonce": nonce, "X-Dsc-Auth": auth,
    }
