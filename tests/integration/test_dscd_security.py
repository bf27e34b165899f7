#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""dscd's door: requests signed with the cluster secret (by this test's own
signer, cross-checked with the library's) get the chunk with a valid
response signature; missing, wrong, stale, future, other-secret and
tampered signatures get 401 and no data; no path reaches anything but a
cached chunk; the cache directory and files are private (0700/0600);
/healthz and /metrics answer. Run through tests/run.sh."""
import http.client
import os
import shutil
import stat
import subprocess
import time

from peerlib import (BUCKET, CHUNK, ORIGIN, STATE, TOOL, Dscd, check, chunk_headers,
                     resp_sig, run_test, s3, sign)

SECRET = "security-test-secret-51c2"


def request(node, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    return r.status, hdrs, body


def main():
    data = os.urandom(3 * CHUNK + 5000)
    key = "security/weird key+ü/obj.bin"
    etag = s3().put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]
    size = len(data)
    cache = STATE / "security-node"
    shutil.rmtree(cache, ignore_errors=True)
    node = Dscd("security", cache, SECRET)
    try:
        # The library signs exactly as this test does.
        t = int(time.time())
        ours = sign(SECRET, "GET", "/v1/chunk/" + subprocess.check_output(
            [str(TOOL), "id", ORIGIN, BUCKET, key, etag, str(size), str(CHUNK), "1"],
            text=True).strip(), BUCKET, key, etag, size, CHUNK, 1, t)
        lib = subprocess.check_output(
            [str(TOOL), "sign", SECRET, ORIGIN, "GET", BUCKET, key, etag, str(size),
             str(CHUNK), "1", str(t)], text=True).strip()
        check(ours == lib, "library and test sign alike")

        # A good request: the chunk, with a response signature.
        for index in (1, 3):
            path, h = chunk_headers(SECRET, "GET", BUCKET, key, etag, size,
                                    CHUNK, index)
            st, hd, body = request(node, "GET", path, h)
            want = data[index * CHUNK:(index + 1) * CHUNK]
            check(st == 200 and body == want,
                  "signed GET of chunk %d: 200 and the right %d bytes (%d, %d)"
                  % (index, len(want), st, len(body)))
            check(hd.get("x-dsc-sig") == resp_sig(SECRET, h["X-Dsc-Auth"],
                                                  len(want), hd.get("x-dsc-xxh3", "")),
                  "chunk %d: response signature verifies" % index)
        # Again: now from the verified file (sendfile path).
        path, h = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, CHUNK, 1)
        st, hd, body = request(node, "GET", path, h)
        check(st == 200 and body == data[CHUNK:2 * CHUNK], "repeat GET: right bytes")
        path, h = chunk_headers(SECRET, "HEAD", BUCKET, key, etag, size, CHUNK, 2)
        st, hd, body = request(node, "HEAD", path, h)
        check(st == 200 and body == b"" and "x-dsc-sig" in hd,
              "signed HEAD: 200, no body, signed (%d)" % st)

        # Bad signatures: 401, and no data.
        def refused(what, path, h, method="GET", code=401):
            st, _, body = request(node, method, path, h)
            leaked = len(body) >= 64 and body in data
            check(st == code and not leaked,
                  "%s: %d and no data (got %d, %d bytes)" % (what, code, st, len(body)))

        path, h = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0)
        refused("no signature", path, {k: v for k, v in h.items()
                                       if k != "X-Dsc-Auth"})
        refused("no time", path, {k: v for k, v in h.items()
                                  if k != "X-Dsc-Time"})
        bad = dict(h, **{"X-Dsc-Auth": ("0" if h["X-Dsc-Auth"][0] != "0" else "1")
                         + h["X-Dsc-Auth"][1:]})
        refused("wrong signature", path, bad)
        refused("garbage signature", path, dict(h, **{"X-Dsc-Auth": "zz" * 32}))
        path_o, h_o = chunk_headers("another-secret", "GET", BUCKET, key, etag,
                                    size, CHUNK, 0)
        refused("other secret", path_o, h_o)
        for skew in (-3600, 3600):
            p, hs = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, CHUNK,
                                  0, t=int(time.time()) + skew)
            refused("stale/future time (%+d s)" % skew, p, hs)
        tampered = dict(h, **{"X-Dsc-Chunk": "%d/1" % CHUNK})
        refused("header changed after signing", path, tampered)
        refused("GET signature used for HEAD", path, h, method="HEAD")

        # Well signed, but the path's id is another chunk's: 400.
        p1, _ = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, CHUNK, 1)
        p, hs = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0,
                              path_id=p1.rsplit("/", 1)[1])
        refused("id not the identity's", p, hs, code=400)
        # Another chunk size than the node's: 400 with the reason.
        p, hs = chunk_headers(SECRET, "GET", BUCKET, key, etag, size, 2 * CHUNK, 0)
        st, _, body = request(node, "GET", p, hs)
        check(st == 400 and b"chunk size" in body, "other chunk size: 400 (%d)" % st)
        # A missing object: 502 with S3's reason.
        p, hs = chunk_headers(SECRET, "GET", BUCKET, "security/none", '"x"', 10,
                              CHUNK, 0)
        st, _, body = request(node, "GET", p, hs)
        check(st == 502 and b"s3:" in body, "missing object: 502 (%d %r)" % (st, body[:80]))

        # Nothing outside the cache, by any path.
        files = [p for p in cache.rglob("*") if p.is_file()]
        secrets = [b"root:", b"MDB", SECRET.encode()] + \
                  [f.read_bytes()[:32] for f in files if f.stat().st_size >= 32]
        tricks = ["/etc/passwd", "/../../../../etc/passwd",
                  "/v1/chunk/../../../../etc/passwd",
                  "/v1/chunk/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                  "/v1/chunk/..%2f..%2f..%2fetc%2fpasswd",
                  "/index/data.mdb", "/data/", "/tmp/", "/locks",
                  "/v1/chunk/" + "0" * 32 + "/../../index/data.mdb",
                  "/v1/chunk/" + path.rsplit("/", 1)[1] + "-0000000000000001",
                  "/v1/chunk/" + path.rsplit("/", 1)[1].upper(),
                  "/v1/chunk/" + "g" * 32, "/v1/chunk/", "/v1/chunk",
                  "//v1/chunk/" + path.rsplit("/", 1)[1], "/metrics/../index"]
        for trick in tricks:
            for hs in (None, h):      # unsigned, and with a valid signature
                st, _, body = request(node, "GET", trick, hs)
                leak = any(s and s in body for s in secrets)
                check(st in (400, 401, 404) and not leak,
                      "path %r (%s): %d, nothing leaked" %
                      (trick, "signed" if hs else "unsigned", st))
        for method in ("POST", "PUT", "DELETE"):
            st, _, _ = request(node, method, path, h)
            check(st == 405, "%s: 405 (%d)" % (method, st))

        # Private files.
        def mode(p):
            return stat.S_IMODE(os.stat(p).st_mode)
        dirs = [cache] + [p for p in cache.rglob("*") if p.is_dir()]
        bad_dirs = [str(d) for d in dirs if mode(d) & 0o077]
        bad_files = ["%s %o" % (f, mode(f)) for f in files if mode(f) & 0o077]
        check(mode(cache) == 0o700, "cache dir is 0700 (%o)" % mode(cache))
        check(not bad_dirs, "no directory open to others %s" % bad_dirs[:3])
        check(files and not bad_files, "%d files, none open to others %s"
              % (len(files), bad_files[:3]))

        # Health and metrics.
        st, _, body = request(node, "GET", "/healthz")
        check(st == 200 and body == b"ok\n", "/healthz: 200 ok")
        m = node.metrics()
        print("metrics: %d lines; 401s %d, 200s %d, S3 GETs %d" % (
            len(m), m.get('dscd_requests_total{code="401"}', 0),
            m.get('dscd_requests_total{code="200"}', 0), m.get("dscd_s3_gets_total", 0)))
        check(m.get('dscd_requests_total{code="401"}', 0) >= 8, "401s counted")
        check(m.get("dscd_s3_gets_total") == 4,
              "4 S3 GETs counted (chunks 1, 3, 2 and the missing object)")
        check(m.get("dscd_zero_copy_total", 0) >= 1, "a sendfile answer counted")
        check(m.get('dscd_request_seconds_count{result="miss"}') == 3 and
              'dscd_request_seconds_bucket{result="hit",le="+Inf"}' in m,
              "latency histogram by result")
    finally:
        node.stop()
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "security/")
