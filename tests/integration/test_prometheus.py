#!/usr/bin/python3
# tsan: runs (it drives dscd, dsc-epoch, dsc-stat and prometheus; no libdsc in this process)
"""A real Prometheus (Debian's `prometheus`) scrapes two peered dscd on
127.0.0.1 while a reader on each node reads a dataset through them:

  1. both targets are up, and every dsc_* series Prometheus holds for a
     node equals, value for value, what `dsc-stat --prometheus` prints for
     that node's cache (the same library code renders both);
  2. the text passes `promtool check metrics` (names, types, units);
  3. every metric name in deploy/grafana/libdsc.json's queries is one the
     exporters serve, and every query runs on Prometheus without error.

Prometheus binds 127.0.0.1 on a free port, scrapes every second, keeps
its data in the run's state directory, and is stopped by its PID.
Run through tests/run.sh (s3rver, env)."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from peerlib import (BIN, STATE, Dscd, base_env, check, chunks_of, finish,
                     reader, run_test, stop_process, upload_dataset)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "libdsc.json"
SECRET = "prometheus-test-secret-41c"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse(text, prefix="dsc_"):
    """Exposition text as {(name, frozenset of labels): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?$", series)
        name, labels = m.group(1), m.group(3) or ""
        if not name.startswith(prefix):
            continue
        pairs = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels)
        out[(name, frozenset(pairs))] = float(value)
    return out


class Prometheus:
    def __init__(self, targets):
        self.dir = STATE / "prometheus"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: dscd\n    static_configs:\n"
            "      - targets: [%s]\n" % ", ".join("'%s'" % t for t in targets))
        self.log = open(self.dir / "log", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=%s" % cfg,
             "--storage.tsdb.path=%s" % (self.dir / "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--web.console.templates=%s" % self.dir,
             "--web.console.libraries=%s" % self.dir],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=str(self.dir))
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url("/-/ready"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("prometheus did not start:\n" +
                                   (self.dir / "log").read_text()[-2000:])
            time.sleep(0.2)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def api(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(self.url("/api/v1/%s?%s" % (path, q)),
                                    timeout=10) as r:
            return json.loads(r.read().decode())

    def query(self, expr):
        return self.api("query", query=expr)

    def node(self, instance):
        """Every dsc_* series of one target, as parse() gives them."""
        d = self.query('{__name__=~"dsc_.+",instance="%s"}' % instance)
        out = {}
        for s in d["data"]["result"]:
            labels = dict(s["metric"])
            name = labels.pop("__name__")
            labels.pop("instance", None)
            labels.pop("job", None)
            out[(name, frozenset(labels.items()))] = float(s["value"][1])
        return out

    def stop(self):
        stop_process(self.proc, timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dsc_stat(cache_dir):
    env = base_env(SECRET)
    env.update(DSC_CACHE_DIR=str(cache_dir))
    r = subprocess.run([str(BIN / "dsc-stat"), "--prometheus"], env=env,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "dsc-stat --prometheus (%s)" % r.stderr.strip(),
          quiet_ok=True)
    return r.stdout


def same_as_prometheus(prom, daemons, dirs, timeout=30):
    """Each node's series in Prometheus = dsc-stat's for its cache. The
    last flush (dscd's own counts) lands with a scrape: ask until equal."""
    deadline = time.time() + timeout
    while True:
        diffs = []
        for d, cache in zip(daemons, dirs):
            want = parse(dsc_stat(cache))
            got = prom.node(d.addr)
            if want != got:
                keys = set(want) | set(got)
                diffs.append((d.addr, sorted(
                    (k[0], sorted(k[1]), want.get(k), got.get(k))
                    for k in keys if want.get(k) != got.get(k))[:5]))
        if not diffs or time.time() > deadline:
            return want, diffs
        time.sleep(0.5)


def promtool_lint(name, text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          "promtool check metrics: %s %s" % (name, (r.stdout + r.stderr).strip()))


def dashboard_queries():
    doc = json.loads(DASHBOARD.read_text())
    exprs = []
    for p in doc["panels"]:
        for t in p.get("targets", []):
            exprs.append(t["expr"])
    for v in doc["templating"]["list"]:
        q = v.get("definition")
        if q:
            exprs.append(q)
    return exprs


def check_dashboard(prom, served_names):
    exprs = dashboard_queries()
    check(len(exprs) >= 10, "the dashboard has %d queries" % len(exprs))
    used = set()
    for e in exprs:
        # Metric names: identifiers that are not functions, keywords or
        # label names (those stand before '=' or inside by (...)).
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
        for name in re.findall(r"\b(dscd?_[a-zA-Z0-9_]+)\b", bare):
            used.add(name)
    missing = sorted(used - served_names)
    check(not missing, "every metric the dashboard uses is served (%d names; "
          "missing: %s)" % (len(used), missing))
    for e in exprs:
        if e.startswith("label_values("):
            metric = re.match(r"label_values\((\w+)", e).group(1)
            e = metric
        q = (e.replace("$__rate_interval", "10s").replace("$__range", "1m")
              .replace("$instance", ".*"))
        d = prom.query(q)
        check(d.get("status") == "success", "dashboard query runs: %s" % q,
              quiet_ok=True)


def main():
    for prog in (PROMETHEUS, PROMTOOL):
        check(os.access(prog, os.X_OK), "%s installed (scripts/setup.sh)" % prog)
    if not os.access(PROMETHEUS, os.X_OK):
        return
    sizes = [1000, 130_000, 300_001, 64 * 1024] + [(i * 51_113) % 400_000 + 1
                                                   for i in range(12)]
    verify = STATE / "prom-local"
    upload_dataset("prom/", sizes, verify, seed=77)
    n_chunks = sum(chunks_of(s) for s in sizes)
    dirs = [STATE / ("prom-node%d" % i) for i in range(2)]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    daemons = [Dscd("prom%d" % i, d, SECRET) for i, d in enumerate(dirs)]
    prom = None
    try:
        prom = Prometheus([d.addr for d in daemons])
        peers = [d.addr for d in daemons]
        # Node 0 reads cold, then node 1 (peer hits on node 0's chunks),
        # then node 0 again (warm hits): every counter moves somewhere.
        for i in (0, 1, 0):
            rc, out = finish(reader(dirs[i], peers, daemons[i].addr, SECRET,
                                    "prom/", verify, threads=4))
            check(rc == 0, "epoch on node %d (%s)" % (i, out.strip()[-300:]))
        deadline = time.time() + 20
        while True:
            up = prom.query("up")["data"]["result"]
            if (len(up) == 2 and all(r["value"][1] == "1" for r in up)) or \
                    time.time() > deadline:
                break
            time.sleep(0.5)
        check(len(up) == 2 and all(r["value"][1] == "1" for r in up),
              "both dscd are up in Prometheus: %s" %
              [(r["metric"]["instance"], r["value"][1]) for r in up])
        want, diffs = same_as_prometheus(prom, daemons, dirs)
        check(not diffs, "Prometheus's dsc_* series = dsc-stat --prometheus, "
              "for both nodes %s" % (diffs or ""))
        texts = [dsc_stat(d) for d in dirs]
        nodes = [parse(t) for t in texts]
        print("series per node: %d; node 0: GETs %s, hits %s, saved %s GETs;"
              " node 1: peer hits %s" % (
                  len(nodes[0]),
                  nodes[0][("dsc_s3_requests_total", frozenset({("kind", "get")}))],
                  nodes[0][("dsc_cache_hits_total", frozenset())],
                  nodes[0][("dsc_saved_requests", frozenset())],
                  nodes[1][("dsc_peer_hits_total", frozenset())]))
        check(nodes[1][("dsc_peer_hits_total", frozenset())] > 0,
              "node 1 read chunks from node 0's dscd")
        check(nodes[0][("dsc_saved_requests", frozenset())] > 0,
              "node 0's cache saved GETs")
        gets = sum(n[("dsc_s3_requests_total", frozenset({("kind", "get")}))]
                   for n in nodes)
        # Three epochs read every chunk three times; S3 sent each once. A
        # peer's answer is counted as saved where it was served from the
        # cache, never also at the asker: the nodes' sum is exact.
        saved = sum(n[("dsc_saved_requests", frozenset())] for n in nodes)
        check(gets == n_chunks and saved == 2 * n_chunks,
              "cluster: %d GETs for %d chunks, %d GETs saved of %d reads" %
              (gets, n_chunks, saved, 3 * n_chunks))
        q = prom.query('sum(dsc_s3_requests_total{kind="get"})')["data"]["result"]
        check(q and float(q[0]["value"][1]) == gets,
              "Prometheus's cluster sum of GETs = the nodes' (%d)" % gets)
        with urllib.request.urlopen(daemons[0].url("/metrics"), timeout=10) as r:
            dscd_text = r.read().decode()
        promtool_lint("dsc-stat --prometheus", texts[0])
        promtool_lint("dscd /metrics", dscd_text)
        served = {k[0] for n in nodes for k in n}
        served |= {line.split("{")[0].split(" ")[0] for line in
                   dscd_text.splitlines() if line and not line.startswith("#")}
        check_dashboard(prom, served)
    finally:
        if prom:
            prom.stop()
        for d in daemons:
            d.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "prom/")
