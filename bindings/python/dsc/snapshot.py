"""dsc.Snapshot: a dataset's objects (key, size, ETag) listed once, over
dsc_snapshot_* (include/dsc.h; the file format is docs/SNAPSHOT.md).

    snap = dsc.Snapshot.list(client, "s3://bucket/train/")
    snap.save("train.dsnap")                 # atomically
    client = dsc.Client(snapshot="train.dsnap")   # or s3://bucket/train.dsnap
    # opens of s3://bucket/train/... now send no HEAD and no LIST, and read
    # only the listed version of each object (else dsc.Changed)
"""
import ctypes
import os

from . import _lib
from . import errors
from .client import Client, _Guard, _fail, _optional, _text, _url_bytes


class SnapshotDiff:
    """What changed between two snapshots: lists of keys (key order)
    changed (other size or ETag), deleted (only in the older), added (only
    in the newer), and `same`, the number of unchanged objects.
    str() gives "3 changed, 1 deleted, 2 new"."""

    def __init__(self, changed, deleted, added, same):
        self.changed, self.deleted, self.added, self.same = changed, deleted, added, same

    @property
    def counts(self):
        return {"changed": len(self.changed), "deleted": len(self.deleted),
                "added": len(self.added), "same": self.same}

    def __bool__(self):
        return bool(self.changed or self.deleted or self.added)

    def __str__(self):
        return "%d changed, %d deleted, %d new" % (
            len(self.changed), len(self.deleted), len(self.added))

    def __repr__(self):
        return "<dsc.SnapshotDiff %s, %d same>" % (self, self.same)


def _src_bytes(src):
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    if isinstance(src, str) and src.startswith("s3://"):
        return _url_bytes(src)
    if not isinstance(src, (str, bytes)):
        raise TypeError("a snapshot source is a path or an s3:// URL, not %s"
                        % type(src).__name__)
    raw = os.fsencode(src)
    if b"\0" in raw:
        raise errors.InvalidArgument(errors.EINVAL, "%r contains a NUL character" % src)
    return raw


class Snapshot:
    """An immutable list of a prefix's objects at one moment. len(),
    iteration ((key, size, etag) in key order), `key in snap`, snap[i],
    urls(), save(path), diff(other). Made by Snapshot.list or
    Snapshot.load; Client.use_snapshot (or Client(snapshot=...)) makes a
    client open its objects from it. Thread-safe; survives fork()."""

    def __init__(self, handle):
        self._guard = _Guard(handle, "snapshot")

    @classmethod
    def list(cls, client, url):
        """List s3://bucket/prefix once through client."""
        fn = _optional("dsc_snapshot_list")
        out = ctypes.c_void_p()
        raw = _url_bytes(url)
        with client._guard as ctx:
            rc = fn(ctx, raw, ctypes.byref(out))
            if rc:
                raise _fail(rc)
        return cls(out.value)

    @classmethod
    def load(cls, client, src):
        """Load a snapshot file: a local path, or an s3:// URL read through
        client (which may be None for a path). A truncated, corrupt or
        foreign file raises dsc.InvalidArgument naming it."""
        fn = _optional("dsc_snapshot_load")
        raw = _src_bytes(src)
        out = ctypes.c_void_p()
        if client is None:
            rc = fn(None, raw, ctypes.byref(out))
            if rc:
                raise _fail(rc)
        else:
            with client._guard as ctx:
                rc = fn(ctx, raw, ctypes.byref(out))
                if rc:
                    raise _fail(rc)
        return cls(out.value)

    def save(self, path):
        """Write to path atomically (temporary file, fsync, rename)."""
        raw = _src_bytes(path)
        with self._guard as s:
            rc = _lib.lib().dsc_snapshot_save(s, raw)
            if rc:
                raise _fail(rc)

    def _summary(self):
        m = _lib.SnapshotSummary()
        with self._guard as s:
            _lib.lib().dsc_snapshot_summarize(s, ctypes.byref(m), ctypes.sizeof(m))
            return {name: (_text(v) if isinstance(v, bytes) else int(v))
                    for name, v in ((n, getattr(m, n)) for n, _ in m._fields_)}

    @property
    def url(self):
        return self._summary()["url"]

    @property
    def bucket(self):
        return self._summary()["bucket"]

    @property
    def prefix(self):
        return self._summary()["prefix"]

    @property
    def origin(self):
        """The S3 endpoint it was listed from."""
        return self._summary()["origin"]

    @property
    def created_ms(self):
        """When it was listed, Unix milliseconds."""
        return self._summary()["created_ms"]

    @property
    def bytes(self):
        """Sum of the objects' sizes."""
        return self._summary()["bytes"]

    @property
    def file_bytes(self):
        return self._summary()["file_bytes"]

    @property
    def versioned(self):
        """Listed by versions: reads are pinned to version ids."""
        return bool(self._summary()["versioned"])

    def version_id(self, i):
        """The version id entry i was listed at, or None."""
        with self._guard as s:
            v = _lib.lib().dsc_snapshot_version_id(s, i)
        return None if v is None else _text(v)

    def __len__(self):
        with self._guard as s:
            return int(_lib.lib().dsc_snapshot_count(s))

    def _entry(self, s, i):
        info = _lib.ObjectInfo()
        rc = _lib.lib().dsc_snapshot_get(s, i, ctypes.byref(info))
        if rc:
            raise _fail(rc)
        return _text(info.key), int(info.size), _text(info.etag)

    def __getitem__(self, i):
        n = len(self)
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(n))]
        i = i.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("snapshot index out of range")
        with self._guard as s:
            return self._entry(s, i)

    def __iter__(self):
        with self._guard as s:
            n = int(_lib.lib().dsc_snapshot_count(s))
        for i in range(n):
            with self._guard as s:
                yield self._entry(s, i)

    def __contains__(self, key):
        return self.find(key) is not None

    def find(self, key):
        """Index of key (not a URL), or None."""
        raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        with self._guard as s:
            i = _lib.lib().dsc_snapshot_find(s, raw)
        return None if i < 0 else int(i)

    def urls(self):
        """s3:// URLs of the objects, in key order."""
        head = "s3://%s/" % self.bucket
        return [head + key for key, _, _ in self]

    def diff(self, newer):
        """SnapshotDiff from this (older) snapshot to `newer`."""
        changed, deleted, added = [], [], []
        lists = {_lib.DIFF_CHANGED: changed, _lib.DIFF_DELETED: deleted,
                 _lib.DIFF_ADDED: added}
        raised = []

        def on_diff(_arg, what, a, b):
            try:
                info = (b if b else a).contents
                lists[what].append(_text(info.key))
                return 0
            except BaseException as e:   # ctypes would print and drop it
                raised.append(e)
                return 1

        cb = _lib.DIFF_CB(on_diff)
        d = _lib.SnapshotDelta()
        with self._guard as s, newer._guard as t:
            rc = _lib.lib().dsc_snapshot_diff_each(s, t, cb, None, ctypes.byref(d))
            if raised:
                raise raised[0]
            if rc:
                raise _fail(rc)
        return SnapshotDiff(changed, deleted, added, int(d.same))

    def close(self):
        """Release it (clients using it keep their own reference)."""
        if getattr(self, "_guard", None) is None:
            return
        ptr = self._guard.take()
        if ptr:
            _lib.lib().dsc_snapshot_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a dsc.Snapshot cannot be pickled; save() it and pass "
                        "the path or s3:// URL instead")

    def __repr__(self):
        if self._guard.closed:
            return "<dsc.Snapshot closed>"
        return "<dsc.Snapshot %s, %d objects>" % (self.url, len(self))
