/* The node cache's insides, shared by the files of cache/ only:
 * cache.c (life cycle, stats, sweeping), read.c (the read path) and
 * meta.c (object metadata). */
#ifndef DSC_CACHE_INTERNAL_H
#define DSC_CACHE_INTERNAL_H

#include <pthread.h>
#include "cache/cache.h"
#include "cache/store.h"
#include "core/atomic.h"

#define DSC_TOUCH_BATCH 256
/* Idle chunk buffers kept for the next fetch; more go back to the system,
 * so a reader's memory follows what it has in flight. */
#define DSC_POOL_MAX 2
/* Prefixes one process counts between flushes; one more flushes early. */
#define DSC_PENDING_PREFIXES 32

typedef struct dsc_cache_counters {
    uint64_t hits, misses, bytes_cache, evictions, corrupt, errors,
             not_admitted, meta_hits, meta_expired;
} dsc_cache_counters;

struct dsc_cache {
    /* Set at open, read-only after. */
    dsc_cache_opts o;
    char *dir, *origin;            /* o.dir and o.origin point here */
    struct dsc_peers *peers;       /* not owned; NULL: no peers */

    /* Per process: re-made by dsc_cache_ensure_process() after fork(). */
    unsigned fork_gen;
    dsc_index *ix;
    dsc_store *store;

    /* Guarded by lock (a leaf lock: nothing else is taken under it). */
    pthread_mutex_t lock;
    void *pool[DSC_POOL_MAX];      /* spare chunk buffers */
    int npool;
    dsc_chunk_id touched[DSC_TOUCH_BATCH];   /* accesses not yet written */
    size_t ntouched;
    uint64_t pending_hits, pending_misses;
    dsc_node_counters pending;     /* bytes by source, peer hits: for the
                                      node counters (account.c) */
    dsc_prefix_count prefixes[DSC_PENDING_PREFIXES];
    size_t nprefixes;
    int64_t last_flush_ms;

    /* Counters (core/atomic.h) and once-flags (dsc_log_once), any thread. */
    dsc_cache_counters n;
    int warned_write, warned_corrupt, warned_full;
    /* A gauge (core/atomic.h), any thread; per process: zeroed after
     * fork() with the rest of it. */
    uint64_t streaming;            /* disk set aside by open chunk sinks:
                                      ours, not other processes' */
};

/* This process's index, store and locks: 0, or the error re-making them
 * after fork() (then the cache must not be used by this call). */
int dsc_cache_ensure_process(dsc_cache *c);

/* A chunk-sized scratch buffer (NULL when out of memory) and back. */
void *dsc_cache_pool_get(dsc_cache *c);
void dsc_cache_pool_put(dsc_cache *c, void *p);

/* Unlink the files of entries the index evicted (read.c). */
void dsc_cache_unlink_victims(dsc_cache *c, const dsc_admit *ad);

/* Evict towards the effective cap, after setting the filesystem limit to
 * disk_cap (UINT64_MAX: unchanged). 0 or a DSC_E* error. */
int dsc_cache_shrink(dsc_cache *c, uint64_t disk_cap);

/* What the cache's filesystem can hold of cached bytes when `used` are
 * cached, leaving room for a write of `writing` bytes and the index to
 * grow; 0 when the filesystem cannot tell. */
uint64_t dsc_cache_disk_room(const dsc_cache *c, uint64_t used, uint64_t writing);

/* Count a chunk's bytes for the node (account.c): src DSC_SRC_CACHE is
 * a hit of id read (its access time batched too), DSC_SRC_S3 a chunk
 * GET, DSC_SRC_PEER a chunk from its owner node; read: a reader waits for
 * it (else it was prefetched).
 * Flushes when a second has passed since the last flush, unless
 * !may_flush (a caller holding a single-flight lock: that LMDB write
 * would lengthen its hold). */
void dsc_cache_account(dsc_cache *c, const dsc_objref *obj,
                       const dsc_chunk_id *id, int src, uint64_t bytes,
                       int read, int may_flush);
/* Forget what this process had not flushed (attach, after fork()). */
void dsc_cache_account_reset(dsc_cache *c);

#endif
