#!/usr/bin/env python3
"""Peers found by DNS: DSC_PEERS=dns:NAME:PORT (and srv:NAME) against a
real DNS server (dnsmasq) whose records change during a run.
tsan: runs (it drives our programs; CPython never loads libdsc here)

Everything runs inside a network and mount namespace the test makes (as
root), with its own /etc/resolv.conf naming dnsmasq on 127.0.0.1:53, its
own s3rver, and four dscd nodes on 127.0.0.11-14:7070. One reader process
on node 1 stays up while the records go 3 -> 4 -> 2 nodes: every byte it
reads is checked, reads in flight when the members change finish, a
vanished node is never asked again, and S3 GETs per chunk stay within
1 + the fraction of chunks whose owner moved (computed with the
library's own ring, per chunk). Then DNS goes silent (the members are
kept) and the name disappears (reads go to S3)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NAME = "peers.dsc.test"
PORT = 7070
NODES = {i: "127.0.0.1%d" % i for i in (1, 2, 3, 4)}


def outer():
    need = [t for t in ("unshare", "ip", "dnsmasq", "mount") if not shutil.which(t)]
    if os.geteuid() != 0 or need:
        print("skipped: needs root and %s" % (", ".join(need) or "nothing else"))
        return 0
    p = subprocess.run(["unshare", "-n", "-m", "--propagation", "private",
                        sys.executable, __file__, "--inside"], timeout=900)
    return p.returncode


class Dns:
    """dnsmasq answering for dsc.test from a hosts file (re-read on
    SIGHUP), authoritative (NXDOMAIN for names it does not have), TTL 0."""

    def __init__(self, state):
        self.hosts = state / "dns.hosts"
        self.pidfile = state / "dns.pid"
        self.log = state / "dns.log"
        self.proc = None

    def write(self, members, named=True):
        lines = ["%s n%d.dsc.test" % (NODES[i], i) for i in NODES]
        if named:
            lines += ["%s %s" % (NODES[i], NAME) for i in members]
        self.hosts.write_text("\n".join(lines) + "\n")

    def start(self):
        srv = ["--srv-host=_dsc._tcp.%s,n%d.dsc.test,%d" % (NAME, i, PORT)
               for i in (1, 2, 3)]
        self.proc = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", "--addn-hosts=%s" % self.hosts,
             "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
             "--user=root", "--local=/dsc.test/", "--local-ttl=0",
             "--pid-file=%s" % self.pidfile, "--log-facility=%s" % self.log]
            + srv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        from peerlib import stop_process   # imported once its env is set
        if self.proc:
            stop_process(self.proc, timeout=10)


def resolved(name):
    import socket
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)})
    except socket.gaierror:
        return []


def wait_until(cond, what, limit=20.0):
    end = time.time() + limit
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    print("FAIL waited %.0f s for %s" % (limit, what))
    return False


class Reader:
    """tests/tools/pass_reader: one process for the whole run."""

    def __init__(self, pl, env, verify_dir, urls, log):
        self.log = open(log, "w")
        self.log_path = log
        self.proc = subprocess.Popen(
            [str(pl.BUILD / "tests" / "tools" / "pass_reader"), "8",
             str(verify_dir)] + urls, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True)

    def ask(self, command):
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise RuntimeError("reader died: %s" % self.log_path.read_text()[-2000:])
        words = line.split()
        return dict([("what", words[0])] + [(k, int(v)) for k, v in
                                             (w.split("=") for w in words[1:])])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def inside():
    base = Path(os.environ["DSC_TEST_STATE"])
    state = Path(tempfile.mkdtemp(dir=base, prefix="discovery-"))
    resolv = state / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    bucket = os.environ["DSC_TEST_BUCKET"]
    s3dir = state / "s3rver"
    endpoint = subprocess.check_output(
        [str(ROOT / "scripts" / "s3rver.sh"), "start", str(s3dir), bucket], text=True).strip()
    os.environ.update(DSC_TEST_ENDPOINT=endpoint, DSC_TEST_S3RVER_LOG=str(s3dir / "log"),
                      DSC_TEST_STATE=str(state), DSC_PEER_TEST_CHUNK=str(64 * 1024))
    sys.path.insert(0, str(HERE))
    import peerlib as pl
    dns = Dns(state)
    daemons, readers = [], []
    try:
        run(pl, state, dns, daemons, readers)
    finally:
        for r in readers:
            r.close()
        for d in daemons:
            d.stop()
        dns.stop()
        subprocess.run([str(ROOT / "scripts" / "s3rver.sh"), "stop", str(s3dir)],
                       stdout=subprocess.DEVNULL)
    print("%d checks failed" % len(pl.failures))
    return 1 if pl.failures else 0


def run(pl, state, dns, daemons, readers):
    check = pl.check
    secret = "discovery-test-secret"
    prefix = "discovery/"
    data = pl.upload_dataset(prefix, [5 * 64 * 1024] * 30, state / "local", seed=16)
    urls = ["s3://%s/%s" % (pl.BUCKET, k) for k in sorted(data)]
    chunks = []            # (key, chunk id)
    for key, (body, etag) in sorted(data.items()):
        for i in range(pl.chunks_of(len(body))):
            chunks.append((key, pl.chunk_id(pl.BUCKET, key, etag, len(body), pl.CHUNK, i)))

    def owners(members):
        peers = ",".join("%s:%d" % (NODES[i], PORT) for i in members)
        out = subprocess.run([str(pl.TOOL), "owners", peers], check=True, text=True,
                             input="".join(c + "\n" for _, c in chunks),
                             capture_output=True).stdout.split()
        assert len(out) == len(chunks)
        return out

    dns.write([1, 2, 3])
    dns.start()
    if not wait_until(lambda: resolved(NAME) == [NODES[1], NODES[2], NODES[3]],
                      "dnsmasq to answer"):
        check(False, "dnsmasq answers (log: %s)" % (dns.log.read_text()
                                                    if dns.log.exists() else "none"))
        return
    for i in NODES:   # node 4 runs from the start, outside the records
        daemons.append(pl.Dscd("n%d" % i, state / ("node%d" % i), secret,
                               port=PORT, host=NODES[i]))
    env = pl.base_env(secret)
    env.update(DSC_CACHE_DIR=str(state / "node1"), DSC_SELF="%s:%d" % (NODES[1], PORT),
               DSC_PEERS="dns:%s:%d" % (NAME, PORT), DSC_PEERS_REFRESH_S="1",
               DSC_LOG="info", DSC_PEER_BACKOFF_MS="30000")
    log = pl.S3Log()
    reader = Reader(pl, env, state / "local", urls, state / "reader.log")
    readers.append(reader)
    n = len(urls)

    def good_pass(what, quiet_ok=False):
        r = reader.ask("pass")
        check(r["ok"] == n and r["bad"] == 0 and r["errors"] == 0 and r["peer_errors"] == 0,
              "%s: %d objects read exact, no peer errors (%s)" % (what, n, r), quiet_ok)
        return r

    st = reader.ask("stats")
    check(st["peers"] == 3 and st["changes"] == 0,
          "at start the reader knows the 3 nodes DNS names (%s)" % st)
    good_pass("3 nodes, cold")

    # The same records by SRV: the same members, so everything the first
    # pass cached at its owners is read from them (no S3 GET).
    srv_env = dict(env, DSC_PEERS="srv:_dsc._tcp.%s" % NAME)
    srv = Reader(pl, srv_env, state / "local", urls, state / "srv.log")
    readers.append(srv)
    st = srv.ask("stats")
    r = srv.ask("pass")
    check(st["peers"] == 3 and r["ok"] == n and r["s3_gets"] == 0 and r["peer_hits"] > 0,
          "srv: names the same 3 nodes; its pass is served by them, 0 S3 GETs (%s)" % r)
    srv.close()
    readers.remove(srv)

    def change(members, named=True):
        """Change the records and read on while the reader notices: the
        passes running across the change are exact too."""
        dns.write(members, named)
        dns.reload()
        want = len(members) if named else 0
        passes = 0
        end = time.time() + 20
        before = reader.ask("stats")["peers"]
        while time.time() < end:
            r = good_pass("while %d -> %d nodes" % (before, want), quiet_ok=True)
            passes += 1
            if r["peers"] == want:
                print("ok   %d passes across %d -> %d nodes, each exact" % (passes, before, want))
                return passes
            time.sleep(0.1)
        check(False, "the reader saw %d nodes within 20 s" % want)
        return passes

    # A fork child (a DataLoader worker) has no refresher of its parent:
    # it starts its own and follows the records too. Not under TSan, whose
    # runtime cannot start threads in the child of a threaded process
    # ("dup thread with used id"); the other builds run it.
    dns.write([1, 2, 3, 4])
    if "TSAN_OPTIONS" in env:
        print("(fork check skipped under TSan)")
        dns.reload()
    else:
        reader.proc.stdin.write("forkwait 4\n")
        reader.proc.stdin.flush()
        dns.reload()
        words = reader.proc.stdout.readline().split()
        r = dict((k, int(v)) for k, v in (w.split("=") for w in words[1:] if "=" in w))
        check(words[:1] == ["fork"] and r.get("peers") == 4 and r.get("ok") == n and
              r.get("peer_errors") == 0,
              "a fork child sees the 4th node by itself and reads exact (%s)" % words)
        if words[1:2] == ["failed"]:
            print((state / "reader.log").read_text()[-3000:])
    passes = change([1, 2, 3, 4])
    good_pass("4 nodes")
    passes += change([1, 2])
    good_pass("2 nodes")
    st = reader.ask("stats")
    check(st["changes"] == 2, "two membership changes seen (%s, %d passes)" % (st, passes))
    # Nodes 3 and 4 leave: nobody asks them any more.
    for d in daemons[2:]:
        d.stop()
    good_pass("2 nodes, 3 and 4 stopped")

    # S3 GETs per chunk: each owner a chunk had fetched it once.
    o3, o4, o2 = owners([1, 2, 3]), owners([1, 2, 3, 4]), owners([1, 2])
    distinct = sum(len({a, b, c}) for a, b, c in zip(o3, o4, o2))
    moved = sum(a != b for a, b in zip(o3, o4)) + sum(b != c for b, c in zip(o4, o2))
    # Every chunk GET is ranged (206); a 200 is a HEAD (s3rver logs no
    # method), one per object at most: the node cache keeps metadata.
    gets = sum(log.gets(list(data), statuses=("206",)).values())
    heads = sum(log.gets(list(data), statuses=("200",)).values())
    check(heads <= n, "at most one HEAD per object (%d)" % heads)
    print("  %d chunks; %d moved (3->4: %d, 4->2: %d); S3 GETs %d, at most %d "
          "expected (one per owner a chunk had)" % (
              len(chunks), moved, sum(a != b for a, b in zip(o3, o4)),
              sum(b != c for b, c in zip(o4, o2)), gets, distinct))
    check(len(chunks) <= gets <= distinct <= len(chunks) + moved,
          "S3 GETs per chunk <= 1 + moved fraction (%d GETs, %d chunks, %d moved)"
          % (gets, len(chunks), moved))

    # DNS silent: no answer is not "no peers"; the members stay.
    before = reader.ask("stats")
    dns.stop()
    wait_until(lambda: reader.ask("stats")["resolve_errors"] > before["resolve_errors"],
               "a failed resolution")
    r = good_pass("DNS down")
    check(r["peers"] == 2 and r["s3_gets"] == before["s3_gets"],
          "DNS down: the 2 nodes kept, no extra S3 GET (%s)" % r)
    # A process starting while DNS is down opens, reads S3, and says so.
    late = Reader(pl, dict(env, DSC_SELF="127.0.0.99:%d" % PORT,
                           DSC_CACHE_DIR=str(state / "late-node")),
                  state / "local", urls, state / "late.log")
    readers.append(late)
    r = late.ask("pass")
    check(r["ok"] == n and r["peers"] == 0 and r["resolve_errors"] >= 1,
          "started with DNS down: no peers yet, reads exact from S3 (%s)" % r)
    # DNS back: the late reader finds the nodes; this node (DSC_SELF) is
    # not among them, which it says.
    dns.start()
    wait_until(lambda: late.ask("stats")["peers"] == 2, "the late reader to find 2 nodes")
    check(late.close() == 0, "the late reader exits cleanly")
    readers.remove(late)
    text = (state / "late.log").read_text()
    for want in ("reading from S3 until it answers", "answers again",
                 "127.0.0.99:7070) is not among the peers"):
        check(want in text, "the late reader's log says '%s'" % want)

    # A DNS server that takes queries and never answers (resolver timeout
    # 5 s x 2): opening waits DSC_CONNECT_TIMEOUT_MS at most, closing
    # does not wait for the resolver.
    dns.stop()
    resolv_slow = "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"
    with open("/etc/resolv.conf", "w") as f:
        f.write(resolv_slow)
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 53))
    t0 = time.time()
    p = subprocess.run([str(pl.BUILD / "tests" / "tools" / "pass_reader"), "1",
                        str(state / "local"), urls[0]],
                       env=dict(env, DSC_CONNECT_TIMEOUT_MS="1000"), input="stats\n",
                       capture_output=True, text=True, timeout=60)
    took = time.time() - t0
    silent.close()
    with open("/etc/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    check(p.returncode == 0 and "peers=0" in p.stdout and "no answer for" in p.stderr
          and took < 4.0,
          "silent DNS: open waits ~1 s, close does not wait for the resolver "
          "(%.1f s in all, rc %d)" % (took, p.returncode))
    dns.start()
    if not wait_until(lambda: resolved(NAME) == [NODES[1], NODES[2]], "dnsmasq back"):
        print(dns.log.read_text()[-1500:] if dns.log.exists() else "no dns log",
              dns.proc.poll())

    # The name gone (NXDOMAIN, an answer): no peers, reads go to S3.
    dns.write([], named=False)
    dns.reload()
    wait_until(lambda: reader.ask("stats")["peers"] == 0, "the members to empty")
    r = good_pass("name gone")
    check(r["peers"] == 0 and r["s3_gets"] > before["s3_gets"],
          "NXDOMAIN: no peers, node 2's chunks read from S3 (%s)" % r)
    check(reader.close() == 0, "reader exits cleanly")
    readers.remove(reader)
    text = (state / "reader.log").read_text()
    for want in ("now names 4 peers", "now names 2 peers", "now names 0 peers",
                 "keeping the peers known"):
        check(want in text, "the reader's log says '%s'" % want)

    # Bad settings are refused clearly, naming what is wrong.
    for extra, says in (({"DSC_PEERS": "dns:%s" % NAME}, "want dns:NAME:PORT"),
                        ({"DSC_PEERS_REFRESH_S": "0"}, "DSC_PEERS_REFRESH_S")):
        p = subprocess.run([str(pl.BUILD / "tests" / "tools" / "pass_reader"), "1",
                            str(state / "local"), urls[0]], env=dict(env, **extra),
                           input="", capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and says in p.stderr,
              "%s refused, saying '%s' (%s)" % (extra, says, p.stderr.strip()[-200:]))


if __name__ == "__main__":
    sys.exit(inside() if sys.argv[1:] == ["--inside"] else outer())
