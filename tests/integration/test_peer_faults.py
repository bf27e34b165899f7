#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""Faults between peers: a node reads a dataset half of whose chunks another
node's dscd owns, through tests/integration/faultproxy.py. For each fault -
a byzantine peer (wrong bytes with a 200 and every header kept), resets,
truncated and over-long bodies, 503s, stalls past the peer timeout,
latency, a reader with the wrong secret - every byte read is right (the
reader falls back to S3), the failure is counted, and the epoch ends
within its time bound. Prints a table. Run through tests/run.sh."""
import re
import shutil
import socket
import time

from faultproxy import FaultProxy, Rule
from peerlib import (STATE, Dscd, check, finish, peer_counts, reader,
                     run_test, upload_dataset)

SECRET = "peer-faults-secret"
SELF = "127.0.0.1:9"          # this node: its chunks are read locally


def s3_mib(out):
    m = re.search(r"S3 GET ([\d.]+) MiB", out)
    return float(m.group(1)) if m else -1.0


def main():
    sizes = [(i * 61_027) % (5 * 128 * 1024) + 3000 for i in range(24)]
    verify = STATE / "peer-faults-local"
    upload_dataset("peer-faults/", sizes, verify, seed=11)
    owner_dir = STATE / "peer-faults-owner"
    shutil.rmtree(owner_dir, ignore_errors=True)
    # Readers name the owner by the proxy's address (the proxy sits on
    # their path to it), and requests are signed for that name: the owner
    # answers to it too (DSC_SELF), as a node behind NAT or a load balancer.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy_port = probe.getsockname()[1]
    owner = Dscd("faults-owner", owner_dir, SECRET,
                 extra_env={"DSC_SELF": "127.0.0.1:%d" % proxy_port})
    rows = []
    try:
        with FaultProxy(owner.addr, port=proxy_port) as proxy:
            peers = [SELF, "127.0.0.1:%d" % proxy.port]
            fast = {"DSC_PEER_TIMEOUT_MS": "1000", "DSC_PEER_BACKOFF_MS": "100",
                    "DSC_REQUEST_TIMEOUT_MS": "5000"}
            scenarios = [
                # name, rules, extra env, expectation on (hits, errors, bad)
                ("no fault", [], {}, "clean"),
                ("byzantine: flipped bytes, 200, headers kept",
                 [Rule("corrupt", method="GET", flips=3)], {}, "bad"),
                ("byzantine: every byte changed, 200, headers kept",
                 [Rule("corrupt", method="GET", flips=1 << 30)], {}, "bad"),
                ("byzantine on 1 in 3 answers",
                 [Rule("corrupt", method="GET", prob=0.34, seed=3)], {}, "bad"),
                ("reset mid-body", [Rule("reset", method="GET", count=6,
                                         fraction=0.5)], {}, "error"),
                ("reset before answer", [Rule("reset", count=6, headers=False)],
                 {}, "error"),
                ("truncated body", [Rule("truncate", method="GET", count=6)],
                 {}, "error"),
                ("over-long body (Content-Length)",
                 [Rule("overlong", method="GET", count=6, mode="length")], {}, "error"),
                ("over-long body (bytes after it)",
                 [Rule("overlong", method="GET", count=6, mode="extra")], {}, "any"),
                ("503 from the peer", [Rule("slow_down", count=6)], {}, "error"),
                ("stall past the peer timeout", [Rule("stall", count=3)], {}, "error"),
                ("stall mid-body", [Rule("stall_body", method="GET", count=3)],
                 {}, "error"),
                ("latency 30 ms", [Rule("latency", latency_ms=30)], {}, "clean"),
                ("reader with the wrong secret", [],
                 {"DSC_PEER_SECRET": "not-the-cluster-secret"}, "error"),
            ]
            for name, rules, env, expect in scenarios:
                proxy.set_rules(rules)
                proxy.reset_counts()
                node = STATE / "peer-faults-reader"
                shutil.rmtree(node, ignore_errors=True)
                t0 = time.time()
                p = reader(node, peers, SELF, SECRET, "peer-faults/", verify,
                           threads=4, extra_env=dict(fast, **env))
                rc, out = finish(p, timeout=120)
                took = time.time() - t0
                hits, errors, bad = peer_counts(out)
                faulted = proxy.counts().get("faulted", 0)
                ok = rc == 0 and "all bytes verified" in out
                rows.append((name, faulted, hits, errors, bad, s3_mib(out), took,
                             "right bytes" if ok else "FAILED"))
                check(ok, "%s: every byte right\n%s" % (name, out))
                check(took < 60, "%s: done in %.1f s (< 60)" % (name, took))
                if expect == "clean":
                    check(errors == 0 and hits > 0,
                          "%s: all from the peer, no errors (%d, %d)" % (name, hits, errors))
                elif expect == "bad":
                    check(bad >= 1 and errors >= bad,
                          "%s: wrong bytes detected and counted (%d bad)" % (name, bad))
                elif expect == "error":
                    check(errors >= 1, "%s: the failure was counted (%d)" % (name, errors))
                if expect != "clean":
                    check(s3_mib(out) > 0, "%s: fell back to S3" % name)
            # Kept locally, a forged answer would poison this node's cache
            # for every later read: it must never be stored.
            proxy.set_rules([Rule("corrupt", method="GET", flips=3)])
            node = STATE / "peer-faults-reader"
            shutil.rmtree(node, ignore_errors=True)
            p = reader(node, peers, SELF, SECRET, "peer-faults/", verify, threads=4,
                       extra_env=dict(fast, DSC_PEER_KEEP_LOCAL="1"))
            rc, out = finish(p, timeout=120)
            hits, errors, bad = peer_counts(out)
            check(rc == 0 and bad >= 1, "keep_local under forgery: detected (%d bad), "
                  "every byte right\n%s" % (bad, out))
            proxy.set_rules([])
            p = reader(node, [], None, SECRET, "peer-faults/", verify, threads=4,
                       extra_env=fast)
            rc, out = finish(p, timeout=120)
            check(rc == 0, "the same node cache read without peers: no forged "
                  "chunk was stored\n%s" % out)
    finally:
        owner.stop()
        shutil.rmtree(owner_dir, ignore_errors=True)
        shutil.rmtree(STATE / "peer-faults-reader", ignore_errors=True)
    print("%-46s %7s %9s %11s %9s %9s %7s  %s" % (
        "fault (proxy between reader and owner)", "faulted", "peer hits",
        "peer errors", "bad data", "S3 MiB", "time s", "result"))
    for r in rows:
        print("%-46s %7d %9d %11d %9d %9.2f %7.2f  %s" % r)


if __name__ == "__main__":
    run_test(main, "peer-faults/")
