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
#include "cache/meta.h"
#include "core/log.h"
#include "fetch/internal.h"

/* This process's S3 client (the context re-makes it after fork()). */
dsc_s3 *dsc_pf_s3(dsc_pf *pf)
{
    return pf->env.s3(pf->env.s3_arg);
}

void dsc_pf_push(dsc_pf_queue *q, dsc_pf_task *t)
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

void dsc_pf_unlink(dsc_pf_queue *q, dsc_pf_task *t)
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
    if (r && dsc_ref_put(&r->refs)) {
        free(r->bucket);
        free(r->key);
        free(r->etag);
        free(r);
    }
}

void dsc_pf_free_task(dsc_pf_task *t)
{
    obj_put(t->obj);
    free(t->bucket);
    free(t->key);
    free(t);
}

static void run_chunk(dsc_pf *pf, dsc_pf_task *t)
{
    dsc_s3 *s3 = dsc_pf_s3(pf);
    dsc_objref o = { t->obj->bucket, t->obj->key, t->obj->etag, t->obj->size };
    int fetched = 0, rc;
    if (!s3)
        rc = DSC_ENOMEM;
    else if (t->dst)
        rc = dsc_cache_read_chunk(pf->env.cache, s3, &o, t->index, t->dst,
                                  t->doff, t->dlen, NULL);
    else
        rc = dsc_cache_ensure_chunk(pf->env.cache, s3, &o, t->index, &fetched);
    if (t->grp) {
        pthread_mutex_lock(&t->grp->mu);
        if (rc && !t->grp->err) {
            t->grp->err = rc;
            dsc_err_save(&t->grp->detail);
        }
        if (fetched) {
            uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
            uint64_t start = t->index * cs;
            t->grp->fetched_bytes += (int64_t)(o.size - start < cs ? o.size - start : cs);
        }
        t->grp->pending--;
        pthread_cond_broadcast(&t->grp->cv);
        pthread_mutex_unlock(&t->grp->mu);
    } else if (rc) {
        dsc_counter_add(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "prefetch s3://%s/%s chunk %llu: %s",
                o.bucket, o.key, (unsigned long long)t->index, dsc_errmsg());
    } else {
        dsc_counter_add(&pf->n.done, 1);
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
            dsc_counter_add(&pf->n.dropped, last - i + 1);
            rc = dsc_fail(DSC_EAGAIN, "prefetch queue full (%zu tasks); %llu "
                          "chunks not queued", pf->bg_cap,
                          (unsigned long long)(last - i + 1));
            break;
        }
        dsc_pf_task *t = calloc(1, sizeof *t);
        if (!t) {
            rc = DSC_ENOMEM;
            break;
        }
        t->kind = DSC_PF_CHUNK;
        t->obj = r;
        dsc_ref_get(&r->refs);
        t->index = i;
        t->owner = owner;
        dsc_pf_push(&pf->bg, t);
        pf->bg_outstanding++;
        (*queued)++;
        dsc_counter_add(&pf->n.queued, 1);
    }
    pthread_cond_broadcast(&pf->work);
    return rc;
}

static int first_chunk_cached(dsc_cache *cache, const char *bucket,
                              const char *key)
{
    uint64_t size;
    char *etag;
    if (dsc_meta_known(cache, bucket, key, &size, &etag))
        return 0;
    dsc_objref o = { bucket, key, etag, size };
    int cached = size > 0 && dsc_cache_contains(cache, &o, 0);
    free(etag);
    return cached;
}

int dsc_pf_stat_known(dsc_pf *pf, const char *bucket, const char *key,
                      uint64_t *size, char **etag)
{
    int rc = pf->env.pinned ? pf->env.pinned(pf->env.pinned_arg, bucket, key,
                                             size, etag)
                            : DSC_ABSENT;
    return rc != DSC_ABSENT ? rc
                            : dsc_meta_cached(pf->env.cache, bucket, key, size,
                                              etag);
}

int dsc_pf_first_get_ok(dsc_pf *pf, const char *bucket, const char *key)
{
    /* With peers, chunk 0 may be another node's to fetch; its id needs
     * the ETag first. Metadata past its TTL whose object's first chunk is
     * cached is checked with a HEAD, which moves no body bytes: a GET
     * would fetch that chunk again, changed or not. */
    return !pf->env.peers && !first_chunk_cached(pf->env.cache, bucket, key);
}

int dsc_pf_first_got(dsc_pf *pf, dsc_s3 *s3, const char *bucket,
                     const char *key, int locked, int rc, const void *buf,
                     size_t len, uint64_t *size, char **etag)
{
    dsc_cache *cache = pf->env.cache;
    if (!rc) {
        dsc_meta_remember(cache, bucket, key, *size, *etag);
        dsc_objref o = { bucket, key, *etag, *size };
        dsc_cache_put_chunk(cache, &o, 0, buf, len);
    }
    /* Stored before the lock goes, so a waiting reader finds it. */
    if (locked)
        dsc_cache_first_unlock(cache, bucket, key);
    if (rc == DSC_EMPTY_RANGE || rc == DSC_EPROTO) {
        /* Empty, or a server that does not do ranges this way: HEAD. */
        return dsc_meta_stat(cache, s3, bucket, key, size, etag);
    }
    return rc;
}

/* Size and ETag of an object to prefetch. Unless its metadata is cached,
 * the first chunk is fetched right away with a range GET whose answer
 * carries size and ETag: one request instead of a HEAD and a GET, which
 * for small objects halves the cost. *got_first: that chunk came (and is
 * stored). */
int dsc_pf_stat(dsc_pf *pf, const char *bucket, const char *key,
                uint64_t *size, char **etag, int *got_first)
{
    dsc_cache *cache = pf->env.cache;
    size_t first_len = 0;
    *got_first = 0;
    int rc = dsc_pf_stat_known(pf, bucket, key, size, etag);
    if (rc != DSC_ABSENT)
        return rc;
    dsc_s3 *s3 = dsc_pf_s3(pf);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    if (!dsc_pf_first_get_ok(pf, bucket, key))
        return dsc_meta_head(cache, s3, bucket, key, size, etag);
    size_t cs = dsc_cache_chunk_size(cache);
    void *buf = dsc_bigbuf_alloc(cs);
    if (!buf)
        return DSC_ENOMEM;
    int locked = dsc_cache_first_lock(cache, bucket, key) == 0;
    if (locked && dsc_meta_cached(cache, bucket, key, size, etag) == 0) {
        /* A reader may have opened (HEAD) and fetched chunk 0 while we
         * waited for the lock: then its metadata is cached and chunk 0
         * is a hit. */
        dsc_cache_first_unlock(cache, bucket, key);
        rc = 0;
    } else {
        /* Unlocked (the wait timed out): a duplicate GET beats a hang. */
        rc = dsc_s3_get_first(s3, bucket, key, cs, buf, size, etag, &first_len);
        int got = rc == 0;
        rc = dsc_pf_first_got(pf, s3, bucket, key, locked, rc, buf,
                              first_len, size, etag);
        *got_first = got && !rc;
    }
    dsc_bigbuf_free(buf, cs);
    return rc;
}

/* Queue the chunks from..last of an object whose size and ETag are known,
 * for t's owner. */
void dsc_pf_url_chunks(dsc_pf *pf, const dsc_pf_task *t, uint64_t size,
                       const char *etag, uint64_t from)
{
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    if (size <= from * cs)
        return;
    dsc_objref o = { t->bucket, t->key, etag, size };
    obj_ref *r = obj_new(&o);
    if (r) {
        int queued;
        pthread_mutex_lock(&pf->mu);
        queue_chunks_locked(pf, r, from, (size - 1) / cs, t->owner, &queued);
        pthread_mutex_unlock(&pf->mu);
        obj_put(r);
    }
}

static void run_url(dsc_pf *pf, dsc_pf_task *t)
{
    uint64_t size;
    char *etag = NULL;
    int got_first;
    int rc = dsc_pf_stat(pf, t->bucket, t->key, &size, &etag, &got_first);
    if (rc) {
        dsc_counter_add(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "prefetch s3://%s/%s: %s", t->bucket, t->key,
                dsc_errmsg());
        return;
    }
    dsc_counter_add(&pf->n.done, 1);
    /* Chunk 0, if it came with the first GET, is stored already. */
    dsc_pf_url_chunks(pf, t, size, etag, got_first ? 1 : 0);
    free(etag);
}

/* Work for a fetcher, under mu: GETs the loop ended first (short, and
 * they let go of chunks foreground reads may be waiting for), then
 * foreground, then background work while a slot is free. */
static dsc_pf_task *next_task(dsc_pf *pf)
{
    dsc_pf_queue *q = pf->done.head ? &pf->done
                    : pf->fg.head ? &pf->fg
                    : pf->bg.head && pf->inflight < pf->aimd.limit ? &pf->bg
                    : NULL;
    dsc_pf_task *t = q ? q->head : NULL;
    if (t) {
        dsc_pf_unlink(q, t);
        if (q == &pf->bg)
            pf->inflight++;
    }
    return t;
}

/* A background task on this fetcher: on the loop if it can go there. */
static void run_background(dsc_pf *pf, dsc_pf_task *t)
{
    int how = dsc_pf_async_start(pf, t);
    if (how == DSC_PF_ON_LOOP)
        return;     /* its slot and count go when it is finished */
    if (how == DSC_PF_SYNC) {
        if (t->kind == DSC_PF_CHUNK)
            run_chunk(pf, t);
        else if (t->kind == DSC_PF_URL)
            run_url(pf, t);
        else if (t->kind == DSC_PF_CALL)
            t->call(t->call_arg, t->bucket, t->key);
        else
            dsc_pf_run_plan_item(pf, t);
    }
    dsc_pf_free_task(t);
    pthread_mutex_lock(&pf->mu);
    pf->inflight--;
    dsc_pf_async_note(pf, 0);
    if (--pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    pthread_mutex_unlock(&pf->mu);
}

static void *fetcher(void *arg)
{
    dsc_pf *pf = arg;
    dsc_thread_name("dsc-fetch");
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        dsc_pf_task *t = NULL;
        while (!pf->stop && !(t = next_task(pf))) {
            pf->waiting++;
            pthread_cond_wait(&pf->work, &pf->mu);
            pf->waiting--;
        }
        if (pf->stop)
            break;
        pthread_mutex_unlock(&pf->mu);
        if (t->grp)
            run_chunk(pf, t);       /* owned by the waiting caller */
        else if (t->async)
            dsc_pf_async_finish(pf, t);
        else
            run_background(pf, t);
        pthread_mutex_lock(&pf->mu);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

dsc_pf *dsc_pf_new(const dsc_pf_env *env)
{
    if (!env->cache || env->threads <= 0 || env->queue == 0)
        return NULL;
    dsc_pf *pf = calloc(1, sizeof *pf);
    if (!pf)
        return NULL;
    pf->env = *env;
    pf->nthreads = env->threads;
    pf->bg_cap = env->queue;
    pf->threads = calloc((size_t)pf->nthreads, sizeof *pf->threads);
    if (!pf->threads) {
        free(pf);
        return NULL;
    }
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->work, NULL);
    pthread_cond_init(&pf->idle, NULL);
    dsc_pf_async_init(pf, env->memory);
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
    dsc_pf_async_stop(pf);
    for (dsc_pf_task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->plan)
            dsc_pf_plan_unref(t->plan);
        dsc_pf_free_task(t);
    }
    if (pf->plan) {
        dsc_atomic_set(&pf->plan->stopped, 1);
        dsc_pf_plan_unref(pf->plan);   /* the pool's reference */
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

static int queue_named(dsc_pf *pf, dsc_pf_task *t, const char *bucket,
                       const char *key);

int dsc_pf_cached_whole(dsc_pf *pf, const char *bucket, const char *key)
{
    uint64_t size = 0;
    char *etag = NULL;
    int whole = dsc_pf_stat_known(pf, bucket, key, &size, &etag) == 0;
    dsc_objref obj = { bucket, key, etag, size };
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    for (uint64_t c = 0; whole && c * cs < size; c++)
        whole = dsc_cache_contains(pf->env.cache, &obj, c);
    free(etag);
    return whole;
}

int dsc_pf_url(dsc_pf *pf, const char *bucket, const char *key)
{
    dsc_pf_task *t = calloc(1, sizeof *t);
    if (!t)
        return DSC_ENOMEM;
    t->kind = DSC_PF_URL;
    int rc = queue_named(pf, t, bucket, key);
    if (!rc)
        dsc_counter_add(&pf->n.queued, 1);
    return rc;
}

int dsc_pf_call(dsc_pf *pf, dsc_pf_call_fn fn, void *arg, const char *bucket,
                const char *key)
{
    dsc_pf_task *t = calloc(1, sizeof *t);
    if (!t)
        return DSC_ENOMEM;
    t->kind = DSC_PF_CALL;
    t->call = fn;
    t->call_arg = arg;
    return queue_named(pf, t, bucket, key);
}

/* Queue t (a URL or a call) with copies of bucket and key; frees t when it
 * cannot. */
static int queue_named(dsc_pf *pf, dsc_pf_task *t, const char *bucket,
                       const char *key)
{
    t->bucket = dsc_strdup(bucket);
    t->key = dsc_strdup(key);
    if (!t->bucket || !t->key) {
        dsc_pf_free_task(t);
        return DSC_ENOMEM;
    }
    pthread_mutex_lock(&pf->mu);
    if (pf->bg.n >= pf->bg_cap) {
        pthread_mutex_unlock(&pf->mu);
        dsc_pf_free_task(t);
        dsc_counter_add(&pf->n.dropped, 1);
        return dsc_fail(DSC_EAGAIN, "prefetch queue full (%zu tasks)",
                        pf->bg_cap);
    }
    dsc_pf_push(&pf->bg, t);
    pf->bg_outstanding++;
    pthread_cond_signal(&pf->work);
    pthread_mutex_unlock(&pf->mu);
    return 0;
}

int dsc_pf_wait(dsc_pf *pf, long timeout_ms)
{
    struct timespec dl = dsc_deadline(CLOCK_REALTIME, timeout_ms >= 0 ? timeout_ms : 0);
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
    for (dsc_pf_task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->owner == owner) {
            dsc_pf_unlink(&pf->bg, t);
            dsc_pf_free_task(t);
            pf->bg_outstanding--;
            dsc_counter_add(&pf->n.dropped, 1);
        }
    }
    if (pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    pthread_mutex_unlock(&pf->mu);
}

/* Run a foreground task list: queue all but the first, work through them
 * in the caller too, wait for those a fetcher took. */
static int run_group(dsc_pf *pf, dsc_pf_task *ts, size_t n, dsc_pf_group *g)
{
    g->pending = (int)n;
    pthread_mutex_lock(&pf->mu);
    for (size_t i = 1; i < n; i++)
        dsc_pf_push(&pf->fg, &ts[i]);
    pthread_cond_broadcast(&pf->work);
    pthread_mutex_unlock(&pf->mu);
    for (size_t i = 0; i < n; i++) {
        int mine = i == 0;
        if (!mine) {
            pthread_mutex_lock(&pf->mu);
            if (ts[i].queued) {
                dsc_pf_unlink(&pf->fg, &ts[i]);
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
                     uint64_t off, uint64_t len, dsc_pf_group *g)
{
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    uint64_t first = off / cs, last = (off + len - 1) / cs;
    size_t n = (size_t)(last - first + 1);
    dsc_pf_task *ts = calloc(n, sizeof *ts);
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
        ts[i].kind = DSC_PF_CHUNK;
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
    dsc_pf_group g = { .err = 0 };
    return fg_chunks(pf, obj, buf, off, len, &g);
}

int64_t dsc_pf_warm(dsc_pf *pf, const dsc_objref *obj, uint64_t off,
                    uint64_t len)
{
    if (len == 0)
        return 0;
    dsc_pf_group g = { .err = 0 };
    int rc = fg_chunks(pf, obj, NULL, off, len, &g);
    return rc ? rc : g.fetched_bytes;
}

void dsc_pf_counters_get(dsc_pf *pf, dsc_pf_counters *out)
{
    out->queued = dsc_counter_get(&pf->n.queued);
    out->done = dsc_counter_get(&pf->n.done);
    out->errors = dsc_counter_get(&pf->n.errors);
    out->dropped = dsc_counter_get(&pf->n.dropped);
    out->readahead = dsc_counter_get(&pf->n.readahead);
    out->throttled = dsc_counter_get(&pf->n.throttled);
    out->busy = dsc_counter_get(&pf->n.busy);
    out->on_loop = dsc_counter_get(&pf->n.on_loop);
    pthread_mutex_lock(&pf->mu);
    out->limit = pf->aimd.limit;
    out->peak = pf->aimd.peak;
    pthread_mutex_unlock(&pf->mu);
}

void dsc_pf_count_readahead(dsc_pf *pf, uint64_t n)
{
    dsc_counter_add(&pf->n.readahead, n);
}
