#!/usr/bin/python3
"""Snapshots of a versioned bucket pin reads to version ids.

s3rver has no versioning, so this runs against versioned_s3.py, a small
stand-in checked here with boto3 first (versioning on, ListObjectVersions,
GET by VersionId), so its answers are the ones botocore reads from S3.

What a user relies on:
- a snapshot of a versioned bucket records each object's current version
  id (`dsc-snapshot --show --json` prints them);
- a context using it reads objects overwritten or deleted after the
  snapshot as they were (GETs carry versionId), with 0 HEAD and 0 LIST;
- a recorded version that is gone is dsc.Changed naming the object,
  never bytes of another version;
- an unversioned bucket is pinned by ETag as before: an overwrite is
  dsc.Changed.

Run through tests/run.sh, with /usr/bin/python3 (Debian's python3-boto3).
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from test_python_client import Suite, raises, use_library_under_test

HERE = Path(__file__).resolve().parent
suite = Suite("snapshot-versions")
test = suite.test
srv = None


class Server:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="versions-",
                                    dir=os.environ.get("DSC_TEST_STATE"))
        port_file = os.path.join(self.tmp, "port")
        self.log = Path(self.tmp, "requests.log")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "versioned_s3.py"), port_file,
             str(self.log)])
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("versioned_s3.py did not start")
            time.sleep(0.05)
        self.endpoint = "http://127.0.0.1:%s" % Path(port_file).read_text()
        import boto3
        from botocore.config import Config
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="K",
            aws_secret_access_key="S", region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bucket(self, name, versioned):
        self.s3.create_bucket(Bucket=name)
        if versioned:
            self.s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def requests(self, pattern):
        return [line for line in self.log.read_text().splitlines()
                if re.search(pattern, line)]

    def client(self, **config):
        import dsc
        config.setdefault("endpoint", self.endpoint)
        config.setdefault("cache_dir", tempfile.mkdtemp(dir=self.tmp))
        return dsc.Client(**config)


def tool(*args):
    exe = Path(os.environ["DSC_TEST_BIN"]) / "dsc-snapshot"
    env = dict(os.environ, AWS_ENDPOINT_URL=srv.endpoint,
               AWS_ACCESS_KEY_ID="K", AWS_SECRET_ACCESS_KEY="S")
    env.pop("DSC_CACHE_DIR", None)
    return subprocess.run([str(exe), *args], env=env, capture_output=True,
                          text=True, timeout=60)


@test
def stand_in_answers_as_s3_does_for_boto3():
    b = srv.bucket("boto-check", versioned=True)
    v1 = srv.s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    v2 = srv.s3.put_object(Bucket=b, Key="k", Body=b"two!")["VersionId"]
    assert v1 != v2
    st = srv.s3.get_bucket_versioning(Bucket=b)
    assert st["Status"] == "Enabled", st
    vs = srv.s3.list_object_versions(Bucket=b, Prefix="k")["Versions"]
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in vs] == \
        [(v2, True, 4), (v1, False, 3)], vs
    old = srv.s3.get_object(Bucket=b, Key="k", VersionId=v1)
    assert old["Body"].read() == b"one" and old["VersionId"] == v1
    part = srv.s3.get_object(Bucket=b, Key="k", Range="bytes=1-2")
    assert part["Body"].read() == b"wo" and part["ContentRange"] == "bytes 1-2/4"
    srv.s3.delete_object(Bucket=b, Key="k")
    page = srv.s3.list_object_versions(Bucket=b)
    assert page["DeleteMarkers"][0]["IsLatest"]
    assert "Contents" not in srv.s3.list_objects_v2(Bucket=b)
    # Paging by key and version markers, as botocore's paginator does.
    for i in range(5):
        srv.s3.put_object(Bucket=b, Key="p/%d" % i, Body=b"x")
        srv.s3.put_object(Bucket=b, Key="p/%d" % i, Body=b"yy")
    pager = srv.s3.get_paginator("list_object_versions")
    pages = list(pager.paginate(Bucket=b, Prefix="p/",
                                PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4
    got = [(v["Key"], v["IsLatest"]) for p in pages for v in p["Versions"]]
    assert got == [("p/%d" % i, latest) for i in range(5)
                   for latest in (True, False)], got
    assert srv.s3.get_bucket_versioning(Bucket=srv.bucket("plain-check", False)) \
        .get("Status") is None


@test
def overwritten_and_deleted_objects_read_as_snapshotted():
    import dsc
    b = srv.bucket("versioned", versioned=True)
    rng = random.Random(7)
    data = {}
    for i in range(6):
        key = "train/o-%d.bin" % i
        # Two versions before the snapshot: it must record the current one.
        srv.s3.put_object(Bucket=b, Key=key, Body=b"old" * 10)
        data[key] = rng.randbytes(70000 + i)
        srv.s3.put_object(Bucket=b, Key=key, Body=data[key])
    current = {v["Key"]: v["VersionId"] for v in
               srv.s3.list_object_versions(Bucket=b, Prefix="train/")["Versions"]
               if v["IsLatest"]}
    path = os.path.join(srv.tmp, "train.dsnap")
    with srv.client() as c:
        snap = dsc.Snapshot.list(c, "s3://%s/train/" % b)
        assert snap.versioned and len(snap) == 6
        assert {k: snap.version_id(i) for i, (k, _, _) in enumerate(snap)} == current
        snap.save(path)
    out = tool("--show", "--json", path)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["versioned"] is True
    assert {e["key"]: e["version_id"] for e in shown["entries"]} == current
    # After the snapshot: two overwritten, one deleted.
    srv.s3.put_object(Bucket=b, Key="train/o-1.bin", Body=b"new bytes")
    srv.s3.put_object(Bucket=b, Key="train/o-2.bin", Body=data["train/o-2.bin"][::-1])
    srv.s3.delete_object(Bucket=b, Key="train/o-3.bin")
    mark = len(srv.log.read_text().splitlines())
    with srv.client(snapshot=path) as c:
        for key, want in sorted(data.items()):
            with c.open("s3://%s/%s" % (b, key)) as f:
                assert f.size == len(want)
                assert f.pread(0, len(want)) == want, key
        st = c.stats()
        assert (st["s3_heads"], st["s3_lists"]) == (0, 0), st
    seen = srv.log.read_text().splitlines()[mark:]
    gets = [line for line in seen if line.startswith("GET /versioned/train/")]
    assert gets and all("versionId=" in line for line in gets), seen
    assert not [line for line in seen if line.startswith("HEAD")], seen
    # A recorded version removed for good: Changed naming the object.
    srv.s3.delete_object(Bucket=b, Key="train/o-4.bin",
                         VersionId=current["train/o-4.bin"])
    with srv.client(snapshot=path) as c:
        with c.open("s3://%s/train/o-4.bin" % b) as f:
            e = raises(dsc.Changed, f.pread, 0, 100)
            assert "train/o-4.bin" in str(e) and current["train/o-4.bin"] in str(e), e


@test
def unversioned_bucket_is_pinned_by_etag():
    import dsc
    b = srv.bucket("unversioned", versioned=False)
    srv.s3.put_object(Bucket=b, Key="d/x.bin", Body=b"a" * 5000)
    with srv.client() as c:
        snap = dsc.Snapshot.list(c, "s3://%s/d/" % b)
        assert not snap.versioned and snap.version_id(0) is None
        c.use_snapshot(snap)
        srv.s3.put_object(Bucket=b, Key="d/x.bin", Body=b"b" * 5000)
        with c.open("s3://%s/d/x.bin" % b) as f:
            e = raises(dsc.Changed, f.pread, 0, 10)
            assert "d/x.bin" in str(e)
    gets = srv.requests(r"^GET /unversioned/d/x.bin")
    assert gets and not [g for g in gets if "versionId" in g], gets


def main():
    global srv
    use_library_under_test()
    srv = Server()
    try:
        return suite.run()
    finally:
        srv.stop()


if __name__ == "__main__":
    sys.exit(main())
