/* Object handles: open (HEAD), pread/read/seek, close; and listing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

/* Size and ETag: from the node cache's metadata while it is fresh, else
 * from a HEAD (remembered for the next opener on this node). */
static int stat_object(dsc_ctx *ctx, dsc_file *f)
{
    dsc_index *ix = ctx->cache && ctx->cfg.meta_ttl_ms > 0
                        ? dsc_cache_index(ctx->cache) : NULL;
    if (ix) {
        char etag[256];
        uint64_t size, fetched;
        uint64_t now = dsc_wall_ms();
        if (dsc_index_meta_get(ix, f->bucket, f->key, &size, etag, sizeof etag,
                               &fetched) == 0 &&
            fetched <= now && now - fetched < (uint64_t)ctx->cfg.meta_ttl_ms) {
            f->size = size;
            f->etag = dsc_strdup(etag);
            __atomic_fetch_add(&ctx->meta_hits, 1, __ATOMIC_RELAXED);
            return f->etag ? 0 : DSC_ENOMEM;
        }
    }
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    int rc = dsc_s3_head(s3, f->bucket, f->key, &f->size, &f->etag);
    if (!rc && ix && strlen(f->etag) < 256)
        dsc_index_meta_put(ix, f->bucket, f->key, f->size, f->etag,
                           dsc_wall_ms());
    return rc;
}

int dsc_open(dsc_ctx *ctx, const char *url, dsc_file **out)
{
    dsc_clear_error();
    if (!ctx || !out)
        return dsc_fail(DSC_EINVAL, "dsc_open: NULL argument");
    *out = NULL;
    dsc_s3url u;
    int rc = dsc_s3url_parse(url, &u);
    if (rc)
        return rc;
    if (!*u.key) {
        dsc_s3url_free(&u);
        return dsc_fail(DSC_EURL, "'%s': URL names a bucket, not an object",
                        url);
    }
    dsc_file *f = calloc(1, sizeof *f);
    if (!f) {
        dsc_s3url_free(&u);
        return DSC_ENOMEM;
    }
    f->ctx = ctx;
    f->bucket = u.bucket;
    f->key = u.key;
    f->url = dsc_strdup(url);
    if (!f->url) {
        dsc_close(f);
        return DSC_ENOMEM;
    }
    rc = stat_object(ctx, f);
    if (rc) {
        dsc_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int64_t dsc_size(const dsc_file *f)
{
    return f ? (int64_t)f->size : DSC_EINVAL;
}

const char *dsc_etag(const dsc_file *f)
{
    return f ? f->etag : NULL;
}

ssize_t dsc_pread(dsc_file *f, void *buf, size_t len, uint64_t off)
{
    dsc_clear_error();
    if (!f || (!buf && len))
        return dsc_fail(DSC_EINVAL, "dsc_pread: NULL argument");
    if (off >= f->size || len == 0)
        return 0;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    dsc_ctx *ctx = f->ctx;
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    int rc;
    if (ctx->cache) {
        dsc_objref obj = { f->bucket, f->key, f->etag, f->size };
        rc = dsc_cache_read(ctx->cache, s3, &obj, buf, len, off);
    } else {
        rc = dsc_s3_get(s3, f->bucket, f->key, f->etag, f->size, off, len, buf);
    }
    if (rc == DSC_ECHANGED && ctx->cache) {
        /* The cached HEAD is stale: the next open must ask S3. */
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", dsc_errmsg());
        dsc_index *ix = dsc_cache_index(ctx->cache);
        if (ix)
            dsc_index_meta_del(ix, f->bucket, f->key);
        dsc_fail(rc, "%s", saved);
    }
    return rc ? rc : (ssize_t)len;
}

ssize_t dsc_read(dsc_file *f, void *buf, size_t len)
{
    if (!f)
        return dsc_fail(DSC_EINVAL, "dsc_read: NULL file");
    ssize_t n = dsc_pread(f, buf, len, (uint64_t)f->pos);
    if (n > 0)
        f->pos += n;
    return n;
}

int64_t dsc_seek(dsc_file *f, int64_t off, int whence)
{
    if (!f)
        return dsc_fail(DSC_EINVAL, "dsc_seek: NULL file");
    int64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = f->pos; break;
    case SEEK_END: base = (int64_t)f->size; break;
    default: return dsc_fail(DSC_EINVAL, "dsc_seek: bad whence %d", whence);
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
        return dsc_fail(DSC_EINVAL, "dsc_seek: position out of range");
    f->pos = base + off;
    return f->pos;
}

void dsc_close(dsc_file *f)
{
    if (!f)
        return;
    free(f->bucket);
    free(f->key);
    free(f->url);
    free(f->etag);
    free(f);
}

typedef struct list_ctx {
    const char *bucket;
    dsc_list_cb cb;
    void *arg;
    dsc_buf url;
} list_ctx;

static int on_object(void *arg, const char *key, uint64_t size,
                     const char *etag, const char *lm)
{
    list_ctx *lc = arg;
    dsc_buf_reset(&lc->url);
    if (dsc_buf_printf(&lc->url, "s3://%s/%s", lc->bucket, key))
        return DSC_ENOMEM;
    dsc_object_info info = { lc->url.data, key, size, etag, lm };
    return lc->cb ? lc->cb(lc->arg, &info) : 0;
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
    list_ctx lc = { u.bucket, cb, arg, { 0 } };
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    int64_t n = s3 ? dsc_s3_list(s3, u.bucket, u.key, on_object, &lc)
                   : dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    dsc_buf_free(&lc.url);
    dsc_s3url_free(&u);
    return n;
}
