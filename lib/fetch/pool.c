/* The fetcher pool.
 *
 * Two queues: foreground tasks (the chunks of one multi-chunk dsc_pread or
 * dsc_warm; the calling thread works through them too and takes back any
 * no fetcher has started, so a read never waits behind background work)
 * and background tasks (prefetch, readahead, plan items), FIFO. Fetchers
 * always take foreground work first. Memory is bounded: a fetcher holds
 * at most one chunk buffer, and the background queue has a fixed size. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api/context.h"
#include "core/fork.h"
#include "core/log.h"
#include "fetch/pool.h"

enum { K_CHUNK, K_URL, K_PLAN_ITEM };

typedef struct obj_ref {
    char *bucket, *key, *etag;
    uint64_t size;
    int refs;                       /* atomic */
} obj_ref;

typedef struct group {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int err;
    dsc_errsave detail;             /* of err: it may come from a fetcher */
    int64_t fetched_bytes;
} group;

typedef struct task {
    struct task *prev, *next;
    int kind;
    obj_ref *obj;                   /* K_CHUNK */
    uint64_t index;
    char *bucket, *key;             /* K_URL */
    dsc_plan_state *plan;           /* K_PLAN_ITEM */
    size_t item;
    const void *owner;
    group *grp;                     /* foreground */
    void *dst;
    size_t doff, dlen;
    int queued;                     /* still in a queue */
} task;

typedef struct queue {
    task *head, *tail;
    size_t n;
} queue;

struct dsc_plan_state {
    dsc_pf *pf;
    size_t n;
    char **bucket, **key;
    uint64_t *off, *len, *bytes;    /* bytes: counted toward the window */
    size_t cursor;                  /* items the reader has reached */
    size_t next;                    /* next item to queue */
    uint64_t ahead;                 /* queued-but-unread bytes */
    uint64_t window;
    int stopped;
    int refs;                       /* user + running tasks; under pf->mu */
};

struct dsc_pf {
    dsc_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    queue fg, bg;
    size_t bg_cap;
    int bg_outstanding;             /* queued + running background tasks */
    int nthreads, stop;
    pthread_t *threads;
    dsc_plan_state *plan;           /* the active plan */
    dsc_pf_counters n;              /* __atomic */
};

static void bump(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static void push(queue *q, task *t)
{
    t->prev = q->tail;
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->n++;
    t->queued = 1;
}

static void unlink_task(queue *q, task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        q->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        q->tail = t->prev;
    q->n--;
    t->queued = 0;
}

static obj_ref *obj_new(const dsc_objref *o)
{
    obj_ref *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->bucket = dsc_strdup(o->bucket);
    r->key = dsc_strdup(o->key);
    r->etag = dsc_strdup(o->etag);
    r->size = o->size;
    r->refs = 1;
    if (!r->bucket || !r->key || !r->etag) {
        free(r->bucket);
        free(r->key);
        free(r->etag);
        free(r);
        return NULL;
    }
    return r;
}

static void obj_put(obj_ref *r)
{
    if (r && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(r->bucket);
        free(r->key);
        free(r->etag);
        free(r);
    }
}

static void plan_free(dsc_plan_state *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->bucket[i]);
        free(ps->key[i]);
    }
    free(ps->bucket);
    free(ps->key);
    free(ps->off);
    free(ps->len);
    free(ps->bytes);
    free(ps);
}

/* Under pf->mu. */
static void plan_unref(dsc_plan_state *ps)
{
    if (--ps->refs == 0)
        plan_free(ps);
}

static void free_task(task *t)
{
    obj_put(t->obj);
    free(t->bucket);
    free(t->key);
    free(t);
}

static void plan_top_up(dsc_pf *pf, dsc_plan_state *ps);

static void run_chunk(dsc_pf *pf, task *t)
{
    dsc_ctx *ctx = pf->ctx;
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    dsc_objref o = { t->obj->bucket, t->obj->key, t->obj->etag, t->obj->size };
    int fetched = 0, rc;
    if (!s3)
        rc = DSC_ENOMEM;
    else if (t->dst)
        rc = dsc_cache_read_chunk(ctx->cache, s3, &o, t->index, t->dst,
                                  t->doff, t->dlen, NULL);
    else
        rc = dsc_cache_ensure_chunk(ctx->cache, s3, &o, t->index, &fetched);
    if (t->grp) {
        pthread_mutex_lock(&t->grp->mu);
        if (rc && !t->grp->err) {
            t->grp->err = rc;
            dsc_err_save(&t->grp->detail);
        }
        if (fetched) {
            uint64_t cs = dsc_cache_chunk_size(ctx->cache);
            uint64_t start = t->index * cs;
            t->grp->fetched_bytes += (int64_t)(o.size - start < cs ? o.size - start : cs);
        }
        t->grp->pending--;
        pthread_cond_broadcast(&t->grp->cv);
        pthread_mutex_unlock(&t->grp->mu);
    } else if (rc) {
        bump(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "prefetch s3://%s/%s chunk %llu: %s",
                o.bucket, o.key, (unsigned long long)t->index, dsc_errmsg());
    } else {
        bump(&pf->n.done, 1);
    }
}

/* Queue chunks of a known object; caller holds pf->mu. Returns 0, or
 * DSC_EAGAIN when the queue filled before all were queued; *queued says
 * how many were. */
static int queue_chunks_locked(dsc_pf *pf, obj_ref *r, uint64_t first,
                               uint64_t last, const void *owner, int *queued)
{
    int rc = 0;
    *queued = 0;
    for (uint64_t i = first; i <= last; i++) {
        if (pf->bg.n >= pf->bg_cap) {
            bump(&pf->n.dropped, last - i + 1);
            rc = dsc_fail(DSC_EAGAIN, "prefetch queue full (%zu tasks); %llu "
                          "chunks not queued", pf->bg_cap,
                          (unsigned long long)(last - i + 1));
            break;
        }
        task *t = calloc(1, sizeof *t);
        if (!t) {
            rc = DSC_ENOMEM;
            break;
        }
        t->kind = K_CHUNK;
        t->obj = r;
        __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
        t->index = i;
        t->owner = owner;
        push(&pf->bg, t);
        pf->bg_outstanding++;
        (*queued)++;
        bump(&pf->n.queued, 1);
    }
    pthread_cond_broadcast(&pf->work);
    return rc;
}

/* Size and ETag of an object to prefetch. Unless its metadata is cached,
 * the first chunk is fetched right away with a range GET whose answer
 * carries size and ETag: one request instead of a HEAD and a GET, which
 * for small objects halves the cost. *first holds that chunk (if any). */
static int stat_for_prefetch(dsc_pf *pf, const char *bucket, const char *key,
                             uint64_t *size, char **etag, void **first,
                             size_t *first_len)
{
    dsc_ctx *ctx = pf->ctx;
    *first = NULL;
    *first_len = 0;
    int rc = dsc_object_meta_cached(ctx, bucket, key, size, etag);
    if (rc <= 0)
        return rc;
    /* With peers, chunk 0 may be another node's to fetch; its id needs
     * the ETag first. */
    if (ctx->peers)
        return dsc_object_stat(ctx, bucket, key, size, etag);
    dsc_index *ix = dsc_ctx_meta_index(ctx);
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    size_t cs = dsc_cache_chunk_size(ctx->cache);
    void *buf = s3 ? malloc(cs) : NULL;
    if (!buf)
        return DSC_ENOMEM;
    int lock = dsc_cache_first_lock(ctx->cache, bucket, key);
    /* A reader may have opened (HEAD) and fetched chunk 0 while we waited
     * for the lock: then its metadata is cached and chunk 0 is a hit. */
    if (lock >= 0 && dsc_object_meta_cached(ctx, bucket, key, size, etag) == 0) {
        dsc_cache_first_unlock(ctx->cache, lock);
        free(buf);
        return 0;
    }
    rc = dsc_s3_get_first(s3, bucket, key, cs, buf, size, etag, first_len);
    if (!rc) {
        if (ix && strlen(*etag) < 256)
            dsc_index_meta_put(ix, bucket, key, *size, *etag, dsc_wall_ms());
        /* Stored before the lock goes, so a waiting reader finds it. */
        dsc_objref o = { bucket, key, *etag, *size };
        dsc_cache_put_chunk(ctx->cache, &o, 0, buf, *first_len);
        *first = buf;
    }
    if (lock >= 0)
        dsc_cache_first_unlock(ctx->cache, lock);
    if (rc == DSC_E_EMPTY_RANGE || rc == DSC_EPROTO) {
        /* Empty, or a server that does not do ranges this way: HEAD. */
        free(buf);
        return dsc_object_stat(ctx, bucket, key, size, etag);
    }
    if (rc)
        free(buf);
    return rc;
}

static void run_url(dsc_pf *pf, task *t)
{
    uint64_t size;
    char *etag = NULL;
    void *first;
    size_t first_len;
    int rc = stat_for_prefetch(pf, t->bucket, t->key, &size, &etag, &first,
                               &first_len);
    if (rc) {
        bump(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "prefetch s3://%s/%s: %s", t->bucket, t->key,
                dsc_errmsg());
        return;
    }
    bump(&pf->n.done, 1);
    dsc_objref o = { t->bucket, t->key, etag, size };
    uint64_t cs = dsc_cache_chunk_size(pf->ctx->cache);
    uint64_t from = 0;
    if (first) {
        free(first);   /* chunk 0: stored by stat_for_prefetch */
        from = 1;
    }
    if (size > from * cs) {
        obj_ref *r = obj_new(&o);
        if (r) {
            int queued;
            pthread_mutex_lock(&pf->mu);
            queue_chunks_locked(pf, r, from, (size - 1) / cs, t->owner, &queued);
            pthread_mutex_unlock(&pf->mu);
            obj_put(r);
        }
    }
    free(etag);
}

static void run_plan_item(dsc_pf *pf, task *t)
{
    dsc_plan_state *ps = t->plan;
    size_t i = t->item;
    uint64_t size;
    char *etag = NULL;
    void *first;
    size_t first_len;
    int rc = stat_for_prefetch(pf, ps->bucket[i], ps->key[i], &size, &etag,
                               &first, &first_len);
    free(first);   /* chunk 0, if fetched, is stored already */
    uint64_t off = ps->off[i];
    uint64_t end = size;
    if (!rc && ps->len[i] && off + ps->len[i] < size)
        end = off + ps->len[i];
    if (!rc) {
        /* Now the item's true size is known: correct the window. */
        uint64_t bytes = end > off ? end - off : 0;
        pthread_mutex_lock(&pf->mu);
        if (i >= ps->cursor)
            ps->ahead = ps->ahead - ps->bytes[i] + bytes;
        ps->bytes[i] = bytes;
        pthread_mutex_unlock(&pf->mu);
        dsc_s3 *s3 = dsc_ctx_s3(pf->ctx);
        dsc_objref o = { ps->bucket[i], ps->key[i], etag, size };
        uint64_t cs = dsc_cache_chunk_size(pf->ctx->cache);
        for (uint64_t c = off / cs; !rc && off < end && c <= (end - 1) / cs; c++) {
            int fetched;
            if (__atomic_load_n(&ps->stopped, __ATOMIC_RELAXED))
                break;
            rc = s3 ? dsc_cache_ensure_chunk(pf->ctx->cache, s3, &o, c, &fetched)
                    : DSC_ENOMEM;
        }
    }
    free(etag);
    if (rc) {
        bump(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "plan item %zu s3://%s/%s: %s", i,
                ps->bucket[i], ps->key[i], dsc_errmsg());
    } else {
        bump(&pf->n.done, 1);
    }
    pthread_mutex_lock(&pf->mu);
    plan_top_up(pf, ps);
    plan_unref(ps);
    pthread_mutex_unlock(&pf->mu);
}

static void *fetcher(void *arg)
{
    dsc_pf *pf = arg;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->stop && !pf->fg.head && !pf->bg.head)
            pthread_cond_wait(&pf->work, &pf->mu);
        if (pf->stop)
            break;
        task *t = pf->fg.head ? pf->fg.head : pf->bg.head;
        unlink_task(t == pf->fg.head ? &pf->fg : &pf->bg, t);
        pthread_mutex_unlock(&pf->mu);
        if (t->grp) {
            run_chunk(pf, t);       /* owned by the waiting caller */
            pthread_mutex_lock(&pf->mu);
            continue;
        }
        if (t->kind == K_CHUNK)
            run_chunk(pf, t);
        else if (t->kind == K_URL)
            run_url(pf, t);
        else
            run_plan_item(pf, t);
        free_task(t);
        pthread_mutex_lock(&pf->mu);
        if (--pf->bg_outstanding == 0)
            pthread_cond_broadcast(&pf->idle);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

static dsc_pf *pf_new(dsc_ctx *ctx)
{
    dsc_pf *pf = calloc(1, sizeof *pf);
    if (!pf)
        return NULL;
    pf->ctx = ctx;
    pf->nthreads = ctx->cfg.prefetch_threads;
    pf->bg_cap = (size_t)ctx->cfg.prefetch_queue;
    pf->threads = calloc((size_t)pf->nthreads, sizeof *pf->threads);
    if (!pf->threads) {
        free(pf);
        return NULL;
    }
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->work, NULL);
    pthread_cond_init(&pf->idle, NULL);
    int started = 0;
    for (; started < pf->nthreads; started++)
        if (pthread_create(&pf->threads[started], NULL, fetcher, pf))
            break;
    pf->nthreads = started;
    if (started == 0) {
        dsc_pf_free(pf);
        return NULL;
    }
    return pf;
}

dsc_pf *dsc_ctx_pf(dsc_ctx *ctx)
{
    if (!ctx->cache || ctx->cfg.prefetch_threads <= 0)
        return NULL;
    unsigned gen = dsc_fork_generation();
    dsc_pf *pf = __atomic_load_n(&ctx->pf, __ATOMIC_ACQUIRE);
    if (pf && __atomic_load_n(&ctx->pf_gen, __ATOMIC_ACQUIRE) == gen)
        return pf;
    dsc_fork_remake_lock();
    if (!ctx->pf || ctx->pf_gen != gen) {
        /* A parent's pool has no threads in a child: leave it be. */
        if (ctx->pf)
            dsc_fork_graveyard(ctx->pf);
        __atomic_store_n(&ctx->pf, pf_new(ctx), __ATOMIC_RELEASE);
        __atomic_store_n(&ctx->pf_gen, gen, __ATOMIC_RELEASE);
    }
    pf = ctx->pf;
    dsc_fork_remake_unlock();
    return pf;
}

void dsc_pf_free(dsc_pf *pf)
{
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_cond_broadcast(&pf->work);
    pthread_mutex_unlock(&pf->mu);
    for (int i = 0; i < pf->nthreads; i++)
        pthread_join(pf->threads[i], NULL);
    for (task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->plan)
            plan_unref(t->plan);
        free_task(t);
    }
    if (pf->plan) {
        pf->plan->stopped = 1;
        plan_unref(pf->plan);   /* the pool's reference */
    }
    pthread_cond_destroy(&pf->work);
    pthread_cond_destroy(&pf->idle);
    pthread_mutex_destroy(&pf->mu);
    free(pf->threads);
    free(pf);
}

int dsc_pf_chunks(dsc_pf *pf, const dsc_objref *obj, uint64_t first,
                  uint64_t last, const void *owner, int *queued)
{
    obj_ref *r = obj_new(obj);
    *queued = 0;
    if (!r)
        return DSC_ENOMEM;
    pthread_mutex_lock(&pf->mu);
    int rc = queue_chunks_locked(pf, r, first, last, owner, queued);
    pthread_mutex_unlock(&pf->mu);
    obj_put(r);
    return rc;
}

int dsc_pf_url(dsc_pf *pf, const char *bucket, const char *key)
{
    task *t = calloc(1, sizeof *t);
    if (!t)
        return DSC_ENOMEM;
    t->kind = K_URL;
    t->bucket = dsc_strdup(bucket);
    t->key = dsc_strdup(key);
    if (!t->bucket || !t->key) {
        free_task(t);
        return DSC_ENOMEM;
    }
    pthread_mutex_lock(&pf->mu);
    if (pf->bg.n >= pf->bg_cap) {
        pthread_mutex_unlock(&pf->mu);
        free_task(t);
        bump(&pf->n.dropped, 1);
        return dsc_fail(DSC_EAGAIN, "prefetch queue full (%zu tasks)",
                        pf->bg_cap);
    }
    push(&pf->bg, t);
    pf->bg_outstanding++;
    bump(&pf->n.queued, 1);
    pthread_cond_signal(&pf->work);
    pthread_mutex_unlock(&pf->mu);
    return 0;
}

int dsc_pf_wait(dsc_pf *pf, long timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    int rc = 0;
    pthread_mutex_lock(&pf->mu);
    while (pf->bg_outstanding > 0 && !rc) {
        if (timeout_ms < 0)
            pthread_cond_wait(&pf->idle, &pf->mu);
        else if (pthread_cond_timedwait(&pf->idle, &pf->mu, &dl))
            rc = dsc_fail(DSC_ETIMEDOUT, "prefetch still has %d tasks "
                          "after %ld ms", pf->bg_outstanding, timeout_ms);
    }
    pthread_mutex_unlock(&pf->mu);
    return rc;
}

void dsc_pf_cancel_owner(dsc_pf *pf, const void *owner)
{
    pthread_mutex_lock(&pf->mu);
    for (task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->owner == owner) {
            unlink_task(&pf->bg, t);
            free_task(t);
            pf->bg_outstanding--;
            bump(&pf->n.dropped, 1);
        }
    }
    if (pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    pthread_mutex_unlock(&pf->mu);
}

/* Run a foreground task list: queue all but the first, work through them
 * in the caller too, wait for those a fetcher took. */
static int run_group(dsc_pf *pf, task *ts, size_t n, group *g)
{
    g->pending = (int)n;
    pthread_mutex_lock(&pf->mu);
    for (size_t i = 1; i < n; i++)
        push(&pf->fg, &ts[i]);
    pthread_cond_broadcast(&pf->work);
    pthread_mutex_unlock(&pf->mu);
    for (size_t i = 0; i < n; i++) {
        int mine = i == 0;
        if (!mine) {
            pthread_mutex_lock(&pf->mu);
            if (ts[i].queued) {
                unlink_task(&pf->fg, &ts[i]);
                mine = 1;
            }
            pthread_mutex_unlock(&pf->mu);
        }
        if (mine)
            run_chunk(pf, &ts[i]);
    }
    pthread_mutex_lock(&g->mu);
    while (g->pending > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (g->err)
        dsc_err_restore(&g->detail);   /* the detail of the code we return */
    return g->err;
}

static int fg_chunks(dsc_pf *pf, const dsc_objref *obj, void *buf,
                     uint64_t off, uint64_t len, group *g)
{
    uint64_t cs = dsc_cache_chunk_size(pf->ctx->cache);
    uint64_t first = off / cs, last = (off + len - 1) / cs;
    size_t n = (size_t)(last - first + 1);
    task *ts = calloc(n, sizeof *ts);
    obj_ref *r = obj_new(obj);
    if (!ts || !r) {
        free(ts);
        obj_put(r);
        return DSC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t c = first + i, cstart = c * cs;
        uint64_t a = off > cstart ? off : cstart;
        uint64_t cend = cstart + cs < obj->size ? cstart + cs : obj->size;
        uint64_t b = off + len < cend ? off + len : cend;
        ts[i].kind = K_CHUNK;
        ts[i].obj = r;
        ts[i].index = c;
        ts[i].grp = g;
        if (buf) {
            ts[i].dst = (char *)buf + (a - off);
            ts[i].doff = (size_t)(a - cstart);
            ts[i].dlen = (size_t)(b - a);
        }
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    int rc = run_group(pf, ts, n, g);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(ts);
    obj_put(r);
    return rc;
}

int dsc_pf_read(dsc_pf *pf, const dsc_objref *obj, void *buf, size_t len,
                uint64_t off)
{
    group g = { .err = 0 };
    return fg_chunks(pf, obj, buf, off, len, &g);
}

int64_t dsc_pf_warm(dsc_pf *pf, const dsc_objref *obj, uint64_t off,
                    uint64_t len)
{
    if (len == 0)
        return 0;
    group g = { .err = 0 };
    int rc = fg_chunks(pf, obj, NULL, off, len, &g);
    return rc ? rc : g.fetched_bytes;
}

void dsc_pf_counters_get(dsc_pf *pf, dsc_pf_counters *out)
{
    out->queued = __atomic_load_n(&pf->n.queued, __ATOMIC_RELAXED);
    out->done = __atomic_load_n(&pf->n.done, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&pf->n.errors, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&pf->n.dropped, __ATOMIC_RELAXED);
    out->readahead = __atomic_load_n(&pf->n.readahead, __ATOMIC_RELAXED);
}

void dsc_pf_count_readahead(dsc_pf *pf, uint64_t n)
{
    bump(&pf->n.readahead, n);
}

/* ---- plans ---- */

/* Queue items while the window has room; under pf->mu. */
static void plan_top_up(dsc_pf *pf, dsc_plan_state *ps)
{
    uint64_t cs = dsc_cache_chunk_size(pf->ctx->cache);
    while (!ps->stopped && ps->next < ps->n &&
           (ps->ahead < ps->window || ps->next <= ps->cursor)) {
        if (pf->bg.n >= pf->bg_cap)
            break;
        task *t = calloc(1, sizeof *t);
        if (!t)
            break;
        size_t i = ps->next++;
        /* Until its HEAD is in, an item counts as its range or a chunk. */
        ps->bytes[i] = ps->len[i] ? ps->len[i] : cs;
        if (i >= ps->cursor)
            ps->ahead += ps->bytes[i];
        t->kind = K_PLAN_ITEM;
        t->plan = ps;
        t->item = i;
        t->owner = ps;
        ps->refs++;
        push(&pf->bg, t);
        pf->bg_outstanding++;
        bump(&pf->n.queued, 1);
    }
    pthread_cond_broadcast(&pf->work);
}

int dsc_pf_plan_start(dsc_pf *pf, const dsc_plan_item *items, size_t n,
                      uint64_t window, dsc_plan_state **out)
{
    dsc_plan_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return DSC_ENOMEM;
    ps->pf = pf;
    ps->n = n;
    ps->window = window;
    ps->refs = 1;
    ps->bucket = calloc(n ? n : 1, sizeof *ps->bucket);
    ps->key = calloc(n ? n : 1, sizeof *ps->key);
    ps->off = calloc(n ? n : 1, sizeof *ps->off);
    ps->len = calloc(n ? n : 1, sizeof *ps->len);
    ps->bytes = calloc(n ? n : 1, sizeof *ps->bytes);
    if (!ps->bucket || !ps->key || !ps->off || !ps->len || !ps->bytes) {
        plan_free(ps);
        return DSC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        dsc_s3url u;
        int rc = dsc_s3url_parse(items[i].url, &u);
        if (rc == 0 && !*u.key) {
            dsc_s3url_free(&u);
            rc = dsc_fail(DSC_EURL, "plan item %zu names a bucket, not an "
                          "object", i);
        }
        if (rc) {
            char why[512];
            snprintf(why, sizeof why, "%s", dsc_errmsg());
            plan_free(ps);
            return dsc_fail(rc, "plan item %zu: %s", i, why);
        }
        ps->bucket[i] = u.bucket;
        ps->key[i] = u.key;
        ps->off[i] = items[i].off;
        ps->len[i] = items[i].len;
    }
    pthread_mutex_lock(&pf->mu);
    if (pf->plan) {
        /* One plan at a time: the new order replaces the old one. */
        dsc_plan_state *old = pf->plan;
        old->stopped = 1;
        for (task *t = pf->bg.head, *nx; t; t = nx) {
            nx = t->next;
            if (t->plan == old) {
                unlink_task(&pf->bg, t);
                plan_unref(old);
                free_task(t);
                pf->bg_outstanding--;
                bump(&pf->n.dropped, 1);
            }
        }
        plan_unref(old);
    }
    pf->plan = ps;
    ps->refs++;                 /* the pool's reference */
    plan_top_up(pf, ps);
    pthread_mutex_unlock(&pf->mu);
    *out = ps;
    return 0;
}

void dsc_pf_plan_stop(dsc_pf *pf, dsc_plan_state *ps)
{
    pthread_mutex_lock(&pf->mu);
    ps->stopped = 1;
    for (task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->plan == ps) {
            unlink_task(&pf->bg, t);
            plan_unref(ps);
            free_task(t);
            pf->bg_outstanding--;
            bump(&pf->n.dropped, 1);
        }
    }
    if (pf->plan == ps) {
        pf->plan = NULL;
        plan_unref(ps);
    }
    if (pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    plan_unref(ps);             /* the user's reference */
    pthread_mutex_unlock(&pf->mu);
}

size_t dsc_pf_plan_position(const dsc_plan_state *ps)
{
    return __atomic_load_n(&ps->cursor, __ATOMIC_RELAXED);
}

/* How far ahead of the reader's position we look for its current item:
 * dataloader workers read a little out of order. */
#define PLAN_MATCH_SPAN 256

void dsc_pf_plan_observe(dsc_pf *pf, const char *bucket, const char *key)
{
    if (!__atomic_load_n(&pf->plan, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&pf->mu);
    dsc_plan_state *ps = pf->plan;
    if (ps) {
        size_t end = ps->cursor + PLAN_MATCH_SPAN < ps->n
                         ? ps->cursor + PLAN_MATCH_SPAN : ps->n;
        for (size_t i = ps->cursor; i < end; i++) {
            if (strcmp(ps->key[i], key) || strcmp(ps->bucket[i], bucket))
                continue;
            /* The reader is at item i: everything before it is consumed. */
            for (size_t j = ps->cursor; j < i && j < ps->next; j++)
                ps->ahead -= ps->bytes[j] <= ps->ahead ? ps->bytes[j] : ps->ahead;
            __atomic_store_n(&ps->cursor, i, __ATOMIC_RELAXED);
            if (ps->next < i)
                ps->next = i;   /* passed before we queued them: skip */
            plan_top_up(pf, ps);
            break;
        }
    }
    pthread_mutex_unlock(&pf->mu);
}
