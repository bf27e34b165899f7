"""Datasets over libdsc for training loops (PyTorch's DataLoader or any
other). Nothing here imports torch: it is looked up only when a DataLoader
worker may be asking, and TorchTarShards is built on first access."""
import io
import operator
import re
import sys
import tarfile

from .client import Client


def _client(client):
    if client is None:
        return Client()
    if isinstance(client, dict):
        return Client(**client)
    if isinstance(client, Client):
        return client
    raise TypeError("client must be a dsc.Client, a dict of its options or "
                    "None, not %s" % type(client).__name__)


def _url_list(urls, client):
    if isinstance(urls, str):       # a prefix: everything under it
        return [obj["url"] for obj in client.list(urls)]
    out = list(urls)
    for u in out:
        if not isinstance(u, str):
            raise TypeError("URLs must be str, not %s" % type(u).__name__)
    return out


class MapDataset:
    """A map-style dataset: item i is the bytes of urls[i], or
    transform(bytes). `urls` is a sequence of s3:// URLs, or one string
    naming a prefix whose objects (in key order) are the items.

    Make it in the parent process, before the DataLoader forks its
    workers: the workers share its Client (and the node cache)."""

    def __init__(self, urls, transform=None, client=None):
        self.client = _client(client)
        self.urls = _url_list(urls, self.client)
        self.transform = transform

    def __len__(self):
        return len(self.urls)

    def __getitem__(self, index):
        data = self.client.read(self.urls[operator.index(index)])
        return data if self.transform is None else self.transform(data)


# WebDataset's naming: "dir/name.seg.jpg" is key "dir/name", field "seg.jpg";
# a name without a dot in its last part, or starting with one, is no field.
_MEMBER_RE = re.compile(r"((?:.*/)?[^./]+)\.([^/]*)", re.DOTALL)


def split_member_name(name):
    """(key, field) of a tar member name, or (None, None) when it has no
    extension (WebDataset skips such members)."""
    m = _MEMBER_RE.fullmatch(name)
    return (m.group(1), m.group(2)) if m else (None, None)


def _worker_share(items):
    """The part of items that this DataLoader worker should take (all of
    them outside a worker)."""
    torch_data = sys.modules.get("torch.utils.data")
    info = torch_data.get_worker_info() if torch_data is not None else None
    return items if info is None else items[info.id::info.num_workers]


class TarShards:
    """Samples of WebDataset-style .tar shards, shard after shard.

    Members with the same key in a row form one sample:
    {"__key__": key, "__url__": shard URL, "jpg": bytes, "cls": bytes, ...}.
    Iterating inside a DataLoader worker yields only that worker's shards
    (shard i goes to worker i % num_workers). `urls` is a sequence of
    shard URLs or a prefix string. A shard that cannot be read or parsed
    raises (dsc.Error, tarfile.TarError)."""

    def __init__(self, urls, client=None, transform=None,
                 buffer_size=1 << 20):
        self.client = _client(client)
        self.urls = _url_list(urls, self.client)
        self.transform = transform
        self.buffer_size = buffer_size

    def __iter__(self):
        for url in _worker_share(self.urls):
            yield from self.samples(url)

    def samples(self, url):
        """The samples of one shard, in order."""
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
                    yield self._finish(sample)
                    sample = None
                if sample is None:
                    sample = {"__key__": key, "__url__": url}
                if field in sample:
                    raise ValueError("%s: %s.%s appears twice in a row"
                                     % (url, key, field))
                sample[field] = tar.extractfile(member).read()
            if sample is not None:
                yield self._finish(sample)

    def _finish(self, sample):
        return sample if self.transform is None else self.transform(sample)


def _make_torch_tar_shards():
    from torch.utils.data import IterableDataset

    class TorchTarShards(TarShards, IterableDataset):
        """TarShards as a torch.utils.data.IterableDataset, so DataLoader
        iterates it (each worker its own shards)."""

    TorchTarShards.__module__ = "dsc"
    return TorchTarShards
