/* libcurl easy handles in a pool, sharing one connection cache, DNS cache
 * and TLS session cache, so any thread's request reuses any warm
 * connection instead of paying TCP (and TLS) setup per chunk. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "net/http.h"

#define ERR_BODY_MAX (64 * 1024)

struct dsc_http {
    dsc_http_opts o;
    char *ca_file;
    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL **idle;
    int nidle, cap;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
    (void)c;
    (void)a;
    dsc_http *h = u;
    pthread_mutex_lock(&h->share_lock[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *u)
{
    (void)c;
    dsc_http *h = u;
    pthread_mutex_unlock(&h->share_lock[d]);
}

int dsc_http_new(const dsc_http_opts *o, dsc_http **out)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return dsc_fail(DSC_ENOMEM, "curl_global_init failed: %s",
                        curl_easy_strerror(global_rc));
    dsc_http *h = calloc(1, sizeof *h);
    if (!h)
        return DSC_ENOMEM;
    h->o = *o;
    h->ca_file = dsc_strdup(o->ca_file);
    h->o.ca_file = NULL;
    h->cap = o->max_connections > 0 ? o->max_connections : 64;
    h->idle = calloc((size_t)h->cap, sizeof *h->idle);
    h->share = curl_share_init();
    if (!h->idle || !h->share || (o->ca_file && !h->ca_file)) {
        dsc_http_free(h);
        return DSC_ENOMEM;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_lock[i], NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    *out = h;
    return 0;
}

void dsc_http_free(dsc_http *h)
{
    if (!h)
        return;
    /* Easy handles go before the share they use. */
    for (int i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    if (h->share) {
        curl_share_cleanup(h->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&h->share_lock[i]);
        pthread_mutex_destroy(&h->pool_lock);
    }
    free(h->idle);
    free(h->ca_file);
    free(h);
}

static CURL *acquire(dsc_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->nidle > 0)
        c = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->pool_lock);
    if (c)
        return c;
    c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_SHARE, h->share);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The path goes out byte for byte as signed: in S3 "a/../b" is a key
     * of its own, and squashing dot segments would read another object
     * (or bucket) and break the signature. */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_MAXCONNECTS, (long)h->cap);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "libdsc/" DSC_VERSION_STRING);
    /* The origin may be HTTP/1.1-only; we want many parallel connections,
     * not streams multiplexed on one. */
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    return c;
}

static void release(dsc_http *h, CURL *c)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->nidle < h->cap) {
        h->idle[h->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (c)
        curl_easy_cleanup(c);
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    dsc_http_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (after 100-continue or a redirect): forget the
         * previous one's headers. */
        x->rs->etag[0] = x->rs->content_range[0] = x->rs->request_id[0] = 0;
        for (size_t i = 0; i < DSC_HTTP_CAPTURE; i++)
            x->rs->captured[i][0] = 0;
        x->rs->content_length = -1;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    if (nlen == 4 && strncasecmp(p, "ETag", 4) == 0) {
        copy_header_value(x->rs->etag, sizeof x->rs->etag, v, vlen);
    } else if (nlen == 13 && strncasecmp(p, "Content-Range", 13) == 0) {
        copy_header_value(x->rs->content_range, sizeof x->rs->content_range,
                          v, vlen);
    } else if (nlen == 16 && strncasecmp(p, "x-amz-request-id", 16) == 0) {
        copy_header_value(x->rs->request_id, sizeof x->rs->request_id, v, vlen);
    } else if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        char num[32];
        copy_header_value(num, sizeof num, v, vlen);
        char *end;
        long long cl = strtoll(num, &end, 10);
        x->rs->content_length = (*num && !*end && cl >= 0) ? cl : -1;
    } else if (x->rq->capture) {
        for (size_t i = 0; i < DSC_HTTP_CAPTURE && x->rq->capture[i]; i++) {
            const char *want = x->rq->capture[i];
            if (strlen(want) == nlen && strncasecmp(p, want, nlen) == 0) {
                copy_header_value(x->rs->captured[i], sizeof x->rs->captured[i],
                                  v, vlen);
                break;
            }
        }
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    dsc_http_xfer *x = ud;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        size_t room = ERR_BODY_MAX - x->rs->err_body.len;
        if (dsc_buf_add(&x->rs->err_body, p, len < room ? len : room))
            return 0;
        return len;
    }
    if (x->rq->buf) {
        if (len > x->rq->cap - x->rs->received) {
            x->rs->overflow = 1;
            return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        memcpy((char *)x->rq->buf + x->rs->received, p, len);
    } else if (x->rq->sink) {
        if (len > x->rq->cap - x->rs->received) {
            x->rs->overflow = 1;
            return 0;
        }
        const dsc_http_sink *k = x->rq->sink;
        if (k->write(k->arg, p, len, x->rs->received) < 0) {
            x->rs->sink_failed = 1;
            return 0;
        }
    } else if (x->rq->body) {
        if (x->rs->received + len > x->rq->body_max) {
            x->rs->overflow = 1;
            return 0;
        }
        if (dsc_buf_add(x->rq->body, p, len))
            return 0;
    }
    x->rs->received += len;
    return len;
}

static size_t no_body(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)size;
    (void)n;
    (void)ud;
    return 0;
}

int dsc_http_begin(dsc_http *h, const dsc_http_req *rq, dsc_http_resp *rs,
                   dsc_http_xfer *x)
{
    dsc_buf_free(&rs->err_body);
    memset(rs, 0, sizeof *rs);
    rs->content_length = -1;
    CURL *c = acquire(h);
    if (!c)
        return dsc_fail(DSC_ENOMEM, "curl_easy_init failed");
    *x = (dsc_http_xfer){ c, rq, rs };
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, rq->headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, rs->curl_err);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, rq->fresh_connect ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     rq->timeout_ms > 0 && rq->timeout_ms < h->o.request_timeout_ms
                         ? rq->timeout_ms : h->o.request_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROXY, h->o.no_proxy ? "*" : NULL);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->o.verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->o.verify_tls ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    /* A pooled handle may have sent a PUT before. */
    curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "PUT") == 0) {
        /* Only IMDS's token request: an empty body, Content-Length: 0. */
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, no_body);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
    } else {
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    return 0;
}

int dsc_http_end(dsc_http *h, dsc_http_xfer *x, CURLcode code)
{
    CURL *c = x->c;
    dsc_http_resp *rs = x->rs;
    rs->curl_code = code;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    if (rs->curl_code != CURLE_OK && !rs->curl_err[0])
        snprintf(rs->curl_err, sizeof rs->curl_err, "%s",
                 curl_easy_strerror(rs->curl_code));
    /* Drop pointers into this call's stack before the handle is pooled. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    release(h, c);
    x->c = NULL;
    return rs->curl_code == CURLE_OK ? 0 : -1;
}

int dsc_http_perform(dsc_http *h, const dsc_http_req *rq, dsc_http_resp *rs)
{
    dsc_http_xfer x;
    int rc = dsc_http_begin(h, rq, rs, &x);
    return rc ? rc : dsc_http_end(h, &x, curl_easy_perform(x.c));
}

void dsc_http_resp_free(dsc_http_resp *rs)
{
    dsc_buf_free(&rs->err_body);
}
