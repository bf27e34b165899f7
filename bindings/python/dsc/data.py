"""Datasets over libdsc for training loops (PyTorch's DataLoader or any
other). Nothing here imports torch: it is looked up only when a DataLoader
worker may be asking, and TorchTarShards is built on first access."""
import io
import operator
import os
import re
import sys
import tarfile

from .client import Client
from .snapshot import Snapshot


def _client(client):
    if client is None:
        return Client()
    if isinstance(client, dict):
        return Client(**client)
    if isinstance(client, Client):
        return client
    raise TypeError("client must be a dsc.Client, a dict of its options or "
                    "None, not %s" % type(client).__name__)


def _url_list(urls, client, snapshot=None):
    """The URLs of a dataset and, when a listing gave them, their sizes
    (else None): a snapshot's (which the client then uses, so its objects
    open with no HEAD or LIST, pinned to the listed versions), a prefix's
    (one listing), or the given sequence."""
    if isinstance(urls, (Snapshot, os.PathLike)):
        snapshot, urls = urls, None
    if snapshot is not None:
        if urls is not None:
            raise TypeError("give urls or snapshot, not both")
        snap = client.use_snapshot(snapshot)
        head = "s3://%s/" % snap.bucket
        entries = list(snap)
        return [head + key for key, _, _ in entries], [size for _, size, _ in entries]
    if urls is None:
        raise TypeError("a dataset needs urls, a prefix or a snapshot")
    if isinstance(urls, str):       # a prefix: everything under it
        objs = list(client.list(urls))
        return [obj["url"] for obj in objs], [obj["size"] for obj in objs]
    out = list(urls)
    for u in out:
        if not isinstance(u, str):
            raise TypeError("URLs must be str, not %s" % type(u).__name__)
    return out, None


class MapDataset:
    """A map-style dataset: item i is the bytes of urls[i], or
    transform(bytes). `urls` is a sequence of s3:// URLs, or one string
    naming a prefix whose objects (in key order) are the items; or give
    `snapshot` instead (a dsc.Snapshot, or the path or s3:// URL of a
    snapshot file): its objects are the items, and the client uses it, so
    epochs send no HEAD and no LIST and read only the listed versions.

    Make it in the parent process, before the DataLoader forks its
    workers: the workers share its Client (and the node cache)."""

    def __init__(self, urls=None, transform=None, client=None, snapshot=None):
        self.client = _client(client)
        # Sizes from the listing spare read_batch a first pass to learn
        # them (an object that grew since is read alone, whole).
        self.urls, self.sizes = _url_list(urls, self.client, snapshot)
        self.transform = transform

    def __len__(self):
        return len(self.urls)

    def __getitem__(self, index):
        i = operator.index(index)
        data = self.client.read(self.urls[i],
                                size_hint=None if self.sizes is None else self.sizes[i])
        return data if self.transform is None else self.transform(data)

    def __getitems__(self, indices):
        """A batch of items read at once (Client.read_batch: the objects'
        round trips overlap); torch's DataLoader (2.x, and Debian's 1.13)
        calls it for each batch."""
        picked = [operator.index(i) for i in indices]
        sizes = None if self.sizes is None else [self.sizes[i] for i in picked]
        datas = self.client.read_batch([self.urls[i] for i in picked], sizes=sizes)
        return datas if self.transform is None else [self.transform(d) for d in datas]

    def prefetch(self, indices):
        """Queue the objects of these items, in this order, for background
        fetching into the node cache (Client.prefetch); returns at once."""
        return self.client.prefetch(self.urls[operator.index(i)] for i in indices)

    def plan(self, indices):
        """Start a libdsc plan over these items in this order (Client.plan);
        returns the dsc.Plan."""
        return self.client.plan([self.urls[operator.index(i)] for i in indices])


def reading_order(order, batch_size, num_workers):
    """The order in which a DataLoader(batch_size, num_workers) reads the
    samples of `order` (the sampler's order): batch b goes to worker
    b % num_workers, every worker reads its batches one after another,
    sample by sample, and all workers go at once. So sample s of batch b is
    read at about step (b // num_workers) * batch_size + s of its worker,
    and a fetcher serving that order serves every worker's next sample
    before any worker's later ones."""
    if not batch_size or not num_workers or num_workers < 2:
        return list(order)
    keyed = []
    for pos, index in enumerate(order):
        batch, s = divmod(pos, batch_size)
        keyed.append(((batch // num_workers) * batch_size + s, batch, index))
    keyed.sort()
    return [index for _, _, index in keyed]


class PlannedSampler:
    """A sampler for DataLoader(MapDataset, sampler=...) that hands libdsc
    each epoch's exact order, so the epoch is fetched ahead of the workers.

        ds = dsc.MapDataset("s3://bucket/train/", client=client)
        sampler = dsc.PlannedSampler(ds, RandomSampler(ds), batch_size=32,
                                     num_workers=4)
        loader = DataLoader(ds, batch_size=32, sampler=sampler, num_workers=4)

    A dataset made from a snapshot (MapDataset(snapshot=...)) is planned
    with no HEAD and no LIST: its client knows every size and ETag.

    `sampler` gives each epoch's indices (any iterable with a length, e.g.
    torch's RandomSampler; default: 0..len-1). The DataLoader iterates the
    sampler in its main process, right after it has forked the workers
    (the order is known before any sample is read, and no libdsc call is
    in progress when the workers fork). Each epoch this sampler takes the
    whole order, queues the objects on the parent's Client, and yields the
    indices. The parent's fetchers (prefetch_threads) GET ahead; a worker
    reading an object finds it in the node cache, or joins its GET in
    flight.

    mode "prefetch" (default): Client.prefetch of the objects in order,
    at most `ahead` samples past the last index the DataLoader took from
    the sampler (it takes them as it hands batches to workers, a few
    batches ahead of the reads); ahead=None: the whole epoch at once
    (the node cache must hold it, else late fetches evict early ones
    before they are read).
    mode "plan": one dsc.Plan of the epoch (Client.plan). Its window
    (the Client's plan_window) only moves with reads of the process that
    made it, and the reads are in the workers, so with worker processes
    it fetches plan_window bytes and stops: make the parent's client with
    plan_window >= the epoch's bytes, or use "prefetch". With
    num_workers=0 the reads are in this process and the window moves.

    batch_size and num_workers (those of the DataLoader), when given,
    make the fetch order the order in which the workers will read
    (reading_order) rather than the sampler's order: the first sample of
    every worker's batch first."""

    MODES = ("prefetch", "plan")

    def __init__(self, dataset, sampler=None, mode="prefetch", ahead=None,
                 batch_size=None, num_workers=None):
        if mode not in self.MODES:
            raise ValueError("mode must be one of %s, not %r" % (", ".join(self.MODES), mode))
        if ahead is not None and (isinstance(ahead, bool) or not isinstance(ahead, int)
                                  or ahead < 1):
            raise ValueError("ahead must be None or a count >= 1, not %r" % (ahead,))
        if not hasattr(dataset, "urls") or not hasattr(dataset, "client"):
            raise TypeError("PlannedSampler needs a dataset with urls and client "
                            "(dsc.MapDataset), not %s" % type(dataset).__name__)
        self.dataset = dataset
        self.sampler = sampler
        self.mode = mode
        self.ahead = ahead
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.plan = None            # the current epoch's dsc.Plan (mode "plan")
        self.order = None           # the current epoch's indices

    def __len__(self):
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __iter__(self):
        source = self.sampler if self.sampler is not None else range(len(self.dataset))
        order = [operator.index(i) for i in source]
        self.order = order
        fetch = reading_order(order, self.batch_size, self.num_workers)
        if self.plan is not None:
            self.plan.stop()
            self.plan = None
        if self.mode == "plan":
            self.plan = self.dataset.plan(fetch)
            yield from order
            return
        if self.ahead is None:
            self.dataset.prefetch(fetch)
            yield from order
            return
        queued = min(self.ahead, len(fetch))
        self.dataset.prefetch(fetch[:queued])
        for pos, index in enumerate(order):
            want = min(pos + 1 + self.ahead, len(fetch))
            if want > queued:
                self.dataset.prefetch(fetch[queued:want])
                queued = want
            yield index


# WebDataset's naming: "dir/name.seg.jpg" is key "dir/name", field "seg.jpg";
# a name without a dot in its last part, or starting with one, is no field.
_MEMBER_RE = re.compile(r"((?:.*/)?[^./]+)\.([^/]*)", re.DOTALL)


def split_member_name(name):
    """(key, field) of a tar member name, or (None, None) when it has no
    extension (WebDataset skips such members)."""
    m = _MEMBER_RE.fullmatch(name)
    return (m.group(1), m.group(2)) if m else (None, None)


class TarShards:
    """Samples of WebDataset-style .tar shards, shard after shard.

    Members with the same key in a row form one sample:
    {"__key__": key, "__url__": shard URL, "jpg": bytes, "cls": bytes, ...}.
    `urls` is a sequence of shard URLs or a prefix string; or give
    `snapshot` (as MapDataset). A shard that cannot be read or parsed
    raises (dsc.Error, tarfile.TarError).

    Splitting: shards go to ranks first, then to DataLoader workers: with
    world size W (rank/num_replicas, default torch.distributed's when it
    is initialised when the dataset is made, else 1) rank r takes shards[r::W] of the epoch's shard
    order, and its worker w of N takes that[w::N]. Without ranks or
    workers one process reads every shard. equalize="pad" repeats shards
    (from the start of the order), "drop" drops the last ones, so every
    rank gets the same number of shards (the same number of samples when
    shards hold the same count); None (default) leaves the remainder.

    Shuffling (all seeded by (seed, epoch), call set_epoch(e) each epoch;
    dsc.Rng): shuffle=True permutes the shard order (dsc.permutation);
    shuffle_buffer=K > 1 keeps K samples per worker and yields a random one
    of them as each new one arrives (WebDataset's shuffle buffer), the
    stream keyed by (seed, epoch, rank, worker).

    Resume: resumable=True tags each sample with "__dsc__" ("shard:member",
    plus ":count" on a shard's last member). track(sample or batch), which
    dsc.StatefulLoader calls in the training loop's process, records what
    was delivered; state_dict() is this rank's record (done shards, and
    the members delivered of the others), merge_state_dicts() joins the
    ranks' records (gather them with torch.distributed.all_gather_object),
    and load_state_dict() makes the next iteration skip all of it, at the
    shard and member level, with any world size or worker count: each
    sample once. Load it before the DataLoader starts its workers."""

    KIND = "dsc.TarShards"

    def __init__(self, urls=None, client=None, transform=None,
                 buffer_size=1 << 20, snapshot=None, num_replicas=None, rank=None,
                 shuffle=False, shuffle_buffer=0, seed=0, equalize=None,
                 resumable=False):
        from .sampling import world
        self.client = _client(client)
        self.urls, _ = _url_list(urls, self.client, snapshot)
        self.transform = transform
        self.buffer_size = buffer_size
        if equalize not in (None, "pad", "drop"):
            raise ValueError("equalize must be None, 'pad' or 'drop', not %r" % (equalize,))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError("seed must be an int, not %s" % type(seed).__name__)
        # Resolved here, in the process that made the dataset (after
        # init_process_group): a spawned DataLoader worker has no group.
        rank, size = world(num_replicas, rank)
        self._world_args = (size, rank)
        self.shuffle = bool(shuffle)
        self.shuffle_buffer = operator.index(shuffle_buffer)
        self.seed = seed
        self.equalize = equalize
        self.resumable = bool(resumable)
        self.epoch = 0
        self._done = set()          # shards fully delivered
        self._partial = {}          # shard -> [count or None, set(members)]
        self._resuming = False      # a loaded state waits for its pass

    def set_epoch(self, epoch):
        """Use (seed, epoch) from the next iteration; resume state of
        another epoch is dropped."""
        epoch = operator.index(epoch)
        if epoch != self.epoch:
            self._done, self._partial = set(), {}
        self.epoch = epoch

    def shard_order(self):
        """The epoch's order of shard indices (before any split)."""
        from .sampling import permutation
        n = len(self.urls)
        return permutation(n, self.seed, self.epoch) if self.shuffle else list(range(n))

    def my_shards(self, worker=None, num_workers=None):
        """Shard indices this rank's worker reads next iteration (resumed
        shards included, done ones left out)."""
        from .sampling import split, world
        rank, size = world(*self._world_args)
        if worker is None:
            torch_data = sys.modules.get("torch.utils.data")
            info = torch_data.get_worker_info() if torch_data is not None else None
            worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        rest = [s for s in self.shard_order() if s not in self._done]
        if self.equalize is None:
            mine = rest[rank::size]
        else:
            mine = split(rest, rank, size, self.equalize == "drop")
        return mine[worker::num_workers], rank, worker

    def __iter__(self):
        from .sampling import Rng
        shards, rank, worker = self.my_shards()
        stream = self._tagged(shards)
        if self.shuffle_buffer <= 1:
            yield from stream
            return
        rng = Rng(self.seed, self.epoch, stream=(rank << 16) + worker + 1)
        buf = []
        for sample in stream:
            buf.append(sample)
            if len(buf) >= self.shuffle_buffer:
                j = rng.below(len(buf))
                buf[j], buf[-1] = buf[-1], buf[j]
                yield buf.pop()
        while buf:
            j = rng.below(len(buf))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()

    def _tagged(self, shards):
        for s in shards:
            skip = self._partial.get(s, (None, ()))[1]
            prev = None
            member = -1
            for member, sample in enumerate(self._raw_samples(self.urls[s])):
                if prev is not None:
                    yield self._finish(prev)
                prev = None
                if member in skip:
                    continue
                if self.resumable:
                    sample["__dsc__"] = "%d:%d" % (s, member)
                prev = sample
            if prev is not None:
                if self.resumable:
                    prev["__dsc__"] += ":%d" % (member + 1)
                yield self._finish(prev)

    def samples(self, url):
        """The samples of one shard, in order."""
        for sample in self._raw_samples(url):
            yield self._finish(sample)

    def _raw_samples(self, url):
        with self.client.open(url) as raw, \
                io.BufferedReader(raw, self.buffer_size) as stream, \
                tarfile.open(fileobj=stream, mode="r|*") as tar:
            sample = None
            for member in tar:
                if not member.isfile():
                    continue
                key, field = split_member_name(member.name)
                if key is None:
                    continue
                if sample is not None and sample["__key__"] != key:
                    yield sample
                    sample = None
                if sample is None:
                    sample = {"__key__": key, "__url__": url}
                if field in sample:
                    raise ValueError("%s: %s.%s appears twice in a row"
                                     % (url, key, field))
                sample[field] = tar.extractfile(member).read()
            if sample is not None:
                yield sample

    def _finish(self, sample):
        return sample if self.transform is None else self.transform(sample)

    # -- resume ----------------------------------------------------------
    def track_begin(self):
        """An iteration starts (dsc.StatefulLoader calls it): it reads the
        rest of a loaded state's epoch, else the whole epoch again (what
        the last pass delivered must not hide the next pass's shards)."""
        if not self._resuming:
            self._done, self._partial = set(), {}
        self._resuming = False

    def track(self, item):
        """Record the samples of a delivered sample or batch (their
        "__dsc__" tags; a collated batch has a list of them)."""
        tags = item.get("__dsc__") if isinstance(item, dict) else None
        if tags is None:
            if isinstance(item, (list, tuple)):
                for x in item:
                    self.track(x)
            return
        for tag in ([tags] if isinstance(tags, str) else tags):
            parts = [int(x) for x in tag.split(":")]
            s, m = parts[0], parts[1]
            if s in self._done:
                continue
            entry = self._partial.setdefault(s, [None, set()])
            entry[1].add(m)
            if len(parts) > 2:
                entry[0] = parts[2]
            if entry[0] is not None and len(entry[1]) >= entry[0]:
                self._done.add(s)
                del self._partial[s]

    def state_dict(self):
        """What this process delivered of the epoch: plain values (JSON)."""
        from .sampling import dataset_id
        return {"kind": self.KIND, "version": 1, "dataset": dataset_id(self),
                "seed": self.seed, "shuffle": self.shuffle, "epoch": self.epoch,
                "done": sorted(self._done),
                "partial": {str(s): {"count": c, "members": sorted(m)}
                            for s, (c, m) in sorted(self._partial.items())}}

    @staticmethod
    def merge_state_dicts(states):
        """One state of several ranks' states of the same epoch."""
        from .sampling import _check_state
        states = list(states)
        if not states:
            raise ValueError("no states to merge")
        first = states[0]
        want = {k: first.get(k) for k in ("dataset", "seed", "shuffle", "epoch")}
        done, partial = set(), {}
        for st in states:
            _check_state(st, TarShards.KIND, want)
            done.update(st["done"])
            for s, e in st["partial"].items():
                c, m = partial.setdefault(int(s), [None, set()])
                partial[int(s)] = [e["count"] if e["count"] is not None else c,
                                   m | set(e["members"])]
        out = dict(first, done=sorted(done), partial={})
        for s, (c, m) in sorted(partial.items()):
            if s in done:
                continue
            if c is not None and len(m) >= c:
                out["done"].append(s)
            else:
                out["partial"][str(s)] = {"count": c, "members": sorted(m)}
        out["done"].sort()
        return out

    def load_state_dict(self, state):
        """Skip what the state (or a list of ranks' states) says was
        delivered, from the next iteration. Another dataset's or seed's
        state raises ValueError."""
        from .sampling import _check_state, dataset_id
        if isinstance(state, (list, tuple)):
            state = self.merge_state_dicts(state)
        _check_state(state, self.KIND, {"dataset": dataset_id(self), "seed": self.seed,
                                        "shuffle": self.shuffle})
        n = len(self.urls)
        done = set(int(s) for s in state["done"])
        partial = {int(s): [e["count"], set(int(m) for m in e["members"])]
                   for s, e in state["partial"].items()}
        if any(not 0 <= s < n for s in done | set(partial)):
            raise ValueError("state names shards outside 0..%d" % (n - 1))
        self.epoch = operator.index(state["epoch"])
        self._done, self._partial = done, partial
        self._resuming = True


def _make_torch_tar_shards():
    from torch.utils.data import IterableDataset

    class TorchTarShards(TarShards, IterableDataset):
        """TarShards as a torch.utils.data.IterableDataset, so DataLoader
        iterates it (each worker its own shards)."""

    TorchTarShards.__module__ = "dsc"
    return TorchTarShards
