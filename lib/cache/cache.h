/* The node cache's read path: chunking, lookup, single-flight fetch,
 * store and eviction, access accounting. */
#ifndef DSC_CACHE_CACHE_H
#define DSC_CACHE_CACHE_H

#include "cache/index.h"
#include "s3/client.h"

typedef struct dsc_cache dsc_cache;

typedef struct dsc_cache_opts {
    const char *dir;
    const char *origin;            /* the S3 endpoint's canonical name
                                      (dsc_s3_origin): part of every chunk
                                      and metadata identity */
    uint64_t cap;                  /* for a new cache (0: 10 GiB); an
                                      existing one keeps its own */
    uint32_t chunk_size;
    int policy;
    long idle_sec;
    int fd_cache;
    int sync;
    int verify_always;             /* hash even files written since boot */
    long flight_timeout_ms;        /* longest wait for another fetcher */
    long meta_ttl_ms;              /* object metadata kept this long; 0: not
                                      at all (cache/meta.h) */
    uint64_t meta_max;             /* metadata entries kept at most */
    uint64_t index_map_size;       /* starting map size; 0: from the cap */
    unsigned index_max_readers;    /* 0: the index's default */
    unsigned prefix_depth;         /* directories of a key counted as its
                                      prefix (index.h); 0: 2 */
    /* Adds this process's S3 requests since its last call to *n; called
     * at every flush, outside the cache's locks. NULL: none counted. */
    void (*take_s3)(void *arg, dsc_node_counters *n);
    void *take_s3_arg;
} dsc_cache_opts;

int dsc_cache_open(const dsc_cache_opts *o, dsc_cache **out);
void dsc_cache_close(dsc_cache *c);

/* Read [off, off+len) (already clamped to the object) through the cache. */
int dsc_cache_read(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                   void *buf, size_t len, uint64_t off);

/* Read part of one chunk (thread-safe; for parallel reads). *fetched
 * (may be NULL) is 1 when it came from S3 now. */
int dsc_cache_read_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                         uint64_t index, void *dst, size_t off, size_t len,
                         int *fetched);
/* A new fd of chunk `index` when it is cached in a file this process has
 * already verified (for sendfile), with its size and XXH3; counted as a
 * hit. -1 otherwise: read it with dsc_cache_read_chunk. */
/* 1 when chunk index of obj is in the index (no read, not counted). */
int dsc_cache_contains(dsc_cache *c, const dsc_objref *obj, uint64_t index);
int dsc_cache_open_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                         uint64_t *size, uint64_t *xxh);
/* Make sure a chunk is cached; *fetched is 1 when it came from S3 now. */
int dsc_cache_ensure_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                           uint64_t index, int *fetched);
uint32_t dsc_cache_chunk_size(const dsc_cache *c);
/* Lock held around a first GET of an object of unknown ETag; 0 when
 * held (then unlock it), <0 when not (then proceed unlocked). */
int dsc_cache_first_lock(dsc_cache *c, const char *bucket, const char *key);
void dsc_cache_first_unlock(dsc_cache *c, const char *bucket, const char *key);
/* Lock of an object's first GET, only if free: 0 when held (then unlock
 * it), DSC_BUSY when another fetch has it, <0 on error. Never waits. */
int dsc_cache_first_trylock(dsc_cache *c, const char *bucket, const char *key);

/* A chunk fetched by an event loop rather than by the calling thread:
 * begin claims it without waiting, finish (any thread of the process)
 * stores what came and lets the claim go. */
typedef struct dsc_chunk_sink dsc_chunk_sink;
typedef struct dsc_chunk_claim {
    dsc_chunk_id id;
    size_t len;                    /* the chunk's bytes, to GET */
    dsc_chunk_sink *sink;          /* where they are streamed, or NULL */
    dsc_http_sink http;            /* the GET's sink writing to it */
} dsc_chunk_claim;
/* 0: claimed; GET cl->len bytes at index x chunk size, then finish.
 * DSC_EXISTS: cached already. DSC_BUSY: another thread or process is
 * fetching it (or its object's first GET is). DSC_ABSENT: another node
 * owns it (use dsc_cache_ensure_chunk). Or a DSC_E* error. */
int dsc_cache_chunk_begin(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                          dsc_chunk_claim *cl);
/* Stream the claimed chunk's GET to its file as it arrives (hashed on
 * the way), so no buffer holds it: 0, and the GET's body goes to
 * &cl->http; else DSC_NOT_ADMITTED (the disk has no room to spare for a
 * stream) or a DSC_E* error, cl->sink is NULL, and the chunk goes
 * through a buffer. The thread's error detail is left as it was. */
int dsc_cache_chunk_sink(dsc_cache *c, dsc_chunk_claim *cl);
/* The claimed chunk's GET ended with rc: its data (from the sink, else
 * data) is stored (rc 0) and counted as bytes from S3, then the claim is
 * released. Returns rc, or 0 when the GET stopped only because the
 * sink could not write (cache trouble: counted and logged as a failed
 * store, the chunk is not cached). */
int dsc_cache_chunk_finish(dsc_cache *c, const dsc_objref *obj,
                           dsc_chunk_claim *cl, const void *data, int rc);

/* Single flight for a named task other than a chunk (a listing to re-run):
 * 0 when held (then unlock it), <0 when not (then go on unlocked). */
int dsc_cache_lock_name(dsc_cache *c, const char *name);
void dsc_cache_unlock_name(dsc_cache *c, const char *name);
/* Store a chunk that came with the object's first GET (counted as bytes
 * from S3). */
int dsc_cache_put_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                        const void *data, size_t len);

/* Route misses of chunks other nodes own to them (NULL: never). The
 * peers outlive the cache. */
struct dsc_peers;
void dsc_cache_set_peers(dsc_cache *c, struct dsc_peers *peers);

/* Set the cache's capacity (every process's cap) and evict down to it. */
int dsc_cache_set_capacity_of(dsc_cache *c, uint64_t bytes);

dsc_index *dsc_cache_index(dsc_cache *c);
const char *dsc_cache_path(const dsc_cache *c);
const char *dsc_cache_origin(const dsc_cache *c);
void dsc_cache_stats(dsc_cache *c, dsc_stats *st);
/* Remove data files the index does not know. Returns how many. */
int64_t dsc_cache_gc(dsc_cache *c);

/* Push batched access times and counters to the index now. */
void dsc_cache_flush(dsc_cache *c);
/* The node's prefix table (dsc_index_prefixes), this process's counts
 * flushed first. */
int dsc_cache_prefixes(dsc_cache *c, dsc_prefix_count *out, size_t cap,
                       size_t *total);

#endif
