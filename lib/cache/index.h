/* The node's chunk index: one LMDB environment per cache directory, shared
 * by every process (and context) that uses that directory. */
#ifndef DSC_CACHE_INDEX_H
#define DSC_CACHE_INDEX_H

#include <stdint.h>
#include "core/types.h"

/* 2: identities include the S3 origin. An index of an older format is
 * emptied on open (its chunks become strays for gc), a newer one refused. */
#define DSC_INDEX_FORMAT 2

typedef struct dsc_index dsc_index;

/* Eviction goes by the minute: an access less than this after the last
 * one recorded is not recorded again (nor less than half the idle time of
 * minio), so a warm epoch of small objects does not write the LRU index
 * every few hundred reads. */
#define DSC_TOUCH_EVERY_MS 60000

/* One cached chunk. Stored as is (the cache is local to one machine). */
typedef struct dsc_chunk_rec {
    uint64_t size;                 /* bytes in the data file */
    uint64_t xxh;                  /* XXH3-64 of those bytes */
    uint64_t seq;                  /* unique per insert; names the file */
    uint64_t atime_ms;             /* last access (batched; one a
                                      DSC_TOUCH_EVERY_MS is recorded) */
    uint64_t ctime_ms;             /* insert time */
} dsc_chunk_rec;

/* Cache-wide totals and node counters, kept in the index. */
typedef struct dsc_index_info {
    uint32_t format;
    uint32_t chunk_size_hint;      /* informational */
    uint64_t bytes, chunks;
    uint64_t hits, misses, inserts, evictions, corrupt, rejected;
    uint64_t cap;                  /* the cap the last writer enforced */
    uint64_t meta_dropped;         /* metadata entries dropped for room */
    /* Appended (an older record reads them as 0). */
    uint64_t capacity;             /* the cache's own cap, set when it is
                                      made or explicitly; 0: not yet */
    uint64_t disk_cap;             /* what the filesystem holds, learnt
                                      from ENOSPC; 0: no such limit */
} dsc_index_info;

/* Which chunks were written since the machine booted (see
 * dsc_index_trust_from): the info database's "boot" record, apart from
 * "info" so that an older libdsc, which rewrites "info" whole, never
 * drops it. */
typedef struct dsc_index_boot {
    uint8_t boot_id[16];           /* the boot trust_from_ms belongs to */
    uint64_t trust_from_ms;        /* first ctime_ms of that boot */
    uint64_t newest_insert_ms;     /* the largest ctime_ms ever inserted */
} dsc_index_boot;

/* The cap inserts keep to: the cache's capacity (else fallback), lowered
 * to what the filesystem holds. */
uint64_t dsc_index_effective_cap(const dsc_index_info *inf, uint64_t fallback);

/* Chunks whose ctime_ms is at least this were inserted since the machine
 * last booted, so their files hold what their writer hashed unless
 * changed since (store.c's write mark tells); older ones may be torn by
 * a power loss. UINT64_MAX when the boot cannot be told. */
uint64_t dsc_index_trust_from(const dsc_index *ix);
/* Write transactions this process committed on the index. */
uint64_t dsc_index_writes(const dsc_index *ix);

typedef struct dsc_index_opts {
    int sync;                      /* fsync each change */
    size_t map_size;               /* starting map size; 0: 1 GiB. A size
                                      another process grew to is kept */
    unsigned max_readers;          /* reads in flight at once, node-wide;
                                      0: 4096 (fixed by the first opener) */
    uint64_t meta_max;             /* metadata entries kept; 0: 2,000,000 */
    size_t map_max;                /* the map grows to this; 0: 1 TiB */
} dsc_index_opts;

/* Open (or join) the index under dir/index. Environments are shared per
 * directory within a process (the first opener's options hold) and
 * re-made in a child after fork(). */
int dsc_index_open_opts(const char *dir, const dsc_index_opts *o, dsc_index **out);
/* With the default options. */
int dsc_index_open(const char *dir, int sync, dsc_index **out);

/* The map's size, the bytes in use (its file's high-water mark) and the
 * writes this process found it full and unable to grow. */
int dsc_index_map_info(dsc_index *ix, uint64_t *map_bytes, uint64_t *used_bytes,
                       uint64_t *full);
void dsc_index_release(dsc_index *ix);

/* The process's single-flight locks for this directory (see flight.h). */
struct dsc_flight *dsc_index_flight(dsc_index *ix);

/* 0 and *rec when present, DSC_ABSENT, or a DSC_E* error. */
int dsc_index_get(dsc_index *ix, const dsc_chunk_id *id, dsc_chunk_rec *rec);

typedef struct dsc_victim {
    dsc_chunk_id id;
    uint64_t seq;                  /* 0: only a stale lru key was removed */
    uint64_t atime_ms;
} dsc_victim;

typedef struct dsc_admit {
    uint64_t cap;                  /* byte cap when the index has no
                                      capacity of its own */
    int policy;                    /* DSC_POLICY_* (dsc.h) */
    int partial;                   /* evict what max_victims allows even
                                      when short of the need (shrinking) */
    uint64_t idle_ms;              /* minio: idle entries may be evicted */
    dsc_victim *victims;           /* out: entries evicted (files to unlink) */
    size_t nvictims, max_victims;
} dsc_admit;

/* Insert rec for id, evicting by policy to stay under the cap, in one
 * write transaction. 0: inserted; DSC_NOT_ADMITTED (policy or too big; the
 * caller discards its file); DSC_EXISTS (another writer won); or a DSC_E*
 * error. */
int dsc_index_insert(dsc_index *ix, const dsc_chunk_id *id,
                     const dsc_chunk_rec *rec, dsc_admit *ad);

/* The cache's capacity: set it to want when force or when it has none
 * (want 0 then: the last enforced cap, else 10 GiB); force also forgets
 * the filesystem limit. *out gets the info after. */
int dsc_index_capacity(dsc_index *ix, uint64_t want, int force,
                       dsc_index_info *out);

/* Set the filesystem limit (disk_cap; UINT64_MAX: leave it) and evict,
 * least recently used first, towards the effective cap: at most
 * ad->max_victims entries a call, listed in ad->victims for the caller
 * to unlink. *left gets the bytes still over the cap (call again). */
int dsc_index_shrink(dsc_index *ix, uint64_t disk_cap, dsc_admit *ad,
                     uint64_t *left);

/* Remove id if its seq still matches (a corrupt or missing file). */
int dsc_index_remove(dsc_index *ix, const dsc_chunk_id *id, uint64_t seq,
                     int corrupt);

/* Record accesses (batched by the caller): new atime for ids still
 * present, and the hit count for the node counters. */
int dsc_index_touch(dsc_index *ix, const dsc_chunk_id *ids, size_t n,
                    uint64_t now_ms, uint64_t hits, uint64_t misses);

/* Where a chunk read's bytes came from. */
enum { DSC_SRC_CACHE, DSC_SRC_S3, DSC_SRC_PEER, DSC_NSRC };

/* Node counters beyond dsc_index_info's (index_stats.c): what every
 * process of the node sent to S3 and read from each source, summed at
 * each process's flush. Kept under their own key, so an older libdsc
 * that rewrites the info record leaves them be. */
typedef struct dsc_node_counters {
    uint64_t s3_gets, s3_heads, s3_lists, s3_retries;
    uint64_t s3_bytes;             /* GET body bytes received */
    uint64_t cache_bytes;          /* bytes read from the cache (hits) */
    uint64_t peer_hits, peer_bytes;    /* chunks other nodes' dscd sent */
    /* Chunks brought in with no reader waiting (prefetch, readahead,
     * plans; from S3 or a peer): their first read saves no GET. */
    uint64_t prefetched, prefetched_bytes;
} dsc_node_counters;

/* Bytes read per key prefix (bucket and the key's first directories),
 * by source. At most DSC_PREFIXES_KEPT prefixes are kept per node; the
 * bytes of later new ones are added to one record of empty bucket and
 * prefix ("other"), so the table and a scan of it stay small. */
#define DSC_PREFIX_BUCKET 64       /* bucket names are 3..63 bytes */
#define DSC_PREFIX_LEN 192         /* longer prefixes are cut (UTF-8 whole) */
#define DSC_PREFIXES_KEPT 256
typedef struct dsc_prefix_count {
    char bucket[DSC_PREFIX_BUCKET];
    char prefix[DSC_PREFIX_LEN];
    uint64_t bytes[DSC_NSRC];
} dsc_prefix_count;

/* One process's flush: accesses (dsc_index_touch's), and what to add to
 * the node counters and the prefix table, in one write transaction. */
typedef struct dsc_flush {
    const dsc_chunk_id *ids;
    size_t nids;
    uint64_t now_ms;
    uint64_t hits, misses;
    dsc_node_counters add;
    const dsc_prefix_count *prefixes;
    size_t nprefixes;
} dsc_flush;
int dsc_index_flush(dsc_index *ix, const dsc_flush *f);

/* The node counters (all zero in a cache that has none yet). */
int dsc_index_counters_get(dsc_index *ix, dsc_node_counters *out);
/* The prefix table, most bytes (all sources) first: up to cap records
 * into out, and how many there are in all in *total. */
int dsc_index_prefixes(dsc_index *ix, dsc_prefix_count *out, size_t cap,
                       size_t *total);

int dsc_index_info_get(dsc_index *ix, dsc_index_info *out);

/* Object metadata cache (HEAD results), per origin (the S3 endpoint's
 * canonical name, dsc_s3_origin). Get: 0, DSC_ABSENT, or error. */
int dsc_index_meta_get(dsc_index *ix, const char *origin, const char *bucket, const char *key,
                       uint64_t *size, char *etag, size_t etag_cap,
                       uint64_t *fetched_ms);
int dsc_index_meta_put(dsc_index *ix, const char *origin, const char *bucket, const char *key,
                       uint64_t size, const char *etag, uint64_t fetched_ms);
int dsc_index_meta_del(dsc_index *ix, const char *origin, const char *bucket, const char *key);

/* Many metadata records in one write transaction (a listing page). */
typedef struct dsc_meta_entry {
    const char *key;
    uint64_t size;
    const char *etag;
} dsc_meta_entry;
int dsc_index_meta_put_many(dsc_index *ix, const char *origin, const char *bucket,
                            const dsc_meta_entry *e, size_t n,
                            uint64_t fetched_ms);

/* Wall-clock milliseconds (atime and TTLs are shared across processes). */
uint64_t dsc_wall_ms(void);

#endif
