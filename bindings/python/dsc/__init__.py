"""dsc: cached reading of datasets in S3, over libdsc (ctypes, standard
library only).

    import dsc
    with dsc.Client(cache_dir="/local/dsc", cache_size="20G") as client:
        with client.open("s3://bucket/train/shard-0001.tar") as f:
            header = f.read(512)
        data = client.read("s3://bucket/train/labels.json")

libdsc is found through DSC_LIBRARY (a path), else next to this package,
else in the lib/ folder of the libdsc checkout holding this package, else
on the system's library path.
"""
from . import _lib
from .client import Client, File, Plan, parse_size
from .snapshot import Snapshot, SnapshotDiff
from .data import (MapDataset, PlannedSampler, TarShards, reading_order,
                   split_member_name)
from .sampling import (DistributedSampler, Rng, StatefulLoader, permutation,
                       world)
from .errors import (
    Error, InvalidArgument, OutOfMemory, InvalidURL, NotFound, AccessDenied,
    CredentialsError, Timeout, NetworkError, Throttled, ServerError,
    ProtocolError, Changed, LocalIOError, Canceled, HTTPError, QueueFull,
    NoCache)

__all__ = [
    "Client", "File", "Plan", "Snapshot", "SnapshotDiff", "MapDataset", "PlannedSampler", "TarShards",
    "TorchTarShards", "version", "library_path", "parse_size", "reading_order",
    "split_member_name", "DistributedSampler", "StatefulLoader", "Rng",
    "permutation", "world",
    "Error", "InvalidArgument", "OutOfMemory", "InvalidURL", "NotFound",
    "AccessDenied", "CredentialsError", "Timeout", "NetworkError",
    "Throttled", "ServerError", "ProtocolError", "Changed", "LocalIOError",
    "Canceled", "HTTPError", "QueueFull", "NoCache",
]

try:        # fsspec.open("dsc://bucket/key") reads through libdsc
    import fsspec as _fsspec
except ImportError:
    _fsspec = None
else:
    _fsspec.register_implementation("dsc", "dsc.fs.DscFileSystem", clobber=True)


def version():
    """Version of the loaded libdsc, "MAJOR.MINOR.PATCH"."""
    return _lib.lib().dsc_version_string().decode()


def library_path():
    """File name libdsc was loaded from."""
    return _lib.lib()._name


def __getattr__(name):
    # The package is libdsc's binding: its version is the loaded library's
    # (written once, in include/dsc.h), asked for only when wanted.
    if name == "__version__":
        return version()
    # Built on first use: it derives from torch's IterableDataset, and
    # importing torch costs seconds that users of the rest should not pay.
    if name == "TorchTarShards":
        from .data import _make_torch_tar_shards
        cls = _make_torch_tar_shards()
        globals()[name] = cls
        return cls
    raise AttributeError("module 'dsc' has no attribute %r" % name)
