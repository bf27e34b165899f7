"""Test helpers around aws_fakes.py and sigv4_proxy.py: start and stop them
(as processes, by PID, port handed over in a file), lay out a temporary
HOME with ~/.aws/config, ~/.aws/credentials and SSO token caches, build a
clean environment for a program under test, and resolve that same
environment with botocore for the cross-check.

    import awsenv
    with awsenv.AwsEnv(lifetime=20, upstream=os.environ["DSC_TEST_ENDPOINT"],
                       bucket_regions={"eu-bucket": "eu-west-1"}) as aws:
        env = aws.env(imds=True)                 # IMDSv2 from the fakes
        ak, method = awsenv.botocore_resolve(env)  # ("ASIAIMDS...", "iam-role")
        env["AWS_ENDPOINT_URL"] = aws.proxy.url    # S3 through the verifier
        out = subprocess.run([DSC_BIN + "/dsc-stat", "--whoami", ...], env=env)
        ... compare out with ak ...
        assert aws.proxy.count(code="ExpiredToken") == 0
        assert aws.proxy.count(verdict="ok", access_key=ak) > 0
        print(aws.fakes.stats()["requests"])     # how many refreshes

AwsEnv(workdir=None, lifetime=20, upstream=None, static_keys=("S3RVER:S3RVER",),
       bucket_regions=None, region_mode="redirect", fakes_args=(), proxy_args=())
  .dir       a temporary directory (removed on stop unless workdir was given)
  .fakes     Fakes: .url .port .pid .registry_path, control(**body),
             add_fault(service, mode, **kw), clear_faults(), set(**settings),
             rotate(), stats(), reset_stats(), issue(source, lifetime=None),
             issued() (the registry's records)
  .proxy     Proxy (only with upstream): .url .log_path, entries(), count(**match)
  .home      AwsHome: .path .config_path .credentials_path, profile(name, **kv),
             sso_session(name, **kv), credentials(name, **kv), sso_token(...),
             write_file(name, text), credential_process_command(fakes)
  env(imds=False, **vars)  a fresh environment: PATH, LANG, HOME (the
             temporary one), AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE,
             AWS_REGION and AWS_DEFAULT_REGION us-east-1, AWS_ENDPOINT_URL_STS,
             AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL_SSO_OIDC at the fakes,
             AWSENV_CONTAINER_HOST (see below) and AWS_EC2_METADATA_DISABLED=true;
             imds=True sets AWS_EC2_METADATA_SERVICE_ENDPOINT to the fakes
             instead. Nothing of the caller's AWS_* / DSC_* environment is kept;
             vars are added last (a value None removes the variable).
  container_env(full=False, token_file=False)  the variables for the
             container endpoint (relative URI, or full URI + token or token file)

botocore_resolve(env, timeout=60) -> (access_key_id, method), (None, None)
  when botocore finds no credentials; raises ResolveError (botocore raised)
  or ResolveTimeout. botocore_resolve_full(env) returns the whole result:
  access_key, secret, token, method, expiry, error, message, elapsed.

How botocore (1.29) is made to reach the fakes in that subprocess; nothing is
patched in the test's own process:
  * IMDS: AWS_EC2_METADATA_SERVICE_ENDPOINT (botocore reads it). Without it
    the subprocess sets AWS_EC2_METADATA_DISABLED=true, so nothing ever goes to
    169.254.169.254.
  * STS, SSO, SSO-OIDC: botocore 1.29 does not know AWS_ENDPOINT_URL_<SERVICE>.
    Session.create_client is wrapped so that a client for sts / sso / sso-oidc
    created without an endpoint_url (as the credential providers create them)
    gets AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL (the order newer
    SDKs use), else http://127.0.0.1:9 (a closed port, never real AWS).
  * Container, relative URI: botocore hard-codes http://169.254.170.2;
    ContainerMetadataFetcher.full_url is replaced to use the host:port in
    AWSENV_CONTAINER_HOST (and refuses without it). A program under test needs
    its own test hook for that host; the full URI needs none (127.0.0.1 is
    allowed).
  * Container token file: botocore 1.29 predates
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; the subprocess reads the file on
    every fetch, as newer botocore does, and it wins over
    AWS_CONTAINER_AUTHORIZATION_TOKEN (a token with CR or LF is refused).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = "/usr/bin/python3"


class _Process:
    """One of our servers as its own process: started with a port file,
    stopped by its PID."""

    def __init__(self, name, script, args, workdir):
        self.name = name
        self.dir = Path(workdir)
        self.port_file = self.dir / (name + ".port")
        self.pid_file = self.dir / (name + ".pid")
        self.out_path = self.dir / (name + ".out")
        for f in (self.port_file, self.pid_file):
            if f.exists():
                f.unlink()
        self._out = open(self.out_path, "w")
        self.proc = subprocess.Popen(
            [PY, str(HERE / script), "--port-file", str(self.port_file),
             "--pid-file", str(self.pid_file), "--exit-with-parent"] + list(args),
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                text = self.port_file.read_text().strip()
                if text:
                    self.port = int(text)
                    break
            except OSError:
                pass
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("%s did not start:\n%s" % (name, self.out_path.read_text()))
        self.url = "http://127.0.0.1:%d" % self.port
        self.host = "127.0.0.1:%d" % self.port

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        if not self._out.closed:
            self._out.close()
        return self.proc.returncode

    def output(self):
        return self.out_path.read_text()


def _call(url, method="GET", body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Fakes(_Process):
    """aws_fakes.py: IMDSv2, container endpoint, STS, SSO portal."""

    def __init__(self, workdir, lifetime=20, args=()):
        self.registry_path = Path(workdir) / "registry.jsonl"
        super().__init__("aws_fakes", "aws_fakes.py",
                         ["--registry", str(self.registry_path),
                          "--lifetime", str(lifetime),
                          "--log", str(Path(workdir) / "aws_fakes.log")] + list(args),
                         workdir)

    def control(self, **body):
        return _call(self.url + "/_control", "POST", body)

    def add_fault(self, service, mode, **kw):
        return self.control(add_fault=dict(service=service, mode=mode, **kw))

    def clear_faults(self):
        return self.control(clear_faults=True)

    def set(self, **settings):
        return self.control(set=settings)

    def rotate(self):
        return self.control(rotate=True)

    def reset_stats(self):
        return self.control(reset_stats=True)

    def stats(self):
        return _call(self.url + "/_stats")

    def issue(self, source="process", lifetime=None):
        """A registered credential in credential_process's JSON format."""
        body = {"source": source}
        if lifetime is not None:
            body["lifetime"] = lifetime
        return _call(self.url + "/_issue", "POST", body)

    def issued(self):
        try:
            text = self.registry_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class Proxy(_Process):
    """sigv4_proxy.py in front of an S3 endpoint (s3rver)."""

    def __init__(self, workdir, upstream, registry_path, static_keys=("S3RVER:S3RVER",),
                 bucket_regions=None, region_mode="redirect", args=()):
        self.log_path = Path(workdir) / "sigv4_proxy.log"
        a = ["--upstream", upstream, "--registry", str(registry_path),
             "--log", str(self.log_path), "--region-mode", region_mode]
        for k in static_keys:
            a += ["--static-key", k]
        for b, r in (bucket_regions or {}).items():
            a += ["--bucket-region", "%s=%s" % (b, r)]
        super().__init__("sigv4_proxy", "sigv4_proxy.py", a + list(args), workdir)

    def entries(self):
        """The log: one dict per request answered so far."""
        try:
            text = self.log_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def count(self, **match):
        """Requests whose log entry has all of match, e.g. count(code=
        "ExpiredToken"), count(verdict="ok", source="imds")."""
        return sum(1 for e in self.entries()
                   if all(e.get(k) == v for k, v in match.items()))


class AwsHome:
    """A HOME with ~/.aws/config, ~/.aws/credentials and ~/.aws/sso/cache,
    written again on every change."""

    def __init__(self, path):
        self.path = Path(path)
        self.aws = self.path / ".aws"
        self.aws.mkdir(parents=True, exist_ok=True)
        self.config_path = self.aws / "config"
        self.credentials_path = self.aws / "credentials"
        self.sso_cache = self.aws / "sso" / "cache"
        self._config = {}
        self._creds = {}
        self._write()

    @staticmethod
    def _ini(sections):
        out = []
        for title, kv in sections.items():
            out.append("[%s]" % title)
            out += ["%s = %s" % (k, v) for k, v in kv.items()]
            out.append("")
        return "\n".join(out)

    def _write(self):
        self.config_path.write_text(self._ini(self._config))
        self.credentials_path.write_text(self._ini(self._creds))

    def profile(self, name, **kv):
        """[default] or [profile NAME] in ~/.aws/config (merged)."""
        title = "default" if name == "default" else "profile " + name
        self._config.setdefault(title, {}).update(kv)
        self._write()

    def sso_session(self, name, **kv):
        self._config.setdefault("sso-session " + name, {}).update(kv)
        self._write()

    def credentials(self, name, **kv):
        """[NAME] in ~/.aws/credentials (aws_access_key_id=..., ...)."""
        self._creds.setdefault(name, {}).update(kv)
        self._write()

    def sso_token(self, start_url, region, access_token, session_name=None,
                  expires_in=8 * 3600):
        """The token cache file the AWS CLI writes after `aws sso login`:
        ~/.aws/sso/cache/<sha1(session name)>.json for an sso-session (with
        the client registration and refresh token), <sha1(start url)>.json
        for a legacy profile. Returns its path."""
        self.sso_cache.mkdir(parents=True, exist_ok=True)
        now = time.time()
        token = {"startUrl": start_url, "region": region, "accessToken": access_token,
                 "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                            time.gmtime(now + expires_in))}
        if session_name is not None:
            token.update({
                "clientId": "fakeClientId-" + hashlib.sha1(start_url.encode()).hexdigest()[:12],
                "clientSecret": "fakeClientSecret",
                "registrationExpiresAt": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 90 * 86400)),
                "refreshToken": "fakeRefreshToken"})
        key = session_name if session_name is not None else start_url
        path = self.sso_cache / (hashlib.sha1(key.encode("utf-8")).hexdigest() + ".json")
        path.write_text(json.dumps(token, indent=2))
        return path

    def write_file(self, name, text):
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def credential_process_command(self, fakes, source="process"):
        """A credential_process command line: a script that asks the fakes
        for a new registered credential (ASIAPROC...) and prints it."""
        script = self.write_file(".aws/credproc.py", (
            "import sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1] + '/_issue', method='POST',\n"
            "    data=b'{\"source\": \"%s\"}')\n"
            "sys.stdout.write(urllib.request.urlopen(req, timeout=10).read().decode())\n"
            % source))
        return "%s %s %s" % (PY, script, fakes.url)


class AwsEnv:
    """Fakes (+ the proxy when upstream is given) + a temporary HOME.
    A context manager; stop() stops both by PID and removes the directory."""

    def __init__(self, workdir=None, lifetime=20, upstream=None,
                 static_keys=("S3RVER:S3RVER",), bucket_regions=None,
                 region_mode="redirect", fakes_args=(), proxy_args=()):
        self._own = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="awsenv-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fakes = self.proxy = None
        try:
            self.fakes = Fakes(self.dir, lifetime, fakes_args)
            if upstream:
                self.proxy = Proxy(self.dir, upstream, self.fakes.registry_path,
                                   static_keys, bucket_regions, region_mode,
                                   proxy_args)
            self.home = AwsHome(self.dir / "home")
        except BaseException:
            self.stop()
            raise

    def env(self, imds=False, **vars):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": str(self.home.path),
               "AWS_CONFIG_FILE": str(self.home.config_path),
               "AWS_SHARED_CREDENTIALS_FILE": str(self.home.credentials_path),
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_STS": self.fakes.url,
               "AWS_ENDPOINT_URL_SSO": self.fakes.url,
               "AWS_ENDPOINT_URL_SSO_OIDC": self.fakes.url,
               "AWSENV_CONTAINER_HOST": self.fakes.host}
        if imds:
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.fakes.url
        else:
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        for k, v in vars.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def container_env(self, full=False, token_file=False, token=None):
        """Variables for the container endpoint: the relative URI, or the
        full URI with AWS_CONTAINER_AUTHORIZATION_TOKEN (or _FILE)."""
        st = _call(self.fakes.url + "/_control")["settings"]
        if not full:
            return {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": st["container_path"]}
        token = st["container_token"] if token is None else token
        out = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.fakes.url + st["container_full_path"]}
        if token_file:
            out["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(
                self.home.write_file("eks-pod-identity-token", token))
        else:
            out["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        return out

    def stop(self):
        for p in (self.proxy, self.fakes):
            if p is not None:
                p.stop()
        if self._own and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- botocore's answer for the same environment --------------------------

class ResolveError(Exception):
    pass


class ResolveTimeout(ResolveError):
    pass


_RESOLVER = r'''
import inspect, json, os, sys, time
t0 = time.time()
import botocore.session, botocore.utils, botocore.credentials

def endpoint_for(service):
    for name in ("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"),
                 "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    return "http://127.0.0.1:9"   # a closed port: never real AWS from a test

_create = botocore.session.Session.create_client
_sig = inspect.signature(_create)

def create_client(self, service_name, *args, **kwargs):
    if service_name in ("sts", "sso", "sso-oidc"):
        bound = _sig.bind(self, service_name, *args, **kwargs)
        if bound.arguments.get("endpoint_url") is None:
            kwargs["endpoint_url"] = endpoint_for(service_name)
    return _create(self, service_name, *args, **kwargs)

botocore.session.Session.create_client = create_client

def container_full_url(self, relative_uri):
    host = os.environ.get("AWSENV_CONTAINER_HOST")
    if not host:
        raise ValueError("AWSENV_CONTAINER_HOST is not set: refusing 169.254.170.2")
    return "http://%s%s" % (host, relative_uri)

botocore.utils.ContainerMetadataFetcher.full_url = container_full_url

_build_headers = botocore.credentials.ContainerProvider._build_headers

def build_headers(self):
    path = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if path:
        with open(path) as f:
            token = f.read()
        if "\r" in token or "\n" in token:
            raise ValueError("the container authorization token has CR or LF")
        return {"Authorization": token}
    return _build_headers(self)

botocore.credentials.ContainerProvider._build_headers = build_headers

if not os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"):
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

out = {"access_key": None, "method": None}
try:
    creds = botocore.session.Session().get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        expiry = getattr(creds, "_expiry_time", None)
        out = {"access_key": frozen.access_key, "secret": frozen.secret_key,
               "token": frozen.token, "method": creds.method,
               "expiry": expiry.isoformat() if expiry else None}
except Exception as e:
    out = {"access_key": None, "method": None, "error": type(e).__name__,
           "message": str(e)}
out["elapsed"] = round(time.time() - t0, 3)
print(json.dumps(out))
'''


def botocore_resolve_full(env, timeout=60):
    """Run botocore's credential chain in a subprocess with exactly env;
    return its result dict (see the module docstring)."""
    try:
        p = subprocess.run([PY, "-c", _RESOLVER], env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ResolveTimeout("botocore did not resolve within %ss" % timeout)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise ResolveError("resolver failed (%s): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(lines[-1])


def botocore_resolve(env, timeout=60):
    """(access_key_id, method) botocore resolves from env; (None, None) if
    it finds no credentials; ResolveError if botocore raised."""
    out = botocore_resolve_full(env, timeout)
    if out.get("error"):
        raise ResolveError("%s: %s" % (out["error"], out["message"]))
    return out["access_key"], out["method"]


if __name__ == "__main__":
    # A quick look: start the fakes, print botocore's IMDS answer, stop.
    with AwsEnv(lifetime=20) as aws:
        print(botocore_resolve(aws.env(imds=True)))
        print(aws.fakes.stats())
    sys.exit(0)
