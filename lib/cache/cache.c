/* The read path through the node cache.
 *
 * For each chunk a read touches: look it up in the index and read it from
 * its file (checked against its XXH3 on first use); on a miss, take the
 * chunk's single-flight lock, look again (another thread or process may
 * have fetched it meanwhile), else GET it from S3, write it to a new file,
 * commit it to the index (evicting by policy) and rename the file into
 * place. Cache trouble of any kind never fails a read: the bytes then come
 * from S3. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include "cache/cache.h"
#include "cache/flight.h"
#include "core/fork.h"
#include "core/log.h"
#include "peer/client.h"
#include "cache/store.h"

#define TOUCH_BATCH 256
#define TOUCH_EVERY_MS 1000
#define POOL_MAX 16
#define MAX_VICTIMS 4096

typedef struct counters {
    uint64_t hits, misses, bytes_cache, evictions, corrupt, errors,
             not_admitted;
} counters;

struct dsc_cache {
    dsc_cache_opts o;
    char *dir;
    unsigned fork_gen;
    dsc_index *ix;
    dsc_store *store;
    dsc_peers *peers;              /* not owned; NULL: no peers */
    pthread_mutex_t lock;          /* pool and touch batch */
    void *pool[POOL_MAX];
    int npool;
    dsc_chunk_id touched[TOUCH_BATCH];
    size_t ntouched;
    uint64_t pending_hits, pending_misses;
    int64_t last_flush_ms;
    counters n;                    /* __atomic */
    int warned_write, warned_corrupt;
};

static void bump(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

int dsc_chunk_id_make(const dsc_objref *obj, uint32_t chunk_size,
                      uint64_t index, dsc_chunk_id *out)
{
    /* Fields are NUL-separated (no field holds a NUL), so no two distinct
     * identities serialize alike. */
    size_t lb = strlen(obj->bucket) + 1, lk = strlen(obj->key) + 1,
           le = strlen(obj->etag) + 1;
    uint8_t small[2048];
    size_t n = 4 + lb + lk + le + 16;
    uint8_t *p = n <= sizeof small ? small : malloc(n);
    if (!p)
        return DSC_ENOMEM;
    uint8_t *w = p;
    memcpy(w, "dsc1", 4), w += 4;
    memcpy(w, obj->bucket, lb), w += lb;
    memcpy(w, obj->key, lk), w += lk;
    memcpy(w, obj->etag, le), w += le;
    for (int i = 0; i < 8; i++) {
        w[i] = (uint8_t)((uint64_t)chunk_size >> (8 * i));
        w[8 + i] = (uint8_t)(index >> (8 * i));
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out->b, c.digest, 16);
    if (p != small)
        free(p);
    return 0;
}

static int ensure_process(dsc_cache *c);

/* The lock an object's first fetch holds while its size and ETag (and so
 * its chunk ids) are not known yet: a prefetch that GETs chunk 0 without
 * a HEAD holds it, and a reader missing chunk 0 takes it too, so the two
 * share one GET. */
static int first_fetch_id(const char *bucket, const char *key,
                          dsc_chunk_id *out)
{
    dsc_objref o = { bucket, key, "", 0 };
    return dsc_chunk_id_make(&o, 0, 0, out);
}

int dsc_cache_first_lock(dsc_cache *c, const char *bucket, const char *key)
{
    dsc_chunk_id fid;
    if (ensure_process(c) || first_fetch_id(bucket, key, &fid))
        return -1;
    return dsc_flight_lock(dsc_index_flight(c->ix), &fid,
                           c->o.flight_timeout_ms);
}

void dsc_cache_first_unlock(dsc_cache *c, int stripe)
{
    dsc_flight_unlock(dsc_index_flight(c->ix), stripe);
}

static int attach(dsc_cache *c)
{
    int rc = dsc_index_open(c->dir, c->o.sync, &c->ix);
    if (!rc)
        rc = dsc_store_open(c->dir, c->o.fd_cache, &c->store);
    if (rc) {
        dsc_index_release(c->ix);
        c->ix = NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->npool = 0;
    c->ntouched = 0;
    c->pending_hits = c->pending_misses = 0;
    c->last_flush_ms = dsc_now_ms();
    __atomic_store_n(&c->fork_gen, dsc_fork_generation(), __ATOMIC_RELEASE);
    return rc;
}

int dsc_cache_open(const dsc_cache_opts *o, dsc_cache **out)
{
    dsc_cache *c = calloc(1, sizeof *c);
    if (!c)
        return DSC_ENOMEM;
    c->o = *o;
    c->dir = dsc_strdup(o->dir);
    c->o.dir = c->dir;
    if (!c->dir) {
        free(c);
        return DSC_ENOMEM;
    }
    int rc = attach(c);
    if (rc) {
        pthread_mutex_destroy(&c->lock);
        free(c->dir);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* First use in a fork()ed child: the parent's index environment, open
 * files and mutexes stay the parent's; make our own. */
static int ensure_process(dsc_cache *c)
{
    unsigned gen = dsc_fork_generation();
    if (__builtin_expect(__atomic_load_n(&c->fork_gen, __ATOMIC_ACQUIRE) == gen, 1))
        return 0;
    int rc = 0;
    dsc_fork_remake_lock();
    if (c->fork_gen != gen) {
        dsc_fork_graveyard(c->store);
        for (int i = 0; i < c->npool; i++)
            dsc_fork_graveyard(c->pool[i]);
        c->store = NULL;
        c->ix = NULL;
        rc = attach(c);
    }
    dsc_fork_remake_unlock();
    return rc;
}

void dsc_cache_flush(dsc_cache *c)
{
    if (!c || ensure_process(c) || !c->ix)
        return;
    dsc_chunk_id batch[TOUCH_BATCH];
    pthread_mutex_lock(&c->lock);
    size_t n = c->ntouched;
    memcpy(batch, c->touched, n * sizeof *batch);
    uint64_t h = c->pending_hits, m = c->pending_misses;
    c->ntouched = 0;
    c->pending_hits = c->pending_misses = 0;
    c->last_flush_ms = dsc_now_ms();
    pthread_mutex_unlock(&c->lock);
    if (n || h || m)
        dsc_index_touch(c->ix, batch, n, dsc_wall_ms(), h, m);
}

void dsc_cache_close(dsc_cache *c)
{
    if (!c)
        return;
    if (c->fork_gen == dsc_fork_generation()) {
        dsc_cache_flush(c);
        dsc_store_free(c->store);
        dsc_index_release(c->ix);
        for (int i = 0; i < c->npool; i++)
            free(c->pool[i]);
        pthread_mutex_destroy(&c->lock);
    } else {
        dsc_fork_graveyard(c->store);
    }
    free(c->dir);
    free(c);
}

void dsc_cache_set_peers(dsc_cache *c, struct dsc_peers *peers)
{
    c->peers = peers;
}

dsc_index *dsc_cache_index(dsc_cache *c)
{
    return ensure_process(c) ? NULL : c->ix;
}

const char *dsc_cache_path(const dsc_cache *c)
{
    return c ? c->dir : NULL;
}

static void *pool_get(dsc_cache *c)
{
    void *p = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->npool)
        p = c->pool[--c->npool];
    pthread_mutex_unlock(&c->lock);
    return p ? p : malloc(c->o.chunk_size);
}

static void pool_put(dsc_cache *c, void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(p);
}

/* Remember an access; write the batch when it is full or a second old. */
static void note_access(dsc_cache *c, const dsc_chunk_id *id, int hit)
{
    int flush;
    pthread_mutex_lock(&c->lock);
    if (id && c->ntouched < TOUCH_BATCH)
        c->touched[c->ntouched++] = *id;
    if (hit)
        c->pending_hits++;
    flush = c->ntouched == TOUCH_BATCH ||
            dsc_now_ms() - c->last_flush_ms >= TOUCH_EVERY_MS;
    pthread_mutex_unlock(&c->lock);
    if (flush)
        dsc_cache_flush(c);
}

static void drop_bad(dsc_cache *c, const dsc_chunk_id *id, uint64_t seq,
                     int why, const dsc_objref *obj, uint64_t index)
{
    dsc_store_forget(c->store, id);
    if (why == DSC_STORE_CORRUPT) {
        bump(&c->n.corrupt, 1);
        dsc_log_once(&c->warned_corrupt, DSC_LOG_WARN,
                     "cache: chunk %llu of s3://%s/%s failed its check; "
                     "dropped and fetched again",
                     (unsigned long long)index, obj->bucket, obj->key);
        dsc_index_remove(c->ix, id, seq, 1);
        dsc_store_unlink(c->store, id, seq);
    } else {
        dsc_index_remove(c->ix, id, seq, 0);
    }
}

/* Try the cache for one chunk part. 0: served; 1: not there. */
static int try_cached(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                      const dsc_chunk_id *id, void *dst, size_t off,
                      size_t len, size_t chunk_len, int drop_missing)
{
    dsc_chunk_rec rec;
    int rc = dsc_index_get(c->ix, id, &rec);
    if (rc != 0 || rec.size != chunk_len)
        return 1;
    void *scratch = (off == 0 && len == chunk_len) ? NULL : pool_get(c);
    if (!scratch && !(off == 0 && len == chunk_len))
        return 1;
    rc = dsc_store_read(c->store, id, &rec, dst, off, len, scratch);
    pool_put(c, scratch);
    if (rc == 0)
        return 0;
    /* A missing file outside the lock may just not be renamed yet; only
     * the lock holder may conclude it is gone. */
    if (rc == DSC_STORE_CORRUPT || (rc == DSC_STORE_MISSING && drop_missing))
        drop_bad(c, id, rec.seq, rc, obj, index);
    return 1;
}

static void store_chunk(dsc_cache *c, const dsc_chunk_id *id,
                        const void *data, size_t len)
{
    dsc_buf tmp = { 0 };
    dsc_errsave saved;
    dsc_err_save(&saved);
    int rc = dsc_store_write_tmp(c->store, data, len, &tmp);
    if (rc) {
        bump(&c->n.errors, 1);
        dsc_log_once(&c->warned_write, DSC_LOG_WARN, "cache: %s; reading "
                     "from S3 without caching", dsc_errmsg());
        dsc_buf_free(&tmp);
        dsc_err_restore(&saved);
        return;
    }
    uint64_t now = dsc_wall_ms();
    dsc_chunk_rec rec = {
        .size = len, .xxh = XXH3_64bits(data, len),
        .seq = dsc_rand_below(UINT64_MAX - 1) + 1,
        .atime_ms = now, .ctime_ms = now,
    };
    dsc_victim victims[64];
    dsc_victim *vs = victims;
    dsc_admit ad = { .cap = c->o.cap, .policy = c->o.policy,
                     .idle_ms = (uint64_t)c->o.idle_sec * 1000,
                     .victims = victims, .max_victims = DSC_ARRAY_LEN(victims) };
    /* Many small entries may have to go for one large one. */
    if (len > 64 * 1024) {
        vs = malloc(MAX_VICTIMS * sizeof *vs);
        if (vs) {
            ad.victims = vs;
            ad.max_victims = MAX_VICTIMS;
        } else {
            vs = victims;
        }
    }
    rc = dsc_index_insert(c->ix, id, &rec, &ad);
    if (rc == 0) {
        if (dsc_store_publish(c->store, tmp.data, id, rec.seq)) {
            bump(&c->n.errors, 1);
            dsc_log_once(&c->warned_write, DSC_LOG_WARN, "cache: %s",
                         dsc_errmsg());
            dsc_index_remove(c->ix, id, rec.seq, 0);
        } else {
            dsc_store_adopt(c->store, id, rec.seq, len);
        }
    } else {
        unlink(tmp.data);
        if (rc == 1)
            bump(&c->n.not_admitted, 1);
        else if (rc < 0) {
            bump(&c->n.errors, 1);
            dsc_log_once(&c->warned_write, DSC_LOG_WARN, "cache: %s; "
                         "reading from S3 without caching", dsc_errmsg());
        }
    }
    for (size_t i = 0; i < ad.nvictims; i++) {
        if (vs[i].seq) {
            dsc_store_forget(c->store, &vs[i].id);
            dsc_store_unlink(c->store, &vs[i].id, vs[i].seq);
            bump(&c->n.evictions, 1);
        }
    }
    if (vs != victims)
        free(vs);
    dsc_buf_free(&tmp);
    dsc_err_restore(&saved);   /* cache trouble is not the read's error */
}

/* A chunk from its owner node into dst (or, with dst NULL, only onto the
 * owner's disk); kept here too when the setting says so. */
static int from_peer(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                     const dsc_chunk_id *id, int peer, void *dst, size_t off,
                     size_t len, size_t chunk_len)
{
    int keep = dsc_peers_keep_local(c->peers);
    if (!dst && !keep)
        return dsc_peers_get(c->peers, peer, obj, c->o.chunk_size, index, id,
                             NULL, chunk_len);
    int whole = dst && off == 0 && len == chunk_len;
    void *buf = whole ? dst : pool_get(c);
    if (!buf)
        return DSC_ENOMEM;
    int rc = dsc_peers_get(c->peers, peer, obj, c->o.chunk_size, index, id,
                           buf, chunk_len);
    if (rc == 0) {
        if (keep)
            store_chunk(c, id, buf, chunk_len);
        if (dst && !whole)
            memcpy(dst, (char *)buf + off, len);
    }
    if (!whole)
        pool_put(c, buf);
    return rc;
}

/* One chunk part: copy [off, off+len) of chunk `index` into dst, fetching
 * the chunk if needed. With dst NULL only make sure the chunk is cached
 * (prefetch); *fetched tells whether this call went to S3. */
static int chunk_op(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                    uint64_t index, void *dst, size_t off, size_t len,
                    int *fetched)
{
    uint64_t start = index * c->o.chunk_size;
    size_t chunk_len = (size_t)(obj->size - start < c->o.chunk_size
                                    ? obj->size - start : c->o.chunk_size);
    int ensure = dst == NULL;
    dsc_chunk_rec rec;
    dsc_chunk_id id;
    *fetched = 0;
    if (dsc_chunk_id_make(obj, c->o.chunk_size, index, &id))
        return DSC_ENOMEM;
    if (ensure) {
        if (dsc_index_get(c->ix, &id, &rec) == 0 && rec.size == chunk_len)
            return 0;
    } else if (dsc_store_read_open(c->store, &id, dst, off, len) == 0 ||
               try_cached(c, obj, index, &id, dst, off, len, chunk_len, 0) == 0) {
        bump(&c->n.hits, 1);
        bump(&c->n.bytes_cache, len);
        note_access(c, &id, 1);
        return 0;
    }
    int owner = c->peers ? dsc_peers_route(c->peers, &id) : -1;
    if (owner >= 0) {
        /* Another node owns it: ask there first. The owner fetches from
         * S3 at most once for the whole cluster. */
        dsc_errsave saved;
        dsc_err_save(&saved);
        if (from_peer(c, obj, index, &id, owner, dst, off, len, chunk_len) == 0)
            return 0;
        dsc_err_restore(&saved);   /* the S3 read below decides */
    }
    /* Chunk 0 may be on its way with the object's first GET (see
     * first_fetch_id): wait for that too. Two stripes are always taken in
     * ascending order (two threads each holding one and wanting the other
     * would wait out the flight timeout); one lock when they coincide. */
    dsc_flight *fl = dsc_index_flight(c->ix);
    long wait = c->o.flight_timeout_ms;
    dsc_chunk_id fid;
    int stripe, first_stripe = -1;
    if (index == 0 && first_fetch_id(obj->bucket, obj->key, &fid) == 0 &&
        dsc_flight_stripe(&fid) != dsc_flight_stripe(&id)) {
        if (dsc_flight_stripe(&fid) < dsc_flight_stripe(&id)) {
            first_stripe = dsc_flight_lock(fl, &fid, wait);
            stripe = dsc_flight_lock(fl, &id, wait);
        } else {
            stripe = dsc_flight_lock(fl, &id, wait);
            first_stripe = dsc_flight_lock(fl, &fid, wait);
        }
        if (first_stripe >= 0)
            dsc_flight_unlock(fl, first_stripe);
    } else {
        stripe = dsc_flight_lock(fl, &id, wait);
    }
    if (stripe >= 0) {
        /* Another thread or process may have fetched it while we waited:
         * a read then joins that fetch instead of repeating it. */
        int there = ensure
            ? dsc_index_get(c->ix, &id, &rec) == 0 && rec.size == chunk_len
            : try_cached(c, obj, index, &id, dst, off, len, chunk_len, 1) == 0;
        if (there) {
            dsc_flight_unlock(dsc_index_flight(c->ix), stripe);
            if (!ensure) {
                bump(&c->n.hits, 1);
                bump(&c->n.bytes_cache, len);
                note_access(c, &id, 1);
            }
            return 0;
        }
    }
    int whole = !ensure && off == 0 && len == chunk_len;
    void *buf = whole ? dst : pool_get(c);
    int rc = buf ? dsc_s3_get(s3, obj->bucket, obj->key, obj->etag, obj->size,
                              start, chunk_len, buf)
                 : DSC_ENOMEM;
    if (rc == 0) {
        store_chunk(c, &id, buf, chunk_len);
        if (!whole && !ensure)
            memcpy(dst, (char *)buf + off, len);
        *fetched = 1;
    }
    if (stripe >= 0)
        dsc_flight_unlock(dsc_index_flight(c->ix), stripe);
    if (!whole)
        pool_put(c, buf);
    if (rc == 0 && !ensure) {
        bump(&c->n.misses, 1);
        note_access(c, NULL, 0);
    }
    return rc;
}

int dsc_cache_read_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                         uint64_t index, void *dst, size_t off, size_t len,
                         int *fetched)
{
    int ignored, rc = ensure_process(c);
    return rc ? rc : chunk_op(c, s3, obj, index, dst, off, len,
                              fetched ? fetched : &ignored);
}

int dsc_cache_open_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                         uint64_t *size, uint64_t *xxh)
{
    dsc_chunk_id id;
    dsc_chunk_rec rec;
    uint64_t open_size;
    if (ensure_process(c) || dsc_chunk_id_make(obj, c->o.chunk_size, index, &id))
        return -1;
    int fd = dsc_store_dup_open(c->store, &id, &open_size);
    if (fd < 0)
        return -1;
    if (dsc_index_get(c->ix, &id, &rec) != 0 || rec.size != open_size) {
        close(fd);
        return -1;
    }
    *size = rec.size;
    *xxh = rec.xxh;
    bump(&c->n.hits, 1);
    bump(&c->n.bytes_cache, rec.size);
    note_access(c, &id, 1);
    return fd;
}

int dsc_cache_ensure_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                           uint64_t index, int *fetched)
{
    int rc = ensure_process(c);
    *fetched = 0;
    return rc ? rc : chunk_op(c, s3, obj, index, NULL, 0, 0, fetched);
}

uint32_t dsc_cache_chunk_size(const dsc_cache *c)
{
    return c->o.chunk_size;
}

int dsc_cache_read(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                   void *buf, size_t len, uint64_t off)
{
    int rc = ensure_process(c);
    if (rc)
        return rc;
    uint64_t cs = c->o.chunk_size;
    char *out = buf;
    while (len > 0) {
        uint64_t index = off / cs;
        size_t in_off = (size_t)(off % cs);
        size_t part = cs - in_off < len ? (size_t)(cs - in_off) : len;
        int fetched;
        rc = chunk_op(c, s3, obj, index, out, in_off, part, &fetched);
        if (rc)
            return rc;
        out += part;
        off += part;
        len -= part;
    }
    return 0;
}

void dsc_cache_stats(dsc_cache *c, dsc_stats *st)
{
    st->hits = __atomic_load_n(&c->n.hits, __ATOMIC_RELAXED);
    st->misses = __atomic_load_n(&c->n.misses, __ATOMIC_RELAXED);
    st->bytes_from_cache = __atomic_load_n(&c->n.bytes_cache, __ATOMIC_RELAXED);
    st->evictions = __atomic_load_n(&c->n.evictions, __ATOMIC_RELAXED);
    st->corrupt_dropped = __atomic_load_n(&c->n.corrupt, __ATOMIC_RELAXED);
    st->cache_errors = __atomic_load_n(&c->n.errors, __ATOMIC_RELAXED);
    st->not_admitted = __atomic_load_n(&c->n.not_admitted, __ATOMIC_RELAXED);
    st->cache_capacity = c->o.cap;
    st->chunk_size = c->o.chunk_size;
    st->cache_policy = c->o.policy;
    dsc_cache_flush(c);
    dsc_index_info inf;
    if (!ensure_process(c) && c->ix && dsc_index_info_get(c->ix, &inf) == 0) {
        st->cache_bytes = inf.bytes;
        st->cache_chunks = inf.chunks;
        st->node_hits = inf.hits;
        st->node_misses = inf.misses;
        st->node_evictions = inf.evictions;
        st->node_corrupt = inf.corrupt;
        st->node_capacity = inf.cap;
    }
}

typedef struct gc_state {
    dsc_cache *c;
    int64_t removed;
    uint64_t bytes;
} gc_state;

static int gc_one(void *arg, const dsc_chunk_id *id, uint64_t seq,
                  const char *path, uint64_t size)
{
    gc_state *g = arg;
    dsc_chunk_rec rec;
    /* Safe beside live writers: a file is renamed into place only after
     * its record is committed, so a file without a matching record is
     * debris (a crash between an eviction's commit and its unlink). */
    if (seq == 0 || dsc_index_get(g->c->ix, id, &rec) != 0 || rec.seq != seq) {
        if (unlink(path) == 0) {
            g->removed++;
            g->bytes += size;
        }
    }
    return 0;
}

int64_t dsc_cache_gc(dsc_cache *c)
{
    int rc = ensure_process(c);
    if (rc)
        return rc;
    gc_state g = { c, 0, 0 };
    rc = dsc_store_walk(c->store, gc_one, &g);
    if (g.removed)
        dsc_log(DSC_LOG_INFO, "cache gc: removed %lld stray files, %llu bytes",
                (long long)g.removed, (unsigned long long)g.bytes);
    return rc ? rc : g.removed;
}

int dsc_cache_put_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                        const void *data, size_t len)
{
    dsc_chunk_id id;
    int rc = ensure_process(c);
    if (rc)
        return rc;
    if (dsc_chunk_id_make(obj, c->o.chunk_size, index, &id))
        return DSC_ENOMEM;
    store_chunk(c, &id, data, len);
    return 0;
}
