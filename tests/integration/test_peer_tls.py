#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""Peer traffic in TLS, for clusters whose network is not private: a
cluster CA (made here with the openssl tool) signs the node's certificate;
dscd serves HTTPS (DSC_PEER_TLS_CERT/KEY); a reader with the CA
(DSC_PEER_TLS_CA) gets its chunks from the node, right and encrypted; a
reader trusting another CA, or speaking plain HTTP, gets nothing from the
node and reads S3 instead (right bytes, errors counted); a plain HTTP
client gets no answer; a key readable by others is refused at start.
Run through tests/run.sh."""
import os
import shutil
import ssl
import subprocess
import urllib.request

from peerlib import (STATE, Dscd, check, finish, peer_counts, reader, run_test,
                     upload_dataset)

SECRET = "tls-test-secret-5e1f"
SELF = "127.0.0.1:1"


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", str(d / (name + ".key")),
            "-out", str(d / (name + ".pem")))


def make_node_cert(d, ca):
    ext = d / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=node",
            "-keyout", str(d / "node.key"), "-out", str(d / "node.csr"))
    openssl("x509", "-req", "-in", str(d / "node.csr"), "-CA", str(d / (ca + ".pem")),
            "-CAkey", str(d / (ca + ".key")), "-CAcreateserial", "-days", "2",
            "-extfile", str(ext), "-out", str(d / "node.pem"))
    os.chmod(d / "node.key", 0o600)


def main():
    d = STATE / "peer-tls"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    make_ca(d, "cluster-ca")
    make_ca(d, "other-ca")
    make_node_cert(d, "cluster-ca")
    sizes = [(i * 70_001) % (3 * 128 * 1024) + 1000 for i in range(12)]
    verify = STATE / "peer-tls-local"
    upload_dataset("peer-tls/", sizes, verify, seed=5)
    tls_env = {"DSC_PEER_TLS_CERT": str(d / "node.pem"),
               "DSC_PEER_TLS_KEY": str(d / "node.key")}
    node = Dscd("tls", d / "node-cache", SECRET, extra_env=tls_env)
    try:
        ctx = ssl.create_default_context(cafile=str(d / "cluster-ca.pem"))
        with urllib.request.urlopen("https://%s/healthz" % node.addr, context=ctx,
                                    timeout=10) as r:
            check(r.status == 200, "HTTPS /healthz with the cluster CA")
        try:
            urllib.request.urlopen("http://%s/healthz" % node.addr, timeout=5).read()
            check(False, "plain HTTP gets no answer")
        except Exception:  # noqa: BLE001 - any failure is the point
            check(True, "plain HTTP gets no answer")
        cases = [
            ("reader with the cluster CA", {"DSC_PEER_TLS_CA": str(d / "cluster-ca.pem")},
             True),
            ("reader trusting another CA", {"DSC_PEER_TLS_CA": str(d / "other-ca.pem")},
             False),
            ("reader speaking plain HTTP", {}, False),
        ]
        for name, env, served in cases:
            rdir = d / "reader"
            shutil.rmtree(rdir, ignore_errors=True)
            p = reader(rdir, [SELF, node.addr], SELF, SECRET, "peer-tls/", verify,
                       extra_env=dict(env, DSC_PEER_TIMEOUT_MS="2000",
                                      DSC_PEER_BACKOFF_MS="100"))
            rc, out = finish(p)
            hits, errors, _ = peer_counts(out)
            check(rc == 0, "%s: every byte right\n%s" % (name, out))
            if served:
                check(hits > 0 and errors == 0,
                      "%s: chunks from the node (%d), no errors" % (name, hits))
            else:
                check(hits == 0 and errors > 0,
                      "%s: nothing from the node (%d), errors counted (%d)"
                      % (name, hits, errors))
        os.chmod(d / "node.key", 0o644)
        bad = subprocess.run([str(node.proc.args[0]), "--listen", "127.0.0.1:0",
                              "--cache-dir", str(d / "bad-cache")],
                             env=dict(os.environ, DSC_PEER_SECRET=SECRET, **tls_env),
                             capture_output=True, text=True, timeout=30)
        check(bad.returncode == 1 and "readable by others" in bad.stderr,
              "a TLS key readable by others is refused (%d: %s)"
              % (bad.returncode, bad.stderr.strip()[:120]))
    finally:
        node.stop()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(verify, ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "peer-tls/")
