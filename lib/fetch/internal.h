/* The fetcher pool's insides, shared by pool.c (threads, queues, chunk
 * and prefetch tasks, foreground groups) and plan.c (plans). */
#ifndef DSC_FETCH_INTERNAL_H
#define DSC_FETCH_INTERNAL_H

#include <pthread.h>
#include "core/atomic.h"
#include "fetch/pool.h"

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
} dsc_pf_task;

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
 * (*first: that chunk's buffer for the caller to free, or NULL), else a
 * HEAD. */
int dsc_pf_stat(dsc_pf *pf, const char *bucket, const char *key,
                uint64_t *size, char **etag, void **first, size_t *first_len);

/* Plans (plan.c). */
void dsc_pf_run_plan_item(dsc_pf *pf, dsc_pf_task *t);
void dsc_pf_plan_top_up(dsc_pf *pf, dsc_plan_state *ps);   /* under mu */
void dsc_pf_plan_unref(dsc_plan_state *ps);                /* under mu */
/* Drop the queued items of ps; under mu. */
void dsc_pf_plan_dequeue(dsc_pf *pf, dsc_plan_state *ps);

#endif
