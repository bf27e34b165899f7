#!/usr/bin/python3
"""Baselines for bench/bench_fetch.c, and the summary of bench/run.sh.

Run with /usr/bin/python3: Debian's python3-boto3 and python3-awscrt live
there. One measurement per call; prints one line of key=value pairs.

  fetch_baselines.py crt-big   HOST PATH [--to FILE] [--expect BYTES]
      the AWS CRT S3 client (awscrt.s3.S3Client, the client Mountpoint and
      the S3 connector for PyTorch use) GETs one object; parts in parallel.
      awscrt 0.16 connects to HOST:80 without TLS (it takes the endpoint
      from the Host header), so HOST must serve on port 80.
  fetch_baselines.py crt-many  HOST PATH_PREFIX COUNT [--expect BYTES]
      the CRT client GETs COUNT objects PATH_PREFIX%04d, all requests
      submitted at once (the client bounds its connections).
  fetch_baselines.py boto3-many ENDPOINT BUCKET KEY_PREFIX COUNT [--threads N]
                                [--expect BYTES]
      boto3 get_object + read of each object on N threads (default 16).
  fetch_baselines.py median RESULTS ORIGIN TEST CLIENT FIELD
      the median of one field of some measurements in RESULTS.
  fetch_baselines.py report RESULTS
      medians and ratios of the measurements in RESULTS (lines
      "ORIGIN TEST CLIENT key=value ...") as the summary table.

--expect BYTES (crt-big, crt-many, boto3-many): fail unless exactly that
many body bytes arrived. Credentials: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (S3RVER/S3RVER for the bench), region us-east-1.
CRT_PART_SIZE / CRT_TARGET_GBPS tune the CRT client (default: its own
defaults, which did as well as any setting tried here). Bodies are
received and discarded (CRT: written to /dev/null by the CRT itself, its
fastest way, or to --to FILE; boto3: read into memory), so the baselines
pay for no cache, unlike libdsc.
"""
import os
import resource
import statistics
import sys
import threading
import time


def creds():
    return (os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
            os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"))


def crt_client(part_size=None, target_gbps=None):
    from awscrt import auth, io, s3
    elg = io.EventLoopGroup()          # one event-loop thread per core
    resolver = io.DefaultHostResolver(elg)
    bootstrap = io.ClientBootstrap(elg, resolver)
    ak, sk = creds()
    provider = auth.AwsCredentialsProvider.new_static(ak, sk)
    return s3.S3Client(bootstrap=bootstrap, region="us-east-1",
                       tls_mode=s3.S3RequestTlsMode.DISABLED,
                       credential_provider=provider, part_size=part_size,
                       throughput_target_gbps=target_gbps)


def crt_get(client, host, path, to, counter):
    from awscrt import http, s3
    headers = http.HttpHeaders([("Host", host)])
    req = http.HttpRequest("GET", path, headers)
    status = []

    def on_headers(status_code, headers, **kw):
        status.append(status_code)

    def on_progress(progress, **kw):
        with counter[1]:
            counter[0] += progress

    r = client.make_request(request=req, type=s3.S3RequestType.GET_OBJECT,
                            recv_filepath=to, on_headers=on_headers,
                            on_progress=on_progress)
    return r, status


def check_bytes(what, got, expect):
    if expect is not None and got != expect:
        sys.exit("%s: %d body bytes, expected %d" % (what, got, expect))


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def cmd_crt_big(host, path, to="/dev/null", expect=None):
    client = crt_client(env_int("CRT_PART_SIZE", 0) or None,
                        float(os.environ.get("CRT_TARGET_GBPS", "0")) or None)
    counter = [0, threading.Lock()]
    t0 = time.monotonic()
    r, status = crt_get(client, host, path, to, counter)
    r.finished_future.result()
    secs = time.monotonic() - t0
    if not status or status[0] not in (200, 206):
        sys.exit("crt-big: status %s" % status)
    check_bytes("crt-big", counter[0], expect)
    print("secs=%.4f bytes=%d maxrss_kb=%d" % (
        secs, counter[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def cmd_crt_many(host, prefix, count, expect=None):
    client = crt_client(env_int("CRT_PART_SIZE", 0) or None,
                        float(os.environ.get("CRT_TARGET_GBPS", "0")) or None)
    counter = [0, threading.Lock()]
    t0 = time.monotonic()
    reqs = [crt_get(client, host, "%s%04d" % (prefix, i), "/dev/null", counter)
            for i in range(count)]
    for r, status in reqs:
        r.finished_future.result()
        if not status or status[0] not in (200, 206):
            sys.exit("crt-many: status %s" % status)
    secs = time.monotonic() - t0
    check_bytes("crt-many", counter[0], expect)
    print("secs=%.4f objects=%d bytes=%d maxrss_kb=%d" % (
        secs, count, counter[0],
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def cmd_boto3_many(endpoint, bucket, prefix, count, threads=16, expect=None):
    import concurrent.futures
    import boto3
    from botocore.config import Config
    ak, sk = creds()
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak,
                      aws_secret_access_key=sk, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"},
                                    max_pool_connections=threads))

    def get(i):
        return len(s3.get_object(Bucket=bucket,
                                 Key="%s%04d" % (prefix, i))["Body"].read())

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        total = sum(ex.map(get, range(count)))
    secs = time.monotonic() - t0
    check_bytes("boto3-many", total, expect)
    print("secs=%.4f objects=%d bytes=%d maxrss_kb=%d" % (
        secs, count, total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


# ---- report ----

def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            kv = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            runs.setdefault(tuple(parts[:3]), []).append(kv)
    return runs


def med(runs, key, field="secs"):
    v = [float(r[field]) for r in runs.get(key, []) if field in r]
    return (statistics.median(v), len(v)) if v else (None, 0)


def verdict(r, goal, higher=True):
    ok = r >= goal if higher else r <= goal
    return "MET" if ok else "NOT MET"


def cmd_report(path):
    runs = load(path)
    mib = 1 << 20
    out = []
    w = out.append
    row = "     %-38s %7.3f s %7.0f %s  (N=%d)%s"

    def srv(o, t, cl, secs):
        """s3rver's CPU use during the runs, as a share of one core."""
        c, _ = med(runs, (o, t, cl), "srv_cpu")
        return "" if c is None else "  [s3rver busy %3.0f%% of a core]" % (
            100 * c / secs)

    def ratios(t, base):
        """' vs NAME 1.23x [goal >= G: MET]' for each (name, time, goal)."""
        s = ""
        for name, b, goal in base:
            if b is None:
                continue
            s += "  vs %s %.2fx" % (name, b / t)
            if goal:
                s += " [goal >= %.1fx: %s]" % (goal, verdict(b / t, goal))
        return s

    w("")
    w("== cold fetch, medians of N runs; ratio = baseline's time / libdsc's "
      "time (> 1: libdsc faster)")
    for o in ("s3rver", "nginx"):
        if not any(k[0] == o for k in runs):
            continue
        w("")
        w("origin: %s" % {
            "s3rver": "s3rver behind an nginx reverse proxy on 127.0.0.1:80 "
                      "(all clients)",
            "nginx": "nginx serving the same bytes as static files "
                     "(sendfile) on 127.0.0.1:80"}[o])
        big = runs.get((o, "big", "libdsc"))
        if big:
            size = int(big[0]["bytes"])
            w("  1. one object of %d MiB, cold" % (size // mib))
            crt, n1 = med(runs, (o, "big", "crt"))
            cu, n2 = med(runs, (o, "big", "curl"))
            if crt is not None:
                w(row % ("CRT S3Client (to /dev/null)", crt, size / mib / crt,
                         "MiB/s", n1, srv(o, "big", "crt", crt)))
            if cu is not None:
                w(row % ("curl, one stream (-o /dev/null)", cu, size / mib / cu,
                         "MiB/s", n2, srv(o, "big", "curl", cu)))
            for cl, label, goal in (("libdsc", "libdsc dsc_warm", 1.0),
                                    ("libdsc-disk", "libdsc dsc_warm", 0)):
                d, n = med(runs, (o, "big", cl))
                if d is not None:
                    label += " (cache on %s)" % runs[(o, "big", cl)][0].get("fs")
                    w(row % (label, d, size / mib / d, "MiB/s", n,
                             ratios(d, [("CRT", crt, goal), ("curl", cu, 0)]) +
                             srv(o, "big", cl, d)))
        many = runs.get((o, "many", "libdsc"))
        if many:
            cnt = int(many[0]["objects"])
            w("  2. %d objects of 128 KiB, cold" % cnt)
            boto, n1 = med(runs, (o, "many", "boto3"))
            crt, n2 = med(runs, (o, "many", "crt"))
            if boto is not None:
                w(row % ("boto3, 16 threads", boto, cnt / boto, "obj/s", n1,
                         srv(o, "many", "boto3", boto)))
            if crt is not None:
                w(row % ("CRT S3Client, all at once", crt, cnt / crt, "obj/s",
                         n2, srv(o, "many", "crt", crt)))
            for cl, label, goals in (
                    ("libdsc", "libdsc prefetch_url all + wait", (3.0, 1.0)),
                    ("libdsc-list", "libdsc dsc_list, prefetch_url, wait",
                     (3.0, 1.0)),
                    ("libdsc-disk", "libdsc prefetch_url, cache on %s" % (
                        runs.get((o, "many", "libdsc-disk"), [{}])[0].get("fs")),
                     (0, 0))):
                d, n = med(runs, (o, "many", cl))
                if d is None:
                    continue
                r0 = runs[(o, "many", cl)][0]
                w(row % (label, d, cnt / d, "obj/s", n,
                         ratios(d, [("boto3", boto, goals[0]),
                                    ("CRT", crt, goals[1])]) +
                         srv(o, "many", cl, d)))
                if cl != "libdsc-disk":
                    w("     %-38s (requests: %s GET, %s HEAD, %s LIST)" % (
                        "", r0.get("gets"), r0.get("heads"), r0.get("lists")))
            # What the origin itself can do: s3rver is one node process.
            cg, _ = med(runs, (o, "many", "crt"), "srv_cpu")
            cu, _ = med(runs, (o, "many", "libdsc"), "srv_cpu")
            cl, _ = med(runs, (o, "many", "libdsc-list"), "srv_cpu")
            if cg and boto:
                per_get = cg / cnt
                msg = "     s3rver's own CPU: %.2f ms per GET" % (1e3 * per_get)
                if cu is not None and cl is not None:
                    msg += ", %.2f ms per HEAD" % (1e3 * max(0, cu - cl) / cnt)
                w(msg + "; one core serves at most ~%.0f GET/s, and 3x boto3 "
                  "is %.0f obj/s" % (1 / per_get, 3 * cnt / boto))
            rss, n = med(runs, (o, "many", "libdsc"), "maxrss_kb")
            w("  3. peak RSS (ru_maxrss) of the libdsc prefetch_url process: "
              "%.1f MiB (median of %d)" % (rss / 1024, n))
        ep = runs.get((o, "epoch", "libdsc"))
        if ep:
            e0 = ep[0]
            p, n = med(runs, (o, "epoch", "libdsc"), "plan_secs")
            wm, _ = med(runs, (o, "epoch", "libdsc"), "warm_secs")
            pr, _ = med(runs, (o, "epoch", "libdsc"), "plan_read_secs")
            wr, _ = med(runs, (o, "epoch", "libdsc"), "warm_read_secs")
            r = statistics.median(float(x["plan_secs"]) / float(x["warm_secs"])
                                  for x in ep)
            w("  4. shuffled epoch over %s objects of 128 KiB: dsc_open + "
              "dsc_pread each, then a %.2f ms sleep" % (
                  e0["objects"], float(e0["step_us"]) / 1000))
            w("     as the training step (twice libdsc's cold time per object "
              "above, at least 1 ms, so fetching can hide; %.2f s of steps)" %
              float(e0["steps_secs"]))
            w("     %-38s %7.3f s   (in libdsc calls: %.3f s)" % (
                "cold, order given to dsc_plan_start", p, pr))
            w("     %-38s %7.3f s   (in libdsc calls: %.3f s)" % (
                "warm cache, same loop and steps", wm, wr))
            w("     %-38s %7.3f     (median of %d runs)  [goal <= 1.2: %s]" % (
                "ratio cold / warm", r, n, verdict(r, 1.2, higher=False)))
    print("\n".join(out))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    opt = {}
    pos = []
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            opt[args[i][2:]] = args[i + 1]
            i += 2
        else:
            pos.append(args[i])
            i += 1
    expect = int(opt["expect"]) if "expect" in opt else None
    if cmd == "crt-big" and len(pos) == 2:
        cmd_crt_big(pos[0], pos[1], opt.get("to", "/dev/null"), expect)
    elif cmd == "crt-many" and len(pos) == 3:
        cmd_crt_many(pos[0], pos[1], int(pos[2]), expect)
    elif cmd == "boto3-many" and len(pos) == 4:
        cmd_boto3_many(pos[0], pos[1], pos[2], int(pos[3]),
                       int(opt.get("threads", 16)), expect)
    elif cmd == "median" and len(pos) == 5:
        v, _ = med(load(pos[0]), tuple(pos[1:4]), pos[4])
        print("%.6f" % v if v is not None else "")
    elif cmd == "report" and len(pos) == 1:
        cmd_report(pos[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
