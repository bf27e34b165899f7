#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""Soak: 8 reader processes x 8 threads (4 per node, 2 nodes with peers)
read a shared dataset three times bigger than each node's cache, epoch
after epoch, while the origin injects faults (SlowDown, 500s, resets, cut
bodies, latency: tests/integration/faultproxy.py in front of s3rver) and
the two dscd daemons are restarted in turn (SIGTERM and SIGKILL).

At the end: every byte every reader read was right (dsc-epoch --verify,
no read errors), each cache is within its cap (index and disk), and the
readers' open files and memory did not grow from the first quarter of the
run to its end (memory is only reported under sanitizers, whose
allocators hold freed memory). Prints what it did.

Duration: SOAK_SECONDS (default 40; `make soak` runs 240)."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time

from faultproxy import FaultProxy, Rule
from peerlib import (BIN, BUILD, ENDPOINT, STATE, Dscd, base_env, check,
                     finish, peer_counts, run_test, upload_dataset)

SECRET = "soak-secret"
SECONDS = float(os.environ.get("SOAK_SECONDS", "40"))
FD_CACHE = 64
CAP = 6 << 20
SANITIZED = "asan" in str(BUILD) or "tsan" in str(BUILD)


def proc_usage(pid):
    """(RSS KiB, open fds) of a live process, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, AttributeError):
        return None


def dir_bytes(d):
    return sum(p.stat().st_size for p in (d / "data").rglob("*") if p.is_file())


def main():
    sizes = [(i * 97_001) % (448 * 1024) + 64 * 1024 for i in range(64)]
    verify = STATE / "soak-local"
    upload_dataset("soak/", sizes, verify, seed=12)
    total = sum(sizes)
    print("soak: %d s, dataset %.1f MiB, cache cap %.0f MiB per node, "
          "8 processes x 8 threads" % (SECONDS, total / 1048576, CAP / 1048576))
    dirs = [STATE / ("soak-node%d" % i) for i in range(2)]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    s3host = ENDPOINT.split("//", 1)[1]
    with FaultProxy(s3host) as origin:
        origin.set_rules([
            Rule("latency", prob=0.1, seed=1, latency_ms=5),
            Rule("slow_down", prob=0.02, seed=2),
            Rule("internal_error", prob=0.01, seed=3),
            Rule("reset", prob=0.01, seed=4, method="GET", fraction=0.5),
            Rule("truncate", prob=0.01, seed=5, method="GET"),
        ])
        env = {"AWS_ENDPOINT_URL": origin.url, "DSC_CACHE_SIZE": str(CAP),
               "DSC_PEER_TIMEOUT_MS": "2000", "DSC_PEER_BACKOFF_MS": "500",
               "DSC_RETRY_BASE_MS": "10", "DSC_MAX_RETRIES": "8",
               "DSC_FD_CACHE": str(FD_CACHE)}
        daemons = [Dscd("soak%d" % i, dirs[i], SECRET, extra_env=env)
                   for i in range(2)]
        ports = [n.port for n in daemons]
        peers = [n.addr for n in daemons]
        restarts = {"TERM": 0, "KILL": 0}
        stop = threading.Event()

        def restarter():
            i = 0
            while not stop.wait(3.0):
                node = i % 2
                sig = signal.SIGKILL if (i // 2) % 2 else signal.SIGTERM
                daemons[node].stop(sig)
                restarts["KILL" if sig == signal.SIGKILL else "TERM"] += 1
                time.sleep(0.3)
                for attempt in range(50):
                    try:
                        daemons[node] = Dscd("soak%d" % node, dirs[node], SECRET,
                                             extra_env=env, port=ports[node])
                        break
                    except RuntimeError:
                        time.sleep(0.1)      # the port may linger a moment
                i += 1

        procs = []
        for i in range(8):
            p = subprocess.Popen(
                [str(BIN / "dsc-epoch"), "-j", "8", "--duration", str(SECONDS),
                 "--seed", str(i + 1), "--verify", str(verify),
                 "s3://%s/soak/" % os.environ["DSC_TEST_BUCKET"]],
                env=reader_env(dirs[i % 2], peers, peers[i % 2], env),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(p)
        t = threading.Thread(target=restarter)
        t.start()
        samples = {p.pid: [] for p in procs}
        t0 = time.time()
        while any(p.poll() is None for p in procs):
            for p in procs:
                u = proc_usage(p.pid) if p.poll() is None else None
                if u:
                    samples[p.pid].append((time.time() - t0, u))
            time.sleep(0.5)
        stop.set()
        t.join()
        outs = [finish(p) for p in procs]
        for n in daemons:
            n.stop()
        faults = origin.counts()

    epochs = mib = 0
    errors = peer_errs = peer_hits = 0
    for i, (rc, out) in enumerate(outs):
        lines = [l for l in out.splitlines() if l.startswith("epoch ") and "MiB in" in l]
        bad = [l for l in lines if "all bytes verified" not in l or " 0 errors" not in l]
        epochs += len(lines)
        mib += sum(float(re.search(r"([\d.]+) MiB in", l).group(1)) for l in lines)
        h, e, _ = peer_counts(out)
        peer_hits += h
        peer_errs += e
        if rc or bad or not lines:
            errors += 1
            print("reader %d (rc %d), bad epochs:\n%s\nits last output:\n%s"
                  % (i, rc, "\n".join(bad[:5] + [l for l in out.splitlines()
                                                 if "rror" in l and " 0 errors" not in l
                                                 and "0 peer errors" not in l][:10]),
                     out[-2000:]))
    check(errors == 0, "every reader: every epoch all bytes verified, no read "
          "errors (%d epochs, %.0f MiB read)" % (epochs, mib))
    print("origin faults injected: %s" % {k: v for k, v in faults.items() if v})
    print("dscd restarts: %d SIGTERM, %d SIGKILL; peer hits %d, peer errors %d"
          % (restarts["TERM"], restarts["KILL"], peer_hits, peer_errs))
    check(sum(restarts.values()) >= min(4, SECONDS // 4), "dscd restarted")

    for i, d in enumerate(dirs):
        # A daemon killed between an eviction's commit and its unlink leaves
        # the evicted file behind (debris the hourly sweep, a dscd start or
        # dsc-stat --clean removes): measure the disk after a sweep.
        st = subprocess.run([str(BIN / "dsc-stat"), "--json", "--clean",
                             "--cache-dir", str(d)], capture_output=True, text=True)
        m = re.search(r'"used_bytes":\s*(\d+)', st.stdout)
        idx = int(m.group(1)) if m else -1
        disk = dir_bytes(d)
        check(0 < idx <= CAP and disk <= CAP,
              "node %d cache within its cap: index %d, disk %d, cap %d" % (i, idx, disk, CAP))

    # Sockets come and go with faults, so compare medians: the second
    # quarter of the run against the last quarter. A leak per fault or per epoch
    # (hundreds of each) would show; the bound is the fd cache plus both
    # connection pools (S3 and peers, 64 each).
    for pid, s in samples.items():
        s = [x for x in s if x[1][1] > 0]      # an exiting process has none
        if len(s) < 8:
            continue
        n = len(s)
        mid = [u for _, u in s[n // 4:n // 2]]
        end = [u for _, u in s[3 * n // 4:]]
        fd0, fd1 = statistics.median(u[1] for u in mid), statistics.median(u[1] for u in end)
        peak = max(u[1] for _, u in s)
        rss0, rss1 = max(u[0] for u in mid), max(u[0] for u in end)
        print("reader pid %d: median fds %d -> %d (peak %d), peak RSS %d -> %d KiB" %
              (pid, fd0, fd1, peak, rss0, rss1))
        check(fd1 <= fd0 + 40 and peak <= FD_CACHE + 2 * 64 + 32,
              "pid %d: no fd growth" % pid)
        if not SANITIZED:
            check(rss1 <= rss0 * 1.25 + 8192, "pid %d: no memory growth" % pid)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def reader_env(node_dir, peers, self_addr, extra):
    env = base_env(SECRET)
    env.update(DSC_CACHE_DIR=str(node_dir), DSC_PEERS=",".join(peers),
               DSC_SELF=self_addr)
    env.update(extra)
    return env


if __name__ == "__main__":
    run_test(main, "soak/")
