#!/usr/bin/python3
"""A small S3 stand-in for tests that need what s3rver does not do: keep
keys literally ("a/../b" is its own key; s3rver stores it as "b") and
verify SigV4 signatures (s3rver accepts any). It answers HEAD and ranged
GET of objects the test puts in its dict, checks every request's
Authorization against botocore's S3SigV4Auth computed over the request
target exactly as received, and records those targets. Standard library
and botocore only; listens on 127.0.0.1.

    with LiteralS3({("bkt", "a/../b"): b"..."}) as s3:
        ... client with endpoint s3.url, keys S3RVER/S3RVER ...
        s3.targets()     # [(method, raw target, status), ...]
"""
import datetime
import hashlib
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.auth
import botocore.awsrequest
import botocore.credentials

ACCESS_KEY = SECRET_KEY = "S3RVER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/"
                     r"aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$")


class _FrozenClock(datetime.datetime):
    now = None

    @classmethod
    def utcnow(cls):
        return cls.now


_sign_lock = threading.Lock()


def expected_authorization(method, host, target, headers, region, amz_date):
    """botocore's Authorization for this request, signed over `target`
    exactly as it arrived (S3 signs the path as sent: no normalisation)."""
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    path, _, query = target.partition("?")
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    extra = {k: v for k, v in headers.items() if k.lower() in ("range", "if-match")}
    req = botocore.awsrequest.AWSRequest(method, "http://%s%s" % (host, path),
                                         headers=extra, params=params)
    req.context["payload_signing_enabled"] = True
    auth = botocore.auth.S3SigV4Auth(creds, "s3", region)
    with _sign_lock:
        saved = botocore.auth.datetime.datetime
        botocore.auth.datetime.datetime = _FrozenClock
        _FrozenClock.now = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        try:
            auth.add_auth(req)
        finally:
            botocore.auth.datetime.datetime = saved
    if urllib.parse.urlsplit(req.url).path != path:
        raise RuntimeError("botocore changed the path: %r" % req.url)
    return req.headers["Authorization"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body=b"", headers=()):
        self.server.owner._record(self.command, self.path, status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code):
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
               "<Message>%s</Message></Error>" % (code, code)).encode()
        self._answer(status, xml, [("Content-Type", "application/xml")])

    def _object(self):
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        if not m or m.group(1) != ACCESS_KEY:
            return self._error(403, "AccessDenied")
        amz_date = self.headers.get("x-amz-date", "")
        try:
            want = expected_authorization(self.command, self.headers["Host"],
                                          self.path, self.headers, m.group(3),
                                          amz_date)
        except (ValueError, KeyError):
            return self._error(403, "AccessDenied")
        if want != self.headers["Authorization"]:
            return self._error(403, "SignatureDoesNotMatch")
        raw_path = self.path.partition("?")[0]
        bucket, _, key = raw_path[1:].partition("/")
        body = self.server.owner.objects.get((urllib.parse.unquote(bucket),
                                              urllib.parse.unquote(key)))
        if body is None:
            return self._error(404, "NoSuchKey")
        etag = self.server.owner.etags.get(
            (urllib.parse.unquote(bucket), urllib.parse.unquote(key)),
            '"%s"' % hashlib.md5(body).hexdigest())
        rng = self.headers.get("Range")
        if rng:
            m = re.match(r"bytes=(\d+)-(\d+)$", rng)
            first, last = int(m.group(1)), int(m.group(2))
            if first >= len(body):
                return self._error(416, "InvalidRange")
            last = min(last, len(body) - 1)
            return self._answer(206, body[first:last + 1], [
                ("ETag", etag),
                ("Content-Range", "bytes %d-%d/%d" % (first, last, len(body)))])
        return self._answer(200, body, [("ETag", etag)])

    do_GET = do_HEAD = _object


class LiteralS3:
    def __init__(self, objects, etags=None):
        """objects: {(bucket, key): bytes}; etags: {(bucket, key): ETag} to
        answer instead of the MD5 (as a hostile or odd server may)."""
        self.objects = dict(objects)
        self.etags = dict(etags or {})
        self._targets = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def targets(self):
        with self._lock:
            return list(self._targets)

    def reset(self):
        with self._lock:
            self._targets = []

    def _record(self, method, target, status):
        with self._lock:
            self._targets.append((method, target, status))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
