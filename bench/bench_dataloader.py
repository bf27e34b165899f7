#!/usr/bin/python3
"""PyTorch DataLoader over dsc.MapDataset, against local files and boto3.

Run with /usr/bin/python3 (Debian's torch, numpy and boto3 live there);
bench/run_dataloader.sh starts s3rver and calls both subcommands.

  bench_dataloader.py prepare ENDPOINT BUCKET PREFIX LOCALDIR [--count N]
        [--min-kib K] [--max-kib K]
      N samples (default 2000) of random bytes, sizes uniform in
      [min, max] KiB (100..200), written to LOCALDIR/PREFIX... and
      uploaded with boto3 to s3://BUCKET/PREFIX...
  bench_dataloader.py run ENDPOINT BUCKET PREFIX LOCALDIR STATEDIR
        [--runs R] [--warm-runs R] [--extra 0|1] [--dsc-stat PATH]
        [--default-malloc]
      the two figures below, medians of the runs of this process.
      Environment: S3RVER_PID and S3RVER_LOG (the breakdown's s3rver CPU
      and request counts), AWS_* for boto3 and libdsc.

Every loader is torch.utils.data.DataLoader(batch_size=32, shuffle=True,
num_workers=4, default (fork) start method). Every sample goes through the
same wrapper: read the bytes (the only thing that differs), then the same
light transform -- a uint8 tensor view of the sample's first 100 KiB
(torch.frombuffer, no copy; the default collate stacks 32 of them into a
3.2 MB batch that crosses to this process in shared memory) and its
length. The wrapper also returns how long the read took and the worker's
CPU time, for the breakdown. Nothing is done with a batch.

1. warm: samples/s of the epochs after the first, DataLoader over
   dsc.MapDataset("s3://BUCKET/PREFIX", client made in the parent; the
   node cache, on disk under STATEDIR, filled by epoch 1), vs the same
   DataLoader over a Dataset doing open(path, "rb").read() of the local
   copy (same disk; page cache warm). Both use persistent_workers=True, so
   worker start-up is paid once, in epoch 1, on both sides; an epoch is
   timed from iter() (which only hands the waiting workers the epoch's
   first indices) to its last batch. Rounds alternate which side goes
   first (ABBA...).
2. cold: samples/s of epoch 1, libdsc with an empty cache vs a Dataset
   doing boto3 get_object(...)["Body"].read() with one boto3 client per
   worker (made in worker_init_fn). A fresh DataLoader (fresh workers) per
   run on both sides, timed from iter() -- worker fork, boto3 clients and
   libdsc's prefetch queueing all inside -- to the last batch. libdsc: a
   new cache directory and a new Client per run; the MapDataset is built
   from the prefix (its listing records every object's size and ETag, so
   opens need no HEAD); right after iter() has forked the workers, the
   parent calls client.prefetch() with every URL in this epoch's shuffled
   order (predicted from the DataLoader's generator, and checked against
   the order the batches arrive in). The parent's 8 background fetchers
   (the default) then GET ahead of the workers, and a worker reading an
   object in flight joins that GET. Rounds rotate which side goes first.

With --extra 1 (the default), rows that are no goal are added:
1b. a warm epoch of libdsc whose cached metadata has expired
   (meta_ttl_ms=1), as in every epoch that starts more than 60 s (the
   default TTL) after the previous one opened the object: each open then
   sends a HEAD to S3. One epoch of a fresh persistent-worker loader over
   the warm cache (its worker start-up included).
2b. libdsc cold epochs without prefetch (the workers' reads only), one
   per round.
2c. one libdsc cold epoch with prefetch over a MapDataset made from a list
   of URLs instead of the prefix: no listing has recorded the objects'
   sizes and ETags, so a worker that opens an object before the prefetch
   has fetched it sends a HEAD first (dsc_open needs size and ETag); the
   200s among reqs are those HEADs.

Dirty pages are written back (os.sync) before each timed phase, so one
phase's writeback does not land in the next one's time.

Every worker (all sides) starts with mallopt(M_MMAP_THRESHOLD, 4 MiB) and
mallopt(M_TRIM_THRESHOLD, 256 MiB) unless --default-malloc: with glibc's
dynamic thresholds, whether a sample's fresh 100-200 KiB buffer is
page-faulted in (25-35 faults, 0.5-0.7 ms per sample on this VM) or reused
depends on the worker's allocation history, which differs between the
sides (libdsc's workers fetched epoch 1 themselves): with the defaults,
that rather than the read path decided the warm ratio (1.2-1.4 for
libdsc, local reads faulting ~24 times each, libdsc's ~10). The flt
column shows it.

Breakdown columns: first = seconds to the first batch; s3rver = s3rver's
CPU seconds during the epoch / wall seconds (1.00: its one thread busy
all along); wk+par = CPU ms of the workers plus this process (where the
libdsc fetcher threads run) per sample; read = median / 90th percentile
wall time of one sample's read in a worker; flt = minor page faults per
read in the worker; disk = MiB read from block
devices during the epoch, whole machine (page cache misses show here);
reqs = requests s3rver logged (206: ranged GETs, i.e. libdsc's GETs).
s3rver ceiling = samples / s3rver's CPU seconds in a cold epoch: the rate
at which s3rver, with a core to itself, is the limit whatever the client.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD_BYTES = 100 << 10          # the transform's view: the smallest sample


def key_name(prefix, i):
    return "%ssample-%05d.bin" % (prefix, i)


def s3_client(endpoint, pool=10):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint,
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"),
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"},
                                      max_pool_connections=pool))


# ---------------------------------------------------------------- prepare

def prepare(a):
    import concurrent.futures
    import random
    s3 = s3_client(a.endpoint, pool=16)
    rng = random.Random(1)
    sizes = [rng.randint(a.min_kib << 10, a.max_kib << 10) for _ in range(a.count)]

    def one(i):
        key = key_name(a.prefix, i)
        data = os.urandom(sizes[i])
        path = os.path.join(a.localdir, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        s3.put_object(Bucket=a.bucket, Key=key, Body=data)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(one, range(a.count)))
    print("bench_dataloader: %d samples, %.1f MiB (%d..%d KiB random bytes), written to "
          "%s and uploaded with boto3 in %.1f s" % (
              a.count, sum(sizes) / 1048576, a.min_kib, a.max_kib, a.localdir,
              time.perf_counter() - t0))


# ---------------------------------------------------------------- datasets

class Timed:
    """Every loader's dataset: inner[i] gives the bytes; the rest is the
    same for all. Returns (index, uint8 view of the first 100 KiB, length,
    read seconds, page faults during the read, worker id, worker CPU
    seconds so far)."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        import resource
        import torch
        from torch.utils.data import get_worker_info
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        data = self.inner[i]
        t1 = time.perf_counter()
        f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        view = torch.frombuffer(data, dtype=torch.uint8, count=HEAD_BYTES)
        info = get_worker_info()
        return (i, view, len(data), t1 - t0, f1 - f0, info.id if info else -1,
                time.process_time())


class LocalFiles:
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return f.read()


class Boto3Objects:
    """get_object + read; the client is made per worker (worker_init_fn)."""

    def __init__(self, endpoint, bucket, keys):
        self.endpoint, self.bucket, self.keys = endpoint, bucket, keys
        self.s3 = None

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        return self.s3.get_object(Bucket=self.bucket, Key=self.keys[i])["Body"].read()


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # glibc's mallopt parameters
TUNED_MALLOC = True


def tune_malloc():
    """Keep freed sample buffers in the worker's heap. With glibc's
    defaults a 100-200 KiB buffer is either mmapped or trimmed from the heap
    top and faulted back in on the next read, or reused without a fault,
    depending on what else the process allocated before (its history):
    about 35 faults per sample, ~0.7 ms on this VM, on one side and not the
    other. Fixed thresholds make every side reuse its memory."""
    import ctypes
    libc = ctypes.CDLL(None)
    libc.mallopt(M_MMAP_THRESHOLD, 4 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)


def worker_init(_worker_id):
    """Every loader's worker_init_fn: the malloc setting (unless
    --default-malloc), and the boto3 dataset's per-worker client."""
    from torch.utils.data import get_worker_info
    if TUNED_MALLOC:
        tune_malloc()
    ds = get_worker_info().dataset.inner
    if isinstance(ds, Boto3Objects):
        ds.s3 = s3_client(ds.endpoint)


# ---------------------------------------------------------------- measuring

def proc_cpu(pid):
    """CPU seconds (user + system) of a process; None when unknown."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def disk_read_mib():
    """MiB read from block devices so far, by every process of the machine
    (/proc/vmstat pgpgin counts KiB)."""
    try:
        with open("/proc/vmstat") as f:
            for ln in f:
                if ln.startswith("pgpgin "):
                    return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return None


class S3rverLog:
    """Requests s3rver logged since the last call: (all, status 206)."""

    def __init__(self, path):
        self.path = path
        self.pos = os.path.getsize(path) if path and os.path.exists(path) else None

    def since(self):
        if self.pos is None:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            text = f.read()
        self.pos += len(text)
        lines = [ln for ln in text.decode("utf-8", "replace").splitlines()
                 if " 200 " in ln or " 206 " in ln]
        return len(lines), sum(1 for ln in lines if " 206 " in ln)


class Epoch:
    """Times one pass over a loader; on_iter(iterator) runs right after
    iter() (the cold libdsc runs queue their prefetch there)."""

    def __init__(self, loader, env, on_iter=None, worker_cpu=None):
        # Workers' CPU: each one's process time at its last sample, minus
        # where it was after the previous epoch (persistent workers; fresh
        # workers start from 0, so their start-up counts).
        self.worker_cpu = worker_cpu if worker_cpu is not None else {}
        start_cpu = dict(self.worker_cpu)
        env.log.since()
        srv0 = proc_cpu(env.s3rver_pid)
        disk0 = disk_read_mib()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        it = iter(loader)
        if on_iter:
            on_iter(it)
        first = None
        reads = []
        self.order = []
        faults = 0
        for idx, _view, lens, secs, flt, wid, wcpu in it:
            if first is None:
                first = time.perf_counter()
            if env.sizes is not None:
                assert lens.tolist() == [env.sizes[i] for i in idx.tolist()], "wrong sample sizes"
            reads.extend(secs.tolist())
            faults += int(flt.sum())
            self.order.extend(idx.tolist())
            for w, c in zip(wid.tolist(), wcpu.tolist()):
                if c > self.worker_cpu.get(w, 0.0):
                    self.worker_cpu[w] = c
        t1 = time.perf_counter()
        del it
        self.n = len(self.order)
        self.faults = faults / self.n
        self.secs = t1 - t0
        self.first = first - t0
        self.rate = self.n / self.secs
        reads.sort()
        self.read_ms = [1000 * reads[int(q * (len(reads) - 1))] for q in (0.5, 0.9)]
        self.parent_cpu = time.process_time() - cpu0
        self.workers_cpu = sum(c - start_cpu.get(w, 0.0) for w, c in self.worker_cpu.items())
        disk1 = disk_read_mib()
        self.disk = disk1 - disk0 if disk0 is not None and disk1 is not None else None
        srv1 = proc_cpu(env.s3rver_pid)
        self.s3rver_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
        self.reqs = env.log.since()
        self.note = ""

    def row(self, label):
        srv = "%4.2f" % (self.s3rver_cpu / self.secs) if self.s3rver_cpu is not None else "   -"
        reqs = "%5d (206: %4d)" % self.reqs if self.reqs else "-"
        disk = "%4.0f" % self.disk if self.disk is not None else "   -"
        return ("   %-20s %5.2f s %5.0f/s  first %4.2f s  s3rver %s  wk+par %4.2f ms"
                "  read %5.2f/%5.2f ms %4.1f flt  disk %s MiB  reqs %s%s"
                % (label, self.secs, self.rate, self.first, srv, self.client_ms(),
                   self.read_ms[0], self.read_ms[1], self.faults, disk, reqs, self.note))

    def client_ms(self):
        """CPU ms per sample of the workers and this process."""
        return 1000 * (self.workers_cpu + self.parent_cpu) / self.n


class Env:
    def __init__(self):
        pid = os.environ.get("S3RVER_PID")
        self.s3rver_pid = int(pid) if pid else None
        self.log = S3rverLog(os.environ.get("S3RVER_LOG"))
        self.sizes = None           # index -> size, checked against every sample


def predicted_order(loader, n):
    """The order RandomSampler will draw this epoch, replaying the
    loader's generator as torch 1.13's _BaseDataLoaderIter uses it: one
    int64 draw for the workers' base seed, then randperm. Call right
    before iter(loader); Epoch.order tells whether it was right."""
    import torch
    g = torch.Generator()
    g.set_state(loader.generator.get_state())
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g).tolist()


def median(xs):
    return statistics.median(xs)


def spread(xs):
    return "%.2f..%.2f" % (min(xs), max(xs))


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def node_view(dsc_stat, cache_dir):
    """dsc-stat's view of a cache directory (every process's counters)."""
    if not dsc_stat or not os.access(dsc_stat, os.X_OK):
        return None
    import json
    out = subprocess.run([dsc_stat, "--json", "--cache-dir", cache_dir],
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def checkout():
    """The checkout's commit (and whether lib/ differs from it), and when
    the library file was built: libdsc changes under the bench."""
    def git(*args):
        out = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "?"
    if git("status", "--porcelain", "--", "lib", "include", "bindings"):
        commit += " + local changes in lib/include/bindings"
    return commit


def run(a):
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import dsc
    import torch
    import boto3  # noqa: F401  (imported before the workers fork)
    from torch.utils.data import DataLoader
    warnings.filterwarnings("ignore", message="The given buffer is not writable")
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    env = Env()
    prefix_url = "s3://%s/%s" % (a.bucket, a.prefix)
    keys = sorted(o["Key"] for page in s3_client(a.endpoint).get_paginator(
        "list_objects_v2").paginate(Bucket=a.bucket, Prefix=a.prefix)
        for o in page.get("Contents", []))
    paths = [os.path.join(a.localdir, k) for k in keys]
    n = len(keys)
    env.sizes = [os.path.getsize(p) for p in paths]
    global TUNED_MALLOC
    TUNED_MALLOC = not a.default_malloc
    settings = dict(batch_size=a.batch, shuffle=True, num_workers=a.workers, timeout=300,
                    worker_init_fn=worker_init)
    t_start = time.perf_counter()
    lib = dsc.library_path()
    print("bench_dataloader: %d samples, %.1f MiB; DataLoader(batch_size=%d, shuffle=True, "
          "num_workers=%d), fork; workers' malloc: %s\n   torch %s; libdsc %s from %s "
          "(built %s; checkout %s); %d cores, load %s"
          % (n, sum(os.path.getsize(p) for p in paths) / 1048576, a.batch, a.workers,
             "glibc defaults" if a.default_malloc else "mmap 4 MiB / trim 256 MiB thresholds",
             torch.__version__, dsc.version(), lib,
             time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(lib))), checkout(),
             os.cpu_count(), loadavg()))

    # ---- 1. warm: epochs 2+ over the node cache vs local files
    print("\n== 1. warm epochs: dsc.MapDataset over the node cache vs open().read() of a local "
          "copy\n   (persistent workers; epoch 1 fills the cache / page cache; %d rounds, "
          "alternating)" % a.warm_runs)
    warm_dir = os.path.join(a.statedir, "cache-warm")
    client = dsc.Client(cache_dir=warm_dir)
    dsc_ds = dsc.MapDataset(prefix_url, client=client)
    assert dsc_ds.urls == ["s3://%s/%s" % (a.bucket, k) for k in keys]
    loaders = {
        "dsc": DataLoader(Timed(dsc_ds), persistent_workers=True, **settings),
        "local": DataLoader(Timed(LocalFiles(paths)), persistent_workers=True, **settings),
    }
    wcpu = {name: {} for name in loaders}
    for name in ("dsc", "local"):
        os.sync()
        e = Epoch(loaders[name], env, worker_cpu=wcpu[name])
        assert e.n == n
        print(e.row("%s epoch 1" % name))
    os.sync()
    warm = {"dsc": [], "local": []}
    for r in range(a.warm_runs):
        for name in (("dsc", "local") if r % 2 == 0 else ("local", "dsc")):
            e = Epoch(loaders[name], env, worker_cpu=wcpu[name])
            assert e.n == n
            warm[name].append(e.rate)
            print(e.row("%s epoch %d" % (name, r + 2)))
    rounds_w = [d / l for d, l in zip(warm["dsc"], warm["local"])]
    del loaders
    client.close()
    view = node_view(a.dsc_stat, warm_dir)
    if view:
        print("   node cache (dsc-stat): %d chunks, %d hits, %d misses (= GETs: epoch 1 only)"
              % (view["chunks"], view["hits"], view["misses"]))

    expired = None
    if a.extra:
        print("\n== 1b. (no goal) a warm epoch with expired metadata: meta_ttl_ms=1, as for "
              "epochs more than 60 s apart")
        client = dsc.Client(cache_dir=warm_dir, meta_ttl_ms=1)
        loader = DataLoader(Timed(dsc.MapDataset(prefix_url, client=client)),
                            persistent_workers=True, **settings)
        e = Epoch(loader, env)
        print(e.row("dsc ttl=1 epoch"))
        expired = e.rate
        del loader
        client.close()

    # ---- 2. cold: epoch 1, dsc with prefetch vs boto3
    sides = ["boto3", "dsc"] + (["dsc-noprefetch"] if a.extra else [])
    runs = [(r, name) for r in range(a.runs)
            for name in sides[r % len(sides):] + sides[:r % len(sides)]]
    if a.extra:
        runs.append((a.runs - 1, "dsc-urllist"))
    print("\n== 2. cold epoch 1: dsc.MapDataset + client.prefetch(epoch order) vs boto3 "
          "get_object\n   (fresh workers, empty cache per run; %d rounds, rotating)" % a.runs)
    cold = {s: [] for s in sides + ["dsc-urllist"]}
    cpu = {s: [] for s in sides}
    ceil = []
    matched = []
    for r, name in runs:
        os.sync()
        g = torch.Generator()
        g.manual_seed(1000 + r)
        if name == "boto3":
            loader = DataLoader(Timed(Boto3Objects(a.endpoint, a.bucket, keys)),
                                generator=g, **settings)
            e = Epoch(loader, env)
        else:
            cache = os.path.join(a.statedir, "cache-cold-%d-%s" % (r, name))
            client = dsc.Client(cache_dir=cache)
            if name == "dsc-urllist":
                ds = dsc.MapDataset(["s3://%s/%s" % (a.bucket, k) for k in keys], client=client)
            else:
                ds = dsc.MapDataset(prefix_url, client=client)
            loader = DataLoader(Timed(ds), generator=g, **settings)
            want = predicted_order(loader, n)
            queue = None
            if name != "dsc-noprefetch":
                urls = [ds.urls[i] for i in want]

                def queue(_it, urls=urls, client=client):
                    client.prefetch(urls)
            e = Epoch(loader, env, on_iter=queue)
            matched.append(e.order == want)
            st = client.stats()
            client.close()
            view = node_view(a.dsc_stat, cache)
            e.note = "  parent: %4d GETs %4d HEADs%s" % (
                st["s3_gets"], st["s3_heads"],
                "; node misses %d" % view["misses"] if view else "")
        assert e.n == n
        cold[name].append(e.rate)
        if e.s3rver_cpu and name != "dsc-urllist":
            ceil.append(n / e.s3rver_cpu)
            cpu[name].append((e.client_ms(), 1000 * e.s3rver_cpu / n))
        print(e.row("%s run %d" % (name, r + 1)))
        del loader
    print("   epoch order predicted right in %d of %d libdsc runs" % (sum(matched), len(matched)))
    if ceil:
        print("   CPU ms per sample, client (workers + parent) + s3rver, medians: %s"
              % "; ".join("%s %.2f + %.2f" % (s, median(c for c, _ in cpu[s]),
                                              median(v for _, v in cpu[s]))
                          for s in sides))
        print("   s3rver ceiling: %.0f samples/s (median over the GET-only cold runs: s3rver "
              "CPU %.2f ms per sample)" % (median(ceil), 1000 / median(ceil)))

    # ---- summary
    fmt = "   %-42s %-13s %-13s %5s %6s  %s"
    local_w, boto3_c = median(warm["local"]), median(cold["boto3"])

    def line(label, base, base_rate, rate, goal=None):
        ratio = rate / base_rate
        met = "" if goal is None else ("yes" if ratio >= goal else "NO")
        print(fmt % (label, "%s %6.0f" % (base, base_rate), "dsc %6.0f" % rate,
                     "%.2f" % ratio, ">=%g" % goal if goal else "-", met))

    print("\n== summary (samples/s; medians; ratio = libdsc / baseline of this run)")
    print(fmt % ("figure", "baseline", "libdsc", "ratio", "goal", "met"))
    line("1 warm epoch 2+, %d runs each" % a.warm_runs, "local", local_w,
         median(warm["dsc"]), 0.9)
    line("2 cold epoch 1, %d runs each" % a.runs, "boto3", boto3_c, median(cold["dsc"]), 5)
    if expired is not None:
        line("1b warm, metadata expired (1 epoch)", "local", local_w, expired)
    if cold["dsc-noprefetch"]:
        line("2b cold, no prefetch", "boto3", boto3_c, median(cold["dsc-noprefetch"]))
    if cold["dsc-urllist"]:
        line("2c cold, URL list, no listing (1 run)", "boto3", boto3_c,
             cold["dsc-urllist"][0])
    if ceil:
        print(fmt % ("   bound: s3rver ceiling, any client", "boto3 %6.0f" % boto3_c,
                     "max %6.0f" % median(ceil), "%.2f" % (median(ceil) / boto3_c), "-", ""))
    print("   per-round ratios: warm %s, cold %s; load %s at the end; %.0f s"
          % (spread(rounds_w), spread([d / b for d, b in zip(cold["dsc"], cold["boto3"])]),
             loadavg(), time.perf_counter() - t_start))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare")
    for name in ("endpoint", "bucket", "prefix", "localdir"):
        pp.add_argument(name)
    pp.add_argument("--count", type=int, default=2000)
    pp.add_argument("--min-kib", type=int, default=100)
    pp.add_argument("--max-kib", type=int, default=200)
    pr = sub.add_parser("run")
    for name in ("endpoint", "bucket", "prefix", "localdir", "statedir"):
        pr.add_argument(name)
    pr.add_argument("--runs", type=int, default=3, help="cold rounds")
    pr.add_argument("--warm-runs", type=int, default=7, help="warm rounds")
    pr.add_argument("--workers", type=int, default=4)
    pr.add_argument("--batch", type=int, default=32)
    pr.add_argument("--extra", type=int, default=1, help="1b and 2b rows (no goal)")
    pr.add_argument("--dsc-stat", help="path of dsc-stat, for node cache counters")
    pr.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's malloc thresholds alone in the workers")
    a = p.parse_args()
    if a.cmd == "prepare":
        if a.min_kib << 10 < HEAD_BYTES or a.max_kib < a.min_kib:
            p.error("need %d <= --min-kib <= --max-kib" % (HEAD_BYTES >> 10))
        prepare(a)
    else:
        run(a)


if __name__ == "__main__":
    main()
