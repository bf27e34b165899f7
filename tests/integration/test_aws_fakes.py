#!/usr/bin/python3
"""Self-test of the AWS credential rig (aws_fakes.py, sigv4_proxy.py,
awsenv.py) that libdsc's credential-chain tests stand on. tsan: runs (no
libdsc in this process).

For every source - IMDSv2, the container endpoint (relative URI; full URI
with a token, and with a token file), AssumeRole with source_profile (and
ExternalId, DurationSeconds), AssumeRoleWithWebIdentity from the environment
and from a profile, SSO through an sso-session and the legacy profile,
credential_process - botocore resolves the credentials from the fakes (in a
subprocess with exactly the test's environment) and must get the access key
of that source; a boto3 S3 client signing with them reads, heads and lists
objects in s3rver through the SigV4-verifying proxy, and the proxy's log must
say every one of those requests was verified. Then the proxy must refuse
what S3 refuses (wrong secret, unknown key, wrong token, expired
credentials, unsigned) with S3's codes, answer for a bucket of another
region as S3 does (301 + x-amz-bucket-region, or 400 with <Region>), and
the fault modes must do what they say (a hanging IMDS makes botocore give
up in bounded time, malformed answers fail, STS errors surface).

Run through tests/run.sh (s3rver, bucket in the environment) with
/usr/bin/python3 (python3-boto3).
"""
import faulthandler
import hashlib
import http.client
import os
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.credentials  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

import awsenv  # noqa: E402

ENDPOINT = os.environ.get("DSC_TEST_ENDPOINT")
BUCKET = os.environ.get("DSC_TEST_BUCKET")
PREFIX = "awsfakes-selftest/"
ROLE_ARN = "arn:aws:iam::123456789012:role/dsc-reader"
START_URL = "https://fake-portal.awsapps.com/start"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def direct_s3():
    return boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id="S3RVER",
                        aws_secret_access_key="S3RVER", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def s3_via(proxy, creds, region="us-east-1"):
    return boto3.client(
        "s3", endpoint_url=proxy.url, region_name=region,
        aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret"],
        aws_session_token=creds.get("token"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      connect_timeout=5, read_timeout=30))


def signed(url, method, creds, region="us-east-1", headers=None):
    """One request signed with botocore's S3 signer, sent with http.client
    (no retries, no redirects followed): (status, headers, body)."""
    req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers or {})
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(
        creds["access_key"], creds["secret"], creds.get("token")), "s3",
        region).add_auth(req)
    return raw(url, method, dict(req.headers.items()))


def raw(url, method, headers=None):
    u = urllib.request.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request(method, u.path + ("?" + u.query if u.query else ""),
                  headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def code_of(body):
    text = body.decode("utf-8", "replace")
    if "<Code>" not in text:
        return None
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def resolve(aws, name, env, prefix, method):
    """botocore resolves env; check the source by key prefix and method."""
    try:
        out = awsenv.botocore_resolve_full(env, timeout=60)
    except awsenv.ResolveError as e:
        check(False, "%s: botocore resolves (%s)" % (name, e))
        return None
    ak = out.get("access_key") or ""
    check(ak.startswith(prefix) and out.get("method") == method,
          "%s: botocore resolves %s via %s (got %s via %s%s) in %.1f s" % (
              name, prefix + "...", method, ak or None, out.get("method"),
              ", %s: %s" % (out["error"], out["message"]) if out.get("error") else "",
              out["elapsed"]))
    if not ak.startswith(prefix):
        return None
    issued = {r["access_key"]: r for r in aws.fakes.issued()}
    rec = issued.get(ak)
    check(rec is not None and rec["secret"] == out["secret"]
          and rec["token"] == out["token"],
          "%s: the secret and token botocore got are the ones registered" % name)
    return out


def s3_round(aws, name, creds, objects):
    """GET, ranged GET, HEAD and LIST through the proxy with creds; every
    request must be verified as signed by creds."""
    s3 = s3_via(aws.proxy, creds)
    before = len(aws.proxy.entries())
    ok = True
    try:
        for key, data in objects.items():
            got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            ok &= got == data
            head = s3.head_object(Bucket=BUCKET, Key=key)
            ok &= head["ContentLength"] == len(data)
        key, data = max(objects.items(), key=lambda kv: len(kv[1]))
        part = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=1000-1999")
        ok &= part["Body"].read() == data[1000:2000]
        ok &= part["ContentRange"] == "bytes 1000-1999/%d" % len(data)
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
        ok &= sorted(o["Key"] for o in listed["Contents"]) == sorted(objects)
    except ClientError as e:
        ok = False
        print("     %s" % e)
    entries = aws.proxy.entries()[before:]
    want = 2 * len(objects) + 2
    good = [e for e in entries if e["verdict"] == "ok"
            and e["access_key"] == creds["access_key"] and not e["expired"]]
    check(ok and len(entries) == want and len(good) == want,
          "%s: GET/HEAD/range/LIST through the proxy, %d/%d requests verified "
          "as signed with %s" % (name, len(good), want, creds["access_key"]))


def sources(aws, objects):
    f, home = aws.fakes, aws.home
    # IMDSv2
    env = aws.env(imds=True)
    out = resolve(aws, "IMDSv2", env, "ASIAIMDS", "iam-role")
    st = f.stats()["requests"]
    check(st.get("imds_token") == 1 and st.get("imds_role") == 1
          and st.get("imds_credentials") == 1,
          "IMDSv2: one token PUT, one role GET, one credentials GET (%s)" % st)
    if out:
        s3_round(aws, "IMDSv2", out, objects)
        again = awsenv.botocore_resolve(env)[0]
        check(again == out["access_key"], "IMDSv2: the same credentials again "
              "while over half their lifetime is left")
        f.rotate()
        check(awsenv.botocore_resolve(env)[0] not in (None, out["access_key"]),
              "IMDSv2: new credentials after rotate")

    # Container endpoint
    out = resolve(aws, "container relative URI", aws.env(**aws.container_env()),
                  "ASIAECS", "container-role")
    if out:
        s3_round(aws, "container relative URI", out, objects)
    out = resolve(aws, "container full URI + token",
                  aws.env(**aws.container_env(full=True)), "ASIAEKS", "container-role")
    if out:
        s3_round(aws, "container full URI + token", out, objects)
    resolve(aws, "container full URI + token file",
            aws.env(**aws.container_env(full=True, token_file=True)),
            "ASIAEKS", "container-role")
    try:
        awsenv.botocore_resolve(aws.env(**aws.container_env(full=True, token="wrong")))
        check(False, "container full URI, wrong token: botocore fails")
    except awsenv.ResolveError as e:
        check("401" in str(e), "container full URI, wrong token: 401, botocore "
              "fails (%s)" % str(e)[:80])

    # AssumeRole with source_profile, ExternalId and DurationSeconds
    base = f.issue("static")
    home.credentials("base", aws_access_key_id=base["AccessKeyId"],
                     aws_secret_access_key=base["SecretAccessKey"])
    home.profile("assumer", role_arn=ROLE_ARN, source_profile="base",
                 external_id="ext-42", duration_seconds=900,
                 role_session_name="dsc-selftest")
    f.set(external_id="ext-42")
    out = resolve(aws, "AssumeRole (source_profile)", aws.env(AWS_PROFILE="assumer"),
                  "ASIASTSROLE", "assume-role")
    last = f.stats()["last"].get("sts_AssumeRole", {})
    check(last.get("caller") == base["AccessKeyId"] and last.get("ExternalId") == "ext-42"
          and last.get("DurationSeconds") == "900"
          and last.get("RoleSessionName") == "dsc-selftest"
          and last.get("RoleArn") == ROLE_ARN,
          "AssumeRole: signed by the source key, with RoleArn, session name, "
          "ExternalId and DurationSeconds (%s)" % last)
    if out:
        s3_round(aws, "AssumeRole", out, objects)
        # role chaining: the assumed role's credentials call AssumeRole again
        sts = boto3.client("sts", endpoint_url=f.url, region_name="us-east-1",
                           aws_access_key_id=out["access_key"],
                           aws_secret_access_key=out["secret"],
                           aws_session_token=out["token"])
        chained = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="chain",
                                  ExternalId="ext-42")["Credentials"]
        check(chained["AccessKeyId"].startswith("ASIASTSROLE"),
              "AssumeRole: role chaining with issued credentials")
        who = sts.get_caller_identity()
        check(who["Arn"].endswith("assumed-role/dsc-reader/dsc-selftest"),
              "GetCallerIdentity: %s" % who["Arn"])
    home.profile("assumer-noext", role_arn=ROLE_ARN, source_profile="base")
    try:
        awsenv.botocore_resolve(aws.env(AWS_PROFILE="assumer-noext"))
        check(False, "AssumeRole without the required ExternalId fails")
    except awsenv.ResolveError as e:
        check("AccessDenied" in str(e), "AssumeRole without the required "
              "ExternalId: AccessDenied")
    bad = boto3.client("sts", endpoint_url=f.url, region_name="us-east-1",
                       aws_access_key_id=base["AccessKeyId"],
                       aws_secret_access_key="not-the-secret")
    try:
        bad.assume_role(RoleArn=ROLE_ARN, RoleSessionName="xx", ExternalId="ext-42")
        check(False, "AssumeRole signed with a wrong secret is refused")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "SignatureDoesNotMatch"
              and e.response["ResponseMetadata"]["HTTPStatusCode"] == 403,
              "AssumeRole signed with a wrong secret: 403 SignatureDoesNotMatch")

    # AssumeRoleWithWebIdentity (IRSA): environment, then profile
    token_file = home.write_file("web-identity-token", "fake-web-identity-token")
    env = aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=ROLE_ARN,
                  AWS_ROLE_SESSION_NAME="irsa-env")
    out = resolve(aws, "AssumeRoleWithWebIdentity (env)", env, "ASIASTSWEB",
                  "assume-role-with-web-identity")
    check(f.stats()["last"].get("sts_AssumeRoleWithWebIdentity", {})
          .get("RoleSessionName") == "irsa-env", "AssumeRoleWithWebIdentity: "
          "the session name from AWS_ROLE_SESSION_NAME")
    if out:
        s3_round(aws, "AssumeRoleWithWebIdentity", out, objects)
    home.profile("irsa", role_arn=ROLE_ARN, web_identity_token_file=token_file)
    resolve(aws, "AssumeRoleWithWebIdentity (profile)", aws.env(AWS_PROFILE="irsa"),
            "ASIASTSWEB", "assume-role-with-web-identity")
    wrong = home.write_file("wrong-token", "not-the-token")
    try:
        awsenv.botocore_resolve(aws.env(AWS_WEB_IDENTITY_TOKEN_FILE=wrong,
                                        AWS_ROLE_ARN=ROLE_ARN))
        check(False, "AssumeRoleWithWebIdentity with a wrong token fails")
    except awsenv.ResolveError as e:
        check("InvalidIdentityToken" in str(e), "AssumeRoleWithWebIdentity with a "
              "wrong token: InvalidIdentityToken")

    # SSO: sso-session, then legacy
    home.sso_session("corp", sso_start_url=START_URL, sso_region="us-east-1",
                     sso_registration_scopes="sso:account:access")
    home.profile("sso-new", sso_session="corp", sso_account_id="123456789012",
                 sso_role_name="dsc-sso-role")
    home.sso_token(START_URL, "us-east-1", "fake-sso-access-token", session_name="corp")
    out = resolve(aws, "SSO (sso-session)", aws.env(AWS_PROFILE="sso-new"),
                  "ASIASSO", "sso")
    if out:
        s3_round(aws, "SSO", out, objects)
    legacy_url = START_URL + "#legacy"
    home.profile("sso-old", sso_start_url=legacy_url, sso_region="us-east-1",
                 sso_account_id="123456789012", sso_role_name="dsc-sso-role")
    home.sso_token(legacy_url, "us-east-1", "fake-sso-access-token")
    resolve(aws, "SSO (legacy start_url)", aws.env(AWS_PROFILE="sso-old"), "ASIASSO", "sso")
    home.sso_token(legacy_url, "us-east-1", "stale-token")
    try:
        awsenv.botocore_resolve(aws.env(AWS_PROFILE="sso-old"))
        check(False, "SSO with a wrong token fails")
    except awsenv.ResolveError as e:
        check("UnauthorizedSSOToken" in str(e), "SSO with a wrong token: 401 "
              "UnauthorizedException (%s)" % str(e)[:60])

    # credential_process
    home.profile("proc", credential_process=home.credential_process_command(f))
    out = resolve(aws, "credential_process", aws.env(AWS_PROFILE="proc"),
                  "ASIAPROC", "custom-process")
    if out:
        s3_round(aws, "credential_process", out, objects)


def refusals(aws, objects, expiring):
    key = sorted(objects)[0]
    url = "%s/%s/%s" % (aws.proxy.url, BUCKET, key)
    good = aws.fakes.issue("process")
    creds = {"access_key": good["AccessKeyId"], "secret": good["SecretAccessKey"],
             "token": good["SessionToken"]}
    status, _, body = signed(url, "GET", creds)
    check(status == 200 and body == objects[key], "hand-signed GET: 200, the bytes")
    status, _, body = signed(url + "?x-id=GetObject", "GET", creds,
                             headers={"Range": "bytes=0-9"})
    check(status == 206 and body == objects[key][:10], "hand-signed ranged GET "
          "with a query string: 206")
    cases = [
        ("a wrong secret", dict(creds, secret="wrong/secret"), 403, "SignatureDoesNotMatch"),
        ("an unknown key", dict(creds, access_key="ASIAUNKNOWN000000000"), 403,
         "InvalidAccessKeyId"),
        ("a wrong session token", dict(creds, token="not-the-token"), 400, "InvalidToken"),
        ("no session token", dict(creds, token=None), 403, "InvalidAccessKeyId"),
    ]
    for what, c, want_status, want_code in cases:
        status, _, body = signed(url, "GET", c)
        check(status == want_status and code_of(body) == want_code,
              "signed with %s: %d %s (got %d %s)" % (what, want_status, want_code,
                                                       status, code_of(body)))
    status, _, body = raw(url, "GET")
    check(status == 403 and code_of(body) == "AccessDenied",
          "unsigned GET: 403 AccessDenied")
    # boto3 with a wrong secret sees the same
    try:
        s3_via(aws.proxy, dict(creds, secret="wrong")).head_object(Bucket=BUCKET, Key=key)
        check(False, "boto3 HEAD with a wrong secret is refused")
    except ClientError as e:
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 403,
              "boto3 HEAD with a wrong secret: 403")
    # expired: issued with a 2 s lifetime at the start of the test
    wait = expiring["expires_at"] + 1 - time.time()
    if wait > 0:
        time.sleep(wait)
    try:
        s3_via(aws.proxy, expiring["creds"]).get_object(Bucket=BUCKET, Key=key)
        check(False, "GET with expired credentials is refused")
    except ClientError as e:
        err = e.response["Error"]
        check(err["Code"] == "ExpiredToken"
              and e.response["ResponseMetadata"]["HTTPStatusCode"] == 400,
              "GET with credentials expired 1 s ago: 400 ExpiredToken, as S3")
    n = aws.proxy.count(verdict="ok", expired=True)
    check(n == 0, "the proxy log: %d requests passed with expired credentials" % n)
    check(aws.proxy.count(code="ExpiredToken") == 1, "the proxy log: one ExpiredToken")


def regions(aws, objects):
    key = sorted(objects)[0]
    good = aws.fakes.issue("process")
    creds = {"access_key": good["AccessKeyId"], "secret": good["SecretAccessKey"],
             "token": good["SessionToken"]}
    for mode in ("redirect", "malformed"):
        (aws.dir / mode).mkdir()
        proxy = awsenv.Proxy(aws.dir / mode, ENDPOINT, aws.fakes.registry_path,
                             bucket_regions={BUCKET: "eu-west-1"}, region_mode=mode)
        try:
            url = "%s/%s/%s" % (proxy.url, BUCKET, key)
            want = 301 if mode == "redirect" else 400
            code = "PermanentRedirect" if mode == "redirect" else "AuthorizationHeaderMalformed"
            st, hdrs, body = signed(url, "GET", creds, "us-east-1")
            check(st == want and hdrs.get("x-amz-bucket-region") == "eu-west-1"
                  and code_of(body) == code
                  and (mode == "redirect" or "<Region>eu-west-1</Region>" in body.decode()),
                  "%s mode: GET signed for us-east-1 on an eu-west-1 bucket: %d %s, "
                  "x-amz-bucket-region: eu-west-1" % (mode, want, code))
            st, hdrs, body = signed(url, "HEAD", creds, "us-east-1")
            check(st == want and hdrs.get("x-amz-bucket-region") == "eu-west-1"
                  and body == b"", "%s mode: HEAD: %d, the header, no body" % (mode, want))
            st, hdrs, body = signed(url, "GET", creds, "eu-west-1")
            check(st == 200 and body == objects[key], "%s mode: signed for eu-west-1: "
                  "200, forwarded" % mode)
            if mode == "redirect":
                s3 = s3_via(proxy, creds, region="eu-west-1")
                check(s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
                      == len(objects[key]), "boto3 in eu-west-1 through it: HEAD ok")
        finally:
            proxy.stop()


def faults(aws):
    f = aws.fakes
    env = aws.env(imds=True)
    f.reset_stats()
    f.add_fault("imds", "hang")
    t0 = time.time()
    out = awsenv.botocore_resolve_full(env, timeout=30)
    took = time.time() - t0
    check(out["access_key"] is None and took < 15, "IMDS hangs: botocore gives up "
          "with no credentials in %.1f s" % took)
    check(f.stats()["faulted"] >= 1, "IMDS hang: the fakes saw the requests (%s)"
          % f.stats()["requests"])
    f.clear_faults()
    f.add_fault("imds", "malformed", endpoint="imds_credentials")
    check(awsenv.botocore_resolve(env) == (None, None), "IMDS answers malformed "
          "JSON: botocore finds no credentials")
    f.clear_faults()
    f.add_fault("imds", "token_refused")
    check(awsenv.botocore_resolve(env) == (None, None), "IMDS refuses tokens: "
          "botocore's IMDSv1 fallback gets 401, no credentials")
    f.set(imds_v1=True)
    check((awsenv.botocore_resolve(env)[0] or "").startswith("ASIAIMDS"),
          "IMDS refuses tokens but allows v1: botocore gets credentials")
    f.set(imds_v1=False)
    f.clear_faults()
    f.add_fault("imds", "malformed", count=1, endpoint="imds_credentials")
    check(awsenv.botocore_resolve(env) == (None, None)
          and (awsenv.botocore_resolve(env)[0] or "").startswith("ASIAIMDS"),
          "a fault with count=1 hits one request, the next succeeds")
    f.clear_faults()
    # plain HTTP: the IMDSv2 rules
    st, _, _ = raw(f.url + "/latest/meta-data/iam/security-credentials/", "GET")
    check(st == 401, "IMDS GET without a token: 401")
    st, _, _ = raw(f.url + "/latest/api/token", "PUT")
    check(st == 400, "IMDS token PUT without the TTL header: 400")
    st, _, tok = raw(f.url + "/latest/api/token", "PUT",
                     {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    st2, _, region = raw(f.url + "/latest/meta-data/placement/region", "GET",
                         {"X-aws-ec2-metadata-token": tok.decode()})
    check(st == 200 and st2 == 200 and region == b"us-east-1",
          "IMDS placement/region with a token: us-east-1")
    # container: malformed JSON (botocore tries 3 times, 1 s apart)
    f.reset_stats()
    f.add_fault("container", "malformed")
    try:
        awsenv.botocore_resolve(aws.env(**aws.container_env(full=True)))
        check(False, "container answers malformed JSON: botocore fails")
    except awsenv.ResolveError as e:
        check("parse" in str(e).lower() or "JSON" in str(e),
              "container answers malformed JSON: botocore fails (%s), %d requests"
              % (str(e)[:70], f.stats()["requests"].get("container_full", 0)))
    f.clear_faults()
    # STS error code and SSO 500
    f.add_fault("sts", "error", code="RegionDisabledException")
    try:
        awsenv.botocore_resolve(aws.env(AWS_PROFILE="assumer"))
        check(False, "STS error fault surfaces")
    except awsenv.ResolveError as e:
        check("RegionDisabledException" in str(e), "STS answers RegionDisabledException: "
              "botocore fails with it")
    f.clear_faults()
    f.add_fault("sso", "error", code="TooManyRequestsException")
    try:
        awsenv.botocore_resolve(aws.env(AWS_PROFILE="sso-new"))
        check(False, "SSO error fault surfaces")
    except awsenv.ResolveError as e:
        check("TooManyRequests" in str(e), "SSO answers TooManyRequestsException: "
              "botocore fails with it")
    f.clear_faults()


def main():
    faulthandler.dump_traceback_later(240, exit=True)
    if not ENDPOINT or not BUCKET:
        sys.exit("DSC_TEST_ENDPOINT / DSC_TEST_BUCKET not set: run through tests/run.sh")
    rng = random.Random(13)
    objects = {PREFIX + "small.txt": b"hello from s3rver\n" * 7,
               PREFIX + "dir/odd key+name=1.bin": rng.randbytes(5000),
               PREFIX + "big.bin": rng.randbytes(3 * 1024 * 1024 + 17)}
    s3 = direct_s3()
    t0 = time.time()
    try:
        for k, v in objects.items():
            s3.put_object(Bucket=BUCKET, Key=k, Body=v)
        with awsenv.AwsEnv(lifetime=20, upstream=ENDPOINT) as aws:
            short = aws.fakes.issue("process", lifetime=2)
            expiring = {"creds": {"access_key": short["AccessKeyId"],
                                  "secret": short["SecretAccessKey"],
                                  "token": short["SessionToken"]},
                        "expires_at": time.time() + 2}
            sources(aws, objects)
            refusals(aws, objects, expiring)
            regions(aws, objects)
            faults(aws)
            by_source = {}
            for rec in aws.fakes.issued():
                by_source[rec["source"]] = by_source.get(rec["source"], 0) + 1
            print("credentials issued by source: %s" % by_source)
            print("proxy verdicts: %d requests, %d ok" % (
                len(aws.proxy.entries()), aws.proxy.count(verdict="ok")))
            print("big object sha256 %s" % hashlib.sha256(objects[PREFIX + "big.bin"])
                  .hexdigest()[:16])
    finally:
        for k in objects:
            s3.delete_object(Bucket=BUCKET, Key=k)
    print("%.1f s, %d checks failed" % (time.time() - t0, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
