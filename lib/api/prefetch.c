/* The fetching API: prefetch, warm and plans, over the fetcher pool. */
#include <stdlib.h>
#include "api/context.h"

int dsc_prefetch(dsc_file *f, uint64_t off, uint64_t len)
{
    dsc_clear_error();
    if (!f)
        return dsc_fail(DSC_EINVAL, "dsc_prefetch: NULL file");
    dsc_pf *pf = dsc_ctx_pf(f->ctx);
    if (!pf)
        return dsc_fail(DSC_ENOCACHE, "prefetch needs a node cache");
    if (off >= f->size)
        return 0;
    uint64_t end = len == 0 || len > f->size - off ? f->size : off + len;
    uint64_t cs = dsc_cache_chunk_size(f->ctx->cache);
    dsc_objref obj = { f->bucket, f->key, f->etag, f->size };
    /* Not owned by f: a prefetch outlives the handle that asked for it. */
    int queued;
    return dsc_pf_chunks(pf, &obj, off / cs, (end - 1) / cs, NULL, &queued);
}

int dsc_prefetch_url(dsc_ctx *ctx, const char *url)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_prefetch_url: ctx is NULL");
    dsc_s3url u;
    int rc = dsc_parse_object_url(url, &u);
    if (rc)
        return rc;
    dsc_pf *pf = dsc_ctx_pf(ctx);
    rc = pf ? dsc_pf_url(pf, u.bucket, u.key)
            : dsc_fail(DSC_ENOCACHE, "prefetch needs a node cache");
    dsc_s3url_free(&u);
    return rc;
}

ssize_t dsc_prefetch_urls(dsc_ctx *ctx, const char *const *urls, size_t n,
                          size_t *taken)
{
    dsc_clear_error();
    if (taken)
        *taken = 0;
    if (!ctx || (!urls && n))
        return dsc_fail(DSC_EINVAL, "dsc_prefetch_urls: NULL argument");
    dsc_pf *pf = n ? dsc_ctx_pf(ctx) : NULL;
    if (n && !pf)
        return dsc_fail(DSC_ENOCACHE, "prefetch needs a node cache");
    ssize_t queued = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        dsc_s3url u;
        rc = urls[i] ? dsc_parse_object_url(urls[i], &u)
                     : dsc_fail(DSC_EINVAL, "dsc_prefetch_urls: url %zu is NULL", i);
        if (rc)
            break;
        /* A cached epoch's objects cost a lookup here, not a task each. */
        if (!dsc_pf_cached_whole(pf, u.bucket, u.key)) {
            rc = dsc_pf_url(pf, u.bucket, u.key);
            queued += rc == 0;
        }
        dsc_s3url_free(&u);
        if (!rc && taken)
            *taken = i + 1;
    }
    return rc ? rc : queued;
}

int dsc_prefetch_wait(dsc_ctx *ctx, long timeout_ms)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_prefetch_wait: ctx is NULL");
    dsc_pf *pf = dsc_ctx_pf(ctx);
    return pf ? dsc_pf_wait(pf, timeout_ms) : 0;
}

int64_t dsc_warm(dsc_file *f, uint64_t off, uint64_t len)
{
    dsc_clear_error();
    if (!f)
        return dsc_fail(DSC_EINVAL, "dsc_warm: NULL file");
    dsc_ctx *ctx = f->ctx;
    if (!ctx->cache)
        return dsc_fail(DSC_ENOCACHE, "dsc_warm needs a node cache");
    if (off >= f->size)
        return 0;
    uint64_t end = len == 0 || len > f->size - off ? f->size : off + len;
    dsc_objref obj = { f->bucket, f->key, f->etag, f->size };
    dsc_pf *pf = dsc_ctx_pf(ctx);
    if (pf)
        return dsc_pf_warm(pf, &obj, off, end - off);
    /* No fetchers configured: do it in this thread. */
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    uint64_t cs = dsc_cache_chunk_size(ctx->cache);
    int64_t fetched_bytes = 0;
    for (uint64_t c = off / cs; s3 && c <= (end - 1) / cs; c++) {
        int fetched;
        int rc = dsc_cache_ensure_chunk(ctx->cache, s3, &obj, c, &fetched);
        if (rc)
            return rc;
        if (fetched)
            fetched_bytes += (int64_t)(f->size - c * cs < cs ? f->size - c * cs : cs);
    }
    return s3 ? fetched_bytes : DSC_ENOMEM;
}

int dsc_plan_start(dsc_ctx *ctx, const dsc_plan_item *items, size_t n,
                   dsc_plan **out)
{
    dsc_clear_error();
    if (!ctx || !out || (!items && n))
        return dsc_fail(DSC_EINVAL, "dsc_plan_start: NULL argument");
    *out = NULL;
    dsc_pf *pf = dsc_ctx_pf(ctx);
    if (!pf)
        return dsc_fail(DSC_ENOCACHE, "plans need a node cache");
    /* Before the fetchers start: a plan of a dataset whose metadata has
     * outlived its TTL would otherwise cost a HEAD per object. */
    dsc_plan_revalidate(ctx, items, n);
    dsc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return DSC_ENOMEM;
    p->ctx = ctx;
    int rc = dsc_pf_plan_start(pf, items, n, ctx->cfg.plan_window, &p->state);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

size_t dsc_plan_position(const dsc_plan *p)
{
    return p ? dsc_pf_plan_position(p->state) : 0;
}

void dsc_plan_stop(dsc_plan *p)
{
    if (!p)
        return;
    dsc_pf *pf = dsc_ctx_pf(p->ctx);
    if (pf)
        dsc_pf_plan_stop(pf, p->state);
    free(p);
}
