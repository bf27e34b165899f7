/* The node cache's life cycle: open, fork handling, the batched access
 * times, stats and sweeping. The read path is in read.c. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>
#include "cache/internal.h"
#include "core/fork.h"
#include "core/log.h"

static int attach(dsc_cache *c)
{
    /* Room for every chunk the cap allows were chunks as small as 64 KiB
     * (small objects make small chunks) and for the metadata kept, at
     * about 512 bytes an entry with the B-tree's slack; it grows anyway. */
    uint64_t entries = c->o.cap / 65536 + c->o.meta_max;
    uint64_t want = entries * 512;
    dsc_index_opts io = {
        .sync = c->o.sync, .max_readers = c->o.index_max_readers,
        .meta_max = c->o.meta_max,
        .map_size = c->o.index_map_size ? c->o.index_map_size
                  : (size_t)(want < ((uint64_t)1 << 30) ? (uint64_t)1 << 30
                             : (want + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1)),
    };
    int rc = dsc_index_open_opts(c->dir, &io, &c->ix);
    if (!rc)
        rc = dsc_store_open(c->dir, c->o.fd_cache, &c->store);
    if (rc) {
        dsc_index_release(c->ix);
        c->ix = NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->npool = 0;
    c->streaming = 0;   /* a child's parent's streams are not its own */
    dsc_cache_account_reset(c);
    return rc;
}

uint64_t dsc_cache_disk_room(const dsc_cache *c, uint64_t used, uint64_t writing)
{
    struct statvfs sv;
    if (statvfs(c->dir, &sv) || !sv.f_frsize)
        return 0;
    uint64_t total = used + (uint64_t)sv.f_bavail * sv.f_frsize;
    /* Slack for chunks other threads are writing, directories and the
     * index's growth: a tenth, and at least two writes of this size. */
    uint64_t slack = total / 10 > 2 * writing ? total / 10 : 2 * writing;
    return total > slack ? total - slack : 1;
}

int dsc_cache_shrink(dsc_cache *c, uint64_t disk_cap)
{
    enum { BATCH = 1024 };
    dsc_victim *v = malloc(BATCH * sizeof *v);
    if (!v)
        return DSC_ENOMEM;
    dsc_admit ad = { .cap = c->o.cap, .policy = DSC_POLICY_LRU,
                     .victims = v, .max_victims = BATCH };
    uint64_t left = 0;
    int rc;
    do {
        rc = dsc_index_shrink(c->ix, disk_cap, &ad, &left);
        dsc_cache_unlink_victims(c, &ad);
        disk_cap = UINT64_MAX;
    } while (!rc && left && ad.nvictims);
    free(v);
    return rc;
}

/* The capacity is the cache's, stored in its index: every process keeps
 * to the same one, and a context asking for another is told, not obeyed
 * (dsc_cache_set_capacity changes it). A filesystem limit learnt from a
 * full disk is raised again when space was freed since. */
static int adopt_capacity(dsc_cache *c)
{
    dsc_index_info inf;
    int rc = dsc_index_capacity(c->ix, c->o.cap, 0, &inf);
    if (rc)
        return rc;
    if (c->o.cap && c->o.cap != inf.capacity)
        dsc_log(DSC_LOG_WARN, "cache %s has a capacity of %llu bytes; this "
                "process's %llu (DSC_CACHE_SIZE or cache_size) is not "
                "applied: `dsc-stat --set-capacity SIZE` changes the cache's",
                c->dir, (unsigned long long)inf.capacity,
                (unsigned long long)c->o.cap);
    c->o.cap = inf.capacity;
    if (inf.disk_cap) {
        uint64_t room = dsc_cache_disk_room(c, inf.bytes, c->o.chunk_size);
        if (room > inf.disk_cap)
            rc = dsc_cache_shrink(c, room >= inf.capacity ? 0 : room);
    }
    return rc;
}

int dsc_cache_set_capacity_of(dsc_cache *c, uint64_t bytes)
{
    int rc = dsc_cache_ensure_process(c);
    dsc_index_info inf;
    if (!rc)
        rc = dsc_index_capacity(c->ix, bytes, 1, &inf);
    if (!rc) {
        c->o.cap = bytes;
        rc = dsc_cache_shrink(c, UINT64_MAX);
    }
    return rc;
}

int dsc_cache_open(const dsc_cache_opts *o, dsc_cache **out)
{
    dsc_cache *c = calloc(1, sizeof *c);
    if (!c)
        return DSC_ENOMEM;
    c->o = *o;
    c->dir = dsc_strdup(o->dir);
    c->origin = dsc_strdup(o->origin ? o->origin : "");
    c->o.dir = c->dir;
    c->o.origin = c->origin;
    if (!c->dir || !c->origin) {
        free(c->dir);
        free(c->origin);
        free(c);
        return DSC_ENOMEM;
    }
    int rc = attach(c);
    dsc_fork_mark(&c->fork_gen);
    if (!rc) {
        rc = adopt_capacity(c);
        if (rc) {
            dsc_store_free(c->store);
            dsc_index_release(c->ix);
        }
    }
    if (rc) {
        pthread_mutex_destroy(&c->lock);
        free(c->dir);
        free(c->origin);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* First use in a fork()ed child: the parent's index environment, open
 * files and mutexes stay the parent's; make our own. */
static int remake(void *arg)
{
    dsc_cache *c = arg;
    dsc_fork_graveyard(c->store);
    for (int i = 0; i < c->npool; i++)
        dsc_fork_graveyard(c->pool[i]);
    c->store = NULL;
    c->ix = NULL;
    return attach(c);
}

int dsc_cache_ensure_process(dsc_cache *c)
{
    return dsc_fork_ensure(&c->fork_gen, remake, c);
}

void dsc_cache_close(dsc_cache *c)
{
    if (!c)
        return;
    if (dsc_fork_current(&c->fork_gen)) {
        dsc_cache_flush(c);
        dsc_store_free(c->store);
        dsc_index_release(c->ix);
        for (int i = 0; i < c->npool; i++)
            dsc_bigbuf_free(c->pool[i], c->o.chunk_size);
        pthread_mutex_destroy(&c->lock);
    } else {
        dsc_fork_graveyard(c->store);
    }
    free(c->dir);
    free(c->origin);
    free(c);
}

void dsc_cache_set_peers(dsc_cache *c, struct dsc_peers *peers)
{
    c->peers = peers;
}

dsc_index *dsc_cache_index(dsc_cache *c)
{
    return dsc_cache_ensure_process(c) ? NULL : c->ix;
}

const char *dsc_cache_path(const dsc_cache *c)
{
    return c ? c->dir : NULL;
}

void *dsc_cache_pool_get(dsc_cache *c)
{
    void *p = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->npool)
        p = c->pool[--c->npool];
    pthread_mutex_unlock(&c->lock);
    return p ? p : dsc_bigbuf_alloc(c->o.chunk_size);
}

void dsc_cache_pool_put(dsc_cache *c, void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->npool < DSC_POOL_MAX) {
        c->pool[c->npool++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    dsc_bigbuf_free(p, c->o.chunk_size);
}

void dsc_cache_stats(dsc_cache *c, dsc_stats *st)
{
    st->hits = dsc_counter_get(&c->n.hits);
    st->misses = dsc_counter_get(&c->n.misses);
    st->bytes_from_cache = dsc_counter_get(&c->n.bytes_cache);
    st->evictions = dsc_counter_get(&c->n.evictions);
    st->corrupt_dropped = dsc_counter_get(&c->n.corrupt);
    st->cache_errors = dsc_counter_get(&c->n.errors);
    st->not_admitted = dsc_counter_get(&c->n.not_admitted);
    st->meta_hits = dsc_counter_get(&c->n.meta_hits);
    st->meta_expired = dsc_counter_get(&c->n.meta_expired);
    st->cache_capacity = c->o.cap;
    st->chunk_size = c->o.chunk_size;
    st->cache_policy = c->o.policy;
    dsc_cache_flush(c);
    dsc_index_info inf;
    if (!dsc_cache_ensure_process(c) && c->ix && dsc_index_info_get(c->ix, &inf) == 0) {
        st->cache_bytes = inf.bytes;
        st->cache_chunks = inf.chunks;
        st->node_hits = inf.hits;
        st->node_misses = inf.misses;
        st->node_evictions = inf.evictions;
        st->node_corrupt = inf.corrupt;
        st->node_capacity = dsc_index_effective_cap(&inf, c->o.cap);
        st->node_capacity_set = inf.capacity ? inf.capacity : c->o.cap;
        st->node_capacity_disk = inf.disk_cap;
        st->index_writes = dsc_index_writes(c->ix);
        st->node_meta_dropped = inf.meta_dropped;
        dsc_index_map_info(c->ix, &st->index_map_bytes, &st->index_used_bytes,
                           &st->index_full);
        dsc_node_counters nc;
        if (dsc_index_counters_get(c->ix, &nc) == 0) {
            st->node_s3_gets = nc.s3_gets;
            st->node_s3_heads = nc.s3_heads;
            st->node_s3_lists = nc.s3_lists;
            st->node_s3_retries = nc.s3_retries;
            st->node_s3_bytes = nc.s3_bytes;
            st->node_cache_bytes = nc.cache_bytes;
            st->node_peer_hits = nc.peer_hits;
            st->node_peer_bytes = nc.peer_bytes;
            st->node_prefetched = nc.prefetched;
            st->node_prefetched_bytes = nc.prefetched_bytes;
        }
    }
}

int dsc_cache_prefixes(dsc_cache *c, dsc_prefix_count *out, size_t cap,
                       size_t *total)
{
    dsc_cache_flush(c);
    int rc = dsc_cache_ensure_process(c);
    return rc ? rc : dsc_index_prefixes(c->ix, out, cap, total);
}

typedef struct gc_state {
    dsc_cache *c;
    int64_t removed;
    uint64_t bytes;
} gc_state;

static int gc_one(void *arg, const dsc_chunk_id *id, uint64_t seq,
                  int dir_fd, const char *name, uint64_t size)
{
    gc_state *g = arg;
    dsc_chunk_rec rec;
    /* Safe beside live writers: a file is renamed into place only after
     * its record is committed, so a file without a matching record is
     * debris (a crash between an eviction's commit and its unlink). */
    int rc = seq ? dsc_index_get(g->c->ix, id, &rec) : DSC_ABSENT;
    if (rc != 0 && rc != DSC_ABSENT)
        return 0;   /* cannot tell (index trouble): keep the file */
    if (rc == DSC_ABSENT || rec.seq != seq) {
        if (unlinkat(dir_fd, name, 0) == 0) {
            g->removed++;
            g->bytes += size;
        }
    }
    return 0;
}

int64_t dsc_cache_gc(dsc_cache *c)
{
    int rc = dsc_cache_ensure_process(c);
    if (rc)
        return rc;
    gc_state g = { c, 0, 0 };
    rc = dsc_store_walk(c->store, gc_one, &g);
    if (g.removed)
        dsc_log(DSC_LOG_INFO, "cache gc: removed %lld stray files, %llu bytes",
                (long long)g.removed, (unsigned long long)g.bytes);
    return rc ? rc : g.removed;
}

const char *dsc_cache_origin(const dsc_cache *c)
{
    return c->o.origin;
}

uint32_t dsc_cache_chunk_size(const dsc_cache *c)
{
    return c->o.chunk_size;
}
