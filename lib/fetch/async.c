/* Background GETs on an event loop, within an adaptive limit.
 *
 * A fetcher that takes a background chunk (or an object's first GET)
 * claims it without waiting (dsc_cache_chunk_begin), starts the GET on the
 * pool's loop (s3/async.h) and goes back for more work: one loop thread
 * keeps many requests in flight. When the GET ends, the loop queues the
 * task on pf->done and an idle fetcher stores it (disk and index work
 * stays off the loop's thread unless no fetcher is idle). Peers, plans, readahead of chunks another node owns
 * and anything the loop cannot take run on the fetcher as before.
 *
 * How many background fetches are in flight is limited by aimd.limit:
 * it starts at LIMIT_START, doubles each window while the rate of ended
 * fetches keeps growing by a tenth and work waits for slots, then grows
 * by an eighth while it still grows; it is halved (at most once a window)
 * when the origin pushes back: 503 SlowDown/429, timeouts, no connection.
 * Its ceiling is the memory bound (env.memory / chunk size: each fetch in
 * flight holds at most one chunk buffer, when it cannot stream to its
 * file) and the connection pool's size. */
#include <stdlib.h>
#include "core/log.h"
#include "fetch/internal.h"

#define LIMIT_START 16
#define WINDOW_MS 200
#define WINDOW_MIN_DONE 8

void dsc_pf_async_init(dsc_pf *pf, size_t memory)
{
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    uint64_t by_memory = cs ? memory / cs : 1;
    int ceiling = by_memory > 4096 ? 4096 : (int)by_memory;
    if (pf->env.connections > 0 && ceiling > pf->env.connections)
        ceiling = pf->env.connections;
    /* Never below the fetcher threads: their blocking fetches always
     * had one buffer each. */
    if (ceiling < pf->nthreads)
        ceiling = pf->nthreads;
    dsc_pf_aimd *a = &pf->aimd;
    a->ceiling = ceiling;
    a->limit = LIMIT_START < ceiling ? LIMIT_START : ceiling;
    if (!pf->env.loop)
        a->limit = a->ceiling = pf->nthreads;   /* the fixed pool of old */
    a->peak = a->limit;
    a->growing = 1;
    a->win_start = dsc_now_ms();
}

void dsc_pf_async_note(dsc_pf *pf, int slowed)
{
    dsc_pf_aimd *a = &pf->aimd;
    int64_t now = dsc_now_ms();
    if (!pf->env.loop)
        return;
    if (slowed) {
        if (now - a->last_cut >= WINDOW_MS) {
            a->limit = a->limit / 2 > 1 ? a->limit / 2 : 1;
            a->growing = 0;
            a->last_cut = now;
            a->last_rate = 0;
            a->win_start = now;
            a->win_done = a->win_busy = 0;
            dsc_counter_add(&pf->n.throttled, 1);
        }
        return;
    }
    a->win_done++;
    if (pf->bg.head)
        a->win_busy++;
    int64_t spent = now - a->win_start;
    if (spent < WINDOW_MS || a->win_done < WINDOW_MIN_DONE)
        return;
    double rate = (double)a->win_done * 1000.0 / (double)spent;
    /* Only a window whose work waited for slots says what more slots
     * would do. */
    if (a->win_busy * 2 >= a->win_done) {
        if (rate > a->last_rate * 1.1) {
            int step = a->growing ? a->limit : (a->limit / 8 > 1 ? a->limit / 8 : 1);
            a->limit = a->limit + step < a->ceiling ? a->limit + step : a->ceiling;
        } else {
            a->growing = 0;
        }
        a->last_rate = rate;
        if (a->limit > a->peak)
            a->peak = a->limit;
    }
    a->win_start = now;
    a->win_done = a->win_busy = 0;
}

/* The pool's loop, made on first use; NULL when it cannot be. */
static dsc_loop *pool_loop(dsc_pf *pf)
{
    pthread_mutex_lock(&pf->mu);
    if (!pf->loop && !pf->loop_failed && !pf->stop) {
        dsc_errsave saved;
        dsc_err_save(&saved);
        if (dsc_loop_new(&pf->loop)) {
            pf->loop_failed = 1;
            dsc_log(DSC_LOG_WARN, "prefetch: %s; fetching with threads only",
                    dsc_errmsg());
        }
        dsc_err_restore(&saved);
    }
    dsc_loop *l = pf->stop ? NULL : pf->loop;
    pthread_mutex_unlock(&pf->mu);
    return l;
}

/* The loop's thread: hand the ended GET to an idle fetcher; with none
 * idle, store it here. Every fetcher may be blocked on a chunk this GET
 * holds (a foreground read of a chunk readahead claimed): waiting for
 * one would stall them all until the flight timeout. */
static void on_get(void *arg, dsc_s3_result *res)
{
    dsc_pf_task *t = arg;
    dsc_pf *pf = t->pf;
    t->res = *res;
    pthread_mutex_lock(&pf->mu);
    int handed = pf->waiting > 0;
    if (handed) {
        dsc_pf_push(&pf->done, t);
        pthread_cond_signal(&pf->work);
    }
    pthread_mutex_unlock(&pf->mu);
    if (!handed)
        dsc_pf_async_finish(pf, t);
}

static int chunk_start(dsc_pf *pf, dsc_pf_task *t, dsc_s3 *s3, dsc_loop *l)
{
    obj_ref *r = t->obj;
    dsc_objref o = { r->bucket, r->key, r->etag, r->size };
    int rc = dsc_cache_chunk_begin(pf->env.cache, &o, t->index, &t->claim);
    if (rc == DSC_EXISTS || rc == DSC_BUSY) {
        if (rc == DSC_BUSY)
            dsc_counter_add(&pf->n.busy, 1);
        dsc_counter_add(&pf->n.done, 1);
        return DSC_PF_HANDLED;
    }
    if (rc)
        return DSC_PF_SYNC;   /* another node's, or trouble: the old way */
    /* Streamed to its file, the chunk costs no memory while in flight;
     * a buffer only when the file cannot be made. */
    if (dsc_cache_chunk_sink(pf->env.cache, &t->claim) != 0) {
        t->buf_len = t->claim.len;
        t->buf = dsc_bigbuf_alloc(t->buf_len);
    }
    /* Marked the loop's before the GET starts: it may end, on_get hand t
     * to an idle fetcher and that one finish and free it, before
     * dsc_s3_get_async returns. Marked only after, t was taken by that
     * fetcher for new background work: a chunk then met its own claim,
     * counted it busy and dropped it held, so its readers waited out the
     * flight timeout (a URL's first GET waited that long for its own
     * first-fetch lock); and the late mark wrote to freed memory. Nothing
     * here touches t after a start that worked. */
    t->async = DSC_PF_ASYNC_CHUNK;
    /* Counted before the start too (taken back if it fails): counted
     * after, the count lagged behind a dsc_prefetch_wait that had seen
     * the GET end already. */
    dsc_gauge_add(&pf->n.on_loop, 1);
    rc = t->buf || t->claim.sink
             ? dsc_s3_get_async(s3, l, r->bucket, r->key, r->etag, r->size,
                                t->index * dsc_cache_chunk_size(pf->env.cache),
                                t->claim.len, t->buf,
                                t->claim.sink ? &t->claim.http : NULL, on_get, t)
             : DSC_ENOMEM;
    if (rc) {
        t->async = 0;
        dsc_gauge_sub(&pf->n.on_loop, 1);
        dsc_cache_chunk_finish(pf->env.cache, &o, &t->claim, NULL, rc);
        dsc_bigbuf_free(t->buf, t->buf_len);
        t->buf = NULL;
        return DSC_PF_SYNC;
    }
    return DSC_PF_ON_LOOP;   /* t may be finished and freed already */
}

/* An object's size and ETag are unknown: its first GET brings them with
 * chunk 0. Known ones, and objects whose first fetch another task is at
 * (which the fetcher waits for), go the blocking way. */
static int first_start(dsc_pf *pf, dsc_pf_task *t, dsc_s3 *s3, dsc_loop *l)
{
    dsc_cache *cache = pf->env.cache;
    uint64_t size;
    char *etag = NULL;
    int rc = dsc_pf_stat_known(pf, t->bucket, t->key, &size, &etag);
    free(etag);
    if (rc != DSC_ABSENT || !dsc_pf_first_get_ok(pf, t->bucket, t->key) ||
        dsc_cache_first_trylock(cache, t->bucket, t->key) != 0)
        return DSC_PF_SYNC;
    size_t cs = dsc_cache_chunk_size(cache);
    t->buf_len = cs;
    t->buf = dsc_bigbuf_alloc(t->buf_len);
    t->async = DSC_PF_ASYNC_FIRST;     /* before the start: see chunk_start */
    dsc_gauge_add(&pf->n.on_loop, 1);
    rc = t->buf ? dsc_s3_get_first_async(s3, l, t->bucket, t->key, cs, t->buf,
                                         on_get, t)
                : DSC_ENOMEM;
    if (rc) {
        t->async = 0;
        dsc_gauge_sub(&pf->n.on_loop, 1);
        dsc_cache_first_unlock(cache, t->bucket, t->key);
        dsc_bigbuf_free(t->buf, t->buf_len);
        t->buf = NULL;
        return DSC_PF_SYNC;
    }
    return DSC_PF_ON_LOOP;   /* t may be finished and freed already */
}

int dsc_pf_async_start(dsc_pf *pf, dsc_pf_task *t)
{
    if (!pf->env.loop || t->grp ||
        (t->kind != DSC_PF_CHUNK && t->kind != DSC_PF_URL))
        return DSC_PF_SYNC;
    dsc_s3 *s3 = dsc_pf_s3(pf);
    dsc_loop *l = s3 ? pool_loop(pf) : NULL;
    if (!l)
        return DSC_PF_SYNC;
    t->pf = pf;
    int how = t->kind == DSC_PF_CHUNK ? chunk_start(pf, t, s3, l)
                                      : first_start(pf, t, s3, l);
    return how;
}

static void finish_first(dsc_pf *pf, dsc_pf_task *t)
{
    dsc_s3 *s3 = dsc_pf_s3(pf);
    uint64_t size = t->res.obj_size;
    char *etag = t->res.etag;
    t->res.etag = NULL;
    int rc = t->res.rc;
    /* Without a client (it could not be re-made) nothing is stored and
     * nothing asked; the lock still goes. */
    if (!s3)
        rc = DSC_ENOMEM;
    rc = dsc_pf_first_got(pf, s3, t->bucket, t->key, 1, rc, t->buf,
                          t->res.got, &size, &etag);
    if (!rc)
        dsc_pf_url_chunks(pf, t, size, etag, t->res.rc == 0 ? 1 : 0);
    free(etag);
    t->res.rc = rc;
}

void dsc_pf_async_finish(dsc_pf *pf, dsc_pf_task *t)
{
    /* The GET's detail, for this thread's log line. */
    dsc_err_restore(&t->res.detail);
    if (t->async == DSC_PF_ASYNC_CHUNK) {
        obj_ref *r = t->obj;
        dsc_objref o = { r->bucket, r->key, r->etag, r->size };
        t->res.rc = dsc_cache_chunk_finish(pf->env.cache, &o, &t->claim,
                                           t->buf, t->res.rc);
    } else {
        finish_first(pf, t);
    }
    if (t->res.rc) {
        dsc_counter_add(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "prefetch s3://%s/%s: %s",
                t->obj ? t->obj->bucket : t->bucket,
                t->obj ? t->obj->key : t->key, dsc_errmsg());
    } else {
        dsc_counter_add(&pf->n.done, 1);
    }
    int slowed = t->res.slowed;
    dsc_bigbuf_free(t->buf, t->buf_len);
    free(t->res.etag);
    dsc_pf_free_task(t);
    pthread_mutex_lock(&pf->mu);
    pf->inflight--;
    int limit = pf->aimd.limit;
    dsc_pf_async_note(pf, slowed);
    if (--pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    /* One slot came free: one fetcher to take it, unless the limit grew.
     * Waking all of them for every GET that ended cost more CPU (a herd
     * fighting for pf->mu) than the GETs' own work. */
    if (pf->aimd.limit > limit)
        pthread_cond_broadcast(&pf->work);
    else if (pf->bg.head)
        pthread_cond_signal(&pf->work);
    pthread_mutex_unlock(&pf->mu);
}

void dsc_pf_async_stop(dsc_pf *pf)
{
    /* The GETs in flight end cancelled, queued on done; finish them here
     * (their locks let go, nothing stored). */
    dsc_loop_free(pf->loop);
    pf->loop = NULL;
    for (;;) {
        pthread_mutex_lock(&pf->mu);
        dsc_pf_task *t = pf->done.head;
        if (t)
            dsc_pf_unlink(&pf->done, t);
        pthread_mutex_unlock(&pf->mu);
        if (!t)
            break;
        dsc_pf_async_finish(pf, t);
    }
}
