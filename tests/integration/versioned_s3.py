#!/usr/bin/python3
"""A small S3 with bucket versioning, for the tests only: s3rver has no
versioning and no versioned S3 server can be installed here. It plays
what libdsc and boto3 use of it, path-style, without checking signatures:

  PUT /b                      create a bucket
  PUT|GET /b?versioning       VersioningConfiguration (Enabled|Suspended)
  GET /b?versions             ListObjectVersions (prefix, key-marker,
                              version-id-marker, max-keys)
  GET /b?list-type=2          ListObjectsV2 of the current versions
  PUT /b/k                    a new version (versionId "null" unversioned)
  GET|HEAD /b/k[?versionId=]  Range, If-Match (412), x-amz-version-id
  DELETE /b/k[?versionId=]    a delete marker, or that version gone

test_snapshot_versions.py checks it against boto3 (put, list versions,
get by version) before trusting it. Usage:
  versioned_s3.py PORT_FILE LOG  serve on 127.0.0.1, port written there;
                                 one line per request ("GET /b/k?q 206")
"""
import hashlib
import os
import re
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
LOCK = threading.Lock()
BUCKETS = {}          # name -> {"status": str|None, "keys": {key: [ver...]}}
LOG, LOG_LOCK = None, threading.Lock()


class Version:
    def __init__(self, vid, data=None, marker=False):
        self.vid, self.data, self.marker = vid, data, marker
        self.etag = '"%s"' % hashlib.md5(data or b"").hexdigest()
        self.when = time.time()

    def iso(self):
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.when))


def xml_doc(root, body):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%s xmlns="%s">%s</%s>'
            % (root, NS, body, root)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_response(self, code, message=None):
        with LOG_LOCK:
            LOG.write("%s %s %d\n" % (self.command, self.path, code))
            LOG.flush()
        super().send_response(code, message)

    def answer(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, message, head=False):
        body = xml_doc("Error", "<Code>%s</Code><Message>%s</Message>"
                       % (code, escape(message)))
        self.answer(status, body, {"Content-Type": "application/xml"}, head)

    def parse(self):
        u = urlsplit(self.path)
        parts = u.path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0])
        key = unquote(parts[1]) if len(parts) > 1 else ""
        q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        return bucket, key, q

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_PUT(self):
        bucket, key, q = self.parse()
        data = self.body()
        with LOCK:
            if not key and "versioning" in q:
                if bucket not in BUCKETS:
                    return self.error(404, "NoSuchBucket", bucket)
                m = re.search(rb"<Status>(\w+)</Status>", data)
                BUCKETS[bucket]["status"] = m.group(1).decode() if m else None
                return self.answer(200)
            if not key:
                BUCKETS.setdefault(bucket, {"status": None, "keys": {}})
                return self.answer(200)
            b = BUCKETS.get(bucket)
            if b is None:
                return self.error(404, "NoSuchBucket", bucket)
            vers = b["keys"].setdefault(key, [])
            if b["status"] == "Enabled":
                v = Version(uuid.uuid4().hex, data)
            else:
                vers[:] = [x for x in vers if x.vid != "null"]
                v = Version("null", data)
            vers.insert(0, v)
        self.answer(200, headers={"ETag": v.etag, "x-amz-version-id": v.vid})

    def do_DELETE(self):
        bucket, key, q = self.parse()
        with LOCK:
            b = BUCKETS.get(bucket)
            vers = b["keys"].get(key) if b else None
            if vers is None:
                return self.answer(204)
            if "versionId" in q:
                vers[:] = [x for x in vers if x.vid != q["versionId"]]
            elif b["status"] == "Enabled":
                vers.insert(0, Version(uuid.uuid4().hex, marker=True))
            else:
                vers[:] = [x for x in vers if x.vid != "null"]
                vers.insert(0, Version("null", marker=True))
        self.answer(204)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        bucket, key, q = self.parse()
        with LOCK:
            b = BUCKETS.get(bucket)
            if b is None:
                return self.error(404, "NoSuchBucket", bucket, head)
            if not key:
                return self.bucket_get(b, q)
            vers = b["keys"].get(key, [])
            if "versionId" in q:
                found = [x for x in vers if x.vid == q["versionId"]]
                if not found:
                    return self.error(404, "NoSuchVersion", key, head)
                v = found[0]
                if v.marker:
                    return self.error(405, "MethodNotAllowed", key, head)
            else:
                v = vers[0] if vers else None
                if v is None or v.marker:
                    return self.error(404, "NoSuchKey", key, head)
        im = self.headers.get("If-Match")
        if im and im != v.etag:
            return self.error(412, "PreconditionFailed", "If-Match", head)
        hdrs = {"ETag": v.etag, "x-amz-version-id": v.vid,
                "Last-Modified": formatdate(v.when, usegmt=True),
                "Accept-Ranges": "bytes"}
        data, status = v.data, 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m and not head:
            first = int(m.group(1))
            last = min(int(m.group(2)) if m.group(2) else len(data) - 1,
                       len(data) - 1)
            if first >= len(data):
                return self.error(416, "InvalidRange", key)
            hdrs["Content-Range"] = "bytes %d-%d/%d" % (first, last, len(data))
            data, status = data[first:last + 1], 206
        if head:
            self.send_response(200)
            for k, val in hdrs.items():
                self.send_header(k, val)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return None
        return self.answer(status, data, hdrs)

    def bucket_get(self, b, q):
        if "versioning" in q:
            st = "<Status>%s</Status>" % b["status"] if b["status"] else ""
            return self.answer(200, xml_doc("VersioningConfiguration", st))
        prefix = q.get("prefix", "")
        keys = sorted(k for k in b["keys"] if k.startswith(prefix))
        limit = int(q.get("max-keys", "1000"))
        if "versions" in q:
            return self.list_versions(b, keys, q, prefix, limit)
        start = q.get("continuation-token", "")
        out, n, token = [], 0, None
        for k in keys:
            v = b["keys"][k][0]
            if k <= start or v.marker:
                continue
            if n == limit:
                token = last
                break
            out.append("<Contents><Key>%s</Key><LastModified>%s</LastModified>"
                       "<ETag>%s</ETag><Size>%d</Size><StorageClass>STANDARD"
                       "</StorageClass></Contents>"
                       % (escape(k), v.iso(), escape(v.etag), len(v.data)))
            n, last = n + 1, k
        body = ("<Name>b</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>"
                "<MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>%s%s"
                % (escape(prefix), n, limit, "true" if token else "false",
                   "<NextContinuationToken>%s</NextContinuationToken>"
                   % escape(token) if token else "", "".join(out)))
        return self.answer(200, xml_doc("ListBucketResult", body))

    def list_versions(self, b, keys, q, prefix, limit):
        kmark, vmark = q.get("key-marker", ""), q.get("version-id-marker", "")
        rows = []
        for k in keys:
            vers = b["keys"][k]
            for i, v in enumerate(vers):
                rows.append((k, i, v))
        if vmark:       # past that version of kmark
            at = [j for j, (k, i, v) in enumerate(rows)
                  if k == kmark and v.vid == vmark]
            rows = rows[at[0] + 1:] if at else [r for r in rows if r[0] > kmark]
        elif kmark:     # past every version of kmark
            rows = [r for r in rows if r[0] > kmark]
        page, more = rows[:limit], len(rows) > limit
        out = []
        for k, i, v in page:
            common = ("<Key>%s</Key><VersionId>%s</VersionId><IsLatest>%s"
                      "</IsLatest><LastModified>%s</LastModified>"
                      % (escape(k), v.vid, "true" if i == 0 else "false", v.iso()))
            if v.marker:
                out.append("<DeleteMarker>%s</DeleteMarker>" % common)
            else:
                out.append("<Version>%s<ETag>%s</ETag><Size>%d</Size>"
                           "<StorageClass>STANDARD</StorageClass></Version>"
                           % (common, escape(v.etag), len(v.data)))
        nxt = ""
        if more:
            k, i, v = page[-1]
            nxt = ("<NextKeyMarker>%s</NextKeyMarker><NextVersionIdMarker>%s"
                   "</NextVersionIdMarker>" % (escape(k), v.vid))
        body = ("<Name>b</Name><Prefix>%s</Prefix><KeyMarker>%s</KeyMarker>"
                "<VersionIdMarker>%s</VersionIdMarker><MaxKeys>%d</MaxKeys>"
                "<IsTruncated>%s</IsTruncated>%s%s"
                % (escape(prefix), escape(kmark), escape(vmark), limit,
                   "true" if more else "false", nxt, "".join(out)))
        return self.answer(200, xml_doc("ListVersionsResult", body))


def main():
    global LOG
    LOG = open(sys.argv[2], "a")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
