#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy for tests (Python 3 standard library
only). It listens on 127.0.0.1 only, forwards requests to one upstream
host:port (an S3 server such as s3rver, later a libdsc peer) and, as a rule
set that can be changed while it runs says, breaks some answers the way real
networks and servers do:

  internal_error  500 InternalError with an S3 XML error body (not forwarded)
  slow_down       503 SlowDown with an S3 XML error body (not forwarded)
  reset           RST (SO_LINGER 0) after the headers and part of the body,
                  or before any byte of the answer (headers=False)
  truncate        Content-Length says N, fewer bytes are sent, then FIN
  overlong        more bytes than asked: mode "extra" keeps the right
                  Content-Length and sends extra bytes after the body (they
                  land where the next answer on the connection would start);
                  mode "length" raises Content-Length and sends that much
  bad_range       Content-Range shifted by `shift` bytes, body unchanged
  stall           the request is read and never answered
  stall_body      headers and part of the body, then silence
  latency         added delay before forwarding (stacks with the others)
  corrupt         `flips` body bytes inverted, status and every header kept
                  (a byzantine origin or peer: only a checksum can tell)

A rule applies to every matching request, to the first `count` of them,
and/or with probability `prob` drawn from its own random.Random(seed), so a
given sequence of requests meets the same faults on every run. `method`
(one or a list), `path` (a substring of the request target) and `header`
({name: substring of its value}, e.g. {"Range": "bytes=262144-"}) filter
what it matches. Rules are tried in order: every matching latency rule adds its
delay, then the first other rule that matches and fires is the fault. Body
faults are only considered for answers that have a body (2xx, not HEAD);
bad_range only for answers with a Content-Range. The proxy counts what it
did: requests, forwarded, each fault kind, flipped bytes.

In a test (same process):

    with FaultProxy("127.0.0.1:9000") as proxy:          # port 0: free one
        proxy.set_rules([Rule("slow_down", count=3),
                         Rule("reset", method="GET", prob=0.1, seed=7)])
        ... point the client at proxy.url ...
        print(proxy.counts())

As its own process (stopped by PID, e.g. SIGTERM; final counts on stdout):

    python3 faultproxy.py --upstream 127.0.0.1:9000 --port-file F \\
        [--rules-file RULES.json] [--rules JSON] [--pid-file P] [--exit-with-parent]

RULES.json is a JSON list of rule objects ({"fault": "reset", "count": 2,
"method": "GET", "fraction": 0.5}); the file is re-read whenever it changes
(write it atomically, by rename). A running proxy also answers a control
API on its own port, under /__faultproxy/ (not a valid bucket name):
GET counts, GET rules, PUT rules (JSON list, replaces), POST rules/add
(one rule), POST reset (zero the counts). ProxyProcess wraps all that.
"""
import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import http.client

FAULTS = ("internal_error", "slow_down", "reset", "truncate", "overlong",
          "bad_range", "stall", "stall_body", "latency", "corrupt")
# Decided before forwarding (no upstream answer needed).
_REQUEST_FAULTS = {"internal_error", "slow_down", "stall"}
# Decided on the upstream answer: they change how its body is delivered.
_BODY_FAULTS = {"reset", "truncate", "overlong", "bad_range", "stall_body",
                "corrupt"}
_ERRORS = {
    "internal_error": (500, "Internal Server Error", "InternalError",
                       "We encountered an internal error. Please try again."),
    "slow_down": (503, "Slow Down", "SlowDown",
                  "Please reduce your request rate."),
}
_PARAMS = {          # parameter: default
    "fraction": 0.5,     # reset/truncate/stall_body: part of the body sent
    "headers": True,     # reset: False = RST before any byte of the answer
    "mode": "extra",     # overlong: "extra" or "length"
    "extra": 1000,       # overlong: bytes beyond the body
    "shift": 1,          # bad_range: added to both ends of Content-Range
    "stall_s": None,     # stall/stall_body: None = until the client goes
    "latency_ms": 0,     # latency
    "flips": 8,          # corrupt: bytes inverted
}
CONTROL_PREFIX = "/__faultproxy/"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection",
               "transfer-encoding", "te", "trailer", "upgrade", "expect"}
_MAX_HEAD = 64 * 1024
_PIECE = 64 * 1024


class Rule:
    """One fault and when it applies. Thread-safe: the proxy calls fire()
    from many connection threads."""

    def __init__(self, fault, count=None, prob=None, seed=0, method=None,
                 path=None, header=None, **params):
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (one of %s)" % (fault, ", ".join(FAULTS)))
        unknown = set(params) - set(_PARAMS)
        if unknown:
            raise ValueError("unknown rule parameter(s): %s" % ", ".join(sorted(unknown)))
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        if prob is not None and not 0 <= prob <= 1:
            raise ValueError("prob must be in [0, 1]")
        self.fault = fault
        self.count = count
        self.prob = prob
        self.seed = seed
        if isinstance(method, str):
            method = [method]
        self.methods = None if method is None else {m.upper() for m in method}
        self.path = path
        self.header = {k.lower(): v for k, v in (header or {}).items()}
        self.params = dict(_PARAMS)
        self.params.update(params)
        if self.params["mode"] not in ("extra", "length"):
            raise ValueError("overlong mode must be 'extra' or 'length'")
        if not 0 <= float(self.params["fraction"]) < 1:
            raise ValueError("fraction must be in [0, 1)")
        self.fired = 0
        self.rng = random.Random(seed)
        self._lock = threading.Lock()

    def __repr__(self):
        return "Rule(%s)" % ", ".join("%s=%r" % kv for kv in self.to_dict().items())

    def describe(self):
        """Short text for a report: fault, budget, filters, parameters."""
        bits = [self.fault]
        if self.count is not None:
            bits.append("first %d" % self.count)
        if self.prob is not None:
            bits.append("p=%g" % self.prob)
        if self.count is None and self.prob is None:
            bits.append("always")
        if self.methods:
            bits.append("/".join(sorted(self.methods)))
        if self.path:
            bits.append("path~%s" % self.path)
        for k, v in self.header.items():
            bits.append("%s~%s" % (k, v))
        for k, v in self.params.items():
            if v != _PARAMS[k] and (self.fault, k) in _RELEVANT:
                bits.append("%s=%s" % (k, v))
        return " ".join(bits)

    def to_dict(self):
        d = {"fault": self.fault}
        if self.count is not None:
            d["count"] = self.count
        if self.prob is not None:
            d["prob"] = self.prob
            d["seed"] = self.seed
        if self.methods:
            d["method"] = sorted(self.methods)
        if self.path:
            d["path"] = self.path
        if self.header:
            d["header"] = dict(self.header)
        d.update({k: v for k, v in self.params.items() if v != _PARAMS[k]})
        return d

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or "fault" not in d:
            raise ValueError("a rule is an object with a 'fault' key, not %r" % (d,))
        return cls(**d)

    def matches(self, method, target, headers=()):
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.path is not None and self.path not in target:
            return False
        for name, want in self.header.items():
            if want not in (_header(headers, name) or ""):
                return False
        return True

    def fire(self):
        """Whether the fault happens to this (matching) request; uses up
        one of `count`."""
        with self._lock:
            if self.count is not None and self.fired >= self.count:
                return False
            if self.prob is not None and self.rng.random() >= self.prob:
                return False
            self.fired += 1
            return True

    def positions(self, n):
        """Body offsets to invert, drawn from the rule's generator."""
        with self._lock:
            k = min(int(self.params["flips"]), n)
            return sorted(self.rng.sample(range(n), k)) if k > 0 else []


_RELEVANT = {("reset", "fraction"), ("reset", "headers"), ("truncate", "fraction"),
             ("stall_body", "fraction"), ("overlong", "mode"), ("overlong", "extra"),
             ("bad_range", "shift"), ("stall", "stall_s"), ("stall_body", "stall_s"),
             ("latency", "latency_ms"), ("corrupt", "flips")}


def parse_rules(data):
    """Rules from a JSON text, a list of dicts, or Rule objects."""
    if isinstance(data, (str, bytes)):
        data = json.loads(data)
    if isinstance(data, (dict, Rule)):
        data = [data]
    return [r if isinstance(r, Rule) else Rule.from_dict(r) for r in data]


class _Closed(Exception):
    """The peer closed the connection."""


class _Reader:
    """Buffered reads from a socket: heads, exact lengths, pieces."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise _Closed()
        self.buf += data

    def head(self):
        """Bytes up to and including the blank line; None when the peer
        closed cleanly before sending anything."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                out = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise ValueError("header section over %d bytes" % _MAX_HEAD)
            try:
                self._fill()
            except _Closed:
                if self.buf.strip():
                    raise
                return None

    def line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                out = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise ValueError("line over %d bytes" % _MAX_HEAD)
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def some(self, n):
        """1..n bytes."""
        if not self.buf:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:len(out)]
        return out

    def rest(self):
        """Everything until the peer closes."""
        chunks = [bytes(self.buf)]
        self.buf.clear()
        while True:
            data = self.sock.recv(256 * 1024)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def chunked(self):
        """A chunked body, decoded (trailers dropped)."""
        parts = []
        while True:
            size_line = self.line().split(b";")[0].strip()
            size = int(size_line, 16)
            if size == 0:
                while self.line():
                    pass
                return b"".join(parts)
            parts.append(self.exact(size))
            if self.exact(2) != b"\r\n":
                raise ValueError("bad chunk framing")


def _parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise ValueError("bad header line %r" % line)
        name, value = line.split(":", 1)
        headers.append((name.strip(), value.strip()))
    return first, headers


def _header(headers, name, default=None):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def _without(headers, names):
    names = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in names]


def _wants_close(version, headers):
    tokens = {t.strip().lower() for t in _header(headers, "connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


def _rst(sock):
    """Abortive close: the peer gets a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _fin(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Upstream:
    """One upstream connection for one client connection (keep-alive)."""

    def __init__(self, addr, timeout, track):
        self.addr = addr
        self.timeout = timeout
        self.track = track      # track(sock, add): so stop() can shut it
        self.sock = None
        self.reader = None
        self.used = 0

    def connect(self):
        self.close()
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.track(self.sock, True)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _Reader(self.sock)
        self.used = 0

    def close(self):
        if self.sock is not None:
            self.track(self.sock, False)
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.reader = None


class _Body:
    """The upstream answer's body, read as it is relayed."""

    def __init__(self, reader=None, length=0, data=None):
        self.reader = reader
        self.data = data
        self.remaining = length if data is None else len(data)
        self.pos = 0

    def read(self, n):
        n = min(n, self.remaining)
        if self.data is not None:
            out = self.data[self.pos:self.pos + n]
        else:
            out = self.reader.some(n)
        self.pos += len(out)
        self.remaining -= len(out)
        return out


class FaultProxy:
    """The proxy, run by threads of this process. upstream: "host:port" or
    (host, port). Start with start() or a with block; stop() closes every
    connection and joins the threads."""

    def __init__(self, upstream, port=0, rules=(), upstream_timeout=30.0,
                 rules_file=None, verbose=False):
        if isinstance(upstream, str):
            host, _, p = upstream.rpartition(":")
            upstream = (host or "127.0.0.1", int(p))
        self.upstream = (upstream[0], int(upstream[1]))
        self.upstream_timeout = upstream_timeout
        self.verbose = verbose
        self._want_port = port
        self._lock = threading.Lock()
        self._rules = parse_rules(list(rules))
        self._counts = {}
        self._events = []
        self._targets = []
        self._stopping = threading.Event()
        self._listener = None
        self._accept_thread = None
        self._threads = set()
        self._socks = set()
        self._rules_file = rules_file
        self._rules_stamp = None
        self.reset_counts()
        self.port = None

    # ---- control ------------------------------------------------------

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def set_rules(self, rules):
        """Replace the rule set (Rule objects, dicts or JSON text)."""
        rules = parse_rules(rules)
        with self._lock:
            self._rules = rules
        return rules

    def add_rule(self, rule=None, **kw):
        rule = rule if isinstance(rule, Rule) else Rule.from_dict(rule or kw)
        with self._lock:
            self._rules = self._rules + [rule]
        return rule

    def clear_rules(self):
        self.set_rules([])

    def rules(self):
        with self._lock:
            return list(self._rules)

    def counts(self):
        """What the proxy did since the last reset_counts(): connections,
        requests (from clients), forwarded (to upstream), faulted (requests
        given a fault other than latency), one entry per fault kind,
        corrupt_bytes, latency_ms, upstream_errors, control."""
        with self._lock:
            return dict(self._counts)

    def targets(self):
        """(method, request target exactly as received) of recent requests,
        oldest first: what a client really sent, before any server's
        normalisation."""
        with self._lock:
            return list(self._targets)

    def events(self):
        """(method, target, fault) of recent faulted requests, oldest first."""
        with self._lock:
            return list(self._events)

    def reset_counts(self):
        with self._lock:
            self._counts = dict.fromkeys(
                ("connections", "requests", "forwarded", "faulted", "control",
                 "upstream_errors", "corrupt_bytes", "latency_ms") + FAULTS, 0)
            self._events = []
            self._targets = []

    def _count(self, key, n=1):
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def _faulted(self, rule, method, target):
        with self._lock:
            self._counts[rule.fault] += 1
            if rule.fault != "latency":
                self._counts["faulted"] += 1
                self._events.append((method, target, rule.fault))
                del self._events[:-1000]
        if self.verbose:
            print("faultproxy: %s %s -> %s" % (method, target, rule.fault),
                  file=sys.stderr, flush=True)

    # ---- life cycle ------------------------------------------------------

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self._want_port))
        s.listen(128)
        self._listener = s
        self.port = s.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name="faultproxy-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout=5.0):
        """Close the listener and every connection; join the threads."""
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self._listener.close()
            except OSError:
                pass
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = [t for t in self._threads if t.is_alive()]
        return not left

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, sock, add=True):
        with self._lock:
            (self._socks.add if add else self._socks.discard)(sock)

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.01)
                continue
            if self._stopping.is_set():
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._count("connections")
            t = threading.Thread(target=self._serve, args=(conn,),
                                 name="faultproxy-conn", daemon=True)
            with self._lock:
                self._threads.add(t)
                self._socks.add(conn)
            t.start()

    def _maybe_reload(self):
        if not self._rules_file:
            return
        try:
            st = os.stat(self._rules_file)
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._rules_stamp:
            return
        self._rules_stamp = stamp
        try:
            with open(self._rules_file, "rb") as f:
                self.set_rules(f.read() or b"[]")
        except (OSError, ValueError, TypeError) as e:
            print("faultproxy: %s: %s (rules kept)" % (self._rules_file, e),
                  file=sys.stderr, flush=True)

    # ---- one client connection ---------------------------------------------

    def _serve(self, csock):
        reader = _Reader(csock)
        up = _Upstream(self.upstream, self.upstream_timeout, self._track)
        closed = False
        try:
            while not self._stopping.is_set():
                try:
                    raw = reader.head()
                except (_Closed, OSError, ValueError):
                    break
                if raw is None:
                    break
                first, headers = _parse_head(raw)
                parts = first.split(" ")
                if len(parts) != 3:
                    break
                method, target, version = parts
                body = self._request_body(csock, reader, headers)
                if body is None:
                    break
                if target.startswith(CONTROL_PREFIX):
                    self._control(csock, method, target, body)
                    continue
                self._maybe_reload()
                self._count("requests")
                with self._lock:
                    self._targets.append((method, target))
                    del self._targets[:-1000]
                keep = self._one(csock, up, method, target, version, headers, body)
                if keep == "gone":
                    closed = True
                if keep != "keep":
                    break
        except (OSError, _Closed, ValueError) as e:
            if self.verbose and not self._stopping.is_set():
                print("faultproxy: connection: %r" % (e,), file=sys.stderr, flush=True)
        finally:
            up.close()
            self._track(csock, add=False)
            if not closed:
                try:
                    csock.close()
                except OSError:
                    pass
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _request_body(self, csock, reader, headers):
        te = _header(headers, "transfer-encoding", "").lower()
        length = _header(headers, "content-length")
        has_body = "chunked" in te or (length is not None and int(length) > 0)
        if has_body and _header(headers, "expect", "").lower() == "100-continue":
            csock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if "chunked" in te:
                return reader.chunked()
            return reader.exact(int(length)) if length else b""
        except (_Closed, OSError):
            return None

    def _one(self, csock, up, method, target, version, headers, body):
        """Serve one request. Returns "keep" (connection reusable), "close"
        or "gone" (socket already closed here)."""
        client_close = _wants_close(version, headers)
        rules = self.rules()
        delay = 0
        fault = None
        for r in rules:
            if not r.matches(method, target, headers):
                continue
            if r.fault == "latency":
                if r.fire():
                    delay += float(r.params["latency_ms"])
                    self._faulted(r, method, target)
            elif fault is None and (r.fault in _REQUEST_FAULTS or
                                    (r.fault == "reset" and not r.params["headers"])):
                if r.fire():
                    fault = r
        if delay:
            self._count("latency_ms", int(delay))
            if self._stopping.wait(delay / 1000.0):
                return "close"
        if fault is not None:
            self._faulted(fault, method, target)
            if fault.fault in _ERRORS:
                self._send_error(csock, fault.fault, method, target, client_close)
                return "close" if client_close else "keep"
            if fault.fault == "stall":
                self._stall(csock, fault.params["stall_s"])
                return "close"
            _rst(csock)                      # reset before any answer
            return "gone"

        answer = self._forward(up, method, target, headers, body)
        if answer is None:
            self._count("upstream_errors")
            self._send_plain(csock, 502, "Bad Gateway",
                             b"faultproxy: upstream %s:%d unreachable\n" % (
                                 self.upstream[0].encode(), self.upstream[1]))
            return "close"
        status, reason, rheaders, rbody, up_keep = answer
        self._count("forwarded")

        body_fault = None
        if 200 <= status < 300 and rbody.remaining > 0:
            has_range = _parse_content_range(_header(rheaders, "content-range")) is not None
            for r in rules:
                if r.fault not in _BODY_FAULTS or not r.matches(method, target, headers):
                    continue
                if r.fault == "reset" and not r.params["headers"]:
                    continue
                if r.fault == "bad_range" and not has_range:
                    continue
                if r.fire():
                    body_fault = r
                    break
        out_headers = _without(rheaders, _HOP_BY_HOP | {"content-length"})
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        n = rbody.remaining
        length_header = _header(rheaders, "content-length")
        if no_body:
            if length_header is not None:
                out_headers.append(("Content-Length", length_header))
        else:
            out_headers.append(("Content-Length", str(n)))
        limit = None        # bytes of body sent before `after`
        after = None
        extra = b""
        flips = []
        if body_fault is not None:
            self._faulted(body_fault, method, target)
            p = body_fault.params
            kind = body_fault.fault
            if kind in ("reset", "truncate", "stall_body"):
                limit = min(n - 1, int(n * float(p["fraction"])))
                after = {"reset": "reset", "truncate": "close",
                         "stall_body": "stall"}[kind]
            elif kind == "overlong":
                extra = bytes([0x5A]) * int(p["extra"])
                if p["mode"] == "length":
                    out_headers = _set(out_headers, "Content-Length", str(n + len(extra)))
            elif kind == "bad_range":
                a, b, total = _parse_content_range(_header(rheaders, "content-range"))
                s = int(p["shift"])
                out_headers = _set(out_headers, "Content-Range",
                                   "bytes %d-%d/%s" % (a + s, b + s, total))
            elif kind == "corrupt":
                flips = body_fault.positions(n)
                self._count("corrupt_bytes", len(flips))
        keep_client = not client_close and after is None
        out_headers.append(("Connection", "keep-alive" if keep_client else "close"))
        head = "HTTP/1.1 %d %s\r\n" % (status, reason) + "".join(
            "%s: %s\r\n" % kv for kv in out_headers) + "\r\n"
        csock.sendall(head.encode("latin-1"))
        sent = 0
        flip_i = 0
        while rbody.remaining and not self._stopping.is_set():
            piece = rbody.read(_PIECE)
            if flip_i < len(flips):
                piece = bytearray(piece)
                while flip_i < len(flips) and flips[flip_i] < sent + len(piece):
                    piece[flips[flip_i] - sent] ^= 0xFF
                    flip_i += 1
            if limit is not None and sent + len(piece) >= limit:
                csock.sendall(piece[:limit - sent])
                sent = limit
                break
            csock.sendall(piece)
            sent += len(piece)
        if rbody.remaining or not up_keep:
            up.close()          # unread upstream bytes: that connection is spoiled
        if extra:
            csock.sendall(extra)
        if after == "reset":
            time.sleep(0.02)    # let the partial body leave before the RST
            _rst(csock)
            return "gone"
        if after == "close":
            _fin(csock)
            return "gone"
        if after == "stall":
            self._stall(csock, body_fault.params["stall_s"])
            return "close"
        if self._stopping.is_set():
            return "close"
        return "keep" if keep_client else "close"

    def _forward(self, up, method, target, headers, body):
        """Send the request upstream and read the answer's head. Returns
        (status, reason, headers, _Body, upstream_reusable) or None."""
        fwd = _without(headers, _HOP_BY_HOP | {"content-length"})
        if body or method in ("PUT", "POST"):
            fwd.append(("Content-Length", str(len(body))))
        fwd.append(("Connection", "keep-alive"))
        data = ("%s %s HTTP/1.1\r\n" % (method, target) + "".join(
            "%s: %s\r\n" % kv for kv in fwd) + "\r\n").encode("latin-1") + body
        for attempt in range(2):
            reused = up.sock is not None
            try:
                if not reused:
                    up.connect()
                up.used += 1
                up.sock.sendall(data)
                while True:
                    raw = up.reader.head()
                    if raw is None:
                        raise _Closed()
                    first, rheaders = _parse_head(raw)
                    version, status, reason = (first.split(" ", 2) + [""])[:3]
                    status = int(status)
                    if 100 <= status < 200 and status != 101:
                        continue        # interim answer
                    break
            except (OSError, _Closed, ValueError):
                up.close()
                if reused and attempt == 0:
                    continue            # a stale keep-alive connection: once more
                return None
            keep = not _wants_close(version, rheaders)
            if method == "HEAD" or status in (204, 304) or status < 200:
                return status, reason, rheaders, _Body(), keep
            te = _header(rheaders, "transfer-encoding", "").lower()
            try:
                if "chunked" in te:
                    return status, reason, rheaders, _Body(data=up.reader.chunked()), keep
                length = _header(rheaders, "content-length")
                if length is None:
                    return status, reason, rheaders, _Body(data=up.reader.rest()), False
            except (OSError, _Closed, ValueError):
                up.close()
                return None
            return status, reason, rheaders, _Body(up.reader, int(length)), keep
        return None

    def _send_error(self, csock, kind, method, target, client_close):
        status, reason, code, message = _ERRORS[kind]
        with self._lock:
            rid = "FAULTPROXY%010d" % self._counts["requests"]
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
               '<Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId>'
               '</Error>' % (code, message, _xml_escape(target.split("?")[0]), rid)).encode()
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                "Content-Length: %d\r\nx-amz-request-id: %s\r\nServer: faultproxy\r\n"
                "Connection: %s\r\n\r\n" % (status, reason, len(xml), rid,
                                            "close" if client_close else "keep-alive"))
        csock.sendall(head.encode() + (b"" if method == "HEAD" else xml))

    def _send_plain(self, csock, status, reason, text, extra_headers=(),
                    ctype="text/plain", close=True):
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            status, reason, ctype, len(text))
        head += "".join("%s: %s\r\n" % kv for kv in extra_headers)
        head += "Connection: %s\r\n\r\n" % ("close" if close else "keep-alive")
        try:
            csock.sendall(head.encode() + text)
        except OSError:
            pass

    def _stall(self, csock, seconds):
        """Say nothing until `seconds` pass (None: forever), the client
        closes, or the proxy stops."""
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        while not self._stopping.is_set():
            wait = 0.1
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            try:
                ready, _, _ = select.select([csock], [], [], wait)
                if ready and not csock.recv(65536):
                    return          # the client gave up
            except (OSError, ValueError):
                return

    def _control(self, csock, method, target, body):
        self._count("control")
        what = target[len(CONTROL_PREFIX):].split("?")[0].strip("/")
        try:
            if what == "counts" and method == "GET":
                out = self.counts()
            elif what == "rules" and method == "GET":
                out = [r.to_dict() for r in self.rules()]
            elif what == "rules" and method in ("PUT", "POST"):
                out = [r.to_dict() for r in self.set_rules(body or b"[]")]
            elif what == "rules/add" and method == "POST":
                out = self.add_rule(json.loads(body)).to_dict()
            elif what == "reset" and method == "POST":
                self.reset_counts()
                out = {"reset": True}
            elif what == "events" and method == "GET":
                out = self.events()
            else:
                self._send_plain(csock, 404, "Not Found", b"unknown control call\n",
                                 close=False)
                return
        except (ValueError, TypeError) as e:
            self._send_plain(csock, 400, "Bad Request", str(e).encode() + b"\n",
                             close=False)
            return
        self._send_plain(csock, 200, "OK", json.dumps(out).encode(),
                         ctype="application/json", close=False)


def _set(headers, name, value):
    return _without(headers, {name}) + [(name, value)]


def _parse_content_range(value):
    """"bytes a-b/total" -> (a, b, total text), else None."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, total = value[6:].split("/", 1)
        a, b = span.split("-", 1)
        return int(a), int(b), total
    except ValueError:
        return None


def _xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ProxyProcess:
    """faultproxy.py run as its own process (stopped by its PID), driven
    through its control API. A context manager."""

    def __init__(self, upstream, rules=(), workdir=None, verbose=False):
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="faultproxy-")
        self.port_file = os.path.join(self.dir, "port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        if not isinstance(upstream, str):
            upstream = "%s:%d" % tuple(upstream)
        cmd = [sys.executable, os.path.abspath(__file__), "--upstream", upstream,
               "--port-file", self.port_file, "--exit-with-parent",
               "--rules", json.dumps([r.to_dict() if isinstance(r, Rule) else r
                                      for r in rules])]
        if verbose:
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("faultproxy exited with %s" % self.proc.returncode)
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    break
            except OSError:
                pass
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("faultproxy did not write %s" % self.port_file)
        self.final_counts = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _call(self, method, what, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, CONTROL_PREFIX + what,
                      body=None if body is None else json.dumps(body).encode())
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                raise RuntimeError("faultproxy %s %s: %d %s" % (method, what, r.status,
                                                               data.decode(errors="replace")))
            return json.loads(data)
        finally:
            c.close()

    def set_rules(self, rules):
        return self._call("PUT", "rules", [r.to_dict() if isinstance(r, Rule) else r
                                           for r in rules])

    def add_rule(self, rule):
        return self._call("POST", "rules/add",
                          rule.to_dict() if isinstance(rule, Rule) else rule)

    def counts(self):
        return self._call("GET", "counts")

    def reset_counts(self):
        self._call("POST", "reset")

    def stop(self, timeout=5.0):
        """SIGTERM by PID, SIGKILL if it lingers; returns its final counts."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                out, _ = self.proc.communicate()
            for line in (out or "").splitlines():
                if line.startswith("faultproxy counts: "):
                    self.final_counts = json.loads(line[len("faultproxy counts: "):])
        else:
            self.proc.communicate()
        if self._own_dir:
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)
            self._own_dir = False
        return self.final_counts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 proxy "
                                 "for tests; listens on 127.0.0.1 only.")
    ap.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--pid-file", help="write our PID here")
    ap.add_argument("--rules-file", help="JSON list of rules, re-read when it changes")
    ap.add_argument("--rules", help="JSON list of rules to start with")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started us goes away")
    ap.add_argument("--verbose", action="store_true", help="log faults on stderr")
    args = ap.parse_args(argv)
    proxy = FaultProxy(args.upstream, port=args.port, rules_file=args.rules_file,
                       rules=parse_rules(args.rules) if args.rules else (),
                       verbose=args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxy.start()
    if args.pid_file:
        _write_atomic(args.pid_file, "%d\n" % os.getpid())
    if args.port_file:
        _write_atomic(args.port_file, "%d\n" % proxy.port)
    print("faultproxy: listening on 127.0.0.1:%d, upstream %s:%d" % (
        proxy.port, *proxy.upstream), flush=True)
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    proxy.stop()
    print("faultproxy counts: %s" % json.dumps(proxy.counts()), flush=True)
    for f in (args.port_file, args.pid_file):
        if f:
            try:
                os.unlink(f)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
