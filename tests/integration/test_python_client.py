#!/usr/bin/python3
"""The Python package (bindings/python) against a real s3rver: every call
of the API, every byte compared with what boto3 uploaded, and the file
object under tarfile, PIL and numpy.

Run through tests/run.sh (it starts s3rver and uploads the fixtures), with
Debian's /usr/bin/python3 (python3-boto3, python3-numpy, python3-pil).
The library under test is $OUT/libdsc.so.0 (OUT defaults to lib); an
AddressSanitizer build is run with the sanitizer preloaded.
"""
import ctypes
import errno
import gc
import hashlib
import io
import multiprocessing
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))


def use_library_under_test():
    """Point the package at the build under test; preload ASan when that
    build has it (python itself is not instrumented)."""
    if "DSC_LIBRARY" not in os.environ:
        os.environ["DSC_LIBRARY"] = str(ROOT / os.environ.get("OUT", "lib")
                                        / "libdsc.so.0")
    lib = Path(os.environ["DSC_LIBRARY"])
    if b"libasan.so" in lib.read_bytes() and "LD_PRELOAD" not in os.environ:
        runtimes = [subprocess.check_output(["cc", "-print-file-name=" + name],
                                            text=True).strip()
                    for name in ("libasan.so", "libubsan.so")]
        env = dict(os.environ, LD_PRELOAD=" ".join(runtimes),
                   # CPython frees little at exit: leak reports would be noise.
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit("%s is not set: run through tests/run.sh" % name)
    return value


class Rig:
    """The test server, boto3 for uploads, fixtures and scratch space."""

    def __init__(self, name):
        import boto3
        from botocore.config import Config
        self.endpoint = env("DSC_TEST_ENDPOINT")
        self.bucket = env("DSC_TEST_BUCKET")
        self.tmp = tempfile.mkdtemp(prefix=name + "-", dir=env("DSC_TEST_STATE"))
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="S3RVER",
            aws_secret_access_key="S3RVER", region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}))
        self._caches = 0

    def url(self, key):
        return "s3://%s/%s" % (self.bucket, key)

    def put(self, key, data):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return self.url(key)

    def cache_dir(self):
        self._caches += 1
        return os.path.join(self.tmp, "cache-%d" % self._caches)

    def client(self, cache=True, **config):
        import dsc
        config.setdefault("endpoint", self.endpoint)
        config.setdefault("cache_dir", self.cache_dir() if cache else "")
        return dsc.Client(**config)

    def fixtures(self):
        """{key: bytes} of what fixtures.py uploaded."""
        out = {}
        manifest = Path(env("DSC_TEST_FIXTURES")) / "manifest.tsv"
        for line in manifest.read_text().splitlines():
            url, path, size = line.split("\t")
            data = Path(path).read_bytes()
            assert len(data) == int(size)
            out[url[len("s3://%s/" % self.bucket):]] = data
        return out

    def server_range_gets(self, marker):
        """Ranged GETs (206) s3rver answered for keys containing marker; its
        log shows only the end of a path, so keep marker near the end of
        the key. libdsc fetches chunks only with ranged GETs. s3rver writes
        a line after the body went out, so a client can be done first: wait
        until the log is quiet."""
        path = Path(env("DSC_TEST_S3RVER_LOG"))
        size, deadline = -1, time.time() + 10
        while path.stat().st_size != size and time.time() < deadline:
            size = path.stat().st_size
            time.sleep(0.3)
        log = path.read_text(errors="replace")
        return len(re.findall(r"%s\S* 206 " % re.escape(marker), log))


class Suite:
    def __init__(self, name):
        self.name = name
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def run(self):
        passed = failed = 0
        for fn in self.tests:
            t0 = time.monotonic()
            try:
                fn()
            except Exception:
                failed += 1
                print("  FAIL %s" % fn.__name__)
                traceback.print_exc()
            else:
                passed += 1
                print("  ok   %s (%.0f ms)" % (fn.__name__, 1000 * (time.monotonic() - t0)))
            sys.stdout.flush()
        print("%s: %d passed, %d failed" % (self.name, passed, failed))
        return 1 if failed else 0


def raises(kind, fn, *args, **kwargs):
    """Call fn; it must raise `kind`. Returns the exception."""
    try:
        fn(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn),
                                                  kind.__name__))


def sha(data):
    return hashlib.sha256(data).hexdigest()


suite = Suite("python-client")
test = suite.test
rig = None        # made in main()


# ---- the package and the library -------------------------------------

@test
def library_is_the_one_under_test():
    import dsc
    header = (ROOT / "include" / "dsc.h").read_text()
    want = re.search(r'#define DSC_VERSION_STRING "([^"]+)"', header).group(1)
    assert dsc.version() == want, (dsc.version(), want)
    assert os.path.samefile(dsc.library_path(), os.environ["DSC_LIBRARY"])


@test
def structs_match_the_header():
    """Every field offset and struct size as the C compiler lays them out:
    a field added to dsc.h and not here fails."""
    from dsc import _lib
    structs = {"dsc_config": _lib.Config, "dsc_stats": _lib.Stats,
               "dsc_object_info": _lib.ObjectInfo, "dsc_plan_item": _lib.PlanItem}
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "dsc.h"',
             'int main(void) {']
    for cname, cls in structs.items():
        lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (cname, cname))
        for field, _ in cls._fields_:
            lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));'
                         % (cname, field, cname, field))
    lines.append("return 0; }")
    src = Path(rig.tmp) / "layout.c"
    exe = Path(rig.tmp) / "layout"
    src.write_text("\n".join(lines))
    subprocess.run(["cc", "-std=c11", "-I", str(ROOT / "include"), str(src),
                    "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    for cname, cls in structs.items():
        c_size = int(next(l for l in got if l.startswith(cname + " sizeof ")).split()[-1])
        assert ctypes.sizeof(cls) == c_size, (cname, ctypes.sizeof(cls), c_size)
        for field, _ in cls._fields_:
            c_off = int(next(l for l in got if l.startswith("%s %s " % (cname, field))).split()[-1])
            assert getattr(cls, field).offset == c_off, (cname, field)
    assert _lib.CONFIG_VERSION == int(re.search(
        r"#define DSC_CONFIG_VERSION (\d+)",
        (ROOT / "include" / "dsc.h").read_text()).group(1))


@test
def error_classes_match_the_library():
    import dsc
    from dsc import errors, _lib
    header = (ROOT / "include" / "dsc.h").read_text()
    codes = {name: int(v) for name, v in
             re.findall(r"#define DSC_(E[A-Z]+)\s+(-\d+)", header)}
    assert len(codes) >= 17
    for name, code in codes.items():
        assert getattr(errors, name) == code, name
        cls = errors._CLASSES[code]
        assert cls.code == code and issubclass(cls, dsc.Error)
        assert errors._NAMES[code] == _lib.lib().dsc_strerror(code).decode(), name
        assert getattr(dsc, cls.__name__) is cls
    assert issubclass(dsc.NotFound, FileNotFoundError)
    assert issubclass(dsc.AccessDenied, PermissionError)
    assert issubclass(dsc.InvalidURL, ValueError)
    assert issubclass(dsc.Timeout, TimeoutError)
    e = errors.from_code(-99, "odd")
    assert type(e) is dsc.Error and e.code == -99 and "odd" in str(e)


@test
def errors_survive_pickling_and_message_only_construction():
    import dsc
    e = dsc.NotFound(-4, "GET s3://b/k: 404 NoSuchKey")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is dsc.NotFound and back.code == -4
    assert back.message == e.message and back.errno == errno.ENOENT
    # torch's DataLoader re-raises a worker's exception as exc_type(text).
    again = dsc.NotFound("traceback text")
    assert again.code == dsc.NotFound.code and again.message == "traceback text"
    assert str(dsc.Changed(-12, "x")) == "object changed since it was opened: x"
    raises(TypeError, dsc.Error, 1, 2, 3)
    raises(TypeError, dsc.Error, b"bytes")


@test
def installs_with_pip_offline_and_finds_the_library_next_to_it():
    target = Path(rig.tmp) / "site"
    # pip builds in the source folder: give it a copy, not the checkout,
    # shaped like one (setup.py reads the version from include/dsc.h).
    tree = Path(rig.tmp) / "tree"
    source = tree / "bindings" / "python"
    shutil.copytree(ROOT / "bindings" / "python", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    (tree / "include").mkdir()
    shutil.copy(ROOT / "include" / "dsc.h", tree / "include" / "dsc.h")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", "--target", str(target),
                    str(source)], check=True,
                   env=dict(os.environ, PIP_NO_INPUT="1", PIP_ROOT_USER_ACTION="ignore"))
    assert (target / "dsc" / "client.py").is_file()
    probe = "import dsc; print(dsc.library_path()); print(dsc.version())"

    def probe_with(extra_env):
        run_env = {k: v for k, v in os.environ.items() if k != "DSC_LIBRARY"}
        run_env.update(extra_env, PYTHONPATH=str(target))
        return subprocess.run([sys.executable, "-c", probe], env=run_env,
                              capture_output=True, text=True, cwd=rig.tmp)

    # An installed copy is not in a checkout: without DSC_LIBRARY it looks
    # next to itself, then on the system, where there is no libdsc.
    r = probe_with({})
    assert r.returncode != 0 and "libdsc not found" in r.stderr, r.stderr
    assert "next to the package" in r.stderr
    r = probe_with({"DSC_LIBRARY": os.environ["DSC_LIBRARY"]})
    assert r.returncode == 0, r.stderr
    os.symlink(os.environ["DSC_LIBRARY"], target / "dsc" / "libdsc.so.0")
    r = probe_with({})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == str(target / "dsc" / "libdsc.so.0")
    r = probe_with({"DSC_LIBRARY": str(Path(rig.tmp) / "missing.so")})
    assert r.returncode != 0 and "DSC_LIBRARY" in r.stderr and "missing.so" in r.stderr


@test
def checkout_finds_its_own_lib_folder():
    run_env = {k: v for k, v in os.environ.items() if k != "DSC_LIBRARY"}
    run_env["PYTHONPATH"] = str(ROOT / "bindings" / "python")
    if not (ROOT / "lib" / "libdsc.so.0").exists():
        raise AssertionError("lib/libdsc.so.0 missing: run make")
    r = subprocess.run([sys.executable, "-c", "import dsc; print(dsc.library_path())"],
                       env=run_env, capture_output=True, text=True, cwd=rig.tmp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(ROOT / "lib" / "libdsc.so.0"), r.stdout


@test
def import_does_not_load_torch():
    code = "import sys, dsc; dsc.MapDataset; dsc.TarShards; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python")))
    assert r.returncode == 0 and r.stdout.strip() == "False", (r.stdout, r.stderr)


# ---- configuration -----------------------------------------------------

@test
def config_values_reach_the_library():
    import dsc
    with rig.client(cache_size="3G", chunk_size="128KiB", cache_policy="minio") as c:
        st = c.stats()
        assert st["cache_capacity"] == 3 << 30, st
        assert st["chunk_size"] == 128 << 10 and st["cache_policy"] == "minio", st
        assert c.cache_dir.startswith(rig.tmp)
    with rig.client(cache_size=5 << 20, cache_policy="lru") as c:
        st = c.stats()
        assert st["cache_capacity"] == 5 << 20 and st["cache_policy"] == "lru"
    with rig.client(cache=False) as c:
        assert c.cache_dir is None and c.stats()["cache_capacity"] == 0
    url = rig.url("five-mib-plus-one")
    for verify in ("always", "boot"):       # both read right, filling or not
        with rig.client(cache_verify=verify) as c:
            assert c.read(url) == rig.fixtures()["five-mib-plus-one"]
    for text, value in [("4096", 4096), ("20G", 20 << 30), ("512MiB", 512 << 20),
                        ("64kb", 64 << 10), (" 1 T ", 1 << 40), ("7B", 7)]:
        assert dsc.parse_size(text) == value, text


@test
def config_strings_are_copied_by_the_library():
    import dsc
    endpoint = "".join(["http://", rig.endpoint[len("http://"):]])
    region = "us-" + "east-1"
    c = dsc.Client(endpoint=endpoint, region=region, cache_dir="",
                   access_key_id="S3" + "RVER", secret_access_key="S3" + "RVER")
    del endpoint, region
    gc.collect()
    # Overwrite freed memory with other strings before using the context.
    junk = [("x" * 64).encode() for _ in range(10000)]
    assert c.read(rig.url("one-byte")) == b"\x7f"
    del junk
    c.close()


@test
def bad_config_is_refused():
    import dsc
    ep = rig.endpoint
    raises(TypeError, dsc.Client, endpoint=ep, no_such_option=1)
    raises(TypeError, dsc.Client, endpoint=ep, version=1)
    raises(TypeError, dsc.Client, endpoint=5)
    raises(TypeError, dsc.Client, endpoint=ep, anonymous="yes")
    raises(TypeError, dsc.Client, endpoint=ep, max_retries=1.5)
    raises(TypeError, dsc.Client, endpoint=ep, max_retries=True)
    for key, value in [("cache_size", "lots"), ("cache_size", "1.5G"),
                       ("cache_size", -1), ("cache_size", 1 << 64),
                       ("chunk_size", 1 << 32), ("max_retries", 1 << 40),
                       ("cache_policy", "fifo"), ("addressing", "sideways"),
                       ("cache_verify", "sometimes"),
                       ("endpoint", "http://a\0b")]:
        e = raises(dsc.InvalidArgument, dsc.Client, **{"endpoint": ep, key: value})
        assert e.code == dsc.InvalidArgument.code and key in str(e), (key, str(e))
    # Values only the library can judge.
    for key, value in [("chunk_size", 1000), ("connect_timeout_ms", 0),
                       ("cache_size", 1000), ("max_connections", -3),
                       ("peers_refresh_s", 0), ("peers_refresh_s", 86401),
                       ("peers_refresh_s", (1 << 63) - 1),
                       ("prefetch_memory", 1000)]:
        e = raises(dsc.InvalidArgument, dsc.Client, endpoint=ep, cache_dir="",
                   **{key: value})
        assert e.message, key
    e = raises(dsc.InvalidURL, dsc.Client, endpoint="ftp://nowhere")
    assert "ftp" in e.message
    e = raises(dsc.CredentialsError, dsc.Client, endpoint=ep, profile="no-such-profile")
    assert "no-such-profile" in e.message


# ---- reading -----------------------------------------------------------

@test
def every_fixture_reads_back_byte_for_byte():
    fixtures = rig.fixtures()
    assert len(fixtures) >= 50
    with rig.client() as c:
        for key, want in fixtures.items():
            url = rig.url(key)
            with c.open(url) as f:
                assert f.size == len(want) and f.url == url and f.name == url
                head = rig.s3.head_object(Bucket=rig.bucket, Key=key)
                assert f.etag == head["ETag"], (f.etag, head["ETag"])
                assert f.read() == want, key
                assert f.read() == b"" and f.read(10) == b"" and f.read(0) == b""
            assert c.read(url) == want, key
        # Awkward sizes of read() through a big object.
        want = fixtures["five-mib-plus-one"]
        with c.open(rig.url("five-mib-plus-one")) as f:
            got = bytearray()
            step = 1
            while True:
                part = f.read(step)
                if not part:
                    break
                assert len(part) == min(step, len(want) - len(got))
                got += part
                step = step * 3 + 1
            assert bytes(got) == want
            # Sizes beyond the object are clamped, not allocated.
            f.seek(len(want) - 10)
            assert f.read(1 << 50) == want[-10:]
            f.seek(3)
            assert f.read(None) == want[3:]
            assert f.pread(len(want) - 1, 1 << 50) == want[-1:]
            raises(TypeError, f.read, "3")
            raises(TypeError, f.read, 2.0)
            assert isinstance(f, io.RawIOBase) and f.readable() and f.seekable()
            assert not f.writable() and f.mode == "rb"
            raises(io.UnsupportedOperation, f.fileno)
            raises(io.UnsupportedOperation, f.write, b"x")
            assert "five-mib-plus-one" in repr(f)


@test
def readinto_fills_numpy_and_memoryviews_in_place():
    import numpy as np
    want = rig.fixtures()["five-mib-plus-one"]
    with rig.client() as c, c.open(rig.url("five-mib-plus-one")) as f:
        arr = np.zeros(len(want), dtype=np.uint8)
        address = arr.ctypes.data
        assert f.readinto(arr) == len(want)
        assert arr.ctypes.data == address and arr.tobytes() == want
        # A typed array: bytes land as they are, in native layout.
        f.seek(0)
        floats = np.empty(1024, dtype=np.float32)
        assert f.readinto(floats) == 4096
        assert floats.tobytes() == want[:4096]
        # A 2-D C-contiguous array.
        f.seek(100)
        grid = np.empty((16, 32), dtype=np.uint16)
        assert f.readinto(grid) == 1024 and grid.tobytes() == want[100:1124]
        # A window of a bytearray: only that window is written.
        f.seek(7)
        buf = bytearray(b"." * 40)
        assert f.readinto(memoryview(buf)[10:30]) == 20
        assert buf == b"." * 10 + want[7:27] + b"." * 10
        assert f.tell() == 27
        # An empty buffer reads nothing and keeps the position.
        assert f.readinto(bytearray()) == 0 and f.tell() == 27
        # Through io.BufferedReader, which calls readinto.
        f.seek(0)
        with io.BufferedReader(f, buffer_size=65536) as b:
            assert b.read(3) == want[:3] and b.peek(1)[:1] == want[3:4]
            b.seek(len(want) - 5)
            assert b.read() == want[-5:]
    with rig.client() as c, c.open(rig.url("five-mib-plus-one")) as f:
        raises(TypeError, f.readinto, b"read-only bytes")
        raises(TypeError, f.readinto, memoryview(bytearray(8)).toreadonly())
        raises(TypeError, f.readinto, np.zeros(16, dtype=np.uint8)[::2])
        raises(TypeError, f.readinto, "text")
        assert f.tell() == 0


@test
def readinto_at_the_end_of_an_object():
    want = rig.fixtures()["one-byte"]
    with rig.client() as c, c.open(rig.url("one-byte")) as f:
        buf = bytearray(10)
        assert f.readinto(buf) == 1 and buf[:1] == want
        assert f.readinto(buf) == 0
    with rig.client() as c, c.open(rig.url("empty")) as f:
        assert f.size == 0 and f.read() == b"" and f.readinto(bytearray(4)) == 0


@test
def seek_and_tell_with_every_whence():
    import dsc
    want = rig.fixtures()["five-mib-plus-one"]
    size = len(want)
    with rig.client() as c, c.open(rig.url("five-mib-plus-one")) as f:
        assert f.tell() == 0
        assert f.seek(4 << 20) == 4 << 20 and f.read(8) == want[4 << 20:(4 << 20) + 8]
        assert f.seek(-8, io.SEEK_CUR) == 4 << 20
        assert f.seek(10, io.SEEK_CUR) == (4 << 20) + 10 and f.tell() == (4 << 20) + 10
        assert f.seek(-3, io.SEEK_END) == size - 3 and f.read() == want[-3:]
        assert f.seek(0, io.SEEK_END) == size and f.read(5) == b""
        assert f.seek(size + 1000) == size + 1000 and f.read(5) == b""
        assert f.seek(5, io.SEEK_END) == size + 5
        rng = random.Random(7)
        for _ in range(50):
            off = rng.randrange(size)
            n = rng.randrange(1, 300000)
            f.seek(off)
            assert f.read(n) == want[off:off + n]
            assert f.tell() == min(size, off + n)
        f.seek(123)
        e = raises(dsc.InvalidArgument, f.seek, -1)
        assert isinstance(e, ValueError) and f.tell() == 123
        raises(dsc.InvalidArgument, f.seek, -200, io.SEEK_CUR)
        raises(dsc.InvalidArgument, f.seek, -size - 1, io.SEEK_END)
        raises(ValueError, f.seek, 0, 3)
        raises(ValueError, f.seek, 0, -1)
        raises(ValueError, f.seek, 1 << 63)
        raises(TypeError, f.seek, 1.5)
        raises(TypeError, f.seek, "0")
        assert f.tell() == 123


@test
def pread_is_positionless_and_thread_safe():
    import dsc
    want = rig.fixtures()["sixty-four-mib"]
    with rig.client() as c, c.open(rig.url("sixty-four-mib")) as f:
        f.seek(10)
        assert f.pread(1 << 20, 100) == want[1 << 20:(1 << 20) + 100]
        assert f.tell() == 10
        assert f.pread(len(want) - 4, 100) == want[-4:]
        assert f.pread(len(want) + 4, 100) == b""
        raises(dsc.InvalidArgument, f.pread, -1, 10)
        raises(dsc.InvalidArgument, f.pread, 0, -1)
        errors = []

        def worker(seed):
            try:
                rng = random.Random(seed)
                buf = bytearray(1 << 20)
                for _ in range(12):
                    off = rng.randrange(len(want))
                    n = f.pread_into(buf, off)
                    assert buf[:n] == want[off:off + n]
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors


@test
def client_read_ranges():
    import dsc
    want = rig.fixtures()["five-mib-plus-one"]
    url = rig.url("five-mib-plus-one")
    with rig.client() as c:
        assert c.read(url) == want
        assert c.read(url, off=5) == want[5:]
        assert c.read(url, off=4 << 20, len=10) == want[4 << 20:(4 << 20) + 10]
        assert c.read(url, 7, 0) == b""
        assert c.read(url, off=len(want) - 2, len=10) == want[-2:]
        assert c.read(url, off=len(want) + 2) == b""
        raises(dsc.InvalidArgument, c.read, url, off=-1)
        raises(dsc.InvalidArgument, c.read, url, len=-1)
        raises(TypeError, c.read, url, off=1.0)
        raises(TypeError, c.read, url, off=None)


@test
def client_read_with_size_hints():
    """A right hint reads with one open; a wrong one (the object grew or
    shrank since a listing) costs a second call, never a wrong answer."""
    import dsc
    fx = rig.fixtures()
    want = fx["five-mib-plus-one"]
    url = rig.url("five-mib-plus-one")
    with rig.client() as c:
        for hint in (len(want), 0, 1, len(want) - 1, len(want) + 100, 10 << 20):
            assert c.read(url, size_hint=hint) == want, hint
            assert c.read(url, off=3, size_hint=hint) == want[3:], hint
            assert c.read(url, off=4 << 20, len=7, size_hint=hint) == \
                want[4 << 20:(4 << 20) + 7], hint
        assert c.read(rig.url("empty"), size_hint=5) == b""
        # Nothing is allocated on a guess past the object's end.
        assert c.read(url, 0, 1 << 40) == want
        assert c.read(url, 5, (1 << 63) - 1) == want[5:]
        assert c.read(url, size_hint=1 << 50) == want
        raises(dsc.InvalidArgument, c.read, url, size_hint=-1)
        raises(TypeError, c.read, url, size_hint=1.5)
        raises(dsc.InvalidArgument, c.read_batch, [url], sizes=[-1])
        assert c.read(rig.url("one-byte"), size_hint=0) == fx["one-byte"]
        for hint in (len(want), None):      # one open either way
            before = c.stats()["meta_hits"]
            assert c.read(url, size_hint=hint) == want
            assert c.stats()["meta_hits"] - before == 1, hint
        raises(dsc.NotFound, c.read, rig.url("no/such"), size_hint=10)
        # MapDataset passes its listing's sizes along.
        ds = dsc.MapDataset(rig.url("epoch/"), client=c)
        before = c.stats()["meta_hits"]
        assert ds[4] == fx[ds.urls[4][len(rig.url("")):]]
        assert c.stats()["meta_hits"] - before == 1


@test
def close_and_context_managers():
    with rig.client() as c:
        f = c.open(rig.url("one-byte"))
        g = c.open(rig.url("empty"))
        f.close()
        f.close()
        assert f.closed
        for call in (f.read, f.readall, f.tell, lambda: f.seek(0),
                     lambda: f.readinto(bytearray(1)), lambda: f.pread(0, 1),
                     f.readable, f.seekable):
            raises(ValueError, call)
        with c.open(rig.url("one-byte")) as h:
            assert not h.closed
        assert h.closed
    # Closing the client closes what is still open from it.
    assert c.closed and g.closed
    c.close()
    for call in (lambda: c.open(rig.url("one-byte")), c.stats,
                 lambda: c.read(rig.url("one-byte")), lambda: c.list(rig.url("many/")),
                 lambda: c.cache_dir):
        raises(ValueError, call)
    assert "closed" in repr(c)


@test
def closing_while_other_threads_read_is_an_error_not_a_crash():
    want = rig.fixtures()["sixty-four-mib"]
    with rig.client(cache=False) as c:
        f = c.open(rig.url("sixty-four-mib"))
        outcomes = []

        def reader():
            buf = bytearray(4 << 20)
            try:
                for i in range(16):
                    n = f.pread_into(buf, i << 20)
                    assert buf[:n] == want[i << 20:(i << 20) + n]
                outcomes.append("done")
            except ValueError:
                outcomes.append("closed")

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        f.close()
        for t in threads:
            t.join()
        assert len(outcomes) == 4 and "closed" in outcomes, outcomes


@test
def objects_that_change_after_open_are_refused():
    import dsc
    url = rig.put("py/changing", b"A" * 1000)
    with rig.client(cache=False) as c:
        f = c.open(url)
        rig.put("py/changing", b"B" * 1000)
        e = raises(dsc.Changed, f.read)
        assert e.code == dsc.Changed.code
        f.close()
        assert c.read(url) == b"B" * 1000


# ---- errors ------------------------------------------------------------

@test
def missing_objects_and_buckets_are_not_found():
    import dsc
    with rig.client() as c:
        e = raises(dsc.NotFound, c.open, rig.url("no/such/key"))
        assert isinstance(e, FileNotFoundError) and e.errno == errno.ENOENT
        assert e.code == -4 and "no/such/key" in e.message, e.message
        assert "no such key" in str(e)
        raises(FileNotFoundError, c.read, rig.url("no/such/key"))
        raises(dsc.NotFound, c.open, "s3://no-such-bucket-dsc/x")


@test
def malformed_urls_are_invalid():
    import dsc
    with rig.client() as c:
        for url in ["http://%s/x" % rig.bucket, "s3://", "s3:///key", "",
                    "s3://%s" % rig.bucket, "s3://%s/" % rig.bucket,
                    "s3://Bad_Bucket!/k", "s3://%s/a\0b" % rig.bucket,
                    "s3://%s/\ud800" % rig.bucket]:
            e = raises(dsc.InvalidURL, c.open, url)
            assert isinstance(e, ValueError) and e.code == -3 and e.message, url
        raises(dsc.InvalidURL, c.read, "s3://%s/a\0b" % rig.bucket)
        raises(dsc.InvalidURL, c.list, "gs://bucket/x")
        raises(dsc.InvalidURL, c.list, "s3://%s/a\0b" % rig.bucket)
        raises(TypeError, c.open, 42)
        raises(TypeError, c.open, None)
        raises(TypeError, c.list, None)
        # bytes URLs are accepted as they are.
        assert c.open(rig.url("one-byte").encode()).read() == b"\x7f"


@test
def unknown_access_key_is_access_denied():
    import dsc
    with rig.client(access_key_id="AKIAUNKNOWN00000000",
                    secret_access_key="whatever") as c:
        e = raises(dsc.AccessDenied, c.open, rig.url("one-byte"))
        assert isinstance(e, PermissionError) and e.errno == errno.EACCES
        # A HEAD answer has no body: the status is all there is to show.
        assert e.code == -5 and "403" in e.message, e.message
        e = raises(dsc.AccessDenied, c.list, rig.url("many/"))
        assert "InvalidAccessKeyId" in e.message, e.message


@test
def unreachable_endpoint_is_a_network_error():
    import dsc
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]    # closed again: nothing listens there
    with rig.client(cache=False, endpoint="http://127.0.0.1:%d" % port,
                    max_retries=0, connect_timeout_ms=500) as c:
        e = raises(dsc.Error, c.open, rig.url("one-byte"))
        assert isinstance(e, (dsc.NetworkError, dsc.Timeout)), repr(e)


# ---- listing -----------------------------------------------------------

@test
def list_follows_pages():
    with rig.client() as c:
        objs = c.list(rig.url("many/"))
        assert len(objs) == 1203, len(objs)
        assert [o["key"] for o in objs] == ["many/obj-%05d" % i for i in range(1203)]
        for i, o in enumerate(objs):
            assert o["url"] == rig.url(o["key"]) and o["size"] == len(b"%d" % i)
            assert o["etag"].startswith('"') and o["last_modified"]
        assert c.stats()["s3_lists"] == 2
        sample = objs[777]
        assert c.read(sample["url"]) == b"777"
        assert c.list(rig.url("many/obj-0099")) == objs[990:1000]
        assert c.list(rig.url("no-such-prefix/")) == []
        everything = c.list("s3://%s" % rig.bucket)
        assert len(everything) > 1203
        keys = [o["key"] for o in everything]
        assert keys == sorted(keys, key=lambda k: k.encode())
        unicode = [o for o in everything if o["key"].startswith("awkward/ünïcødé")]
        assert len(unicode) == 1 and c.read(unicode[0]["url"]) == "text ✓\n".encode() * 50


@test
def list_callback_streams_stops_and_reraises():
    import dsc
    with rig.client() as c:
        seen = []
        assert c.list(rig.url("many/"), seen.append) == 1203
        assert len(seen) == 1203 and seen[-1]["key"] == "many/obj-01202"

        def stop_at_four(obj):
            seen.append(obj)
            return len(seen) < 4
        seen.clear()
        assert c.list(rig.url("many/"), stop_at_four) == 4
        assert [o["key"] for o in seen] == ["many/obj-%05d" % i for i in range(4)]

        class Boom(Exception):
            pass
        boom = Boom("from the callback")
        calls = []

        def explode(obj):
            calls.append(obj)
            if len(calls) == 3:
                raise boom
        before = c.stats()["s3_lists"]
        e = raises(Boom, c.list, rig.url("many/"), explode)
        assert e is boom and len(calls) == 3
        # Stopped within the first page: no second page was asked for.
        assert c.stats()["s3_lists"] - before == 1
        # KeyboardInterrupt too is carried out, not swallowed by ctypes.
        def interrupt(obj):
            raise KeyboardInterrupt
        raises(KeyboardInterrupt, c.list, rig.url("many/"), interrupt)
        # Closing the client from its own callback is refused, not a hang.
        e = raises(RuntimeError, c.list, rig.url("many/"), lambda o: c.close())
        assert "callback" in str(e) and not c.closed
        assert len(c.list(rig.url("many/obj-0000"))) == 10
        # The listing's own failure comes through with a callback too.
        raises(dsc.NotFound, c.list, "s3://no-such-bucket-dsc/", seen.append)


# ---- statistics and the cache --------------------------------------------

@test
def second_read_is_served_from_the_cache():
    want = rig.fixtures()["five-mib-plus-one"]
    url = rig.url("five-mib-plus-one")
    cache = rig.cache_dir()
    with rig.client(chunk_size="1M", cache_dir=cache) as c:
        assert c.read(url) == want
        first = c.stats()
        assert first["misses"] == 6 and first["hits"] == 0, first
        assert first["bytes_from_s3"] == len(want) and first["s3_gets"] == 6
        assert c.read(url) == want
        second = c.stats()
        assert second["hits"] == 6 and second["misses"] == 6, second
        assert second["s3_gets"] == 6 and second["bytes_from_cache"] == len(want)
        assert second["cache_chunks"] == 6 and second["cache_bytes"] == len(want)
        assert second["node_hits"] == 6 and second["node_misses"] == 6, second
        assert second["meta_hits"] >= 1
    # Another client of the same directory reads it all from there.
    with rig.client(chunk_size="1M", cache_dir=cache) as d:
        assert d.read(url) == want
        st = d.stats()
        assert st["hits"] == 6 and st["misses"] == 0 and st["s3_gets"] == 0, st
        assert st["node_hits"] == 12


@test
def metrics_are_the_nodes():
    """Client.metrics(): the library's exposition of the node counters
    (cold GETs, warm hits, saved GETs and bytes), as dsc-stat's."""
    want = rig.fixtures()["five-mib-plus-one"]
    url = rig.url("five-mib-plus-one")
    with rig.client(chunk_size="1M", cache_dir=rig.cache_dir()) as c:
        assert c.read(url) == want and c.read(url) == want
        st = c.stats()
        assert st["node_s3_gets"] == 6 and st["node_s3_heads"] == 1, st
        assert st["node_cache_bytes"] == len(want), st
        text = c.metrics()
    series = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line and not line.startswith("#"))
    assert series['dsc_s3_requests_total{kind="get"}'] == "6", series
    assert series["dsc_cache_hits_total"] == "6", series
    assert series["dsc_saved_requests"] == "6", series
    assert series["dsc_saved_bytes"] == str(len(want)), series
    assert "# TYPE dsc_cost_dollars_total counter" in text


@test
def clean_cache_removes_debris():
    with rig.client() as c:
        c.read(rig.url("one-byte"))
        stray = Path(c.cache_dir) / "data" / "stray-file"
        stray.write_bytes(b"x")
        assert c.clean_cache() == 1 and not stray.exists()
        assert c.clean_cache() == 0
        assert c.read(rig.url("one-byte")) == b"\x7f"


# ---- file formats over client.open -----------------------------------------

@test
def tarfile_reads_a_tar_through_the_file_object():
    rng = random.Random(11)
    members = {"dir/a.txt": b"hello\n", "dir/b.bin": rng.randbytes(300000),
               "empty": b"", "c/d/e.json": b'{"x": 1}'}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    url = rig.put("py/archive.tar", buf.getvalue())
    with rig.client() as c:
        # Random access: tarfile seeks between headers.
        with c.open(url) as f, tarfile.open(fileobj=f) as tar:
            assert tar.getnames() == list(members)
            for name, data in members.items():
                assert tar.extractfile(name).read() == data, name
        # Streaming: read only forward, through a buffer.
        with c.open(url) as f, tarfile.open(fileobj=io.BufferedReader(f), mode="r|") as tar:
            got = {m.name: tar.extractfile(m).read() for m in tar}
        assert got == members
        raises(tarfile.ReadError, tarfile.open, fileobj=c.open(rig.url("one-byte")))


@test
def pil_opens_a_png_through_the_file_object():
    from PIL import Image
    rng = random.Random(12)
    img = Image.frombytes("RGB", (97, 61), rng.randbytes(97 * 61 * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = rig.put("py/picture.png", buf.getvalue())
    with rig.client() as c, c.open(url) as f:
        got = Image.open(f)
        got.load()
        assert got.format == "PNG" and got.size == (97, 61) and got.mode == "RGB"
        assert got.tobytes() == img.tobytes()


@test
def numpy_loads_npy_through_the_file_object():
    import numpy as np
    rng = np.random.default_rng(13)
    arrays = {"py/floats.npy": rng.standard_normal((300, 70)).astype(np.float32),
              "py/ints.npy": np.arange(100000, dtype=np.int64),
              "py/fortran.npy": np.asfortranarray(rng.integers(0, 255, (33, 44), dtype=np.uint8))}
    with rig.client() as c:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            with c.open(rig.put(key, buf.getvalue())) as f:
                got = np.load(f)
            assert got.dtype == arr.dtype and np.array_equal(got, arr), key
        # Pickled object arrays stay refused unless asked for.
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with c.open(rig.put("py/objects.npy", buf.getvalue())) as f:
            raises(ValueError, np.load, f)


# ---- prefetch --------------------------------------------------------------

def has_prefetch():
    import dsc
    return dsc._lib.has("dsc_prefetch_url")


@test
def prefetch_fills_the_cache_before_reads():
    import dsc
    if not has_prefetch():
        raise AssertionError("the library has no dsc_prefetch_url; rebuild it")
    rng = random.Random(14)
    data = {("py/pf/obj-%d" % i): rng.randbytes(50000 + i) for i in range(12)}
    urls = [rig.put(k, v) for k, v in data.items()]
    with rig.client() as c:
        assert c.prefetch(urls) == 12
        assert c.wait(timeout=60) is True
        st = c.stats()
        assert st["prefetch_errors"] == 0 and st["cache_chunks"] == 12, st
        for url, want in zip(urls, data.values()):
            assert c.read(url) == want
        st = c.stats()
        assert st["hits"] == 12 and st["misses"] == 0, st
        assert c.prefetch(urls[0]) == 1 and c.wait() is True
        assert c.wait(0) is True        # nothing left to wait for
        # A cached epoch costs a lookup per object, not a queued task.
        before = c.stats()["prefetch_queued"]
        assert c.prefetch(u for u in urls) == 12
        assert c.stats()["prefetch_queued"] == before
        # A bad URL in the middle: the ones before it are taken.
        fresh = rig.put("py/pf/late", b"late bytes")
        raises(dsc.InvalidURL, c.prefetch, [fresh, "gs://x/y", urls[0]])
        assert c.wait(60) is True and c.read(fresh) == b"late bytes"
        assert c.stats()["misses"] == 0
        # A missing object is a prefetch error, not an exception.
        c.prefetch(rig.url("py/pf/missing"))
        assert c.wait(60) is True
        assert c.stats()["prefetch_errors"] >= 1
        raises(dsc.InvalidURL, c.prefetch, ["gs://x/y"])
        raises(dsc.InvalidURL, c.prefetch, "s3://%s/a\0b" % rig.bucket)
        raises(TypeError, c.prefetch, [None])
        raises(ValueError, c.wait, -1)
        raises(ValueError, c.wait, float("nan"))
        raises(ValueError, c.wait, "1")
        with c.open(rig.url("five-mib-plus-one")) as f:
            f.prefetch(0, 0)
            assert c.wait(60)
            assert f.warm() == 0
            raises(dsc.InvalidArgument, f.prefetch, -1)
    with rig.client() as c, c.open(rig.url("five-mib-plus-one")) as f:
        assert f.warm(0, 1 << 20) > 0 and f.warm(0, 1 << 20) == 0
    with rig.client(cache=False) as c:
        e = raises(dsc.NoCache, c.prefetch, urls[:1])
        assert e.code == -17


# ---- fork, pickling, datasets ------------------------------------------------

def _read_in_child(args):
    client, url = args
    return sha(client.read(url))


_inherited = None     # a Client the fork()ed pool workers get from the parent


def _read_with_inherited(url):
    return sha(_inherited.read(url))


@test
def client_made_before_fork_works_in_children():
    fixtures = rig.fixtures()
    keys = ["epoch/obj-%02d" % i for i in range(16)]
    with rig.client() as c:
        assert c.read(rig.url(keys[0])) == fixtures[keys[0]]   # warm the parent
        pid = os.fork()
        if pid == 0:
            ok = all(c.read(rig.url(k)) == fixtures[k] for k in keys)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's context still works after the child used its copy.
        assert all(c.read(rig.url(k)) == fixtures[k] for k in keys)
        # Hits of multiprocessing children (they end in os._exit) reach the
        # shared index: the package closes the context at their exit.
        global _inherited
        _inherited = c
        before = c.stats()["node_hits"]
        pool = multiprocessing.get_context("fork").Pool(2)
        digests = pool.map(_read_with_inherited, [rig.url(k) for k in keys])
        pool.close()
        pool.join()
        _inherited = None
        assert digests == [sha(fixtures[k]) for k in keys]
        assert c.stats()["node_hits"] - before == len(keys), c.stats()


@test
def client_and_dataset_pickle_for_spawned_processes():
    import dsc
    fixtures = rig.fixtures()
    with rig.client() as c:
        copy = pickle.loads(pickle.dumps(c))
        assert copy is not c and copy.read(rig.url("one-byte")) == b"\x7f"
        assert copy.cache_dir == c.cache_dir
        copy.close()
        secretive = dsc.Client(endpoint=rig.endpoint, cache_dir="", access_key_id="AKIDSHOWN",
                               secret_access_key="SECRETKEY", session_token="TOKENVALUE")
        assert "AKIDSHOWN" in repr(secretive)
        assert "SECRETKEY" not in repr(secretive) and "TOKENVALUE" not in repr(secretive)
        secretive.close()
        keys = ["epoch/obj-%02d" % i for i in range(4)]
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            digests = pool.map(_read_in_child, [(c, rig.url(k)) for k in keys])
        assert digests == [sha(fixtures[k]) for k in keys]


@test
def map_dataset_items_are_objects():
    import dsc
    fixtures = rig.fixtures()
    keys = ["epoch/obj-%02d" % i for i in range(10)]
    with rig.client() as c:
        ds = dsc.MapDataset([rig.url(k) for k in keys], client=c)
        assert len(ds) == 10 and ds.client is c
        assert ds[3] == fixtures[keys[3]] and ds[-1] == fixtures[keys[-1]]
        raises(IndexError, ds.__getitem__, 10)
        raises(TypeError, ds.__getitem__, "3")
        by_prefix = dsc.MapDataset(rig.url("epoch/obj-0"), transform=len, client=c)
        assert len(by_prefix) == 10 and by_prefix[9] == 65536
        raises(TypeError, dsc.MapDataset, [b"s3://x/y"], client=c)
        raises(TypeError, dsc.MapDataset, [rig.url("one-byte")], client=42)
        missing = dsc.MapDataset([rig.url("no/such")], client=c)
        raises(dsc.NotFound, missing.__getitem__, 0)
    ds = dsc.MapDataset([rig.url("one-byte")],
                        client={"endpoint": rig.endpoint, "cache_dir": ""})
    assert ds[0] == b"\x7f"
    ds.client.close()


@test
def read_batch_reads_many_objects_with_a_status_each():
    import dsc
    fx = rig.fixtures()
    keys = ["epoch/obj-%02d" % i for i in range(30)] + ["one-byte", "empty",
                                                         "awkward/a b+c%d=e&f?g#h.bin"]
    with rig.client() as c:
        got = c.read_batch([rig.url(k) for k in keys])
        assert got == [fx[k] for k in keys]
        # Sizes known (a listing): one pass; a cache hit now.
        before = c.stats()
        got = c.read_batch([rig.url(k) for k in keys], sizes=[len(fx[k]) for k in keys],
                           threads=3)
        assert got == [fx[k] for k in keys]
        assert c.stats()["misses"] == before["misses"]
        urls = [rig.url("epoch/obj-00"), rig.url("no/such/object"), rig.url("one-byte")]
        e = raises(dsc.NotFound, c.read_batch, urls)
        assert "no/such/object" in str(e), e
        out = c.read_batch(urls, errors_as_values=True)
        assert out[0] == fx["epoch/obj-00"] and out[2] == fx["one-byte"]
        assert isinstance(out[1], dsc.NotFound) and "no/such/object" in str(out[1])
        raises(dsc.InvalidURL, c.read_batch, ["gs://x/y"])
        raises(ValueError, c.read_batch, urls, sizes=[1])
        assert c.read_batch([]) == []
        # MapDataset reads a batch with it (torch's DataLoader calls this).
        ds = dsc.MapDataset([rig.url(k) for k in keys], client=c, transform=len)
        assert ds.__getitems__([2, 0, 31]) == [len(fx[keys[2]]), len(fx[keys[0]]), 0]
        # Over a prefix the listing's sizes go along: each item is opened
        # once (its cached metadata), not once to learn its size and again.
        ds = dsc.MapDataset(rig.url("epoch/"), client=c)
        assert ds.sizes == [len(fx[u[len(rig.url("")):]]) for u in ds.urls]
        before = c.stats()["meta_hits"]
        assert ds.__getitems__([5, 1, 7]) == [fx[ds.urls[i][len(rig.url("")):]] for i in (5, 1, 7)]
        assert c.stats()["meta_hits"] - before == 3, c.stats()["meta_hits"] - before


def make_tar(samples):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for key, fields in samples:
            for field, data in fields.items():
                info = tarfile.TarInfo("%s.%s" % (key, field))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@test
def tar_shards_group_members_into_samples():
    import dsc
    rng = random.Random(15)
    shards = []
    want = []
    for s in range(3):
        samples = []
        for i in range(5):
            key = "train/%d-%03d" % (s, i)
            fields = {"jpg": rng.randbytes(rng.randrange(1, 20000)),
                      "cls": b"%d" % rng.randrange(10), "seg.png": rng.randbytes(100)}
            samples.append((key, fields))
        url = rig.put("py/shards/shard-%d.tar" % s, make_tar(samples))
        shards.append(url)
        want += [dict(fields, __key__=key, __url__=url) for key, fields in samples]
    with rig.client() as c:
        got = list(dsc.TarShards(shards, client=c))
        assert got == want
        by_prefix = list(dsc.TarShards(rig.url("py/shards/"), client=c,
                                       transform=lambda s: s["__key__"]))
        assert by_prefix == [w["__key__"] for w in want]
        # Stopping early closes the shard (no open file left behind).
        it = iter(dsc.TarShards(shards, client=c))
        next(it)
        it.close()
        assert not c._files
        dup = rig.put("py/shards-bad/dup.tar", make_tar([("k", {"jpg": b"1"}), ("k", {"jpg": b"2"})]))
        e = raises(ValueError, list, dsc.TarShards([dup], client=c))
        assert "k.jpg" in str(e)
        raises(tarfile.ReadError, list, dsc.TarShards([rig.url("one-byte")], client=c))
        raises(dsc.NotFound, list, dsc.TarShards([rig.url("py/shards/nope.tar")], client=c))
    for name, split in [("a/b/c.jpg", ("a/b/c", "jpg")), ("x.seg.png", ("x", "seg.png")),
                        ("dir.v2/x.cls", ("dir.v2/x", "cls")), ("noext", (None, None)),
                        ("dir/.hidden", (None, None)), ("a/b.c/d", (None, None)),
                        (".x.jpg", (None, None)), ("a/b.", ("a/b", ""))]:
        assert dsc.split_member_name(name) == split, name


def main():
    global rig
    use_library_under_test()
    rig = Rig("python-client")
    return suite.run()


if __name__ == "__main__":
    sys.exit(main())
