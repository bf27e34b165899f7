/* The node's traffic counters and its bytes per key prefix, in the index:
 *   info:     "counters"         -> dsc_node_counters
 *   prefixes: bucket \0 prefix   -> uint64[DSC_NSRC] bytes by source
 * Every process adds what it counted since its last flush inside the
 * flush's own write transaction (flush_once in index.c), so the totals
 * cost no transaction of their own and are exact across processes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cache/index_db.h"

static const char COUNTERS_KEY[] = "counters";

static int read_counters(MDB_txn *txn, const dsc_index *ix,
                         dsc_node_counters *out)
{
    MDB_val k = { sizeof COUNTERS_KEY - 1, (void *)COUNTERS_KEY }, v;
    int rc = mdb_get(txn, ix->info, &k, &v);
    memset(out, 0, sizeof *out);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    /* A shorter record is an older one: its missing counters are 0. */
    memcpy(out, v.mv_data, v.mv_size < sizeof *out ? v.mv_size : sizeof *out);
    return 0;
}

static int any_counter(const dsc_node_counters *n)
{
    static const dsc_node_counters zero;
    return memcmp(n, &zero, sizeof zero) != 0;
}

static int add_counters(MDB_txn *txn, dsc_index *ix, const dsc_node_counters *a)
{
    dsc_node_counters n;
    int rc = read_counters(txn, ix, &n);
    if (rc)
        return rc;
    n.s3_gets += a->s3_gets;
    n.s3_heads += a->s3_heads;
    n.s3_lists += a->s3_lists;
    n.s3_retries += a->s3_retries;
    n.s3_bytes += a->s3_bytes;
    n.cache_bytes += a->cache_bytes;
    n.peer_hits += a->peer_hits;
    n.peer_bytes += a->peer_bytes;
    n.prefetched += a->prefetched;
    n.prefetched_bytes += a->prefetched_bytes;
    MDB_val k = { sizeof COUNTERS_KEY - 1, (void *)COUNTERS_KEY };
    MDB_val v = { sizeof n, &n };
    return mdb_put(txn, ix->info, &k, &v, 0);
}

/* bucket \0 prefix; the empty bucket is the "other" record. */
static size_t prefix_key(uint8_t *key, const char *bucket, const char *prefix)
{
    size_t b = strnlen(bucket, DSC_PREFIX_BUCKET - 1);
    size_t p = strnlen(prefix, DSC_PREFIX_LEN - 1);
    memcpy(key, bucket, b);
    key[b] = 0;
    memcpy(key + b + 1, prefix, p);
    return b + 1 + p;
}

static int add_prefix(MDB_txn *txn, dsc_index *ix, const dsc_prefix_count *pc,
                      uint64_t *entries)
{
    uint8_t key[DSC_PREFIX_BUCKET + DSC_PREFIX_LEN];
    MDB_val k = { prefix_key(key, pc->bucket, pc->prefix), key }, v;
    int rc = mdb_get(txn, ix->prefixes, &k, &v);
    if (rc == MDB_NOTFOUND && *entries >= DSC_PREFIXES_KEPT) {
        /* Full: a new prefix's bytes go to "other", which is bounded too. */
        k.mv_size = prefix_key(key, "", "");
        rc = mdb_get(txn, ix->prefixes, &k, &v);
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    uint64_t bytes[DSC_NSRC] = { 0 };
    if (rc == 0)
        memcpy(bytes, v.mv_data, v.mv_size < sizeof bytes ? v.mv_size : sizeof bytes);
    else
        ++*entries;
    for (int s = 0; s < DSC_NSRC; s++)
        bytes[s] += pc->bytes[s];
    v.mv_size = sizeof bytes;
    v.mv_data = bytes;
    return mdb_put(txn, ix->prefixes, &k, &v, 0);
}

int dsc_ix_counters_add(MDB_txn *txn, dsc_index *ix, const dsc_flush *f)
{
    int rc = any_counter(&f->add) ? add_counters(txn, ix, &f->add) : 0;
    if (rc || !f->nprefixes)
        return rc;
    MDB_stat st;
    rc = mdb_stat(txn, ix->prefixes, &st);
    uint64_t entries = st.ms_entries;
    for (size_t i = 0; i < f->nprefixes && !rc; i++)
        rc = add_prefix(txn, ix, &f->prefixes[i], &entries);
    return rc;
}

int dsc_index_counters_get(dsc_index *ix, dsc_node_counters *out)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, MDB_RDONLY, &txn, "read");
    if (rc)
        return rc;
    rc = read_counters(txn, ix, out);
    dsc_ix_abort(ix, txn);
    return rc ? dsc_ix_fail(rc, "counters", ix->path) : 0;
}

static uint64_t total_of(const dsc_prefix_count *p)
{
    uint64_t t = 0;
    for (int s = 0; s < DSC_NSRC; s++)
        t += p->bytes[s];
    return t;
}

/* Most bytes first; ties by name, so the order is the same every time. */
static int by_bytes(const void *a, const void *b)
{
    const dsc_prefix_count *x = a, *y = b;
    uint64_t tx = total_of(x), ty = total_of(y);
    if (tx != ty)
        return tx > ty ? -1 : 1;
    int c = strcmp(x->bucket, y->bucket);
    return c ? c : strcmp(x->prefix, y->prefix);
}

static void from_record(const MDB_val *k, const MDB_val *v, dsc_prefix_count *p)
{
    memset(p, 0, sizeof *p);
    const char *key = k->mv_data;
    size_t b = strnlen(key, k->mv_size);
    memcpy(p->bucket, key, b < DSC_PREFIX_BUCKET ? b : DSC_PREFIX_BUCKET - 1);
    if (b < k->mv_size) {
        size_t rest = k->mv_size - b - 1;
        memcpy(p->prefix, key + b + 1,
               rest < DSC_PREFIX_LEN ? rest : DSC_PREFIX_LEN - 1);
    }
    memcpy(p->bytes, v->mv_data,
           v->mv_size < sizeof p->bytes ? v->mv_size : sizeof p->bytes);
}

int dsc_index_prefixes(dsc_index *ix, dsc_prefix_count *out, size_t cap,
                       size_t *total)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    dsc_prefix_count *all = NULL;
    size_t n = 0, have = 0;
    *total = 0;
    int rc = dsc_ix_begin(ix, MDB_RDONLY, &txn, "read");
    if (rc)
        return rc;
    rc = mdb_cursor_open(txn, ix->prefixes, &cur);
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        if (rc)
            break;
        if (n == have) {
            /* Bounded by DSC_PREFIXES_KEPT + 1 records. */
            size_t more = have ? 2 * have : 64;
            dsc_prefix_count *grown = realloc(all, more * sizeof *grown);
            if (!grown) {
                rc = ENOMEM;
                break;
            }
            all = grown;
            have = more;
        }
        from_record(&k, &v, &all[n++]);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (cur)
        mdb_cursor_close(cur);
    dsc_ix_abort(ix, txn);
    if (rc) {
        free(all);
        return dsc_ix_fail(rc, "prefixes", ix->path);
    }
    if (n) {
        qsort(all, n, sizeof *all, by_bytes);
        if (cap)
            memcpy(out, all, (n < cap ? n : cap) * sizeof *out);
    }
    *total = n;
    free(all);
    return 0;
}
