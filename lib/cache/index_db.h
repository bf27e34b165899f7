/* The index's insides, shared by cache/index.c (environment, chunks) and
 * cache/index_meta.c (object metadata) only. */
#ifndef DSC_CACHE_INDEX_DB_H
#define DSC_CACHE_INDEX_DB_H

#include <lmdb.h>
#include <pthread.h>
#include "cache/flight.h"
#include "cache/index.h"

struct dsc_index {
    /* Set at open, read-only after. */
    char *path;                    /* dir/index */
    MDB_env *env;
    MDB_dbi chunks, lru, meta, meta_age, info, prefixes;
    dsc_flight *flight;            /* per process, like the environment */
    uint64_t meta_max;             /* metadata entries kept at most */
    size_t map_max;                /* the map grows to this at most */
    uint64_t trust_from_ms;        /* dsc_index_trust_from */
    unsigned fork_gen;

    /* Held shared by every transaction of this process, exclusively to
     * change the map size: LMDB allows that only with no transaction
     * open in the process. */
    pthread_rwlock_t resize;

    /* Guarded by the registry lock (index.c). */
    int refs;
    struct dsc_index *next;

    /* Counters and flags (core/atomic.h), once-flags (dsc_log_once). */
    uint64_t full;                 /* writes that found it full for good */
    uint64_t writes;               /* write transactions committed */
    int dead;                      /* a remap failed and left no map: every
                                      transaction is refused (reads go to S3) */
    int warned_full;
    int warned_pid;
};

/* Transactions: begin (MDB_RDONLY or 0) takes the resize lock shared and
 * follows a map another process grew; abort and end let it go. End
 * commits when rc is 0, else aborts; it returns 0, an outcome passed in,
 * DSC_RETRY when the map was full and has grown (do it all again), or
 * DSC_EIO/DSC_ENOMEM naming what. */
int dsc_ix_begin(dsc_index *ix, unsigned flags, MDB_txn **txn, const char *what);
void dsc_ix_abort(dsc_index *ix, MDB_txn *txn);
int dsc_ix_end(dsc_index *ix, MDB_txn *txn, int rc, const char *what);
int dsc_ix_fail(int rc, const char *what, const char *path);

int dsc_ix_read_info(MDB_txn *txn, const dsc_index *ix, dsc_index_info *inf);
int dsc_ix_write_info(MDB_txn *txn, const dsc_index *ix,
                      const dsc_index_info *inf);

/* Add a flush's node counters and prefix bytes inside txn
 * (index_stats.c). */
int dsc_ix_counters_add(MDB_txn *txn, dsc_index *ix, const dsc_flush *f);

/* Drop the n oldest metadata entries inside txn (index_meta.c); *dropped
 * says how many went. */
int dsc_ix_meta_trim(MDB_txn *txn, dsc_index *ix, uint64_t n, uint64_t *dropped);

#endif
