/* Object metadata in the index: meta holds what S3 said of an object,
 * meta_age orders the entries by when it said it, so the oldest go first
 * once there are more than meta_max (metadata must never starve chunks of
 * room: an entry lost costs a HEAD, a chunk lost a GET). */
#include <errno.h>
#include <string.h>
#include <xxhash.h>
#include "cache/index_db.h"

/* The origin's XXH128 (fixed size: LMDB keys hold at most 511 bytes),
 * then bucket \0 key. */
static int meta_key(dsc_buf *b, const char *origin, const char *bucket,
                    const char *key)
{
    XXH128_canonical_t o;
    XXH128_canonicalFromHash(&o, XXH3_128bits(origin, strlen(origin)));
    dsc_buf_add(b, o.digest, sizeof o.digest);
    dsc_buf_adds(b, bucket);
    dsc_buf_add(b, "", 1);   /* NUL separator: keys never hold NUL */
    dsc_buf_adds(b, key);
    return dsc_buf_oom(b) ? DSC_ENOMEM : 0;
}

typedef struct meta_head {
    uint64_t size, fetched_ms;
} meta_head;

/* be64 fetched_ms ‖ XXH3-64 of the meta key: oldest first, unique. */
static void age_key(uint8_t out[16], uint64_t fetched_ms, const MDB_val *mk)
{
    uint64_t h = XXH3_64bits(mk->mv_data, mk->mv_size);
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(fetched_ms >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(h >> (56 - 8 * i));
    }
}

/* Delete the meta entry at mk (if any) with its age key, inside txn. */
static int meta_drop(MDB_txn *txn, dsc_index *ix, MDB_val *mk)
{
    MDB_val v;
    int rc = mdb_get(txn, ix->meta, mk, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if (v.mv_size >= sizeof(meta_head)) {
        meta_head h;
        uint8_t ak[16];
        memcpy(&h, v.mv_data, sizeof h);
        age_key(ak, h.fetched_ms, mk);
        MDB_val a = { sizeof ak, ak };
        rc = mdb_del(txn, ix->meta_age, &a, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    }
    return mdb_del(txn, ix->meta, mk, NULL);
}

int dsc_ix_meta_trim(MDB_txn *txn, dsc_index *ix, uint64_t n, uint64_t *dropped)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *dropped = 0;
    int rc = mdb_cursor_open(txn, ix->meta_age, &cur);
    if (rc)
        return rc;
    while (!rc && *dropped < n) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc)
            break;
        MDB_val mk = v;
        rc = mdb_del(txn, ix->meta, &mk, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (!rc)
            rc = mdb_cursor_del(cur, 0);
        (*dropped)++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    if (!rc && *dropped) {
        dsc_index_info inf;
        rc = dsc_ix_read_info(txn, ix, &inf);
        inf.meta_dropped += *dropped;
        if (!rc)
            rc = dsc_ix_write_info(txn, ix, &inf);
    }
    return rc;
}

int dsc_index_meta_get(dsc_index *ix, const char *origin, const char *bucket, const char *key,
                       uint64_t *size, char *etag, size_t etag_cap,
                       uint64_t *fetched_ms)
{
    dsc_buf kb = { 0 };
    if (meta_key(&kb, origin, bucket, key))
        return DSC_ENOMEM;
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, MDB_RDONLY, &txn, "read");
    if (rc) {
        dsc_buf_free(&kb);
        return rc;
    }
    MDB_val k = { kb.len, kb.data }, v;
    int ret = DSC_ABSENT;
    if (kb.len <= 511 && mdb_get(txn, ix->meta, &k, &v) == 0 &&
        v.mv_size > sizeof(meta_head) &&
        v.mv_size - sizeof(meta_head) < etag_cap) {
        meta_head h;
        memcpy(&h, v.mv_data, sizeof h);
        size_t el = v.mv_size - sizeof h;
        memcpy(etag, (char *)v.mv_data + sizeof h, el);
        etag[el] = '\0';
        *size = h.size;
        *fetched_ms = h.fetched_ms;
        ret = 0;
    }
    dsc_ix_abort(ix, txn);
    dsc_buf_free(&kb);
    return ret;
}

static int put_many_once(dsc_index *ix, const char *origin, const char *bucket,
                         const dsc_meta_entry *e, size_t n, uint64_t fetched_ms)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    dsc_buf kb = { 0 }, vb = { 0 };
    for (size_t i = 0; i < n && !rc; i++) {
        meta_head h = { e[i].size, fetched_ms };
        dsc_buf_reset(&kb);
        dsc_buf_reset(&vb);
        if (meta_key(&kb, origin, bucket, e[i].key) || dsc_buf_add(&vb, &h, sizeof h) ||
            dsc_buf_adds(&vb, e[i].etag)) {
            rc = ENOMEM;
            break;
        }
        /* LMDB keys are at most 511 bytes; longer names just are not
         * cached, and over-long ETags are not ours to trust. */
        if (kb.len > 511 || strlen(e[i].etag) >= 256)
            continue;
        MDB_val k = { kb.len, kb.data }, v = { vb.len, vb.data };
        uint8_t ak[16];
        age_key(ak, fetched_ms, &k);
        MDB_val a = { sizeof ak, ak };
        rc = meta_drop(txn, ix, &k);
        if (!rc)
            rc = mdb_put(txn, ix->meta, &k, &v, 0);
        if (!rc)
            rc = mdb_put(txn, ix->meta_age, &a, &k, 0);
    }
    MDB_stat st;
    if (!rc)
        rc = mdb_stat(txn, ix->meta, &st);
    if (!rc && st.ms_entries > ix->meta_max) {
        uint64_t dropped;
        rc = dsc_ix_meta_trim(txn, ix, st.ms_entries - ix->meta_max, &dropped);
    }
    dsc_buf_free(&kb);
    dsc_buf_free(&vb);
    return dsc_ix_end(ix, txn, rc, "meta put");
}

int dsc_index_meta_put_many(dsc_index *ix, const char *origin, const char *bucket,
                            const dsc_meta_entry *e, size_t n,
                            uint64_t fetched_ms)
{
    int rc;
    while ((rc = put_many_once(ix, origin, bucket, e, n, fetched_ms)) == DSC_RETRY)
        ;
    return rc;
}

int dsc_index_meta_put(dsc_index *ix, const char *origin, const char *bucket, const char *key,
                       uint64_t size, const char *etag, uint64_t fetched_ms)
{
    dsc_meta_entry e = { key, size, etag };
    return dsc_index_meta_put_many(ix, origin, bucket, &e, 1, fetched_ms);
}

int dsc_index_meta_del(dsc_index *ix, const char *origin, const char *bucket, const char *key)
{
    dsc_buf kb = { 0 };
    if (meta_key(&kb, origin, bucket, key))
        return DSC_ENOMEM;
    MDB_txn *txn;
    int rc = 0;
    if (kb.len > 511)
        goto done;   /* never stored */
    do {
        rc = dsc_ix_begin(ix, 0, &txn, "meta del");
        if (rc)
            goto done;
        MDB_val k = { kb.len, kb.data };
        rc = dsc_ix_end(ix, txn, meta_drop(txn, ix, &k), "meta del");
    } while (rc == DSC_RETRY);
done:
    dsc_buf_free(&kb);
    return rc;
}
