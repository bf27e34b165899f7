#!/usr/bin/python3
"""Peer discovery costs nothing on the read path: node A reads a dataset
whose every chunk node B's dscd holds, once with DSC_PEERS naming B
("127.0.0.12:7070") and once naming DNS records that list B
("dns:peers.dsc.test:7070", dnsmasq, re-resolved every second); rounds
interleaved, median MiB/s of each, ratio of medians. Goal: >= 0.98.

Runs in a network and mount namespace of its own (root, unshare, ip,
dnsmasq) with its own s3rver, resolv.conf and 127.0.0.x nodes, as
tests/integration/test_peer_discovery.py does. Knobs: BENCH_DISC_RUNS
(7), BENCH_DISC_MIB (192). Run by bench/run.sh (make bench), or alone."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
RUNS = int(os.environ.get("BENCH_DISC_RUNS", "7"))
MIB = int(os.environ.get("BENCH_DISC_MIB", "192"))


def outer():
    need = [t for t in ("unshare", "ip", "dnsmasq") if not shutil.which(t)]
    if os.geteuid() != 0 or need:
        print("discovery bench skipped: needs root, unshare, ip and dnsmasq")
        return 0
    return subprocess.run(["unshare", "-n", "-m", "--propagation", "private",
                           sys.executable, __file__, "--inside"]).returncode


def inside():
    (ROOT / ".run").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(dir=ROOT / ".run", prefix="discbench-"))
    resolv = state / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for v in [v for v in os.environ if v.startswith(("AWS_", "DSC_"))]:
        del os.environ[v]
    s3dir = state / "s3rver"
    endpoint = subprocess.check_output(
        [str(ROOT / "scripts" / "s3rver.sh"), "start", str(s3dir), "discbench"],
        text=True).strip()
    os.environ.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                      AWS_REGION="us-east-1", DSC_TEST_ENDPOINT=endpoint,
                      DSC_TEST_BUCKET="discbench", DSC_TEST_STATE=str(state),
                      DSC_TEST_S3RVER_LOG=str(s3dir / "log"),
                      DSC_PEER_TEST_CHUNK=str(4 << 20))
    import peerlib as pl
    from bench_peers import mibps
    from test_peer_discovery import NAME, NODES, PORT, Dns
    dns = Dns(state)
    daemons = []
    try:
        n_obj = max(3, MIB * (1 << 20) // (4 << 20))
        sizes = [(4 << 20) - 1000 * (i % 7) for i in range(n_obj)]
        pl.upload_dataset("ds/", sizes, state / "local", seed=9)
        dns.write([2])
        dns.start()
        daemons.append(pl.Dscd("b", state / "node-b", "bench", port=PORT, host=NODES[2]))
        lists = {"static": ["%s:%d" % (NODES[2], PORT)],
                 "dns": ["dns:%s:%d" % (NAME, PORT)]}
        extra = {"DSC_PEERS_REFRESH_S": "1"}

        def epoch(mode):
            p = pl.reader(state / "node-a", lists[mode], None, "bench", "ds/",
                          state / "local", threads=8, extra_env=extra)
            rc, out = pl.finish(p, timeout=600)
            hits, errors, _ = pl.peer_counts(out)
            if rc or "all bytes verified" not in out or errors or hits == 0:
                raise RuntimeError("%s reader failed:\n%s" % (mode, out))
            return mibps(out)

        epoch("static")            # B fetches everything once
        got = {"static": [], "dns": []}
        for i in range(RUNS):
            for mode in (("static", "dns") if i % 2 == 0 else ("dns", "static")):
                got[mode].append(epoch(mode))
        med = {m: statistics.median(v) for m, v in got.items()}
        ratio = med["dns"] / med["static"]
        print("discovery bench: %d objects, %.0f MiB of peer hits, %d interleaved "
              "rounds, 8 reader threads; machine: %d cores" %
              (n_obj, sum(sizes) / 1048576, RUNS, os.cpu_count()))
        for m in ("static", "dns"):
            print("  DSC_PEERS=%-28s median %7.1f MiB/s  (runs: %s)" % (
                lists[m][0], med[m], " ".join("%.0f" % x for x in got[m])))
        print("  dns / static = %.3f (goal >= 0.98): %s" %
              (ratio, "met" if ratio >= 0.98 else "NOT MET"))
        return 0
    finally:
        for d in daemons:
            d.stop()
        dns.stop()
        subprocess.run([str(ROOT / "scripts" / "s3rver.sh"), "stop", str(s3dir)],
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(inside() if sys.argv[1:] == ["--inside"] else outer())
