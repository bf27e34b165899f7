/* Listing a prefix (ListObjectsV2), remembering what it says. */
#include <stdlib.h>
#include <string.h>
#include "api/context.h"

#define META_BATCH 1000

typedef struct list_ctx {
    const char *bucket;
    dsc_list_cb cb;
    void *arg;
    dsc_buf url;
    /* A listing carries each object's size and ETag: remember them, so
     * opening listed objects needs no HEAD (a dataset's first epoch). */
    dsc_cache *cache;              /* NULL: metadata is not kept */
    char *probe;                   /* the first key remembered */
    dsc_meta_entry batch[META_BATCH];
    char *keys[META_BATCH], *etags[META_BATCH];
    size_t n;
} list_ctx;

static void flush_meta(list_ctx *lc)
{
    dsc_meta_remember_many(lc->cache, lc->bucket, lc->batch, lc->n);
    for (size_t i = 0; i < lc->n; i++) {
        free(lc->keys[i]);
        free(lc->etags[i]);
    }
    lc->n = 0;
}

static int on_object(void *arg, const char *key, uint64_t size,
                     const char *etag, const char *lm)
{
    list_ctx *lc = arg;
    if (lc->cache && dsc_etag_ok(etag, strlen(etag))) {
        char *k = dsc_strdup(key), *e = dsc_strdup(etag);
        if (k && e) {
            lc->keys[lc->n] = k;
            lc->etags[lc->n] = e;
            lc->batch[lc->n++] = (dsc_meta_entry){ k, size, e };
            if (!lc->probe)
                lc->probe = dsc_strdup(k);
            if (lc->n == META_BATCH)
                flush_meta(lc);
        } else {
            free(k);
            free(e);
        }
    }
    dsc_buf_reset(&lc->url);
    if (dsc_buf_printf(&lc->url, "s3://%s/%s", lc->bucket, key))
        return DSC_ENOMEM;
    dsc_object_info info = { lc->url.data, key, size, etag, lm };
    return lc->cb ? lc->cb(lc->arg, &info) : 0;
}

int64_t dsc_list_run(dsc_ctx *ctx, const dsc_s3url *u, dsc_list_cb cb,
                     void *arg)
{
    list_ctx *lc = calloc(1, sizeof *lc);
    if (!lc)
        return DSC_ENOMEM;
    lc->bucket = u->bucket;
    lc->cb = cb;
    lc->arg = arg;
    lc->cache = ctx->cfg.meta_ttl_ms > 0 ? ctx->cache : NULL;
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    int64_t n = s3 ? dsc_s3_list(s3, u->bucket, u->key, on_object, lc)
                   : dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    flush_meta(lc);
    if (n > 0 && lc->cache && lc->probe)
        dsc_listed_note(ctx, u->bucket, u->key, (uint64_t)n, lc->probe);
    free(lc->probe);
    dsc_buf_free(&lc->url);
    free(lc);
    return n;
}

int64_t dsc_list(dsc_ctx *ctx, const char *url, dsc_list_cb cb, void *arg)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_list: ctx is NULL");
    dsc_s3url u;
    int rc = dsc_s3url_parse(url, &u);
    if (rc)
        return rc;
    int64_t n = dsc_list_run(ctx, &u, cb, arg);
    dsc_s3url_free(&u);
    return n;
}
