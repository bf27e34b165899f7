/* S3 GETs on the event loop: each attempt is signed (dsc_s3_call_prepare),
 * started on a pooled handle (dsc_http_begin), handed to the loop, and
 * judged when it ends (dsc_http_end, dsc_s3_call_after) -- the steps the
 * blocking client runs, in callbacks. */
#include <stdlib.h>
#include "core/log.h"
#include "s3/async.h"
#include "s3/call.h"

typedef struct async_get {
    dsc_s3_call k;
    s3_op op;
    char range[64];
    char vid[DSC_VERSION_ID_MAX + 1];
    dsc_kv q;
    dsc_http_resp rs;
    dsc_http_xfer x;
    dsc_loop *loop;
    dsc_s3_done_fn fn;
    void *arg;
} async_get;

static void on_done(void *arg, CURLcode code);

/* Sign and start one attempt after pause_ms: 0, or an error (nothing
 * submitted). */
static int attempt(async_get *g, long pause_ms)
{
    int rc = dsc_s3_call_prepare(&g->k);
    if (!rc)
        rc = dsc_http_begin(dsc_s3_http(g->k.s3), &g->k.rq, &g->rs, &g->x);
    if (!rc) {
        rc = dsc_loop_submit(g->loop, g->x.c, pause_ms, on_done, g);
        if (rc)
            dsc_http_end(dsc_s3_http(g->k.s3), &g->x, CURLE_ABORTED_BY_CALLBACK);
    }
    return rc;
}

static void finish(async_get *g, int rc)
{
    dsc_s3_result res = { .rc = rc, .slowed = g->k.slowed };
    rc = dsc_s3_call_end(&g->k, rc);
    if (g->op.first_part)
        res.rc = dsc_s3_first_result(rc, &g->rs, &res.obj_size, &res.etag,
                                     &res.got);
    dsc_err_save(&res.detail);
    dsc_http_resp_free(&g->rs);
    dsc_s3_done_fn fn = g->fn;
    void *arg = g->arg;
    free(g);
    fn(arg, &res);
}

static void on_done(void *arg, CURLcode code)
{
    async_get *g = arg;
    int answered = dsc_http_end(dsc_s3_http(g->k.s3), &g->x, code) == 0;
    if (code == CURLE_ABORTED_BY_CALLBACK) {
        finish(g, dsc_fail(DSC_ECANCELED, "GET s3://%s/%s: stopped (the "
                           "context closes)", g->op.bucket, g->op.key));
        return;
    }
    int rc;
    long pause;
    if (dsc_s3_call_after(&g->k, answered, &rc, &pause) == DSC_S3_CALL_DONE)
        finish(g, rc);
    else if ((rc = attempt(g, pause)) != 0)
        finish(g, rc);
}

static int start(async_get *g, dsc_s3 *s3, dsc_loop *loop, uint64_t obj_size,
                 dsc_s3_done_fn fn, void *arg)
{
    g->loop = loop;
    g->fn = fn;
    g->arg = arg;
    int rc = dsc_s3_call_start(&g->k, s3, &g->op, obj_size, &g->rs);
    if (rc) {
        free(g);
        return rc;
    }
    dsc_s3_count_get(s3);
    rc = attempt(g, 0);
    if (rc) {
        dsc_s3_call_end(&g->k, rc);
        dsc_http_resp_free(&g->rs);
        free(g);
    }
    return rc;
}

int dsc_s3_get_async(dsc_s3 *s3, dsc_loop *loop, const char *bucket,
                     const char *key, const char *etag, uint64_t obj_size,
                     uint64_t off, size_t len, void *buf,
                     const dsc_http_sink *sink, dsc_s3_done_fn fn, void *arg)
{
    /* The quirks dsc_s3_get works around stay on its path. */
    if (len < 2 || off + len > obj_size || off + len < off)
        return dsc_fail(DSC_EINVAL, "GET s3://%s/%s: not for the loop",
                        bucket, key);
    async_get *g = calloc(1, sizeof *g);
    if (!g)
        return DSC_ENOMEM;
    dsc_s3_get_op(s3, bucket, key, etag, off, len, buf, sink, &g->op,
                  g->range, g->vid, &g->q);
    return start(g, s3, loop, obj_size, fn, arg);
}

int dsc_s3_get_first_async(dsc_s3 *s3, dsc_loop *loop, const char *bucket,
                           const char *key, size_t max_len, void *buf,
                           dsc_s3_done_fn fn, void *arg)
{
    if (max_len < 2)
        return dsc_fail(DSC_EINVAL, "GET s3://%s/%s: not for the loop",
                        bucket, key);
    async_get *g = calloc(1, sizeof *g);
    if (!g)
        return DSC_ENOMEM;
    dsc_s3_first_op(bucket, key, max_len, buf, &g->op, g->range);
    return start(g, s3, loop, 0, fn, arg);
}
