#!/usr/bin/python3
"""Snapshots from Python (dsc.Snapshot over dsc_snapshot_*): list, save,
load (path and s3://), iterate, diff; Client(snapshot=...) and
Client.use_snapshot; an overwrite after the snapshot raises dsc.Changed
naming the object; MapDataset and PlannedSampler from a snapshot, in a
2-worker DataLoader, with 0 HEAD and 0 LIST by our counters and s3rver's
log.

Run through tests/run.sh (s3rver, fixtures), with /usr/bin/python3
(Debian's python3-boto3 and python3-torch).
"""
import os
import pickle
import random
import sys
import time
from pathlib import Path

from test_python_client import Rig, Suite, env, raises, use_library_under_test

suite = Suite("python-snapshot")
test = suite.test
rig = None


def uploaded(prefix, count, size=5000):
    """{url: bytes} of count objects named prefix-NNN.bin."""
    rng = random.Random(prefix)
    out = {}
    for i in range(count):
        data = rng.randbytes(size + i)
        out[rig.put("%s-%03d.bin" % (prefix, i), data)] = data
    return out


def server_log_lines(*needles):
    """s3rver log lines holding every needle, once the log is quiet."""
    path = Path(env("DSC_TEST_S3RVER_LOG"))
    size, deadline = -1, time.time() + 10
    while path.stat().st_size != size and time.time() < deadline:
        size = path.stat().st_size
        time.sleep(0.3)
    return sum(all(n in line for n in needles)
               for line in path.read_text(errors="replace").splitlines())


def server_meta(marker):
    """(listings, HEADs of keys holding marker) s3rver has answered; libdsc
    reads with ranged GETs (206), so a 200 for such a key is a HEAD."""
    return server_log_lines("Fetched bucket"), server_log_lines(marker, " 200 ")


@test
def snapshot_list_save_load_iterate():
    import dsc
    data = uploaded("py/snap/api/o", 12)
    prefix = rig.url("py/snap/api/")
    with rig.client() as c:
        listed = c.list(prefix)
        snap = dsc.Snapshot.list(c, prefix)
        assert len(snap) == 12 and snap.url == prefix and snap.bucket == rig.bucket
        assert snap.prefix == "py/snap/api/" and snap.origin.startswith(rig.endpoint)
        assert snap.bytes == sum(len(v) for v in data.values())
        assert list(snap) == [(o["key"], o["size"], o["etag"]) for o in listed]
        assert snap.urls() == sorted(data)
        assert snap[0] == snap[-12] and snap[1:3] == list(snap)[1:3]
        raises(IndexError, lambda: snap[12])
        assert "py/snap/api/o-003.bin" in snap and snap.find("py/snap/api/o-003.bin") == 3
        assert "nope" not in snap and snap.find("nope") is None
        assert "12 objects" in repr(snap)
        path = os.path.join(rig.tmp, "api.dsnap")
        snap.save(path)
        back = dsc.Snapshot.load(None, Path(path))
        assert list(back) == list(snap) and back.file_bytes == os.path.getsize(path)
        assert not snap.diff(back) and snap.diff(back).same == 12
        # One file for every rank: from S3.
        rig.put("py/snapfiles/api.dsnap", Path(path).read_bytes())
        remote = dsc.Snapshot.load(c, rig.url("py/snapfiles/api.dsnap"))
        assert list(remote) == list(snap)
        raises(TypeError, pickle.dumps, snap)
        snap.close()
        snap.close()
        raises(ValueError, len, snap)


@test
def snapshot_diff_counts_and_keys():
    import dsc
    uploaded("py/snap/diff/o", 6)
    prefix = rig.url("py/snap/diff/")
    with rig.client() as c:
        old = dsc.Snapshot.list(c, prefix)
        for i in (0, 1, 2):
            rig.put("py/snap/diff/o-%03d.bin" % i, b"new %d" % i)
        rig.s3.delete_object(Bucket=rig.bucket, Key="py/snap/diff/o-005.bin")
        rig.put("py/snap/diff/o-006.bin", b"6")
        rig.put("py/snap/diff/o-007.bin", b"7")
        d = old.diff(dsc.Snapshot.list(c, prefix))
        assert str(d) == "3 changed, 1 deleted, 2 new", str(d)
        assert d.changed == ["py/snap/diff/o-%03d.bin" % i for i in (0, 1, 2)]
        assert d.deleted == ["py/snap/diff/o-005.bin"]
        assert d.added == ["py/snap/diff/o-006.bin", "py/snap/diff/o-007.bin"]
        assert d.counts == {"changed": 3, "deleted": 1, "added": 2, "same": 2}


@test
def bad_snapshot_files_raise_naming_the_file():
    import dsc
    with rig.client() as c:
        snap = dsc.Snapshot.list(c, rig.url("epoch/"))
    path = os.path.join(rig.tmp, "bad.dsnap")
    snap.save(path)
    good = Path(path).read_bytes()
    for cut, why in ((10, "truncated"), (len(good) - 1, "truncated")):
        Path(path).write_bytes(good[:cut])
        e = raises(dsc.InvalidArgument, dsc.Snapshot.load, None, path)
        assert path in str(e) and why in str(e), str(e)
    Path(path).write_bytes(good[:8] + bytes([99]) + good[9:])
    e = raises(dsc.InvalidArgument, dsc.Snapshot.load, None, path)
    assert "format version 99" in str(e), str(e)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 1
    Path(path).write_bytes(bytes(flipped))
    e = raises(dsc.InvalidArgument, dsc.Snapshot.load, None, path)
    assert "checksum mismatch" in str(e), str(e)
    e = raises(dsc.InvalidArgument, rig.client, snapshot=path)
    assert path in str(e)
    raises(dsc.LocalIOError, dsc.Snapshot.load, None, path + ".missing")
    raises(TypeError, dsc.Snapshot.load, None, 5)


@test
def client_with_snapshot_opens_without_head_or_list():
    import dsc
    data = uploaded("py/snap/cfg/o", 8)
    prefix = rig.url("py/snap/cfg/")
    with rig.client() as c:
        snap = dsc.Snapshot.list(c, prefix)
    path = os.path.join(rig.tmp, "cfg.dsnap")
    snap.save(path)
    before = server_meta("/o-0")
    for source in (path, Path(path), snap):
        with rig.client(snapshot=source, meta_ttl_ms=0) as c:
            for url, want in data.items():
                assert c.read(url) == want
            st = c.stats()
            assert (st["s3_heads"], st["s3_lists"]) == (0, 0), st
            # A key under the prefix that the snapshot does not list.
            e = raises(dsc.NotFound, c.open, prefix + "o-999.bin")
            assert "not in the snapshot" in str(e)
            # Stop using it: the next open asks S3.
            assert c.use_snapshot(None) is None
            c.read(rig.url("py/snap/cfg/o-000.bin"))
            assert c.stats()["s3_heads"] == 1
    assert server_meta("/o-0") == (before[0], before[1] + 3)
    with rig.client(meta_ttl_ms=0) as c:
        used = c.use_snapshot(path)
        assert isinstance(used, dsc.Snapshot) and len(used) == 8
        c.read(rig.url("py/snap/cfg/o-001.bin"))
        assert c.stats()["s3_heads"] == 0
    raises(TypeError, rig.client, snapshot=42)


@test
def overwrite_after_snapshot_raises_changed():
    import dsc
    url = rig.put("py/snap/ow/obj", b"a" * 300000)
    with rig.client(chunk_size="64KiB", readahead_max=0) as c:
        c.use_snapshot(dsc.Snapshot.list(c, rig.url("py/snap/ow/")))
        with c.open(url) as f:
            assert f.pread(0, 10) == b"a" * 10         # chunk 0 cached
        rig.put("py/snap/ow/obj", b"b" * 300000)
        with c.open(url) as f:
            assert f.pread(0, 10) == b"a" * 10         # the pinned version
            e = raises(dsc.Changed, f.pread, 200000, 10)
            assert url + " changed since the snapshot" in str(e), str(e)


@test
def dataset_and_sampler_from_a_snapshot():
    try:
        import torch
        from torch.utils.data import DataLoader, RandomSampler
    except ImportError as e:
        raise AssertionError("torch cannot be imported (%s): install python3-torch" % e)
    import warnings
    import dsc
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    data = uploaded("py/snap/dl/s", 40)
    with rig.client() as c:
        snap = dsc.Snapshot.list(c, rig.url("py/snap/dl/"))
    path = os.path.join(rig.tmp, "dl.dsnap")
    snap.save(path)
    before = server_meta("/s-0")
    for source in (snap, path):
        with rig.client(meta_ttl_ms=0) as c:
            ds = dsc.MapDataset(snapshot=source, client=c)
            assert ds.urls == sorted(data) and len(ds) == 40
            g = torch.Generator()
            g.manual_seed(3)
            sampler = dsc.PlannedSampler(ds, RandomSampler(ds, generator=g),
                                         batch_size=4, num_workers=2)

            class Indexed:
                def __len__(self):
                    return len(ds)

                def __getitem__(self, i):
                    return i, ds[i]

            loader = DataLoader(Indexed(), batch_size=4, sampler=sampler,
                                num_workers=2, timeout=120)
            seen = []
            for indices, payloads in loader:
                for i, payload in zip(indices.tolist(), payloads):
                    assert payload == data[ds.urls[i]]
                    seen.append(i)
            assert sorted(seen) == list(range(40))
            st = c.stats()
            assert (st["s3_heads"], st["s3_lists"]) == (0, 0), st
    # The workers' requests too: s3rver saw no listing and no HEAD.
    assert server_meta("/s-0") == before, (server_meta("/s-0"), before)
    with rig.client() as c:
        shards = dsc.TarShards(snapshot=path, client=c)
        assert shards.urls == sorted(data)
        raises(TypeError, dsc.MapDataset, [rig.url("x")], client=c, snapshot=path)
        raises(TypeError, dsc.MapDataset, client=c)


def main():
    global rig
    use_library_under_test()
    rig = Rig("python-snapshot")
    import dsc
    if not dsc._lib.has("dsc_snapshot_list"):
        print("python-snapshot: the library has no dsc_snapshot_list; rebuild it")
        print("python-snapshot: 0 passed, 1 failed")
        return 1
    return suite.run()


if __name__ == "__main__":
    sys.exit(main())
