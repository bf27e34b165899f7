#!/usr/bin/python3
"""libdsc's credential chain against the AWS fakes, cross-checked with
botocore, every S3 request verified by the SigV4 proxy.

For each source (environment, profile keys, AssumeRole, web identity from
the environment and from a profile, SSO by sso-session and legacy,
credential_process, container full URI with a token and a token file,
IMDSv2) and for environments holding several at once:
- `dsc-stat --whoami --json` names the source botocore names (method) and
  a key of the same issuer (the same key where the issuer hands the same
  one out: environment, profile, IMDS, container);
- `dsc-cat` through sigv4_proxy.py reads the object's bytes, and every
  request the proxy saw from it is signed right with that key (botocore
  recomputes each signature) and its session token.
Then what must fail does, within a bounded time and naming the source:
no credentials at all, a hung IMDS, malformed container JSON, an
unreadable or wrong web identity token, an STS error; and what users
configure: anonymous only when asked, the profile's addressing_style and
endpoint_url, a bucket in another region (redirected once, remembered).

Run through tests/run.sh (s3rver, DSC_TEST_BIN), with /usr/bin/python3.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import awsenv
from test_python_client import Suite, use_library_under_test

ENDPOINT = os.environ.get("DSC_TEST_ENDPOINT")
BUCKET = os.environ.get("DSC_TEST_BUCKET")
BIN = Path(os.environ.get("DSC_TEST_BIN", "build/bin"))
ROLE_ARN = "arn:aws:iam::123456789012:role/dsc-reader"
START_URL = "https://dsc-test.awsapps.com/start"
KEY = "creds-chain/object.bin"
DATA = random.Random(5).randbytes(300000)

# botocore's name of a provider -> libdsc's source.
SOURCE_OF = {
    "env": "env", "shared-credentials-file": "profile",
    "config-file": "profile", "assume-role": "assume-role",
    "assume-role-with-web-identity": "web-identity", "sso": "sso",
    "custom-process": "process", "container-role": "container",
    "iam-role": "imds",
}
# Issuers that hand out the same key while it is fresh; the others mint a
# new one per call, so only the issuer (the key's prefix) can match.
PREFIXES = ("ASIAIMDS", "ASIAECS", "ASIAEKS", "ASIASTSROLE", "ASIASTSWEB",
            "ASIASSO", "ASIAPROC", "AKIAFAKE")

suite = Suite("creds-chain")
test = suite.test
aws = None


def issuer(ak):
    return next((p for p in PREFIXES if ak.startswith(p)), ak)


def run(tool, env, *args, timeout=60):
    t0 = time.time()
    p = subprocess.run([str(BIN / tool), *args], env=env, capture_output=True,
                       timeout=timeout)
    return p, time.time() - t0


def whoami(env):
    p, _ = run("dsc-stat", env, "--whoami", "--json")
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def cat_through_proxy(env):
    """dsc-cat of KEY through the proxy; the proxy entries it caused."""
    before = len(aws.proxy.entries())
    env = dict(env, AWS_ENDPOINT_URL=aws.proxy.url, DSC_CACHE_DIR="off")
    p, _ = run("dsc-cat", env, "s3://%s/%s" % (BUCKET, KEY))
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == DATA
    return aws.proxy.entries()[before:]


def cross_check(name, env, same_key):
    """Our source and key against botocore's; a read signed with it."""
    ak, method = awsenv.botocore_resolve(env)
    assert ak, "%s: botocore found no credentials" % name
    me = whoami(env)
    assert me["source"] == SOURCE_OF[method], (name, me, method)
    if same_key:
        assert me["access_key_id"] == ak, (name, me, ak)
    else:
        assert issuer(me["access_key_id"]) == issuer(ak), (name, me, ak)
    seen = cat_through_proxy(env)
    assert seen, name
    for e in seen:
        assert e["verdict"] == "ok", (name, e)
        assert issuer(e["access_key"]) == issuer(ak), (name, e)
    return me


@test
def environment_and_profile_keys():
    env = aws.env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    cross_check("env", env, True)
    # Asking who we are makes no cache (dsc-stat creates none unless asked).
    assert not (Path(env["HOME"]) / ".cache").exists()
    # DSC_LOG=info names the source once per context; never the secret.
    p, _ = run("dsc-stat", dict(env, DSC_LOG="info", AWS_SECRET_ACCESS_KEY="sEcReT"),
               "--whoami")
    err = p.stderr.decode()
    assert err.count("credentials from env: S3RVER") == 1 and "sEcReT" not in err, err
    base = aws.fakes.issue("static")
    aws.home.credentials("keys", aws_access_key_id=base["AccessKeyId"],
                         aws_secret_access_key=base["SecretAccessKey"])
    me = cross_check("profile", aws.env(AWS_PROFILE="keys"), True)
    assert me["expires"] == 0


@test
def assume_role_with_source_profile():
    base = aws.fakes.issue("static")
    aws.home.credentials("base", aws_access_key_id=base["AccessKeyId"],
                         aws_secret_access_key=base["SecretAccessKey"])
    aws.home.profile("assumer", role_arn=ROLE_ARN, source_profile="base",
                     external_id="ext-42", duration_seconds=900,
                     role_session_name="dsc-chain")
    aws.fakes.set(external_id="ext-42")
    try:
        me = cross_check("assume-role", aws.env(AWS_PROFILE="assumer"), False)
    finally:
        aws.fakes.set(external_id=None)
    assert me["expires"] > time.time()
    last = aws.fakes.stats()["last"]["sts_AssumeRole"]
    assert last["caller"] == base["AccessKeyId"], last
    assert (last["ExternalId"], last["DurationSeconds"], last["RoleSessionName"]) \
        == ("ext-42", "900", "dsc-chain"), last


@test
def web_identity_from_env_and_profile():
    token = aws.home.write_file("web-token", "fake-web-identity-token")
    cross_check("web identity (env)", aws.env(
        AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=ROLE_ARN,
        AWS_ROLE_SESSION_NAME="irsa"), False)
    assert aws.fakes.stats()["last"]["sts_AssumeRoleWithWebIdentity"][
        "RoleSessionName"] == "irsa"
    aws.home.profile("irsa", role_arn=ROLE_ARN, web_identity_token_file=token)
    cross_check("web identity (profile)", aws.env(AWS_PROFILE="irsa"), False)


@test
def sso_session_and_legacy():
    aws.home.sso_session("corp", sso_start_url=START_URL, sso_region="us-east-1",
                         sso_registration_scopes="sso:account:access")
    aws.home.profile("sso-new", sso_session="corp", sso_account_id="123456789012",
                     sso_role_name="dsc-sso-role")
    aws.home.sso_token(START_URL, "us-east-1", "fake-sso-access-token",
                       session_name="corp")
    cross_check("sso-session", aws.env(AWS_PROFILE="sso-new"), False)
    legacy = START_URL + "#legacy"
    aws.home.profile("sso-old", sso_start_url=legacy, sso_region="us-east-1",
                     sso_account_id="123456789012", sso_role_name="dsc-sso-role")
    aws.home.sso_token(legacy, "us-east-1", "fake-sso-access-token")
    cross_check("sso legacy", aws.env(AWS_PROFILE="sso-old"), False)
    # An expired login: a clear error saying what to run.
    aws.home.sso_token(legacy, "us-east-1", "fake-sso-access-token",
                       expires_in=-60)
    p, _ = run("dsc-stat", aws.env(AWS_PROFILE="sso-old"), "--whoami")
    assert p.returncode == 1 and b"aws sso login" in p.stderr, p.stderr


@test
def credential_process_container_and_imds():
    aws.home.profile("proc", credential_process=aws.home.credential_process_command(
        aws.fakes))
    cross_check("credential_process", aws.env(AWS_PROFILE="proc"), False)
    cross_check("container full URI + token",
                aws.env(**aws.container_env(full=True)), True)
    cross_check("container full URI + token file",
                aws.env(**aws.container_env(full=True, token_file=True)), True)
    # A proxy from the environment never sees the container endpoint's
    # token or keys (botocore's container fetcher uses no proxy either):
    # this one is a closed port, so going through it would fail.
    env = aws.env(http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                  **aws.container_env(full=True))
    assert whoami(env)["source"] == "container"
    me = cross_check("IMDSv2", aws.env(imds=True), True)
    assert me["expires"] > time.time()


@test
def container_relative_uri_in_a_network_namespace():
    """ECS's relative URI always goes to 169.254.170.2:80: the fakes serve
    it inside a network namespace of the test's own (root), so nothing on
    the host changes; unpatched botocore resolves there too."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        print("  (skipped: needs root, unshare and ip for a network namespace)")
        return
    d = Path(tempfile.mkdtemp(dir=aws.dir))
    script = """
set -e
ip link set lo up
ip addr add 169.254.170.2/32 dev lo
/usr/bin/python3 {here}/aws_fakes.py --host 169.254.170.2 --port 80 \\
    --port-file {d}/port --registry {d}/reg.jsonl --exit-with-parent >{d}/fakes.log 2>&1 &
for i in $(seq 200); do [ -s {d}/port ] && break; sleep 0.05; done
{bin}/dsc-stat --whoami --json >{d}/dsc.json
/usr/bin/python3 -c 'import botocore.session as s; c = s.get_session().get_credentials(); print(c.access_key, c.method)' >{d}/boto.txt
kill %1
""".format(here=Path(__file__).resolve().parent, d=d, bin=BIN.resolve())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/dsc-task"}
    p = subprocess.run(["unshare", "-n", "bash", "-c", script], env=env,
                       capture_output=True, text=True, timeout=60)
    if p.returncode and "Operation not permitted" in p.stderr:
        print("  (skipped: no network namespace here: %s)" % p.stderr.strip()[:100])
        return
    assert p.returncode == 0, (p.stderr, (d / "fakes.log").read_text())
    me = json.loads((d / "dsc.json").read_text())
    ak, method = (d / "boto.txt").read_text().split()
    assert method == "container-role" and me["source"] == "container", (me, method)
    assert me["access_key_id"] == ak and ak.startswith("ASIAECS"), (me, ak)


@test
def order_when_several_sources_are_set():
    """botocore's order decides; we must agree on each mix."""
    base = aws.fakes.issue("static")
    aws.home.credentials("mix", aws_access_key_id=base["AccessKeyId"],
                         aws_secret_access_key=base["SecretAccessKey"])
    token = aws.home.write_file("web-token", "fake-web-identity-token")
    aws.home.profile("mix", role_arn=ROLE_ARN, source_profile="mix",
                     credential_process=aws.home.credential_process_command(aws.fakes))
    mixes = {
        "env over everything": aws.env(
            imds=True, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
            AWS_PROFILE="mix", AWS_WEB_IDENTITY_TOKEN_FILE=token,
            AWS_ROLE_ARN=ROLE_ARN, **aws.container_env(full=True)),
        "role over profile keys and process": aws.env(imds=True, AWS_PROFILE="mix"),
        "web identity over container and IMDS": aws.env(
            imds=True, AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=ROLE_ARN,
            **aws.container_env(full=True)),
        "container over IMDS": aws.env(imds=True, **aws.container_env(full=True)),
    }
    for name, env in mixes.items():
        ak, method = awsenv.botocore_resolve(env)
        me = whoami(env)
        assert me["source"] == SOURCE_OF[method], (name, me, method)
        assert issuer(me["access_key_id"]) == issuer(ak), (name, me, ak)


@test
def no_credentials_and_anonymous():
    env = aws.env()
    assert awsenv.botocore_resolve(env) == (None, None)
    p, took = run("dsc-stat", env, "--whoami")
    assert p.returncode == 1 and took < 10, (p, took)
    err = p.stderr.decode()
    for named in ("env", "web identity", "profile", "container", "IMDS",
                  "DSC_ANONYMOUS"):
        assert named in err, (named, err)
    # Asked for: unsigned, by the environment or the tools' flag.
    for extra, args in (({"DSC_ANONYMOUS": "1"}, ()), ({}, ("--no-sign-request",))):
        p, _ = run("dsc-stat", dict(env, **extra), "--whoami", "--json", *args)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["source"] == "anonymous"
    # The proxy refuses unsigned reads as S3 does a private bucket.
    p, _ = run("dsc-cat", dict(env, AWS_ENDPOINT_URL=aws.proxy.url,
                               DSC_CACHE_DIR="off"),
               "--no-sign-request", "s3://%s/%s" % (BUCKET, KEY))
    assert p.returncode != 0 and b"access denied" in p.stderr, p.stderr


@test
def broken_sources_fail_clearly_and_in_bounded_time():
    token = aws.home.write_file("web-token", "fake-web-identity-token")
    cases = []
    # IMDS that accepts and never answers: the SDKs' 1 s timeout, 1 attempt.
    aws.fakes.add_fault("imds", "hang")
    cases.append(("IMDS hang", aws.env(imds=True), "IMDS", 5))
    p, took = run("dsc-stat", cases[-1][1], "--whoami")
    aws.fakes.clear_faults()
    cases[-1] = cases[-1] + ((p, took),)
    aws.fakes.add_fault("container", "malformed")
    env = aws.env(**aws.container_env(full=True))
    p, took = run("dsc-stat", env, "--whoami")
    aws.fakes.clear_faults()
    cases.append(("container malformed JSON", env, "container", 10, (p, took)))
    env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=str(token) + ".missing",
                  AWS_ROLE_ARN=ROLE_ARN)
    cases.append(("web identity token unreadable", env, "web", 10,
                  run("dsc-stat", env, "--whoami")))
    wrong = aws.home.write_file("wrong-token", "not-the-token")
    env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=wrong, AWS_ROLE_ARN=ROLE_ARN)
    cases.append(("web identity token refused", env, "InvalidIdentityToken", 10,
                  run("dsc-stat", env, "--whoami")))
    aws.fakes.add_fault("sts", "error", code="ExpiredTokenException", status=400)
    env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=ROLE_ARN)
    p, took = run("dsc-stat", env, "--whoami")
    aws.fakes.clear_faults()
    cases.append(("web identity token expired", env, "ExpiredTokenException", 10,
                  (p, took)))
    aws.fakes.add_fault("sts", "error", code="AccessDenied", status=403)
    env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=ROLE_ARN)
    p, took = run("dsc-stat", env, "--whoami")
    aws.fakes.clear_faults()
    cases.append(("STS error", env, "AccessDenied", 10, (p, took)))
    for name, _, needle, bound, (p, took) in cases:
        err = p.stderr.decode()
        assert p.returncode == 1, (name, err)
        assert "credentials" in err and needle in err, (name, err)
        assert took < bound, (name, took)


@test
def profile_endpoint_and_addressing_style():
    aws.home.profile("svc", aws_access_key_id="S3RVER",
                     aws_secret_access_key="S3RVER",
                     s3="\n  endpoint_url = %s\n  addressing_style = path"
                     % aws.proxy.url)
    env = aws.env(AWS_PROFILE="svc", AWS_ENDPOINT_URL=None)
    me = whoami(env)
    assert me["endpoint"].endswith("/path"), me
    p, _ = run("dsc-cat", dict(env, DSC_CACHE_DIR="off"),
               "s3://%s/%s" % (BUCKET, KEY))
    assert p.returncode == 0 and p.stdout == DATA, p.stderr


@test
def bucket_in_another_region_is_followed_once():
    """The bucket is in eu-west-1; we sign for us-east-1. The first request
    is redirected (301 with x-amz-bucket-region), every later one of the
    process goes to the right region at once."""
    env = aws.env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                  AWS_REGION="us-east-1", AWS_ENDPOINT_URL=aws.region_proxy.url,
                  DSC_CACHE_DIR="off")
    p, _ = run("dsc-cat", env, "s3://%s/%s" % (BUCKET, KEY))
    assert p.returncode == 0 and p.stdout == DATA, p.stderr
    seen = aws.region_proxy.entries()
    assert len(seen) >= 2, seen
    assert seen[0]["status"] == 301, seen[0]
    assert all(x["verdict"] == "ok" and x["region"] == "eu-west-1"
               for x in seen[1:]), seen
    # S3's other answer: 400 AuthorizationHeaderMalformed naming the region.
    (aws.dir / "region400").mkdir()
    other = awsenv.Proxy(aws.dir / "region400", ENDPOINT, aws.fakes.registry_path,
                         ("S3RVER:S3RVER",), {BUCKET: "ap-south-1"}, "malformed", ())
    try:
        p, _ = run("dsc-cat", dict(env, AWS_ENDPOINT_URL=other.url),
                   "s3://%s/%s" % (BUCKET, KEY))
        seen = other.entries()
    finally:
        other.stop()
    assert p.returncode == 0 and p.stdout == DATA, p.stderr
    assert seen[0]["status"] == 400, seen[0]
    assert all(x["verdict"] == "ok" and x["region"] == "ap-south-1"
               for x in seen[1:]), seen


@test
def expired_token_answer_renews_and_retries_once():
    """Keys that S3 calls expired although their source said they were
    good for an hour (clock skew, a revoked session): the request is
    answered ExpiredToken, the client fetches new keys and retries once."""
    import dsc
    script = aws.home.write_file(".aws/lying-process.py", (
        "import json, sys, time, urllib.request\n"
        "req = urllib.request.Request(sys.argv[1] + '/_issue', method='POST',\n"
        "    data=b'{\"source\": \"process\", \"lifetime\": 2}')\n"
        "out = json.loads(urllib.request.urlopen(req, timeout=10).read())\n"
        "out['Expiration'] = time.strftime('%Y-%m-%dT%H:%M:%SZ',\n"
        "                                  time.gmtime(time.time() + 3600))\n"
        "print(json.dumps(out))\n"))
    aws.home.profile("liar", credential_process="/usr/bin/python3 %s %s"
                     % (script, aws.fakes.url))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(aws.env(AWS_PROFILE="liar", AWS_ENDPOINT_URL=aws.proxy.url,
                              DSC_LIBRARY=saved["DSC_LIBRARY"]))
    try:
        with dsc.Client(cache_dir="") as c:
            url = "s3://%s/%s" % (BUCKET, KEY)
            with c.open(url) as f:
                assert f.read() == DATA
            time.sleep(6)       # older than DSC_CREDBOX_MIN_AGE
            before = len(aws.proxy.entries())
            with c.open(url) as f:
                assert f.read() == DATA
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seen = aws.proxy.entries()[before:]
    codes = [e["code"] for e in seen]
    assert codes[0] == "ExpiredToken" and codes.count("ExpiredToken") == 1, seen
    assert all(e["verdict"] == "ok" for e in seen[1:]), seen
    assert seen[1]["access_key"] != seen[0]["access_key"], seen


def main():
    global aws
    use_library_under_test()
    if not ENDPOINT or not BUCKET:
        sys.exit("DSC_TEST_ENDPOINT / DSC_TEST_BUCKET not set: run through tests/run.sh")
    import peerlib
    s3 = peerlib.s3()           # the test server's own client (s3rver keys)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=DATA)
    try:
        with awsenv.AwsEnv(lifetime=3600, upstream=ENDPOINT) as env:
            aws = env
            (aws.dir / "region").mkdir()
            aws.region_proxy = awsenv.Proxy(
                aws.dir / "region", ENDPOINT, aws.fakes.registry_path,
                ("S3RVER:S3RVER",), {BUCKET: "eu-west-1"}, "redirect", ())
            try:
                return suite.run()
            finally:
                aws.region_proxy.stop()
    finally:
        s3.delete_object(Bucket=BUCKET, Key=KEY)


if __name__ == "__main__":
    sys.exit(main())
