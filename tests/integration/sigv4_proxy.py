#!/usr/bin/python3
"""A SigV4-verifying HTTP proxy in front of s3rver (which does not check
SigV4 signatures itself). Every request is checked the way S3 checks it,
with botocore's own SigV4 code recomputing the signature from the secret
that was issued for the access key, and only a request that passes is
forwarded; the answer (bodies of many MB, HEAD, ranges) is streamed back with
its status and headers. It listens on 127.0.0.1 only.

    /usr/bin/python3 sigv4_proxy.py --upstream http://127.0.0.1:PORT \\
        --registry REG.jsonl [--static-key S3RVER:S3RVER ...] \\
        --port-file F [--pid-file P] [--log LOG.jsonl] [--max-skew 10] \\
        [--bucket-region BUCKET=REGION ...] [--region-mode redirect|malformed] \\
        [--allow-anonymous] [--expired-status 400] [--exit-with-parent]

REG.jsonl is the registry aws_fakes.py appends every credential it issues
to, one JSON object a line: {"access_key", "secret", "token", "expires"
(unix seconds), "source"}; it is re-read as it grows. --static-key
AKID:SECRET adds long-term keys (no token, no expiry).

Checks, in S3's order, and what fails them (S3's codes, S3's XML body):
  no Authorization (and not presigned)     403 AccessDenied (unless --allow-anonymous)
  presigned URL (X-Amz-Signature in query) 403 AccessDenied (not supported here)
  header not AWS4-HMAC-SHA256 / bad parts  400 AuthorizationHeaderMalformed
  no x-amz-date, or > --max-skew from now  403 AccessDenied / RequestTimeTooSkewed
  credential scope not <date>/<region>/s3  400 AuthorizationHeaderMalformed
  bucket mapped by --bucket-region, signed for another region:
     --region-mode redirect (default)      301 PermanentRedirect + x-amz-bucket-region
     --region-mode malformed               400 AuthorizationHeaderMalformed + <Region>
  unknown access key                       403 InvalidAccessKeyId
  temporary key without x-amz-security-token 403 InvalidAccessKeyId
  token differs from the one issued        400 InvalidToken
  credentials expired at request time      400 ExpiredToken (--expired-status; S3 says 400)
  an x-amz-* header not in SignedHeaders   403 AccessDenied
  host not signed                          403 AccessDenied
  no x-amz-content-sha256                  400 InvalidRequest
  x-amz-content-sha256 != body's hash      400 XAmzContentSHA256Mismatch
  signature differs                        403 SignatureDoesNotMatch
The request time is the later of the arrival time and x-amz-date.

A passing request goes to the upstream re-signed with the first
--static-key (s3rver knows no other key; it does not check v4 signatures,
but it does look the access key up), with the client's headers otherwise.

Log (--log): one JSON object a line per request: time, method, path,
query, access_key, source, region, verdict ("ok", "anonymous", "denied"),
code (S3 error code or null), status, expires (of the credentials, unix),
expired (bool). A test asserts e.g. that no line has code "ExpiredToken".

The verifier is importable: aws_fakes.py checks STS callers with it.
    reg = Registry(path, static={"AKID": "SECRET"})
    v = verify_request(method, raw_path, raw_query, headers, body, reg,
                       service="s3")      # headers: list of (name, value)
    v.ok, v.status, v.code, v.message, v.access_key, v.region, v.cred
"""
import argparse
import datetime
import hashlib
import http.client
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

from botocore.auth import (EMPTY_SHA256_HASH, SIGV4_TIMESTAMP, S3SigV4Auth,
                           SigV4Auth, UNSIGNED_PAYLOAD)
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "proxy-authorization",
               "proxy-authenticate"}
_PIECE = 256 * 1024


# ---- the registry of issued credentials ---------------------------------

class Registry:
    """Access key -> credential dict, from the JSONL file aws_fakes.py
    appends to (re-read as it grows) and from static keys."""

    def __init__(self, path=None, static=None):
        self.path = path
        self._pos = 0
        self._keys = {}
        self._lock = threading.Lock()
        for ak, secret in (static or {}).items():
            self._keys[ak] = {"access_key": ak, "secret": secret, "token": None,
                              "expires": None, "source": "static"}

    def _refresh(self):
        if not self.path:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._pos += end + 1
        for line in data[:end].splitlines():
            if line.strip():
                rec = json.loads(line)
                self._keys[rec["access_key"]] = rec

    def get(self, access_key):
        with self._lock:
            if access_key not in self._keys:
                self._refresh()
            return self._keys.get(access_key)

    def add(self, rec):
        with self._lock:
            self._keys[rec["access_key"]] = rec


# ---- SigV4 verification ---------------------------------------------------

class Verdict:
    def __init__(self, ok, status=200, code=None, message="", **info):
        self.ok = ok
        self.status = status
        self.code = code
        self.message = message
        self.access_key = info.pop("access_key", None)
        self.region = info.pop("region", None)
        self.service = info.pop("service", None)
        self.cred = info.pop("cred", None)
        self.extra = info      # more elements for the error body

    def __repr__(self):
        return "Verdict(%s %s %s %s)" % (self.ok, self.status, self.code, self.access_key)


def _fail(status, code, message, **info):
    return Verdict(False, status, code, message, **info)


def parse_authorization(value):
    """'AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request,
    SignedHeaders=host;x-amz-date, Signature=hex' -> dict, or None."""
    if not value or not value.startswith(ALGORITHM + " "):
        return None
    parts = {}
    for item in value[len(ALGORITHM) + 1:].split(","):
        k, sep, v = item.strip().partition("=")
        if not sep:
            return None
        parts[k] = v
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return None
    return {"access_key": scope[0], "date": scope[1], "region": scope[2],
            "service": scope[3],
            "signed_headers": parts["SignedHeaders"].split(";"),
            "signature": parts["Signature"]}


class _Recompute:
    """Mixin: sign exactly the headers the client listed in SignedHeaders
    (botocore would otherwise leave out e.g. user-agent)."""

    def headers_to_sign(self, request):
        return request.headers


class _S3Auth(_Recompute, S3SigV4Auth):
    pass


class _Auth(_Recompute, SigV4Auth):
    pass


def canonical_pairs(raw_query):
    """Query string -> decoded (key, value) pairs, for botocore's
    _canonical_query_string_params to encode the SigV4 way."""
    pairs = []
    for piece in raw_query.split("&") if raw_query else ():
        if not piece:
            continue
        k, _, v = piece.partition("=")
        pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    return pairs


def header(headers, name, default=None):
    name = name.lower()
    values = [v for k, v in headers if k.lower() == name]
    return ",".join(values) if values else default


def recompute_signature(method, raw_path, raw_query, headers, body, parsed,
                        secret, service):
    """The signature a correct client holding `secret` sends for this
    request, computed by botocore's SigV4 code."""
    signed = HTTPHeaders()
    for k, v in headers:
        if k.lower() in parsed["signed_headers"]:
            signed.add_header(k.lower(), v)
    if service == "s3":
        # S3: the canonical URI is the path URI-encoded once (the client
        # sent it encoded: decode, encode the canonical way).
        path = urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/~")
        auth = _S3Auth(Credentials(parsed["access_key"], secret), service,
                       parsed["region"])
    else:
        path = raw_path    # botocore normalises and encodes it again
        auth = _Auth(Credentials(parsed["access_key"], secret), service,
                     parsed["region"])
    host = header(headers, "host", "localhost")
    req = AWSRequest(method=method, url="http://%s%s" % (host, path),
                     headers=signed, data=body or b"")
    req.params = canonical_pairs(raw_query)
    req.context["timestamp"] = header(headers, "x-amz-date")
    canonical = auth.canonical_request(req)
    string_to_sign = auth.string_to_sign(req, canonical)
    return auth.signature(string_to_sign, req), canonical


def parse_amz_date(value):
    try:
        t = datetime.datetime.strptime(value, SIGV4_TIMESTAMP)
    except (TypeError, ValueError):
        return None
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def verify_request(method, raw_path, raw_query, headers, body, registry,
                   service="s3", max_skew=10.0, now=None, region_check=None,
                   expired_status=400):
    """Check one request's SigV4 Authorization header. region_check(parsed)
    may return a Verdict (a region redirect) before the key is looked up."""
    now = time.time() if now is None else now
    s3 = service == "s3"
    bad_auth = "AuthorizationHeaderMalformed" if s3 else "IncompleteSignature"
    auth_value = header(headers, "authorization")
    parsed = parse_authorization(auth_value)
    if parsed is None:
        return _fail(400, bad_auth, "The authorization header is malformed; "
                     "the Credential is mal-formed or the algorithm is not "
                     + ALGORITHM + ".")
    info = {"access_key": parsed["access_key"], "region": parsed["region"],
            "service": parsed["service"]}
    amz_date = header(headers, "x-amz-date")
    t = parse_amz_date(amz_date)
    if t is None:
        return _fail(403, "AccessDenied", "AWS authentication requires a valid "
                     "Date or x-amz-date header", **info)
    if abs(t - now) > max_skew:
        return _fail(403, "RequestTimeTooSkewed", "The difference between the "
                     "request time and the current time is too large.",
                     RequestTime=amz_date, ServerTime=time.strftime(
                         "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), **info)
    if parsed["date"] != amz_date[:8]:
        return _fail(400, bad_auth, "The authorization header is malformed; "
                     "Invalid credential date. Date is not the same as X-Amz-Date.",
                     **info)
    if parsed["service"] != service:
        return _fail(400, bad_auth, "The authorization header is malformed; "
                     "incorrect service \"%s\". This endpoint belongs to \"%s\"."
                     % (parsed["service"], service), **info)
    if region_check:
        redirect = region_check(parsed)
        if redirect is not None:
            return redirect
    cred = registry.get(parsed["access_key"])
    if cred is None:
        if s3:
            return _fail(403, "InvalidAccessKeyId", "The AWS Access Key Id you "
                         "provided does not exist in our records.",
                         AWSAccessKeyId=parsed["access_key"], **info)
        return _fail(403, "InvalidClientTokenId", "The security token included "
                     "in the request is invalid.", **info)
    info["cred"] = cred
    token = header(headers, "x-amz-security-token")
    if cred.get("token"):
        if token is None:
            code = "InvalidAccessKeyId" if s3 else "InvalidClientTokenId"
            return _fail(403, code, "The AWS Access Key Id you provided does not "
                         "exist in our records (a temporary key needs its "
                         "x-amz-security-token).", **info)
        if token != cred["token"]:
            if s3:
                return _fail(400, "InvalidToken", "The provided token is "
                             "malformed or otherwise invalid.", **info)
            return _fail(403, "InvalidClientTokenId", "The security token "
                         "included in the request is invalid.", **info)
    elif token is not None:
        return _fail(400 if s3 else 403, "InvalidToken" if s3 else
                     "InvalidClientTokenId", "The provided token is malformed "
                     "or otherwise invalid.", **info)
    if cred.get("expires") is not None and max(now, t) >= cred["expires"]:
        return _fail(expired_status if s3 else 403, "ExpiredToken",
                     "The provided token has expired." if s3 else
                     "The security token included in the request is expired",
                     **info)
    names = {k.lower() for k, _ in headers}
    signed = set(parsed["signed_headers"])
    if "host" not in signed:
        return _fail(403, "AccessDenied", "There were headers present in the "
                     "request which were not signed: host", **info)
    if s3:
        unsigned = sorted(n for n in names if n.startswith("x-amz-") and n not in signed)
        if unsigned:
            return _fail(403, "AccessDenied", "There were headers present in the "
                         "request which were not signed",
                         HeadersNotSigned=", ".join(unsigned), **info)
        claimed = header(headers, "x-amz-content-sha256")
        if claimed is None:
            return _fail(400, "InvalidRequest", "Missing required header for "
                         "this request: x-amz-content-sha256", **info)
        if claimed != UNSIGNED_PAYLOAD:
            if claimed.startswith("STREAMING-"):
                return _fail(400, "InvalidRequest", "aws-chunked uploads are "
                             "not supported by this proxy", **info)
            actual = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256_HASH
            if claimed != actual:
                return _fail(400, "XAmzContentSHA256Mismatch", "The provided "
                             "'x-amz-content-sha256' header does not match what "
                             "was computed.", ClientComputedContentSHA256=claimed,
                             S3ComputedContentSHA256=actual, **info)
    want, canonical = recompute_signature(method, raw_path, raw_query, headers,
                                          body, parsed, cred["secret"], service)
    if want != parsed["signature"]:
        return _fail(403, "SignatureDoesNotMatch", "The request signature we "
                     "calculated does not match the signature you provided. "
                     "Check your key and signing method.",
                     CanonicalRequest=canonical, **info)
    return Verdict(True, **info)


# ---- S3 answers -----------------------------------------------------------

def s3_error_xml(code, message, **extra):
    items = "".join("<%s>%s</%s>" % (k, escape(str(v)), k)
                    for k, v in extra.items() if v is not None)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message>%s<RequestId>%s</RequestId><HostId>sigv4-proxy'
            '</HostId></Error>' % (code, escape(message), items,
                                   os.urandom(8).hex().upper())).encode()


class ProxyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, args):
        super().__init__(("127.0.0.1", args.port), _Handler)
        up = urllib.parse.urlsplit(args.upstream)
        self.upstream = (up.hostname, up.port or 80)
        static = {}
        for item in args.static_key:
            ak, _, secret = item.partition(":")
            static[ak] = secret
        self.upstream_key = None
        if args.static_key:
            ak, _, secret = args.static_key[0].partition(":")
            self.upstream_key = Credentials(ak, secret)
        self.registry = Registry(args.registry, static)
        self.bucket_region = dict(b.split("=", 1) for b in args.bucket_region)
        self.region_mode = args.region_mode
        self.allow_anonymous = args.allow_anonymous
        self.max_skew = args.max_skew
        self.expired_status = args.expired_status
        self.log = open(args.log, "a") if args.log else None
        self.log_lock = threading.Lock()
        self.counts = {}

    def record(self, entry):
        with self.log_lock:
            key = entry["verdict"] if entry["verdict"] != "denied" else entry["code"]
            self.counts[key] = self.counts.get(key, 0) + 1
            if self.log:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigv4-proxy"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        srv = self.server
        start = time.time()
        body = self._read_body()
        raw_path, _, raw_query = self.path.partition("?")
        headers = list(self.headers.items())
        entry = {"time": round(start, 3), "method": self.command, "path": raw_path,
                 "query": raw_query, "access_key": None, "source": None,
                 "region": None, "verdict": None, "code": None, "status": None,
                 "expires": None, "expired": None}
        query_keys = {k for k, _ in canonical_pairs(raw_query)}
        if header(headers, "authorization") is None:
            if "X-Amz-Signature" in query_keys or "X-Amz-Credential" in query_keys:
                v = _fail(403, "AccessDenied", "Presigned URLs are not supported "
                          "by this proxy")
            elif srv.allow_anonymous:
                v = Verdict(True)
            else:
                v = _fail(403, "AccessDenied", "Access Denied")
        else:
            bucket = urllib.parse.unquote(raw_path.lstrip("/").split("/", 1)[0])
            v = verify_request(self.command, raw_path, raw_query, headers, body,
                               srv.registry, "s3", srv.max_skew, start,
                               lambda p: self._region_check(bucket, p),
                               srv.expired_status)
        entry["access_key"] = v.access_key
        entry["region"] = v.region
        if v.cred:
            entry["source"] = v.cred.get("source")
            entry["expires"] = v.cred.get("expires")
            entry["expired"] = (v.cred.get("expires") is not None
                                and start >= v.cred["expires"])
        if not v.ok:
            entry.update(verdict="denied", code=v.code, status=v.status)
            self._send_error(v)
        else:
            entry["verdict"] = "ok" if v.access_key else "anonymous"
            try:
                entry["status"] = self._forward(raw_path, raw_query, headers, body)
            except (OSError, http.client.HTTPException) as e:
                entry["code"] = "UpstreamError: %s" % e
                self.close_connection = True
        srv.record(entry)

    def _region_check(self, bucket, parsed):
        want = self.server.bucket_region.get(bucket)
        if not bucket or want is None or parsed["region"] == want:
            return None
        info = {"access_key": parsed["access_key"], "region": parsed["region"],
                "service": parsed["service"]}
        if self.server.region_mode == "redirect":
            v = _fail(301, "PermanentRedirect", "The bucket you are attempting to "
                      "access must be addressed using the specified endpoint. "
                      "Please send all future requests to this endpoint.",
                      Endpoint=self.headers.get("Host"), Bucket=bucket, **info)
        else:
            v = _fail(400, "AuthorizationHeaderMalformed", "The authorization "
                      "header is malformed; the region '%s' is wrong; expecting "
                      "'%s'" % (parsed["region"], want), Region=want, **info)
        v.bucket_region = want
        return v

    def _send_error(self, v):
        extra = {k: val for k, val in v.extra.items()}
        if v.code == "SignatureDoesNotMatch":
            extra["AWSAccessKeyId"] = v.access_key
        body = s3_error_xml(v.code, v.message, **extra)
        self.send_response(v.status)
        self.send_header("Content-Type", "application/xml")
        region = getattr(v, "bucket_region", None)
        if region:
            self.send_header("x-amz-bucket-region", region)
        if self.command == "HEAD":
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _forward(self, raw_path, raw_query, headers, body):
        srv = self.server
        host = "%s:%d" % srv.upstream
        target = raw_path + ("?" + raw_query if raw_query else "")
        out = HTTPHeaders()
        for k, v in headers:
            lk = k.lower()
            if lk in _HOP_BY_HOP or lk in ("host", "authorization", "content-length",
                                           "x-amz-security-token", "x-amz-date",
                                           "x-amz-content-sha256", "expect"):
                continue
            out.add_header(k, v)
        if srv.upstream_key is not None:
            req = AWSRequest(method=self.command, url="http://%s%s" % (host, target),
                             headers=out, data=body)
            S3SigV4Auth(srv.upstream_key, "s3", "us-east-1").add_auth(req)
            out = req.headers
        conn = http.client.HTTPConnection(*srv.upstream, timeout=120)
        try:
            conn.putrequest(self.command, target, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", host)
            for k, v in out.items():
                conn.putheader(k, v)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            self.send_response_only(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            bodyless = (self.command == "HEAD" or resp.status in (204, 304)
                        or 100 <= resp.status < 200)
            chunk_out = not bodyless and length is None
            for k, v in resp.getheaders():
                if k.lower() not in _HOP_BY_HOP:
                    self.send_header(k, v)
            if chunk_out:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not bodyless:
                while True:
                    piece = resp.read(_PIECE)
                    if not piece:
                        break
                    if chunk_out:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    else:
                        self.wfile.write(piece)
                if chunk_out:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return resp.status
        finally:
            conn.close()


def _write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="SigV4-verifying proxy in front of "
                                 "s3rver; listens on 127.0.0.1 only.")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of s3rver")
    ap.add_argument("--registry", help="JSONL file of issued credentials")
    ap.add_argument("--static-key", action="append", default=[],
                    help="AKID:SECRET of a long-term key (the first also "
                    "signs the forwarded request)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--max-skew", type=float, default=10.0,
                    help="seconds x-amz-date may differ from now (default 10)")
    ap.add_argument("--bucket-region", action="append", default=[],
                    help="BUCKET=REGION: requests signed for another region "
                    "are refused as S3 does")
    ap.add_argument("--region-mode", choices=("redirect", "malformed"),
                    default="redirect", help="301 PermanentRedirect (default) "
                    "or 400 AuthorizationHeaderMalformed")
    ap.add_argument("--allow-anonymous", action="store_true")
    ap.add_argument("--expired-status", type=int, default=400,
                    help="HTTP status of ExpiredToken (S3: 400)")
    ap.add_argument("--exit-with-parent", action="store_true")
    args = ap.parse_args(argv)
    srv = ProxyServer(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    port = srv.server_address[1]
    if args.pid_file:
        _write_atomic(args.pid_file, "%d\n" % os.getpid())
    if args.port_file:
        _write_atomic(args.port_file, "%d\n" % port)
    print("sigv4_proxy: listening on 127.0.0.1:%d, upstream %s" % (port, args.upstream),
          flush=True)
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    srv.shutdown()
    srv.server_close()
    print("sigv4_proxy counts: %s" % json.dumps(srv.counts), flush=True)
    for f in (args.port_file, args.pid_file):
        if f:
            try:
                os.unlink(f)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
