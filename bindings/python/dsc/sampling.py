"""Epoch orders for training loops over several processes: the portable
shuffle, rank x worker splits, and state to resume an epoch mid-way.

The shuffle generator is specified here so any language can compute the
same order (dsc::permutation in bindings/cpp/dsc_loader.hpp does; its
test checks the two agree):

    M = 2**64, GAMMA = 0x9E3779B97F4A7C15
    mix(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 mod M
             z = (z ^ (z >> 27)) * 0x94D049BB133111EB mod M
             return z ^ (z >> 31)                 (SplitMix64's finaliser)
    state  = mix(seed mod M) ^ mix((epoch mod M) + GAMMA) ^ mix((stream mod M) + 2*GAMMA mod M)
    next() : state = state + GAMMA mod M; return mix(state)
    below(m): lim = M - (M mod m); draw x = next() until x < lim; return x mod m
    permutation(n): a = [0..n-1]; for i = n-1 down to 1: j = below(i+1),
                    swap a[i], a[j]                (Fisher-Yates)

Nothing here imports torch; torch.distributed is asked for the rank and
world size only when it is already imported and initialised.
"""
import hashlib
import operator
import sys

_M = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


class Rng:
    """The portable generator (module docstring): a SplitMix64 stream keyed
    by (seed, epoch, stream). `state` is one int; Rng.restore(state) goes on
    from it (resume of a shuffle buffer)."""

    def __init__(self, seed, epoch=0, stream=0):
        for name, v in (("seed", seed), ("epoch", epoch), ("stream", stream)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s must be an int, not %s" % (name, type(v).__name__))
        self.state = (_mix(seed & _M) ^ _mix(((epoch & _M) + _GAMMA) & _M)
                      ^ _mix(((stream & _M) + 2 * _GAMMA) & _M))

    @classmethod
    def restore(cls, state):
        rng = cls.__new__(cls)
        rng.state = operator.index(state) & _M
        return rng

    def next(self):
        self.state = (self.state + _GAMMA) & _M
        return _mix(self.state)

    def below(self, m):
        """Uniform in [0, m), m >= 1 (rejection, no modulo bias)."""
        lim = (1 << 64) - ((1 << 64) % m)
        while True:
            x = self.next()
            if x < lim:
                return x % m


def permutation(n, seed, epoch=0):
    """The epoch's order of range(n) for (seed, epoch): the same list in
    every process, interpreter and language that follows the module's
    specification."""
    a = list(range(n))
    rng = Rng(seed, epoch)
    # Inlined below(): this loop is the cost of a large epoch (~1 us a step).
    state, gamma, M = rng.state, _GAMMA, _M
    for i in range(n - 1, 0, -1):
        m = i + 1
        lim = (1 << 64) - ((1 << 64) % m)
        while True:
            state = (state + gamma) & M
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            z ^= z >> 31
            if z < lim:
                break
        j = z % m
        a[i], a[j] = a[j], a[i]
    return a


def world(num_replicas=None, rank=None):
    """(rank, world size): the arguments, else torch.distributed's when it
    is initialised, else (0, 1)."""
    if num_replicas is None or rank is None:
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        else:
            num_replicas = 1 if num_replicas is None else num_replicas
            rank = 0 if rank is None else rank
    for name, v in (("num_replicas", num_replicas), ("rank", rank)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError("%s must be an int, not %s" % (name, type(v).__name__))
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError("rank %d of world size %d: need 0 <= rank < world size >= 1"
                         % (rank, num_replicas))
    return rank, num_replicas


def dataset_id(dataset):
    """A short fingerprint of a dataset's items (its URLs when it has
    them, else its length), kept in state dicts so that state from another
    dataset is refused."""
    urls = getattr(dataset, "urls", None)
    if urls is None:
        return "len:%d" % (dataset if isinstance(dataset, int) else len(dataset))
    h = hashlib.sha256()
    for u in urls:
        h.update(u.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()[:32]


def split(items, rank, world_size, drop_last):
    """This rank's part of `items`: items[rank::world_size] after padding
    (repeating from the start, as torch's DistributedSampler) or dropping
    the tail so every rank gets the same count."""
    n = len(items)
    if drop_last:
        count = n // world_size
        items = items[:count * world_size]
    else:
        count = -(-n // world_size)
        pad = count * world_size - n
        if pad and n:
            reps = -(-pad // n)
            items = list(items) + (list(items) * reps)[:pad]
    return list(items[rank::world_size])


def _check_state(state, kind, want):
    if not isinstance(state, dict):
        raise TypeError("state must be a dict (from state_dict()), not %s"
                        % type(state).__name__)
    if state.get("kind") != kind:
        raise ValueError("state is from %r, not a %s" % (state.get("kind"), kind))
    if state.get("version") != 1:
        raise ValueError("%s state version %r: this dsc knows version 1"
                         % (kind, state.get("version")))
    for key, value in want.items():
        if state.get(key) != value:
            raise ValueError("%s state is for %s=%r, this one has %s=%r: it "
                             "belongs to another dataset or run"
                             % (kind, key, state.get(key), key, value))


class DistributedSampler:
    """A sampler for DataLoader(dataset, sampler=..., batch_size=...) in a
    job of several ranks: a shuffle computed the same way on every rank
    from (seed, epoch) (dsc.permutation), this rank's share, prefetching
    of exactly this rank's samples, and state to resume mid-epoch.

    The epoch's order P is split by interleaving: rank r takes P[r::W], so
    when every rank has consumed k samples the ranks together consumed
    P[:k*W], a prefix. state_dict() records that prefix's length; loading
    it with any world size hands out the rest P[prefix:] in the same way:
    none lost, none repeated (padding aside). Every rank gets the same
    count: with drop_last the last (len % W) samples are dropped, else
    samples from the start of the part are repeated (as torch's
    DistributedSampler), so DDP ranks see the same number of batches.

    dataset: a dsc.MapDataset (its objects are prefetched, in the order the
    DataLoader's workers read them when batch_size and num_workers are
    given), any sized dataset, or a length. rank / num_replicas: default
    torch.distributed's when initialised, else 0 / 1. Call set_epoch(e)
    before each epoch, as with torch's sampler. prefetch: False, or "ahead"
    as in PlannedSampler (None: this rank's whole epoch at once)."""

    KIND = "dsc.DistributedSampler"

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True,
                 seed=0, drop_last=False, batch_size=None, num_workers=None,
                 prefetch=True, ahead=None):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError("seed must be an int, not %s" % type(seed).__name__)
        self.rank, self.num_replicas = world(num_replicas, rank)
        self.dataset = dataset
        self.n = dataset if isinstance(dataset, int) else len(dataset)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.prefetch = prefetch and hasattr(dataset, "prefetch")
        self.ahead = ahead
        self.epoch = 0
        self._id = dataset_id(dataset)
        self._resume = 0            # global samples of the epoch already done
        self._start = 0             # the running iteration's start (global)
        self._yielded = 0           # this rank's samples handed out in it
        self._count = None          # this rank's samples in it
        self._order_cache = None
        self._iterating = False

    def set_epoch(self, epoch):
        """Use (seed, epoch)'s order from the next iteration. A state
        loaded for another epoch is dropped."""
        epoch = operator.index(epoch)
        if epoch != self.epoch:
            self._resume = 0
        self.epoch = epoch

    def _epoch_order(self):
        key = (self.epoch, self.n)
        if self._order_cache is None or self._order_cache[0] != key:
            order = permutation(self.n, self.seed, self.epoch) if self.shuffle \
                else list(range(self.n))
            self._order_cache = (key, order)
        return self._order_cache[1]

    def rank_order(self):
        """This rank's indices for the next iteration (after any resume)."""
        rest = self._epoch_order()[self._resume:]
        return split(rest, self.rank, self.num_replicas, self.drop_last)

    def __len__(self):
        start = self._start if self._iterating and not self._resume else self._resume
        rest = self.n - start
        return rest // self.num_replicas if self.drop_last \
            else -(-rest // self.num_replicas)

    def __iter__(self):
        order = self.rank_order()
        self._start, self._yielded, self._count = self._resume, 0, len(order)
        self._resume = 0        # the next iteration starts the epoch afresh
        self._iterating = True
        try:
            yield from self._hand_out(order)
        finally:
            self._iterating = False

    def _hand_out(self, order):
        if not self.prefetch or not order:
            for index in order:
                self._yielded += 1
                yield index
            return
        from .data import reading_order
        fetch = reading_order(order, self.batch_size, self.num_workers)
        ahead = self.ahead if self.ahead is not None else len(fetch)
        queued = min(ahead, len(fetch))
        self.dataset.prefetch(fetch[:queued])
        for pos, index in enumerate(order):
            want = min(pos + 1 + ahead, len(fetch))
            if want > queued:
                self.dataset.prefetch(fetch[queued:want])
                queued = want
            self._yielded += 1
            yield index

    def state_dict(self, consumed=None):
        """The state to resume this epoch from: a dict of plain values, the
        same on every rank when all ranks consumed the same count (save it
        on rank 0). consumed: this rank's samples the training loop has
        taken since the iteration began (default: those this sampler handed
        out, which is right with num_workers=0; a DataLoader with workers
        takes indices ahead of the batches it delivers, so pass the count
        delivered, or use dsc.StatefulLoader which does)."""
        if self._count is None:         # not iterated yet
            done = self._resume
        else:
            k = self._yielded if consumed is None else operator.index(consumed)
            if not 0 <= k <= self._count:
                raise ValueError("consumed=%d: this rank has %d samples in this "
                                 "iteration" % (k, self._count))
            if k == self._count:
                done = self.n           # the epoch is over (dropped tail too)
            else:
                done = min(self.n, self._start + k * self.num_replicas)
        return {"kind": self.KIND, "version": 1, "dataset": self._id,
                "num_samples": self.n, "seed": self.seed, "shuffle": self.shuffle,
                "epoch": self.epoch, "consumed": done,
                "world_size": self.num_replicas, "drop_last": self.drop_last}

    def load_state_dict(self, state):
        """Resume from state_dict()'s dict at the next iteration: the
        epoch's samples not yet consumed, split among this sampler's ranks
        (the world size may differ from the one that saved it). A state of
        another dataset, seed or shuffle setting raises ValueError."""
        _check_state(state, self.KIND, {"dataset": self._id, "num_samples": self.n,
                                        "seed": self.seed, "shuffle": self.shuffle})
        done = state.get("consumed")
        if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= self.n:
            raise ValueError("state's consumed=%r is not in 0..%d" % (done, self.n))
        self.epoch = operator.index(state["epoch"])
        self._resume = done
        self._count = None


def _find_sampler(loader):
    for s in (getattr(loader, "sampler", None),
              getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if hasattr(s, "state_dict") and hasattr(s, "load_state_dict"):
            return s
    return None


def _samples_per_batch(loader):
    """Sampler indices one batch of loader consumes: batch_size, the
    batch_sampler's batch_size, or 1 without batching."""
    if loader.batch_size is not None:
        return loader.batch_size
    bs = getattr(loader, "batch_sampler", None)
    if bs is None:
        return 1
    n = getattr(bs, "batch_size", None)
    if n is None:
        raise TypeError("StatefulLoader: cannot tell how many samples a batch "
                        "of %s holds (it has no batch_size)" % type(bs).__name__)
    return n


class StatefulLoader:
    """Wraps a stock torch DataLoader to save and resume mid-epoch, with
    torchdata's StatefulDataLoader's methods: state_dict() and
    load_state_dict(state), taking effect at the next iteration.

        loader = dsc.StatefulLoader(DataLoader(ds, batch_size=32,
                                    sampler=dsc.DistributedSampler(ds), num_workers=4))
        loader.load_state_dict(saved)          # optional
        for batch in loader: ...; saved = loader.state_dict()

    A DataLoader's workers read ahead of the training loop; this wrapper
    counts what the loop has been given, so the state covers exactly that.
    Works with a dsc.DistributedSampler (counts batches) and with a
    dsc.TarShards dataset (counts the samples each worker delivered)."""

    def __init__(self, loader):
        self.loader = loader
        self.sampler = _find_sampler(loader)
        self.dataset = getattr(loader, "dataset", None)
        self._tracks = hasattr(self.dataset, "track")
        if self.sampler is None and not self._tracks:
            raise TypeError("StatefulLoader needs a DataLoader with a "
                            "dsc.DistributedSampler or a dsc.TarShards dataset")
        self._delivered = 0
        self._finished = False

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self._delivered, self._finished = 0, False
        if self._tracks:
            self.dataset.track_begin()
        bs = _samples_per_batch(self.loader)
        for batch in self.loader:
            if self._tracks:
                self.dataset.track(batch)
            else:
                self._delivered += bs
            yield batch
        self._finished = True

    def state_dict(self):
        out = {"kind": "dsc.StatefulLoader", "version": 1}
        if self.sampler is not None:
            consumed = None
            if self.sampler._count is not None:
                consumed = self.sampler._count if self._finished \
                    else min(self._delivered, self.sampler._count)
            out["sampler"] = self.sampler.state_dict(consumed=consumed)
        if self._tracks:
            out["dataset"] = self.dataset.state_dict()
        return out

    def load_state_dict(self, state):
        _check_state(state, "dsc.StatefulLoader", {})
        if self.sampler is not None:
            if "sampler" not in state:
                raise ValueError("state has no sampler state")
            self.sampler.load_state_dict(state["sampler"])
        if self._tracks:
            if "dataset" not in state:
                raise ValueError("state has no dataset state")
            self.dataset.load_state_dict(state["dataset"])
