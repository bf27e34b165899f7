#!/usr/bin/python3
"""dsc's fsspec filesystem (protocol "dsc") against a real s3rver, driven
the way fsspec users drive one: fsspec.open / fsspec.filesystem / url_to_fs
with storage options, open (ranged, seekable), cat_file, cat_ranges, cat,
info, ls, find, glob, exists; numpy.load, tarfile and PIL through
fsspec.open; and the reads go through the node cache.

Needs Debian's python3-fsspec (scripts/setup.sh installs it).
"""
import io
import random
import sys
import tarfile

from test_python_client import Rig, Suite, make_tar, raises, use_library_under_test

suite = Suite("python-fsspec")
test = suite.test
rig = None
files = {}          # key -> bytes, uploaded in main()


def fs_for(**extra):
    import fsspec
    opts = {"endpoint": rig.endpoint, "cache_dir": rig.cache_dir(),
            "skip_instance_cache": True}
    opts.update(extra)
    return fsspec.filesystem("dsc", **opts)


def path(key):
    return "%s/%s" % (rig.bucket, key)


@test
def import_dsc_registers_the_protocol():
    import fsspec
    import dsc
    from dsc.fs import DscFileSystem
    assert fsspec.get_filesystem_class("dsc") is DscFileSystem
    fs, p = fsspec.core.url_to_fs("dsc://%s" % path("fs/a/one.bin"),
                                  endpoint=rig.endpoint, cache_dir=rig.cache_dir())
    assert isinstance(fs, DscFileSystem) and p == path("fs/a/one.bin")
    assert isinstance(fs.client, dsc.Client)
    # A Client of the caller's is used as it is.
    with rig.client() as c:
        assert fsspec.filesystem("dsc", client=c, skip_instance_cache=True).client is c


@test
def open_reads_ranges_and_seeks():
    import fsspec
    want = files["fs/a/big.bin"]
    with fsspec.open("dsc://" + path("fs/a/big.bin"), "rb", endpoint=rig.endpoint,
                     cache_dir=rig.cache_dir()) as f:
        assert f.size == len(want)
        assert f.read(10) == want[:10]
        f.seek(300000)
        assert f.tell() == 300000 and f.read(5000) == want[300000:305000]
        f.seek(-7, io.SEEK_END)
        assert f.read() == want[-7:] and f.read() == b""
        f.seek(123)
        assert f.read() == want[123:]
    # Text mode goes through io.TextIOWrapper as fsspec does it.
    with fsspec.open("dsc://" + path("fs/a/text.txt"), "rt", endpoint=rig.endpoint,
                     cache_dir=rig.cache_dir()) as f:
        assert f.read() == files["fs/a/text.txt"].decode()
    fs = fs_for()
    raw = fs.open(path("fs/a/one.bin"), block_size=0)       # the dsc.File itself
    assert raw.read() == files["fs/a/one.bin"]
    raw.close()
    raises(PermissionError, fs.open, path("fs/a/new.bin"), "wb")
    raises(PermissionError, fs.rm, path("fs/a/one.bin"))


@test
def cat_file_cat_ranges_and_cat():
    fs = fs_for()
    big = files["fs/a/big.bin"]
    assert fs.cat_file(path("fs/a/big.bin")) == big
    assert fs.cat_file(path("fs/a/big.bin"), 100, 200) == big[100:200]
    assert fs.cat_file(path("fs/a/big.bin"), -50) == big[-50:]
    assert fs.cat_file(path("fs/a/big.bin"), 10, -10) == big[10:-10]
    assert fs.cat_file(path("fs/a/big.bin"), 5, 10 ** 9) == big[5:]
    keys = ["fs/a/big.bin", "fs/a/one.bin", "fs/b/c/deep.bin", "fs/a/missing"]
    got = fs.cat_ranges([path(k) for k in keys], [0, 1, 2, 0], [1000, None, -1, 5])
    assert got[0] == big[:1000]
    assert got[1] == files["fs/a/one.bin"][1:]
    assert got[2] == files["fs/b/c/deep.bin"][2:-1]
    assert isinstance(got[3], FileNotFoundError), got[3]
    raises(FileNotFoundError, fs.cat_ranges, [path("fs/a/missing")], [0], [1],
           on_error="raise")
    # cat of several paths / a glob: {path: bytes}
    out = fs.cat("dsc://" + path("fs/a/*.bin"))
    assert out == {path(k): v for k, v in files.items()
                   if k.startswith("fs/a/") and k.endswith(".bin")}, sorted(out)
    assert fs.cat(path("fs/a/one.bin")) == files["fs/a/one.bin"]


@test
def info_exists_ls_find_glob():
    fs = fs_for()
    info = fs.info("dsc://" + path("fs/a/big.bin"))
    assert info["type"] == "file" and info["size"] == len(files["fs/a/big.bin"])
    assert info["name"] == path("fs/a/big.bin") and info["ETag"].startswith('"')
    assert fs.info(path("fs/b"))["type"] == "directory"
    assert fs.info(rig.bucket)["type"] == "directory"
    raises(FileNotFoundError, fs.info, path("fs/nothing"))
    assert fs.exists(path("fs/a/one.bin")) and fs.exists(path("fs/b/c"))
    assert not fs.exists(path("fs/a/one.bi")) and not fs.exists(path("fs/zz"))
    assert fs.isfile(path("fs/a/one.bin")) and fs.isdir(path("fs/b"))
    assert fs.size(path("fs/a/one.bin")) == len(files["fs/a/one.bin"])
    under_a = sorted(path(k) for k in files if k.startswith("fs/a/"))
    assert fs.ls(path("fs/a"), detail=False) == under_a
    listed = fs.ls("dsc://" + path("fs"))
    assert [(e["name"], e["type"]) for e in listed] == [
        (path("fs/a"), "directory"), (path("fs/b"), "directory"),
        (path("fs/top.bin"), "file")], listed
    assert fs.ls(path("fs/a/one.bin"), detail=False) == [path("fs/a/one.bin")]
    raises(FileNotFoundError, fs.ls, path("fs/nothing"))
    everything = sorted(path(k) for k in files if k.startswith("fs/"))
    assert fs.find(path("fs")) == everything
    assert fs.find(path("fs"), maxdepth=1) == [path("fs/top.bin")]
    assert fs.find(path("fs"), maxdepth=2, withdirs=True) == sorted(
        [path("fs/a"), path("fs/b"), path("fs/b/c"), path("fs/top.bin")] + under_a)
    assert fs.find(path("fs/a/one.bin")) == [path("fs/a/one.bin")]
    detail = fs.find(path("fs/b"), detail=True)
    assert detail[path("fs/b/c/deep.bin")]["size"] == len(files["fs/b/c/deep.bin"])
    assert fs.glob("dsc://" + path("fs/a/*.bin")) == sorted(
        path(k) for k in files if k.startswith("fs/a/") and k.endswith(".bin"))
    assert fs.glob(path("fs/**/deep.bin")) == [path("fs/b/c/deep.bin")]
    assert fs.glob(path("fs/*")) == [path("fs/a"), path("fs/b"), path("fs/top.bin")]
    assert fs.glob(path("fs/a/nomatch*")) == []


@test
def numpy_tarfile_and_pil_through_fsspec_open():
    import fsspec
    import numpy as np
    from PIL import Image
    opts = {"endpoint": rig.endpoint, "cache_dir": rig.cache_dir()}
    with fsspec.open("dsc://" + path("fsdata/array.npy"), **opts) as f:
        arr = np.load(f)
    assert arr.dtype == np.float32 and arr.shape == (64, 33)
    assert (arr == np.arange(64 * 33, dtype=np.float32).reshape(64, 33)).all()
    with fsspec.open("dsc://" + path("fsdata/shard.tar"), **opts) as f:
        with tarfile.open(fileobj=f, mode="r:") as tar:     # seeks over members
            names = tar.getnames()
            data = tar.extractfile("s/001.jpg").read()
    assert names == ["s/%03d.%s" % (i, ext) for i in range(5) for ext in ("jpg", "cls")]
    assert data == shard_fields[1]["jpg"]
    with fsspec.open("dsc://" + path("fsdata/pic.png"), **opts) as f:
        img = Image.open(f)
        img.load()
    assert img.size == (40, 30) and img.getpixel((3, 4)) == (3, 4, 77)
    # fsspec.open_files over a glob, as dataset tools use it.
    opened = fsspec.open_files("dsc://" + path("fs/a/*.bin"), **opts)
    assert len(opened) == 2
    for of in opened:
        with of as f:
            assert f.read() == files[of.path[len(rig.bucket) + 1:]]


@test
def reads_go_through_the_node_cache():
    fs = fs_for(chunk_size="256KiB")
    p = path("fs/a/big.bin")
    before = fs.client.stats()
    assert fs.cat_file(p) == files["fs/a/big.bin"]
    mid = fs.client.stats()
    assert mid["misses"] > 0 and mid["hits"] == before["hits"], (before, mid)
    assert fs.cat_file(p) == files["fs/a/big.bin"]
    with fs.open(p) as f:
        f.seek(5)
        assert f.read(100) == files["fs/a/big.bin"][5:105]
    after = fs.client.stats()
    assert after["misses"] == mid["misses"] and after["hits"] > mid["hits"], (mid, after)


shard_fields = []


def upload():
    import numpy as np
    from PIL import Image
    rng = random.Random(44)
    files["fs/a/big.bin"] = rng.randbytes(700000)
    files["fs/a/one.bin"] = rng.randbytes(1000)
    files["fs/a/text.txt"] = "línea ✓\n".encode() * 20
    files["fs/b/c/deep.bin"] = rng.randbytes(3000)
    files["fs/top.bin"] = rng.randbytes(10)
    buf = io.BytesIO()
    np.save(buf, np.arange(64 * 33, dtype=np.float32).reshape(64, 33))
    files["fsdata/array.npy"] = buf.getvalue()
    samples = []
    for i in range(5):
        fields = {"jpg": rng.randbytes(rng.randrange(100, 30000)), "cls": b"%d" % i}
        shard_fields.append(fields)
        samples.append(("s/%03d" % i, fields))
    files["fsdata/shard.tar"] = make_tar(samples)
    img = Image.new("RGB", (40, 30))
    for x in range(40):
        for y in range(30):
            img.putpixel((x, y), (x, y, 77))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    files["fsdata/pic.png"] = buf.getvalue()
    for key, data in files.items():
        rig.put(key, data)


def main():
    global rig
    use_library_under_test()
    try:
        import fsspec  # noqa: F401
    except ImportError as e:
        print("test_python_fsspec: fsspec cannot be imported (%s); install "
              "Debian's python3-fsspec (scripts/setup.sh does)" % e)
        print("python-fsspec: 0 passed, 1 failed")
        return 1
    rig = Rig("fsspec")
    upload()
    return suite.run()


if __name__ == "__main__":
    sys.exit(main())
