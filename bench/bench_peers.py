#!/usr/bin/python3
"""Peer benchmark; run by bench/run_peers.sh (which starts s3rver).

1. Peer-hit throughput: node A reads a dataset whose every chunk node B's
   dscd holds (A's DSC_PEERS names only B), vs A reading the same objects
   from the origin with no cache, and vs a warm local cache. Each figure is
   the median of BENCH_PEER_RUNS runs of dsc-epoch (8 threads); ratios are
   of medians measured in this run.
2. S3 GETs per epoch, counted in s3rver's own log: 1 node; 3 nodes with
   separate caches; 3 nodes with peers (epochs 1 and 2)."""
import os
import re
import shutil
import subprocess
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
os.environ.setdefault("DSC_PEER_TEST_CHUNK", str(4 << 20))

from peerlib import (CHUNK, STATE, Dscd, S3Log, chunks_of, finish,  # noqa: E402
                     peer_counts, reader, upload_dataset)

RUNS = int(os.environ.get("BENCH_PEER_RUNS", "5"))
MIB = int(os.environ.get("BENCH_PEER_MIB", "192"))
SECRET = "bench-secret"
THREADS = 8


def mibps(out):
    m = re.search(r"epoch 1: .*? in ([\d.]+) s: ([\d.]+) MiB/s", out)
    if not m:
        raise RuntimeError("no throughput in:\n" + out)
    return float(m.group(2))


def epoch(node_dir, peers=(), self_addr=None, extra=None):
    p = reader(node_dir, list(peers), self_addr, SECRET, "ds/", VERIFY,
               threads=THREADS, extra_env=extra)
    rc, out = finish(p, timeout=600)
    if rc != 0 or "all bytes verified" not in out:
        raise RuntimeError("reader failed:\n" + out)
    return out


def tls_material(d):
    """A cluster CA and a node certificate for 127.0.0.1 (openssl tool)."""
    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
    d.mkdir(parents=True, exist_ok=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=bench-ca", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=node", "-keyout",
        str(d / "node.key"), "-out", str(d / "node.csr"))
    run("x509", "-req", "-in", str(d / "node.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
        str(d / "san.cnf"), "-out", str(d / "node.pem"))
    os.chmod(d / "node.key", 0o600)
    return d


def fresh(name):
    d = STATE / name
    shutil.rmtree(d, ignore_errors=True)
    return d


VERIFY = STATE / "local"


def main():
    n_obj = max(3, MIB * (1 << 20) // (4 << 20))
    sizes = [(4 << 20) - 1000 * (i % 7) for i in range(n_obj)]
    data = upload_dataset("ds/", sizes, VERIFY, seed=9)
    total = sum(chunks_of(s) for s in sizes)
    mib = sum(sizes) / 1048576
    print("peers bench: %d objects, %.0f MiB, %d chunks of %d MiB, %d runs, "
          "%d reader threads; machine: %d cores, load %s" %
          (n_obj, mib, total, CHUNK >> 20, RUNS, THREADS, os.cpu_count(),
           open("/proc/loadavg").read().split()[0]))

    # --- 1. peer-hit throughput
    node_b = fresh("b")
    epoch(node_b)                       # B's cache gets every chunk
    b = Dscd("b", node_b, SECRET)
    tls = tls_material(STATE / "tls")
    # The same node cache served again in TLS, by a second daemon.
    bt = Dscd("bt", node_b, SECRET, extra_env={
        "DSC_PEER_TLS_CERT": str(tls / "node.pem"),
        "DSC_PEER_TLS_KEY": str(tls / "node.key")})
    origin, peer, peer_tls, local = [], [], [], []

    def peer_run(r, daemon, extra, into):
        out = epoch(fresh("a"), peers=[daemon.addr], extra=extra)
        hits, errors, _ = peer_counts(out)
        if hits != total or errors:
            raise RuntimeError("peer run %d: %d peer hits of %d, %d errors"
                               % (r, hits, total, errors))
        into.append(mibps(out))
    try:
        for r in range(RUNS):
            origin.append(mibps(epoch(fresh("a"), extra={"DSC_CACHE_DIR": "off"})))
            peer_run(r, b, None, peer)
            peer_run(r, bt, {"DSC_PEER_TLS_CA": str(tls / "ca.pem")}, peer_tls)
            local.append(mibps(epoch(node_b)))
    finally:
        b.stop()
        bt.stop()
    o, p, pt, loc = (statistics.median(x) for x in (origin, peer, peer_tls, local))
    print("  %-38s %8.1f MiB/s  (runs: %s)" % ("origin (s3rver, no cache)", o,
          " ".join("%.0f" % x for x in origin)))
    print("  %-38s %8.1f MiB/s  (runs: %s)" % ("peer hit (other node's dscd)", p,
          " ".join("%.0f" % x for x in peer)))
    print("  %-38s %8.1f MiB/s  (runs: %s)" % ("peer hit over TLS", pt,
          " ".join("%.0f" % x for x in peer_tls)))
    print("  %-38s %8.1f MiB/s  (runs: %s)" % ("local hit (own node cache)", loc,
          " ".join("%.0f" % x for x in local)))
    print("  peer hit / origin: %.2fx   peer hit / local hit: %.2fx   TLS / plain: %.2fx"
          % (p / o, p / loc, pt / p))

    # --- 2. S3 GETs per epoch
    log = S3Log()
    rows = []
    log.mark()
    epoch(fresh("one"))
    rows.append(("1 node", sum(log.gets(data).values())))
    log.mark()
    dirs = [fresh("sep%d" % i) for i in range(3)]
    procs = [reader(d, [], None, SECRET, "ds/", VERIFY, threads=THREADS)
             for d in dirs]
    for pr in procs:
        rc, out = finish(pr, timeout=600)
        if rc:
            raise RuntimeError(out)
    rows.append(("3 nodes, separate caches", sum(log.gets(data).values())))
    dirs = [fresh("peer%d" % i) for i in range(3)]
    daemons = [Dscd("p%d" % i, d, SECRET) for i, d in enumerate(dirs)]
    try:
        addrs = [n.addr for n in daemons]
        for e in (1, 2):
            log.mark()
            procs = [reader(dirs[i], addrs, addrs[i], SECRET, "ds/", VERIFY,
                            threads=THREADS) for i in range(3)]
            for pr in procs:
                rc, out = finish(pr, timeout=600)
                if rc:
                    raise RuntimeError(out)
            rows.append(("3 nodes with peers, epoch %d" % e,
                         sum(log.gets(data).values())))
    finally:
        for n in daemons:
            n.stop()
    print("  S3 GETs per epoch (%d chunks in the dataset):" % total)
    for name, n in rows:
        print("    %-34s %6d  (%.2f per chunk)" % (name, n, n / total))
    for d in STATE.iterdir():
        if d.is_dir() and d.name != "s3rver":
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
