#!/usr/bin/python3
# tsan: runs (it drives dsc-cat, dsc-prefetch and dsc-stat; no libdsc in this process)
"""The node's metrics and cost against known request counts, on a real
s3rver (whose log is the second witness):

  1. cold: N objects read by one dsc-cat each give exactly one GET per
     chunk and one HEAD per object, in dsc-stat --prometheus and in
     s3rver's log; nothing saved;
  2. warm (new processes): no request, one hit per chunk, every GET and
     byte saved, dollars = counts x the default prices;
  3. prefetched (dsc-prefetch, then read): the first read of a
     prefetched chunk saves nothing, the second does;
  4. per-prefix bytes add up to the node's bytes by source, and the top
     prefixes come first in --json and the human summary;
  5. prices from DSC_PRICE_* change the dollars (and only them); a bad
     price is refused by dsc-stat and by a reader, naming the variable.

Run through tests/run.sh (s3rver, env)."""
import json
import os
import re
import shutil
import subprocess

from peerlib import (BIN, BUCKET, ENDPOINT, S3RVER_LOG, STATE, S3Log, check,
                     run_test, upload_dataset)

CHUNK = 64 * 1024
GB = float(1 << 30)
DEFAULT = {"get_per_1000": 0.0004, "list_per_1000": 0.005, "egress_per_gb": 0.09}

CACHE = STATE / "metrics-cache"


def env(**extra):
    e = dict(os.environ)
    e.update(AWS_ENDPOINT_URL=ENDPOINT, DSC_CACHE_DIR=str(CACHE),
             DSC_CHUNK_SIZE=str(CHUNK), DSC_META_TTL_MS="600000",
             DSC_LOG="warn")
    e.update(extra)
    return e


def run(args, **extra):
    return subprocess.run([str(BIN / args[0])] + args[1:], env=env(**extra),
                          capture_output=True, text=True, timeout=120)


def cat_all(keys):
    for k in keys:
        r = subprocess.run([str(BIN / "dsc-cat"), "s3://%s/%s" % (BUCKET, k)],
                           env=env(), capture_output=True, timeout=60)
        check(r.returncode == 0, "dsc-cat %s (%s)" % (k, r.stderr[-200:]),
              quiet_ok=True)


def prom(**extra):
    """dsc-stat --prometheus as {series with labels: value}."""
    r = run(["dsc-stat", "--prometheus"], **extra)
    check(r.returncode == 0, "dsc-stat --prometheus runs (%s)" % r.stderr.strip(),
          quiet_ok=True)
    out = {}
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def stat_json(**extra):
    r = run(["dsc-stat", "--json", "--top", "10"], **extra)
    check(r.returncode == 0, "dsc-stat --json runs (%s)" % r.stderr.strip(),
          quiet_ok=True)
    return json.loads(r.stdout)


class Log:
    """s3rver's requests per kind since the mark: its log names no
    method, so a ranged GET is a 206, a HEAD a 200 on an object's key and
    a LIST a 200 with list-type=2."""
    LINE = re.compile(r"info\S*: (\S+) (200|206) \d+ms")

    def __init__(self):
        self.pos = os.path.getsize(S3RVER_LOG)

    def counts(self, keys):
        S3Log.settle()   # a request is logged after its answer went out
        n = {"get": 0, "head": 0, "list": 0}
        with open(S3RVER_LOG, "rb") as f:
            f.seek(self.pos)
            text = f.read().decode("utf-8", "replace")
        for line in text.splitlines():
            m = self.LINE.search(line)
            if not m:
                continue
            path, status = m.groups()
            if "ist-type=2" in path:
                n["list"] += 1
            elif any(path.endswith(k) or k.endswith(path) for k in keys):
                n["get" if status == "206" else "head"] += 1
        return n


def chunks(size):
    return max(1, (size + CHUNK - 1) // CHUNK)


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def dollars(m, prices, gets, heads, lists, s3_bytes, saved_gets, saved_bytes):
    """The exposition's dollar series against the formula."""
    p = prices
    want = {
        'dsc_cost_dollars_total{item="requests"}':
            ((gets + heads) * p["get_per_1000"] + lists * p["list_per_1000"]) / 1000,
        'dsc_cost_dollars_total{item="transfer"}': s3_bytes / GB * p["egress_per_gb"],
        'dsc_saved_dollars{item="requests"}': saved_gets * p["get_per_1000"] / 1000,
        'dsc_saved_dollars{item="transfer"}': saved_bytes / GB * p["egress_per_gb"],
    }
    for k, v in p.items():
        want['dsc_price_dollars{item="%s"}' % k] = v
    for k, v in want.items():
        check(close(m.get(k, -1), v), "%s = %.10g (got %s)" % (k, v, m.get(k)))


def main():
    shutil.rmtree(CACHE, ignore_errors=True)
    sizes_a = [1000, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 2 * CHUNK]
    sizes_b = [2 * CHUNK + 3, 17]
    data_a = upload_dataset("metrics/a/", sizes_a, STATE / "metrics-a", seed=31)
    data_b = upload_dataset("metrics/b/", sizes_b, STATE / "metrics-b", seed=32)
    keys_a, keys_b = sorted(data_a), sorted(data_b)
    n_a = sum(chunks(s) for s in sizes_a)
    n_b = sum(chunks(s) for s in sizes_b)
    bytes_a, bytes_b = sum(sizes_a), sum(sizes_b)

    # --- 1. cold: one GET per chunk, one HEAD per object
    log = Log()
    cat_all(keys_a)
    m = prom()
    seen = log.counts(keys_a)
    print("cold: %d objects, %d chunks; s3rver saw %s" % (len(keys_a), n_a, seen))
    check(seen == {"get": n_a, "head": len(keys_a), "list": 0},
          "s3rver: %d GETs, %d HEADs, no LIST" % (n_a, len(keys_a)))
    check(m['dsc_s3_requests_total{kind="get"}'] == n_a, "GETs = %d chunks" % n_a)
    check(m['dsc_s3_requests_total{kind="head"}'] == len(keys_a),
          "HEADs = %d objects" % len(keys_a))
    check(m['dsc_s3_requests_total{kind="list"}'] == 0, "no LIST")
    check(m['dsc_read_bytes_total{source="s3"}'] == bytes_a,
          "bytes from S3 = the objects' %d" % bytes_a)
    check(m["dsc_cache_hits_total"] == 0, "cold: no hit")
    check(m["dsc_saved_requests"] == 0 and m["dsc_saved_bytes"] == 0,
          "cold: nothing saved")
    dollars(m, DEFAULT, n_a, len(keys_a), 0, bytes_a, 0, 0)

    # --- 2. warm: new processes, every chunk a hit, every GET saved
    log = Log()
    cat_all(keys_a)
    m = prom()
    seen = log.counts(keys_a)
    check(seen == {"get": 0, "head": 0, "list": 0}, "warm: s3rver saw nothing (%s)" % seen)
    check(m['dsc_s3_requests_total{kind="get"}'] == n_a, "warm: GETs still %d" % n_a)
    check(m["dsc_cache_hits_total"] == n_a, "warm: %d hits" % n_a)
    check(m['dsc_read_bytes_total{source="cache"}'] == bytes_a,
          "warm: %d bytes from the cache" % bytes_a)
    check(m["dsc_saved_requests"] == n_a, "warm: %d GETs saved" % n_a)
    check(m["dsc_saved_bytes"] == bytes_a, "warm: %d bytes saved" % bytes_a)
    dollars(m, DEFAULT, n_a, len(keys_a), 0, bytes_a, n_a, bytes_a)
    print("warm: saved %s requests, %s transfer (dollars)" %
          (m['dsc_saved_dollars{item="requests"}'],
           m['dsc_saved_dollars{item="transfer"}']))

    # --- 3. prefetched chunks: the first read saves nothing, the second does
    r = run(["dsc-prefetch", "s3://%s/metrics/b/" % BUCKET])
    check(r.returncode == 0, "dsc-prefetch metrics/b/ (%s)" % r.stderr[-200:])
    m = prom()
    check(m['dsc_s3_requests_total{kind="list"}'] == 1, "prefetch: one LIST")
    check(m['dsc_s3_requests_total{kind="get"}'] == n_a + n_b,
          "prefetch: %d more GETs" % n_b)
    check(m["dsc_prefetched_chunks_total"] == n_b, "%d chunks prefetched" % n_b)
    check(m["dsc_prefetched_bytes_total"] == bytes_b, "%d bytes prefetched" % bytes_b)
    cat_all(keys_b)
    m = prom()
    check(m["dsc_cache_hits_total"] == n_a + n_b, "prefetched reads are hits")
    check(m["dsc_saved_requests"] == n_a,
          "the first read of a prefetched chunk saves no GET")
    check(m["dsc_saved_bytes"] == bytes_a, "...nor its bytes")
    cat_all(keys_b)
    m = prom()
    check(m["dsc_saved_requests"] == n_a + n_b, "the second read saves one")
    check(m["dsc_saved_bytes"] == bytes_a + bytes_b, "...and its bytes")
    check(m['dsc_s3_requests_total{kind="get"}'] == n_a + n_b,
          "no GET for reads of prefetched chunks")
    dollars(m, DEFAULT, n_a + n_b, len(keys_a), 1, bytes_a + bytes_b,
            n_a + n_b, bytes_a + bytes_b)

    # --- 4. prefixes add up; the summary shows the top ones
    for src in ("s3", "cache", "peer"):
        total = sum(v for k, v in m.items() if k.startswith(
            "dsc_prefix_read_bytes_total{") and 'source="%s"' % src in k)
        check(total == m['dsc_read_bytes_total{source="%s"}' % src],
              "prefix bytes from %s add up to the node's" % src)
    pa = 'dsc_prefix_read_bytes_total{bucket="%s",prefix="metrics/a/",source="%s"}'
    check(m[pa % (BUCKET, "cache")] == bytes_a and m[pa % (BUCKET, "s3")] == bytes_a,
          "metrics/a/: its bytes from S3 and from the cache")
    j = stat_json()
    top = [(t["bucket"], t["prefix"]) for t in j["top_prefixes"]]
    check(top[:2] == [(BUCKET, "metrics/a/"), (BUCKET, "metrics/b/")],
          "--json top prefixes, most bytes first: %s" % top[:2])
    check(j["top_prefixes"][0]["bytes"] == 2 * bytes_a, "--json prefix bytes")
    same = {"hits": "dsc_cache_hits_total",
            "s3_gets": 'dsc_s3_requests_total{kind="get"}',
            "s3_heads": 'dsc_s3_requests_total{kind="head"}',
            "s3_lists": 'dsc_s3_requests_total{kind="list"}',
            "s3_bytes": 'dsc_read_bytes_total{source="s3"}',
            "cache_read_bytes": 'dsc_read_bytes_total{source="cache"}',
            "prefetched_chunks": "dsc_prefetched_chunks_total",
            "saved_requests": "dsc_saved_requests",
            "saved_bytes": "dsc_saved_bytes"}
    diff = {k: (j[k], m[v]) for k, v in same.items() if j[k] != m[v]}
    check(not diff and j["hits"] == n_a + 2 * n_b,
          "--json counters = the exposition's %s" % (diff or ""))
    check(close(j["cost_dollars"]["saved"], m['dsc_saved_dollars{item="requests"}'] +
                m['dsc_saved_dollars{item="transfer"}']), "--json saved dollars")
    human = run(["dsc-stat"]).stdout
    print(human)
    check(re.search(r"^hit ratio +\d+\.\d%", human, re.M) is not None, "summary: hit ratio")
    check(re.search(r"^cost saved +\$[\d.]+: %d GETs" % (n_a + n_b), human, re.M)
          is not None, "summary: cost saved")
    check(re.search(r"^top prefixes by bytes read", human, re.M) is not None and
          human.index("s3://%s/metrics/a/" % BUCKET) <
          human.index("s3://%s/metrics/b/" % BUCKET), "summary: top prefixes")

    # --- 5. prices: from the environment, checked
    mine = {"get_per_1000": 1.5, "list_per_1000": 2, "egress_per_gb": 0.25}
    penv = dict(DSC_PRICE_GET_PER_1000="1.5", DSC_PRICE_LIST_PER_1000="2",
                DSC_PRICE_EGRESS_PER_GB=".25")
    m2 = prom(**penv)
    dollars(m2, mine, n_a + n_b, len(keys_a), 1, bytes_a + bytes_b,
            n_a + n_b, bytes_a + bytes_b)
    check(all(m2[k] == v for k, v in m.items() if "dollars" not in k),
          "prices change the dollars only")
    j2 = stat_json(**penv)
    check(close(j2["cost_dollars"]["requests_spent"],
                ((n_a + n_b + len(keys_a)) * 1.5 + 2) / 1000), "--json spent at set prices")
    for var, bad in (("DSC_PRICE_EGRESS_PER_GB", "ten"),
                     ("DSC_PRICE_GET_PER_1000", "-0.1"),
                     ("DSC_PRICE_LIST_PER_1000", "5e-3")):
        r = run(["dsc-stat", "--prometheus"], **{var: bad})
        check(r.returncode == 1 and "%s=%s" % (var, bad) in r.stderr and
              "not a price" in r.stderr, "dsc-stat refuses %s=%s: %s" %
              (var, bad, r.stderr.strip()))
    r = run(["dsc-cat", "s3://%s/%s" % (BUCKET, keys_a[0])],
            DSC_PRICE_EGRESS_PER_GB="0,09")
    check(r.returncode == 1 and "DSC_PRICE_EGRESS_PER_GB=0,09" in r.stderr,
          "a reader refuses a bad price too: %s" % r.stderr.strip())
    r = run(["dsc-stat"], DSC_PREFIX_DEPTH="0")
    check(r.returncode == 1 and "DSC_PREFIX_DEPTH=0" in r.stderr,
          "DSC_PREFIX_DEPTH is checked: %s" % r.stderr.strip())


if __name__ == "__main__":
    try:
        run_test(main, "metrics/")
    finally:
        shutil.rmtree(CACHE, ignore_errors=True)
