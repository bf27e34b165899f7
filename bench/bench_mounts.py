#!/usr/bin/python3
"""The same PyTorch DataLoader over local files, libdsc, rclone mount,
s3fs-fuse and boto3, from s3rver behind a latency proxy (issue 17).

Run with /usr/bin/python3 (Debian's torch and boto3); bench/run_mounts.sh
starts s3rver and the proxy, lays out the data and calls:

  bench_mounts.py shards ENDPOINT BUCKET PREFIX LOCALDIR SHARDPREFIX [--shards 8]
      pack the samples bench_dataloader.py prepare wrote under
      LOCALDIR/PREFIX into SHARDS tar files (WebDataset naming,
      "sample-00000.bin"), written to LOCALDIR/SHARDPREFIX and uploaded
      to s3://BUCKET/SHARDPREFIX.
  bench_mounts.py run PROXY BUCKET PREFIX SHARDPREFIX LOCALDIR STATEDIR
        --s3rver-pid PID --s3rver-log LOG [--rounds 3] [--tar-rounds 3]
        [--fuse-rounds 2] [--warm-epochs 3] [--ab-epochs 4]
        [--sides local dsc rclone s3fs boto3]
        [--ceiling-threads 64]
      PROXY is the latency proxy's URL (tests/integration/faultproxy.py in
      front of s3rver): every side and the ceiling go through it.

Workload 1 (map-style), as a user runs it: DataLoader(batch_size=32,
num_workers=4, persistent_workers=True, fork), every worker with glibc's
default malloc settings; one seeded RandomSampler order per round, the same
for every side:
  local   open(path).read() of the local copy (bench_dataloader.LocalFiles;
          page cache warm: its epoch 1 is no cold read)
  dsc     dsc.MapDataset("s3://BUCKET/PREFIX") + dsc.PlannedSampler(ds,
          RandomSampler, batch_size=32, num_workers=4) -- README's
          recommendation -- with a Client of DEFAULT settings (only
          cache_dir, a fresh one per round in STATEDIR, and the endpoint);
          the DataLoader calls MapDataset.__getitems__ (read_batch)
  rclone  open(path).read() under `rclone mount --vfs-cache-mode full`
          (fresh mount and cache dir per round, STATEDIR)
  s3fs    open(path).read() under `s3fs -o use_cache=DIR` (same)
  boto3   bench_dataloader.Boto3Objects (one client per worker); it has no
          cache, so only its epoch 1 is run
Cold = epoch 1 of a fresh loader (fresh workers, empty caches); warm =
epoch 2 of that loader (same workers, same mount or cache); for local and
dsc, the median of its epochs 2.. (--warm-epochs, 3): one half-second epoch
swings by +-20 % on a 2-core VM. Sides rotate
their order each round; the FUSE sides, whose epochs are the slow ones, take
part in the first --fuse-rounds rounds only. The figures are medians over
rounds, ratios the medians of the per-round ratios (rounds that have both).
The dsc side then runs a second loader over the same warm cache with a plain
RandomSampler (no PlannedSampler); --ab-epochs more warm epochs of each,
interleaved ABBA, give the planned/unplanned row (medians).

Workload 2 (tar shards): the same samples packed into --shards tar files,
IterableDataset, each worker reads shards[w::4] in order: local tar files
with tarfile (stream mode), dsc.TarShards (default Client, fresh cache), and
tarfile over the mount paths. Same loader settings, cold and warm.

Every sample is checked: its length and CRC-32 against the local copy's.
Requests = requests the proxy relayed during the epoch (HEAD, GET, LIST, ...
everything the side sent to the origin). Worker RSS = each worker's peak
resident set (getrusage ru_maxrss, over its life up to the end of the side's
last epoch), summed over the 4 workers ("RSS"; the goal's figure) and the
largest ("max", per round only). Forked workers start with the parent's
pages, so also: "grown", the sum of (peak - resident at the worker's first
sample), and "anon" / "file", the sums of the largest anonymous and
file-backed + shared-memory resident sizes seen at a sample (/proc/self/
status: mapped files such as cache data count in "file", and so do the
shared-memory batches torch sends to the parent).
Origin ceiling = objects/s of --ceiling-threads concurrent plain GETs (a
thread pool of keep-alive http.client connections) of every sample through
the same proxy, once per round among the sides.
"""
import argparse
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import warnings
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_dataloader as bd  # noqa: E402  (Timed, LocalFiles, Boto3Objects, Epoch, ...)

MAP_SIDES = ("local", "dsc", "rclone", "s3fs", "boto3")
FUSE_SIDES = ("rclone", "s3fs")


# ---------------------------------------------------------------- shards

def shards(a):
    names = sorted(n for n in os.listdir(os.path.join(a.localdir, a.prefix))
                   if n.endswith(".bin"))
    out = os.path.join(a.localdir, a.shardprefix)
    os.makedirs(out, exist_ok=True)
    per = -(-len(names) // a.shards)
    s3 = bd.s3_client(a.endpoint)
    total = 0
    for s in range(a.shards):
        path = os.path.join(out, "shard-%05d.tar" % s)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for n in names[s * per:(s + 1) * per]:
                tar.add(os.path.join(a.localdir, a.prefix, n), arcname=n)
        total += os.path.getsize(path)
        with open(path, "rb") as f:
            s3.put_object(Bucket=a.bucket, Key=a.shardprefix + os.path.basename(path), Body=f)
    print("bench_mounts: %d samples packed into %d tar shards, %.1f MiB, in %s and "
          "s3://%s/%s" % (len(names), a.shards, total / 1048576, out, a.bucket, a.shardprefix))


# ---------------------------------------------------------------- datasets

_BASE = {}          # pid -> resident KiB at the process's first sample
_RSS = {}           # pid -> [samples until the next look, the last look]
RSS_EVERY = 32      # a look at /proc every this many samples (a batch)


def _rss_fields():
    """(peak resident KiB of this process, resident KiB at its first
    sample, anonymous resident KiB now, file-backed + shared-memory resident
    KiB now: mapped files such as a cache's data, and torch's batches).

    Looked up once every RSS_EVERY samples of a process: parsing
    /proc/self/status for every sample cost the workers more than a warm
    read itself (the issue's user had local files at 10,854/s warm; this
    harness reached ~4,200/s), which hid what the sides differ in. The peak
    is the kernel's high-water mark, so a look sees every peak before it
    (only the last <32 samples of a worker may come after its last look);
    anon and file are the largest seen at those looks."""
    pid = os.getpid()
    state = _RSS.get(pid)
    if state is not None and state[0] > 0:
        state[0] -= 1
        return state[1]
    kib = {}
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith(("VmRSS:", "RssAnon:", "RssFile:", "RssShmem:")):
                k, v = ln.split(":", 1)
                kib[k] = int(v.split()[0])
    base = _BASE.setdefault(pid, kib["VmRSS"])
    fields = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, base, kib["RssAnon"],
              kib["RssFile"] + kib["RssShmem"])
    _RSS[pid] = [RSS_EVERY - 1, fields]
    return fields


class Checked(bd.Timed):
    """bench_dataloader.Timed's tuple plus (CRC-32 of the bytes, and the
    worker's memory: _rss_fields()). A dataset with
    __getitems__ (dsc.MapDataset: read_batch) is read a batch at a time, as
    DataLoader does without the wrapper; each sample's read time is then
    the batch's / its length."""

    def item(self, i, data, secs, faults):
        return bd.Timed.item(self, i, data, secs, faults) + (zlib.crc32(data),) + _rss_fields()

    def __getitems__(self, indices):
        if not hasattr(self.inner, "__getitems__"):
            return [self[i] for i in indices]
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        datas = self.inner.__getitems__(indices)
        secs = (time.perf_counter() - t0) / len(indices)
        flt = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / len(indices)
        return [self.item(i, d, secs, flt) for i, d in zip(indices, datas)]


def sample_index(name):
    """sample-00042.bin (a member name or a key) -> 42."""
    return int(os.path.basename(name).split("-")[1].split(".")[0])


class TarFiles:
    """Samples of tar files read with tarfile (stream mode), worker w of N
    taking paths[w::N]: yields (index, bytes)."""

    def __init__(self, paths, n):
        self.paths, self.n = paths, n

    def __len__(self):
        return self.n

    def shards(self):
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        return self.paths if info is None else self.paths[info.id::info.num_workers]

    def __iter__(self):
        for path in self.shards():
            with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
                for m in tar:
                    if m.isfile():
                        yield sample_index(m.name), tar.extractfile(m).read()


class DscTars:
    """dsc.TarShards (it splits the shards among workers itself)."""

    def __init__(self, tar_shards, n):
        self.inner, self.n = tar_shards, n

    def __len__(self):
        return self.n

    def __iter__(self):
        for sample in self.inner:
            yield sample_index(sample["__key__"]), sample["bin"]


def checked_iterable(source):
    """An IterableDataset yielding Checked tuples of source's samples (the
    read time of a sample: from the previous one to it)."""
    from torch.utils.data import IterableDataset

    class CheckedIterable(Checked, IterableDataset):
        def __iter__(self):
            it = iter(self.inner)
            while True:
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                try:
                    i, data = next(it)
                except StopIteration:
                    return
                t1 = time.perf_counter()
                yield self.item(i, data, t1 - t0,
                                resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)

    return CheckedIterable(source)


# ---------------------------------------------------------------- the origin

class ProxiedOrigin(bd.Origin):
    """s3rver behind the latency proxy: CPU and log of s3rver (206s:
    ranged GETs), requests counted by the proxy (everything sent)."""

    def __init__(self, proxy, pid, log):
        self.proxy = proxy
        super().__init__("s3rver+proxy,%s,%d,%s" % (proxy, pid, log))

    def control(self, method, what):
        u = urllib.parse.urlsplit(self.proxy)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            c.request(method, "/__faultproxy/" + what)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError("proxy %s %s: %d %s" % (method, what, r.status, body[:200]))
            return json.loads(body) if body else None
        finally:
            c.close()

    def requests(self):
        logged = bd.Origin.requests(self)
        counts = self.control("GET", "counts")
        self.control("POST", "reset")
        if logged is None:
            return None
        return counts["requests"], logged[1], None


# ---------------------------------------------------------------- mounts

class MountError(Exception):
    pass


class Mount:
    """One FUSE mount of BUCKET through the proxy, its own cache dir, run in
    the foreground as a child (PID in STATEDIR/mounts/TAG.pid for
    run_mounts.sh's cleanup); stop() unmounts (fusermount3 -u) and kills it
    by PID."""

    def __init__(self, kind, statedir, proxy, bucket, tag):
        self.kind, self.bucket = kind, bucket
        base = os.path.join(statedir, "mounts")
        self.dir = os.path.join(base, tag)
        self.mnt = os.path.join(self.dir, "mnt")
        self.cache = os.path.join(self.dir, "cache")
        self.log = os.path.join(self.dir, "log")
        self.pidfile = os.path.join(base, tag + ".pid")
        for d in (self.mnt, self.cache):
            os.makedirs(d, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}    # AWS_CA_BUNDLE breaks rclone's http
        if kind == "rclone":
            conf = os.path.join(base, "rclone.conf")
            with open(conf, "w") as f:
                f.write("[dscbench]\ntype = s3\nprovider = Other\nendpoint = %s\n"
                        "force_path_style = true\nregion = us-east-1\n"
                        "access_key_id = S3RVER\nsecret_access_key = S3RVER\n" % proxy)
            os.chmod(conf, 0o600)
            cmd = ["rclone", "mount", "dscbench:" + bucket, self.mnt, "--config", conf,
                   "--vfs-cache-mode", "full", "--cache-dir", self.cache,
                   "--log-file", self.log, "--log-level", "NOTICE"]
        elif kind == "s3fs":
            pw = os.path.join(base, "s3fs.passwd")
            fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, b"S3RVER:S3RVER\n")
            os.close(fd)
            os.chmod(pw, 0o600)
            cmd = ["s3fs", bucket, self.mnt, "-f", "-o",
                   "url=%s,use_path_request_style,passwd_file=%s,use_cache=%s"
                   % (proxy, pw, self.cache)]
        else:
            raise ValueError(kind)
        self.cmd = cmd
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        with open(self.pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = self.tail()
                self.stop()
                raise MountError("%s did not mount (%s): %s" % (
                    kind, "exit %s" % self.proc.returncode if self.proc.returncode is not None
                    else "timeout", why))
            time.sleep(0.05)

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-3:]) or "no output"
        except OSError:
            return "no log"

    def path(self, key):
        return os.path.join(self.mnt, key)

    def stop(self):
        for _ in range(20):
            if not os.path.ismount(self.mnt):
                break
            if subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True).returncode:
                time.sleep(0.25)
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def fuse_ready(kind, statedir, proxy, bucket):
    """None when a `kind` mount works here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for tool in ("fusermount3", kind):
        if not shutil.which(tool):
            return "%s not installed (scripts/setup.sh installs rclone, s3fs, fuse3)" % tool
    try:
        m = Mount(kind, statedir, proxy, bucket, "probe-" + kind)
    except (MountError, OSError) as e:
        return str(e)
    m.stop()
    return None


# ---------------------------------------------------------------- ceiling

def ceiling(proxy, bucket, keys, sizes, threads):
    """Objects/s of `threads` keep-alive connections GETting every key
    through the proxy (each object once, lengths checked)."""
    u = urllib.parse.urlsplit(proxy)
    nxt = iter(range(len(keys)))
    lock = threading.Lock()
    errors = []

    def work():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                break
            try:
                c.request("GET", "/%s/%s" % (bucket, keys[i]))
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or len(body) != sizes[i]:
                    errors.append("%s: %d, %d bytes" % (keys[i], r.status, len(body)))
            except (OSError, http.client.HTTPException) as e:
                errors.append("%s: %r" % (keys[i], e))
                c.close()
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.close()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - t0
    if errors:
        raise RuntimeError("ceiling: %d failed GETs, e.g. %s" % (len(errors), errors[0]))
    return len(keys) / secs


# ---------------------------------------------------------------- the bench

def shutdown(loader):
    """Stop a persistent-workers loader's workers now (before an unmount)."""
    it = getattr(loader, "_iterator", None)
    if it is not None and hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()
    loader._iterator = None


class Run:
    def __init__(self, a):
        sys.path.insert(0, os.path.join(bd.ROOT, "bindings", "python"))
        import dsc
        import torch
        from torch.utils.data import DataLoader, RandomSampler
        self.dsc, self.torch = dsc, torch
        self.DataLoader, self.RandomSampler = DataLoader, RandomSampler
        self.a = a
        self.origin = ProxiedOrigin(a.proxy, a.s3rver_pid, a.s3rver_log)
        base = os.path.join(a.localdir, a.prefix)
        self.keys = sorted(a.prefix + n for n in os.listdir(base) if n.endswith(".bin"))
        self.n = len(self.keys)
        self.paths = [os.path.join(a.localdir, k) for k in self.keys]
        self.sizes, self.crcs = [], []
        for p in self.paths:
            with open(p, "rb") as f:
                data = f.read()
            self.sizes.append(len(data))
            self.crcs.append(zlib.crc32(data))
        assert [sample_index(k) for k in self.keys] == list(range(self.n))
        tdir = os.path.join(a.localdir, a.shardprefix)
        self.shard_keys = sorted(a.shardprefix + n for n in os.listdir(tdir) if n.endswith(".tar"))
        self.shard_bytes = sum(os.path.getsize(os.path.join(a.localdir, k))
                               for k in self.shard_keys)
        self.settings = dict(batch_size=a.batch, num_workers=a.workers, timeout=600,
                             worker_init_fn=bd.worker_init, persistent_workers=True)
        self.rows = {}          # (workload, side) -> {metric: [per round]}
        self.skipped = {}       # side -> reason

    # -- helpers
    def record(self, workload, side, r, **kw):
        row = self.rows.setdefault((workload, side), {})
        for k, v in kw.items():
            if v is not None:
                row.setdefault(k, {})[r] = v

    def check(self, batch):
        idx, crc = batch[0].tolist(), batch[7].tolist()
        for i, c in zip(idx, crc):
            if self.crcs[i] != c:
                raise AssertionError("sample %d: wrong bytes (CRC-32 %08x, want %08x)"
                                     % (i, c, self.crcs[i]))
        if not self.rss_on:
            return
        for w, peak, base, anon, fil in zip(*(batch[k].tolist() for k in (5, 8, 9, 10, 11))):
            self.peaks[w] = max(self.peaks.get(w, 0), peak)
            self.bases.setdefault(w, base)
            self.anon[w] = max(self.anon.get(w, 0), anon)
            self.file[w] = max(self.file.get(w, 0), fil)

    def epoch(self, loader, label, rss=True):
        os.sync()
        self.rss_on = rss
        e = bd.Epoch(loader, self.origin, sizes=self.sizes, check=self.check)
        if e.n != self.n:
            raise AssertionError("%s: %d samples, want %d" % (label, e.n, self.n))
        if sorted(e.order) != list(range(self.n)):
            raise AssertionError("%s: not every sample once" % label)
        print(e.row(label), flush=True)
        return e

    def rss(self):
        """The workers' memory, MiB: sum of their peak RSS, the largest,
        the sum of (peak - RSS at the first sample), and the sums of the
        largest anonymous and file/shmem parts seen at a sample."""
        ws = sorted(self.peaks)
        return dict(rss=sum(self.peaks[w] for w in ws) / 1024,
                    rss_max=max(self.peaks[w] for w in ws) / 1024,
                    rss_grown=sum(self.peaks[w] - self.bases[w] for w in ws) / 1024,
                    rss_anon=sum(self.anon[w] for w in ws) / 1024,
                    rss_file=sum(self.file[w] for w in ws) / 1024)

    def reset_rss(self):
        self.peaks, self.bases, self.anon, self.file = {}, {}, {}, {}

    def loader(self, ds, sampler=None):
        return self.DataLoader(ds, sampler=sampler, **self.settings)

    def client(self, tag):
        cache = os.path.join(self.a.statedir, "caches", tag)
        shutil.rmtree(cache, ignore_errors=True)
        # Default settings: the cache directory and the endpoint only.
        return self.dsc.Client(cache_dir=cache, endpoint=self.a.proxy), cache

    def source(self, stack, side, r, what):
        """(dsc.Client or None, Mount or None) of a side's round, released
        (client closed and its cache removed, mount stopped) by stack."""
        client = mount = None
        if side == "dsc":
            client, cache = self.client("%s-%d" % (what, r))
            stack.callback(shutil.rmtree, cache, ignore_errors=True)
            stack.callback(client.close)
        elif side in FUSE_SIDES:
            mount = Mount(side, self.a.statedir, self.a.proxy, self.a.bucket,
                          "%s-%s-%d" % (what, side, r))
            stack.callback(mount.stop)
        return client, mount

    def finish(self, workload, side, r, label, loader, cold, warm, **extra):
        """Stop the loader's workers; print and record the round's figures
        (warm: epoch 2, the first after the cold one)."""
        shutdown(loader)
        rss = self.rss()
        print("   %s: workers' peak RSS sum %.0f MiB, max %.0f MiB, grown %.0f MiB; anon %.0f "
              "MiB, file+shmem %.0f MiB; parent %.0f MiB" % (
                  label, rss["rss"], rss["rss_max"], rss["rss_grown"], rss["rss_anon"],
                  rss["rss_file"], bd.rss_mib()), flush=True)
        self.record(workload, side, r, cold=cold.rate,
                    cold_reqs=cold.reqs[0] if cold.reqs else None,
                    warm=warm.rate if warm else None,
                    warm_reqs=warm.reqs[0] if warm and warm.reqs else None,
                    **dict(rss, **extra))

    def warm_epochs(self, side, loader, label):
        """Epochs 2.. of a loader: --warm-epochs of them for local and dsc
        (their warm epochs take half a second, and one of them swings by
        +-20 % on this VM), one for the FUSE sides (minutes for s3fs). The
        epoch of the median rate stands for the round."""
        n = self.a.warm_epochs if side in ("local", "dsc") else 1
        runs = [self.epoch(loader, "%s epoch %d" % (label, 2 + k)) for k in range(n)]
        return sorted(runs, key=lambda e: e.rate)[(len(runs) - 1) // 2]

    # -- workload 1: map-style
    def map_side(self, side, r):
        a = self.a
        g = self.torch.Generator()
        g.manual_seed(1000 + r)
        self.reset_rss()
        label = "%s r%d" % (side, r + 1)
        with contextlib.ExitStack() as stack:
            client, mount = self.source(stack, side, r, "map")
            if side == "local":
                ds = bd.LocalFiles(self.paths)
            elif side == "boto3":
                ds = bd.Boto3Objects(a.proxy, a.bucket, self.keys)
            elif side == "dsc":
                ds = self.dsc.MapDataset("s3://%s/%s" % (a.bucket, a.prefix), client=client)
                assert ds.urls == ["s3://%s/%s" % (a.bucket, k) for k in self.keys]
            else:
                ds = bd.LocalFiles([mount.path(k) for k in self.keys])
            ds = Checked(ds)
            inner = self.RandomSampler(ds, generator=g)
            sampler = inner
            if side == "dsc":
                sampler = self.dsc.PlannedSampler(ds.inner, inner, batch_size=a.batch,
                                                  num_workers=a.workers)
            loader = self.loader(ds, sampler)
            cold = self.epoch(loader, label + " epoch 1")
            if side == "boto3":             # no cache: every epoch is epoch 1
                self.finish("map", side, r, label, loader, cold, None)
                return
            warm = self.warm_epochs(side, loader, label)
            if side != "dsc":
                self.finish("map", side, r, label, loader, cold, warm)
                return
            # The same warm cache without PlannedSampler: its own loader
            # (workers started by an untimed epoch), its epochs interleaved
            # ABBA with more of the planned loader's.
            g2 = self.torch.Generator()
            g2.manual_seed(2000 + r)
            plain = self.loader(ds, self.RandomSampler(ds, generator=g2))
            self.epoch(plain, label + " unplanned, workers start", rss=False)
            planned, unplanned = [], []
            for k in range(a.ab_epochs):
                pair = ((loader, planned, "planned"), (plain, unplanned, "unplanned"))
                for ld, out, what in (pair if k % 2 else pair[::-1]):
                    out.append(self.epoch(ld, "%s %s warm %d" % (label, what, k + 1),
                                          rss=ld is loader).rate)
            shutdown(plain)
            self.finish("map", side, r, label, loader, cold, warm,
                        planned=bd.median(planned), unplanned=bd.median(unplanned))

    # -- workload 2: tar shards
    def tar_side(self, side, r):
        a = self.a
        self.reset_rss()
        label = "tar %s r%d" % (side, r + 1)
        with contextlib.ExitStack() as stack:
            client, mount = self.source(stack, side, r, "tar")
            if side == "local":
                src = TarFiles([os.path.join(a.localdir, k) for k in self.shard_keys], self.n)
            elif side == "dsc":
                src = DscTars(self.dsc.TarShards(
                    ["s3://%s/%s" % (a.bucket, k) for k in self.shard_keys], client=client),
                    self.n)
            else:
                src = TarFiles([mount.path(k) for k in self.shard_keys], self.n)
            loader = self.loader(checked_iterable(src))
            cold = self.epoch(loader, label + " epoch 1")
            warm = self.warm_epochs(side, loader, label)
            self.finish("tar", side, r, label, loader, cold, warm)

    def ceiling_round(self, r):
        cpu0, t0 = self.origin.cpu(), time.perf_counter()
        rate = ceiling(self.a.proxy, self.a.bucket, self.keys, self.sizes,
                       self.a.ceiling_threads)
        secs = time.perf_counter() - t0
        cpu1 = self.origin.cpu()
        self.origin.requests()
        self.record("map", "ceiling", r, rate=rate)
        print("   ceiling r%d: %d concurrent GETs, %.0f objects/s; s3rver busy %s of the time"
              % (r + 1, self.a.ceiling_threads, rate,
                 "%.0f %%" % (100 * (cpu1 - cpu0) / secs) if cpu0 is not None and cpu1 is not None
                 else "?"), flush=True)

    # -- all of it
    def run(self):
        a = self.a
        warnings.filterwarnings("ignore", message="The given buffer is not writable")
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        bd.TUNED_MALLOC = False             # glibc's defaults in the workers, as users run
        t_start = time.perf_counter()
        lib = self.dsc.library_path()
        print("bench_mounts: %d samples, %.1f MiB; %d tar shards, %.1f MiB; DataLoader("
              "batch_size=%d, num_workers=%d, persistent_workers), fork, glibc malloc "
              "defaults\n   origin: s3rver behind %s (latency proxy); torch %s; libdsc %s "
              "(checkout %s), default settings; %d cores, load %s"
              % (self.n, sum(self.sizes) / 1048576, len(self.shard_keys),
                 self.shard_bytes / 1048576, a.batch, a.workers, a.proxy,
                 self.torch.__version__, self.dsc.version(), bd.checkout(),
                 os.cpu_count(), bd.loadavg()), flush=True)
        self.origin.requests()
        sides = [s for s in a.sides if s in MAP_SIDES]
        for s in sides:
            if s in FUSE_SIDES:
                why = fuse_ready(s, a.statedir, a.proxy, a.bucket)
                if why:
                    self.skipped[s] = why
                    print("   %s: SKIPPED: %s" % (s, why))
        sides = [s for s in sides if s not in self.skipped]
        tar_sides = [s for s in sides if s != "boto3"]
        for r in range(a.rounds):
            # FUSE sides take part in the first --fuse-rounds rounds only
            # (their epochs are the slow ones).
            order = [s for s in sides if s not in FUSE_SIDES or r < a.fuse_rounds] + ["ceiling"]
            k = r % len(order)
            order = order[k:] + order[:k]
            print("\n== map round %d of %d: %s (load %s)" % (r + 1, a.rounds, ", ".join(order),
                                                           bd.loadavg()), flush=True)
            for s in order:
                if s == "ceiling":
                    self.ceiling_round(r)
                else:
                    self.map_side(s, r)
        for r in range(a.tar_rounds):
            order = [s for s in tar_sides if s not in FUSE_SIDES or r < a.fuse_rounds]
            k = r % len(order)
            order = order[k:] + order[:k]
            print("\n== tar round %d of %d: %s (load %s)" % (r + 1, a.tar_rounds,
                                                           ", ".join(order), bd.loadavg()),
                  flush=True)
            for s in order:
                self.tar_side(s, r)
        self.summary(time.perf_counter() - t_start)

    def summary(self, secs):
        a = self.a
        med = bd.median

        def get(w, s, k):
            """{round: value}"""
            return self.rows.get((w, s), {}).get(k, {})

        def ratio(w1, s1, w2, s2, k1, k2=None):
            """(median, min, max) of the ratios s1.k1 / s2.k2 of the rounds
            that have both."""
            x, y = get(w1, s1, k1), get(w2, s2, k2 or k1)
            rs = [x[r] / y[r] for r in sorted(x) if r in y]
            return (med(rs), min(rs), max(rs)) if rs else None

        print("\n== table: samples/s, medians over the n interleaved rounds of each row "
              "(FUSE rows: the first %d); origin s3rver + %s ms per answer; dsc/x = libdsc / "
              "this row, median of the per-round ratios; reqs = requests the proxy relayed "
              "in the epoch; RSS, MiB, sums over the %d workers: of their peak RSS, of its "
              "growth since their first sample, of the largest anonymous and file+shmem "
              "parts seen at a sample" % (a.fuse_rounds, a.latency_ms, a.workers))
        fmt = "   %-5s %-7s %2s %9s %9s %7s %7s %9s %9s %7s %6s %6s %6s"
        print(fmt % ("load", "side", "n", "cold /s", "warm /s", "dsc/x c", "dsc/x w",
                     "reqs cold", "reqs warm", "RSS", "grown", "anon", "file"))
        for w in ("map", "tar"):
            for s in MAP_SIDES:
                row = self.rows.get((w, s))
                if row is None:
                    if s in self.skipped and (w == "map" or s != "boto3"):
                        print("   %-5s %-7s SKIPPED: %s" % (w, s, self.skipped[s]))
                    continue

                def m(k, f="%9.0f"):
                    xs = list(get(w, s, k).values())
                    return f % med(xs) if xs else "-"

                rc = ratio(w, "dsc", w, s, "cold") if s != "dsc" else None
                rw = ratio(w, "dsc", w, s, "warm") if s != "dsc" and get(w, s, "warm") else None
                print(fmt % (w, s, len(get(w, s, "cold")), m("cold"),
                             m("warm") if get(w, s, "warm") else "(no cache)",
                             "%.2f" % rc[0] if rc else "-", "%.2f" % rw[0] if rw else "-",
                             m("cold_reqs"), m("warm_reqs"), m("rss", "%7.0f"),
                             m("rss_grown", "%6.0f"), m("rss_anon", "%6.0f"),
                             m("rss_file", "%6.0f")))
        ceil = get("map", "ceiling", "rate")
        if ceil:
            print("   origin ceiling: %.0f objects/s (%d concurrent plain GETs through the "
                  "proxy; rounds %s)" % (med(ceil.values()), a.ceiling_threads,
                                        ", ".join("%.0f" % c for c in ceil.values())))

        print("\n== goals (ratios: medians of per-round ratios, spread in brackets)")
        gfmt = "   %-52s %6s %-13s %6s  %s"
        print(gfmt % ("figure", "ratio", "rounds", "goal", "met"))

        def goal(label, r, g, le=False):
            if r is None:
                print(gfmt % (label, "-", "", (">=" if not le else "<=") + "%g" % g, "(no data)"))
                return
            met = (r[0] <= g) if le else (r[0] >= g)
            print(gfmt % (label, "%.2f" % r[0], "%.2f..%.2f" % r[1:],
                          ("<=" if le else ">=") + "%g" % g, "yes" if met else "NO"))

        goal("libdsc cold / origin ceiling (map)",
             ratio("map", "dsc", "map", "ceiling", "cold", "rate"), 0.8)
        goal("libdsc warm / local warm (map)", ratio("map", "dsc", "map", "local", "warm"), 1.0)
        goal("libdsc warm / local warm (tar)", ratio("tar", "dsc", "tar", "local", "warm"), 1.0)
        if "rclone" in self.skipped:
            print(gfmt % ("libdsc cold / rclone cold (map)", "-", "", ">=4",
                          "(skipped: %s)" % self.skipped["rclone"]))
        else:
            goal("libdsc cold / rclone cold (map)", ratio("map", "dsc", "map", "rclone", "cold"),
                 4)
        goal("libdsc planned warm / unplanned warm (map)",
             ratio("map", "dsc", "map", "dsc", "planned", "unplanned"), 0.98)
        goal("workers' peak RSS sum, libdsc / local (map)",
             ratio("map", "dsc", "map", "local", "rss"), 1.1, le=True)
        goal("workers' peak RSS sum, libdsc / local (tar)",
             ratio("tar", "dsc", "tar", "local", "rss"), 1.1, le=True)
        for w in ("map", "tar"):
            for k, what in (("rss_grown", "growth"), ("rss_anon", "anon")):
                r = ratio(w, "dsc", w, "local", k)
                if r:
                    print(gfmt % ("  workers' RSS %s, libdsc / local (%s)" % (what, w),
                                  "%.2f" % r[0], "%.2f..%.2f" % r[1:], "-", ""))
        print("   load %s at the end; %.0f s" % (bd.loadavg(), secs))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("shards")
    for name in ("endpoint", "bucket", "prefix", "localdir", "shardprefix"):
        ps.add_argument(name)
    ps.add_argument("--shards", type=int, default=8)
    pr = sub.add_parser("run")
    for name in ("proxy", "bucket", "prefix", "shardprefix", "localdir", "statedir"):
        pr.add_argument(name)
    pr.add_argument("--s3rver-pid", type=int, required=True)
    pr.add_argument("--s3rver-log", required=True)
    pr.add_argument("--latency-ms", default="?", help="the proxy's delay (for the report)")
    pr.add_argument("--rounds", type=int, default=3)
    pr.add_argument("--tar-rounds", type=int, default=3)
    pr.add_argument("--fuse-rounds", type=int, default=2,
                    help="rounds the FUSE sides take part in (the first ones)")
    pr.add_argument("--warm-epochs", type=int, default=3,
                    help="warm epochs of local and dsc per round (median)")
    pr.add_argument("--ab-epochs", type=int, default=4,
                    help="libdsc planned vs unplanned: warm epochs of each, ABBA")
    pr.add_argument("--sides", nargs="+", default=list(MAP_SIDES))
    pr.add_argument("--ceiling-threads", type=int, default=64)
    pr.add_argument("--workers", type=int, default=4)
    pr.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    if a.cmd == "shards":
        shards(a)
        return
    bad = [s for s in a.sides if s not in MAP_SIDES]
    if bad:
        p.error("unknown side(s) %s (from %s)" % (", ".join(bad), ", ".join(MAP_SIDES)))
    if (a.ab_epochs < 1 or a.rounds < 1 or a.tar_rounds < 0 or a.fuse_rounds < 0
            or a.warm_epochs < 1):
        p.error("need --ab-epochs >= 1, --rounds >= 1, --tar-rounds >= 0, --fuse-rounds >= 0, "
                "--warm-epochs >= 1")
    Run(a).run()


if __name__ == "__main__":
    main()
