#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""dscd's door: requests signed with the cluster secret (by this test's own
signer, cross-checked with the library's) get the chunk with a valid
answer MAC (cross-checked too); missing, wrong, stale, future,
other-secret and tampered signatures get 401 and no data; a captured
request replayed to its node or to another node gets 401 and costs no S3
GET; no path reaches anything but a cached chunk; the cache directory and
files are private (0700/0600); /healthz and /metrics answer. Run through
tests/run.sh."""
import http.client
import os
import shutil
import stat
import subprocess
import time

from peerlib import (BUCKET, CHUNK, ORIGIN, STATE, TOOL, Dscd, answer_mac, check,
                     chunk_headers, run_test, s3, sign)

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
    other = Dscd("security-other", STATE / "security-other", SECRET)
    try:
        T = node.addr
        # The library signs and MACs exactly as this test does.
        t = int(time.time())
        nonce = "a0" * 16
        ours = sign(SECRET, "GET", "/v2/chunk/" + subprocess.check_output(
            [str(TOOL), "id", ORIGIN, BUCKET, key, etag, str(size), str(CHUNK), "1"],
            text=True).strip(), T, ORIGIN, BUCKET, key, etag, size, CHUNK, 1, t, nonce)
        lib = subprocess.check_output(
            [str(TOOL), "sign", SECRET, T, ORIGIN, "GET", BUCKET, key, etag, str(size),
             str(CHUNK), "1", str(t), nonce], text=True).strip()
        check(ours == lib, "library and test sign alike")
        sample = STATE / "security-sample.bin"
        sample.write_bytes(data[:CHUNK + 7])
        lib_mac = subprocess.check_output([str(TOOL), "mac", SECRET, ours, str(sample)],
                                          text=True).strip()
        check(lib_mac == answer_mac(SECRET, ours, data[:CHUNK + 7]),
              "library and test MAC answers alike (Poly1305)")

        # A good request: the chunk, with a valid MAC.
        for index in (1, 3):
            path, h = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size,
                                    CHUNK, index)
            st, hd, body = request(node, "GET", path, h)
            want = data[index * CHUNK:(index + 1) * CHUNK]
            check(st == 200 and body == want,
                  "signed GET of chunk %d: 200 and the right %d bytes (%d, %d)"
                  % (index, len(want), st, len(body)))
            check(hd.get("x-dsc-mac") == answer_mac(SECRET, h["X-Dsc-Auth"], body),
                  "chunk %d: answer MAC verifies" % index)
            check(hd.get("x-dsc-mac") != answer_mac(SECRET, h["X-Dsc-Auth"],
                                                    bytes([body[0] ^ 1]) + body[1:]),
                  "chunk %d: a changed byte would not" % index)
        # Again: now from the verified file (sendfile path).
        path, h = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 1)
        st, hd, body = request(node, "GET", path, h)
        check(st == 200 and body == data[CHUNK:2 * CHUNK] and
              hd.get("x-dsc-mac") == answer_mac(SECRET, h["X-Dsc-Auth"], body),
              "repeat GET (sendfile): right bytes, valid MAC")
        path, h = chunk_headers(T, SECRET, "HEAD", BUCKET, key, etag, size, CHUNK, 2)
        st, hd, body = request(node, "HEAD", path, h)
        check(st == 200 and body == b"" and
              hd.get("x-dsc-mac") == answer_mac(SECRET, h["X-Dsc-Auth"], b""),
              "signed HEAD: 200, no body, MAC over nothing (%d)" % st)

        # Replay: a captured request, sent again to its node and to another.
        path, h = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0)
        st, _, body = request(node, "GET", path, h)
        check(st == 200 and body == data[:CHUNK], "captured request: first use 200")
        for i in range(3):
            st, _, body = request(node, "GET", path, h)
            check(st == 401 and not body.startswith(data[:64]),
                  "replay %d to the same node: 401, no data (%d)" % (i + 1, st))
        gets_before = other.metrics().get("dscd_s3_gets_total", 0)
        for i in range(3):
            st, _, body = request(other, "GET", path, h)
            check(st == 401 and not body.startswith(data[:64]),
                  "replay %d to another node: 401, no data (%d)" % (i + 1, st))
        check(other.metrics().get("dscd_s3_gets_total", 0) == gets_before,
              "the other node made no S3 GET for the replays")
        p2, h2 = chunk_headers(other.addr, SECRET, "GET", BUCKET, key, etag, size,
                               CHUNK, 0)
        st, _, _ = request(node, "GET", p2, h2)
        check(st == 401, "signed for another node, sent here: 401 (%d)" % st)
        p3, h3 = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0,
                               origin="http://127.0.0.9:1/auto")
        st, _, body = request(node, "GET", p3, h3)
        check(st == 400 and b"S3 endpoint" in body,
              "another S3 endpoint's chunk: 400 naming this node's (%d)" % st)

        # Bad signatures: 401, and no data.
        def refused(what, path, h, method="GET", code=401):
            st, _, body = request(node, method, path, h)
            leaked = len(body) >= 64 and body in data
            check(st == code and not leaked,
                  "%s: %d and no data (got %d, %d bytes)" % (what, code, st, len(body)))

        path, h = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0)
        refused("no signature", path, {k: v for k, v in h.items()
                                       if k != "X-Dsc-Auth"})
        refused("no time", path, {k: v for k, v in h.items()
                                  if k != "X-Dsc-Time"})
        bad = dict(h, **{"X-Dsc-Auth": ("0" if h["X-Dsc-Auth"][0] != "0" else "1")
                         + h["X-Dsc-Auth"][1:]})
        refused("wrong signature", path, bad)
        refused("garbage signature", path, dict(h, **{"X-Dsc-Auth": "zz" * 32}))
        path_o, h_o = chunk_headers(T, "another-secret", "GET", BUCKET, key, etag,
                                    size, CHUNK, 0)
        refused("other secret", path_o, h_o)
        for skew in (-3600, 3600):
            p, hs = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK,
                                  0, t=int(time.time()) + skew)
            refused("stale/future time (%+d s)" % skew, p, hs)
        tampered = dict(h, **{"X-Dsc-Chunk": "%d/1" % CHUNK})
        refused("header changed after signing", path, tampered)
        refused("GET signature used for HEAD", path, h, method="HEAD")

        # Well signed, but the path's id is another chunk's: 400.
        p1, _ = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 1)
        p, hs = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, CHUNK, 0,
                              path_id=p1.rsplit("/", 1)[1])
        refused("id not the identity's", p, hs, code=400)
        # Another chunk size than the node's: 400 with the reason.
        p, hs = chunk_headers(T, SECRET, "GET", BUCKET, key, etag, size, 2 * CHUNK, 0)
        st, _, body = request(node, "GET", p, hs)
        check(st == 400 and b"chunk size" in body, "other chunk size: 400 (%d)" % st)
        # A missing object: 502 with S3's reason.
        p, hs = chunk_headers(T, SECRET, "GET", BUCKET, "security/none", '"x"', 10,
                              CHUNK, 0)
        st, _, body = request(node, "GET", p, hs)
        check(st == 502 and b"s3:" in body, "missing object: 502 (%d %r)" % (st, body[:80]))

        # Nothing outside the cache, by any path.
        files = [p for p in cache.rglob("*") if p.is_file()]
        secrets = [b"root:", b"MDB", SECRET.encode()] + \
                  [f.read_bytes()[:32] for f in files if f.stat().st_size >= 32]
        tricks = ["/etc/passwd", "/../../../../etc/passwd",
                  "/v2/chunk/../../../../etc/passwd",
                  "/v2/chunk/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                  "/v2/chunk/..%2f..%2f..%2fetc%2fpasswd",
                  "/index/data.mdb", "/data/", "/tmp/", "/locks",
                  "/v2/chunk/" + "0" * 32 + "/../../index/data.mdb",
                  "/v2/chunk/" + path.rsplit("/", 1)[1] + "-0000000000000001",
                  "/v2/chunk/" + path.rsplit("/", 1)[1].upper(),
                  "/v2/chunk/" + "g" * 32, "/v2/chunk/", "/v1/chunk",
                  "//v2/chunk/" + path.rsplit("/", 1)[1], "/metrics/../index"]
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
        check(m.get("dscd_s3_gets_total") == 5,
              "5 S3 GETs counted (chunks 1, 3, 2, 0 and the missing object)")
        check(m.get("dscd_zero_copy_total", 0) >= 1, "a sendfile answer counted")
        check(m.get('dscd_request_seconds_count{result="miss"}') == 4 and
              'dscd_request_seconds_bucket{result="hit",le="+Inf"}' in m,
              "latency histogram by result")
    finally:
        node.stop()
        other.stop()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(STATE / "security-other", ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "security/")
