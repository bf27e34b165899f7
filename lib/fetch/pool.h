/* Background fetching: a bounded pool of fetcher threads per context that
 * serves parallel reads (foreground, first), and prefetch, readahead and
 * plans (background). */
#ifndef DSC_FETCH_POOL_H
#define DSC_FETCH_POOL_H

#include "cache/cache.h"

typedef struct dsc_pf dsc_pf;
typedef struct dsc_plan_state dsc_plan_state;

typedef struct dsc_pf_counters {
    uint64_t queued, done, errors, dropped, readahead;
    uint64_t throttled;            /* times the in-flight limit was halved */
    uint64_t busy;                 /* chunks skipped: another fetch had them */
    uint64_t on_loop;              /* GETs run on the event loop */
    int limit, peak;               /* background fetches in flight at most:
                                      now, and the highest it reached */
} dsc_pf_counters;

/* What a pool works with. Its owner (the context) keeps these alive
 * longer than the pool and re-makes the pool in a fork()ed child. */
typedef struct dsc_pf_env {
    dsc_cache *cache;
    dsc_s3 *(*s3)(void *arg);      /* this process's S3 client, or NULL */
    void *s3_arg;
    int peers;                     /* peers are on: chunk 0's id needs the
                                      ETag before any GET */
    /* Objects whose size and ETag are fixed for the run (a snapshot):
     * 0 with *size and a malloc'd *etag, DSC_ABSENT when not pinned, or a
     * DSC_E* error. NULL: nothing is pinned. */
    int (*pinned)(void *arg, const char *bucket, const char *key,
                  uint64_t *size, char **etag);
    void *pinned_arg;
    int threads;                   /* fetcher threads, > 0 */
    size_t memory;                 /* bytes of background fetches in
                                      flight at most (chunk-sized each) */
    int connections;               /* ... and no more of them than this
                                      (the connection pool's size) */
    int loop;                      /* GETs on an event loop (0: one
                                      blocked fetcher thread each) */
    size_t queue;                  /* background tasks queued at most */
} dsc_pf_env;

/* NULL when out of memory or threads (or a bad env). */
dsc_pf *dsc_pf_new(const dsc_pf_env *env);
void dsc_pf_free(dsc_pf *pf);

/* Queue chunks first..last (inclusive) of obj for background fetching.
 * owner tags them for dsc_pf_cancel_owner. Returns 0, or DSC_EAGAIN when
 * the queue filled up first; *queued says how many made it. */
int dsc_pf_chunks(dsc_pf *pf, const dsc_objref *obj, uint64_t first,
                  uint64_t last, const void *owner, int *queued);
int dsc_pf_url(dsc_pf *pf, const char *bucket, const char *key);
/* Whether every chunk of bucket/key is in the node cache, judged with no
 * request: size and ETag from the snapshot or fresh metadata. */
int dsc_pf_cached_whole(dsc_pf *pf, const char *bucket, const char *key);
/* Run fn(arg, bucket, key) on a fetcher, in the background (arg must
 * outlive the pool; bucket and key are copied). 0 or DSC_EAGAIN/ENOMEM. */
typedef void (*dsc_pf_call_fn)(void *arg, const char *bucket, const char *key);
int dsc_pf_call(dsc_pf *pf, dsc_pf_call_fn fn, void *arg, const char *bucket,
                const char *key);
int dsc_pf_wait(dsc_pf *pf, long timeout_ms);
void dsc_pf_cancel_owner(dsc_pf *pf, const void *owner);

/* Read a multi-chunk range with the pool's help (the caller works too). */
int dsc_pf_read(dsc_pf *pf, const dsc_objref *obj, void *buf, size_t len,
                uint64_t off);
/* Make a range cached; returns bytes fetched from S3 or <0. */
int64_t dsc_pf_warm(dsc_pf *pf, const dsc_objref *obj, uint64_t off,
                    uint64_t len);

void dsc_pf_counters_get(dsc_pf *pf, dsc_pf_counters *out);
void dsc_pf_count_readahead(dsc_pf *pf, uint64_t n);

/* Plans (see dsc_plan_start in dsc.h). */
int dsc_pf_plan_start(dsc_pf *pf, const dsc_plan_item *items, size_t n,
                      uint64_t window, dsc_plan_state **out);
void dsc_pf_plan_stop(dsc_pf *pf, dsc_plan_state *ps);
size_t dsc_pf_plan_position(const dsc_plan_state *ps);
/* A read of bucket/key happened: move the active plan's reader. */
void dsc_pf_plan_observe(dsc_pf *pf, const char *bucket, const char *key);

#endif
