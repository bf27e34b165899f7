/* Chunk data files: dir/data/XX/<id hex>-<seq hex>, one immutable file per
 * cached chunk, written to dir/tmp and renamed into place. */
#ifndef DSC_CACHE_STORE_H
#define DSC_CACHE_STORE_H

#include "cache/index.h"

typedef struct dsc_store dsc_store;

/* fd_cache: how many verified chunk files stay open for fast reads. */
int dsc_store_open(const char *dir, int fd_cache, dsc_store **out);
void dsc_store_free(dsc_store *st);

/* Read len bytes at off of chunk (id, rec) into dst. The first read of a
 * chunk by this store checks its size and XXH3 (a part is checked
 * streaming through a small buffer), unless written_since_boot (the
 * record is younger than dsc_index_trust_from) and the file still bears
 * the mark dsc_store_publish gave it: then only [off, off+len) is read.
 * Returns 0, DSC_ABSENT (no file), DSC_CORRUPT, or a DSC_E* error. */
int dsc_store_read(dsc_store *st, const dsc_chunk_id *id,
                   const dsc_chunk_rec *rec, int written_since_boot,
                   void *dst, size_t off, size_t len);

/* Read from an already open, verified file of id only: 0 when served,
 * DSC_ABSENT when id is not open here (or shrank: then it is forgotten). No index lookup: a chunk's bytes never
 * change, so an open file stays right even after eviction. *touch_due
 * says whether the access of id last recorded (as this process knows it:
 * dsc_store_note_touch) is every_ms old or more, and if so notes one now. */
int dsc_store_read_open(dsc_store *st, const dsc_chunk_id *id, void *dst,
                        size_t off, size_t len, int64_t every_ms,
                        int *touch_due);
/* The open file of id (if any) had its access recorded ago_ms ago; a file
 * opened here starts as recorded now (dsc_store_adopt's are). */
void dsc_store_note_touch(dsc_store *st, const dsc_chunk_id *id,
                          int64_t ago_ms);

/* A duplicate (close it) of the open, verified file of id and its size,
 * or -1 when id is not open here. */
int dsc_store_dup_open(dsc_store *st, const dsc_chunk_id *id, uint64_t *size);

/* A temporary file being written: named in dir/tmp, open and locked
 * (OFD lock) by its writer until published or dropped. */
typedef struct dsc_store_tmp {
    char name[64];
    int fd;                        /* -1: none */
    int err;                       /* errno of a failed write (ENOSPC: make
                                      room and try again) */
} dsc_store_tmp;

/* Write data to a new temporary file (*tmp names it). */
int dsc_store_write_tmp(dsc_store *st, const void *data, size_t len,
                        dsc_store_tmp *tmp);
/* The same in steps, for bytes that arrive in pieces: a new empty file
 * with len bytes of disk set aside (ENOSPC in tmp->err when they are not
 * there), then pieces at their offsets. A failed step drops the file. */
int dsc_store_open_tmp(dsc_store *st, size_t len, dsc_store_tmp *tmp);
int dsc_store_write_at(dsc_store *st, dsc_store_tmp *tmp, const void *data,
                       size_t len, uint64_t off);
/* Move a temporary file to the chunk's place (dropped on failure). */
/* The file is marked with a modification time drawn from xxh (its
 * XXH3-64), which any later change to it erases. */
int dsc_store_publish(dsc_store *st, dsc_store_tmp *tmp, const dsc_chunk_id *id,
                      uint64_t seq, uint64_t xxh);
/* Remove a temporary file not to be published. */
void dsc_store_drop_tmp(dsc_store *st, dsc_store_tmp *tmp);
/* Keep the just published file of id open as verified: its bytes are the
 * ones the caller wrote and hashed, so the first read need not re-hash. */
void dsc_store_adopt(dsc_store *st, const dsc_chunk_id *id, uint64_t seq,
                     uint64_t size);
void dsc_store_unlink(dsc_store *st, const dsc_chunk_id *id, uint64_t seq);
/* Forget an open file of id (its bytes proved bad or its entry left). */
void dsc_store_forget(dsc_store *st, const dsc_chunk_id *id);

/* Call fn for every entry of the data tree but folders (name parsed into
 * id and seq), as (dir fd, name): remove one with unlinkat, never by a
 * path. Entries with other names, and symlinks, come with seq 0. Stops at
 * fn's non-zero return. */
typedef int (*dsc_store_walk_fn)(void *arg, const dsc_chunk_id *id,
                                 uint64_t seq, int dir_fd, const char *name,
                                 uint64_t size);
int dsc_store_walk(dsc_store *st, dsc_store_walk_fn fn, void *arg);

/* Path of a chunk's data file (for tests and tools). */
int dsc_store_path(const char *dir, const dsc_chunk_id *id, uint64_t seq,
                   dsc_buf *out);

#endif
