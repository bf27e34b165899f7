#!/usr/bin/python3
"""libdsc (through the Python package) behind faultproxy.py, a proxy in
front of the real s3rver that breaks answers on purpose: 500/503 bursts,
connection resets, cut and over-long bodies, shifted Content-Range, stalls,
latency. For every fault each object is read whole and in random ranges
through a fresh cache (and ranges without a cache), and every read must
either return exactly the uploaded bytes or raise a dsc error within the
time the settings allow - never wrong bytes, never a hang. Faults a retry
cures must be cured; persistent ones must give a clear error.

Not asserted: "corrupt" (flipped body bytes with every header right) on the
S3 path. S3 range answers carry no checksum libdsc can check per chunk; it
validates status, Content-Range, ETag and length, which a byzantine origin
keeps right. The proxy mode exists for the peer path; here it is checked
on the proxy alone, and libdsc's S3-path behaviour is only reported.

Run through tests/run.sh (s3rver, bucket and credentials in the
environment), with /usr/bin/python3 (python3-boto3). The library under test
is $DSC_LIBRARY, else $OUT/libdsc.so.0 (OUT defaults to lib).
"""
import faulthandler
import http.client
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(HERE))

from faultproxy import FaultProxy, ProxyProcess, Rule  # noqa: E402
from test_python_client import use_library_under_test  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
CHUNK = 256 * KiB
THREADS = 8             # prefetch_threads: a read fetches THREADS + 1 chunks at once
BASE = dict(chunk_size=CHUNK, prefetch_threads=THREADS, connect_timeout_ms=1000,
            request_timeout_ms=1500, max_retries=4, retry_base_ms=10,
            retry_max_ms=100, max_connections=16)
SLACK_S = 3.0           # scheduling, s3rver, the proxy being Python (and ASan)


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit("%s is not set: run through tests/run.sh" % name)
    return value


# ---- time bounds ----------------------------------------------------------

def request_bound(cfg, latency_ms=0):
    """Longest one S3 request may take, retries included (README: (retries
    + 1) x request timeout plus the backoff sleeps, each at most the
    ceiling), in seconds."""
    r = cfg["max_retries"]
    return ((r + 1) * (cfg["request_timeout_ms"] + latency_ms)
            + r * cfg["retry_max_ms"]) / 1000.0


def read_bound(cfg, length, opens=True, latency_ms=0):
    """A read of `length` bytes: its HEAD (when it opens the object), then
    its chunks THREADS + 1 at a time, each within request_bound. One extra
    round covers a chunk being joined (single flight: a readahead fetch of
    it is running) rather than fetched."""
    chunks = max(1, math.ceil(length / cfg["chunk_size"]) + 1)
    rounds = math.ceil(chunks / (THREADS + 1)) + 1
    one = request_bound(cfg, latency_ms)
    return (one if opens else 0) + rounds * one + SLACK_S


# ---- scenarios ------------------------------------------------------------

class Scenario:
    """expect: "ok" (every read right), "any" (right bytes or a dsc error),
    or (exception classes, words one of which the message must contain).
    known_bug: (text, sign) of a libdsc bug this scenario shows: an error
    for which sign(exception) is true is reported as that bug instead of
    failing the suite. Wrong bytes and overtime still fail; so does any
    other error."""

    def __init__(self, name, rules, expect="ok", keys=None, ranges=4,
                 uncached=True, whole=True, known_bug=None, **config):
        self.name = name
        self.rules = rules
        self.known_bug = known_bug
        self.expect = expect
        self.keys = keys
        self.ranges = ranges
        self.uncached = uncached
        self.whole = whole
        self.config = dict(BASE, **config)


# Regressions found by this test, fixed in lib/: garbage after a correct
# body used to poison the pooled connection (the next request failed with a
# non-retried DSC_EURL "Received HTTP/0.9"; now DSC_EPROTO, retried on a new
# connection), and a chunk failing on a fetcher thread used to return its
# code with an empty dsc_errmsg() (now the fetcher's detail comes along).


def scenarios(dsc):
    small = ["small"]
    persistent = dict(keys=small, ranges=1, max_retries=2)
    return [
        # -- cured by retries: bursts no longer than max_retries (4) --
        Scenario("503 SlowDown burst", [Rule("slow_down", count=4)]),
        Scenario("500 InternalError burst", [Rule("internal_error", count=4)]),
        Scenario("reset mid-body", [Rule("reset", count=4, method="GET", fraction=0.5)]),
        Scenario("reset before answer", [Rule("reset", count=3, headers=False)]),
        Scenario("truncated body", [Rule("truncate", count=4, method="GET", fraction=0.3)]),
        Scenario("over-long, extra bytes", [Rule("overlong", count=4, method="GET",
                                                 mode="extra", extra=1000)]),
        Scenario("over-long, big Content-Length", [Rule("overlong", count=4, method="GET",
                                                        mode="length", extra=4096)]),
        Scenario("wrong Content-Range", [Rule("bad_range", count=4, method="GET", shift=1)]),
        Scenario("stall, first GET", [Rule("stall", count=1, method="GET")],
                 request_timeout_ms=800),
        Scenario("stall mid-body, first GET", [Rule("stall_body", count=1, method="GET")],
                 request_timeout_ms=800),
        Scenario("latency 25 ms", [Rule("latency", latency_ms=25)]),
        Scenario("over-long extra, every GET", [Rule("overlong", method="GET", extra=700)]),
        Scenario("mix p=0.05 each (seeded)", [
            Rule("slow_down", prob=0.05, seed=1), Rule("internal_error", prob=0.05, seed=2),
            Rule("reset", prob=0.05, seed=3, method="GET"),
            Rule("truncate", prob=0.05, seed=4, method="GET"),
            Rule("overlong", prob=0.05, seed=5, method="GET", mode="length"),
            Rule("bad_range", prob=0.05, seed=6, method="GET"),
            Rule("latency", prob=0.2, seed=7, latency_ms=10)], expect="any"),
        # -- persistent: a clear error within the deadline --
        Scenario("503 SlowDown always (HEAD too)", [Rule("slow_down")],
                 expect=((dsc.Throttled,), ("503",)), **persistent),
        Scenario("503 SlowDown always, GET", [Rule("slow_down", method="GET")],
                 expect=((dsc.Throttled,), ("SlowDown",)), **persistent),
        Scenario("500 InternalError always, GET", [Rule("internal_error", method="GET")],
                 expect=((dsc.ServerError,), ("InternalError",)), **persistent),
        Scenario("reset always, GET", [Rule("reset", method="GET")],
                 expect=((dsc.NetworkError,), ("reset", "Recv failure")), **persistent),
        Scenario("truncated always, GET", [Rule("truncate", method="GET")],
                 expect=((dsc.NetworkError, dsc.ProtocolError),
                         ("remaining", "short body", "closed")), **persistent),
        Scenario("big Content-Length always, GET", [Rule("overlong", method="GET",
                                                         mode="length")],
                 expect=((dsc.ProtocolError,), ("longer",)), **persistent),
        Scenario("wrong Content-Range always, GET", [Rule("bad_range", method="GET")],
                 expect=((dsc.ProtocolError,), ("Content-Range",)), **persistent),
        Scenario("stall always, GET", [Rule("stall", method="GET")],
                 expect=((dsc.Timeout,), ("timed out", "Timeout")),
                 request_timeout_ms=500, **persistent),
        Scenario("stall mid-body always, GET", [Rule("stall_body", method="GET")],
                 expect=((dsc.Timeout,), ("timed out", "Timeout")),
                 request_timeout_ms=500, **persistent),
        # Only the second chunk fails: a fetcher thread usually fetches it.
        Scenario("500 always on chunk 2 only", [
            Rule("internal_error", method="GET", header={"Range": "bytes=%d-" % CHUNK})],
                 expect=((dsc.ServerError,), ("InternalError",)), keys=["medium"],
                 ranges=0, uncached=False, max_retries=2),
    ]


class Harness:
    def __init__(self):
        import boto3
        from botocore.config import Config
        self.endpoint = env("DSC_TEST_ENDPOINT")
        self.bucket = env("DSC_TEST_BUCKET")
        self.tmp = tempfile.mkdtemp(prefix="fault-proxy-", dir=env("DSC_TEST_STATE"))
        self.prefix = "faultproxy-%d-%s/" % (os.getpid(), os.urandom(4).hex())
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="S3RVER",
            aws_secret_access_key="S3RVER", region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}))
        self.objects = {}
        self.proxy = None
        self.caches = 0
        self.rows = []
        self.known = []

    def upload(self):
        rng = random.Random(20261126)
        for name, size in (("small", KiB), ("medium", 300 * KiB),
                           ("large", 5 * MiB + 7)):
            data = rng.randbytes(size)
            key = self.prefix + name
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
            self.objects[name] = ("s3://%s/%s" % (self.bucket, key), data)

    def cleanup(self):
        if self.proxy is not None:
            if not self.proxy.stop():
                print("warning: proxy threads still running after stop()")
            self.proxy = None
        for _, (url, _) in self.objects.items():
            try:
                self.s3.delete_object(Bucket=self.bucket,
                                      Key=url.split("/", 3)[3])
            except Exception as e:      # s3rver goes away with run.sh anyway
                print("warning: could not delete %s: %s" % (url, e))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cache_dir(self):
        self.caches += 1
        return os.path.join(self.tmp, "cache-%d" % self.caches)


class Outcome:
    def __init__(self):
        self.reads = 0
        self.ok = 0
        self.errors = {}            # "Class (code)" -> count
        self.error_samples = []
        self.known = 0              # errors excused as a known libdsc bug
        self.worst = 0.0            # largest elapsed / bound
        self.worst_s = 0.0
        self.worst_bound = 0.0
        self.retries = 0

    def result(self):
        parts = []
        if self.ok:
            parts.append("ok bytes %d/%d" % (self.ok, self.reads))
        parts += ["%s x%d" % kv for kv in sorted(self.errors.items())]
        return ", ".join(parts)


def timed(what, fn, bound, want, sc, out):
    """Run one read under a watchdog; check bytes, error and time."""
    import dsc
    # A hang ends the process with every thread's traceback, not a stuck run.
    faulthandler.dump_traceback_later(bound + 20, exit=True)
    t0 = time.monotonic()
    try:
        got, err = fn(), None
    except dsc.Error as e:
        got, err = None, e
    finally:
        elapsed = time.monotonic() - t0
        faulthandler.cancel_dump_traceback_later()
    out.reads += 1
    if elapsed / bound > out.worst:
        out.worst, out.worst_s, out.worst_bound = elapsed / bound, elapsed, bound
    assert elapsed <= bound, "%s: %.2f s, over the %.2f s bound" % (what, elapsed, bound)
    if err is None:
        if got != want:
            diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                        min(len(got), len(want)))
            raise AssertionError("%s: WRONG BYTES (%d returned, %d expected, first "
                                 "difference at %d)" % (what, len(got), len(want), diff))
        out.ok += 1
        if isinstance(sc.expect, tuple):
            raise AssertionError("%s: succeeded under a persistent fault" % what)
        return
    label = "%s(%d)" % (type(err).__name__, err.code)
    if sc.known_bug and sc.known_bug[1](err):
        out.known += 1
        label = "known bug: " + label
    out.errors[label] = out.errors.get(label, 0) + 1
    if len(out.error_samples) < 3:
        out.error_samples.append(str(err))
    if label.startswith("known bug"):
        return
    if sc.expect == "ok":
        raise AssertionError("%s: %s under a fault retries should cure" % (what, err))
    if isinstance(sc.expect, tuple):
        classes, words = sc.expect
        assert isinstance(err, classes), "%s: %r, expected %s" % (
            what, err, "/".join(c.__name__ for c in classes))
        assert any(w in str(err) for w in words), "%s: %r names none of %s" % (
            what, str(err), words)


def run_scenario(h, sc):
    import dsc
    h.proxy.set_rules(sc.rules)
    h.proxy.reset_counts()
    out = Outcome()
    cfg = sc.config
    lat = sum(r.params["latency_ms"] for r in sc.rules if r.fault == "latency")
    rng = random.Random(zlib.crc32(sc.name.encode()))
    keys = sc.keys or list(h.objects)
    t0 = time.monotonic()
    try:
        with dsc.Client(endpoint=h.proxy.url, cache_dir=h.cache_dir(), **cfg) as c:
            for key in keys:
                url, data = h.objects[key]
                if sc.ranges:
                    f = timed_open(c, url, request_bound(cfg, lat) + SLACK_S, sc, out)
                    if f is not None:
                        assert f.size == len(data), (key, f.size, len(data))
                        with f:
                            for off, n in random_ranges(rng, len(data), sc.ranges):
                                timed("%s cached pread(%d, %d)" % (key, off, n),
                                      lambda: f.pread(off, n),
                                      read_bound(cfg, n, opens=False, latency_ms=lat),
                                      data[off:off + n], sc, out)
                if sc.whole:
                    timed("%s cached whole read" % key, lambda: c.read(url),
                          read_bound(cfg, len(data), latency_ms=lat), data, sc, out)
            out.retries += c.stats()["s3_retries"]
        if sc.uncached:
            with dsc.Client(endpoint=h.proxy.url, cache_dir="", **cfg) as c:
                for key in keys:
                    url, data = h.objects[key]
                    for off, n in random_ranges(rng, len(data), max(1, sc.ranges // 2)):
                        timed("%s uncached read(%d, %d)" % (key, off, n),
                              lambda: c.read(url, off, n),
                              request_bound(cfg, lat) * 2 + SLACK_S,
                              data[off:off + n], sc, out)
                out.retries += c.stats()["s3_retries"]
    finally:
        took = time.monotonic() - t0
        counts = h.proxy.counts()
        result = out.result()
        h.rows.append((sc.name, counts["requests"], counts["faulted"] + counts["latency"], result,
                       out.retries, took, out.worst_s, out.worst_bound))
    if sc.expect == "ok" or isinstance(sc.expect, tuple):
        faults = [r for r in sc.rules if r.fault != "latency"]
        if faults:
            assert counts["faulted"] > 0, "%s: the proxy faulted nothing" % sc.name
    if out.error_samples:
        print("    %s: e.g. %s" % (sc.name, out.error_samples[0]))
    if sc.known_bug:
        if out.known:
            h.known.append("%s: %s" % (sc.name, sc.known_bug[0]))
            print("    KNOWN BUG (reported, not failing the suite): %s" % sc.known_bug[0])
        else:
            print("    known bug did not show this run (fixed? then drop known_bug): %s"
                  % sc.known_bug[0])
    return out


def prefetch_scenario(h):
    """Background prefetch (its first ranged GET also learns size and ETag,
    without a HEAD) under bursts of body faults, then reads from the cache."""
    import dsc
    rules = [Rule("bad_range", count=2, method="GET"),
             Rule("truncate", count=2, method="GET"),
             Rule("overlong", count=2, method="GET", mode="length"),
             Rule("reset", count=2, method="GET")]
    h.proxy.set_rules(rules)
    h.proxy.reset_counts()
    cfg = dict(BASE)
    urls = [url for url, _ in h.objects.values()]
    total = sum(len(d) for _, d in h.objects.values())
    bound = read_bound(cfg, total)
    out = Outcome()
    t0 = time.monotonic()
    with dsc.Client(endpoint=h.proxy.url, cache_dir=h.cache_dir(), **cfg) as c:
        faulthandler.dump_traceback_later(bound + 20, exit=True)
        try:
            assert c.prefetch(urls) == len(urls)
            done = c.wait(timeout=bound)
        finally:
            faulthandler.cancel_dump_traceback_later()
        waited = time.monotonic() - t0
        assert done, "prefetch did not finish within %.1f s" % bound
        st = c.stats()
        assert st["prefetch_errors"] == 0, st
        faulted = h.proxy.counts()["faulted"]
        gets_before = h.proxy.counts()["requests"]
        sc = Scenario("prefetch", rules)
        for url, data in h.objects.values():
            timed("cached read of prefetched %s" % url, lambda: c.read(url),
                  read_bound(cfg, len(data)), data, sc, out)
        st = c.stats()
        out.retries = st["s3_retries"]
        # Everything came from the cache: at most HEADs went out after the prefetch.
        assert st["misses"] == 0, st
    counts = h.proxy.counts()
    h.rows.append(("prefetch: 2 each of 4 body faults", counts["requests"], faulted,
                   out.result() + " (cache hits, %d reqs after)" % (
                       counts["requests"] - gets_before),
                   out.retries, time.monotonic() - t0, waited, bound))


def timed_open(c, url, bound, sc, out):
    """Open (one HEAD) within the bound. A fault on GETs only must not
    fail it; a fault on every method may, with a dsc error."""
    import dsc
    faulthandler.dump_traceback_later(bound + 20, exit=True)
    t0 = time.monotonic()
    try:
        return c.open(url)
    except dsc.Error as e:
        excused = sc.known_bug and sc.known_bug[1](e)
        if not excused and (sc.expect == "ok" or (isinstance(sc.expect, tuple) and
                                                  all(r.methods == {"GET"} for r in sc.rules))):
            raise AssertionError("open %s: %s" % (url, e))
        label = "%s(%d) at open" % (type(e).__name__, e.code)
        if sc.known_bug and sc.known_bug[1](e):
            out.known += 1
            label = "known bug: " + label
        out.errors[label] = out.errors.get(label, 0) + 1
        if len(out.error_samples) < 3:
            out.error_samples.append(str(e))
        return None
    finally:
        elapsed = time.monotonic() - t0
        faulthandler.cancel_dump_traceback_later()
        assert elapsed <= bound, "open %s: %.2f s, over the %.2f s bound" % (
            url, elapsed, bound)


def random_ranges(rng, size, n):
    """n ranges: one across the first chunk boundary, the rest random (up to
    two chunks long)."""
    out = []
    if size > CHUNK and n:
        out.append((CHUNK - 100, min(200, size - CHUNK + 100)))
    while len(out) < n:
        off = rng.randrange(size)
        out.append((off, rng.randint(1, min(size - off, 2 * CHUNK + 999))))
    return out


# ---- the proxy on its own (no libdsc) ---------------------------------------

def raw_get(port, target, rng_header):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", target, headers={"Range": rng_header})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def check_proxy_alone(h):
    """What each mode puts on the wire, seen by http.client."""
    url, data = h.objects["medium"]
    target = "/%s/%s" % (h.bucket, url.split("/", 3)[3])
    p = h.proxy
    drop = {"date", "connection", "keep-alive"}

    p.set_rules([])
    st, hd, body = raw_get(p.port, target, "bytes=1000-200999")
    assert st == 206 and body == data[1000:201000], st
    assert hd["Content-Range"] == "bytes 1000-200999/%d" % len(data), hd

    # corrupt: same status and headers, same length, exactly `flips` bytes inverted.
    p.set_rules([Rule("corrupt", count=1, flips=5, seed=3)])
    st2, hd2, bad = raw_get(p.port, target, "bytes=1000-200999")
    same = {k: v for k, v in hd.items() if k.lower() not in drop}
    assert st2 == 206 and {k: v for k, v in hd2.items() if k.lower() not in drop} == same
    diffs = [i for i in range(len(bad)) if bad[i] != body[i]]
    assert len(bad) == len(body) and len(diffs) == 5, diffs
    assert all(bad[i] == body[i] ^ 0xFF for i in diffs)
    assert p.counts()["corrupt"] == 1 and p.counts()["corrupt_bytes"] == 5
    # count=1: the next answer is clean again.
    assert raw_get(p.port, target, "bytes=1000-200999")[2] == body

    p.set_rules([Rule("bad_range", count=1, shift=7)])
    st, hd, b = raw_get(p.port, target, "bytes=10-19")
    assert hd["Content-Range"] == "bytes 17-26/%d" % len(data) and b == data[10:20], hd

    p.set_rules([Rule("overlong", count=1, mode="length", extra=33)])
    st, hd, b = raw_get(p.port, target, "bytes=0-99")
    assert hd["Content-Length"] == "133" and len(b) == 133 and b[:100] == data[:100]

    p.set_rules([Rule("slow_down", count=1)])
    st, hd, b = raw_get(p.port, target, "bytes=0-99")
    assert st == 503 and b"<Code>SlowDown</Code>" in b, (st, b)

    p.set_rules([Rule("truncate", count=1, fraction=0.25)])
    try:
        raw_get(p.port, target, "bytes=0-99999")
        raise AssertionError("a truncated body read whole")
    except http.client.IncompleteRead as e:
        assert len(e.partial) == 25000, len(e.partial)

    p.set_rules([Rule("reset", count=1)])
    try:
        raw_get(p.port, target, "bytes=0-99999")
        raise AssertionError("a reset connection read whole")
    except (ConnectionResetError, http.client.IncompleteRead):
        pass

    # Seeded probability: the same decisions on every run; count caps them.
    a, b = Rule("reset", prob=0.3, seed=9), Rule("reset", prob=0.3, seed=9)
    seq = [a.fire() for _ in range(200)]
    assert seq == [b.fire() for _ in range(200)] and 40 < sum(seq) < 80, sum(seq)
    capped = Rule("slow_down", count=3)
    assert sum(capped.fire() for _ in range(10)) == 3
    f = Rule("truncate", method="GET", path="medium")
    assert f.matches("GET", target) and not f.matches("HEAD", target)
    assert not f.matches("GET", "/b/small")
    p.set_rules([])
    h.rows.append(("proxy alone: every mode on the wire", p.counts()["requests"],
                   p.counts()["faulted"], "as specified", 0, 0.0, 0.0, 0.0))


def check_process_mode(h):
    """faultproxy.py as its own process, rules over its control API,
    stopped by PID."""
    import dsc
    url, data = h.objects["medium"]
    upstream = h.endpoint.split("//", 1)[1]
    cfg = dict(BASE)
    t0 = time.monotonic()
    workdir = os.path.join(h.tmp, "proc")
    os.makedirs(workdir)
    with ProxyProcess(upstream, workdir=workdir) as pp:
        pp.set_rules([Rule("slow_down", count=2, method="GET"),
                      Rule("reset", count=1, method="GET")])
        with dsc.Client(endpoint=pp.url, cache_dir=h.cache_dir(), **cfg) as c:
            faulthandler.dump_traceback_later(read_bound(cfg, len(data)) + 20, exit=True)
            try:
                got = c.read(url)
            finally:
                faulthandler.cancel_dump_traceback_later()
            retries = c.stats()["s3_retries"]
        assert got == data
        counts = pp.counts()
        assert counts["slow_down"] == 2 and counts["reset"] == 1, counts
        pid = pp.pid
    assert pp.proc.returncode == 0, pp.proc.returncode
    assert pp.final_counts and pp.final_counts["faulted"] == 3, pp.final_counts
    try:
        os.kill(pid, 0)
        raise AssertionError("faultproxy process %d still running" % pid)
    except ProcessLookupError:
        pass
    h.rows.append(("process mode (slow_down x2, reset x1)", counts["requests"],
                   counts["faulted"], "ok bytes 1/1", retries,
                   time.monotonic() - t0, 0.0, 0.0))


def corrupt_probe(h):
    """Not asserted (see the module docstring): what libdsc does with a
    byte-flipping origin on the S3 path."""
    import dsc
    url, data = h.objects["medium"]
    h.proxy.set_rules([Rule("corrupt", count=1, method="GET", flips=4, seed=11)])
    h.proxy.reset_counts()
    t0 = time.monotonic()
    with dsc.Client(endpoint=h.proxy.url, cache_dir=h.cache_dir(), **BASE) as c:
        try:
            got = c.read(url)
            wrong = sum(1 for a, b in zip(got, data) if a != b)
            result = ("undetected: %d bytes differ (expected, no checksum)" % wrong
                      if wrong else "detected/refetched")
        except dsc.Error as e:
            result = "error %s" % type(e).__name__
    counts = h.proxy.counts()
    h.rows.append(("corrupt, S3 path (info, not asserted)", counts["requests"],
                   counts["faulted"], result, 0, time.monotonic() - t0, 0.0, 0.0))
    h.proxy.set_rules([])


def print_table(rows):
    head = ("fault", "reqs", "faulted", "result", "retries", "time s", "worst read s/bound")
    lines = [head] + [
        (r[0], str(r[1]), str(r[2]), r[3], str(r[4]), "%.2f" % r[5],
         "%.2f/%.1f" % (r[6], r[7]) if r[7] else "-") for r in rows]
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    for n, l in enumerate(lines):
        print("  " + " | ".join(c.ljust(w) for c, w in zip(l, widths)))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))


def main():
    use_library_under_test()
    import dsc
    h = Harness()
    started = time.monotonic()
    failed = []
    try:
        h.upload()
        h.proxy = FaultProxy(h.endpoint.split("//", 1)[1]).start()
        checks = [("proxy alone", lambda: check_proxy_alone(h))]
        checks += [(sc.name, (lambda sc=sc: run_scenario(h, sc))) for sc in scenarios(dsc)]
        checks += [("prefetch", lambda: prefetch_scenario(h)),
                   ("process mode", lambda: check_process_mode(h)),
                   ("corrupt probe", lambda: corrupt_probe(h))]
        for name, fn in checks:
            t0 = time.monotonic()
            try:
                fn()
            except Exception:
                failed.append(name)
                print("  FAIL %s" % name)
                traceback.print_exc()
            else:
                print("  ok   %s (%.0f ms)" % (name, 1000 * (time.monotonic() - t0)))
            sys.stdout.flush()
    finally:
        h.cleanup()
    print()
    print_table(h.rows)
    total = time.monotonic() - started
    print("\nfault-proxy: %d checks, %d failed, %.1f s" % (
        len(h.rows), len(failed), total))
    for name in failed:
        print("FAILED: %s" % name)
    for text in h.known:
        print("KNOWN BUG: %s" % text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
