"""An fsspec filesystem for the "dsc" protocol: dsc://bucket/key is
s3://bucket/key read through libdsc's node cache. Read-only.

    import fsspec, dsc
    with fsspec.open("dsc://bucket/train/x.npy") as f:   # registered by `import dsc`
        arr = numpy.load(f)
    fs = fsspec.filesystem("dsc", endpoint="http://127.0.0.1:9000")
    fs.glob("bucket/train/*.tar"); fs.cat_ranges(paths, starts, ends)

Options (storage_options / fsspec.filesystem keywords): client=a dsc.Client,
or dsc.Client keywords (endpoint, cache_dir, ...) for a client of its own.
Keys are listed with libdsc's listing (no delimiter): a "directory" is a
key prefix up to a "/", as s3fs shows them.
"""
import concurrent.futures

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from . import errors
from .client import Client, CONFIG_KEYS


class DscFile(AbstractBufferedFile):
    """fsspec's buffered file over a dsc.File: ranged, seekable reads
    (pread), with fsspec's read-ahead cache in front."""

    def __init__(self, fs, path, raw, block_size=None, cache_type="readahead",
                 cache_options=None, **kwargs):
        self.raw = raw
        super().__init__(fs, path, mode="rb", block_size=block_size,
                         cache_type=cache_type, cache_options=cache_options,
                         size=raw.size, **kwargs)

    def _fetch_range(self, start, end):
        return self.raw.pread(start, max(0, end - start))

    def close(self):
        if not self.closed:
            super().close()
        self.raw.close()


def _s3(path):
    return "s3://" + path


class DscFileSystem(AbstractFileSystem):
    """fsspec filesystem over a dsc.Client (module docstring)."""

    protocol = "dsc"
    root_marker = ""
    blocksize = 1 << 20         # fsspec's read-ahead: objects are read from the node cache
    DEFAULT_WORKERS = 16

    def __init__(self, client=None, **options):
        client_opts = {k: options.pop(k) for k in list(options) if k in CONFIG_KEYS}
        super().__init__(**options)
        if client is not None and client_opts:
            raise TypeError("give client or Client options, not both")
        self.client = client if client is not None else Client(**client_opts)

    # -- names ---------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        for proto in ("dsc://", "dsc::", "s3://"):
            if path.startswith(proto):
                path = path[len(proto):]
                break
        return path.rstrip("/")

    def unstrip_protocol(self, name):
        return name if name.startswith("dsc://") else "dsc://" + name

    @staticmethod
    def _split(path):
        bucket, _, key = path.partition("/")
        return bucket, key

    # -- metadata ------------------------------------------------------
    def _listing(self, path):
        """Every object under path/ (a bucket or a key prefix), as fsspec
        info dicts, in key order."""
        bucket, key = self._split(path)
        prefix = "s3://%s/%s" % (bucket, key + "/" if key else "")
        return [self._file_info(o) for o in self.client.list(prefix)]

    @staticmethod
    def _file_info(obj):
        return {"name": obj["url"][len("s3://"):], "size": obj["size"],
                "type": "file", "ETag": obj["etag"],
                "LastModified": obj.get("last_modified")}

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        files = self._listing(path)
        if not files:
            info = self.info(path)          # FileNotFoundError when nothing is there
            return [info] if detail else [info["name"]]
        base = path + "/" if path else ""
        out, dirs = [], set()
        for f in files:
            rest = f["name"][len(base):]
            if "/" in rest:
                d = base + rest.split("/", 1)[0]
                if d not in dirs:
                    dirs.add(d)
                    out.append({"name": d, "size": 0, "type": "directory"})
            else:
                out.append(f)
        out.sort(key=lambda e: e["name"])
        return out if detail else [e["name"] for e in out]

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        """Everything under path in one listing (fsspec's default walks
        directory by directory, a listing each)."""
        path = self._strip_protocol(path)
        out = {}
        base = path + "/" if path else ""
        for f in self._listing(path):
            rest = f["name"][len(base):]
            parts = rest.split("/")
            deep = maxdepth is not None and len(parts) > maxdepth
            if not deep:
                out[f["name"]] = f
            if withdirs:
                for i in range(1, min(len(parts) - 1, maxdepth or len(parts)) + 1):
                    d = base + "/".join(parts[:i])
                    out.setdefault(d, {"name": d, "size": 0, "type": "directory"})
        if not out and path:
            try:
                info = self.info(path)
                if info["type"] == "file":
                    out[path] = info
            except FileNotFoundError:
                pass
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not bucket:
            raise FileNotFoundError("dsc://: no bucket")
        if key:
            try:
                with self.client.open(_s3(path)) as f:
                    return {"name": path, "size": f.size, "type": "file", "ETag": f.etag}
            except errors.NotFound:
                pass
        # A directory: any key under path/ (one LIST that stops at the
        # first). A missing bucket raises dsc.NotFound, a FileNotFoundError.
        prefix = "s3://%s/%s" % (bucket, key + "/" if key else "")
        found = []

        def first(obj):
            found.append(obj)
            return False
        self.client.list(prefix, first)
        if found or not key:
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def ukey(self, path):
        return self.info(path).get("ETag") or super().ukey(path)

    def checksum(self, path):
        return int(self.ukey(path).strip('"').split("-")[0][:16] or "0", 16)

    # -- reading -------------------------------------------------------
    def _open(self, path, mode="rb", block_size=None, autocommit=True,
              cache_options=None, cache_type="readahead", **kwargs):
        if mode != "rb":
            raise PermissionError("dsc:// is read-only (mode %r)" % mode)
        path = self._strip_protocol(path)
        raw = self.client.open(_s3(path))
        if block_size == 0:             # no fsspec cache: the dsc.File itself
            return raw
        return DscFile(self, path, raw, block_size=block_size or self.blocksize,
                       cache_type=cache_type, cache_options=cache_options)

    @staticmethod
    def _bounds(start, end, size):
        start = 0 if start is None else (max(0, size + start) if start < 0 else start)
        end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        return start, max(start, end)

    def cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        with self.client.open(_s3(path)) as f:
            lo, hi = self._bounds(start, end, f.size)
            return f.pread(lo, hi - lo)

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return",
                   **kwargs):
        """Byte ranges of many objects at once: reads run on threads (the
        GIL is released in libdsc), so their GETs overlap. on_error
        "return" puts the exception in the list, else the first raises."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        n = len(paths)
        starts = starts if isinstance(starts, list) else [starts] * n
        ends = ends if isinstance(ends, list) else [ends] * n
        if len(starts) != n or len(ends) != n:
            raise ValueError("paths, starts and ends differ in length")

        def one(i):
            try:
                return self.cat_file(paths[i], starts[i], ends[i])
            except Exception as e:      # noqa: BLE001 - returned per fsspec's API
                if on_error != "return":
                    raise
                return e
        if n <= 1:
            return [one(i) for i in range(n)]
        with concurrent.futures.ThreadPoolExecutor(min(n, self.DEFAULT_WORKERS)) as ex:
            return list(ex.map(one, range(n)))

    def cat(self, path, recursive=False, on_error="raise", **kwargs):
        paths = self.expand_path(path, recursive=recursive)
        if len(paths) > 1 or isinstance(path, list) or paths[0] != self._strip_protocol(path):
            got = self.cat_ranges(paths, None, None, on_error="return")
            out = {}
            for p, v in zip(paths, got):
                if isinstance(v, Exception):
                    if on_error == "raise":
                        raise v
                    if on_error == "omit":
                        continue
                out[p] = v
            return out
        return self.cat_file(paths[0])

    # -- read-only -----------------------------------------------------
    def _readonly(self, *args, **kwargs):
        raise PermissionError("dsc:// is read-only")

    mkdir = makedirs = rm = rm_file = rmdir = mv = cp_file = put_file = \
        pipe_file = touch = _readonly


def register(clobber=True):
    """Register DscFileSystem for "dsc" with fsspec (import dsc does)."""
    import fsspec
    fsspec.register_implementation("dsc", DscFileSystem, clobber=clobber)


__all__ = ["DscFileSystem", "DscFile", "register"]
