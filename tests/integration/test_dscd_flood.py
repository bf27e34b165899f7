#!/usr/bin/python3
# tsan: runs (it drives dscd; no libdsc in this process)
"""One host floods a node's dscd with idle connections (more than the
daemon's whole connection limit). The others must not notice: while the
flood holds, /healthz answers, a signed chunk request from another address
is served, and a libdsc reader that uses the node as a peer gets its
chunks from it (not from S3 after a peer timeout). The flood comes from
127.0.0.2, the victims from 127.0.0.1 (two loopback addresses, the
per-address limit is what keeps the door open). Run through tests/run.sh.
"""
import http.client
import shutil
import socket
import time

from peerlib import (BUCKET, CHUNK, STATE, Dscd, check, chunk_headers, finish,
                     peer_counts, reader, run_test, upload_dataset)

SECRET = "flood-test-secret-77aa"
FLOOD = 520          # over the daemon's default limit of 512 in all
PEER_TIMEOUT_MS = 3000


def flood(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            socks.append(s)
        except OSError:
            s.close()
    return socks


def get(port, path, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, time.monotonic() - t0


def main():
    verify = STATE / "flood-local"
    objs = upload_dataset("flood/", [8 * CHUNK, 3 * CHUNK + 99], verify, seed=21)
    key = sorted(objs)[0]
    data, etag = objs[key]
    cache = STATE / "flood-node"
    shutil.rmtree(cache, ignore_errors=True)
    node = Dscd("flood", cache, SECRET)
    socks = []
    try:
        socks = flood(node.port, FLOOD)
        check(len(socks) >= 64, "the flooding host opened %d connections" % len(socks))
        time.sleep(0.5)   # let the daemon take (or refuse) them
        try:
            st, body, took = get(node.port, "/healthz")
            check(st == 200 and took < 2, "/healthz answers during the flood "
                  "(%.2f s)" % took)
        except OSError as e:
            check(False, "/healthz answers during the flood: %s" % e)
        path, h = chunk_headers(node.addr, SECRET, "GET", BUCKET, key, etag, len(data),
                                CHUNK, 2)
        try:
            st, body, took = get(node.port, path, h)
            check(st == 200 and body == data[2 * CHUNK:3 * CHUNK],
                  "a signed request from another address is served (%d, %.2f s)"
                  % (st, took))
        except OSError as e:
            check(False, "a signed request from another address is served: %s" % e)
        # A reader process with this node as its peer (and itself as the
        # other member, so every chunk the node owns goes to it).
        me = "127.0.0.1:1"
        t0 = time.monotonic()
        p = reader(STATE / "flood-reader", [node.addr, me], me, SECRET, "flood/",
                   verify, threads=4,
                   extra_env={"DSC_PEER_TIMEOUT_MS": str(PEER_TIMEOUT_MS)})
        rc, out = finish(p, timeout=120)
        took = time.monotonic() - t0
        hits, errors, _ = peer_counts(out)
        check(rc == 0, "the reader's bytes are right\n%s" % out)
        check(hits > 0 and errors == 0,
              "the reader got chunks from the flooded node (%d hits, %d errors)"
              % (hits, errors))
        check(took < PEER_TIMEOUT_MS / 1000 + 5, "and did not wait out peer "
              "timeouts (%.2f s)" % took)
        m = node.metrics()
        check(m.get('dscd_requests_total{code="200"}', 0) >= 1,
              "the daemon counted its answers")
    finally:
        for s in socks:
            s.close()
        node.stop()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(STATE / "flood-reader", ignore_errors=True)
        shutil.rmtree(verify, ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "flood/")
