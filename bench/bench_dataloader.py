#!/usr/bin/python3
"""PyTorch DataLoader over dsc.MapDataset, against local files and boto3.

Run with /usr/bin/python3 (Debian's torch, numpy and boto3 live there);
bench/run_dataloader.sh starts the origins and calls both subcommands.

  bench_dataloader.py prepare ENDPOINT BUCKET PREFIX LOCALDIR [--count N]
        [--min-kib K] [--max-kib K]
      N samples (default 2000) of random bytes, sizes uniform in
      [min, max] KiB (100..200), written to LOCALDIR/PREFIX... and
      uploaded with boto3 to s3://BUCKET/PREFIX... at ENDPOINT (s3rver).
  bench_dataloader.py run ENDPOINT BUCKET PREFIX LOCALDIR STATEDIR
        [--origin NAME,URL,PID,LOG[,nolist][,threads=N]]... [--cold SIDE...]
        [--runs R] [--warm-runs R] [--extra 0|1] [--cold-caches DIR]
        [--dsc-stat PATH] [--tuned-malloc]
      the figures below, medians of the runs of this process. ENDPOINT
      (s3rver) fills the warm figure's cache. Each --origin is one cold
      comparison: its endpoint URL, the PID whose CPU time (with its
      children's) is the server's, its request log (s3rver's log, or an
      nginx access log of "METHOD STATUS" lines), nolist when it cannot
      list a bucket (nginx: libdsc then gets the URL list, with no sizes
      and ETags recorded in advance), and threads=N for libdsc's
      prefetch_threads on the libdsc sides from this origin (default 8).

Every loader is torch.utils.data.DataLoader(batch_size=32, num_workers=4,
default (fork) start method) over the same shuffled order: sampler =
RandomSampler(seeded generator) (wrapped by dsc.PlannedSampler on the
libdsc sides; it yields the same indices). Every sample goes through the
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
2. cold: samples/s of epoch 1 from one origin, libdsc with an empty cache
   vs a Dataset doing boto3 get_object(...)["Body"].read() with one boto3
   client per worker, made in worker_init_fn and reused for every sample
   (what a user writes: boto3 clients must not cross a fork). A fresh
   DataLoader (fresh workers) per run on both sides, timed from iter() --
   worker fork, boto3 clients, libdsc's prefetch queueing all inside -- to
   the last batch; "steady" is the rate after the first batch (start-up
   left out). Rounds rotate which side goes first. The libdsc sides (a
   new cache directory under --cold-caches and a new Client per run):
     dsc            dsc.PlannedSampler(ds, sampler, batch_size=32,
                    num_workers=4): when the DataLoader starts the epoch
                    (in the parent, right after forking the workers) it
                    queues every object with Client.prefetch in the order
                    the workers will read them (dsc.reading_order); the
                    parent's 8 background fetchers (prefetch_threads) GET
                    ahead, and a worker reading an object in flight joins
                    that GET through the node cache.
     dsc-disk       dsc with its cache on STATEDIR's disk instead of
                    --cold-caches (run_dataloader.sh: /dev/shm). On this
                    VM's journal-less ext4, creating a file after many
                    were deleted costs ~1 ms of CPU (the allocator skips
                    recently deleted inodes one by one: perf shows
                    recently_deleted); a journaled file system has no such
                    cost.
     dsc-index      the same, queued in the sampler's order.
     dsc-plan       mode="plan": one dsc_plan of the epoch in the parent,
                    default plan_window (256 MiB, less than the epoch's
                    ~290 MiB). Its window moves only with the parent's own
                    reads, and the workers are other processes.
     dsc-plan-wide  mode="plan" with plan_window = 2 x the epoch's bytes.
     dsc-tN         dsc with prefetch_threads=N (the origin's threads=N
                    sets it for every libdsc side from that origin).
     dsc-noprefetch no PlannedSampler: each worker GETs its own samples.
     dsc-urllist    dsc over the URL list on an origin that lists (no
                    sizes and ETags recorded: a worker that gets to an
                    object before the prefetch does sends a HEAD first).
   On an origin marked nolist every libdsc side uses the URL list.
   With --extra 1 the cold sides after the first two run once per origin
   (last round); the first two (the goal) run every round.

With --extra 1 (the default), a warm row that is no goal is added:
1b. a warm epoch of libdsc that starts after the cached metadata has
   expired (the default TTL, 60 s, waited out), against the same
   persistent-worker loader's warm epoch before it: the dataset was made
   from a listing, so expired metadata is revalidated by listing that
   prefix again (one LIST per 1,000 objects), not a HEAD per object, and no
   cached byte is fetched again. Goal: >= 0.9x, 0 GETs.

Dirty pages are written back (os.sync) before each timed phase, so one
phase's writeback does not land in the next one's time. Before each epoch
this process runs gc.collect() and gc.freeze(): without it, late in a
run a boto3 worker's client set-up (many allocations) could start a full
collection that walks the whole inherited heap, faulting in copies of its
pages (boto3 epochs with 2.6 s to the first batch and 20 faults per read,
against 1.0 s and 5 earlier in the same run).

Workers run with glibc's malloc defaults, as users run them. With
--tuned-malloc every worker (all sides) starts with mallopt(M_MMAP_THRESHOLD,
4 MiB) and mallopt(M_TRIM_THRESHOLD, 256 MiB) instead, to take allocation
history out of a comparison of read paths: with glibc's
dynamic thresholds, whether a sample's fresh 100-200 KiB buffer is
page-faulted in (25-35 faults, 0.5-0.7 ms per sample on this VM) or reused
depends on the worker's allocation history, which differs between the
sides (libdsc's workers fetched epoch 1 themselves): with the defaults,
that rather than the read path decided the warm ratio (1.2-1.4 for
libdsc, local reads faulting ~24 times each, libdsc's ~10). The flt
column shows it.

Breakdown columns: first = seconds to the first batch; steady = samples/s
after it; cores = the machine's busy CPU seconds during the epoch / wall
seconds (2.00: both cores busy all along), others = the part of it that
was neither this process, its workers nor the origin (another job on the
machine: a cold run with others above --max-others, 0.25, is repeated up
to --retries times, and the summary says how many stayed disturbed);
srv = the origin's CPU seconds during the epoch / wall seconds
(s3rver is one thread: 1.00 is its core busy all along; nginx has 2
workers); wk, par = CPU ms per sample of the workers and of this process
(where libdsc's fetcher threads run, and where the batches arrive);
read = median / 90th percentile wall time of one sample's read in a
worker; flt = minor page faults per read in the worker; disk = MiB read
from block devices during the epoch, whole machine (page cache misses show
here); reqs = requests the origin logged, and how many were 206 (ranged
GETs: libdsc's GETs) and HEAD (nginx only; s3rver does not log methods,
its 200s are boto3's GETs and libdsc's HEADs).
Origin ceiling = samples / the origin's CPU seconds in a cold epoch: the
rate at which the origin, with a core to itself, is the limit whatever the
client. "local files, fresh workers" = figure 1's local epoch 1 (the same
DataLoader with freshly forked workers over files in the page cache): no
cold epoch on this machine can beat it, whatever the origin and the client.
"""
import argparse
import gc
import os
import shutil
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
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        data = self.inner[i]
        t1 = time.perf_counter()
        f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return self.item(i, data, t1 - t0, f1 - f0)

    def item(self, i, data, secs, faults):
        """The tuple of sample i once read (bench_mounts.py adds fields)."""
        import torch
        from torch.utils.data import get_worker_info
        view = torch.frombuffer(data, dtype=torch.uint8, count=HEAD_BYTES)
        info = get_worker_info()
        return (i, view, len(data), secs, faults, info.id if info else -1,
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
TUNED_MALLOC = False


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
    """Every loader's worker_init_fn: fixed malloc thresholds (with
    --tuned-malloc), and the boto3 dataset's per-worker client."""
    from torch.utils.data import get_worker_info
    if TUNED_MALLOC:
        tune_malloc()
    ds = get_worker_info().dataset.inner
    while not isinstance(ds, Boto3Objects) and hasattr(ds, "inner"):
        ds = ds.inner               # bench_mounts.py's wrappers
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


def tree_cpu(pid):
    """CPU seconds of a process and its children (nginx: master and
    workers); None when unknown."""
    total = proc_cpu(pid)
    if total is None:
        return None
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        kids = []
    for k in kids:
        total += proc_cpu(k) or 0.0
    return total


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


def rss_mib():
    """This process's resident memory, MiB (the workers fork from it)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def machine_cpu():
    """CPU seconds all cores of the machine have been busy (not idle, not
    waiting for I/O) so far, by every process."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Origin:
    """One S3-like server: name, endpoint, the PID whose CPU (with its
    children's) is the server's, its request log, whether it can list."""

    def __init__(self, spec):
        parts = spec.split(",")
        if len(parts) < 4:
            raise ValueError("--origin NAME,URL,PID,LOG[,nolist][,threads=N], not %r" % spec)
        self.name, self.endpoint = parts[0], parts[1]
        self.pid = int(parts[2]) if parts[2] else None
        self.log = parts[3] or None
        self.lists = True
        self.threads = None         # libdsc's prefetch_threads for this origin
        for opt in parts[4:]:
            if opt == "nolist":
                self.lists = False
            elif opt.startswith("threads=") and opt[8:].isdigit():
                self.threads = int(opt[8:])
            else:
                raise ValueError("--origin: unknown option %r in %r" % (opt, spec))
        self.pos = None
        self.requests()

    def cpu(self):
        return tree_cpu(self.pid)

    def requests(self):
        """Requests logged since the last call: (all, 206s, HEADs or None)."""
        if not self.log:
            return None
        if self.pos is None:
            self.pos = os.path.getsize(self.log) if os.path.exists(self.log) else 0
            return None
        time.sleep(1.1 if "access" in os.path.basename(self.log) else 0)  # nginx: flush=1s
        with open(self.log, "rb") as f:
            f.seek(self.pos)
            text = f.read()
        self.pos += len(text)
        lines = text.decode("utf-8", "replace").splitlines()
        if os.path.basename(self.log).startswith("access"):        # nginx: METHOD STATUS
            pairs = [ln.split() for ln in lines if len(ln.split()) == 2]
            return (len(pairs), sum(1 for _, st in pairs if st == "206"),
                    sum(1 for m, _ in pairs if m == "HEAD"))
        lines = [ln for ln in lines if " 200 " in ln or " 206 " in ln]
        return len(lines), sum(1 for ln in lines if " 206 " in ln), None


class Epoch:
    """Times one pass over a loader; on_iter(iterator) runs right after
    iter()."""

    def __init__(self, loader, origin=None, on_iter=None, worker_cpu=None, sizes=None,
                 check=None):
        # check(batch): called with each batch (bench_mounts.py checks the
        # fields it adds after Timed's seven).
        # Workers' CPU: each one's process time at its last sample, minus
        # where it was after the previous epoch (persistent workers; fresh
        # workers start from 0, so their start-up counts).
        self.worker_cpu = worker_cpu if worker_cpu is not None else {}
        start_cpu = dict(self.worker_cpu)
        # Workers fork from this process: its objects go to the permanent
        # generation, so that a worker's garbage collection does not walk
        # (and copy-on-write fault in) the whole inherited heap.
        gc.collect()
        gc.freeze()
        if origin:
            origin.requests()
        srv0 = origin.cpu() if origin else None
        disk0 = disk_read_mib()
        busy0 = machine_cpu()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        it = iter(loader)
        if on_iter:
            on_iter(it)
        first = None
        first_n = 0
        reads = []
        self.order = []
        faults = 0
        for batch in it:
            idx, _view, lens, secs, flt, wid, wcpu = batch[:7]
            if check is not None:
                check(batch)
            if first is None:
                first = time.perf_counter()
                first_n = len(idx)
            if sizes is not None:
                assert lens.tolist() == [sizes[i] for i in idx.tolist()], "wrong sample sizes"
            reads.extend(secs.tolist())
            faults += int(flt.sum())
            self.order.extend(idx.tolist())
            for w, c in zip(wid.tolist(), wcpu.tolist()):
                if c > self.worker_cpu.get(w, 0.0):
                    self.worker_cpu[w] = c
        t1 = time.perf_counter()
        busy = machine_cpu() - busy0
        del it
        self.n = len(self.order)
        self.faults = faults / self.n
        self.secs = t1 - t0
        self.first = first - t0
        self.rate = self.n / self.secs
        self.steady = (self.n - first_n) / (t1 - first) if t1 > first else float("nan")
        reads.sort()
        self.read_ms = [1000 * reads[int(q * (len(reads) - 1))] for q in (0.5, 0.9)]
        self.parent_cpu = time.process_time() - cpu0
        self.workers_cpu = sum(c - start_cpu.get(w, 0.0) for w, c in self.worker_cpu.items())
        disk1 = disk_read_mib()
        self.disk = disk1 - disk0 if disk0 is not None and disk1 is not None else None
        srv1 = origin.cpu() if origin else None
        self.srv_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
        # The machine's busy cores during the epoch, and how much of that
        # was neither this process, its workers nor the origin (others:
        # a disturbed run).
        self.busy = busy / self.secs
        self.others = max(0.0, busy - self.parent_cpu - self.workers_cpu -
                          (self.srv_cpu or 0.0)) / self.secs
        self.reqs = origin.requests() if origin else None
        self.rss = rss_mib()
        self.note = ""

    def row(self, label):
        srv = "%4.2f" % (self.srv_cpu / self.secs) if self.srv_cpu is not None else "   -"
        if self.reqs:
            reqs = "%5d (206: %4d%s)" % (self.reqs[0], self.reqs[1],
                                        "" if self.reqs[2] is None else ", HEAD: %4d" % self.reqs[2])
        else:
            reqs = "-"
        disk = "%4.0f" % self.disk if self.disk is not None else "   -"
        return ("   %-18s %5.2f s %5.0f/s  first %4.2f s  steady %5.0f/s  cores %4.2f "
                "(others %4.2f)  srv %s  wk %4.2f par %4.2f ms  read %5.2f/%5.2f ms %4.1f flt  "
                "disk %s MiB  rss %4.0f MiB  reqs %s%s"
                % (label, self.secs, self.rate, self.first, self.steady, self.busy, self.others, srv,
                   1000 * self.workers_cpu / self.n, 1000 * self.parent_cpu / self.n,
                   self.read_ms[0], self.read_ms[1], self.faults, disk, self.rss, reqs, self.note))

    def client_ms(self):
        """CPU ms per sample of the workers and this process."""
        return 1000 * (self.workers_cpu + self.parent_cpu) / self.n


def median(xs):
    return statistics.median(xs)


def spread(xs):
    return "%.2f..%.2f" % (min(xs), max(xs)) if xs else "-"


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
    """The checkout's commit, and whether lib/, include/ or bindings/
    differ from it: libdsc changes under the bench."""
    def git(*args):
        out = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "?"
    if git("status", "--porcelain", "--", "lib", "include", "bindings"):
        commit += " + local changes in lib/include/bindings"
    return commit


# ---------------------------------------------------------------- the figures

COLD_SIDES = ("boto3", "dsc", "dsc-disk", "dsc-index", "dsc-plan", "dsc-plan-wide",
              "dsc-noprefetch", "dsc-urllist", "dsc-tN")


def cold_side(name):
    """The settings of a libdsc cold side: (PlannedSampler mode or None,
    reading order?, prefetch_threads or None, plan_window or None, URL
    list?). None for boto3."""
    if name == "boto3":
        return None
    side = dict(mode="prefetch", reading=True, threads=None, plan_window=None, urllist=False,
                disk=False)
    if name == "dsc-disk":
        side["disk"] = True
    elif name == "dsc-index":
        side["reading"] = False
    elif name == "dsc-plan":
        side["mode"] = "plan"
    elif name == "dsc-plan-wide":
        side["mode"] = "plan"
        side["plan_window"] = "wide"
    elif name == "dsc-noprefetch":
        side["mode"] = None
    elif name == "dsc-urllist":
        side["urllist"] = True
    elif name.startswith("dsc-t") and name[5:].isdigit():
        side["threads"] = int(name[5:])
    elif name != "dsc":
        raise ValueError("unknown cold side %r (one of %s)" % (name, ", ".join(COLD_SIDES)))
    return side


class Bench:
    def __init__(self, a):
        sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
        import dsc
        import torch
        from torch.utils.data import DataLoader, RandomSampler
        self.dsc, self.torch, self.DataLoader, self.RandomSampler = dsc, torch, DataLoader, RandomSampler
        self.a = a
        self.prefix_url = "s3://%s/%s" % (a.bucket, a.prefix)
        self.keys = sorted(o["Key"] for page in s3_client(a.endpoint).get_paginator(
            "list_objects_v2").paginate(Bucket=a.bucket, Prefix=a.prefix)
            for o in page.get("Contents", []))
        self.urls = ["s3://%s/%s" % (a.bucket, k) for k in self.keys]
        self.paths = [os.path.join(a.localdir, k) for k in self.keys]
        self.n = len(self.keys)
        self.sizes = [os.path.getsize(p) for p in self.paths]
        self.settings = dict(batch_size=a.batch, num_workers=a.workers, timeout=300,
                             worker_init_fn=worker_init)
        self.local_epoch1 = None

    def loader(self, inner, sampler=None, **kw):
        return self.DataLoader(Timed(inner), sampler=sampler,
                               shuffle=None if sampler is not None else True,
                               **dict(self.settings, **kw))

    # ---- 1. warm: epochs 2+ over the node cache vs local files
    def warm(self, origin):
        a, dsc = self.a, self.dsc
        print("\n== 1. warm epochs: dsc.MapDataset over the node cache vs open().read() of a "
              "local copy\n   (persistent workers; epoch 1 fills the cache from %s / the page "
              "cache; %d rounds, alternating)" % (origin.name if origin else a.endpoint,
                                                  a.warm_runs))
        warm_dir = os.path.join(a.statedir, "cache-warm")
        client = dsc.Client(cache_dir=warm_dir, endpoint=a.endpoint)
        dsc_ds = dsc.MapDataset(self.prefix_url, client=client)
        assert dsc_ds.urls == self.urls
        loaders = {
            "dsc": self.loader(dsc_ds, persistent_workers=True),
            "local": self.loader(LocalFiles(self.paths), persistent_workers=True),
        }
        wcpu = {name: {} for name in loaders}
        for name in ("dsc", "local"):
            os.sync()
            e = Epoch(loaders[name], origin, worker_cpu=wcpu[name], sizes=self.sizes)
            assert e.n == self.n
            print(e.row("%s epoch 1" % name))
            if name == "local":
                # Fresh workers over local files in the page cache: what no
                # cold epoch can beat (the cold figure's ceiling on this
                # machine, whatever the origin).
                self.local_epoch1 = e.rate
        os.sync()
        warm = {"dsc": [], "local": []}
        for r in range(a.warm_runs):
            for name in (("dsc", "local") if r % 2 == 0 else ("local", "dsc")):
                e = Epoch(loaders[name], origin, worker_cpu=wcpu[name], sizes=self.sizes)
                assert e.n == self.n
                warm[name].append(e.rate)
                print(e.row("%s epoch %d" % (name, r + 2)))
        del loaders
        client.close()
        view = node_view(a.dsc_stat, warm_dir)
        if view:
            print("   node cache (dsc-stat): %d chunks, %d hits, %d misses (= GETs: epoch 1 only)"
                  % (view["chunks"], view["hits"], view["misses"]))
        expired = None
        if a.extra:
            print("\n== 1b. a warm epoch that starts after the metadata TTL (default, 60 s) "
                  "has expired, vs the same loader's warm epoch before it (goal >= 0.9x, "
                  "0 GETs)")
            # Two loaders over the warm cache: a dataset made from the prefix
            # (default consistency: revalidated after the TTL) and one made
            # from a snapshot (pinned: nothing to revalidate).
            client = dsc.Client(cache_dir=warm_dir, endpoint=a.endpoint)
            sides = {"prefix": dsc.MapDataset(self.prefix_url, client=client)}
            snap_client = dsc.Client(cache_dir=warm_dir, endpoint=a.endpoint)
            sides["snapshot"] = dsc.MapDataset(
                snapshot=dsc.Snapshot.list(snap_client, self.prefix_url), client=snap_client)
            loaders = {k: self.loader(v, persistent_workers=True) for k, v in sides.items()}
            before = {k: [] for k in loaders}
            after = {k: [] for k in loaders}
            ttl = 60.0
            node0 = node_view(a.dsc_stat, warm_dir)
            for rnd in range(a.ttl_rounds):
                # Epochs before the TTL (the first of a loader starts its
                # workers, not timed), then one after it has expired.
                start = time.monotonic()
                for k, loader in loaders.items():
                    for i in range(3 if rnd == 0 else 2):
                        e = Epoch(loader, origin, sizes=self.sizes)
                        if rnd or i:
                            before[k].append(e.rate)
                        print(e.row("%s before" % k))
                if time.monotonic() - start >= ttl:
                    print("   (the epochs before ended past the TTL)")
                time.sleep(max(0.0, start + ttl + 1 - time.monotonic()))
                for k, loader in loaders.items():
                    e = Epoch(loader, origin, sizes=self.sizes)
                    after[k].append(e.rate)
                    print(e.row("%s after TTL" % k))
            expired = {}
            for k in loaders:
                expired[k] = (median(before[k]), median(after[k]))
                print("   %s: after/before %.2fx (medians of %d and %d epochs)"
                      % (k, expired[k][1] / expired[k][0], len(before[k]), len(after[k])))
            node1 = node_view(a.dsc_stat, warm_dir)
            if node0 and node1:
                print("   node cache misses (= GETs) during the epochs after the TTL: %d"
                      % (node1["misses"] - node0["misses"]))
            del loaders
            client.close()
            snap_client.close()
        return warm, expired

    def cold_run(self, origin, r, name, wide):
        """One cold epoch of one side from one origin (round r)."""
        a, dsc = self.a, self.dsc
        os.sync()
        g = self.torch.Generator()
        g.manual_seed(1000 + r)
        side = cold_side(name)
        if side is None:
            ds = Boto3Objects(origin.endpoint, a.bucket, self.keys)
            sampler = self.RandomSampler(ds, generator=g)
            e = Epoch(self.loader(ds, sampler), origin, sizes=self.sizes)
        else:
            cache = os.path.join(a.statedir if side["disk"] else a.cold_caches,
                                 "cache-cold-%s-%d-%s" % (origin.name, r, name))
            config = dict(cache_dir=cache, endpoint=origin.endpoint)
            if side["threads"] or origin.threads:
                config["prefetch_threads"] = side["threads"] or origin.threads
            if side["plan_window"]:
                config["plan_window"] = wide
            client = dsc.Client(**config)
            if side["urllist"] or not origin.lists:
                ds = dsc.MapDataset(list(self.urls), client=client)
            else:
                ds = dsc.MapDataset(self.prefix_url, client=client)
                assert ds.urls == self.urls
            inner = self.RandomSampler(ds, generator=g)
            if side["mode"]:
                sampler = dsc.PlannedSampler(
                    ds, inner, mode=side["mode"],
                    batch_size=a.batch if side["reading"] else None,
                    num_workers=a.workers if side["reading"] else None)
            else:
                sampler = inner
            e = Epoch(self.loader(ds, sampler), origin, sizes=self.sizes)
            if side["mode"]:
                assert e.order == sampler.order, "batches out of the sampler's order"
            st = client.stats()
            position = sampler.plan.position if side["mode"] == "plan" else None
            if side["mode"] == "plan":
                sampler.plan.stop()
            client.close()
            view = node_view(a.dsc_stat, cache)
            shutil.rmtree(cache, ignore_errors=True)
            e.note = "  parent: %4d GETs %4d HEADs %d retries%s%s" % (
                st["s3_gets"], st["s3_heads"], st["s3_retries"],
                "; node misses %d" % view["misses"] if view else "",
                "; plan position %d" % position if position is not None else "")
        assert e.n == self.n
        return e

    # ---- 2. cold: epoch 1 from one origin, libdsc vs boto3
    def cold(self, origin):
        a = self.a
        goal = list(a.cold[:2])
        extra = list(a.cold[2:])
        runs = [(r, name) for r in range(a.runs)
                for name in goal[r % len(goal):] + goal[:r % len(goal)]]
        if extra:
            last = a.runs - 1 if a.extra else None
            runs += [(r, name) for r in range(a.runs) for name in extra
                     if last is None or r == last]
        print("\n== 2. cold epoch 1 from %s (%s%s): %s\n   (fresh workers, empty cache per "
              "run; %d rounds, rotating; libdsc's prefetch_threads %s)"
              % (origin.name, origin.endpoint, "" if origin.lists else ", cannot list",
                 " vs ".join(a.cold), a.runs,
                 "%d for this origin, unless dsc-tN" % origin.threads if origin.threads
                 else "8 (the default), unless dsc-tN"))
        res = {s: [] for s in a.cold}
        steady = {s: [] for s in a.cold}
        cpu = {s: [] for s in a.cold}
        ceil = []
        disturbed = 0
        wide = "%dM" % (2 * sum(self.sizes) // 1048576 + 1)
        for r, name in runs:
            for attempt in range(1 + a.retries):
                e = self.cold_run(origin, r, name, wide)
                if e.others <= a.max_others or attempt == a.retries:
                    break
                print(e.row("%s run %d" % (name, r + 1)) + "  DISTURBED: repeated")
            disturbed += e.others > a.max_others
            res[name].append(e.rate)
            steady[name].append(e.steady)
            cpu[name].append((1000 * e.workers_cpu / e.n, 1000 * e.parent_cpu / e.n,
                              1000 * e.srv_cpu / e.n if e.srv_cpu is not None else None))
            if e.srv_cpu and name in goal:
                ceil.append(self.n / e.srv_cpu)
            print(e.row("%s run %d" % (name, r + 1)))
        print("   CPU ms per sample, medians (workers + parent + %s): %s" % (
            origin.name, "; ".join(
                "%s %.2f + %.2f + %s" % (s, median(w for w, _, _ in cpu[s]),
                                         median(p for _, p, _ in cpu[s]),
                                         "%.2f" % median(v for _, _, v in cpu[s])
                                         if all(v is not None for _, _, v in cpu[s]) else "-")
                for s in a.cold if cpu[s])))
        if ceil:
            print("   %s ceiling: %.0f samples/s (samples / %s's CPU seconds, median over the "
                  "goal runs: %.2f ms per sample)" % (origin.name, median(ceil), origin.name,
                                                      1000 / median(ceil)))
        total = {s: median(w + p + (v or 0.0) for w, p, v in cpu[s]) for s in a.cold if cpu[s]}
        return dict(res=res, steady=steady, ceil=median(ceil) if ceil else None, cpu=total,
                    disturbed=disturbed, runs=len(runs))

    def run(self):
        a, dsc, torch = self.a, self.dsc, self.torch
        warnings.filterwarnings("ignore", message="The given buffer is not writable")
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        global TUNED_MALLOC
        TUNED_MALLOC = a.tuned_malloc and not a.default_malloc
        t_start = time.perf_counter()
        lib = dsc.library_path()
        print("bench_dataloader: %d samples, %.1f MiB; DataLoader(batch_size=%d, "
              "num_workers=%d), fork; workers' malloc: %s\n   torch %s; libdsc %s from %s "
              "(built %s; checkout %s); %d cores, load %s"
              % (self.n, sum(self.sizes) / 1048576, a.batch, a.workers,
                 "mmap 4 MiB / trim 256 MiB thresholds" if TUNED_MALLOC else "glibc defaults",
                 torch.__version__, dsc.version(), lib,
                 time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(lib))), checkout(),
                 os.cpu_count(), loadavg()))
        origins = [Origin(spec) for spec in a.origin]
        warm = expired = None
        if a.warm_runs > 0:
            warm, expired = self.warm(next((o for o in origins if o.endpoint == a.endpoint),
                                           None))
        cold = {o.name: self.cold(o) for o in origins}

        # ---- summary
        fmt = "   %-44s %-13s %-13s %5s %6s  %s"

        def line(label, base, base_rate, rate, goal=None):
            ratio = rate / base_rate
            met = "" if goal is None else ("yes" if ratio >= goal else "NO")
            print(fmt % (label, "%s %6.0f" % (base, base_rate), "dsc %6.0f" % rate,
                         "%.2f" % ratio, ">=%g" % goal if goal else "-", met))

        print("\n== summary (samples/s; medians; ratio = libdsc / baseline of this run)")
        print(fmt % ("figure", "baseline", "libdsc", "ratio", "goal", "met"))
        if warm:
            local_w = median(warm["local"])
            line("1 warm epoch 2+, %d runs each" % a.warm_runs, "local", local_w,
                 median(warm["dsc"]), 0.9)
            if expired is not None:
                for k, (b, e) in expired.items():
                    line("1b warm epoch after the TTL, %s" % k, "before", b, e, 0.9)
        base, side = a.cold[0], a.cold[1] if len(a.cold) > 1 else None
        for o in origins:
            c = cold[o.name]
            res, steady, ceil = c["res"], c["steady"], c["ceil"]
            if not res[base] or side is None:
                continue
            b = median(res[base])
            line("2 cold epoch 1 from %s, %d runs each" % (o.name, a.runs), base, b,
                 median(res[side]), 5 if base == "boto3" else None)
            line("  after the first batch (steady)", base, median(steady[base]),
                 median(steady[side]))
            for s in a.cold[2:]:
                if res[s]:
                    line("  %s (%d run%s)" % (s, len(res[s]), "" if len(res[s]) == 1 else "s"),
                         base, b, median(res[s]))
            if ceil:
                print(fmt % ("  bound: %s ceiling, any client" % o.name, "%s %6.0f" % (base, b),
                             "max %6.0f" % ceil, "%.2f" % (ceil / b), "-", ""))
            if self.local_epoch1:
                print(fmt % ("  bound: local files, fresh workers (1 epoch)", "%s %6.0f" % (base, b),
                             "max %6.0f" % self.local_epoch1, "%.2f" % (self.local_epoch1 / b),
                             "-", ""))
            if base in c["cpu"] and side in c["cpu"]:
                # With every core busy (cores ~2.00), the ratio is that of
                # the CPU each sample costs, client and origin together.
                print("   %s: CPU per sample, workers + parent + origin: %s %.2f ms, %s %.2f ms "
                      "(%.2fx)" % (o.name, base, c["cpu"][base], side, c["cpu"][side],
                                   c["cpu"][base] / c["cpu"][side]))
            print("   per-round ratios from %s: %s; %d of %d runs disturbed (others > %.2f "
                  "cores) after repeats" % (
                      o.name, spread([d / x for d, x in zip(res[side], res[base])]),
                      c["disturbed"], c["runs"], a.max_others))
        if warm:
            print("   per-round warm ratios: %s" % spread(
                [d / x for d, x in zip(warm["dsc"], warm["local"])]))
        print("   load %s at the end; %.0f s" % (loadavg(), time.perf_counter() - t_start))


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
    pr.add_argument("--origin", action="append", default=[],
                    help="NAME,URL,PID,LOG[,nolist][,threads=N]: one cold comparison per "
                         "origin")
    pr.add_argument("--cold", nargs="+", default=["boto3", "dsc"],
                    help="cold sides; the first two are the goal's baseline and libdsc "
                         "(run every round), the rest run once per origin with --extra 1 "
                         "(every round with --extra 0); from %s" % ", ".join(COLD_SIDES))
    pr.add_argument("--cold-caches", help="where the cold runs' caches go (default STATEDIR)")
    pr.add_argument("--runs", type=int, default=3, help="cold rounds per origin")
    pr.add_argument("--max-others", type=float, default=0.25,
                    help="a cold run during which other processes kept more than this many "
                         "cores busy is repeated")
    pr.add_argument("--retries", type=int, default=2, help="repeats of a disturbed cold run")
    pr.add_argument("--warm-runs", type=int, default=7, help="warm rounds (0: no warm figure)")
    pr.add_argument("--workers", type=int, default=4)
    pr.add_argument("--batch", type=int, default=32)
    pr.add_argument("--extra", type=int, default=1, help="the 1b row; extra cold sides once")
    pr.add_argument("--ttl-rounds", type=int, default=int(os.environ.get("BENCH_DL_TTL_ROUNDS", "3")),
                    help="1b: epochs after the TTL (each waits it out, 61 s)")
    pr.add_argument("--dsc-stat", help="path of dsc-stat, for node cache counters")
    pr.add_argument("--default-malloc", action="store_true",
                    help="glibc's malloc thresholds in the workers (the default)")
    pr.add_argument("--tuned-malloc", action="store_true",
                    help="fixed mmap and trim thresholds in every worker")
    a = p.parse_args()
    if a.cmd == "prepare":
        if a.min_kib << 10 < HEAD_BYTES or a.max_kib < a.min_kib:
            p.error("need %d <= --min-kib <= --max-kib" % (HEAD_BYTES >> 10))
        prepare(a)
    else:
        for name in a.cold:
            try:
                cold_side(name)
            except ValueError as e:
                p.error(str(e))
        a.cold_caches = a.cold_caches or a.statedir
        Bench(a).run()


if __name__ == "__main__":
    main()
