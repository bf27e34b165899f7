/* The credential sources that answer over HTTP: STS (AssumeRole,
 * AssumeRoleWithWebIdentity), the SSO portal, the container endpoint and
 * IMDSv2. Each fetch makes its own connection pool and frees it, so a
 * fetch may run in any thread or fork()ed child. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "net/http.h"
#include "net/sigv4.h"
#include "net/url.h"
#include "s3/internal.h"
#include "s3/xml.h"

#define BODY_MAX (1u << 20)
#define IMDS_TOKEN_TTL "21600"

/* A small file (token), whole; NULL with errno set. Trailing newlines go:
 * an editor's newline is not part of a token. */
static char *read_token(const char *path)
{
    size_t n;
    char *t = dsc_read_small_file(path, BODY_MAX, &n);
    while (t && n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
        t[--n] = 0;
    return t;
}

static void wipe_buf(dsc_buf *b)
{
    if (b->data)
        memset(b->data, 0, b->cap);
    dsc_buf_free(b);
}

static int http_for(const dsc_cred_source *s, dsc_http **h)
{
    dsc_http_opts o = {
        .connect_timeout_ms = s->connect_timeout_ms,
        .request_timeout_ms = s->request_timeout_ms,
        .max_connections = 2,
        .verify_tls = s->verify_tls,
        .ca_file = s->ca_file,
        /* The container endpoint and IMDS answer with keys (and take a
         * bearer token) on a local address: never hand that to a proxy
         * from the environment. */
        .no_proxy = s->kind == CRED_CONTAINER || s->kind == CRED_IMDS,
    };
    return dsc_http_new(&o, h);
}

/* "name: value", or "name:" (curl then sends none) when value is NULL. */
static int header(struct curl_slist **h, const char *name, const char *value)
{
    if (!dsc_header_value_ok(value))
        return dsc_fail(DSC_ECREDS, "the %s to send holds a control "
                        "character; refusing to send it", name);
    dsc_buf line = { 0 };
    dsc_buf_printf(&line, "%s:%s%s", name, value ? " " : "",
                   value ? value : "");
    struct curl_slist *t = dsc_buf_oom(&line) ? NULL
                                              : curl_slist_append(*h, line.data);
    wipe_buf(&line);        /* it may be a bearer token */
    if (!t)
        return DSC_ENOMEM;
    *h = t;
    return 0;
}

/* One request; 0 when an answer came (body in body or rs->err_body),
 * -1 with rs->curl_err when none did. */
static int call(dsc_http *h, const char *method, const char *url,
                struct curl_slist *hdrs, dsc_buf *body, dsc_http_resp *rs)
{
    dsc_buf_reset(body);
    dsc_http_req rq = {
        .method = method, .url = url, .headers = hdrs,
        .body = body, .body_max = BODY_MAX,
    };
    return dsc_http_perform(h, &rq, rs);
}

/* The "message" of a JSON error body, or the body's first line. */
static void error_text(const dsc_buf *b, char *out, size_t cap)
{
    char *m = NULL;
    const char *t = b->data ? b->data : "";
    if (dsc_json_string(t, b->len, "message", &m) &&
        dsc_json_string(t, b->len, "Message", &m)) {
        char line[256];
        size_t n = strcspn(t, "\r\n");
        snprintf(line, sizeof line, "%.*s", (int)n, t);
        dsc_printable(line, out, cap);
        return;
    }
    dsc_printable(m, out, cap);
    free(m);
}

int dsc_cred_keys_from_json(const char *json, size_t len, const char *ak,
                            const char *sk, const char *tok, const char *exp,
                            int epoch_ms, const char *what, dsc_keys *out)
{
    memset(out, 0, sizeof *out);
    const char *names[3] = { ak, sk, tok };
    char **slots[3] = { &out->access_key, &out->secret_key,
                        &out->session_token };
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        rc = dsc_json_string(json, len, names[i], slots[i]);
        if (rc == DSC_ABSENT && i == 2)
            rc = 0;     /* a token is optional */
        else if (rc == DSC_ABSENT)
            rc = dsc_fail(DSC_ECREDS, "%s: the answer has no %s", what,
                          names[i]);
        else if (rc == DSC_EPROTO) {
            dsc_errsave why;
            dsc_err_save(&why);
            rc = dsc_fail(DSC_ECREDS, "%s: the answer is not the JSON "
                          "expected (%s)", what, why.msg);
        }
    }
    dsc_json_val v = { 0 };
    int erc = rc ? DSC_ABSENT : dsc_json_get(json, len, exp, &v);
    if (!erc && v.type != DSC_JSON_NULL) {
        int bad = epoch_ms ? v.type != DSC_JSON_NUMBER ||
                                 dsc_time_epoch_ms(v.text, &out->expires)
                           : v.type != DSC_JSON_STRING ||
                                 dsc_time_iso8601(v.text, &out->expires);
        if (bad) {
            char t[64];
            rc = dsc_fail(DSC_ECREDS, "%s: %s '%s' is not a time", what, exp,
                          dsc_printable(v.text, t, sizeof t));
        }
    } else if (erc == DSC_ENOMEM) {
        rc = erc;
    }
    dsc_json_val_free(&v);
    if (rc)
        dsc_keys_free(out);
    return rc;
}

/* Temporary keys without an expiry would never be refreshed (botocore
 * refuses them too). */
static int need_expiry(dsc_keys *k, const char *what)
{
    if (k->expires)
        return 0;
    dsc_keys_free(k);
    return dsc_fail(DSC_ECREDS, "%s: the answer has no Expiration", what);
}

/* ---- STS ---------------------------------------------------------------- */

static const char *sts_action(const dsc_cred_source *s)
{
    return s->kind == CRED_ASSUME_ROLE ? "AssumeRole"
                                       : "AssumeRoleWithWebIdentity";
}

/* The <Error> of an STS answer as "Code: Message", else the status. */
static void sts_error(const dsc_http_resp *rs, char *out, size_t cap)
{
    static const char *const paths[] = { "Error/Code", "Error/Message" };
    char *v[2] = { NULL, NULL };
    const dsc_buf *b = &rs->err_body;
    if (b->len && !dsc_xml_leaves(b->data, b->len, paths, 2, v) && v[0]) {
        char c[100], m[400];
        snprintf(out, cap, "%s: %s", dsc_printable(v[0], c, sizeof c),
                 dsc_printable(v[1] ? v[1] : "", m, sizeof m));
    } else {
        snprintf(out, cap, "HTTP status %ld", rs->status);
    }
    free(v[0]);
    free(v[1]);
}

/* URL and headers of one STS request; AssumeRole is signed with base. */
static int sts_request(const dsc_cred_source *s, const char *web_token,
                       const dsc_keys *base, dsc_buf *url,
                       struct curl_slist **hdrs)
{
    dsc_kv q[6];
    size_t nq = 0;
    q[nq++] = (dsc_kv){ "Action", sts_action(s) };
    q[nq++] = (dsc_kv){ "Version", "2011-06-15" };
    q[nq++] = (dsc_kv){ "RoleArn", s->role_arn };
    q[nq++] = (dsc_kv){ "RoleSessionName", s->session_name };
    if (web_token)
        q[nq++] = (dsc_kv){ "WebIdentityToken", web_token };
    if (s->duration)
        q[nq++] = (dsc_kv){ "DurationSeconds", s->duration };
    if (s->external_id)
        q[nq++] = (dsc_kv){ "ExternalId", s->external_id };
    dsc_endpoint ep = { 0 };
    dsc_buf qs = { 0 }, host = { 0 }, auth = { 0 };
    int rc = dsc_endpoint_parse(s->url, &ep);
    if (rc) {
        dsc_errsave why;
        dsc_err_save(&why);
        rc = dsc_fail(DSC_ECREDS, "STS endpoint '%s': %s", s->url, why.msg);
    }
    if (!rc)
        rc = dsc_sigv4_query_string(q, nq, &qs);
    if (!rc) {
        int dflt = ep.https ? 443 : 80;
        dsc_buf_adds(&host, ep.host);
        if (ep.port && ep.port != dflt)
            dsc_buf_printf(&host, ":%d", ep.port);
        dsc_buf_printf(url, "%s://%s/?%s", ep.https ? "https" : "http",
                       host.data, qs.data);
        rc = dsc_buf_oom(&host) || dsc_buf_oom(url) ? DSC_ENOMEM : 0;
    }
    char date[17];
    dsc_amz_date((int64_t)time(NULL), date);
    dsc_kv sh[3];
    size_t nh = 0;
    sh[nh++] = (dsc_kv){ "host", host.data };
    if (base) {
        sh[nh++] = (dsc_kv){ "x-amz-date", date };
        if (base->session_token)
            sh[nh++] = (dsc_kv){ "x-amz-security-token", base->session_token };
    }
    rc = rc ? rc : header(hdrs, "Accept", NULL);
    for (size_t i = 0; i < nh && !rc; i++)
        rc = header(hdrs, sh[i].name, sh[i].value);
    if (!rc && base) {
        dsc_sigv4_input in = {
            .method = "GET", .path = "/", .query = q, .nquery = nq,
            .headers = sh, .nheaders = nh, .payload_hash = DSC_EMPTY_SHA256,
            .region = s->region, .service = "sts", .amz_date = date,
            .access_key = base->access_key, .secret_key = base->secret_key,
        };
        rc = dsc_sigv4_authorization(&in, &auth);
        rc = rc ? rc : header(hdrs, "Authorization", auth.data);
    }
    dsc_endpoint_free(&ep);
    dsc_buf_free(&qs);
    dsc_buf_free(&host);
    dsc_buf_free(&auth);
    return rc;
}

static int sts(const dsc_cred_source *s, dsc_keys *out)
{
    dsc_keys base = { 0 };
    char *token = NULL;
    dsc_buf url = { 0 }, body = { 0 };
    struct curl_slist *hdrs = NULL;
    dsc_http *h = NULL;
    dsc_http_resp rs = { 0 };
    static const char *const paths[] = {
        "Credentials/AccessKeyId", "Credentials/SecretAccessKey",
        "Credentials/SessionToken", "Credentials/Expiration",
    };
    char *v[4] = { NULL, NULL, NULL, NULL };
    int rc = 0;
    if (s->kind == CRED_ASSUME_ROLE) {
        rc = dsc_cred_fetch(s->base, 0, &base);
    } else if (!(token = read_token(s->token_file))) {
        /* Re-read every time: EKS rotates it. */
        rc = errno == ENOMEM ? DSC_ENOMEM
           : dsc_fail(DSC_ECREDS, "web identity token file %s: %s",
                      s->token_file, strerror(errno));
    }
    if (!rc)
        rc = sts_request(s, token, s->kind == CRED_ASSUME_ROLE ? &base : NULL,
                         &url, &hdrs);
    if (!rc)
        rc = http_for(s, &h);
    if (rc)
        goto done;
    if (call(h, "GET", url.data, hdrs, &body, &rs)) {
        rc = dsc_fail(DSC_ECREDS, "STS %s %s (%s): %s", sts_action(s),
                      s->role_arn, s->url, rs.curl_err);
    } else if (rs.status != 200) {
        char why[600];
        sts_error(&rs, why, sizeof why);
        rc = dsc_fail(DSC_ECREDS, "STS %s %s: %s", sts_action(s), s->role_arn,
                      why);
    } else if ((rc = dsc_xml_leaves(body.data ? body.data : "", body.len,
                                    paths, 4, v)) != 0 || !v[0] || !v[1]) {
        rc = rc == DSC_ENOMEM ? rc
           : dsc_fail(DSC_ECREDS, "STS %s %s: the answer has no Credentials",
                      sts_action(s), s->role_arn);
    } else if (v[3] && dsc_time_iso8601(v[3], &out->expires)) {
        rc = dsc_fail(DSC_ECREDS, "STS %s %s: Expiration '%s' is not a time",
                      sts_action(s), s->role_arn, v[3]);
    } else {
        out->access_key = v[0];
        out->secret_key = v[1];
        out->session_token = v[2];
        v[0] = v[1] = v[2] = NULL;
    }
done:
    for (int i = 0; i < 4; i++) {
        if (v[i])
            memset(v[i], 0, strlen(v[i]));
        free(v[i]);
    }
    if (token)
        memset(token, 0, strlen(token));
    free(token);
    dsc_keys_free(&base);
    curl_slist_free_all(hdrs);      /* holds the signature or nothing */
    wipe_buf(&url);                 /* holds the web identity token */
    wipe_buf(&body);
    dsc_http_resp_free(&rs);
    dsc_http_free(h);
    return rc;
}

/* ---- SSO portal --------------------------------------------------------- */

static int sso_token(const dsc_cred_source *s, char **token)
{
    char *exp = NULL;
    int rc = 0;
    char *text = read_token(s->sso_cache_file);
    size_t len = text ? strlen(text) : 0;
    if (!text) {
        rc = dsc_fail(DSC_ECREDS, "SSO token of profile '%s' not found (%s: "
                      "%s): run `aws sso login --profile %s`", s->profile,
                      s->sso_cache_file, strerror(errno), s->profile);
    } else if (dsc_json_string(text, len, "accessToken", token) ||
               dsc_json_string(text, len, "expiresAt", &exp)) {
        rc = dsc_fail(DSC_ECREDS, "SSO token cache %s has no accessToken and "
                      "expiresAt: run `aws sso login --profile %s`",
                      s->sso_cache_file, s->profile);
    } else {
        int64_t t;
        char e[64];
        if (dsc_time_iso8601(exp, &t) || t <= (int64_t)time(NULL))
            rc = dsc_fail(DSC_ECREDS, "SSO token of profile '%s' expired at "
                          "%s: run `aws sso login --profile %s`", s->profile,
                          dsc_printable(exp, e, sizeof e), s->profile);
    }
    if (text)
        memset(text, 0, len);
    free(text);
    free(exp);
    if (rc && *token) {
        memset(*token, 0, strlen(*token));
        free(*token);
        *token = NULL;
    }
    return rc;
}

static int sso(const dsc_cred_source *s, dsc_keys *out)
{
    char *token = NULL;
    dsc_buf url = { 0 }, qs = { 0 }, body = { 0 };
    struct curl_slist *hdrs = NULL;
    dsc_http *h = NULL;
    dsc_http_resp rs = { 0 };
    dsc_kv q[2] = { { "role_name", s->sso_role },
                    { "account_id", s->sso_account } };
    int rc = sso_token(s, &token);
    rc = rc ? rc : dsc_sigv4_query_string(q, 2, &qs);
    if (!rc) {
        size_t n = strlen(s->url);
        while (n && s->url[n - 1] == '/')
            n--;
        dsc_buf_printf(&url, "%.*s/federation/credentials?%s", (int)n, s->url,
                       qs.data);
        rc = dsc_buf_oom(&url) ? DSC_ENOMEM : 0;
    }
    rc = rc ? rc : header(&hdrs, "x-amz-sso_bearer_token", token);
    rc = rc ? rc : http_for(s, &h);
    if (rc)
        goto done;
    char what[400];
    snprintf(what, sizeof what, "SSO GetRoleCredentials for profile '%s' "
             "(account %s, role %s)", s->profile, s->sso_account, s->sso_role);
    if (call(h, "GET", url.data, hdrs, &body, &rs)) {
        rc = dsc_fail(DSC_ECREDS, "%s (%s): %s", what, s->url, rs.curl_err);
    } else if (rs.status != 200) {
        char m[300];
        error_text(&rs.err_body, m, sizeof m);
        rc = dsc_fail(DSC_ECREDS, "%s: HTTP status %ld: %s%s", what,
                      rs.status, m, rs.status == 401 || rs.status == 403
                      ? " (run `aws sso login`)" : "");
    } else {
        rc = dsc_cred_keys_from_json(body.data ? body.data : "", body.len,
                                     "roleCredentials.accessKeyId",
                                     "roleCredentials.secretAccessKey",
                                     "roleCredentials.sessionToken",
                                     "roleCredentials.expiration", 1, what,
                                     out);
    }
done:
    if (token)
        memset(token, 0, strlen(token));
    free(token);
    curl_slist_free_all(hdrs);
    dsc_buf_free(&url);
    dsc_buf_free(&qs);
    wipe_buf(&body);
    dsc_http_resp_free(&rs);
    dsc_http_free(h);
    return rc;
}

/* ---- Container ---------------------------------------------------------- */

/* botocore's rule for http: loopback, the ECS and EKS link-local hosts. */
static int container_host_ok(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;
    if (u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
        !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
        !curl_url_get(u, CURLUPART_HOST, &host, 0)) {
        unsigned char a[16], b[16];
        size_t n = strlen(host);
        char bare[64] = "";
        if (n >= 2 && host[0] == '[' && n - 2 < sizeof bare)
            memcpy(bare, host + 1, n - 2);
        if (strcmp(scheme, "https") == 0)
            ok = 1;
        else if (strcmp(scheme, "http") != 0)
            ok = 0;
        else if (strcmp(host, "localhost") == 0 ||
                 strcmp(host, "169.254.170.2") == 0 ||
                 strcmp(host, "169.254.170.23") == 0)
            ok = 1;
        else if (inet_pton(AF_INET, host, a) == 1)
            ok = a[0] == 127;
        else if (bare[0] && inet_pton(AF_INET6, bare, a) == 1)
            ok = (inet_pton(AF_INET6, "::1", b) == 1 && !memcmp(a, b, 16)) ||
                 (inet_pton(AF_INET6, "fd00:ec2::23", b) == 1 &&
                  !memcmp(a, b, 16));
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int container(const dsc_cred_source *s, dsc_keys *out)
{
    char *token = NULL;
    dsc_buf body = { 0 };
    struct curl_slist *hdrs = NULL;
    dsc_http *h = NULL;
    dsc_http_resp rs = { 0 };
    int rc = 0;
    if (!container_host_ok(s->url))
        return dsc_fail(DSC_ECREDS, "container credentials: '%s' is not "
                        "https, loopback, 169.254.170.2, 169.254.170.23 or "
                        "fd00:ec2::23", s->url);
    if (s->auth_token_file) {
        /* Re-read every time: EKS Pod Identity rotates it. */
        if (!(token = read_token(s->auth_token_file)))
            rc = dsc_fail(DSC_ECREDS, "container credentials: "
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                          s->auth_token_file, strerror(errno));
    } else if (s->auth_token && !(token = dsc_strdup(s->auth_token))) {
        rc = DSC_ENOMEM;
    }
    if (!rc && token && strpbrk(token, "\r\n"))
        rc = dsc_fail(DSC_ECREDS, "container credentials: the authorization "
                      "token holds a line break");
    rc = rc ? rc : header(&hdrs, "Accept", "application/json");
    if (!rc && token)
        rc = header(&hdrs, "Authorization", token);
    rc = rc ? rc : http_for(s, &h);
    for (int i = 0; !rc; i++) {
        int gone = call(h, "GET", s->url, hdrs, &body, &rs);
        if ((gone || rs.status >= 500) && i + 1 < s->attempts) {
            dsc_sleep_ms(100);
            continue;
        }
        if (gone) {
            rc = dsc_fail(DSC_ECREDS, "container credentials (%s): %s", s->url,
                          rs.curl_err);
        } else if (rs.status != 200) {
            char m[300];
            error_text(&rs.err_body, m, sizeof m);
            rc = dsc_fail(DSC_ECREDS, "container credentials (%s): HTTP "
                          "status %ld: %s", s->url, rs.status, m);
        } else {
            rc = dsc_cred_keys_from_json(body.data ? body.data : "", body.len,
                                         "AccessKeyId", "SecretAccessKey",
                                         "Token", "Expiration", 0,
                                         "container credentials", out);
            rc = rc ? rc : need_expiry(out, "container credentials");
        }
        break;
    }
    if (token)
        memset(token, 0, strlen(token));
    free(token);
    curl_slist_free_all(hdrs);
    wipe_buf(&body);
    dsc_http_resp_free(&rs);
    dsc_http_free(h);
    return rc;
}

/* ---- IMDSv2 ------------------------------------------------------------- */

typedef struct imds {
    const dsc_cred_source *s;
    dsc_http *h;
    char *token;            /* NULL: IMDSv1 (the token PUT was refused) */
    dsc_buf body;
    dsc_http_resp rs;
    int down;               /* no answer at all: not on EC2 */
} imds;

/* GET or PUT path with s->attempts tries; 0 with rs.status, or -1 with
 * im->down set when no answer came. */
static int imds_call(imds *im, const char *method, const char *path)
{
    dsc_buf url = { 0 };
    struct curl_slist *hdrs = NULL;
    dsc_buf_printf(&url, "%s%s", im->s->url, path);
    int rc = dsc_buf_oom(&url) ? DSC_ENOMEM : 0;
    if (!rc && strcmp(method, "PUT") == 0)
        rc = header(&hdrs, "X-aws-ec2-metadata-token-ttl-seconds",
                    IMDS_TOKEN_TTL);
    if (!rc && im->token)
        rc = header(&hdrs, "X-aws-ec2-metadata-token", im->token);
    for (int i = 0; !rc && i < im->s->attempts; i++) {
        im->down = call(im->h, method, url.data, hdrs, &im->body, &im->rs) != 0;
        if (!im->down && im->rs.status < 500)
            break;
    }
    if (!rc && im->down)
        rc = -1;
    curl_slist_free_all(hdrs);
    dsc_buf_free(&url);
    return rc;
}

static int imds_open(const dsc_cred_source *s, imds *im)
{
    memset(im, 0, sizeof *im);
    im->s = s;
    int rc = http_for(s, &im->h);
    if (rc)
        return rc;
    rc = imds_call(im, "PUT", "/latest/api/token");
    if (rc)
        return rc;
    if (im->rs.status == 200 && im->body.len) {
        im->token = dsc_strndup(im->body.data, strcspn(im->body.data, "\r\n"));
        return im->token ? 0 : DSC_ENOMEM;
    }
    /* 403/404/405: no IMDSv2 here, go on without a token (botocore). */
    if (im->rs.status == 403 || im->rs.status == 404 || im->rs.status == 405)
        return 0;
    return dsc_fail(DSC_ECREDS, "IMDS (%s): token request: HTTP status %ld",
                    s->url, im->rs.status);
}

static void imds_close(imds *im)
{
    if (im->token)
        memset(im->token, 0, strlen(im->token));
    free(im->token);
    wipe_buf(&im->body);
    dsc_http_resp_free(&im->rs);
    dsc_http_free(im->h);
}

static int imds_creds(const dsc_cred_source *s, int absent_ok, dsc_keys *out)
{
    imds im;
    char *role = NULL;
    dsc_buf path = { 0 };
    int rc = imds_open(s, &im);
    if (!rc && (rc = imds_call(&im, "GET",
                               "/latest/meta-data/iam/security-credentials/"))
                   == 0) {
        const char *b = im.body.data ? im.body.data : "";
        if (im.rs.status == 404 || (im.rs.status == 200 && !*b))
            rc = dsc_fail(DSC_ECREDS, "IMDS (%s): no IAM role attached to "
                          "this instance", s->url);
        else if (im.rs.status != 200)
            rc = dsc_fail(DSC_ECREDS, "IMDS (%s): role name: HTTP status %ld",
                          s->url, im.rs.status);
        else if (!(role = dsc_strndup(b, strcspn(b, "\r\n"))))
            rc = DSC_ENOMEM;
    }
    if (!rc) {
        dsc_buf_printf(&path, "/latest/meta-data/iam/security-credentials/%s",
                       role);
        rc = dsc_buf_oom(&path) ? DSC_ENOMEM : imds_call(&im, "GET", path.data);
    }
    if (!rc && im.rs.status != 200) {
        rc = dsc_fail(DSC_ECREDS, "IMDS (%s): role %s: HTTP status %ld",
                      s->url, role, im.rs.status);
    } else if (!rc) {
        char what[300];
        snprintf(what, sizeof what, "IMDS (%s) role %s", s->url, role);
        rc = dsc_cred_keys_from_json(im.body.data ? im.body.data : "",
                                     im.body.len, "AccessKeyId",
                                     "SecretAccessKey", "Token", "Expiration",
                                     0, what, out);
        rc = rc ? rc : need_expiry(out, what);
    }
    if (rc == -1)
        rc = dsc_fail(DSC_ECREDS, "IMDS (%s): %s", s->url, im.rs.curl_err);
    /* In the chain, an IMDS that fails is one that gave nothing (botocore
     * returns no credentials then); the summary keeps why. */
    if (rc == DSC_ECREDS && absent_ok) {
        dsc_errsave why;
        dsc_err_save(&why);
        rc = dsc_fail(DSC_ABSENT, "%s", why.msg);
    }
    imds_close(&im);
    free(role);
    dsc_buf_free(&path);
    return rc;
}

int dsc_imds_region(const dsc_cred_source *s, char **out, dsc_buf *why)
{
    imds im;
    *out = NULL;
    int rc = imds_open(s, &im);
    if (!rc)
        rc = imds_call(&im, "GET", "/latest/meta-data/placement/region");
    if (rc == -1)
        dsc_buf_printf(why, "IMDS (%s): %s", s->url, im.rs.curl_err);
    if (!rc && im.rs.status == 200 && im.body.len) {
        *out = dsc_strndup(im.body.data, strcspn(im.body.data, "\r\n \t"));
        rc = *out ? 0 : DSC_ENOMEM;
        if (*out && !dsc_region_ok(*out)) {
            free(*out);
            *out = NULL;
            rc = DSC_ABSENT;    /* not a region: the default applies */
        }
    } else if (rc != DSC_ENOMEM) {
        rc = DSC_ABSENT;    /* no region from IMDS: the default applies */
    }
    imds_close(&im);
    return rc;
}

int dsc_cred_fetch_http(const dsc_cred_source *s, int absent_ok,
                        dsc_keys *out)
{
    memset(out, 0, sizeof *out);
    switch (s->kind) {
    case CRED_ASSUME_ROLE:
    case CRED_WEB_IDENTITY:
        return sts(s, out);
    case CRED_SSO:
        return sso(s, out);
    case CRED_CONTAINER:
        return container(s, out);
    case CRED_IMDS:
        return imds_creds(s, absent_ok, out);
    default:
        return dsc_fail(DSC_ECREDS, "credential source %d unknown", s->kind);
    }
}
