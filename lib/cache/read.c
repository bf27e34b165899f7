/* The read path through the node cache.
 *
 * For each chunk a read touches: look it up in the index and read it from
 * its file (checked against its XXH3 on first use); on a miss, ask the
 * owner node when another node owns it; else take the chunk's
 * single-flight lock, look again (another thread or process may have
 * fetched it meanwhile), else GET it from S3, write it to a new file,
 * commit it to the index (evicting by policy) and rename the file into
 * place. Cache trouble of any kind never fails a read: the bytes then come
 * from S3. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>
#include "cache/flight.h"
#include "cache/internal.h"
#include "core/log.h"
#include "peer/client.h"

#define MAX_VICTIMS 4096

static void bump(uint64_t *c, uint64_t v)
{
    dsc_counter_add(c, v);
}

/* The lock an object's first fetch holds while its size and ETag (and so
 * its chunk ids) are not known yet: a prefetch that GETs chunk 0 without
 * a HEAD holds it, and a reader missing chunk 0 takes it too, so the two
 * share one GET. */
static int first_fetch_id(const dsc_cache *c, const char *bucket,
                          const char *key, dsc_chunk_id *out)
{
    dsc_objref o = { bucket, key, "", 0 };
    return dsc_chunk_id_make(c->o.origin, &o, 0, 0, out);
}

int dsc_cache_first_lock(dsc_cache *c, const char *bucket, const char *key)
{
    dsc_chunk_id fid;
    if (dsc_cache_ensure_process(c) || first_fetch_id(c, bucket, key, &fid))
        return -1;
    return dsc_flight_lock(dsc_index_flight(c->ix), &fid,
                           c->o.flight_timeout_ms);
}

void dsc_cache_first_unlock(dsc_cache *c, const char *bucket, const char *key)
{
    dsc_chunk_id fid;
    if (first_fetch_id(c, bucket, key, &fid) == 0)
        dsc_flight_unlock(dsc_index_flight(c->ix), &fid);
}

int dsc_cache_first_trylock(dsc_cache *c, const char *bucket, const char *key)
{
    dsc_chunk_id fid;
    if (dsc_cache_ensure_process(c) || first_fetch_id(c, bucket, key, &fid))
        return -1;
    return dsc_flight_trylock(dsc_index_flight(c->ix), &fid);
}

/* A name's lock id: its own domain, so it is never a chunk's. */
static int name_id(const dsc_cache *c, const char *name, dsc_chunk_id *out)
{
    dsc_buf b = { 0 };
    dsc_buf_printf(&b, "dsc-name\n%s", c->o.origin);
    dsc_buf_add(&b, "", 1);
    dsc_buf_adds(&b, name);
    if (dsc_buf_oom(&b))
        return DSC_ENOMEM;
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits(b.data, b.len));
    memcpy(out->b, h.digest, sizeof out->b);
    dsc_buf_free(&b);
    return 0;
}

int dsc_cache_lock_name(dsc_cache *c, const char *name)
{
    dsc_chunk_id id;
    if (dsc_cache_ensure_process(c) || name_id(c, name, &id))
        return -1;
    return dsc_flight_lock(dsc_index_flight(c->ix), &id, c->o.flight_timeout_ms);
}

void dsc_cache_unlock_name(dsc_cache *c, const char *name)
{
    dsc_chunk_id id;
    if (name_id(c, name, &id) == 0)
        dsc_flight_unlock(dsc_index_flight(c->ix), &id);
}

static void drop_bad(dsc_cache *c, const dsc_chunk_id *id, uint64_t seq,
                     int why, const dsc_objref *obj, uint64_t index)
{
    dsc_store_forget(c->store, id);
    if (why == DSC_CORRUPT) {
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

/* One part of a chunk: which chunk, where it starts and how long it is,
 * and the slice [off, off+len) the caller wants into dst (NULL: only make
 * sure the chunk is cached). */
typedef struct part {
    const dsc_objref *obj;
    uint64_t index;
    dsc_chunk_id id;
    size_t chunk_len;
    void *dst;
    size_t off, len;
    int touch_due;                 /* a hit to record for eviction order */
} part;

static int part_whole(const part *p)
{
    return p->dst && p->off == 0 && p->len == p->chunk_len;
}

/* Where a chunk is fetched to: straight into dst when the part is the
 * whole chunk, else a pool buffer (NULL when out of memory). */
static void *chunk_buffer(dsc_cache *c, const part *p)
{
    return part_whole(p) ? p->dst : dsc_cache_pool_get(c);
}

/* Copy the part out of a fetched chunk (ok) and give the buffer back. */
static void chunk_buffer_done(dsc_cache *c, const part *p, void *buf, int ok)
{
    if (part_whole(p))
        return;
    if (ok && p->dst)
        memcpy(p->dst, (char *)buf + p->off, p->len);
    dsc_cache_pool_put(c, buf);
}

/* How often a chunk's access is recorded: once a minute, and at least
 * twice within minio's idle time, so a chunk in use never looks idle. */
static int64_t touch_every_ms(const dsc_cache *c)
{
    int64_t idle_half = c->o.idle_sec > 0 ? (int64_t)c->o.idle_sec * 500 : 0;
    return idle_half < DSC_TOUCH_EVERY_MS ? idle_half : DSC_TOUCH_EVERY_MS;
}

/* How long ago rec's access was recorded (0 when it is in the future:
 * the wall clock stepped back). */
static int64_t touched_ago_ms(const dsc_chunk_rec *rec)
{
    uint64_t now = dsc_wall_ms();
    return now > rec->atime_ms ? (int64_t)(now - rec->atime_ms) : 0;
}

/* Try the cache for one part: 0 when served, DSC_ABSENT when not there.
 * A missing file outside the flight lock may just not be renamed yet;
 * only the lock holder (drop_missing) may conclude it is gone. */
static int try_cached(dsc_cache *c, part *p, int drop_missing)
{
    dsc_chunk_rec rec;
    int rc = dsc_index_get(c->ix, &p->id, &rec);
    if (rc != 0 || rec.size != p->chunk_len)
        return DSC_ABSENT;
    if (!p->dst)
        return 0;   /* only asked whether it is cached */
    int64_t ago = touched_ago_ms(&rec);
    p->touch_due = ago >= touch_every_ms(c);
    /* Written this boot: unless it was changed since, the file holds the
     * bytes hashed when it was stored. Else a part is verified streaming:
     * no chunk-sized buffer. */
    int recent = !c->o.verify_always &&
                 rec.ctime_ms >= dsc_index_trust_from(c->ix);
    rc = dsc_store_read(c->store, &p->id, &rec, recent, p->dst, p->off,
                        p->len);
    if (rc == 0) {
        /* The file it may have opened starts from the record's time. */
        dsc_store_note_touch(c->store, &p->id, p->touch_due ? 0 : ago);
        return 0;
    }
    if (rc == DSC_CORRUPT || (rc == DSC_ABSENT && drop_missing))
        drop_bad(c, &p->id, rec.seq, rc, p->obj, p->index);
    return DSC_ABSENT;
}

static void count_hit(dsc_cache *c, const part *p)
{
    if (!p->dst)
        return;
    bump(&c->n.hits, 1);
    bump(&c->n.bytes_cache, p->len);
    dsc_cache_account(c, p->obj, p->touch_due ? &p->id : NULL, DSC_SRC_CACHE,
                      p->len, 1, 1);
}

/* Evict what the index chose: forget open files, unlink, count. */
void dsc_cache_unlink_victims(dsc_cache *c, const dsc_admit *ad)
{
    for (size_t i = 0; i < ad->nvictims; i++) {
        if (ad->victims[i].seq) {
            dsc_store_forget(c->store, &ad->victims[i].id);
            dsc_store_unlink(c->store, &ad->victims[i].id, ad->victims[i].seq);
            bump(&c->n.evictions, 1);
        }
    }
}

/* The filesystem filled before the cap did: the cache keeps at most
 * what the filesystem holds from now on (every process: the limit is in
 * the index), and evicts down to it, so this write and later ones fit. */
static int make_room(dsc_cache *c, size_t len)
{
    dsc_index_info inf;
    int rc = dsc_index_info_get(c->ix, &inf);
    if (rc)
        return rc;
    /* Our streams' files will be cached bytes (or freed): not a sign
     * of a smaller disk. */
    uint64_t room = dsc_cache_disk_room(c, inf.bytes + dsc_atomic_get(&c->streaming),
                                        len);
    if (!room)
        return DSC_EIO;
    uint64_t cap = dsc_index_effective_cap(&inf, c->o.cap);
    if (room < cap)
        dsc_log_once(&c->warned_full, DSC_LOG_WARN, "cache %s: its filesystem "
                     "is full at %llu of %llu cached bytes; keeping at most "
                     "%llu from now on (dsc-stat shows it; free space, or "
                     "dsc-stat --set-capacity to choose again)", c->dir,
                     (unsigned long long)inf.bytes, (unsigned long long)cap,
                     (unsigned long long)room);
    return dsc_cache_shrink(c, room < cap ? room : UINT64_MAX);
}

/* Commit a written temporary file as chunk id (evicting by policy) and
 * publish it; the file is dropped when it is not. */
static int commit_tmp(dsc_cache *c, const dsc_chunk_id *id, dsc_store_tmp *tmp,
                      size_t len, uint64_t xxh)
{
    dsc_victim victims[64];
    dsc_admit ad = { .cap = c->o.cap, .policy = c->o.policy,
                     .idle_ms = (uint64_t)c->o.idle_sec * 1000,
                     .victims = victims, .max_victims = DSC_ARRAY_LEN(victims) };
    uint64_t now = dsc_wall_ms();
    dsc_chunk_rec rec = {
        .size = len, .xxh = xxh, .seq = dsc_rand_below(UINT64_MAX - 1) + 1,
        .atime_ms = now, .ctime_ms = now,
    };
    /* Many small entries may have to go for one large one. */
    dsc_victim *many = len > 64 * 1024 ? malloc(MAX_VICTIMS * sizeof *many) : NULL;
    if (many) {
        ad.victims = many;
        ad.max_victims = MAX_VICTIMS;
    }
    int rc = dsc_index_insert(c->ix, id, &rec, &ad);
    if (rc == 0) {
        rc = dsc_store_publish(c->store, tmp, id, rec.seq, rec.xxh);
        if (rc)
            dsc_index_remove(c->ix, id, rec.seq, 0);
        else
            dsc_store_adopt(c->store, id, rec.seq, len);
    } else {
        dsc_store_drop_tmp(c->store, tmp);
    }
    dsc_cache_unlink_victims(c, &ad);
    free(many);
    return rc;
}

/* Cache trouble is not the read's error: it is counted and logged once. */
static void note_store(dsc_cache *c, int rc)
{
    if (rc == DSC_NOT_ADMITTED) {
        bump(&c->n.not_admitted, 1);
    } else if (rc && rc != DSC_EXISTS) {
        bump(&c->n.errors, 1);
        dsc_log_once(&c->warned_write, DSC_LOG_WARN, "cache: %s; reading "
                     "from S3 without caching", dsc_errmsg());
    }
}

/* Write, commit, publish one chunk; this thread's error detail stays
 * what it was. */
static void store_chunk(dsc_cache *c, const dsc_chunk_id *id,
                        const void *data, size_t len)
{
    dsc_store_tmp tmp = { .fd = -1 };
    dsc_errsave saved;
    dsc_err_save(&saved);
    int rc = dsc_store_write_tmp(c->store, data, len, &tmp);
    /* Other threads' writes and streams take the room made for this one
     * too: a few tries, each making room again. */
    for (int tries = 0; rc && tmp.err == ENOSPC && tries < 3 &&
                        make_room(c, len) == 0; tries++)
        rc = dsc_store_write_tmp(c->store, data, len, &tmp);
    if (!rc)
        rc = commit_tmp(c, id, &tmp, len, XXH3_64bits(data, len));
    note_store(c, rc);
    dsc_err_restore(&saved);
}

/* A chunk from its owner node into the part (or, without dst, only onto
 * the owner's disk); kept here too when the setting says so. */
static int from_peer(dsc_cache *c, const part *p, const dsc_peer_pick *peer)
{
    int keep = dsc_peers_keep_local(c->peers);
    if (!p->dst && !keep)
        return dsc_peers_get(c->peers, peer, p->obj, c->o.chunk_size,
                             p->index, &p->id, NULL, p->chunk_len);
    void *buf = chunk_buffer(c, p);
    if (!buf)
        return DSC_ENOMEM;
    int rc = dsc_peers_get(c->peers, peer, p->obj, c->o.chunk_size, p->index,
                           &p->id, buf, p->chunk_len);
    if (rc == 0 && keep)
        store_chunk(c, &p->id, buf, p->chunk_len);
    chunk_buffer_done(c, p, buf, rc == 0);
    return rc;
}

static long left_ms(int64_t end)
{
    int64_t left = end - dsc_now_ms();
    return left > 0 ? (long)left : 0;
}

/* Take the part's single-flight lock: 0, or <0 (then fetch unlocked: a
 * duplicate GET beats a hang). Chunk 0 may be on its way with the
 * object's first GET (see first_fetch_id): wait for that too. Two locks
 * are always taken in ascending id order (two threads each holding one
 * and wanting the other would wait out the flight timeout). */
static int flight_lock(dsc_cache *c, const part *p)
{
    dsc_flight *fl = dsc_index_flight(c->ix);
    long wait = c->o.flight_timeout_ms;
    dsc_chunk_id fid;
    if (p->index != 0 || first_fetch_id(c, p->obj->bucket, p->obj->key, &fid))
        return dsc_flight_lock(fl, &p->id, wait);
    /* One deadline for both: the second wait gets what the first left. */
    int64_t end = dsc_now_ms() + wait;
    int rc, first_rc;
    if (memcmp(fid.b, p->id.b, sizeof fid.b) < 0) {
        first_rc = dsc_flight_lock(fl, &fid, wait);
        rc = dsc_flight_lock(fl, &p->id, left_ms(end));
    } else {
        rc = dsc_flight_lock(fl, &p->id, wait);
        first_rc = dsc_flight_lock(fl, &fid, left_ms(end));
    }
    if (first_rc == 0)
        dsc_flight_unlock(fl, &fid);
    return rc;
}

/* A chunk streamed to its temporary file as its GET delivers it. */
struct dsc_chunk_sink {
    dsc_cache *c;
    dsc_store_tmp tmp;
    XXH3_state_t *hash;
    size_t len;                    /* the claim's */
    size_t written;                /* bytes in order from 0 so far */
    int rc;                        /* of a failed write */
    int reserved;                  /* len counted in c->streaming */
    char why[256];                 /* rc's message: the loop's thread has
                                      other transfers' errors after it */
};

static void sink_free(dsc_chunk_sink *k)
{
    if (!k)
        return;
    if (k->reserved)
        dsc_gauge_sub(&k->c->streaming, k->len);
    dsc_store_drop_tmp(k->c->store, &k->tmp);
    XXH3_freeState(k->hash);
    free(k);
}

static int sink_write(void *sink, const void *p, size_t len, size_t at)
{
    dsc_chunk_sink *k = sink;
    if (k->rc)
        return k->rc;
    /* A retry starts the body over. */
    int rc = 0;
    if (at != k->written) {
        if (at != 0) {
            rc = dsc_fail(DSC_EIO, "cache write: piece at %zu after %zu bytes",
                          at, k->written);
            goto done;
        }
        XXH3_64bits_reset(k->hash);
        k->written = 0;
    }
    rc = dsc_store_write_at(k->c->store, &k->tmp, p, len, at);
    if (!rc) {
        XXH3_64bits_update(k->hash, p, len);
        k->written += len;
    }
done:
    if (rc) {
        k->rc = rc;
        snprintf(k->why, sizeof k->why, "%s", dsc_errmsg());
    }
    return rc;
}

int dsc_cache_chunk_sink(dsc_cache *c, dsc_chunk_claim *cl)
{
    int rc = 0;
    dsc_errsave saved;
    dsc_err_save(&saved);
    dsc_chunk_sink *k = calloc(1, sizeof *k);
    if (!k) {
        rc = DSC_ENOMEM;
        goto done;
    }
    k->c = c;
    k->len = cl->len;
    k->tmp.fd = -1;
    if (!(k->hash = XXH3_createState())) {
        rc = DSC_ENOMEM;
        goto done;
    }
    /* Streams hold their room for as long as their GETs take: only on a
     * disk with plenty free. A nearly full one is left to the buffered
     * path, whose short writes make room as they need it. */
    struct statvfs sv;
    uint64_t want = 4 * (dsc_atomic_get(&c->streaming) + cl->len);
    if (statvfs(c->dir, &sv) || (uint64_t)sv.f_bavail * sv.f_frsize < want) {
        rc = DSC_NOT_ADMITTED;
        goto done;
    }
    rc = dsc_store_open_tmp(c->store, cl->len, &k->tmp);
    if (rc)
        goto done;
    dsc_gauge_add(&c->streaming, k->len);
    k->reserved = 1;
    XXH3_64bits_reset(k->hash);
done:
    if (rc) {
        sink_free(k);
        k = NULL;
    }
    cl->sink = k;
    cl->http = (dsc_http_sink){ sink_write, k };
    dsc_err_restore(&saved);
    return rc;
}

/* The sink's GET ended with rc: commit its file (rc 0), and free it.
 * A GET stopped only because the cache could not write is the cache's
 * trouble, counted and logged as a failed store is, not the caller's:
 * returns 0 then (the chunk is not cached), else rc. */
static int sink_end(dsc_cache *c, const dsc_chunk_id *id, dsc_chunk_sink *k,
                    int rc)
{
    dsc_errsave saved;
    dsc_err_save(&saved);
    if (rc == 0) {
        note_store(c, k->written == k->len
                          ? commit_tmp(c, id, &k->tmp, k->len,
                                       XXH3_64bits_digest(k->hash))
                          : dsc_fail(DSC_EIO, "cache write: %zu of %zu bytes",
                                     k->written, k->len));
    } else if (k->rc) {
        /* A filesystem without fallocate fills mid-stream: room for the
         * next ones. */
        if (k->tmp.err == ENOSPC)
            make_room(c, k->len);
        note_store(c, dsc_fail(k->rc, "%s", k->why));
        rc = 0;
    }
    sink_free(k);
    dsc_err_restore(&saved);
    return rc;
}

/* GET the chunk from S3 and store it; copy the part out. A chunk only
 * for the cache (a prefetch) streams to its file: no buffer. */
static int from_s3(dsc_cache *c, dsc_s3 *s3, const part *p)
{
    dsc_chunk_claim cl = { .id = p->id, .len = p->chunk_len };
    if (!p->dst && p->chunk_len >= 2 && dsc_cache_chunk_sink(c, &cl) == 0) {
        uint64_t start = p->index * c->o.chunk_size;
        int rc = dsc_s3_get_sink(s3, p->obj->bucket, p->obj->key, p->obj->etag,
                                 p->obj->size, start, p->chunk_len, &cl.http);
        return sink_end(c, &p->id, cl.sink, rc);
    }
    void *buf = chunk_buffer(c, p);
    if (!buf)
        return DSC_ENOMEM;
    uint64_t start = p->index * c->o.chunk_size;
    int rc = dsc_s3_get(s3, p->obj->bucket, p->obj->key, p->obj->etag,
                        p->obj->size, start, p->chunk_len, buf);
    if (rc == 0)
        store_chunk(c, &p->id, buf, p->chunk_len);
    chunk_buffer_done(c, p, buf, rc == 0);
    return rc;
}

/* One part through the phases: local cache, owner node, single flight
 * (and a second look), S3. *fetched tells whether this call went to S3. */
static int chunk_op(dsc_cache *c, dsc_s3 *s3, part *p, int *fetched)
{
    uint64_t start = p->index * c->o.chunk_size;
    p->chunk_len = (size_t)(p->obj->size - start < c->o.chunk_size
                                ? p->obj->size - start : c->o.chunk_size);
    *fetched = 0;
    if (dsc_chunk_id_make(c->o.origin, p->obj, c->o.chunk_size, p->index, &p->id))
        return DSC_ENOMEM;
    if ((p->dst && dsc_store_read_open(c->store, &p->id, p->dst, p->off,
                                       p->len, touch_every_ms(c),
                                       &p->touch_due) == 0) ||
        try_cached(c, p, 0) == 0) {
        count_hit(c, p);
        return 0;
    }
    dsc_peer_pick owner;
    if (c->peers && dsc_peers_route(c->peers, &p->id, &owner)) {
        /* The owner fetches from S3 at most once for the whole cluster. */
        dsc_errsave saved;
        dsc_err_save(&saved);
        int rc = from_peer(c, p, &owner);
        dsc_peers_release(&owner);
        if (rc == 0) {
            /* A HEAD (no dst, not kept here) moved no bytes. */
            int moved = p->dst || dsc_peers_keep_local(c->peers);
            dsc_cache_account(c, p->obj, NULL, DSC_SRC_PEER,
                              moved ? p->chunk_len : 0, p->dst != NULL, 1);
            return 0;
        }
        dsc_err_restore(&saved);   /* the S3 read below decides */
    }
    int locked = flight_lock(c, p) == 0;
    /* Another thread or process may have fetched it while we waited: a
     * read then joins that fetch instead of repeating it. */
    int hit = locked && try_cached(c, p, 1) == 0;
    int rc = hit ? 0 : from_s3(c, s3, p);
    if (locked)
        dsc_flight_unlock(dsc_index_flight(c->ix), &p->id);
    /* Counted after the unlock: a full access batch is an LMDB write,
     * which must not lengthen the lock's hold. */
    if (hit) {
        count_hit(c, p);
    } else if (rc == 0) {
        *fetched = 1;
        if (p->dst)
            bump(&c->n.misses, 1);
        dsc_cache_account(c, p->obj, NULL, DSC_SRC_S3, p->chunk_len,
                          p->dst != NULL, 1);
    }
    return rc;
}

/* Chunk 0 of an object whose first GET runs is that GET's: busy. The
 * first-fetch lock is only looked at (taken and let go at once), so no
 * two locks are ever held here and no order matters. */
static int first_fetch_busy(dsc_cache *c, const part *p)
{
    dsc_chunk_id fid;
    if (p->index != 0 || first_fetch_id(c, p->obj->bucket, p->obj->key, &fid))
        return 0;
    dsc_flight *fl = dsc_index_flight(c->ix);
    int rc = dsc_flight_trylock(fl, &fid);
    if (rc == 0)
        dsc_flight_unlock(fl, &fid);
    return rc != 0;
}

int dsc_cache_chunk_begin(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                          dsc_chunk_claim *cl)
{
    int rc = dsc_cache_ensure_process(c);
    if (rc)
        return rc;
    part p = { .obj = obj, .index = index };
    uint64_t start = index * c->o.chunk_size;
    p.chunk_len = (size_t)(obj->size - start < c->o.chunk_size
                               ? obj->size - start : c->o.chunk_size);
    if (dsc_chunk_id_make(c->o.origin, obj, c->o.chunk_size, index, &p.id))
        return DSC_ENOMEM;
    if (try_cached(c, &p, 0) == 0)
        return DSC_EXISTS;
    dsc_peer_pick owner;
    if (c->peers && dsc_peers_route(c->peers, &p.id, &owner)) {
        dsc_peers_release(&owner);
        return DSC_ABSENT;
    }
    if (first_fetch_busy(c, &p))
        return DSC_BUSY;
    dsc_flight *fl = dsc_index_flight(c->ix);
    rc = dsc_flight_trylock(fl, &p.id);
    if (rc)
        return rc;
    /* Another fetch may have stored it before our lock. */
    if (try_cached(c, &p, 1) == 0) {
        dsc_flight_unlock(fl, &p.id);
        return DSC_EXISTS;
    }
    cl->id = p.id;
    cl->len = p.chunk_len;
    cl->sink = NULL;
    return 0;
}

int dsc_cache_chunk_finish(dsc_cache *c, const dsc_objref *obj,
                           dsc_chunk_claim *cl, const void *data, int rc)
{
    if (cl->sink)
        rc = sink_end(c, &cl->id, cl->sink, rc);
    else if (rc == 0)
        store_chunk(c, &cl->id, data, cl->len);
    cl->sink = NULL;
    dsc_flight_unlock(dsc_index_flight(c->ix), &cl->id);
    /* Counted after the unlock, as chunk_op does. */
    if (rc == 0)
        dsc_cache_account(c, obj, NULL, DSC_SRC_S3, cl->len, 0, 1);
    return rc;
}

int dsc_cache_read_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                         uint64_t index, void *dst, size_t off, size_t len,
                         int *fetched)
{
    int ignored, rc = dsc_cache_ensure_process(c);
    part p = { .obj = obj, .index = index, .dst = dst, .off = off, .len = len };
    return rc ? rc : chunk_op(c, s3, &p, fetched ? fetched : &ignored);
}

int dsc_cache_ensure_chunk(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                           uint64_t index, int *fetched)
{
    int rc = dsc_cache_ensure_process(c);
    part p = { .obj = obj, .index = index };
    *fetched = 0;
    return rc ? rc : chunk_op(c, s3, &p, fetched);
}

int dsc_cache_read(dsc_cache *c, dsc_s3 *s3, const dsc_objref *obj,
                   void *buf, size_t len, uint64_t off)
{
    int rc = dsc_cache_ensure_process(c);
    uint64_t cs = c->o.chunk_size;
    char *out = buf;
    while (!rc && len > 0) {
        size_t in_off = (size_t)(off % cs);
        part p = { .obj = obj, .index = off / cs, .dst = out, .off = in_off,
                   .len = cs - in_off < len ? (size_t)(cs - in_off) : len };
        int fetched;
        rc = chunk_op(c, s3, &p, &fetched);
        out += p.len;
        off += p.len;
        len -= p.len;
    }
    return rc;
}

int dsc_cache_contains(dsc_cache *c, const dsc_objref *obj, uint64_t index)
{
    dsc_chunk_id id;
    dsc_chunk_rec rec;
    return dsc_cache_ensure_process(c) == 0 &&
           dsc_chunk_id_make(c->o.origin, obj, c->o.chunk_size, index, &id) == 0 &&
           dsc_index_get(c->ix, &id, &rec) == 0;
}

int dsc_cache_open_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                         uint64_t *size, uint64_t *xxh)
{
    dsc_chunk_id id;
    dsc_chunk_rec rec;
    uint64_t open_size;
    if (dsc_cache_ensure_process(c) ||
        dsc_chunk_id_make(c->o.origin, obj, c->o.chunk_size, index, &id))
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
    dsc_cache_account(c, obj, touched_ago_ms(&rec) >= touch_every_ms(c) ? &id : NULL,
                      DSC_SRC_CACHE, rec.size, 1, 1);
    return fd;
}

int dsc_cache_put_chunk(dsc_cache *c, const dsc_objref *obj, uint64_t index,
                        const void *data, size_t len)
{
    dsc_chunk_id id;
    int rc = dsc_cache_ensure_process(c);
    if (rc)
        return rc;
    if (dsc_chunk_id_make(c->o.origin, obj, c->o.chunk_size, index, &id))
        return DSC_ENOMEM;
    store_chunk(c, &id, data, len);
    /* The chunk came with an object's first GET, under its first-fetch
     * lock: counted, written with a later flush. */
    dsc_cache_account(c, obj, NULL, DSC_SRC_S3, len, 0, 0);
    return 0;
}
