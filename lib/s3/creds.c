/* The credential chain in the AWS SDKs' default order (botocore's
 * create_credential_resolver), and region, endpoint and addressing.
 * The HTTP sources are in creds_fetch.c, credential_process in
 * creds_process.c; this file decides which one applies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "net/sigv4.h"
#include "s3/internal.h"

/* ---- Sources ------------------------------------------------------------ */

typedef struct resolver {
    const dsc_config *cfg;
    dsc_aws_files f;
    dsc_profile top;            /* the profile asked for */
    const char *region;         /* resolved before the chain: STS needs it */
    dsc_buf tried;              /* "; "-joined: each source and why not */
    char *imds_down;            /* why IMDS did not answer, once probed */
    const char *visited[16];    /* source_profile chain, for loops */
    int nvisited;
} resolver;

/* Starts the next entry of the sources tried; the caller appends it. */
static dsc_buf *tried(resolver *r)
{
    if (r->tried.len)
        dsc_buf_adds(&r->tried, "; ");
    return &r->tried;
}

void dsc_cred_source_free(dsc_cred_source *s)
{
    if (!s)
        return;
    dsc_cred_source_free(s->base);
    dsc_keys_free(&s->keys);
    free(s->profile);
    free(s->ca_file);
    free(s->url);
    free(s->region);
    free(s->role_arn);
    free(s->session_name);
    free(s->external_id);
    free(s->duration);
    free(s->token_file);
    free(s->sso_cache_file);
    free(s->sso_account);
    free(s->sso_role);
    dsc_argv_free(s->argv);
    if (s->auth_token)
        memset(s->auth_token, 0, strlen(s->auth_token));
    free(s->auth_token);
    free(s->auth_token_file);
    free(s);
}

static dsc_cred_source *source_new(const resolver *r, cred_kind kind,
                                   const char *name, const char *prof)
{
    dsc_cred_source *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->name = name;
    s->profile = dsc_strdup(prof);
    s->connect_timeout_ms = r->cfg->connect_timeout_ms;
    s->request_timeout_ms = r->cfg->request_timeout_ms;
    s->verify_tls = r->cfg->verify_tls;
    s->ca_file = dsc_strdup(r->cfg->ca_file);
    s->attempts = 1;
    s->region = dsc_strdup(r->region);
    if ((prof && !s->profile) || (r->cfg->ca_file && !s->ca_file) ||
        !s->region) {
        dsc_cred_source_free(s);
        return NULL;
    }
    return s;
}

/* Static keys as a source; partial keys are DSC_ECREDS naming where. */
static int static_source(const resolver *r, const char *ak, const char *sk,
                         const char *tok, const char *name, const char *where,
                         dsc_cred_source **out)
{
    if (!ak || !sk)
        return dsc_fail(DSC_ECREDS, "%s: access key id without secret access "
                        "key (or the reverse)", where);
    dsc_cred_source *s = source_new(r, CRED_STATIC, name, NULL);
    if (!s)
        return DSC_ENOMEM;
    s->keys.access_key = dsc_strdup(ak);
    s->keys.secret_key = dsc_strdup(sk);
    s->keys.session_token = dsc_strdup(tok);
    if (!s->keys.access_key || !s->keys.secret_key ||
        (tok && !s->keys.session_token)) {
        dsc_cred_source_free(s);
        return DSC_ENOMEM;
    }
    *out = s;
    return 0;
}

static int set(char **slot, const char *v)
{
    *slot = dsc_strdup(v);
    return v && !*slot ? DSC_ENOMEM : 0;
}

/* First of the variables, then the profile's nested "svc =\n endpoint_url",
 * then its endpoint_url (botocore's service-specific endpoints). */
static const char *endpoint_for(const dsc_profile *p, const char *svc_env,
                                const char *svc_key)
{
    return dsc_env(svc_env) ? dsc_env(svc_env)
         : dsc_env("AWS_ENDPOINT_URL") ? dsc_env("AWS_ENDPOINT_URL")
         : dsc_profile_get(p, svc_key) ? dsc_profile_get(p, svc_key) : dsc_profile_get(p, "endpoint_url");
}

static int imds_source(const resolver *r, dsc_cred_source **out)
{
    const char *t = dsc_env("AWS_METADATA_SERVICE_TIMEOUT");
    const char *a = dsc_env("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
    const char *ep = dsc_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = dsc_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    double secs = t ? strtod(t, NULL) : 1;
    long tries = a ? strtol(a, NULL, 10) : 1;
    dsc_cred_source *s = source_new(r, CRED_IMDS, "imds", NULL);
    if (!s)
        return DSC_ENOMEM;
    /* At least 1 ms: 0 would be curl's "no timeout". */
    s->connect_timeout_ms = s->request_timeout_ms =
        secs > 0 && secs < 3600 ? (secs < 0.001 ? 1 : (long)(secs * 1000))
                                : 1000;
    s->attempts = tries > 0 && tries < 100 ? (int)tries : 1;
    if (!ep)
        ep = mode && strcasecmp(mode, "IPv6") == 0 ? "http://[fd00:ec2::254]"
                                                   : "http://169.254.169.254";
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    s->url = dsc_strndup(ep, n);
    if (!s->url) {
        dsc_cred_source_free(s);
        return DSC_ENOMEM;
    }
    *out = s;
    return 0;
}

static int imds_disabled(void)
{
    const char *d = dsc_env("AWS_EC2_METADATA_DISABLED");
    return d && strcasecmp(d, "true") == 0;
}

/* The container endpoint, when the variables set one. */
static int container_source(const resolver *r, dsc_cred_source **out)
{
    const char *rel = dsc_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = dsc_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return DSC_ABSENT;
    dsc_cred_source *s = source_new(r, CRED_CONTAINER, "container", NULL);
    if (!s)
        return DSC_ENOMEM;
    dsc_buf u = { 0 };
    if (rel)
        dsc_buf_printf(&u, "http://169.254.170.2%s%s", *rel == '/' ? "" : "/",
                       rel);
    else
        dsc_buf_adds(&u, full);
    s->url = u.data;
    s->attempts = 3;    /* botocore's ContainerMetadataFetcher */
    int rc = dsc_buf_oom(&u) ? DSC_ENOMEM : 0;
    if (!rc)
        rc = set(&s->auth_token_file,
                 dsc_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
    if (!rc && !s->auth_token_file)
        rc = set(&s->auth_token, dsc_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    if (rc) {
        dsc_cred_source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int chain_profile(resolver *r, const dsc_profile *p, int env_ok,
                         dsc_cred_source **out);
static int assume_role(resolver *r, const dsc_profile *p, dsc_cred_source **out);
static int has_role(const dsc_profile *p);

/* The STS endpoint, from the profile asked for (the client botocore
 * makes for AssumeRole is the session's). */
static int sts_url(resolver *r, dsc_cred_source *s)
{
    const char *ep = endpoint_for(&r->top, "AWS_ENDPOINT_URL_STS",
                                  "sts.endpoint_url");
    dsc_buf u = { 0 };
    if (ep)
        dsc_buf_adds(&u, ep);
    else
        dsc_buf_printf(&u, "https://sts.%s.amazonaws.com", r->region);
    s->url = u.data;
    return dsc_buf_oom(&u) ? DSC_ENOMEM : 0;
}

static int session_name(const char *given, char **out)
{
    if (given)
        return set(out, given);
    dsc_buf b = { 0 };
    dsc_buf_printf(&b, "dsc-session-%lld", (long long)time(NULL));
    *out = b.data;
    return dsc_buf_oom(&b) ? DSC_ENOMEM : 0;
}

/* Where a role's source keys come from: credential_source, or the
 * source_profile (its static keys or its own chain; a role again). */
static int role_base(resolver *r, const dsc_profile *p, dsc_cred_source **out)
{
    const char *csrc = dsc_profile_get(p, "credential_source");
    const char *sp = dsc_profile_get(p, "source_profile");
    if (csrc && sp)
        return dsc_fail(DSC_ECREDS, "profile '%s': both source_profile and "
                        "credential_source are set", p->name);
    if (!csrc && !sp)
        return dsc_fail(DSC_ECREDS, "profile '%s': role_arn needs "
                        "source_profile or credential_source", p->name);
    if (csrc) {
        int rc;
        if (strcmp(csrc, "Environment") == 0) {
            if (!dsc_env("AWS_ACCESS_KEY_ID") && !dsc_env("AWS_SECRET_ACCESS_KEY"))
                return dsc_fail(DSC_ECREDS, "profile '%s': credential_source "
                                "Environment but AWS_ACCESS_KEY_ID is unset",
                                p->name);
            return static_source(r, dsc_env("AWS_ACCESS_KEY_ID"),
                                 dsc_env("AWS_SECRET_ACCESS_KEY"),
                                 dsc_env("AWS_SESSION_TOKEN"), "env", "env", out);
        }
        if (strcmp(csrc, "EcsContainer") == 0) {
            rc = container_source(r, out);
            if (rc == DSC_ABSENT)
                rc = dsc_fail(DSC_ECREDS, "profile '%s': credential_source "
                              "EcsContainer but AWS_CONTAINER_CREDENTIALS_* "
                              "are unset", p->name);
            return rc;
        }
        if (strcmp(csrc, "Ec2InstanceMetadata") == 0)
            return imds_source(r, out);
        return dsc_fail(DSC_ECREDS, "profile '%s': credential_source '%s' is "
                        "not one of Environment, Ec2InstanceMetadata, "
                        "EcsContainer", p->name, csrc);
    }
    /* A profile may name itself to take its own static keys; any other
     * repeat is a loop. */
    for (int i = 0; i < r->nvisited; i++)
        if (strcmp(r->visited[i], sp) == 0 &&
            (strcmp(sp, p->name) != 0 || (!dsc_profile_get(p, "aws_access_key_id") &&
                                          !dsc_profile_get(p, "aws_secret_access_key"))))
            return dsc_fail(DSC_ECREDS, "profile '%s': source_profile '%s' "
                            "makes a loop", p->name, sp);
    if ((size_t)r->nvisited >= DSC_ARRAY_LEN(r->visited))
        return dsc_fail(DSC_ECREDS, "profile '%s': source_profile chain "
                        "too long", p->name);
    r->visited[r->nvisited++] = sp;
    dsc_profile src;
    int rc = dsc_profile_load(&r->f, sp, &src);
    if (!rc && !src.found)
        rc = dsc_fail(DSC_ECREDS, "profile '%s': source_profile '%s' does not "
                      "exist", p->name, sp);
    int keys = dsc_profile_get(&src, "aws_access_key_id") ||
               dsc_profile_get(&src, "aws_secret_access_key");
    if (!rc && !keys && has_role(&src)) {
        rc = assume_role(r, &src, out);     /* a role again */
    } else if (!rc) {
        /* Its static keys or its own ways, without the environment. */
        size_t mark = r->tried.len;
        rc = chain_profile(r, &src, 0, out);
        r->tried.len = mark;    /* a source's misses are not the chain's */
        if (r->tried.data)
            r->tried.data[mark] = 0;
        if (rc == DSC_ABSENT)
            rc = dsc_fail(DSC_ECREDS, "profile '%s': source_profile '%s' has "
                          "no credentials", p->name, sp);
    }
    dsc_profile_free(&src);
    return rc;
}

static int has_role(const dsc_profile *p)
{
    return dsc_profile_get(p, "role_arn") && !dsc_profile_get(p, "web_identity_token_file");
}

static int assume_role(resolver *r, const dsc_profile *p, dsc_cred_source **out)
{
    if (dsc_profile_get(p, "mfa_serial"))
        return dsc_fail(DSC_ECREDS, "profile '%s': role_arn with mfa_serial "
                        "is not supported (no MFA prompt in a library); use "
                        "credential_process or temporary keys", p->name);
    const char *dur = dsc_profile_get(p, "duration_seconds");
    if (dur) {
        char *end;
        long d = strtol(dur, &end, 10);
        if (*end || d < 900 || d > 43200)
            return dsc_fail(DSC_ECREDS, "profile '%s': duration_seconds '%s' "
                            "is not 900..43200", p->name, dur);
    }
    dsc_cred_source *s = source_new(r, CRED_ASSUME_ROLE, "assume-role",
                                    p->name);
    if (!s)
        return DSC_ENOMEM;
    int rc = set(&s->role_arn, dsc_profile_get(p, "role_arn"));
    rc = rc ? rc : set(&s->external_id, dsc_profile_get(p, "external_id"));
    rc = rc ? rc : set(&s->duration, dur);
    rc = rc ? rc : session_name(dsc_profile_get(p, "role_session_name"), &s->session_name);
    rc = rc ? rc : sts_url(r, s);
    rc = rc ? rc : role_base(r, p, &s->base);
    if (rc) {
        dsc_cred_source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Web identity: the variables first (unless a profile was named in the
 * config), then the profile's settings, key by key (botocore's
 * _get_config). */
static int web_identity(resolver *r, const dsc_profile *p, int env_ok,
                        dsc_cred_source **out)
{
#define WI(var, key) (env_ok && dsc_env(var) ? dsc_env(var) : dsc_profile_get(p, key))
    const char *file = WI("AWS_WEB_IDENTITY_TOKEN_FILE",
                          "web_identity_token_file");
    const char *arn = WI("AWS_ROLE_ARN", "role_arn");
    const char *name = WI("AWS_ROLE_SESSION_NAME", "role_session_name");
#undef WI
    if (!file)
        return DSC_ABSENT;
    if (!arn)
        return dsc_fail(DSC_ECREDS, "web identity token file %s but no role "
                        "ARN (AWS_ROLE_ARN or the profile's role_arn)", file);
    dsc_cred_source *s = source_new(r, CRED_WEB_IDENTITY, "web-identity",
                                    p->name);
    if (!s)
        return DSC_ENOMEM;
    int rc = set(&s->role_arn, arn);
    rc = rc ? rc : set(&s->token_file, file);
    rc = rc ? rc : session_name(name, &s->session_name);
    rc = rc ? rc : sts_url(r, s);
    if (rc) {
        dsc_cred_source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int sso(resolver *r, const dsc_profile *p, dsc_cred_source **out)
{
    const char *sess = dsc_profile_get(p, "sso_session");
    const char *url = dsc_profile_get(p, "sso_start_url");
    const char *region = dsc_profile_get(p, "sso_region");
    const char *acct = dsc_profile_get(p, "sso_account_id");
    const char *role = dsc_profile_get(p, "sso_role_name");
    if (!sess && !url && !acct && !role)
        return DSC_ABSENT;
    dsc_profile ss = { 0 };
    int rc = 0;
    if (sess) {
        dsc_buf name = { 0 };
        dsc_buf_printf(&name, "sso-session %s", sess);
        rc = dsc_buf_oom(&name) ? DSC_ENOMEM
           : dsc_ini_section(r->f.conf, r->f.conf_len, name.data, &ss.found,
                           &ss.conf);
        dsc_buf_free(&name);
        if (!rc && !ss.found)
            rc = dsc_fail(DSC_ECREDS, "profile '%s': sso_session '%s' has no "
                          "[sso-session %s] section in %s", p->name, sess,
                          sess, r->f.conf_path ? r->f.conf_path : "the config");
        url = dsc_kvs_get(&ss.conf, "sso_start_url");
        region = dsc_kvs_get(&ss.conf, "sso_region");
    }
    const char *missing = !url ? "sso_start_url" : !region ? "sso_region"
                        : !acct ? "sso_account_id" : !role ? "sso_role_name"
                        : NULL;
    if (!rc && missing)
        rc = dsc_fail(DSC_ECREDS, "profile '%s' uses SSO but %s is not set",
                      p->name, missing);
    if (!rc && !dsc_region_ok(region))
        rc = dsc_fail(DSC_ECREDS, "profile '%s': sso_region '%s' is not a "
                      "region name", p->name, region);
    char *home = dsc_home_path(".aws/sso/cache/");
    if (!rc && !home)
        rc = dsc_fail(DSC_ECREDS, "profile '%s' uses SSO but HOME is unset "
                      "(the token cache is ~/.aws/sso/cache)", p->name);
    dsc_cred_source *s = NULL;
    if (!rc) {
        s = source_new(r, CRED_SSO, "sso", p->name);
        rc = s ? 0 : DSC_ENOMEM;
    }
    if (!rc) {
        /* The AWS CLI names the cache file by the session (sso_session) or
         * by the start URL (legacy profiles). */
        const char *id = sess ? sess : url;
        char hex[41];
        dsc_sha1_hex(id, strlen(id), hex);
        dsc_buf b = { 0 };
        dsc_buf_printf(&b, "%s%s.json", home, hex);
        s->sso_cache_file = b.data;
        rc = dsc_buf_oom(&b) ? DSC_ENOMEM : 0;
        const char *ep = dsc_env("AWS_ENDPOINT_URL_SSO") ? dsc_env("AWS_ENDPOINT_URL_SSO")
                                                     : dsc_env("AWS_ENDPOINT_URL");
        dsc_buf u = { 0 };
        if (ep)
            dsc_buf_adds(&u, ep);
        else
            dsc_buf_printf(&u, "https://portal.sso.%s.amazonaws.com", region);
        s->url = u.data;
        rc = rc ? rc : dsc_buf_oom(&u) ? DSC_ENOMEM : 0;
        rc = rc ? rc : set(&s->sso_account, acct);
        rc = rc ? rc : set(&s->sso_role, role);
    }
    free(home);
    dsc_profile_free(&ss);
    if (rc) {
        dsc_cred_source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int process(resolver *r, const dsc_profile *p, dsc_cred_source **out)
{
    const char *cmd = dsc_profile_get(p, "credential_process");
    if (!cmd)
        return DSC_ABSENT;
    dsc_cred_source *s = source_new(r, CRED_PROCESS, "process", p->name);
    if (!s)
        return DSC_ENOMEM;
    int rc = dsc_shell_split(cmd, &s->argv);
    if (rc == DSC_EINVAL) {
        dsc_errsave why;    /* the detail is formatted into itself else */
        dsc_err_save(&why);
        rc = dsc_fail(DSC_ECREDS, "profile '%s': credential_process: %s",
                      p->name, why.msg);
    }
    if (rc) {
        dsc_cred_source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* A profile's own ways, in botocore's ProfileProviderBuilder order: web
 * identity, SSO, the credentials file's keys, credential_process, the
 * config file's keys. DSC_ABSENT when it has none. */
static int chain_profile(resolver *r, const dsc_profile *p, int env_ok,
                         dsc_cred_source **out)
{
    int rc = web_identity(r, p, env_ok, out);
    if (rc != DSC_ABSENT)
        return rc;
    if (env_ok)
        dsc_buf_adds(tried(r), "web identity (AWS_WEB_IDENTITY_TOKEN_FILE "
                     "unset)");
    rc = sso(r, p, out);
    if (rc != DSC_ABSENT)
        return rc;
    const char *ak = dsc_kvs_get(&p->cred, "aws_access_key_id");
    const char *sk = dsc_kvs_get(&p->cred, "aws_secret_access_key");
    if (ak || sk)
        return static_source(r, ak, sk, dsc_kvs_get(&p->cred, "aws_session_token"),
                             "profile", "profile (credentials file)", out);
    rc = process(r, p, out);
    if (rc != DSC_ABSENT)
        return rc;
    ak = dsc_kvs_get(&p->conf, "aws_access_key_id");
    sk = dsc_kvs_get(&p->conf, "aws_secret_access_key");
    if (ak || sk)
        return static_source(r, ak, sk, dsc_kvs_get(&p->conf, "aws_session_token"),
                             "profile", "profile (config file)", out);
    dsc_buf_printf(tried(r), "profile '%s' (no keys, role, SSO or "
                   "credential_process in %s, %s)", p->name,
                   r->f.cred_path ? r->f.cred_path : "(no credentials file)",
                   r->f.conf_path ? r->f.conf_path : "(no config file)");
    return DSC_ABSENT;
}

/* The whole chain; DSC_ABSENT when nothing applies. */
static int chain(resolver *r, dsc_cred_source **out)
{
    const dsc_config *cfg = r->cfg;
    int rc;
    if (cfg->access_key_id || cfg->secret_access_key)
        return static_source(r, cfg->access_key_id, cfg->secret_access_key,
                             cfg->session_token, "config", "config", out);
    if (cfg->profile) {
        /* Like botocore's Session(profile=): a named profile negates the
         * environment's keys. AWS_PROFILE does not. */
        dsc_buf_printf(tried(r), "env (ignored: profile '%s' named in the "
                       "config)", cfg->profile);
    } else if (dsc_env("AWS_ACCESS_KEY_ID") || dsc_env("AWS_SECRET_ACCESS_KEY")) {
        return static_source(r, dsc_env("AWS_ACCESS_KEY_ID"),
                             dsc_env("AWS_SECRET_ACCESS_KEY"),
                             dsc_env("AWS_SESSION_TOKEN"), "env", "env", out);
    } else {
        dsc_buf_adds(tried(r), "env (AWS_ACCESS_KEY_ID unset)");
    }
    if (has_role(&r->top)) {
        r->visited[r->nvisited++] = r->top.name;
        return assume_role(r, &r->top, out);
    }
    rc = chain_profile(r, &r->top, !cfg->profile, out);
    if (rc != DSC_ABSENT)
        return rc;
    rc = container_source(r, out);
    if (rc != DSC_ABSENT)
        return rc;
    dsc_buf_adds(tried(r), "container (AWS_CONTAINER_CREDENTIALS_* unset)");
    if (imds_disabled()) {
        dsc_buf_adds(tried(r), "IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
        return DSC_ABSENT;
    }
    if (r->imds_down) {
        dsc_buf_adds(tried(r), r->imds_down);
        return DSC_ABSENT;
    }
    return imds_source(r, out);
}

/* ---- Region, endpoint, addressing ---------------------------------------- */

static int where(resolver *r, const dsc_config *cfg, dsc_creds *out)
{
    const dsc_profile *p = &r->top;
    const char *ep = cfg->endpoint ? cfg->endpoint
                   : endpoint_for(p, "AWS_ENDPOINT_URL_S3", "s3.endpoint_url");
    if (set(&out->endpoint, ep))
        return DSC_ENOMEM;
    const char *style = dsc_profile_get(p, "s3.addressing_style");
    out->addressing = !style ? -1
                    : strcmp(style, "path") == 0 ? DSC_ADDRESSING_PATH
                    : strcmp(style, "virtual") == 0 ? DSC_ADDRESSING_VHOST
                    : strcmp(style, "auto") == 0 ? DSC_ADDRESSING_AUTO : -1;
    if (style && out->addressing < 0)
        return dsc_fail(DSC_ECREDS, "profile '%s': s3 addressing_style '%s' "
                        "is not path, virtual or auto", p->name, style);

    const char *region = NULL;
    if ((region = cfg->region))
        out->region_source = "config";
    else if ((region = dsc_env("AWS_REGION")) ||
             (region = dsc_env("AWS_DEFAULT_REGION")))
        out->region_source = "env";
    else if ((region = dsc_profile_get(p, "region")))
        out->region_source = "profile";
    if (region && !dsc_region_ok(region))
        return dsc_fail(DSC_EINVAL, "region '%s' (from the %s) is not a "
                        "region name such as us-east-1", region,
                        out->region_source);
    if (region)
        return set(&out->region, region);
    /* Ask IMDS only for AWS itself: a custom endpoint (MinIO) needs no
     * real region, and a machine off EC2 should not wait for it. */
    if (!ep && !imds_disabled()) {
        dsc_cred_source *imds = NULL;
        r->region = "us-east-1";    /* source_new copies one */
        int rc = imds_source(r, &imds);
        dsc_buf why = { 0 };
        if (!rc)
            rc = dsc_imds_region(imds, &out->region, &why);
        dsc_cred_source_free(imds);
        if (rc == DSC_ABSENT && why.data) {
            r->imds_down = why.data;
            why.data = NULL;
        }
        dsc_buf_free(&why);
        if (!rc) {
            out->region_source = "imds";
            return 0;
        }
        if (rc != DSC_ABSENT)
            return rc;
    }
    out->region_source = "default";
    return set(&out->region, "us-east-1");
}

/* ---- Public ------------------------------------------------------------- */

int dsc_cred_fetch(const dsc_cred_source *s, int absent_ok, dsc_keys *out)
{
    memset(out, 0, sizeof *out);
    if (s->kind == CRED_STATIC)
        return dsc_keys_copy(out, &s->keys);
    if (s->kind == CRED_PROCESS)
        return dsc_cred_fetch_process(s, out);
    return dsc_cred_fetch_http(s, absent_ok, out);
}

int dsc_creds_fetch(const dsc_creds *c, dsc_keys *out)
{
    if (!c->refresh)
        return dsc_keys_copy(out, &c->keys);
    return dsc_cred_fetch(c->refresh, 0, out);
}

static int anonymous_env(void)
{
    const char *v = dsc_env("DSC_ANONYMOUS");
    return v && strcmp(v, "0") != 0;
}

int dsc_creds_resolve(const dsc_config *cfg, dsc_creds *out)
{
    memset(out, 0, sizeof *out);
    out->addressing = -1;
    resolver r = { .cfg = cfg };
    dsc_cred_source *src = NULL;
    const char *named = cfg->profile ? cfg->profile : dsc_env("AWS_PROFILE");
    int rc = dsc_aws_files_load(&r.f);
    if (!rc)
        rc = dsc_profile_load(&r.f, named ? named : "default", &r.top);
    if (!rc && named && !r.top.found)
        rc = dsc_fail(DSC_ECREDS, "profile '%s' not found in %s or %s", named,
                      r.f.cred_path ? r.f.cred_path : "(no credentials file)",
                      r.f.conf_path ? r.f.conf_path : "(no config file)");
    if (!rc)
        rc = where(&r, cfg, out);
    if (rc)
        goto done;
    r.region = out->region;
    if (cfg->anonymous ||
        (!cfg->access_key_id && !cfg->secret_access_key && anonymous_env())) {
        out->source = "anonymous";
        goto done;
    }
    rc = chain(&r, &src);
    if (!rc) {
        rc = dsc_cred_fetch(src, 1, &out->keys);
        if (rc == DSC_ABSENT) {     /* IMDS: not on EC2, or no role */
            dsc_buf_adds(tried(&r), dsc_errmsg());    /* "IMDS (url): why" */
            dsc_cred_source_free(src);
            src = NULL;
        }
    }
    if (rc == DSC_ABSENT) {
        rc = dsc_buf_oom(&r.tried) ? DSC_ENOMEM
           : dsc_fail(DSC_ECREDS, "no credentials found: %s. Set keys or a "
                      "profile, or DSC_ANONYMOUS=1 for a public bucket",
                      r.tried.data);
        goto done;
    }
    if (rc)
        goto done;
    out->source = src->name;
    if (src->kind != CRED_STATIC) {
        out->refresh = src;
        src = NULL;
    }
done:
    dsc_cred_source_free(src);
    dsc_profile_free(&r.top);
    dsc_aws_files_free(&r.f);
    dsc_buf_free(&r.tried);
    free(r.imds_down);
    if (rc)
        dsc_creds_free(out);
    return rc;
}

int dsc_keys_copy(dsc_keys *dst, const dsc_keys *src)
{
    memset(dst, 0, sizeof *dst);
    dst->access_key = dsc_strdup(src->access_key);
    dst->secret_key = dsc_strdup(src->secret_key);
    dst->session_token = dsc_strdup(src->session_token);
    dst->expires = src->expires;
    if ((src->access_key && !dst->access_key) ||
        (src->secret_key && !dst->secret_key) ||
        (src->session_token && !dst->session_token)) {
        dsc_keys_free(dst);
        return DSC_ENOMEM;
    }
    return 0;
}

void dsc_keys_free(dsc_keys *k)
{
    /* The secret and the token both sign; neither stays in freed memory. */
    if (k->secret_key)
        memset(k->secret_key, 0, strlen(k->secret_key));
    if (k->session_token)
        memset(k->session_token, 0, strlen(k->session_token));
    free(k->access_key);
    free(k->secret_key);
    free(k->session_token);
    memset(k, 0, sizeof *k);
}

void dsc_creds_free(dsc_creds *c)
{
    dsc_keys_free(&c->keys);
    free(c->region);
    free(c->endpoint);
    dsc_cred_source_free(c->refresh);
    memset(c, 0, sizeof *c);
    c->addressing = -1;
}
