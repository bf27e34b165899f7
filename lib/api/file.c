/* Object handles: open (HEAD), pread/read/seek, close; and listing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/context.h"
#include "core/fork.h"
#include "fetch/pool.h"

dsc_index *dsc_ctx_meta_index(dsc_ctx *ctx)
{
    return ctx->cache && ctx->cfg.meta_ttl_ms > 0 ? dsc_cache_index(ctx->cache)
                                                  : NULL;
}

int dsc_object_meta_cached(dsc_ctx *ctx, const char *bucket, const char *key,
                           uint64_t *size, char **etag)
{
    dsc_index *ix = dsc_ctx_meta_index(ctx);
    char tag[256];
    uint64_t sz, fetched, now = dsc_wall_ms();
    if (!ix || dsc_index_meta_get(ix, bucket, key, &sz, tag, sizeof tag,
                                  &fetched) != 0 ||
        fetched > now || now - fetched >= (uint64_t)ctx->cfg.meta_ttl_ms)
        return 1;
    *size = sz;
    *etag = dsc_strdup(tag);
    __atomic_fetch_add(&ctx->meta_hits, 1, __ATOMIC_RELAXED);
    return *etag ? 0 : DSC_ENOMEM;
}

/* Size and ETag: from the node cache's metadata while it is fresh, else
 * from a HEAD (remembered for the next opener on this node). */
int dsc_object_stat(dsc_ctx *ctx, const char *bucket, const char *key,
                    uint64_t *size, char **etag)
{
    int rc = dsc_object_meta_cached(ctx, bucket, key, size, etag);
    if (rc <= 0)
        return rc;
    dsc_index *ix = dsc_ctx_meta_index(ctx);
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    rc = dsc_s3_head(s3, bucket, key, size, etag);
    if (!rc && ix && strlen(*etag) < 256)
        dsc_index_meta_put(ix, bucket, key, *size, *etag, dsc_wall_ms());
    return rc;
}

/* Parse a URL that must name an object (not a bucket or prefix). */
static int parse_object_url(const char *url, dsc_s3url *u)
{
    int rc = dsc_s3url_parse(url, u);
    if (rc)
        return rc;
    if (!*u->key) {
        char q[200];
        dsc_s3url_free(u);
        return dsc_fail(DSC_EURL, "'%s': URL names a bucket, not an object",
                        dsc_printable(url, q, sizeof q));
    }
    return 0;
}

int dsc_open(dsc_ctx *ctx, const char *url, dsc_file **out)
{
    dsc_clear_error();
    if (!ctx || !out)
        return dsc_fail(DSC_EINVAL, "dsc_open: NULL argument");
    *out = NULL;
    dsc_s3url u;
    int rc = parse_object_url(url, &u);
    if (rc)
        return rc;
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
    pthread_mutex_init(&f->ra_lock, NULL);
    rc = dsc_object_stat(ctx, f->bucket, f->key, &f->size, &f->etag);
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

/* Sequential readers get readahead: after two reads in a row that each
 * start where the previous ended, queue chunks ahead of the reader in a
 * window that doubles per read up to readahead_max; a jump resets it. */
static void readahead(dsc_file *f, dsc_pf *pf, uint64_t off, size_t len)
{
    dsc_ctx *ctx = f->ctx;
    uint64_t cs = dsc_cache_chunk_size(ctx->cache);
    uint64_t end = off + len, first = 0, last = 0;
    int queue = 0;
    pthread_mutex_lock(&f->ra_lock);
    if (off == f->ra_next && off != 0) {
        f->ra_run++;
    } else if (off != f->ra_next) {
        f->ra_run = 0;
        f->ra_window = 0;
        f->ra_queued = 0;
    }
    f->ra_next = end;
    if (f->ra_run >= 2 && end < f->size) {
        uint64_t w = f->ra_window ? f->ra_window * 2 : 2 * cs;
        if (w > ctx->cfg.readahead_max)
            w = ctx->cfg.readahead_max;
        f->ra_window = w;
        uint64_t from = f->ra_queued > end ? f->ra_queued : end;
        uint64_t to = end + w < f->size ? end + w : f->size;
        /* Whole chunks only, starting after the one being read. */
        uint64_t from_chunk = (from + cs - 1) / cs;
        uint64_t to_chunk = to / cs;
        if (to == f->size && to % cs)
            to_chunk++;
        if (w && from_chunk < to_chunk) {
            first = from_chunk;
            last = to_chunk - 1;
            queue = 1;
            f->ra_queued = to_chunk * cs;
        }
    }
    pthread_mutex_unlock(&f->ra_lock);
    if (queue) {
        dsc_objref obj = { f->bucket, f->key, f->etag, f->size };
        int n;
        dsc_errsave saved;
        dsc_err_save(&saved);
        dsc_pf_chunks(pf, &obj, first, last, f, &n);
        dsc_err_restore(&saved);   /* a full queue is not the read's error */
        if (n > 0)
            dsc_pf_count_readahead(pf, (uint64_t)n);
    }
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
        uint64_t cs = dsc_cache_chunk_size(ctx->cache);
        int multi = off / cs != (off + len - 1) / cs;
        /* The pool (threads) is made only when this read can use it. */
        dsc_pf *pf = multi || ctx->cfg.readahead_max ||
                             __atomic_load_n(&ctx->pf, __ATOMIC_ACQUIRE)
                         ? dsc_ctx_pf(ctx) : NULL;
        if (pf) {
            dsc_pf_plan_observe(pf, f->bucket, f->key);
            if (ctx->cfg.readahead_max)
                readahead(f, pf, off, len);
        }
        /* A read over several chunks fetches them in parallel. */
        if (pf && multi)
            rc = dsc_pf_read(pf, &obj, buf, len, off);
        else
            rc = dsc_cache_read(ctx->cache, s3, &obj, buf, len, off);
    } else {
        rc = dsc_s3_get(s3, f->bucket, f->key, f->etag, f->size, off, len, buf);
    }
    if (rc == DSC_ECHANGED && ctx->cache) {
        /* The cached HEAD is stale: the next open must ask S3. */
        dsc_errsave saved;
        dsc_err_save(&saved);
        dsc_index *ix = dsc_cache_index(ctx->cache);
        if (ix)
            dsc_index_meta_del(ix, f->bucket, f->key);
        dsc_err_restore(&saved);
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
    dsc_pf *pf = f->ctx ? __atomic_load_n(&f->ctx->pf, __ATOMIC_ACQUIRE) : NULL;
    if (pf && __atomic_load_n(&f->ctx->pf_gen, __ATOMIC_ACQUIRE) ==
                  dsc_fork_generation())
        dsc_pf_cancel_owner(pf, f);   /* its readahead */
    if (f->etag)
        pthread_mutex_destroy(&f->ra_lock);
    free(f->bucket);
    free(f->key);
    free(f->url);
    free(f->etag);
    free(f);
}

#define META_BATCH 1000

typedef struct list_ctx {
    const char *bucket;
    dsc_list_cb cb;
    void *arg;
    dsc_buf url;
    /* A listing carries each object's size and ETag: remember them, so
     * opening listed objects needs no HEAD (a dataset's first epoch). */
    dsc_index *ix;
    dsc_meta_entry batch[META_BATCH];
    char *keys[META_BATCH], *etags[META_BATCH];
    size_t n;
} list_ctx;

static void flush_meta(list_ctx *lc)
{
    if (lc->n && lc->ix) {
        dsc_errsave saved;
        dsc_err_save(&saved);
        dsc_index_meta_put_many(lc->ix, lc->bucket, lc->batch, lc->n,
                                dsc_wall_ms());
        dsc_err_restore(&saved);
    }
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
    if (lc->ix && *etag) {
        char *k = dsc_strdup(key), *e = dsc_strdup(etag);
        if (k && e) {
            lc->keys[lc->n] = k;
            lc->etags[lc->n] = e;
            lc->batch[lc->n++] = (dsc_meta_entry){ k, size, e };
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

int64_t dsc_list(dsc_ctx *ctx, const char *url, dsc_list_cb cb, void *arg)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_list: ctx is NULL");
    dsc_s3url u;
    int rc = dsc_s3url_parse(url, &u);
    if (rc)
        return rc;
    list_ctx *lc = calloc(1, sizeof *lc);
    if (!lc) {
        dsc_s3url_free(&u);
        return DSC_ENOMEM;
    }
    lc->bucket = u.bucket;
    lc->cb = cb;
    lc->arg = arg;
    lc->ix = dsc_ctx_meta_index(ctx);
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    int64_t n = s3 ? dsc_s3_list(s3, u.bucket, u.key, on_object, lc)
                   : dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    flush_meta(lc);
    dsc_buf_free(&lc->url);
    free(lc);
    dsc_s3url_free(&u);
    return n;
}

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
    int rc = parse_object_url(url, &u);
    if (rc)
        return rc;
    dsc_pf *pf = dsc_ctx_pf(ctx);
    rc = pf ? dsc_pf_url(pf, u.bucket, u.key)
            : dsc_fail(DSC_ENOCACHE, "prefetch needs a node cache");
    dsc_s3url_free(&u);
    return rc;
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
