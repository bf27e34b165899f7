/* Object handles: open (HEAD), pread/read/seek, close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/context.h"
#include "core/atomic.h"

int dsc_object_stat(dsc_ctx *ctx, const char *bucket, const char *key,
                    uint64_t *size, char **etag, int *pinned)
{
    int rc = *pinned ? dsc_ctx_pinned(ctx, bucket, key, size, etag) : DSC_ABSENT;
    *pinned = rc == 0;
    if (rc != DSC_ABSENT)
        return rc;
    uint64_t age;
    rc = dsc_meta_cached_aged(ctx->cache, bucket, key, size, etag, &age);
    if (rc == 0)
        dsc_listed_refresh_ahead(ctx, bucket, key, age);
    if (rc != DSC_ABSENT)
        return rc;
    /* Expired: one LIST page answers for up to 1,000 objects a HEAD
     * would each ask for. */
    if (dsc_listed_revalidate(ctx, bucket, key) == 0) {
        rc = dsc_meta_cached(ctx->cache, bucket, key, size, etag);
        if (rc != DSC_ABSENT)
            return rc;
    }
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    return dsc_meta_head(ctx->cache, s3, bucket, key, size, etag);
}

int dsc_parse_object_url(const char *url, dsc_s3url *u)
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
    return dsc_open_as(ctx, url, 1, out);
}

/* Fill f, the caller's, for u (whose bucket and key it takes over):
 * size and ETag from the snapshot, the metadata cache or a HEAD. */
static int file_init(dsc_file *f, dsc_ctx *ctx, dsc_s3url *u, int use_snapshot)
{
    memset(f, 0, sizeof *f);
    f->ctx = ctx;
    f->bucket = u->bucket;
    f->key = u->key;
    f->pinned = use_snapshot;
    return dsc_object_stat(ctx, f->bucket, f->key, &f->size, &f->etag,
                           &f->pinned);
}

/* What file_init and dsc_open gave f; not f itself. */
static void file_release(dsc_file *f)
{
    free(f->bucket);
    free(f->key);
    free(f->url);
    free(f->etag);
    if (f->ra_made)
        pthread_mutex_destroy(&f->ra_lock);
}

int dsc_open_as(dsc_ctx *ctx, const char *url, int use_snapshot, dsc_file **out)
{
    if (!ctx || !out)
        return dsc_fail(DSC_EINVAL, "dsc_open: NULL argument");
    *out = NULL;
    dsc_s3url u;
    int rc = dsc_parse_object_url(url, &u);
    if (rc)
        return rc;
    dsc_file *f = malloc(sizeof *f);
    if (!f) {
        dsc_s3url_free(&u);
        return DSC_ENOMEM;
    }
    rc = file_init(f, ctx, &u, use_snapshot);
    f->url = rc ? NULL : dsc_strdup(url);
    if (!rc && !f->url)
        rc = DSC_ENOMEM;
    if (!rc) {
        pthread_mutex_init(&f->ra_lock, NULL);
        f->ra_made = 1;
        *out = f;
    } else {
        file_release(f);
        free(f);
    }
    return rc;
}

ssize_t dsc_read_url(dsc_ctx *ctx, const char *url, void *buf, size_t len,
                     uint64_t off, int64_t *size)
{
    if (size)
        *size = -1;
    if (!ctx || !url || (!buf && len))
        return dsc_fail(DSC_EINVAL, "dsc_pread_url: NULL argument");
    dsc_s3url u;
    int rc = dsc_parse_object_url(url, &u);
    if (rc)
        return rc;
    /* A handle for this call only: no copies, no readahead (one read). */
    dsc_file f;
    ssize_t got = file_init(&f, ctx, &u, 1);
    if (got == 0 && size)
        *size = (int64_t)f.size;
    if (got == 0 && off < f.size && len) {
        size_t want = len < f.size - off ? len : (size_t)(f.size - off);
        got = dsc_pread(&f, buf, want, off);
        if (got >= 0 && (size_t)got != want)   /* shorter than its size said */
            got = dsc_fail(DSC_EPROTO, "%s: ended at %zd of %llu bytes", url,
                           got, (unsigned long long)f.size);
    }
    file_release(&f);
    return got;
}

ssize_t dsc_pread_url(dsc_ctx *ctx, const char *url, void *buf, size_t len,
                      uint64_t off, int64_t *size)
{
    dsc_clear_error();
    return dsc_read_url(ctx, url, buf, len, off, size);
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
 * window that doubles per read up to readahead_max; a jump resets it.
 * Returns 1 with the chunks to queue in [*first, *last]. */
static int readahead_plan(dsc_file *f, uint64_t off, size_t len,
                          uint64_t *first, uint64_t *last)
{
    dsc_ctx *ctx = f->ctx;
    uint64_t cs = dsc_cache_chunk_size(ctx->cache);
    uint64_t end = off + len;
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
            *first = from_chunk;
            *last = to_chunk - 1;
            queue = 1;
            f->ra_queued = to_chunk * cs;
        }
    }
    pthread_mutex_unlock(&f->ra_lock);
    return queue;
}

static void readahead_queue(dsc_file *f, dsc_pf *pf, uint64_t first,
                            uint64_t last)
{
    dsc_objref obj = { f->bucket, f->key, f->etag, f->size };
    int n;
    dsc_errsave saved;
    dsc_err_save(&saved);
    dsc_pf_chunks(pf, &obj, first, last, f, &n);
    dsc_err_restore(&saved);   /* a full queue is not the read's error */
    if (n > 0)
        dsc_pf_count_readahead(pf, (uint64_t)n);
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
        uint64_t ra_first = 0, ra_last = 0;
        int ra = f->ra_made && ctx->cfg.readahead_max &&
                 readahead_plan(f, off, len, &ra_first, &ra_last);
        /* The pool (threads) is made only when this read can use it: a
         * read of one chunk, with no plan running, needs none. */
        dsc_pf *pf = multi || ra ? dsc_ctx_pf(ctx) : dsc_ctx_pf_if_made(ctx);
        if (pf) {
            dsc_pf_plan_observe(pf, f->bucket, f->key);
            if (ra)
                readahead_queue(f, pf, ra_first, ra_last);
        }
        /* A read over several chunks fetches them in parallel. */
        if (pf && multi)
            rc = dsc_pf_read(pf, &obj, buf, len, off);
        else
            rc = dsc_cache_read(ctx->cache, s3, &obj, buf, len, off);
    } else {
        rc = dsc_s3_get(s3, f->bucket, f->key, f->etag, f->size, off, len, buf);
    }
    if (rc == DSC_ECHANGED && f->pinned) {
        /* The reader asked for the snapshot's version: say so, and which. */
        char was[700];
        snprintf(was, sizeof was, "%s", dsc_errmsg());
        rc = dsc_fail(DSC_ECHANGED, "s3://%s/%s changed since the snapshot "
                      "(pinned ETag %s): %s", f->bucket, f->key, f->etag, was);
    } else if (rc == DSC_ECHANGED) {
        /* The cached HEAD is stale: the next open must ask S3. */
        dsc_meta_forget(ctx->cache, f->bucket, f->key);
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
    dsc_pf *pf = f->ctx ? dsc_ctx_pf_if_made(f->ctx) : NULL;
    if (pf)
        dsc_pf_cancel_owner(pf, f);   /* its readahead */
    file_release(f);
    free(f);
}
