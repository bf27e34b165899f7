#!/usr/bin/python3
# tsan: runs (it drives dscd and dsc-epoch; no libdsc in this process)
"""A 3-node cluster on 127.0.0.1: three dscd daemons with their own cache
directories and one dsc-epoch reader process per node, all reading the
same dataset from s3rver.

  1. epoch 1: s3rver's log shows every chunk fetched exactly once across
     the cluster, every byte verified, and the chunks spread over the
     three nodes' disks (no copies: the cluster's capacity is the sum);
  2. epoch 2 (new processes): zero GETs;
  3. a dscd killed (SIGKILL) mid-epoch: every read still returns the
     right bytes (its chunks come from S3), and the readers count the
     failed peer;
  4. peer_keep_local=1 keeps copies of other nodes' chunks locally.

Run through tests/run.sh (s3rver, env)."""
import shutil
import subprocess
import signal
import time

from peerlib import (BIN, BUCKET, CHUNK, STATE, Dscd, S3Log, base_env, check,
                     chunks_of, finish, peer_counts, reader, run_test,
                     upload_dataset)

SECRET = "peers-test-secret-7f3a"


def node_chunks(d):
    """Chunk files in a node's cache directory."""
    return sum(1 for p in (d / "data").rglob("*") if p.is_file())


def cluster(tag):
    dirs = [STATE / ("%s-node%d" % (tag, i)) for i in range(3)]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return dirs, [Dscd("%s%d" % (tag, i), d, SECRET) for i, d in enumerate(dirs)]


def run_epoch(dirs, daemons, prefix, verify, threads=4, extra_env=None):
    peers = [n.addr for n in daemons]
    procs = [reader(dirs[i], peers, daemons[i].addr, SECRET, prefix, verify,
                    threads=threads, extra_env=extra_env) for i in range(3)]
    return [finish(p) for p in procs]


def main():
    sizes = [1000, CHUNK, CHUNK + 1, 5 * CHUNK + 77] + \
            [(i * 37_111) % (4 * CHUNK) + 1 for i in range(28)]
    verify = STATE / "peers-local"
    data = upload_dataset("peers/", sizes, verify, seed=5)
    total_chunks = sum(chunks_of(len(d)) for d, _ in data.values())
    print("dataset: %d objects, %d chunks of %d KiB" %
          (len(data), total_chunks, CHUNK // 1024))
    log = S3Log()
    dirs, daemons = cluster("c")
    try:
        # --- epoch 1: each chunk from S3 exactly once across the cluster
        log.mark()
        results = run_epoch(dirs, daemons, "peers/", verify)
        for i, (rc, out) in enumerate(results):
            print("node %d reader:\n%s" % (i, out.rstrip()))
            check(rc == 0 and "all bytes verified" in out,
                  "node %d epoch 1: every byte right" % i)
            hits, errors, bad = peer_counts(out)
            check(hits > 0, "node %d got chunks from peers (%d)" % (i, hits))
            check(errors == 0, "node %d: no peer errors (%d)" % (i, errors))
        gets = log.gets(data)
        wrong = {k: (n, chunks_of(len(data[k][0]))) for k, n in gets.items()
                 if n != chunks_of(len(data[k][0]))}
        print("S3 GETs epoch 1: %d for %d chunks" % (sum(gets.values()),
                                                      total_chunks))
        check(not wrong, "epoch 1: every chunk fetched from S3 exactly once "
              "across 3 nodes (off: %s)" % dict(list(wrong.items())[:5]))
        on_disk = [node_chunks(d) for d in dirs]
        print("chunks per node disk:", on_disk)
        check(sum(on_disk) == total_chunks and min(on_disk) > 0,
              "each chunk stored on exactly one node (%s, total %d)" %
              (on_disk, total_chunks))
        m = [n.metrics() for n in daemons]
        served = sum(x["dscd_peer_requests_total"] for x in m)
        s3_gets = sum(x["dscd_s3_gets_total"] for x in m)
        print("dscd: %d peer requests, %d S3 GETs by daemons" % (served, s3_gets))
        check(served > 0, "the daemons answered peer requests")

        # --- epoch 2: nothing from S3
        log.mark()
        results = run_epoch(dirs, daemons, "peers/", verify)
        for i, (rc, out) in enumerate(results):
            check(rc == 0 and "all bytes verified" in out,
                  "node %d epoch 2: every byte right" % i)
        gets = log.gets(data)
        print("S3 GETs epoch 2:", sum(gets.values()))
        check(sum(gets.values()) == 0, "epoch 2: zero S3 GETs")
    finally:
        for n in daemons:
            n.stop()

    # --- a dscd dies mid-epoch
    sizes2 = [(i * 52_361) % (3 * CHUNK) + 4096 for i in range(90)]
    verify2 = STATE / "peers-local-2"
    data2 = upload_dataset("peers-kill/", sizes2, verify2, seed=6)
    dirs, daemons = cluster("k")
    try:
        peers = [n.addr for n in daemons]
        procs = [reader(dirs[i], peers, daemons[i].addr, SECRET, "peers-kill/",
                        verify2, threads=2) for i in range(3)]
        victim = daemons[1]
        deadline = time.time() + 60
        while time.time() < deadline:
            if victim.metrics().get("dscd_peer_requests_total", 0) >= 5:
                break
            time.sleep(0.01)
        victim.stop(signal.SIGKILL)
        print("killed dscd %s mid-epoch" % victim.addr)
        for i, p in enumerate(procs):
            rc, out = finish(p)
            print("node %d reader:\n%s" % (i, out.rstrip()))
            check(rc == 0 and "all bytes verified" in out,
                  "node %d with a dead peer: every byte right" % i)
            if i != 1:
                _, errors, _ = peer_counts(out)
                check(errors >= 1, "node %d counted the dead peer (%d errors)"
                      % (i, errors))
    finally:
        for n in daemons:
            n.stop()

    # --- dsc-prefetch on one node warms the whole cluster: each chunk goes
    # to its owner's disk (a HEAD to the owner), nothing crosses the wire
    dirs, daemons = cluster("w")
    try:
        peers = [n.addr for n in daemons]
        env = base_env(SECRET)
        env.update(DSC_CACHE_DIR=str(dirs[0]), DSC_PEERS=",".join(peers),
                   DSC_SELF=peers[0])
        log.mark()
        pf = subprocess.run([str(BIN / "dsc-prefetch"), "-j", "4", "--quiet",
                             "s3://%s/peers/" % BUCKET], env=env,
                            capture_output=True, text=True, timeout=120)
        check(pf.returncode == 0, "dsc-prefetch with peers: exit 0 (%s)" % pf.stderr[-300:])
        gets = log.gets(data)
        on_disk = [node_chunks(d) for d in dirs]
        print("prefetch: %d S3 GETs, chunks per node %s" % (sum(gets.values()), on_disk))
        check(sum(gets.values()) == total_chunks and sum(on_disk) == total_chunks
              and min(on_disk) > 0,
              "prefetch from one node: each chunk once, on its owner's disk")
        sent = sum(n.metrics().get("dscd_sent_bytes_total", 0) for n in daemons)
        check(sent == 0, "prefetch moved no chunk bytes between nodes (%d)" % sent)
        log.mark()
        results = run_epoch(dirs, daemons, "peers/", verify)
        check(all(rc == 0 and "all bytes verified" in out for rc, out in results),
              "epoch after the prefetch: every byte right")
        check(sum(log.gets(data).values()) == 0, "epoch after the prefetch: zero S3 GETs")
    finally:
        for n in daemons:
            n.stop()

    # --- keep_local: copies of other nodes' chunks stay here too
    dirs, daemons = cluster("l")
    try:
        peers = [n.addr for n in daemons]
        p = reader(dirs[0], peers, daemons[0].addr, SECRET, "peers/", verify,
                   extra_env={"DSC_PEER_KEEP_LOCAL": "1"})
        rc, out = finish(p)
        check(rc == 0 and "all bytes verified" in out, "keep_local: bytes right")
        check(node_chunks(dirs[0]) == total_chunks,
              "keep_local: node 0 holds all %d chunks (%d)" %
              (total_chunks, node_chunks(dirs[0])))
    finally:
        for n in daemons:
            n.stop()
    for tag in ("c", "k", "w", "l"):
        for i in range(3):
            shutil.rmtree(STATE / ("%s-node%d" % (tag, i)), ignore_errors=True)


if __name__ == "__main__":
    run_test(main, "peers/", "peers-kill/")
