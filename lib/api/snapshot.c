/* Dataset snapshots: made by one listing, saved and loaded as one file
 * (api/snapfile.c), compared, and used by a context to open objects with
 * no HEAD or LIST and GETs pinned to the listed ETag. A snapshot is
 * immutable and reference-counted, so a context keeps it without a copy. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "api/context.h"
#include "api/snapfile.h"
#include "core/atomic.h"
#include "core/fork.h"
#include "core/log.h"

struct dsc_snapshot {
    int refs;                      /* dsc_ref_get/put */
    unsigned char *img;            /* the file image; v points into it */
    size_t len;
    dsc_snap_view v;
    size_t prefix_len;
    uint64_t bytes;                /* sum of the objects' sizes */
    char *url;                     /* s3://bucket/prefix */
};

/* dsc_snapshot_get writes URLs and ETags here. */
static _Thread_local struct {
    char url[5 + DSC_SNAP_STR_MAX + 1 + DSC_SNAP_KEY_MAX + 1];
    char etag[DSC_SNAP_ETAG_MAX];
} scratch;

/* Takes img (malloc'd) whatever happens. */
static int snap_from_image(unsigned char *img, size_t len, const char *name,
                           dsc_snapshot **out)
{
    *out = NULL;
    dsc_snapshot *s = calloc(1, sizeof *s);
    int rc = s ? dsc_snap_parse(img, len, name, &s->v) : DSC_ENOMEM;
    if (rc)
        goto done;
    s->img = img;
    s->len = len;
    s->refs = 1;
    s->prefix_len = strlen(s->v.head.prefix);
    for (uint64_t i = 0; i < s->v.n; i++) {
        dsc_snap_rec r;
        dsc_snap_get(&s->v, i, &r);
        s->bytes += r.size;
    }
    dsc_buf u = { 0 };
    dsc_buf_printf(&u, "s3://%s/%s", s->v.head.bucket, s->v.head.prefix);
    s->url = u.data;
    if (dsc_buf_oom(&u)) {
        dsc_buf_free(&u);
        s->url = NULL;
        rc = DSC_ENOMEM;
        goto done;
    }
    *out = s;
    s = NULL;
    img = NULL;
done:
    if (s)
        free(s->url);
    free(s);
    free(img);
    return rc;
}

static const char *ctx_origin(dsc_ctx *ctx)
{
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    return s3 ? dsc_s3_origin(s3) : NULL;
}

/* ---- Making one from a listing ----------------------------------------- */

typedef struct listed {
    size_t key_off, key_len, etag_off, etag_len, vid_off, vid_len;
    uint64_t size;
} listed;

typedef struct collector {
    const char *bucket;
    dsc_buf strs;                  /* keys, ETags, version ids */
    listed *ents;
    size_t n, cap;
    int oom;
    int bad_etag;                  /* the listing gave an object no valid
                                      ETag: it could not be pinned */
} collector;

/* vid: NULL for a listing without versions. */
static int collect_one(collector *c, const char *key, uint64_t size,
                       const char *etag, const char *vid)
{
    if (!dsc_etag_ok(etag, strlen(etag))) {
        char q[200], e[100];
        c->bad_etag = dsc_fail(DSC_EPROTO, "listing gave s3://%s/%s the ETag "
                               "'%s', which cannot pin a version; no snapshot "
                               "made", c->bucket, dsc_printable(key, q, sizeof q),
                               dsc_printable(etag, e, sizeof e));
        return 1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        listed *p = realloc(c->ents, cap * sizeof *p);
        if (!p)
            return c->oom = 1;
        c->ents = p;
        c->cap = cap;
    }
    listed *e = &c->ents[c->n++];
    e->size = size;
    e->key_off = c->strs.len;
    e->key_len = strlen(key);
    dsc_buf_add(&c->strs, key, e->key_len);
    e->etag_off = c->strs.len;
    e->etag_len = strlen(etag);
    dsc_buf_add(&c->strs, etag, e->etag_len);
    e->vid_off = c->strs.len;
    e->vid_len = vid ? strlen(vid) : 0;
    dsc_buf_add(&c->strs, vid ? vid : "", e->vid_len);
    return c->oom = dsc_buf_oom(&c->strs);
}

static int collect(void *arg, const dsc_object_info *o)
{
    return collect_one(arg, o->key, o->size, o->etag ? o->etag : "", NULL);
}

static int collect_version(void *arg, const char *key, uint64_t size,
                           const char *etag, const char *lm, const char *vid)
{
    (void)lm;
    return collect_one(arg, key, size, etag, vid);
}

/* List u into c: by versions when the bucket has them (so GETs can be
 * pinned to version ids and still read an object overwritten later), else
 * ListObjectsV2. A bucket whose versioning we may not read (no
 * s3:GetBucketVersioning or s3:ListBucketVersions, or a server without
 * versioning) is listed plainly: GETs are then pinned by ETag alone.
 * Sets *versioned. */
static int64_t list_for_snapshot(dsc_ctx *ctx, const dsc_s3url *u,
                                 collector *c, int *versioned)
{
    *versioned = 0;
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    int ver = dsc_s3_versioning(s3, u->bucket);
    if (ver == DSC_S3_VERSIONED) {
        int64_t n = dsc_s3_list_versions(s3, u->bucket, u->key,
                                         collect_version, c);
        if (n >= 0 || c->oom || c->bad_etag || n != DSC_EACCESS) {
            *versioned = n >= 0;
            return n;
        }
        ver = n;
        c->n = 0;
        dsc_buf_reset(&c->strs);
    }
    if (ver < 0)
        dsc_log(DSC_LOG_INFO, "snapshot of s3://%s/%s: versions not listed "
                "(%s); GETs are pinned by ETag only", u->bucket, u->key,
                dsc_errmsg());
    return dsc_list_run(ctx, u, collect, c);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dsc_snapshot_list(dsc_ctx *ctx, const char *prefix_url, dsc_snapshot **out)
{
    dsc_clear_error();
    if (!ctx || !out)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_list: NULL argument");
    *out = NULL;
    dsc_s3url u;
    int rc = dsc_s3url_parse(prefix_url, &u);
    if (rc)
        return rc;
    collector c = { .bucket = u.bucket };
    dsc_snap_obj *objs = NULL;
    dsc_buf img = { 0 };
    int versioned;
    int64_t n = list_for_snapshot(ctx, &u, &c, &versioned);
    if (n < 0) {
        rc = c.oom ? DSC_ENOMEM : c.bad_etag ? c.bad_etag : (int)n;
        goto done;
    }
    objs = malloc((c.n ? c.n : 1) * sizeof *objs);
    if (!objs) {
        rc = DSC_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < c.n; i++) {
        const listed *e = &c.ents[i];
        objs[i] = (dsc_snap_obj){ c.strs.data + e->key_off, e->key_len,
                                  e->size, c.strs.data + e->etag_off,
                                  e->etag_len,
                                  e->vid_len ? c.strs.data + e->vid_off : NULL,
                                  e->vid_len };
    }
    const char *origin = ctx_origin(ctx);
    dsc_snap_head h = { DSC_SNAP_FORMAT, versioned ? DSC_SNAP_F_VERSIONS : 0,
                        now_ms(), origin ? origin : "", u.bucket, u.key };
    rc = origin ? dsc_snap_encode(&h, objs, c.n, &img) : DSC_ENOMEM;
    if (!rc) {
        rc = snap_from_image((unsigned char *)img.data, img.len, prefix_url, out);
        img.data = NULL;       /* taken */
    }
done:
    dsc_buf_free(&img);
    free(objs);
    free(c.ents);
    dsc_buf_free(&c.strs);
    dsc_s3url_free(&u);
    return rc;
}

/* ---- Files -------------------------------------------------------------- */

/* Read fd's next n bytes into buf; how many came (short at end of file). */
static size_t read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* A regular file only (O_NONBLOCK: a FIFO must not hang the open), and
 * its header checked before the whole of it is read into memory. */
static int read_path(const char *path, unsigned char **img, size_t *len)
{
    char nm[300];
    unsigned char head[DSC_SNAP_HEADER];
    *img = NULL;
    dsc_printable(path, nm, sizeof nm);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return dsc_fail(DSC_EIO, "snapshot %s: %s", nm, strerror(errno));
    int rc = 0;
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        rc = dsc_fail(DSC_EINVAL, "snapshot %s: not a regular file", nm);
        goto done;
    }
    size_t n = (uint64_t)sb.st_size > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)sb.st_size;
    size_t hn = read_full(fd, head, n < sizeof head ? n : sizeof head);
    rc = dsc_snap_check_head(head, hn, (uint64_t)sb.st_size, path);
    if (rc)
        goto done;
    *img = malloc(n);
    if (!*img) {
        rc = dsc_fail(DSC_ENOMEM, "snapshot %s: no memory for its %zu bytes", nm, n);
        goto done;
    }
    memcpy(*img, head, hn);
    *len = hn + read_full(fd, *img + hn, n - hn);   /* a file cut meanwhile
                                                        fails the parse */
done:
    if (rc) {
        free(*img);
        *img = NULL;
    }
    close(fd);
    return rc;
}

/* Through the context (its cache, credentials and retries) but never
 * through its snapshot: the file is read as S3 has it now. The header
 * comes first, so a large object that is no snapshot is not fetched. */
static int read_url(dsc_ctx *ctx, const char *url, unsigned char **img,
                    size_t *len)
{
    unsigned char head[DSC_SNAP_HEADER];
    *img = NULL;
    dsc_file *f = NULL;
    int rc = dsc_open_as(ctx, url, 0, &f);
    if (rc)
        return rc;
    uint64_t size = (uint64_t)dsc_size(f);
    size_t hn = size < sizeof head ? (size_t)size : sizeof head;
    ssize_t r = hn ? dsc_pread(f, head, hn, 0) : 0;
    if (r < 0) {
        rc = (int)r;
        goto done;
    }
    rc = dsc_snap_check_head(head, (size_t)r, size, url);
    if (!rc && size > SIZE_MAX - 1)
        rc = dsc_fail(DSC_EINVAL, "snapshot %s: too large", url);
    if (rc)
        goto done;
    *img = malloc((size_t)size);
    if (!*img) {
        rc = DSC_ENOMEM;
        goto done;
    }
    memcpy(*img, head, (size_t)r);
    for (uint64_t got = (uint64_t)r; got < size;) {
        r = dsc_pread(f, *img + got, (size_t)(size - got), got);
        if (r <= 0) {
            rc = r < 0 ? (int)r : dsc_fail(DSC_EPROTO, "snapshot %s: short "
                                           "read", url);
            goto done;
        }
        got += (uint64_t)r;
    }
    *len = (size_t)size;
done:
    if (rc) {
        free(*img);
        *img = NULL;
    }
    dsc_close(f);
    return rc;
}

int dsc_snapshot_load(dsc_ctx *ctx, const char *src, dsc_snapshot **out)
{
    dsc_clear_error();
    if (!src || !out)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_load: NULL argument");
    *out = NULL;
    int url = strncmp(src, "s3://", 5) == 0;
    if (url && !ctx)
        return dsc_fail(DSC_EINVAL, "snapshot %s: an s3:// URL needs a "
                        "context to read it", src);
    unsigned char *img;
    size_t len = 0;
    int rc = url ? read_url(ctx, src, &img, &len) : read_path(src, &img, &len);
    return rc ? rc : snap_from_image(img, len, src, out);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int dsc_snapshot_save(const dsc_snapshot *s, const char *path)
{
    dsc_clear_error();
    if (!s || !path || !*path)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_save: NULL argument");
    dsc_buf tmp = { 0 };
    char *dcopy = dsc_strdup(path);
    dsc_buf_printf(&tmp, "%s.tmp-%ld-%llx", path, (long)getpid(),
                   (unsigned long long)dsc_rand_below(UINT64_MAX));
    if (dsc_buf_oom(&tmp) || !dcopy) {
        dsc_buf_free(&tmp);
        free(dcopy);
        return DSC_ENOMEM;
    }
    int rc = 0, dfd = -1;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = dsc_fail(DSC_EIO, "snapshot %s: cannot create %s: %s", path,
                      tmp.data, strerror(errno));
        goto done;
    }
    /* Replacing a file keeps its permissions: a private listing stays so. */
    struct stat old;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode))
        fchmod(fd, old.st_mode & 07777);
    if (write_all(fd, s->img, s->len) || fsync(fd)) {
        rc = dsc_fail(DSC_EIO, "snapshot %s: writing %s: %s", path, tmp.data,
                      strerror(errno));
        goto done;
    }
    if (close(fd)) {
        fd = -1;
        rc = dsc_fail(DSC_EIO, "snapshot %s: %s", path, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp.data, path)) {
        rc = dsc_fail(DSC_EIO, "snapshot %s: rename: %s", path, strerror(errno));
        goto done;
    }
    /* The rename itself must survive a crash too. */
    dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        fsync(dfd);
done:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc)
        unlink(tmp.data);
    dsc_buf_free(&tmp);
    free(dcopy);
    return rc;
}

void dsc_snapshot_free(dsc_snapshot *s)
{
    if (!s || !dsc_ref_put(&s->refs))
        return;
    free(s->img);
    free(s->url);
    free(s);
}

/* ---- Reading one -------------------------------------------------------- */

int dsc_snapshot_summarize(const dsc_snapshot *s, dsc_snapshot_summary *out,
                           size_t size)
{
    if (!s || !out || size == 0)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_summarize: bad argument");
    dsc_snapshot_summary m = {
        .url = s->url, .bucket = s->v.head.bucket, .prefix = s->v.head.prefix,
        .origin = s->v.head.origin, .created_ms = s->v.head.created_ms,
        .objects = s->v.n, .bytes = s->bytes, .file_bytes = s->len,
        .format = s->v.head.format,
        .versioned = (s->v.head.flags & DSC_SNAP_F_VERSIONS) != 0,
    };
    memcpy(out, &m, size < sizeof m ? size : sizeof m);
    return 0;
}

size_t dsc_snapshot_count(const dsc_snapshot *s)
{
    return s ? (size_t)s->v.n : 0;
}

/* Entry i as dsc_object_info, its URL and ETag written to buffers. */
static void info_of(const dsc_snapshot *s, uint64_t i, dsc_snap_rec *r,
                    char *url, size_t url_cap, char *etag, dsc_object_info *o)
{
    dsc_snap_get(&s->v, i, r);
    snprintf(url, url_cap, "s3://%s/%s", s->v.head.bucket, r->key);
    *o = (dsc_object_info){ url, r->key, r->size, dsc_snap_etag(r, etag), "" };
}

int dsc_snapshot_get(const dsc_snapshot *s, size_t i, dsc_object_info *out)
{
    if (!s || !out || i >= s->v.n)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_get: %s", !s || !out
                        ? "NULL argument" : "index past the end");
    dsc_snap_rec r;
    info_of(s, i, &r, scratch.url, sizeof scratch.url, scratch.etag, out);
    return 0;
}

const char *dsc_snapshot_version_id(const dsc_snapshot *s, size_t i)
{
    if (!s || i >= s->v.n)
        return NULL;
    dsc_snap_rec r;
    dsc_snap_get(&s->v, i, &r);
    return r.version_id;
}

int64_t dsc_snapshot_find(const dsc_snapshot *s, const char *key)
{
    if (!s || !key)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_find: NULL argument");
    int64_t i = dsc_snap_find(&s->v, key, strlen(key));
    if (i < 0) {
        char q[200];
        return dsc_fail(DSC_ENOTFOUND, "'%s' is not in the snapshot of %s",
                        dsc_printable(key, q, sizeof q), s->url);
    }
    return i;
}

/* ---- Comparing two ------------------------------------------------------ */

typedef struct diff_bufs {
    char ua[sizeof scratch.url], ub[sizeof scratch.url];
} diff_bufs;

static int report(dsc_snapshot_diff_cb cb, void *arg, diff_bufs *d, int what,
                  const dsc_snapshot *a, uint64_t i, const dsc_snapshot *b,
                  uint64_t j)
{
    if (!cb)
        return 0;
    char *ua = d->ua, *ub = d->ub;
    char ea[DSC_SNAP_ETAG_MAX], eb[DSC_SNAP_ETAG_MAX];
    dsc_snap_rec ra, rb;
    dsc_object_info oa, ob;
    if (a)
        info_of(a, i, &ra, ua, sizeof d->ua, ea, &oa);
    if (b)
        info_of(b, j, &rb, ub, sizeof d->ub, eb, &ob);
    return cb(arg, what, a ? &oa : NULL, b ? &ob : NULL)
               ? dsc_fail(DSC_ECANCELED, "snapshot diff stopped by its callback")
               : 0;
}

int dsc_snapshot_diff_each(const dsc_snapshot *a, const dsc_snapshot *b,
                           dsc_snapshot_diff_cb cb, void *arg,
                           dsc_snapshot_delta *out)
{
    dsc_clear_error();
    if (!a || !b || !out)
        return dsc_fail(DSC_EINVAL, "dsc_snapshot_diff: NULL argument");
    memset(out, 0, sizeof *out);
    if (strcmp(a->v.head.origin, b->v.head.origin) ||
        strcmp(a->v.head.bucket, b->v.head.bucket))
        return dsc_fail(DSC_EINVAL, "cannot compare snapshots of different "
                        "endpoints or buckets: %s listed from %s, %s from %s",
                        a->url, a->v.head.origin, b->url, b->v.head.origin);
    uint64_t i = 0, j = 0;
    int rc = 0;
    diff_bufs *d = cb ? malloc(sizeof *d) : NULL;
    if (cb && !d)
        return DSC_ENOMEM;
    /* Both are sorted by key: one merge walk. */
    while (!rc && (i < a->v.n || j < b->v.n)) {
        dsc_snap_rec ra, rb;
        int c;
        if (i == a->v.n)
            c = 1;
        else if (j == b->v.n)
            c = -1;
        else {
            dsc_snap_get(&a->v, i, &ra);
            dsc_snap_get(&b->v, j, &rb);
            c = dsc_snap_keycmp(ra.key, ra.key_len, rb.key, rb.key_len);
        }
        if (c < 0) {
            out->deleted++;
            rc = report(cb, arg, d, DSC_DIFF_DELETED, a, i++, NULL, 0);
        } else if (c > 0) {
            out->added++;
            rc = report(cb, arg, d, DSC_DIFF_ADDED, NULL, 0, b, j++);
        } else if (ra.size != rb.size || !dsc_snap_etag_eq(&ra, &rb)) {
            out->changed++;
            rc = report(cb, arg, d, DSC_DIFF_CHANGED, a, i++, b, j++);
        } else {
            out->same++;
            i++;
            j++;
        }
    }
    free(d);
    return rc;
}

int dsc_snapshot_diff(const dsc_snapshot *a, const dsc_snapshot *b,
                      dsc_snapshot_delta *out)
{
    return dsc_snapshot_diff_each(a, b, NULL, NULL, out);
}

/* ---- A context using one ------------------------------------------------ */

static int remake_snap_lock(void *arg)
{
    dsc_ctx *ctx = arg;
    /* A parent thread may have held it; that thread is not here. */
    pthread_mutex_init(&ctx->snap_lock, NULL);
    return 0;
}

/* The context's snapshot with a reference taken, or NULL. */
static dsc_snapshot *snap_hold(dsc_ctx *ctx)
{
    if (!dsc_atomic_get(&ctx->snap))
        return NULL;
    if (dsc_fork_ensure(&ctx->snap_gen, remake_snap_lock, ctx))
        return NULL;
    pthread_mutex_lock(&ctx->snap_lock);
    dsc_snapshot *s = ctx->snap;
    if (s)
        dsc_ref_get(&s->refs);
    pthread_mutex_unlock(&ctx->snap_lock);
    return s;
}

int dsc_ctx_pinned(dsc_ctx *ctx, const char *bucket, const char *key,
                   uint64_t *size, char **etag)
{
    dsc_snapshot *s = snap_hold(ctx);
    if (!s)
        return DSC_ABSENT;
    int rc = DSC_ABSENT;
    if (strcmp(bucket, s->v.head.bucket) == 0 &&
        strncmp(key, s->v.head.prefix, s->prefix_len) == 0) {
        int64_t i = dsc_snap_find(&s->v, key, strlen(key));
        if (i < 0) {
            char q[200];
            rc = dsc_fail(DSC_ENOTFOUND, "s3://%s/%s: not in the snapshot of "
                          "%s (a key under its prefix that it does not list)",
                          bucket, dsc_printable(key, q, sizeof q), s->url);
        } else {
            dsc_snap_rec r;
            char buf[DSC_SNAP_ETAG_MAX];
            dsc_snap_get(&s->v, (uint64_t)i, &r);
            *size = r.size;
            *etag = dsc_strdup(dsc_snap_etag(&r, buf));
            rc = *etag ? 0 : DSC_ENOMEM;
        }
    }
    dsc_snapshot_free(s);
    return rc;
}

int dsc_ctx_version_of(void *arg, const char *bucket, const char *key,
                       const char *etag, char *vid)
{
    dsc_snapshot *s = snap_hold(arg);
    if (!s)
        return DSC_ABSENT;
    int rc = DSC_ABSENT;
    int64_t i;
    if (s->v.head.flags & DSC_SNAP_F_VERSIONS &&
        strcmp(bucket, s->v.head.bucket) == 0 &&
        (i = dsc_snap_find(&s->v, key, strlen(key))) >= 0) {
        dsc_snap_rec r;
        char buf[DSC_SNAP_ETAG_MAX];
        dsc_snap_get(&s->v, (uint64_t)i, &r);
        if (r.version_id && strcmp(dsc_snap_etag(&r, buf), etag) == 0) {
            memcpy(vid, r.version_id, r.version_id_len + 1);
            rc = 0;
        }
    }
    dsc_snapshot_free(s);
    return rc;
}

int dsc_ctx_use_snapshot(dsc_ctx *ctx, const dsc_snapshot *cs)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_ctx_use_snapshot: ctx is NULL");
    /* Shared, not copied: the reference count is not the snapshot's value. */
    dsc_snapshot *s = (dsc_snapshot *)cs;
    if (s) {
        const char *origin = ctx_origin(ctx);
        if (!origin)
            return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
        if (strcmp(origin, s->v.head.origin))
            return dsc_fail(DSC_EINVAL, "snapshot of %s was listed from %s; "
                            "this context reads %s (another endpoint may have "
                            "a bucket of the same name)", s->url,
                            s->v.head.origin, origin);
    }
    if (dsc_fork_ensure(&ctx->snap_gen, remake_snap_lock, ctx))
        return DSC_ENOMEM;
    if (s)
        dsc_ref_get(&s->refs);
    pthread_mutex_lock(&ctx->snap_lock);
    dsc_snapshot *old = ctx->snap;
    dsc_atomic_set(&ctx->snap, s);
    pthread_mutex_unlock(&ctx->snap_lock);
    dsc_snapshot_free(old);
    return 0;
}

int dsc_ctx_open_snapshot(dsc_ctx *ctx, const char *src)
{
    if (!src || !*src)
        return 0;
    dsc_snapshot *s;
    int rc = dsc_snapshot_load(ctx, src, &s);
    if (!rc)
        rc = dsc_ctx_use_snapshot(ctx, s);
    dsc_snapshot_free(s);
    return rc;
}

void dsc_ctx_drop_snapshot(dsc_ctx *ctx)
{
    dsc_snapshot_free(ctx->snap);
    ctx->snap = NULL;
    if (dsc_fork_current(&ctx->snap_gen))
        pthread_mutex_destroy(&ctx->snap_lock);
}
