/* HTTP transfers on libcurl with pooled, shared connections. */
#ifndef DSC_NET_HTTP_H
#define DSC_NET_HTTP_H

#include <curl/curl.h>
#include "core/common.h"

typedef struct dsc_http dsc_http;

typedef struct dsc_http_opts {
    long connect_timeout_ms;
    long request_timeout_ms;
    int max_connections;
    int verify_tls;
    const char *ca_file;
    int no_proxy;                  /* never through http_proxy & co: for
                                      endpoints that hand out secrets on a
                                      link-local or loopback address */
} dsc_http_opts;

int dsc_http_new(const dsc_http_opts *o, dsc_http **out);
void dsc_http_free(dsc_http *h);

/* Where a 2xx body goes instead of a buffer: write is given each piece
 * and its offset in the body (0 again when a retry starts over); <0 stops
 * the transfer (the response's sink_failed says so). */
typedef struct dsc_http_sink {
    int (*write)(void *arg, const void *p, size_t len, size_t at);
    void *arg;
} dsc_http_sink;

typedef struct dsc_http_req {
    const char *method;            /* "GET", "HEAD", or "PUT" (empty body) */
    const char *url;
    struct curl_slist *headers;
    void *buf;                     /* 2xx body goes here, up to cap; more is
                                      an over-long body (overflow) */
    size_t cap;
    const dsc_http_sink *sink;     /* or here, up to cap (buf is NULL) */
    dsc_buf *body;                 /* or here (when buf is NULL) */
    size_t body_max;
    int fresh_connect;             /* on a new connection, not a pooled one */
    long timeout_ms;               /* this attempt's limit when shorter than
                                      the handle's request timeout (what is
                                      left of an operation's deadline);
                                      0: the request timeout */
    const char *const *capture;    /* NULL-terminated names of further
                                      headers to keep (at most
                                      DSC_HTTP_CAPTURE), into captured[] */
} dsc_http_req;

#define DSC_HTTP_CAPTURE 4

typedef struct dsc_http_resp {
    long status;                   /* 0 when no response */
    CURLcode curl_code;
    char curl_err[CURL_ERROR_SIZE];
    int64_t content_length;        /* -1 when absent */
    char etag[256];
    char content_range[128];
    char request_id[128];
    char captured[DSC_HTTP_CAPTURE][128];  /* values of rq->capture */
    size_t received;               /* body bytes stored */
    int overflow;                  /* body longer than buf/body_max */
    int sink_failed;               /* the sink refused a piece */
    dsc_buf err_body;              /* first 64 KiB of a non-2xx body */
} dsc_http_resp;

/* Run one request on a pooled handle. Returns 0 when an HTTP response
 * arrived (any status), else the curl error is in resp->curl_code. Caller
 * frees resp->err_body with dsc_http_resp_free. Thread-safe. */
int dsc_http_perform(dsc_http *h, const dsc_http_req *rq, dsc_http_resp *rs);
void dsc_http_resp_free(dsc_http_resp *rs);

/* dsc_http_perform in two halves, for a transfer an event loop (net/loop.h)
 * runs: begin takes a pooled handle (x->c) set up for rq into rs; end,
 * given how the transfer ended, reads the status, pools the handle and
 * returns as dsc_http_perform. rq, rs and x must stay put in between. */
typedef struct dsc_http_xfer {
    CURL *c;
    const dsc_http_req *rq;
    dsc_http_resp *rs;
} dsc_http_xfer;
int dsc_http_begin(dsc_http *h, const dsc_http_req *rq, dsc_http_resp *rs,
                   dsc_http_xfer *x);
int dsc_http_end(dsc_http *h, dsc_http_xfer *x, CURLcode code);

#endif
