/* The context and object handles: the public API's state. Private to
 * lib/api (tests/check_layers.sh keeps it so); dscd uses api/node.h. */
#ifndef DSC_API_CONTEXT_H
#define DSC_API_CONTEXT_H

#include <pthread.h>
#include "api/node.h"
#include "cache/meta.h"
#include "fetch/pool.h"
#include "peer/client.h"
#include "s3/creds.h"

struct dsc_ctx {
    /* Set at open, read-only after. */
    dsc_config cfg;                /* caller strings cleared; copies below */
    dsc_creds creds;
    char *ca_file;
    dsc_cache *cache;              /* NULL: no cache */
    dsc_peers *peers;              /* NULL: no peers */

    /* Per process (core/fork.h): re-made by their getters after fork(). */
    unsigned s3_gen;
    dsc_s3 *s3;                    /* dsc_ctx_s3() */
    unsigned pf_gen;
    dsc_pf *pf;                    /* dsc_ctx_pf(): made on first use;
                                      read unlocked with dsc_ctx_pf_if_made */
    /* The snapshot in use (dsc_ctx_use_snapshot), NULL: none. Guarded by
     * snap_lock, a leaf lock re-made after fork() (a fetcher thread of the
     * parent may have held it); a lookup takes a reference and lets go. */
    unsigned snap_gen;
    pthread_mutex_t snap_lock;
    dsc_snapshot *snap;
    /* Prefixes this context listed whole, newest last, so metadata they
     * taught can be revalidated by listing again (api/revalidate.c).
     * Guarded by listed_lock, a leaf lock re-made after fork(). */
    unsigned listed_gen;
    pthread_mutex_t listed_lock;
    struct dsc_listed *listed;
    size_t nlisted;
    /* The keeper: a thread of the process that listed, keeping those
     * listings fresh while the node reads (api/revalidate.c). keeper_gen
     * is the process generation it runs in (DSC_FORK_NONE: none). */
    unsigned keeper_gen;
    pthread_t keeper;
    pthread_mutex_t keeper_mu;     /* leaf; guards keeper_stop */
    pthread_cond_t keeper_cv;
    int keeper_stop;
};

struct dsc_plan {
    dsc_ctx *ctx;
    dsc_plan_state *state;
};

/* The fetcher pool of this process: made on first use, re-made after
 * fork(); NULL without a cache or fetcher threads, or out of memory. */
/* Fill cfg's environment-dependent fields for a config of that version
 * (api/config.c). 0, or DSC_EINVAL naming the first DSC_* variable whose
 * value is invalid (its field keeps the built-in default). */
int dsc_config_env(dsc_config *cfg, unsigned version);

dsc_pf *dsc_ctx_pf(dsc_ctx *ctx);
/* The pool if this process has made one, without making it. */
dsc_pf *dsc_ctx_pf_if_made(dsc_ctx *ctx);

/* Parse a URL that must name an object (not a bucket or prefix). */
int dsc_parse_object_url(const char *url, dsc_s3url *u);

/* Size and ETag of bucket/key: the context's snapshot when *pinned asks
 * for it and it covers the object (then *pinned stays 1; no request), else
 * fresh cached metadata, else HEAD (*pinned 0). */
int dsc_object_stat(dsc_ctx *ctx, const char *bucket, const char *key,
                    uint64_t *size, char **etag, int *pinned);
/* dsc_open, consulting the context's snapshot or not (a snapshot file is
 * read as it is now, never as the snapshot in use says). */
int dsc_open_as(dsc_ctx *ctx, const char *url, int use_snapshot, dsc_file **out);
/* dsc_pread_url without clearing the thread's error first. */
ssize_t dsc_read_url(dsc_ctx *ctx, const char *url, void *buf, size_t len,
                     uint64_t off, int64_t *size);

/* Size and ETag (caller frees) of bucket/key from the context's snapshot:
 * 0; DSC_ABSENT when no snapshot covers its bucket and prefix;
 * DSC_ENOTFOUND when one does and the key is not in it. */
int dsc_ctx_pinned(dsc_ctx *ctx, const char *bucket, const char *key,
                   uint64_t *size, char **etag);
/* dsc_s3_version_fn of a context (arg): the version id its snapshot
 * lists for bucket/key at exactly etag. */
int dsc_ctx_version_of(void *arg, const char *bucket, const char *key,
                       const char *etag, char *vid);
/* Load and use the snapshot named by the config (or DSC_SNAPSHOT). */
int dsc_ctx_open_snapshot(dsc_ctx *ctx, const char *src);
/* Drop the context's snapshot (at close). */
void dsc_ctx_drop_snapshot(dsc_ctx *ctx);

/* Bring the stale metadata of a plan's objects up to date by listing
 * (lib/api/revalidate.c); best effort, errors are not the plan's. */
void dsc_plan_revalidate(dsc_ctx *ctx, const dsc_plan_item *items, size_t n);
/* A whole listing of bucket/prefix of n objects went well (probe: one of
 * its keys, whose metadata age stands for all): remember it. */
void dsc_listed_note(dsc_ctx *ctx, const char *bucket, const char *prefix,
                     uint64_t n, const char *probe);
/* bucket/key's metadata has expired: when a small listing of this context
 * taught it, list that prefix again (once for every thread and process
 * that wants it), which refreshes its neighbours too. 0 when a listing
 * ran or was run meanwhile; DSC_ABSENT when none applies. */
int dsc_listed_revalidate(dsc_ctx *ctx, const char *bucket, const char *key);
/* Fresh metadata age_ms old, of a listed object: past three quarters of
 * the TTL, list its prefix again on a fetcher, so readers of a long epoch
 * never wait on a revalidation. */
void dsc_listed_refresh_ahead(dsc_ctx *ctx, const char *bucket, const char *key,
                              uint64_t age_ms);
/* Stop this process's keeper (before the cache and S3 client go); free
 * the remembered listings (after the fetchers, whose tasks use them). */
void dsc_listed_stop(dsc_ctx *ctx);
void dsc_listed_free(dsc_ctx *ctx);

/* The listing loop that dsc_list and dsc_snapshot_list share: every
 * object under u's bucket and prefix, each remembered in the metadata
 * cache, passed to cb. Returns the count or a negative code. */
int64_t dsc_list_run(dsc_ctx *ctx, const dsc_s3url *u, dsc_list_cb cb,
                     void *arg);

struct dsc_file {
    /* Set at open, read-only after. */
    dsc_ctx *ctx;
    char *bucket, *key, *url;
    char *etag;
    uint64_t size;
    int pinned;                    /* size and ETag came from a snapshot */
    /* The caller's: dsc_read/dsc_seek position (one thread at a time). */
    int64_t pos;
    /* Readahead: a run of reads each starting where the last one ended
     * grows a window of chunks queued ahead; any other read resets it.
     * Guarded by ra_lock. */
    pthread_mutex_t ra_lock;
    int ra_made;                   /* 0: a one-call file, no readahead */
    uint64_t ra_next;              /* where a sequential read would start */
    int ra_run;
    uint64_t ra_window;
    uint64_t ra_queued;            /* chunks below this offset are queued */
};

#endif
