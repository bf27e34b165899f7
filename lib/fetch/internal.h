/* The fetcher pool's insides, shared by pool.c (threads, queues, chunk
 * and prefetch tasks, foreground groups) and plan.c (plans). */
#ifndef DSC_FETCH_INTERNAL_H
#define DSC_FETCH_INTERNAL_H

#include <pthread.h>
#include "core/atomic.h"
#include "fetch/pool.h"
#include "net/loop.h"
#include "s3/async.h"

enum { DSC_PF_CHUNK, DSC_PF_URL, DSC_PF_PLAN_ITEM, DSC_PF_CALL };

/* An object version shared by the tasks of its chunks. */
typedef struct obj_ref {
    char *bucket, *key, *etag;
    uint64_t size;
    int refs;                       /* dsc_ref_get/dsc_ref_put */
} obj_ref;

/* The chunks of one foreground read or warm; the caller waits for all. */
typedef struct dsc_pf_group {
    pthread_mutex_t mu;             /* guards the fields below */
    pthread_cond_t cv;
    int pending;
    int err;
    dsc_errsave detail;             /* of err: it may come from a fetcher */
    int64_t fetched_bytes;
} dsc_pf_group;

typedef struct dsc_pf_task {
    struct dsc_pf_task *prev, *next;   /* queue links, under pf->mu */
    int kind;
    obj_ref *obj;                   /* DSC_PF_CHUNK */
    uint64_t index;
    char *bucket, *key;             /* DSC_PF_URL, DSC_PF_CALL */
    dsc_pf_call_fn call;            /* DSC_PF_CALL, with call_arg */
    void *call_arg;
    dsc_plan_state *plan;           /* DSC_PF_PLAN_ITEM */
    size_t item;
    const void *owner;
    dsc_pf_group *grp;              /* foreground */
    void *dst;
    size_t doff, dlen;
    int queued;                     /* still in a queue; under pf->mu */
    /* A GET on the event loop (async.c): owned by the loop until its
     * callback queues the task on pf->done. Set before the GET starts:
     * the fetcher that takes the task from pf->done tells by it that the
     * task is the loop's to finish, not new work. */
    int async;                      /* DSC_PF_ASYNC_CHUNK or _FIRST */
    dsc_pf *pf;
    void *buf;                      /* dsc_bigbuf_alloc'd, buf_len bytes */
    size_t buf_len;
    dsc_chunk_claim claim;
    dsc_s3_result res;
} dsc_pf_task;

enum { DSC_PF_ASYNC_CHUNK = 1, DSC_PF_ASYNC_FIRST };

/* The limit of background fetches in flight (async.c), adapted to what
 * the origin sustains; under pf->mu. */
typedef struct dsc_pf_aimd {
    int limit, ceiling, peak;
    int growing;                    /* doubling until throughput stalls */
    int64_t win_start;              /* dsc_now_ms() the window began */
    uint64_t win_done;              /* fetches ended in it */
    uint64_t win_busy;              /* ...while work waited for a slot */
    double last_rate;               /* fetches/s of the last full window */
    int64_t last_cut;               /* when the limit was last halved */
} dsc_pf_aimd;

typedef struct dsc_pf_queue {
    dsc_pf_task *head, *tail;
    size_t n;
} dsc_pf_queue;

struct dsc_plan_state {
    /* Set at start, read-only after. */
    dsc_pf *pf;
    size_t n;
    char **bucket, **key;
    uint64_t *off, *len;
    uint64_t window;
    /* Guarded by pf->mu. */
    uint64_t *bytes;                /* counted toward the window */
    size_t next;                    /* next item to queue */
    uint64_t ahead;                 /* queued-but-unread bytes */
    int refs;                       /* user + pool + queued tasks */
    /* Written under pf->mu, read without it (dsc_atomic_get). */
    size_t cursor;                  /* items the reader has reached */
    int stopped;
};

struct dsc_pf {
    /* Set at creation, read-only after. */
    dsc_pf_env env;
    size_t bg_cap;
    int nthreads;
    pthread_t *threads;

    /* Guarded by mu (taken before any group's mu; cache and S3 work is
     * never done under it). */
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    dsc_pf_queue fg, bg;
    int bg_outstanding;             /* queued + running background tasks */
    int stop;
    dsc_plan_state *plan;           /* the active plan; also read unlocked
                                       as a hint (dsc_atomic_get) */
    /* Background fetches in flight and the event loop (async.c). A
     * background task holds one of `limit` slots from the moment a
     * fetcher takes it until it ends (on a fetcher, or on the loop and
     * then pf->done), so buffers in flight are at most limit chunks. */
    int inflight;
    dsc_pf_aimd aimd;
    dsc_loop *loop;                 /* made on first use */
    int loop_failed;
    dsc_pf_queue done;              /* GETs the loop ended, to store */
    int waiting;                    /* fetchers waiting for work */

    /* Counters (core/atomic.h), any thread. */
    dsc_pf_counters n;
};

/* Queues; under pf->mu. */
void dsc_pf_push(dsc_pf_queue *q, dsc_pf_task *t);
void dsc_pf_unlink(dsc_pf_queue *q, dsc_pf_task *t);
void dsc_pf_free_task(dsc_pf_task *t);

/* This process's S3 client, NULL when it cannot be made. */
dsc_s3 *dsc_pf_s3(dsc_pf *pf);

/* Size and ETag of an object to prefetch: cached metadata, else (without
 * peers) a first GET of chunk 0 that brings them and stores the chunk
 * (*got_first), else a HEAD. */
int dsc_pf_stat(dsc_pf *pf, const char *bucket, const char *key,
                uint64_t *size, char **etag, int *got_first);

/* Size and ETag known without a request (pinned, cached): 0, DSC_ABSENT,
 * or an error. */
int dsc_pf_stat_known(dsc_pf *pf, const char *bucket, const char *key,
                      uint64_t *size, char **etag);
/* 1 when an unknown object's size and ETag may come with a first GET. */
int dsc_pf_first_get_ok(dsc_pf *pf, const char *bucket, const char *key);
/* A first GET ended with rc (buf's len bytes, *size, *etag): store and
 * remember what came, let the first-fetch lock go (when locked), HEAD for
 * what a first GET cannot tell. Returns the stat's result. */
int dsc_pf_first_got(dsc_pf *pf, dsc_s3 *s3, const char *bucket,
                     const char *key, int locked, int rc, const void *buf,
                     size_t len, uint64_t *size, char **etag);
/* Queue chunks from.. of an object of t's URL with that size and ETag. */
void dsc_pf_url_chunks(dsc_pf *pf, const dsc_pf_task *t, uint64_t size,
                       const char *etag, uint64_t from);

/* The event loop (async.c). */
enum { DSC_PF_SYNC, DSC_PF_HANDLED, DSC_PF_ON_LOOP };
void dsc_pf_async_init(dsc_pf *pf, size_t memory);
/* Start background task t's GET on the loop when it can: DSC_PF_ON_LOOP
 * (the loop owns t and its slot now), DSC_PF_HANDLED (nothing to fetch:
 * cached, or another fetch has it), DSC_PF_SYNC (run it on this thread). */
int dsc_pf_async_start(dsc_pf *pf, dsc_pf_task *t);
/* Store what a task's GET brought, on a fetcher; frees t. */
void dsc_pf_async_finish(dsc_pf *pf, dsc_pf_task *t);
/* A background task ended (slowed: the origin pushed back); under mu. */
void dsc_pf_async_note(dsc_pf *pf, int slowed);
/* Stop the loop (its GETs end cancelled) and finish what it queued; with
 * no fetcher left. */
void dsc_pf_async_stop(dsc_pf *pf);

/* Plans (plan.c). */
void dsc_pf_run_plan_item(dsc_pf *pf, dsc_pf_task *t);
void dsc_pf_plan_top_up(dsc_pf *pf, dsc_plan_state *ps);   /* under mu */
void dsc_pf_plan_unref(dsc_plan_state *ps);                /* under mu */
/* Drop the queued items of ps; under mu. */
void dsc_pf_plan_dequeue(dsc_pf *pf, dsc_plan_state *ps);

#endif
