"""dsc.Client and dsc.File: the Python face of dsc_ctx and dsc_file."""
import ctypes
import io
import itertools
import math
import multiprocessing.util
import operator
import os
import re
import threading
import weakref

from . import _lib
from . import errors


class _Guard:
    """Owns a C handle and lets close() wait for calls still using it, so
    closing from one thread while another reads is an error, not a
    use-after-free."""

    def __init__(self, ptr, what):
        self._ptr = ptr
        self._what = what
        self._active = 0
        self._cond = threading.Condition(threading.Lock())
        _guards.add(self)

    def __enter__(self):
        with self._cond:
            if self._ptr is None:
                raise ValueError("I/O operation on closed %s" % self._what)
            self._active += 1
            return self._ptr

    def __exit__(self, *exc):
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    @property
    def closed(self):
        return self._ptr is None

    def take(self):
        """Mark closed; wait for running calls; return the handle (or None
        when it was already closed)."""
        with self._cond:
            ptr, self._ptr = self._ptr, None
            while self._active:
                self._cond.wait()
            return ptr

    def _after_fork(self):
        # Threads of the parent do not exist here: their calls never end.
        self._cond = threading.Condition(threading.Lock())
        self._active = 0


_guards = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [g._after_fork() for g in list(_guards)])


def _fail(rc):
    """The exception for a failed call; must run right after it, on the
    same thread (dsc_errmsg is thread-local)."""
    detail = _lib.lib().dsc_errmsg().decode("utf-8", "replace")
    return errors.from_code(int(rc), detail)


def _url_bytes(url):
    if isinstance(url, str):
        try:
            raw = url.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            raise errors.InvalidURL(errors.EURL, "%r: not encodable as UTF-8 "
                                    "(%s)" % (url, e.reason)) from None
    elif isinstance(url, (bytes, bytearray)):
        raw = bytes(url)
    else:
        raise TypeError("URL must be str or bytes, not %s" % type(url).__name__)
    # ctypes would pass the string up to the NUL: a different object.
    if b"\0" in raw:
        raise errors.InvalidURL(errors.EURL, "%r: contains a NUL character" % url)
    return raw


def _text(raw):
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


try:
    _new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
    _new_bytes.restype = ctypes.py_object
    _new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _bytes_address = ctypes.pythonapi.PyBytes_AsString
    _bytes_address.restype = ctypes.c_void_p
    _bytes_address.argtypes = [ctypes.py_object]
except AttributeError:      # not CPython
    _new_bytes = None


def _read_bytes(n, fill):
    """bytes of at most n > 0 bytes, written by fill(address, n) -> count.

    On CPython the bytes object is made uninitialised and filled in place
    before anyone else can see it (the C API allows that), so a read costs
    one buffer and no copy: fresh memory is slow to touch, and objects are
    large."""
    if _new_bytes is None:
        buf = bytearray(n)
        with _Window(buf) as (address, _):
            got = fill(address, n)
        del buf[got:]
        return bytes(buf)
    data = _new_bytes(None, n)
    got = fill(_bytes_address(data), n)
    return data if got == n else data[:got]


# A size hint above this is not trusted to allocate by (a listing's size is
# right, a caller's typo may not be): such reads learn the size first.
_HINT_MAX = 1 << 30


def _check_range(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if not lo <= value <= hi:
        raise errors.InvalidArgument(errors.EINVAL, "%s=%d is outside %d..%d"
                                     % (name, value, lo, hi))
    return value


_SIZE_RE = re.compile(r"\s*(\d+)\s*(?:([KMGT])I?B?|B)?\s*", re.IGNORECASE)
_SHIFT = {None: 0, "K": 10, "M": 20, "G": 30, "T": 40}


def parse_size(text):
    """"20G", "512MiB", "64KB", "4096" -> bytes (powers of two, as
    DSC_CACHE_SIZE is read)."""
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise errors.InvalidArgument(errors.EINVAL, "%r is not a size like "
                                     "20G, 512MiB or 4096" % text)
    unit = m.group(2).upper() if m.group(2) else None
    return int(m.group(1)) << _SHIFT[unit]


def _bits(ctype):
    return 8 * ctypes.sizeof(ctype)


def _int_limits(ctype):
    if ctype in (ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint):
        return 0, (1 << _bits(ctype)) - 1
    return -(1 << (_bits(ctype) - 1)), (1 << (_bits(ctype) - 1)) - 1


_STRINGS = {"endpoint", "region", "access_key_id", "secret_access_key",
            "session_token", "profile", "ca_file", "cache_dir", "peers",
            "peer_self", "peer_secret", "snapshot"}
_PATHS = {"ca_file", "cache_dir", "snapshot"}
_FLAGS = {"anonymous", "verify_tls", "cache_sync", "peer_keep_local", "cache_existing",
          "prefetch_loop"}
_SECRETS = ("secret_access_key", "session_token", "peer_secret")
_SIZES = {"cache_size", "chunk_size", "readahead_max", "plan_window",
          "prefetch_memory"}
_NAMED = {"addressing": _lib.ADDRESSING, "cache_policy": _lib.POLICIES,
          "cache_verify": _lib.VERIFY}
_FIELD_TYPES = dict(_lib.Config._fields_)
CONFIG_KEYS = frozenset(_FIELD_TYPES) - {"version"}


def _config_value(key, value):
    """A Python value for dsc_config field `key`, checked and converted."""
    if key in _STRINGS:
        if key in _PATHS and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise TypeError("%s must be a str, not %s" % (key, type(value).__name__))
        raw = os.fsencode(value) if key in _PATHS else value.encode("utf-8")
        if b"\0" in raw:
            raise errors.InvalidArgument(errors.EINVAL, "%s contains a NUL "
                                         "character" % key)
        return raw
    if key in _FLAGS:
        if not isinstance(value, (bool, int)):
            raise TypeError("%s must be a bool, not %s" % (key, type(value).__name__))
        return 1 if value else 0
    if key in _NAMED:
        names = _NAMED[key]
        if value not in names:
            raise errors.InvalidArgument(errors.EINVAL, "%s=%r: expected one "
                                         "of %s" % (key, value, ", ".join(names)))
        return names[value]
    if key in _SIZES and isinstance(value, str):
        try:
            value = parse_size(value)
        except errors.InvalidArgument as e:
            raise errors.InvalidArgument(e.code, "%s: %s" % (key, e.message)) from None
    return _check_range(key, value, *_int_limits(_FIELD_TYPES[key]))


def _open_ctx(config):
    L = _lib.lib()
    box = _lib.ConfigBox()
    # A library older than this package knows an older config version,
    # whose fields are a prefix of ours: use it unless a newer field is set.
    version = _lib.CONFIG_VERSION
    rc = L.dsc_config_init(ctypes.byref(box), version)
    while rc == errors.EINVAL and version > 1:
        newer = sorted(set(config) & set(_lib.CONFIG_ADDED[version]))
        if newer:
            raise NotImplementedError("%s: the loaded libdsc (%s) has no such "
                                      "settings" % (", ".join(newer),
                                                    L.dsc_version_string().decode()))
        version -= 1
        rc = L.dsc_config_init(ctypes.byref(box), version)
    if rc:
        raise _fail(rc)
    keep_alive = []     # the bytes behind char * fields, until open returns
    for key, value in config.items():
        converted = _config_value(key, value)
        if isinstance(converted, bytes):
            keep_alive.append(converted)
        setattr(box.cfg, key, converted)
    handle = ctypes.c_void_p()
    rc = L.dsc_ctx_open(ctypes.byref(box), ctypes.byref(handle))
    if rc:
        raise _fail(rc)
    del keep_alive
    return handle.value


def _client_from_config(config):
    return Client(**config)


class Client:
    """A libdsc context: connections to S3, credentials, the node cache.

    Keyword arguments are dsc_config fields (see include/dsc.h); those not
    given keep the library's defaults, which follow the AWS_* and DSC_*
    environment. Strings: endpoint, region, access_key_id,
    secret_access_key, session_token, profile, ca_file, cache_dir ("" or
    "off": no cache). Flags: anonymous, verify_tls, cache_sync. Sizes (int
    or "20G"): cache_size, chunk_size, readahead_max, plan_window. Names:
    addressing ("auto", "path", "virtual"), cache_policy ("lru", "minio").
    Ints: connect_timeout_ms, request_timeout_ms, max_retries,
    retry_base_ms, retry_max_ms, max_connections, meta_ttl_ms,
    cache_idle_sec, fd_cache, prefetch_threads, prefetch_queue.
    Peers (libdsc with config version 2): peers, peer_self, peer_secret
    (strings), peer_timeout_ms, peer_backoff_ms (ints), peer_keep_local
    (flag). snapshot (config version 3): a dsc.Snapshot, or the path or
    s3:// URL of a snapshot file, used as by use_snapshot().
    peers_refresh_s (config version 5): how often DNS-named peers are
    re-resolved. prefetch_memory (size), prefetch_loop (flag; config
    version 6): background GETs on an event loop within that memory;
    cache_verify ("boot", "always"; version 6): see DSC_CACHE_VERIFY.

    A Client may be shared by threads, and used in processes forked after
    it was made (DataLoader workers). Pickling it (spawn start method)
    pickles its keyword arguments, secrets included, and the unpickled copy
    opens a new context.
    """

    def __init__(self, **config):
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise TypeError("Client() got unexpected keyword argument(s): %s"
                            % ", ".join(unknown))
        self._config = {k: v for k, v in config.items() if v is not None}
        self._files = weakref.WeakSet()
        self._plans = weakref.WeakSet()
        self._listing_threads = set()
        self._guard = None
        snap = self._config.get("snapshot")
        is_file = isinstance(snap, (str, bytes, os.PathLike))
        opened = {k: v for k, v in self._config.items()
                  if k != "snapshot" or is_file}
        self._guard = _Guard(_open_ctx(opened), "client")
        if snap is not None and not is_file:
            self.use_snapshot(snap)
        # A multiprocessing child (DataLoader worker) ends with os._exit:
        # close there so the cache's batched counters and access times
        # reach the shared index.
        multiprocessing.util.register_after_fork(self, Client._close_at_child_exit)

    def _close_at_child_exit(self):
        multiprocessing.util.Finalize(self, self.close, exitpriority=0)

    def __reduce__(self):
        return (_client_from_config, (dict(self._config),))

    def __repr__(self):
        shown = {k: v for k, v in self._config.items() if k not in _SECRETS}
        return "dsc.Client(%s%s)" % (", ".join("%s=%r" % kv for kv in sorted(shown.items())),
                                     ", closed" if self.closed else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self):
        return self._guard is None or self._guard.closed

    def close(self):
        """Close every File still open from this client, then the context.
        Calling it again does nothing."""
        if self._guard is None:
            return
        if threading.get_ident() in self._listing_threads:
            # close() would wait for the listing that is calling us.
            raise RuntimeError("Client.close() called from its own list callback")
        for p in list(self._plans):
            p.stop()
        for f in list(self._files):
            f.close()
        ptr = self._guard.take()
        if ptr:
            _lib.lib().dsc_ctx_close(ptr)

    def open(self, url):
        """Open s3://bucket/key (one HEAD, or cached metadata) for reading."""
        return File(self, url)

    def read(self, url, off=0, len=None, size_hint=None):
        """Bytes [off, off+len) of an object (to its end when len is None);
        fewer when the object ends first. One libdsc call (dsc_pread_url)
        when size_hint, the object's size as last known (a listing's), is
        right; a wrong hint costs a second call, never a wrong answer."""
        raw = _url_bytes(url)
        fn = getattr(_lib.lib(), "dsc_pread_url", None)
        if size_hint is not None:
            size_hint = _check_range("size_hint", operator.index(size_hint), 0,
                                     (1 << 63) - 1)
            if size_hint > _HINT_MAX:
                size_hint = None            # not allocated on a guess
        if (off == 0 and len is None and size_hint and _new_bytes is not None
                and fn is not None):
            # The common case (a dataset's whole object, its size known)
            # kept lean: one buffer, one call, no closure.
            size = ctypes.c_int64(-1)
            data = _new_bytes(None, size_hint)
            with self._guard as ctx:
                got = fn(ctx, raw, _bytes_address(data), size_hint, 0, ctypes.byref(size))
                if got < 0:
                    raise _fail(got)
            if size.value == size_hint:
                return data
            # Not the size the hint said (the bytes past what was read are
            # garbage): read again at the size just learnt.
            size_hint = size.value
        off = _check_range("off", off, 0, (1 << 63) - 1)
        if len is not None:
            len = _check_range("len", len, 0, (1 << 63) - 1)
        if fn is None or size_hint is None:
            # No size to go by: one open learns it (two one-shot calls
            # would open, so maybe HEAD, twice), and nothing is allocated
            # past the object's end.
            with self.open(url) as f:
                want = max(0, f.size - off)
                return f.pread(off, want if len is None else min(want, len))
        size = ctypes.c_int64(-1)
        psize = ctypes.byref(size)
        guess = max(0, size_hint - off)
        if len is not None:
            guess = min(guess, len)
        while True:
            with self._guard as ctx:
                def fill(address, n):
                    got = fn(ctx, raw, address, n, off, psize)
                    if got < 0:
                        raise _fail(got)
                    return got
                data = _read_bytes(guess, fill) if guess else b""
                if not guess:
                    fill(None, 0)           # the size only
            want = max(0, size.value - off)
            if len is not None:
                want = min(want, len)
            if want <= guess:
                return data                 # min(guess, size - off) bytes
            guess = want                    # the hint was short: read it all

    def read_batch(self, urls, sizes=None, threads=0, errors_as_values=False):
        """Whole objects, read concurrently (dsc_read_batch: `threads` opens
        and reads at once, 0: 16), through the node cache. Returns their
        bytes in order. sizes (known from a listing or snapshot) spare a
        first pass that learns them. A failed item raises its dsc.Error,
        or, with errors_as_values=True, stands in the list as the
        exception."""
        fn = _optional("dsc_read_batch")
        raws = [_url_bytes(u) for u in urls]
        n = len(raws)
        if n == 0:
            return []
        items = (_lib.BatchItem * n)()
        if sizes is None:
            for slot, raw in zip(items, raws):
                slot.url, slot.buf, slot.cap = raw, None, 0
            with self._guard as ctx:
                fn(ctx, items, n, threads)
            sizes = [max(0, int(it.size)) for it in items]
        sizes = [_check_range("size", operator.index(sz), 0, (1 << 63) - 1) for sz in sizes]
        if len(sizes) != n:
            raise ValueError("%d urls, %d sizes" % (n, len(sizes)))
        # Each object straight into its own bytes (see _read_bytes): no
        # zeroing, no copy. Nobody sees one before it is filled.
        if _new_bytes is not None:
            bufs = [_new_bytes(None, max(1, int(sz))) for sz in sizes]
            for slot, raw, buf, sz in zip(items, raws, bufs, sizes):
                slot.url, slot.buf, slot.cap = raw, _bytes_address(buf), sz
        else:
            bufs = [bytearray(max(1, int(sz))) for sz in sizes]
            keep = []
            for slot, raw, buf, sz in zip(items, raws, bufs, sizes):
                arr = (ctypes.c_char * len(buf)).from_buffer(buf)
                keep.append(arr)
                slot.url, slot.buf, slot.cap = raw, ctypes.addressof(arr), sz
        with self._guard as ctx:
            failed = fn(ctx, items, n, threads)
            if failed < 0:
                raise _fail(failed)
            detail = _lib.lib().dsc_errmsg().decode("utf-8", "replace") if failed else ""
        out = []
        for i, (it, buf) in enumerate(zip(items, bufs)):
            if it.status:
                code = int(it.status)
                msg = detail if detail.startswith("item %d:" % i) else "%s: %s" % (
                    _text(raws[i]), _lib.lib().dsc_strerror(code).decode())
                e = errors.from_code(code, msg)
                if not errors_as_values:
                    raise e
                out.append(e)
            elif it.size > it.cap:      # grew since its size was known: read it alone
                out.append(self.read(urls[i]))
            else:
                got = int(it.len)
                out.append(bytes(buf) if got == len(buf) else bytes(buf[:got]))
        return out

    def prefetch(self, urls):
        """Queue whole objects (a URL or an iterable of them) for background
        fetching into the node cache; returns at once with the number
        taken (queued, or found whole in the cache already: those cost a
        lookup, not a fetch). Missing objects are counted in
        stats()["prefetch_errors"]. Raises NoCache without a cache,
        QueueFull when the queue is full (the URLs before it were taken)."""
        if isinstance(urls, (str, bytes)):
            urls = [urls]
        bulk = getattr(_lib.lib(), "dsc_prefetch_urls", None)
        if bulk is None:                    # an older libdsc: one by one
            fn = _optional("dsc_prefetch_url")
            n = 0
            for url in urls:
                raw = _url_bytes(url)
                with self._guard as ctx:
                    rc = fn(ctx, raw)
                    if rc:
                        raise _fail(rc)
                n += 1
            return n
        n = 0
        taken = ctypes.c_size_t(0)
        it = iter(urls)
        while True:
            raws, bad = [], None
            for u in itertools.islice(it, 4096):
                try:
                    raws.append(_url_bytes(u))
                except (TypeError, errors.Error) as e:
                    bad = e                 # the URLs before it still go
                    break
            if raws:
                arr = (ctypes.c_char_p * len(raws))(*raws)
                with self._guard as ctx:
                    rc = bulk(ctx, arr, len(raws), ctypes.byref(taken))
                    if rc < 0:
                        raise _fail(rc)
                n += len(raws)
            if bad is not None:
                raise bad
            if not raws:
                return n

    def plan(self, items):
        """Hand libdsc the exact order of the coming reads (dsc_plan_start):
        items are URLs, or (url, offset, length) tuples (length 0 or None:
        to the end of the object). The context's fetchers then GET ahead of
        the reader, in order, keeping at most plan_window bytes (a Client
        option, default 256 MiB) fetched but not yet read; returns a Plan
        (stop it, or use it as a context manager). One plan per Client
        runs at a time: a new one replaces the old.

        The reader's position is learned from the reads of this process
        only. DataLoader workers are other processes: their reads get the
        planned chunks through the node cache, but do not move the plan,
        so a plan made in the parent stops after plan_window bytes unless
        that covers the whole order (see dsc.PlannedSampler)."""
        return Plan(self, items)

    def wait(self, timeout=None):
        """Wait for every prefetch queued so far; at most `timeout` seconds
        (None: no limit). True when all finished, False on timeout."""
        fn = _optional("dsc_prefetch_wait")
        if timeout is None:
            ms = -1
        else:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                    or math.isnan(timeout) or timeout < 0:
                raise ValueError("timeout must be None or seconds >= 0, not %r"
                                 % (timeout,))
            ms = min(math.ceil(timeout * 1000), _int_limits(ctypes.c_long)[1])
        with self._guard as ctx:
            rc = fn(ctx, ms)
            if rc == errors.ETIMEDOUT:
                return False
            if rc:
                raise _fail(rc)
        return True

    def list(self, prefix, callback=None):
        """Objects under s3://bucket/prefix, in key order, as dicts with
        url, key, size, etag and last_modified.

        Without callback: returns them as a list. With one: calls
        callback(obj) for each as pages arrive and returns how many were
        seen; callback returning False stops the listing early, and an
        exception it raises stops the listing and is re-raised."""
        raw = _url_bytes(prefix)
        found = []
        seen = 0
        stopped = False
        raised = []

        def on_object(_arg, info_ptr):
            nonlocal seen, stopped
            try:
                info = info_ptr.contents
                obj = {"url": _text(info.url), "key": _text(info.key),
                       "size": int(info.size), "etag": _text(info.etag),
                       "last_modified": _text(info.last_modified)}
                seen += 1
                if callback is None:
                    found.append(obj)
                elif callback(obj) is False:
                    stopped = True
                return 1 if stopped else 0
            except BaseException as e:  # ctypes would print and drop it
                raised.append(e)
                stopped = True
                return 1

        c_callback = _lib.LIST_CB(on_object)
        me = threading.get_ident()
        with self._guard as ctx:
            self._listing_threads.add(me)
            try:
                n = _lib.lib().dsc_list(ctx, raw, c_callback, None)
            finally:
                self._listing_threads.discard(me)
            if n < 0 and not (n == errors.ECANCELED and stopped):
                raise _fail(n)
        if raised:
            raise raised[0]
        return seen if callback is not None else found

    def use_snapshot(self, snapshot):
        """Open objects under the snapshot's bucket and prefix from it: no
        HEAD, no LIST, reads pinned to the listed versions (an object
        overwritten since raises dsc.Changed; a key it does not list,
        dsc.NotFound). snapshot: a dsc.Snapshot, a path or s3:// URL
        (loaded), or None to stop. The client keeps its own reference.
        Returns the Snapshot in use."""
        from .snapshot import Snapshot
        if snapshot is not None and not isinstance(snapshot, Snapshot):
            snapshot = Snapshot.load(self, snapshot)
        fn = _optional("dsc_ctx_use_snapshot")
        with self._guard as ctx:
            if snapshot is None:
                rc = fn(ctx, None)
            else:
                with snapshot._guard as s:
                    rc = fn(ctx, s)
            if rc:
                raise _fail(rc)
        return snapshot

    def stats(self):
        """Counters of this client and of its node cache, as a dict of the
        dsc_stats fields (cache_policy by name)."""
        st = _lib.Stats()
        with self._guard as ctx:
            rc = _lib.lib().dsc_stats_get(ctx, ctypes.byref(st), ctypes.sizeof(st))
            if rc:
                raise _fail(rc)
        out = {name: int(getattr(st, name)) for name, _ in _lib.Stats._fields_}
        names = {v: k for k, v in _lib.POLICIES.items()}
        out["cache_policy"] = names.get(out["cache_policy"], out["cache_policy"])
        return out

    def metrics(self):
        """The node cache's metrics as Prometheus text: the dsc_* series
        of `dsc-stat --prometheus` and dscd's /metrics (README, "Metrics
        and cost"), e.g. for a job's own exporter."""
        fn = _optional("dsc_metrics_text")
        cap = 16384
        with self._guard as ctx:
            while True:
                buf = ctypes.create_string_buffer(cap)
                n = fn(ctx, buf, cap)
                if n < 0:
                    raise _fail(n)
                if n < cap:
                    return buf.value.decode()
                cap = n + 4096

    @property
    def cache_dir(self):
        """The node cache directory, or None when the client has none."""
        with self._guard as ctx:
            raw = _lib.lib().dsc_cache_dir(ctx)
        return None if raw is None else os.fsdecode(raw)

    def clean_cache(self):
        """Remove crash debris from the cache directory; returns the number
        of files removed."""
        with self._guard as ctx:
            n = _lib.lib().dsc_cache_clean(ctx)
            if n < 0:
                raise _fail(n)
        return n


def _optional(name):
    L = _lib.lib()
    if not hasattr(L, name):
        raise NotImplementedError("%s: the loaded libdsc (%s) does not have it"
                                  % (name, L.dsc_version_string().decode()))
    return getattr(L, name)


def _plan_entry(item):
    """(url bytes, offset, length) of one plan item."""
    if isinstance(item, (str, bytes, bytearray)):
        return _url_bytes(item), 0, 0
    try:
        url, offset, length = item
    except (TypeError, ValueError):
        raise TypeError("a plan item is a URL or a (url, offset, length) "
                        "tuple, not %r" % (item,)) from None
    offset = _check_range("offset", offset, 0, (1 << 64) - 1)
    length = 0 if length is None else _check_range("length", length, 0, (1 << 64) - 1)
    return _url_bytes(url), offset, length


class Plan:
    """A running dsc_plan: made by Client.plan(items). len(plan) is the
    number of items; plan.position the items the reader (this process)
    has passed. stop() drops what is still queued; it runs by itself when
    the Client closes or the Plan is collected. Only the process that made
    the plan can stop it: in a forked child, stop() just forgets it (the
    plan's fetchers are the parent's threads)."""

    def __init__(self, client, items):
        self._guard = None
        fn = _optional("dsc_plan_start")
        entries = [_plan_entry(item) for item in items]
        array = (_lib.PlanItem * max(1, len(entries)))()
        for slot, (raw, offset, length) in zip(array, entries):
            slot.url, slot.off, slot.len = raw, offset, length
        handle = ctypes.c_void_p()
        with client._guard as ctx:
            rc = fn(ctx, array, len(entries), ctypes.byref(handle))
            if rc:
                raise _fail(rc)
        self._n = len(entries)
        self._pid = os.getpid()
        self._guard = _Guard(handle.value, "plan")
        self._client = client       # the context must outlive the plan
        client._plans.add(self)

    def __len__(self):
        return self._n

    def __repr__(self):
        return "<dsc.Plan %d items%s>" % (
            self._n, ", stopped" if self.stopped else ", at %d" % self.position)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass

    @property
    def stopped(self):
        return self._guard is None or self._guard.closed

    @property
    def position(self):
        """Items the reader of this process has passed (0 .. len(plan))."""
        with self._guard as p:
            return int(_lib.lib().dsc_plan_position(p))

    def stop(self):
        """Stop fetching ahead (queued fetches are dropped); calling it
        again does nothing."""
        guard = self._guard
        if guard is None:
            return
        ptr = guard.take()
        if ptr and os.getpid() == self._pid:
            _lib.lib().dsc_plan_stop(ptr)


class File(io.RawIOBase):
    """An opened S3 object: a read-only, seekable raw binary stream (works
    with io.BufferedReader, tarfile, PIL.Image.open, numpy.load).

    Sequential calls (read, readinto, seek, tell) share a position; the
    pread methods do not touch it and may run from many threads at once."""

    def __init__(self, client, url):
        super().__init__()
        self._guard = None
        raw = _url_bytes(url)
        handle = ctypes.c_void_p()
        with client._guard as ctx:
            rc = _lib.lib().dsc_open(ctx, raw, ctypes.byref(handle))
            if rc:
                raise _fail(rc)
        L = _lib.lib()
        self._size = int(L.dsc_size(handle))
        self._etag = _text(L.dsc_etag(handle))
        self._url = url if isinstance(url, str) else _text(raw)
        self._pos_lock = threading.Lock()
        self._guard = _Guard(handle.value, "file")
        self._client = client       # the context must outlive the file
        client._files.add(self)

    def __repr__(self):
        return "<dsc.File %r size=%d%s>" % (self._url, self._size,
                                             " closed" if self.closed else "")

    @property
    def url(self):
        return self._url

    @property
    def name(self):
        return self._url

    @property
    def mode(self):
        return "rb"

    @property
    def size(self):
        """Size in bytes of the opened object version."""
        return self._size

    @property
    def etag(self):
        """ETag of the opened object version, with its quotes."""
        return self._etag

    def readable(self):
        self._checkClosed()
        return True

    def write(self, data):
        raise io.UnsupportedOperation("dsc.File is read-only")

    def seekable(self):
        self._checkClosed()
        return True

    def close(self):
        guard = getattr(self, "_guard", None)
        if guard is not None:
            ptr = guard.take()
            if ptr:
                _lib.lib().dsc_close(ptr)
        super().close()

    def readinto(self, buffer):
        """Read into a writable buffer (bytearray, memoryview, numpy array:
        any C-contiguous one) without copying; returns the byte count,
        0 at the end."""
        with _Window(buffer) as (addr, n):
            if n == 0:
                self._checkClosed()
                return 0
            with self._pos_lock, self._guard as f:
                got = _lib.lib().dsc_read(f, addr, n)
                if got < 0:
                    raise _fail(got)
        return got

    def read(self, size=-1):
        """Up to size bytes from the position (all that is left when size
        is negative or None); b"" at the end."""
        if size is None:
            size = -1
        size = operator.index(size)
        with self._pos_lock, self._guard as f:
            L = _lib.lib()
            pos = L.dsc_seek(f, 0, io.SEEK_CUR)
            if pos < 0:
                raise _fail(pos)
            left = max(0, self._size - pos)
            want = left if size < 0 else min(size, left)
            if want == 0:
                return b""

            def fill(address, n):
                got = L.dsc_read(f, address, n)
                if got < 0:
                    raise _fail(got)
                return got
            return _read_bytes(want, fill)

    def readall(self):
        return self.read(-1)

    def seek(self, offset, whence=io.SEEK_SET):
        offset = operator.index(offset)
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError("invalid whence (%r, should be 0, 1 or 2)" % (whence,))
        _check_range("offset", offset, -(1 << 63), (1 << 63) - 1)
        with self._pos_lock, self._guard as f:
            pos = _lib.lib().dsc_seek(f, offset, whence)
            if pos < 0:
                raise _fail(pos)
        return pos

    def tell(self):
        return self.seek(0, io.SEEK_CUR)

    def pread_into(self, buffer, offset):
        """Read into buffer from `offset` without moving the position;
        thread-safe. Returns the byte count (fewer at the end)."""
        offset = _check_range("offset", offset, 0, (1 << 64) - 1)
        with _Window(buffer) as (addr, n):
            if n == 0:
                self._checkClosed()
                return 0
            with self._guard as f:
                got = _lib.lib().dsc_pread(f, addr, n, offset)
                if got < 0:
                    raise _fail(got)
        return got

    def pread(self, offset, size):
        """Bytes [offset, offset+size) (fewer at the end); thread-safe."""
        offset = _check_range("offset", offset, 0, (1 << 64) - 1)
        size = _check_range("size", size, 0, (1 << 63) - 1)
        want = min(size, max(0, self._size - offset))
        with self._guard as f:
            if want == 0:
                return b""
            L = _lib.lib()

            def fill(address, n):
                got = L.dsc_pread(f, address, n, offset)
                if got < 0:
                    raise _fail(got)
                return got
            return _read_bytes(want, fill)

    def prefetch(self, offset=0, length=0):
        """Queue [offset, offset+length) (length 0: to the end) for
        background fetching into the node cache; returns at once."""
        fn = _optional("dsc_prefetch")
        offset = _check_range("offset", offset, 0, (1 << 64) - 1)
        length = _check_range("length", length, 0, (1 << 64) - 1)
        with self._guard as f:
            rc = fn(f, offset, length)
            if rc:
                raise _fail(rc)

    def warm(self, offset=0, length=0):
        """Make sure [offset, offset+length) (length 0: to the end) is in
        the node cache; returns the bytes fetched from S3."""
        fn = _optional("dsc_warm")
        offset = _check_range("offset", offset, 0, (1 << 64) - 1)
        length = _check_range("length", length, 0, (1 << 64) - 1)
        with self._guard as f:
            n = fn(f, offset, length)
            if n < 0:
                raise _fail(n)
        return n


class _Window:
    """The address and length of a writable, C-contiguous buffer, pinned
    for the duration of a with block."""

    def __init__(self, buffer):
        self._view = memoryview(buffer)
        self._flat = None
        self._array = None

    def __enter__(self):
        try:
            if self._view.readonly:
                raise TypeError("readinto needs a writable buffer, not %s"
                                % type(self._view.obj).__name__)
            if not self._view.c_contiguous:
                raise TypeError("readinto needs a C-contiguous buffer")
            self._flat = self._view.cast("B")
            n = self._flat.nbytes
            if n == 0:
                return None, 0
            self._array = (ctypes.c_char * n).from_buffer(self._flat)
            return ctypes.addressof(self._array), n
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc):
        self._array = None      # drop the export before releasing the view
        if self._flat is not None:
            self._flat.release()
        self._view.release()
