#!/usr/bin/python3
"""Fake AWS credential services for tests, one HTTP server on 127.0.0.1
(Python standard library + botocore's SigV4 code for checking STS callers):

  IMDSv2      PUT  /latest/api/token  (needs X-aws-ec2-metadata-token-ttl-seconds
                   1..21600, else 400; X-Forwarded-For -> 403, as EC2)
              GET  /latest/meta-data/iam/security-credentials/        role name
              GET  /latest/meta-data/iam/security-credentials/<role>  JSON
              GET  /latest/meta-data/placement/region, .../availability-zone,
                   /latest/dynamic/instance-identity/document
              Every GET needs a live X-aws-ec2-metadata-token, else 401
              (HttpTokens=required; "imds_v1": true in /_control allows
              token-less GETs).
  container   GET  --container-path (default /v2/credentials/dsc-task): the
                   relative-URI endpoint (ECS), no auth
              GET  --container-full-path (default /v1/credentials): needs
                   Authorization equal to --container-token, else 401 (EKS Pod
                   Identity / full URI)
  STS         GET or POST / (Query API, Version=2011-06-15):
                AssumeRole: the caller's SigV4 signature is checked with
                  botocore against --source-key AKID:SECRET[:TOKEN] and every
                  credential issued here (role chaining); RoleArn,
                  RoleSessionName, DurationSeconds (900..43200) validated;
                  ExternalId must equal --external-id when that is set
                AssumeRoleWithWebIdentity: unsigned; WebIdentityToken must
                  equal --web-identity-token (else 400 InvalidIdentityToken)
                GetCallerIdentity: signed; says who the key belongs to
              Answers and errors in STS's XML (namespace
              https://sts.amazonaws.com/doc/2011-06-15/).
  SSO portal  GET /federation/credentials?role_name=R&account_id=A with
              x-amz-sso_bearer_token equal to --sso-token (else 401
              UnauthorizedException); R/A must be --sso-role/--sso-account
              (else 403 ForbiddenException).

Every credential issued lives --lifetime seconds (AssumeRole:
min(DurationSeconds, lifetime)), has a unique 20-character access key id whose
prefix names its source, and is appended to --registry (JSONL: access_key,
secret, token, expires, source, issued) for sigv4_proxy.py:
    ASIAIMDS...    IMDS role credentials
    ASIAECS...     container, relative URI
    ASIAEKS...     container, full URI with Authorization token
    ASIASTSROLE... STS AssumeRole
    ASIASTSWEB...  STS AssumeRoleWithWebIdentity
    ASIASSO...     SSO GetRoleCredentials
    ASIAPROC...    /_issue for a credential_process script
    AKIAFAKE...    /_issue, a long-term key (no token, no expiry)
IMDS and the container endpoint hand out the same credentials again while
more than half their lifetime is left (as the real ones reuse theirs);
"reuse": false issues new ones on every request; "rotate": true drops them.

Run (stopped by PID with SIGTERM; final stats on stdout):
    /usr/bin/python3 aws_fakes.py --port-file F --registry REG.jsonl \\
        [--lifetime 20] [--source-key AKID:SECRET] [--external-id X] \\
        [--web-identity-token T] [--sso-token T] [--container-token T] \\
        [--fault JSON] [--pid-file P] [--log REQUESTS.jsonl] [--exit-with-parent]

Control API (same port):
  GET  /_stats    {"requests": {endpoint: n}, "services": {imds|container|sts|
                  sso: n}, "issued": {source: n}, "faulted": n, "last": {...}}
                  endpoints: imds_token, imds_role, imds_credentials,
                  imds_region, imds_other, container, container_full,
                  sts_AssumeRole, sts_AssumeRoleWithWebIdentity,
                  sts_GetCallerIdentity, sso, unknown; "last" holds the
                  parameters of the latest STS/SSO call per endpoint
  GET  /_control  the settings and fault rules
  POST /_issue    {"source": "process"|"static", "lifetime": s}: a new
                  credential in credential_process's JSON (Version 1),
                  registered like the others: "process" ASIAPROC... with a
                  token and expiry, "static" AKIAFAKE... long-term (no token,
                  no expiry; usable as an AssumeRole source key)
  POST /_control  JSON object, any of:
        "faults": [rule, ...]   replace the rules     "add_fault": rule
        "clear_faults": true    "reset_stats": true   "rotate": true
        "set": {"lifetime", "external_id", "web_identity_token", "sso_token",
                "container_token", "imds_v1", "reuse", "role_name", "region",
                "sso_account", "sso_role"}
  A rule: {"service": "imds"|"container"|"sts"|"sso", "mode": M,
           "count": N (only the next N matching requests), "endpoint": E
           (only that endpoint name, e.g. "imds_credentials"), ...}
     hang          read the request, never answer (until the client goes)
     delay         answer normally after "seconds"
     malformed     200 with a cut JSON (or XML) body
     empty         200 with an empty body
     http500       500 with the service's error body
     error         the service's error: "code" (default AccessDenied for STS,
                   UnauthorizedException for SSO), "status"
     token_refused IMDS only: the token PUT answers 403 (IMDSv2 unusable;
                   GETs without a token still get 401 unless imds_v1)
"""
import argparse
import base64
import http.server
import json
import os
import re
import secrets
import select
import signal
import socketserver
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sigv4_proxy import Registry, verify_request  # noqa: E402

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT = "123456789012"
PREFIX = {"imds": "ASIAIMDS", "container": "ASIAECS", "container_full": "ASIAEKS",
          "sts_role": "ASIASTSROLE", "sts_web": "ASIASTSWEB", "sso": "ASIASSO",
          "process": "ASIAPROC", "static": "AKIAFAKE"}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SERVICES = ("imds", "container", "sts", "sso")
MODES = ("hang", "delay", "malformed", "empty", "http500", "error", "token_refused")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.registry_path = args.registry
        self.registry = Registry(args.registry, {})
        for item in args.source_key:
            ak, _, rest = item.partition(":")
            secret, _, token = rest.partition(":")
            self.registry.add({"access_key": ak, "secret": secret,
                               "token": token or None, "expires": None,
                               "source": "source-key"})
        self.cfg = {
            "lifetime": args.lifetime, "external_id": args.external_id,
            "web_identity_token": args.web_identity_token,
            "sso_token": args.sso_token, "container_token": args.container_token,
            "imds_v1": False, "reuse": True, "role_name": args.role_name,
            "region": args.region, "sso_account": args.sso_account,
            "sso_role": args.sso_role, "container_path": args.container_path,
            "container_full_path": args.container_full_path,
        }
        self.faults = [self.check_rule(json.loads(f)) for f in args.fault]
        self.imds_tokens = {}
        self.cached = {}        # imds / container / container_full -> cred
        self.seen = set()
        self.stopping = threading.Event()
        self.log = open(args.log, "a") if args.log else None
        self.reset_stats()

    def reset_stats(self):
        self.requests = {}
        self.services = {}
        self.issued = {}
        self.faulted = 0
        self.last = {}

    @staticmethod
    def check_rule(rule):
        if rule.get("service") not in SERVICES:
            raise ValueError("rule needs service in %s: %r" % (SERVICES, rule))
        if rule.get("mode") not in MODES:
            raise ValueError("rule needs mode in %s: %r" % (MODES, rule))
        return dict(rule)

    def count(self, service, endpoint):
        with self.lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            self.services[service] = self.services.get(service, 0) + 1

    def fault_for(self, service, endpoint):
        with self.lock:
            for rule in self.faults:
                if rule["service"] != service:
                    continue
                if rule.get("endpoint") not in (None, endpoint):
                    continue
                if rule.get("count") is not None:
                    if rule["count"] <= 0:
                        continue
                    rule["count"] -= 1
                self.faulted += 1
                return rule
        return None

    def new_key(self, source):
        prefix = PREFIX[source]
        while True:
            ak = prefix + "".join(secrets.choice(_ALNUM) for _ in range(20 - len(prefix)))
            if ak not in self.seen:
                self.seen.add(ak)
                return ak

    def issue(self, source, lifetime=None, **info):
        """A new credential, appended to the registry before it is answered."""
        now = time.time()
        life = self.cfg["lifetime"] if lifetime is None else lifetime
        with self.lock:
            ak = self.new_key(source)
            rec = {"access_key": ak,
                   "secret": base64.b64encode(secrets.token_bytes(30)).decode(),
                   "token": "FakeSessionToken/%s/%s" % (source, secrets.token_urlsafe(48)),
                   "expires": int(now + life), "issued": round(now, 3),
                   "source": source}
            if source == "static":      # a long-term key: no token, no expiry
                rec.update(token=None, expires=None)
            rec.update(info)
            if self.registry_path:
                with open(self.registry_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            self.registry.add(rec)
            self.issued[source] = self.issued.get(source, 0) + 1
        return rec

    def reusable(self, source):
        """IMDS / container: the cached credential while over half its
        lifetime is left, else a new one."""
        with self.lock:
            rec = self.cached.get(source)
            if (rec and self.cfg["reuse"]
                    and rec["expires"] - time.time() > (rec["expires"] - rec["issued"]) / 2):
                return rec
        rec = self.issue(source, role=self.cfg["role_name"])
        with self.lock:
            self.cached[source] = rec
        return rec


class FakeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, state, host="127.0.0.1"):
        super().__init__((host, port), _Handler)
        self.state = state


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-fakes"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._dispatch()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    # -- plumbing --

    def _answer(self, status, body=b"", ctype="text/plain", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _json(self, status, obj, headers=()):
        self._answer(status, json.dumps(obj, indent=2), "application/json", headers)

    def _hang(self):
        """Keep the connection open and silent until the client closes it
        (or the server stops, or ten minutes pass)."""
        st = self.server.state
        self.close_connection = True
        end = time.time() + 600
        while time.time() < end and not st.stopping.is_set():
            r, _, _ = select.select([self.connection], [], [], 0.2)
            if r:
                try:
                    if not self.connection.recv(4096):
                        return
                except OSError:
                    return
        self._status = "hang"

    def _dispatch(self):
        st = self.server.state
        self._status = None
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        self.raw_path, self.raw_query = path, query
        self.query = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if path in ("/_control", "/_stats", "/_issue"):
            return self._control(path)
        if path.startswith("/latest/"):
            service, handler = "imds", self._imds
        elif path == "/federation/credentials":
            service, handler = "sso", self._sso
        elif path == st.cfg["container_path"]:
            service, handler = "container", lambda f: self._container(f, False)
        elif path == st.cfg["container_full_path"]:
            service, handler = "container", lambda f: self._container(f, True)
        elif path == "/" and ("Action" in self.query or self.command == "POST"):
            service, handler = "sts", self._sts
        else:
            st.count("unknown", "unknown")
            return self._answer(404, "not found\n")
        try:
            handler(None)
        finally:
            if st.log:
                with st.lock:
                    st.log.write(json.dumps({"time": round(time.time(), 3),
                                             "method": self.command, "path": path,
                                             "service": service,
                                             "status": self._status}) + "\n")
                    st.log.flush()

    def _pre_fault(self, service, endpoint):
        """Count the request; apply a fault that needs no real answer.
        Returns (rule or None, done)."""
        st = self.server.state
        st.count(service, endpoint)
        rule = st.fault_for(service, endpoint)
        if rule is None:
            return None, False
        mode = rule["mode"]
        if mode == "hang":
            self._hang()
            return rule, True
        if mode == "delay":
            time.sleep(float(rule.get("seconds", 1)))
            return None, False
        if mode == "empty":
            self._answer(200, b"", "application/json")
            return rule, True
        return rule, False

    # -- IMDS --

    def _imds(self, _):
        st = self.server.state
        path = self.raw_path
        cred_prefix = "/latest/meta-data/iam/security-credentials/"
        if path == "/latest/api/token":
            endpoint = "imds_token"
        elif path == cred_prefix:
            endpoint = "imds_role"
        elif path.startswith(cred_prefix):
            endpoint = "imds_credentials"
        elif path.startswith("/latest/meta-data/placement/") or \
                path == "/latest/dynamic/instance-identity/document":
            endpoint = "imds_region"
        else:
            endpoint = "imds_other"
        rule, done = self._pre_fault("imds", endpoint)
        if done:
            return
        mode = rule and rule["mode"]
        if mode == "http500":
            return self._answer(500, "Internal Server Error\n")
        if mode == "error":
            return self._answer(int(rule.get("status", 500)), rule.get("code", "error") + "\n")
        if endpoint == "imds_token":
            if self.command != "PUT":
                return self._answer(405, "Method Not Allowed\n")
            if mode == "token_refused" or self.headers.get("X-Forwarded-For"):
                return self._answer(403, "Forbidden\n")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self._answer(400, "Bad Request\n")
            token = "AQAEA" + secrets.token_urlsafe(40)
            with st.lock:
                st.imds_tokens[token] = time.time() + int(ttl)
            return self._answer(200, token, headers=[
                ("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        if self.command not in ("GET", "HEAD"):
            return self._answer(405, "Method Not Allowed\n")
        token = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            live = token is not None and st.imds_tokens.get(token, 0) > time.time()
            v1 = st.cfg["imds_v1"]
        if not live and not (token is None and v1):
            return self._answer(401, "Unauthorized\n")
        region = st.cfg["region"]
        if endpoint == "imds_role":
            return self._answer(200, st.cfg["role_name"])
        if endpoint == "imds_credentials":
            role = path[len(cred_prefix):]
            if role != st.cfg["role_name"]:
                return self._answer(404, "Not Found\n")
            if mode == "malformed":
                return self._answer(200, '{"Code": "Success", "AccessKeyId": "ASIA',
                                    "text/plain")
            rec = st.reusable("imds")
            return self._answer(200, json.dumps({
                "Code": "Success", "LastUpdated": iso(rec["issued"]),
                "Type": "AWS-HMAC", "AccessKeyId": rec["access_key"],
                "SecretAccessKey": rec["secret"], "Token": rec["token"],
                "Expiration": iso(rec["expires"])}, indent=2), "text/plain")
        if path == "/latest/meta-data/placement/region":
            return self._answer(200, region)
        if path == "/latest/meta-data/placement/availability-zone":
            return self._answer(200, region + "a")
        if path == "/latest/dynamic/instance-identity/document":
            return self._answer(200, json.dumps({
                "accountId": ACCOUNT, "region": region,
                "availabilityZone": region + "a", "instanceId": "i-0fake0fake0fake0"},
                indent=2))
        return self._answer(404, "Not Found\n")

    # -- container --

    def _container(self, _, full):
        st = self.server.state
        endpoint = "container_full" if full else "container"
        rule, done = self._pre_fault("container", endpoint)
        if done:
            return
        mode = rule and rule["mode"]
        if mode == "http500":
            return self._json(500, {"code": "InternalServerError",
                                    "message": "internal error"})
        if mode == "error":
            return self._json(int(rule.get("status", 400)), {
                "code": rule.get("code", "AccessDenied"), "message": "fault injected"})
        if full:
            want = st.cfg["container_token"]
            got = self.headers.get("Authorization")
            if not want or got != want:
                return self._json(401, {"code": "AccessDeniedException",
                                        "message": "Authorization header is "
                                        "missing or wrong"})
        if mode == "malformed":
            return self._answer(200, '{"AccessKeyId": "ASIA', "application/json")
        rec = st.reusable(endpoint)
        return self._json(200, {
            "RoleArn": "arn:aws:iam::%s:role/%s" % (ACCOUNT, st.cfg["role_name"]),
            "AccessKeyId": rec["access_key"], "SecretAccessKey": rec["secret"],
            "Token": rec["token"], "Expiration": iso(rec["expires"])})

    # -- STS --

    def _sts_error(self, status, code, message, kind="Sender"):
        body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
                '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
                '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
                % (STS_NS, kind, escape(code), escape(message), _request_id()))
        self._answer(status, body, "text/xml")

    def _sts(self, _):
        st = self.server.state
        params = dict(self.query)
        ctype = self.headers.get("Content-Type") or ""
        if self.command == "POST" and "x-www-form-urlencoded" in ctype:
            params.update(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"),
                                                 keep_blank_values=True))
        action = params.get("Action", "")
        endpoint = "sts_" + (action or "none")
        rule, done = self._pre_fault("sts", endpoint)
        if done:
            return
        mode = rule and rule["mode"]
        if mode == "http500":
            return self._sts_error(500, "InternalFailure", "The request processing "
                                   "has failed because of an unknown error.", "Receiver")
        if mode == "error":
            code = rule.get("code", "AccessDenied")
            status = int(rule.get("status", {"AccessDenied": 403, "ExpiredToken": 400,
                                             "InvalidIdentityToken": 400,
                                             "Throttling": 400,
                                             "RegionDisabledException": 403}.get(code, 400)))
            return self._sts_error(status, code, "fault injected: %s" % code)
        if params.get("Version") != "2011-06-15":
            return self._sts_error(400, "InvalidAction", "Could not find operation "
                                   "%s for version %s" % (action, params.get("Version")))
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"):
            return self._sts_error(400, "InvalidAction", "Could not find operation "
                                   "%s for version 2011-06-15" % action)
        caller = None
        if action != "AssumeRoleWithWebIdentity":
            if self.headers.get("Authorization") is None:
                return self._sts_error(403, "MissingAuthenticationToken",
                                       "Request is missing Authentication Token")
            v = verify_request(self.command, self.raw_path, self.raw_query,
                               list(self.headers.items()), self.body, st.registry,
                               service="sts", max_skew=300)
            if not v.ok:
                return self._sts_error(v.status, v.code, v.message)
            caller = v.cred
        if action == "GetCallerIdentity":
            st.last[endpoint] = {"caller": caller["access_key"]}
            arn = caller.get("arn") or "arn:aws:iam::%s:user/%s" % (
                ACCOUNT, caller.get("source", "user"))
            return self._answer(200, _sts_xml("GetCallerIdentity",
                                              "    <Arn>%s</Arn>\n    <UserId>%s</UserId>\n"
                                              "    <Account>%s</Account>\n"
                                              % (escape(arn), escape(caller["access_key"]),
                                                 ACCOUNT)), "text/xml")
        role_arn = params.get("RoleArn", "")
        session = params.get("RoleSessionName", "")
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", role_arn):
            return self._sts_error(400, "ValidationError", "1 validation error "
                                   "detected: Value '%s' at 'roleArn' failed to "
                                   "satisfy constraint" % role_arn)
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
            return self._sts_error(400, "ValidationError", "1 validation error "
                                   "detected: Value '%s' at 'roleSessionName' failed "
                                   "to satisfy constraint" % session)
        duration = params.get("DurationSeconds")
        lifetime = st.cfg["lifetime"]
        if duration is not None:
            if not duration.isdigit() or not 900 <= int(duration) <= 43200:
                return self._sts_error(400, "ValidationError", "1 validation error "
                                       "detected: Value '%s' at 'durationSeconds' "
                                       "failed to satisfy constraint" % duration)
            lifetime = min(int(duration), lifetime)
        role_name = role_arn.rsplit("/", 1)[1]
        assumed_arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT, role_name, session)
        last = {"RoleArn": role_arn, "RoleSessionName": session,
                "DurationSeconds": duration}
        if action == "AssumeRole":
            last["ExternalId"] = params.get("ExternalId")
            last["caller"] = caller["access_key"]
            st.last[endpoint] = last
            want = st.cfg["external_id"]
            if want and params.get("ExternalId") != want:
                return self._sts_error(403, "AccessDenied", "User: %s is not "
                                       "authorized to perform: sts:AssumeRole on "
                                       "resource: %s" % (caller.get("arn") or
                                                         caller["access_key"], role_arn))
            source = "sts_role"
        else:
            token = params.get("WebIdentityToken", "")
            last["WebIdentityToken"] = token[:16] + "..."
            st.last[endpoint] = last
            if not st.cfg["web_identity_token"] or token != st.cfg["web_identity_token"]:
                return self._sts_error(400, "InvalidIdentityToken", "The web identity "
                                       "token that was passed could not be validated "
                                       "by AWS. Get a new identity token from the "
                                       "identity provider and then retry the request.")
            source = "sts_web"
        if mode == "malformed":
            return self._answer(200, '<%sResponse xmlns="%s"><%sResult><Credentials>'
                                '<AccessKeyId>ASIA' % (action, STS_NS, action), "text/xml")
        rec = st.issue(source, lifetime, arn=assumed_arn, session=session)
        inner = ("    <Credentials>\n      <AccessKeyId>%s</AccessKeyId>\n"
                 "      <SecretAccessKey>%s</SecretAccessKey>\n"
                 "      <SessionToken>%s</SessionToken>\n"
                 "      <Expiration>%s</Expiration>\n    </Credentials>\n"
                 "    <AssumedRoleUser>\n      <Arn>%s</Arn>\n"
                 "      <AssumedRoleId>AROAFAKE%s:%s</AssumedRoleId>\n"
                 "    </AssumedRoleUser>\n"
                 % (rec["access_key"], escape(rec["secret"]), escape(rec["token"]),
                    iso(rec["expires"]), escape(assumed_arn),
                    role_name.upper()[:12], escape(session)))
        if action == "AssumeRole":
            inner += "    <PackedPolicySize>0</PackedPolicySize>\n"
        else:
            inner += ("    <SubjectFromWebIdentityToken>system:serviceaccount:dsc:"
                      "test</SubjectFromWebIdentityToken>\n"
                      "    <Audience>sts.amazonaws.com</Audience>\n"
                      "    <Provider>arn:aws:iam::%s:oidc-provider/oidc.fake</Provider>\n"
                      % ACCOUNT)
        return self._answer(200, _sts_xml(action, inner), "text/xml")

    # -- SSO portal --

    def _sso(self, _):
        st = self.server.state
        rule, done = self._pre_fault("sso", "sso")
        if done:
            return
        mode = rule and rule["mode"]
        role, account = self.query.get("role_name"), self.query.get("account_id")
        st.last["sso"] = {"role_name": role, "account_id": account}
        if mode == "http500":
            return self._sso_error(500, "InternalServerException", "internal error")
        if mode == "error":
            code = rule.get("code", "UnauthorizedException")
            return self._sso_error(int(rule.get("status", {
                "UnauthorizedException": 401, "ForbiddenException": 403,
                "TooManyRequestsException": 429,
                "ResourceNotFoundException": 404}.get(code, 400))), code, "fault injected")
        if self.command != "GET":
            return self._sso_error(405, "MethodNotAllowedException", "GET only")
        token = self.headers.get("x-amz-sso_bearer_token")
        if not token or token != st.cfg["sso_token"]:
            return self._sso_error(401, "UnauthorizedException",
                                   "Session token not found or invalid")
        if role != st.cfg["sso_role"] or account != st.cfg["sso_account"]:
            return self._sso_error(403, "ForbiddenException", "No access")
        if mode == "malformed":
            return self._answer(200, '{"roleCredentials": {"accessKeyId": "ASIA',
                                "application/json")
        rec = st.issue("sso", role=role, account=account)
        return self._answer(200, json.dumps({"roleCredentials": {
            "accessKeyId": rec["access_key"], "secretAccessKey": rec["secret"],
            "sessionToken": rec["token"], "expiration": rec["expires"] * 1000}}),
            "application/json")

    def _sso_error(self, status, code, message):
        self._answer(status, json.dumps({"message": message}), "application/json",
                     [("x-amzn-ErrorType", code + ":http://internal.amazon.com/"
                       "coral/com.amazonaws.switchboard.portal/")])

    # -- control --

    def _control(self, path):
        st = self.server.state
        if path == "/_stats" and self.command == "GET":
            with st.lock:
                return self._json(200, {"requests": st.requests, "services": st.services,
                                        "issued": st.issued, "faulted": st.faulted,
                                        "last": st.last})
        if path == "/_issue" and self.command == "POST":
            try:
                req = json.loads(self.body or b"{}")
                source = req.get("source", "process")
                if source not in ("process", "static"):
                    raise ValueError("source must be process or static")
            except (ValueError, AttributeError) as e:
                return self._json(400, {"error": str(e)})
            rec = st.issue(source, req.get("lifetime"))
            out = {"Version": 1, "AccessKeyId": rec["access_key"],
                   "SecretAccessKey": rec["secret"]}
            if rec["token"]:
                out.update(SessionToken=rec["token"], Expiration=iso(rec["expires"]))
            return self._json(200, out)
        if path == "/_control" and self.command == "GET":
            with st.lock:
                return self._json(200, {"settings": st.cfg, "faults": st.faults})
        if path == "/_control" and self.command == "POST":
            try:
                req = json.loads(self.body or b"{}")
                faults = None
                if "faults" in req:
                    faults = [st.check_rule(r) for r in req["faults"]]
                add = st.check_rule(req["add_fault"]) if "add_fault" in req else None
                unknown = set(req.get("set", {})) - set(st.cfg)
                if unknown:
                    raise ValueError("unknown settings %s" % sorted(unknown))
            except (ValueError, TypeError, KeyError) as e:
                return self._json(400, {"error": str(e)})
            with st.lock:
                if req.get("clear_faults"):
                    st.faults = []
                if faults is not None:
                    st.faults = faults
                if add is not None:
                    st.faults.append(add)
                st.cfg.update(req.get("set", {}))
                if req.get("rotate"):
                    st.cached.clear()
                if req.get("reset_stats"):
                    st.reset_stats()
                return self._json(200, {"settings": st.cfg, "faults": st.faults})
        return self._answer(405, "Method Not Allowed\n")


def _request_id():
    h = secrets.token_hex(16)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def _sts_xml(action, inner):
    return ('<%sResponse xmlns="%s">\n  <%sResult>\n%s  </%sResult>\n'
            '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n'
            '  </ResponseMetadata>\n</%sResponse>\n'
            % (action, STS_NS, action, inner, action, _request_id(), action))


def _write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake IMDSv2, container credential "
                                 "endpoint, STS and SSO portal on 127.0.0.1.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind: 127.0.0.1, or 169.254.170.2 inside "
                         "a test's own network namespace (the container "
                         "endpoint's fixed address)")
    ap.add_argument("--port-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--registry", help="append issued credentials here (JSONL)")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--lifetime", type=float, default=3600,
                    help="seconds every issued credential lives")
    ap.add_argument("--role-name", default="dsc-test-role")
    ap.add_argument("--region", default="us-east-1", help="IMDS placement region")
    ap.add_argument("--container-path", default="/v2/credentials/dsc-task")
    ap.add_argument("--container-full-path", default="/v1/credentials")
    ap.add_argument("--container-token", default="fake-container-token")
    ap.add_argument("--source-key", action="append", default=[],
                    help="AKID:SECRET[:TOKEN] allowed to call AssumeRole")
    ap.add_argument("--external-id", help="AssumeRole needs this ExternalId")
    ap.add_argument("--web-identity-token", default="fake-web-identity-token")
    ap.add_argument("--sso-token", default="fake-sso-access-token")
    ap.add_argument("--sso-account", default=ACCOUNT)
    ap.add_argument("--sso-role", default="dsc-sso-role")
    ap.add_argument("--fault", action="append", default=[],
                    help="a fault rule as JSON (see the docstring)")
    ap.add_argument("--exit-with-parent", action="store_true")
    args = ap.parse_args(argv)
    state = State(args)
    srv = FakeServer(args.port, state, args.host)
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
    print("aws_fakes: listening on 127.0.0.1:%d" % port, flush=True)
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    state.stopping.set()
    srv.shutdown()
    srv.server_close()
    print("aws_fakes stats: %s" % json.dumps({"requests": state.requests,
                                              "issued": state.issued}), flush=True)
    for f in (args.port_file, args.pid_file):
        if f:
            try:
                os.unlink(f)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
