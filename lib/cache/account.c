/* What this process tells the node's index about its reads: access
 * times (for LRU), hits, bytes by source and by key prefix, and its S3
 * requests. Counted under the cache's leaf lock and written in one LMDB
 * transaction about once a second (or when a batch fills), so the hit
 * path has no write transaction of its own. */
#include <stdio.h>
#include <string.h>
#include "cache/internal.h"

#define FLUSH_EVERY_MS 1000

/* The key's first `depth` directories ("train/" of "train/x.jpg" at any
 * depth, "a/b/" of "a/b/c/d.bin" at 2); "" for a key without one. Cut
 * to fit the record, never inside a UTF-8 sequence (label values must be
 * whole UTF-8). */
static size_t prefix_len(const char *key, unsigned depth)
{
    size_t end = 0;
    unsigned seen = 0;
    for (size_t i = 0; key[i] && seen < depth; i++)
        if (key[i] == '/') {
            end = i + 1;
            seen++;
        }
    if (end > DSC_PREFIX_LEN - 1) {
        end = DSC_PREFIX_LEN - 1;
        while (end && ((unsigned char)key[end] & 0xC0) == 0x80)
            end--;
    }
    return end;
}

/* The pending record of obj's prefix, made when new; NULL when all
 * DSC_PENDING_PREFIXES are taken. Under c->lock. */
static dsc_prefix_count *pending_prefix(dsc_cache *c, const dsc_objref *obj)
{
    size_t n = prefix_len(obj->key, c->o.prefix_depth ? c->o.prefix_depth : 2);
    for (size_t i = 0; i < c->nprefixes; i++) {
        dsc_prefix_count *p = &c->prefixes[i];
        if (strncmp(p->prefix, obj->key, n) == 0 && p->prefix[n] == 0 &&
            strncmp(p->bucket, obj->bucket, DSC_PREFIX_BUCKET - 1) == 0)
            return p;
    }
    if (c->nprefixes == DSC_PENDING_PREFIXES)
        return NULL;
    dsc_prefix_count *p = &c->prefixes[c->nprefixes++];
    memset(p, 0, sizeof *p);
    snprintf(p->bucket, sizeof p->bucket, "%s", obj->bucket);
    memcpy(p->prefix, obj->key, n);
    return p;
}

void dsc_cache_account_reset(dsc_cache *c)
{
    c->ntouched = 0;
    c->pending_hits = c->pending_misses = 0;
    memset(&c->pending, 0, sizeof c->pending);
    c->nprefixes = 0;
    c->last_flush_ms = dsc_now_ms();
}

void dsc_cache_account(dsc_cache *c, const dsc_objref *obj,
                       const dsc_chunk_id *id, int src, uint64_t bytes,
                       int read, int may_flush)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        dsc_prefix_count *p = pending_prefix(c, obj);
        if (!p) {
            /* More prefixes than a batch holds: write the batch first. */
            pthread_mutex_unlock(&c->lock);
            dsc_cache_flush(c);
            continue;
        }
        p->bytes[src] += bytes;
        if (src == DSC_SRC_CACHE) {
            c->pending_hits += read;
            c->pending.cache_bytes += bytes;
            if (id && c->ntouched < DSC_TOUCH_BATCH)
                c->touched[c->ntouched++] = *id;
        } else if (src == DSC_SRC_PEER) {
            c->pending.peer_hits += read;
            c->pending.peer_bytes += bytes;
        }
        if (src != DSC_SRC_CACHE && !read && bytes) {
            c->pending.prefetched++;
            c->pending.prefetched_bytes += bytes;
        }
        int flush = c->ntouched == DSC_TOUCH_BATCH ||
                    (may_flush && dsc_now_ms() - c->last_flush_ms >= FLUSH_EVERY_MS);
        pthread_mutex_unlock(&c->lock);
        if (flush)
            dsc_cache_flush(c);
        return;
    }
}

void dsc_cache_flush(dsc_cache *c)
{
    if (!c || dsc_cache_ensure_process(c) || !c->ix)
        return;
    dsc_chunk_id batch[DSC_TOUCH_BATCH];
    dsc_prefix_count prefixes[DSC_PENDING_PREFIXES];
    dsc_flush f = { .ids = batch, .prefixes = prefixes };
    pthread_mutex_lock(&c->lock);
    f.nids = c->ntouched;
    memcpy(batch, c->touched, f.nids * sizeof *batch);
    f.nprefixes = c->nprefixes;
    memcpy(prefixes, c->prefixes, f.nprefixes * sizeof *prefixes);
    f.hits = c->pending_hits;
    f.misses = c->pending_misses;
    f.add = c->pending;
    dsc_cache_account_reset(c);
    pthread_mutex_unlock(&c->lock);
    /* S3's share is taken from its client outside our lock (it has its
     * own); what a failed write loses is lost once, never counted twice. */
    if (c->o.take_s3)
        c->o.take_s3(c->o.take_s3_arg, &f.add);
    static const dsc_node_counters zero;
    if (f.nids || f.hits || f.misses || f.nprefixes ||
        memcmp(&f.add, &zero, sizeof zero)) {
        f.now_ms = dsc_wall_ms();
        dsc_index_flush(c->ix, &f);
    }
}
