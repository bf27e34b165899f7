/* S3 requests: sign, send, classify the answer, retry what is transient. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include "core/atomic.h"
#include "core/log.h"
#include "s3/call.h"
#include "s3/credbox.h"
#include "net/sigv4.h"

/* Buckets found in another region than the configured one. */
#define REGION_BUCKETS 64
#define REGION_LEN DSC_S3_REGION_LEN

typedef struct bucket_region {
    char bucket[64];
    char region[REGION_LEN];
} bucket_region;

struct dsc_s3 {
    dsc_http *http;
    dsc_endpoint ep;
    char *origin;                  /* dsc_s3_origin */
    int addressing;
    char *region;                  /* configured: signs, unless redirected */
    int aws_endpoint;              /* AWS's regional endpoint: a redirect
                                      moves the host too */
    dsc_credbox *box;              /* signing keys, refreshed */
    int max_retries;
    long retry_base_ms, retry_max_ms;
    long request_timeout_ms;
    long op_timeout_ms;            /* all attempts of one operation */
    dsc_s3_version_fn version_of;  /* set once, before any request */
    void *version_arg;
    dsc_s3_counters n;   /* counters (core/atomic.h), any thread */
    /* What dsc_s3_counters_take last reported; guarded by taken_mu (a
     * leaf lock), so two flushes never report the same requests. */
    pthread_mutex_t taken_mu;
    dsc_s3_counters taken;

    /* guarded by regions_mu */
    pthread_mutex_t regions_mu;
    bucket_region regions[REGION_BUCKETS];
    size_t nregions;
};

void dsc_s3_set_version_pin(dsc_s3 *s3, dsc_s3_version_fn fn, void *arg)
{
    s3->version_of = fn;
    s3->version_arg = arg;
}

static void count(uint64_t *c, uint64_t v)
{
    dsc_counter_add(c, v);
}

int dsc_origin_make(const dsc_endpoint *ep, int addressing, dsc_buf *out)
{
    static const char *const modes[] = { "auto", "path", "virtual" };
    int port = ep->port ? ep->port : ep->https ? 443 : 80;
    const char *mode = addressing >= DSC_ADDRESSING_AUTO &&
                       addressing <= DSC_ADDRESSING_VHOST
                           ? modes[addressing - DSC_ADDRESSING_AUTO] : "?";
    dsc_buf_printf(out, "%s://%s:%d/%s", ep->https ? "https" : "http",
                   ep->host, port, mode);
    return dsc_buf_oom(out) ? DSC_ENOMEM : 0;
}

const char *dsc_s3_origin(const dsc_s3 *s3)
{
    return s3->origin;
}

int dsc_s3_signer(dsc_s3 *s3, char *ak, size_t cap, int64_t *expires)
{
    dsc_keyset *ks = dsc_credbox_hold(s3->box);
    if (!ks)
        return DSC_ECREDS;
    snprintf(ak, cap, "%s", ks->k.access_key ? ks->k.access_key : "");
    *expires = ks->k.expires;
    dsc_keyset_put(ks);
    return 0;
}

void dsc_s3_inherit_keys(dsc_s3 *s3, const dsc_s3 *parent)
{
    if (parent)
        dsc_credbox_inherit(s3->box, parent->box);
}

const char *dsc_s3_region(const dsc_s3 *s3)
{
    return s3->region;
}

void dsc_s3_counters_get(dsc_s3 *s3, dsc_s3_counters *out)
{
    out->requests = dsc_counter_get(&s3->n.requests);
    out->gets = dsc_counter_get(&s3->n.gets);
    out->heads = dsc_counter_get(&s3->n.heads);
    out->lists = dsc_counter_get(&s3->n.lists);
    out->retries = dsc_counter_get(&s3->n.retries);
    out->bytes = dsc_counter_get(&s3->n.bytes);
    out->get_bytes = dsc_counter_get(&s3->n.get_bytes);
}

void dsc_s3_counters_take(dsc_s3 *s3, dsc_s3_counters *out)
{
    pthread_mutex_lock(&s3->taken_mu);
    dsc_s3_counters now, *t = &s3->taken;
    dsc_s3_counters_get(s3, &now);
    out->requests = now.requests - t->requests;
    out->gets = now.gets - t->gets;
    out->heads = now.heads - t->heads;
    out->lists = now.lists - t->lists;
    out->retries = now.retries - t->retries;
    out->bytes = now.bytes - t->bytes;
    out->get_bytes = now.get_bytes - t->get_bytes;
    *t = now;
    pthread_mutex_unlock(&s3->taken_mu);
}

int dsc_s3_new(const dsc_config *cfg, const dsc_creds *creds, dsc_s3 **out)
{
    dsc_s3 *s3 = calloc(1, sizeof *s3);
    if (!s3)
        return DSC_ENOMEM;
    pthread_mutex_init(&s3->regions_mu, NULL);
    pthread_mutex_init(&s3->taken_mu, NULL);
    int rc;
    if (creds->endpoint) {
        rc = dsc_endpoint_parse(creds->endpoint, &s3->ep);
    } else {
        dsc_buf e = { 0 };
        rc = dsc_buf_printf(&e, "https://s3.%s.amazonaws.com", creds->region);
        if (!rc)
            rc = dsc_endpoint_parse(e.data, &s3->ep);
        dsc_buf_free(&e);
        s3->aws_endpoint = 1;
    }
    if (rc)
        goto fail;
    /* The profile's s3 addressing_style applies unless the config chose. */
    s3->addressing = cfg->addressing == DSC_ADDRESSING_AUTO &&
                     creds->addressing >= 0 ? creds->addressing
                                            : cfg->addressing;
    dsc_buf o = { 0 };
    rc = dsc_origin_make(&s3->ep, s3->addressing, &o);
    s3->origin = o.data;
    if (rc)
        goto fail;
    s3->max_retries = cfg->max_retries;
    s3->retry_base_ms = cfg->retry_base_ms;
    s3->retry_max_ms = cfg->retry_max_ms;
    s3->request_timeout_ms = cfg->request_timeout_ms;
    /* Without a deadline an endpoint that never answers costs every
     * attempt's full timeout (6 x 30 s); three of them tell enough. */
    s3->op_timeout_ms = cfg->op_timeout_ms > 0 ? cfg->op_timeout_ms
                                               : 3 * cfg->request_timeout_ms;
    s3->region = dsc_strdup(creds->region);
    rc = s3->region ? dsc_credbox_new(creds, &s3->box) : DSC_ENOMEM;
    if (rc)
        goto fail;
    dsc_http_opts ho = {
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .request_timeout_ms = cfg->request_timeout_ms,
        .max_connections = cfg->max_connections,
        .verify_tls = cfg->verify_tls,
        .ca_file = cfg->ca_file,
    };
    rc = dsc_http_new(&ho, &s3->http);
    if (rc)
        goto fail;
    *out = s3;
    return 0;
fail:
    dsc_s3_free(s3);
    return rc;
}

void dsc_s3_free(dsc_s3 *s3)
{
    if (!s3)
        return;
    dsc_http_free(s3->http);
    dsc_endpoint_free(&s3->ep);
    free(s3->origin);
    free(s3->region);
    dsc_credbox_free(s3->box);
    pthread_mutex_destroy(&s3->regions_mu);
    pthread_mutex_destroy(&s3->taken_mu);
    free(s3);
}

static int add_header(struct curl_slist **h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_header(struct curl_slist **h, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return DSC_EINVAL;
    struct curl_slist *t = curl_slist_append(*h, line);
    if (!t)
        return DSC_ENOMEM;
    *h = t;
    return 0;
}

/* The region bucket lives in, when a redirect taught us one unlike the
 * configured region: 1 with it in out[REGION_LEN], else 0. */
static int bucket_region_of(dsc_s3 *s3, const char *bucket, char *out)
{
    int found = 0;
    pthread_mutex_lock(&s3->regions_mu);
    for (size_t i = 0; i < s3->nregions && !found; i++)
        if (strcmp(s3->regions[i].bucket, bucket) == 0) {
            memcpy(out, s3->regions[i].region, REGION_LEN);
            found = 1;
        }
    pthread_mutex_unlock(&s3->regions_mu);
    return found;
}

static void remember_region(dsc_s3 *s3, const char *bucket, const char *region)
{
    if (strlen(bucket) >= sizeof s3->regions[0].bucket)
        return;
    pthread_mutex_lock(&s3->regions_mu);
    size_t i = 0;
    while (i < s3->nregions && strcmp(s3->regions[i].bucket, bucket))
        i++;
    if (i == s3->nregions) {
        /* Full: the oldest makes room (one more redirect if it returns). */
        if (i == REGION_BUCKETS) {
            memmove(s3->regions, s3->regions + 1,
                    (REGION_BUCKETS - 1) * sizeof s3->regions[0]);
            i--;
        } else {
            s3->nregions++;
        }
        snprintf(s3->regions[i].bucket, sizeof s3->regions[i].bucket, "%s",
                 bucket);
    }
    snprintf(s3->regions[i].region, REGION_LEN, "%s", region);
    pthread_mutex_unlock(&s3->regions_mu);
}

/* Build URL and signed headers for one attempt (fresh date each time). */
static int prepare(dsc_s3 *s3, const s3_op *op, dsc_buf *url,
                   struct curl_slist **hdrs, signed_as *as)
{
    dsc_target t = { 0 };
    dsc_endpoint moved = { 0 };
    const dsc_endpoint *ep = &s3->ep;
    dsc_buf qs = { 0 }, auth = { 0 };
    dsc_keyset *ks = NULL;
    int rc = 0;
    if (!bucket_region_of(s3, op->bucket, as->region)) {
        snprintf(as->region, REGION_LEN, "%s", s3->region);
    } else if (s3->aws_endpoint) {
        dsc_buf e = { 0 };
        rc = dsc_buf_printf(&e, "https://s3.%s.amazonaws.com", as->region);
        rc = rc ? rc : dsc_endpoint_parse(e.data, &moved);
        dsc_buf_free(&e);
        ep = &moved;
    }
    if (rc)
        goto done;
    ks = dsc_credbox_hold(s3->box);
    if (!ks) {
        rc = DSC_ECREDS;
        goto done;
    }
    as->gen = ks->gen;
    as->temporary = ks->k.session_token != NULL;
    rc = dsc_target_build(&t, ep, s3->addressing, op->bucket, op->key);
    if (rc)
        goto done;
    rc = dsc_buf_adds(url, t.url.data);
    if (!rc && op->nquery) {
        rc = dsc_sigv4_query_string(op->query, op->nquery, &qs);
        if (!rc)
            rc = dsc_buf_printf(url, "?%s", qs.data);
    }
    char date[17];
    dsc_amz_date((int64_t)time(NULL), date);
    dsc_kv sh[6];
    size_t nh = 0;
    sh[nh++] = (dsc_kv){ "host", t.host.data };
    sh[nh++] = (dsc_kv){ "x-amz-content-sha256", DSC_EMPTY_SHA256 };
    sh[nh++] = (dsc_kv){ "x-amz-date", date };
    if (op->range)
        sh[nh++] = (dsc_kv){ "range", op->range };
    if (op->if_match && !dsc_etag_ok(op->if_match, strlen(op->if_match))) {
        char q[100];
        rc = dsc_fail(DSC_EPROTO, "%s s3://%s/%s: ETag '%s' is not an entity "
                      "tag; refusing to pin the read to it", op->method,
                      op->bucket, op->key,
                      dsc_printable(op->if_match, q, sizeof q));
    }
    if (op->if_match)
        sh[nh++] = (dsc_kv){ "if-match", op->if_match };
    if (ks->k.session_token)
        sh[nh++] = (dsc_kv){ "x-amz-security-token", ks->k.session_token };
    /* Accept is curl's default header; S3 does not need it. */
    rc = rc ? rc : add_header(hdrs, "Accept:");
    for (size_t i = 0; i < nh && !rc; i++)
        rc = add_header(hdrs, "%s: %s", sh[i].name, sh[i].value);
    if (!rc && ks->k.access_key) {
        dsc_sigv4_input in = {
            .method = op->method, .path = t.path.data,
            .query = op->query, .nquery = op->nquery,
            .headers = sh, .nheaders = nh,
            .payload_hash = DSC_EMPTY_SHA256,
            .region = as->region, .service = "s3", .amz_date = date,
            .access_key = ks->k.access_key,
            .secret_key = ks->k.secret_key,
        };
        rc = dsc_sigv4_authorization(&in, &auth);
        if (!rc)
            rc = add_header(hdrs, "Authorization: %s", auth.data);
    }
done:
    dsc_keyset_put(ks);
    dsc_buf_free(&qs);
    dsc_buf_free(&auth);
    dsc_target_free(&t);
    dsc_endpoint_free(&moved);
    return rc;
}

/* Full-jitter exponential backoff: spreads retrying clients apart. The
 * sleep, at most left_ms, is returned for the log. */
static long backoff_ms(const dsc_s3 *s3, int attempt, int slow_down,
                       long left_ms)
{
    long base = s3->retry_base_ms * (slow_down ? 4 : 1);
    long cap = s3->retry_max_ms;
    long ceiling = base;
    for (int i = 0; i < attempt && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;
    long ms = ceiling > 0 ? (long)dsc_rand_below((uint64_t)ceiling + 1) : 0;
    return ms < left_ms ? ms : left_ms;
}

/* The last attempt's detail with what the whole operation tried: users
 * must see that it was retried and for how long, not only the last
 * attempt's timeout. */
static void tell_attempts(const dsc_s3 *s3, const s3_op *op, const char *url,
                          const dsc_http_resp *rs, int rc, int attempts,
                          long spent_ms, int deadline)
{
    if (attempts < 2 && !deadline)
        return;
    char why[64] = "";
    if (deadline)
        snprintf(why, sizeof why, ", the operation's deadline (%.1f s)",
                 (double)s3->op_timeout_ms / 1000);
    if (rc == DSC_ETIMEDOUT || (rc == DSC_ENET && !rs->status)) {
        dsc_fail(rc, "%s %s: no answer after %d attempt%s in %.1f s (request "
                 "timeout %.1f s%s): %s", op->verb, url, attempts,
                 attempts == 1 ? "" : "s", (double)spent_ms / 1000,
                 (double)s3->request_timeout_ms / 1000, why, rs->curl_err);
        return;
    }
    char last[512];
    snprintf(last, sizeof last, "%s", dsc_errmsg());
    dsc_fail(rc, "%s (after %d attempts in %.1f s%s)", last, attempts,
             (double)spent_ms / 1000, why);
}

/* What an error answer asks of us before it is an error: another region
 * for the bucket (301 PermanentRedirect, 400 AuthorizationHeaderMalformed,
 * x-amz-bucket-region), or new keys (ExpiredToken). */
typedef struct hint {
    char region[REGION_LEN];       /* "" when none */
    int expired;
} hint;

static hint read_hint(const dsc_http_resp *rs, const char *op_method,
                      const signed_as *as)
{
    hint h = { "", 0 };
    long st = rs->status;
    if (st != 301 && st != 307 && st != 400 && st != 403)
        return h;
    static const char *const paths[] = { "Error/Code", "Error/Region" };
    char *leaf[2] = { NULL, NULL };
    if (rs->err_body.len)
        dsc_xml_leaves(rs->err_body.data, rs->err_body.len, paths, 2, leaf);
    const char *region = rs->captured[0][0] ? rs->captured[0] : leaf[1];
    if (region && dsc_region_ok(region) &&
        (st != 403 || rs->captured[0][0]))
        memcpy(h.region, region, strlen(region) + 1);   /* <= 31 bytes */
    const char *code = leaf[0];
    /* A HEAD's answer has no body to say why: a bare 400 to temporary
     * keys is how S3 says they expired (credbox paces the renewals). */
    h.expired = code ? strcmp(code, "ExpiredToken") == 0 ||
                       strcmp(code, "TokenRefreshRequired") == 0
                     : st == 400 && as->temporary &&
                       strcmp(op_method, "HEAD") == 0;
    free(leaf[0]);
    free(leaf[1]);
    return h;
}

dsc_http *dsc_s3_http(dsc_s3 *s3)
{
    return s3->http;
}

void dsc_s3_count_get(dsc_s3 *s3)
{
    count(&s3->n.gets, 1);
}

int dsc_s3_call_start(dsc_s3_call *k, dsc_s3 *s3, const s3_op *op,
                      uint64_t obj_size, dsc_http_resp *rs)
{
    memset(k, 0, sizeof *k);
    k->s3 = s3;
    k->op = op;
    k->obj_size = obj_size;
    k->rs = rs;
    k->t0 = dsc_now_ms();
    if (dsc_buf_printf(&k->msg_url, "s3://%s/%s", op->bucket, op->key) ||
        (op->version_id &&
         dsc_buf_printf(&k->msg_url, " (version %s)", op->version_id))) {
        dsc_buf_free(&k->msg_url);
        return DSC_ENOMEM;
    }
    return 0;
}

static void attempt_free(dsc_s3_call *k)
{
    curl_slist_free_all(k->hdrs);
    k->hdrs = NULL;
    dsc_buf_free(&k->url);
}

int dsc_s3_call_prepare(dsc_s3_call *k)
{
    static const char *const capture[] = { "x-amz-bucket-region", NULL };
    const s3_op *op = k->op;
    long left = k->s3->op_timeout_ms - (long)(dsc_now_ms() - k->t0);
    int rc = prepare(k->s3, op, &k->url, &k->hdrs, &k->as);
    if (rc) {
        attempt_free(k);
        return rc;
    }
    if (op->body)
        dsc_buf_reset(op->body);
    k->rq = (dsc_http_req){
        .method = op->method, .url = k->url.data, .headers = k->hdrs,
        .buf = op->buf, .sink = op->sink, .cap = op->len,
        .body = op->body, .body_max = op->body_max,
        .fresh_connect = k->fresh, .capture = capture,
        .timeout_ms = left > 0 ? left : 1,
    };
    count(&k->s3->n.requests, 1);
    k->attempts++;
    return 0;
}

int dsc_s3_call_after(dsc_s3_call *k, int answered, int *rc, long *pause_ms)
{
    dsc_s3 *s3 = k->s3;
    const s3_op *op = k->op;
    dsc_http_resp *rs = k->rs;
    attempt_free(k);
    *pause_ms = 0;
    count(&s3->n.bytes, rs->received);
    if (dsc_s3_op_is_get(op))
        count(&s3->n.get_bytes, rs->received);
    /* Once each per request, and not counted as retries: the bucket
     * is elsewhere, or the keys ran out under us. */
    hint h = answered ? read_hint(rs, op->method, &k->as) : (hint){ "", 0 };
    if (!k->moved && h.region[0] && strcmp(h.region, k->as.region)) {
        dsc_log(DSC_LOG_INFO, "bucket %s is in %s, not %s: asking there",
                op->bucket, h.region, k->as.region);
        remember_region(s3, op->bucket, h.region);
        k->moved = 1;
        return DSC_S3_CALL_AGAIN;
    }
    if (!k->renewed && h.expired &&
        dsc_credbox_expired(s3->box, k->as.gen) == 0) {
        k->renewed = 1;
        return DSC_S3_CALL_AGAIN;
    }
    s3_outcome o = answered
        ? dsc_s3_classify(op, rs, k->msg_url.data, k->obj_size)
        : dsc_s3_classify_curl(op, rs, k->msg_url.data);
    *rc = o.code;
    if (o.slow_down || o.code == DSC_ETIMEDOUT || o.code == DSC_ENET)
        k->slowed = 1;
    if (!o.code || !o.retry || k->attempt >= s3->max_retries)
        return DSC_S3_CALL_DONE;
    long left = s3->op_timeout_ms - (long)(dsc_now_ms() - k->t0);
    if (left <= 0) {
        k->deadline = 1;
        return DSC_S3_CALL_DONE;
    }
    *pause_ms = backoff_ms(s3, k->attempt, o.slow_down, left);
    dsc_log(DSC_LOG_INFO, "%s; retrying (attempt %d of %d) in %ld ms",
            dsc_errmsg(), k->attempt + 2, s3->max_retries + 1, *pause_ms);
    k->fresh = o.fresh;
    k->attempt++;
    count(&s3->n.retries, 1);
    return DSC_S3_CALL_AGAIN;
}

int dsc_s3_call_end(dsc_s3_call *k, int rc)
{
    if (rc)
        tell_attempts(k->s3, k->op, k->msg_url.data, k->rs, rc, k->attempts,
                      (long)(dsc_now_ms() - k->t0), k->deadline);
    attempt_free(k);
    dsc_buf_free(&k->msg_url);
    return rc;
}

/* An operation, blocking: attempts with pauses in this thread. */
static int run(dsc_s3 *s3, const s3_op *op, uint64_t obj_size,
               dsc_http_resp *rs)
{
    dsc_s3_call k;
    int rc = dsc_s3_call_start(&k, s3, op, obj_size, rs);
    if (rc)
        return rc;
    for (;;) {
        rc = dsc_s3_call_prepare(&k);
        if (rc)
            break;
        int answered = dsc_http_perform(s3->http, &k.rq, rs) == 0;
        long pause;
        if (dsc_s3_call_after(&k, answered, &rc, &pause) == DSC_S3_CALL_DONE)
            break;
        if (pause > 0)
            dsc_sleep_ms(pause);
    }
    return dsc_s3_call_end(&k, rc);
}

int dsc_s3_head(dsc_s3 *s3, const char *bucket, const char *key,
                uint64_t *size, char **etag)
{
    s3_op op = { .verb = "HEAD", .method = "HEAD", .bucket = bucket,
                 .key = key };
    dsc_http_resp rs = { 0 };
    count(&s3->n.heads, 1);
    int rc = run(s3, &op, 0, &rs);
    if (!rc) {
        if (rs.content_length < 0 || !dsc_etag_ok(rs.etag, strlen(rs.etag))) {
            rc = dsc_fail(DSC_EPROTO, "HEAD s3://%s/%s: answer without "
                          "Content-Length or a valid ETag", bucket, key);
        } else {
            *size = (uint64_t)rs.content_length;
            *etag = dsc_strdup(rs.etag);
            if (!*etag)
                rc = DSC_ENOMEM;
        }
    }
    dsc_http_resp_free(&rs);
    return rc;
}

/* The ranged GET itself, into buf or to sink, blocking. */
static int get_range(dsc_s3 *s3, const char *bucket, const char *key,
                     const char *etag, uint64_t obj_size, uint64_t off,
                     size_t len, void *buf, const dsc_http_sink *sink)
{
    char range[64], vid[DSC_VERSION_ID_MAX + 1];
    dsc_kv q;
    s3_op op;
    dsc_s3_get_op(s3, bucket, key, etag, off, len, buf, sink, &op, range, vid, &q);
    dsc_http_resp rs = { 0 };
    count(&s3->n.gets, 1);
    int rc = run(s3, &op, obj_size, &rs);
    dsc_http_resp_free(&rs);
    return rc;
}

int dsc_s3_get(dsc_s3 *s3, const char *bucket, const char *key,
               const char *etag, uint64_t obj_size, uint64_t off, size_t len,
               void *buf)
{
    if (len == 0)
        return 0;
    if (off + len > obj_size || off + len < off)
        return dsc_fail(DSC_EINVAL, "GET s3://%s/%s: range past the end",
                        bucket, key);
    if (off == 0 && len == 1 && obj_size > 1) {
        /* Some S3-compatible servers (s3rver) read "bytes=0-0" as an open
         * range and send everything; two bytes cost the same as one. */
        unsigned char two[2];
        int rc = dsc_s3_get(s3, bucket, key, etag, obj_size, 0, 2, two);
        if (!rc)
            memcpy(buf, two, 1);
        return rc;
    }
    return get_range(s3, bucket, key, etag, obj_size, off, len, buf, NULL);
}

int dsc_s3_get_sink(dsc_s3 *s3, const char *bucket, const char *key,
                    const char *etag, uint64_t obj_size, uint64_t off,
                    size_t len, const dsc_http_sink *sink)
{
    /* The quirks dsc_s3_get works around stay on its path. */
    if (len < 2 || off + len > obj_size || off + len < off)
        return dsc_fail(DSC_EINVAL, "GET s3://%s/%s: not for a sink", bucket, key);
    return get_range(s3, bucket, key, etag, obj_size, off, len, NULL, sink);
}

void dsc_s3_get_op(dsc_s3 *s3, const char *bucket, const char *key,
                   const char *etag, uint64_t off, size_t len, void *buf,
                   const dsc_http_sink *sink, s3_op *op, char *range,
                   char *vid, dsc_kv *q)
{
    snprintf(range, 64, "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
    /* A version id of exactly this ETag reads that version even after
     * the key is overwritten or deleted (a snapshot of a versioned
     * bucket); If-Match stays, so its bytes are checked as before. */
    *q = (dsc_kv){ "versionId", vid };
    int pinned = etag && s3->version_of &&
                 s3->version_of(s3->version_arg, bucket, key, etag, vid) == 0;
    *op = (s3_op){ .verb = "GET", .method = "GET", .bucket = bucket,
                   .key = key, .range = range, .if_match = etag,
                   .buf = sink ? NULL : buf, .sink = sink, .len = len,
                   .query = pinned ? q : NULL, .nquery = pinned ? 1 : 0,
                   .version_id = pinned ? vid : NULL };
}

void dsc_s3_first_op(const char *bucket, const char *key, size_t max_len,
                     void *buf, s3_op *op, char *range)
{
    snprintf(range, 64, "bytes=0-%zu", max_len - 1);
    *op = (s3_op){ .verb = "GET", .method = "GET", .bucket = bucket,
                   .key = key, .range = range, .buf = buf, .len = max_len,
                   .first_part = 1 };
}

int dsc_s3_first_result(int rc, const dsc_http_resp *rs, uint64_t *obj_size,
                        char **etag, size_t *got)
{
    if (!rc) {
        uint64_t a, b, t;
        if (rs->status == 206 &&
            sscanf(rs->content_range, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64,
                   &a, &b, &t) == 3)
            *obj_size = t;
        else
            *obj_size = rs->received;
        *got = rs->received;
        *etag = dsc_strdup(rs->etag);
        if (!*etag)
            rc = DSC_ENOMEM;
    } else if (rs->status == 416) {
        rc = DSC_EMPTY_RANGE;   /* an empty object: ask with HEAD */
    }
    return rc;
}

int dsc_s3_get_first(dsc_s3 *s3, const char *bucket, const char *key,
                     size_t max_len, void *buf, uint64_t *obj_size,
                     char **etag, size_t *got)
{
    char range[64];
    s3_op op;
    dsc_s3_first_op(bucket, key, max_len, buf, &op, range);
    dsc_http_resp rs = { 0 };
    count(&s3->n.gets, 1);
    int rc = dsc_s3_first_result(run(s3, &op, 0, &rs), &rs, obj_size, etag,
                                 got);
    dsc_http_resp_free(&rs);
    return rc;
}

int dsc_s3_bucket_get(dsc_s3 *s3, const char *verb, int is_list,
                      const char *bucket, const dsc_kv *query, size_t nquery,
                      dsc_buf *body)
{
    s3_op op = { .verb = verb, .method = "GET", .bucket = bucket, .key = "",
                 .query = query, .nquery = nquery, .body = body,
                 .body_max = 32u << 20 };
    dsc_http_resp rs = { 0 };
    if (is_list)
        count(&s3->n.lists, 1);
    int rc = run(s3, &op, 0, &rs);
    dsc_http_resp_free(&rs);
    return rc;
}

typedef struct list_state {
    dsc_s3xml_obj_cb cb;
    void *arg;
    int stopped;
} list_state;

static int list_cb(void *arg, const char *key, uint64_t size,
                   const char *etag, const char *lm)
{
    list_state *ls = arg;
    int rc = ls->cb ? ls->cb(ls->arg, key, size, etag, lm) : 0;
    if (rc)
        ls->stopped = 1;
    return rc;
}

int64_t dsc_s3_list(dsc_s3 *s3, const char *bucket, const char *prefix,
                    dsc_s3xml_obj_cb cb, void *arg)
{
    list_state ls = { cb, arg, 0 };
    char *token = NULL;
    int64_t total = 0;
    int rc = 0;
    dsc_buf body = { 0 };
    for (;;) {
        dsc_kv q[3];
        size_t nq = 0;
        q[nq++] = (dsc_kv){ "list-type", "2" };
        q[nq++] = (dsc_kv){ "prefix", prefix };
        if (token)
            q[nq++] = (dsc_kv){ "continuation-token", token };
        rc = dsc_s3_bucket_get(s3, "LIST", 1, bucket, q, nq, &body);
        if (rc)
            break;
        dsc_s3_list_page page;
        rc = dsc_s3xml_parse_list(body.data ? body.data : "", body.len,
                                  list_cb, &ls, &page);
        if (rc) {
            if (ls.stopped)
                rc = dsc_fail(DSC_ECANCELED, "listing stopped by callback");
            else if (rc == DSC_EPROTO) {
                char why[512];
                snprintf(why, sizeof why, "%s", dsc_errmsg());
                dsc_fail(DSC_EPROTO, "LIST s3://%s/%s: %s", bucket, prefix,
                         why);
            }
            break;
        }
        total += page.count;
        free(token);
        token = page.next_token;
        page.next_token = NULL;
        if (!page.truncated)
            break;
        if (!token || !*token) {
            rc = dsc_fail(DSC_EPROTO, "LIST s3://%s/%s: truncated page without "
                          "NextContinuationToken", bucket, prefix);
            break;
        }
    }
    free(token);
    dsc_buf_free(&body);
    return rc ? rc : total;
}
