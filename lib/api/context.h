/* The context: resolved configuration and the S3 client. */
#ifndef DSC_CTX_H
#define DSC_CTX_H

#include <pthread.h>
#include "cache/cache.h"
#include "s3/creds.h"
#include "s3/client.h"

struct dsc_ctx {
    dsc_config cfg;        /* caller strings cleared; copies live below */
    dsc_creds creds;
    char *ca_file;
    dsc_s3 *s3;            /* use dsc_ctx_s3(): re-made after fork() */
    unsigned fork_gen;
    dsc_cache *cache;      /* NULL: no cache */
    struct dsc_peers *peers; /* NULL: no peers */
    uint64_t meta_hits;
    struct dsc_pf *pf;     /* fetcher pool, made on first use */
    unsigned pf_gen;
    struct dsc_plan *plan; /* the user's active plan handle */
};

struct dsc_plan {
    dsc_ctx *ctx;
    struct dsc_plan_state *state;
};

/* The index holding HEAD metadata, NULL when none is kept (no cache, or
 * a TTL of 0). */
dsc_index *dsc_ctx_meta_index(dsc_ctx *ctx);
/* Size and ETag from fresh cached metadata: 0, 1 when there is none, <0. */
int dsc_object_meta_cached(dsc_ctx *ctx, const char *bucket, const char *key,
                           uint64_t *size, char **etag);
/* Size and ETag of bucket/key: cached metadata while fresh, else HEAD. */
int dsc_object_stat(dsc_ctx *ctx, const char *bucket, const char *key,
                    uint64_t *size, char **etag);

/* The cluster's peer secret: given, else DSC_PEER_SECRET, else the first
 * line of DSC_PEER_SECRET_FILE. *out NULL when there is none; caller
 * frees. */
int dsc_peer_secret(const char *given, char **out);

/* The S3 client of this process (a fork()ed child gets its own). */
dsc_s3 *dsc_ctx_s3(dsc_ctx *ctx);

struct dsc_file {
    dsc_ctx *ctx;
    char *bucket, *key, *url;
    char *etag;
    uint64_t size;
    int64_t pos;           /* dsc_read/dsc_seek position */
    /* Readahead: a run of reads each starting where the last one ended
     * grows a window of chunks queued ahead; any other read resets it. */
    pthread_mutex_t ra_lock;
    uint64_t ra_next;      /* where a sequential read would start */
    int ra_run;
    uint64_t ra_window;
    uint64_t ra_queued;    /* chunks below this offset are queued */
};

#endif
