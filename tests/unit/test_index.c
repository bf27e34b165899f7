/* The LMDB chunk index: sharing of environments, records, byte totals,
 * eviction by policy (LRU and MinIO), removal, node counters and the
 * object metadata cache.
 *
 * Each test gets a fresh directory under /tmp with an open index in it;
 * both are released and removed afterwards. Record sizes are small numbers
 * and caps are set per insert, so "a cap for 3 records" is just 3 * size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lmdb.h>
#include "core/common.h"
#include "cache/index.h"

/* ---- fixture ----------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    dsc_index *ix;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dsc-test-index-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (dsc_index_open(f->dir, 0, &f->ix)) {
        print_error("dsc_index_open(%s): %s\n", f->dir, dsc_errmsg());
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dsc_index_release(f->ix);
    int rc = rm_tree(f->dir);
    free(f);
    return rc;
}

/* A distinct id per n (first bytes vary so stripes/fan-out differ too). */
static dsc_chunk_id mkid(unsigned n)
{
    dsc_chunk_id id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(n * 131u + (unsigned)i * 7u + (n >> 8));
    id.b[15] = (uint8_t)n;
    id.b[14] = (uint8_t)(n >> 8);
    return id;
}

static dsc_chunk_rec mkrec(uint64_t size, uint64_t seq, uint64_t atime)
{
    dsc_chunk_rec r = { .size = size, .xxh = 0x1234567890abcdefull ^ seq,
                        .seq = seq, .atime_ms = atime, .ctime_ms = atime };
    return r;
}

/* Insert record n with the given admission settings; victims go to v. */
typedef struct ins_args {
    uint64_t cap;
    int policy;
    uint64_t idle_ms;
    dsc_victim *v;
    size_t max_victims;
    size_t nvictims;       /* out */
} ins_args;

static int ins(dsc_index *ix, unsigned n, uint64_t size, uint64_t seq,
               uint64_t atime, ins_args *a)
{
    dsc_chunk_id id = mkid(n);
    dsc_chunk_rec r = mkrec(size, seq, atime);
    dsc_admit ad = { .cap = a->cap, .policy = a->policy,
                     .idle_ms = a->idle_ms, .victims = a->v,
                     .max_victims = a->max_victims };
    int rc = dsc_index_insert(ix, &id, &r, &ad);
    a->nvictims = ad.nvictims;
    return rc;
}

static int present(dsc_index *ix, unsigned n)
{
    dsc_chunk_id id = mkid(n);
    dsc_chunk_rec r;
    int rc = dsc_index_get(ix, &id, &r);
    if (rc < 0 && rc != DSC_ABSENT)
        fail_msg("dsc_index_get: %d (%s)", rc, dsc_errmsg());
    return rc == 0;
}

static dsc_index_info info(dsc_index *ix)
{
    dsc_index_info inf;
    int rc = dsc_index_info_get(ix, &inf);
    if (rc)
        fail_msg("dsc_index_info_get: %d (%s)", rc, dsc_errmsg());
    return inf;
}

static void assert_victim(const dsc_victim *v, unsigned n, uint64_t seq)
{
    dsc_chunk_id id = mkid(n);
    if (memcmp(v->id.b, id.b, 16) != 0)
        fail_msg("victim is not record %u", n);
    assert_int_equal(v->seq, seq);
}

/* ---- open / release ---------------------------------------------------- */

static void test_open_twice_shares_environment(void **state)
{
    fixture *f = *state;
    dsc_index *ix2 = NULL, *ix3 = NULL;
    assert_int_equal(dsc_index_open(f->dir, 0, &ix2), 0);
    /* Another spelling of the same directory is the same index too. */
    char alias[128];
    snprintf(alias, sizeof alias, "%s/./", f->dir);
    assert_int_equal(dsc_index_open(alias, 0, &ix3), 0);
    assert_ptr_equal(ix2, f->ix);
    assert_ptr_equal(ix3, f->ix);

    /* Both handles work and see each other's writes. */
    ins_args a = { .cap = 1000 };
    assert_int_equal(ins(f->ix, 1, 10, 11, 100, &a), 0);
    assert_int_equal(ins(ix2, 2, 20, 22, 200, &a), 0);
    assert_true(present(ix2, 1));
    assert_true(present(f->ix, 2));

    /* Releasing one leaves the other usable. */
    dsc_index_release(ix3);
    dsc_index_release(ix2);
    assert_true(present(f->ix, 1));
    assert_int_equal(ins(f->ix, 3, 30, 33, 300, &a), 0);
    assert_int_equal(info(f->ix).chunks, 3);
}

static void test_release_all_then_reopen(void **state)
{
    fixture *f = *state;
    dsc_index *ix2 = NULL;
    assert_int_equal(dsc_index_open(f->dir, 0, &ix2), 0);
    ins_args a = { .cap = 1000 };
    assert_int_equal(ins(f->ix, 1, 10, 11, 100, &a), 0);
    dsc_index_release(ix2);
    dsc_index_release(f->ix);
    f->ix = NULL;

    /* The environment was closed; a new open re-makes it from disk. */
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    dsc_chunk_id id = mkid(1);
    dsc_chunk_rec r;
    assert_int_equal(dsc_index_get(f->ix, &id, &r), 0);
    assert_int_equal(r.seq, 11);
    assert_int_equal(r.size, 10);
    assert_int_equal(ins(f->ix, 2, 10, 12, 200, &a), 0);
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.chunks, 2);
    assert_int_equal(inf.bytes, 20);
    assert_int_equal(inf.format, DSC_INDEX_FORMAT);
}

/* Change a record of the info database behind the library's back (the
 * index must be closed: LMDB allows one open per process); the record as
 * written goes to *seen when seen is not NULL. */
typedef void (*edit_fn)(void *record, uint32_t arg);

static void rewrite_record(const char *dir, const char *key, size_t size,
                           edit_fn edit, uint32_t arg, void *seen)
{
    char path[128];
    snprintf(path, sizeof path, "%s/index", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "info", 0, &dbi), 0);
    MDB_val k = { strlen(key), (void *)key }, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    unsigned char rec[512];
    assert_true(size <= sizeof rec && v.mv_size >= size);
    memcpy(rec, v.mv_data, size);
    edit(rec, arg);
    if (seen)
        memcpy(seen, rec, size);
    v.mv_data = rec;
    v.mv_size = size;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* As if the index was last opened before a reboot. */
static void other_boot(void *record, uint32_t fill)
{
    dsc_index_boot *b = record;
    memset(b->boot_id, (int)fill, sizeof b->boot_id);
}

/* As an older libdsc rewrites "info": whole, at its older size. */
static void nothing(void *record, uint32_t arg)
{
    (void)record;
    (void)arg;
}

/* Chunks inserted since the boot are told apart from older ones by
 * dsc_index_trust_from: a new boot moves it past every earlier insert,
 * even one stamped an hour ahead by a clock that was wrong then. */
static void test_trust_from_boot(void **state)
{
    fixture *f = *state;
    uint64_t now = dsc_wall_ms();
    uint64_t from = dsc_index_trust_from(f->ix);
    assert_true(from <= now);
    ins_args a = { .cap = 1000 };
    assert_int_equal(ins(f->ix, 1, 10, 11, now + 3600 * 1000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 10, 12, now, &a), 0);
    dsc_index_release(f->ix);

    /* Reopened in the same boot: the same window. */
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    assert_int_equal(dsc_index_trust_from(f->ix), from);
    dsc_index_release(f->ix);

    /* An older libdsc rewrites "info" whole; the boot record is apart. */
    rewrite_record(f->dir, "info", sizeof(dsc_index_info), nothing, 0, NULL);
    rewrite_record(f->dir, "boot", sizeof(dsc_index_boot), other_boot, 0x5a, NULL);
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    uint64_t after = dsc_index_trust_from(f->ix);
    assert_true(after > now + 3600 * 1000);
    dsc_index_release(f->ix);
    dsc_index_boot b;
    rewrite_record(f->dir, "boot", sizeof b, nothing, 0, &b);   /* as stored */
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    assert_int_equal(b.newest_insert_ms, now + 3600 * 1000);
    assert_int_equal(b.trust_from_ms, after);
}

static void test_open_on_regular_file_fails(void **state)
{
    fixture *f = *state;
    char file[128];
    snprintf(file, sizeof file, "%s/plain-file", f->dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    dsc_index *ix = NULL;
    dsc_clear_error();
    assert_int_equal(dsc_index_open(file, 0, &ix), DSC_EIO);
    assert_null(ix);
    assert_errmsg_has(file);
}

static void test_open_missing_dir_fails(void **state)
{
    fixture *f = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/no/such/dir", f->dir);
    dsc_index *ix = NULL;
    dsc_clear_error();
    assert_int_equal(dsc_index_open(missing, 0, &ix), DSC_EIO);
    assert_null(ix);
    assert_errmsg_has(missing);
}

static void test_open_index_is_a_file_fails(void **state)
{
    fixture *f = *state;
    char sub[128], idx[160];
    snprintf(sub, sizeof sub, "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(idx, sizeof idx, "%s/index", sub);
    int fd = open(idx, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    dsc_index *ix = NULL;
    dsc_clear_error();
    /* Not empty and not a cache (no marker): refused before any use. */
    assert_int_equal(dsc_index_open(sub, 0, &ix), DSC_EACCESS);
    assert_null(ix);
    assert_errmsg_has(sub);
    assert_errmsg_has("not a libdsc cache");
    /* A cache whose index/ is a file: refused as such. */
    char marker[200];
    snprintf(marker, sizeof marker, "%s/.dsc-cache", sub);
    int m = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(m >= 0);
    close(m);
    dsc_clear_error();
    assert_int_equal(dsc_index_open(sub, 0, &ix), DSC_EIO);
    assert_null(ix);
    assert_errmsg_has(idx);
}

/* ---- records ----------------------------------------------------------- */

static void test_get_absent(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(42);
    dsc_chunk_rec r;
    assert_int_equal(dsc_index_get(f->ix, &id, &r), DSC_ABSENT);
}

static void test_insert_then_get(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(7);
    dsc_chunk_rec in = { .size = 4096, .xxh = 0xfeedfacecafebeefull,
                         .seq = 0x0123456789abcdefull, .atime_ms = 1111,
                         .ctime_ms = 999 };
    dsc_victim v[4];
    dsc_admit ad = { .cap = 1 << 20, .policy = DSC_POLICY_LRU,
                     .victims = v, .max_victims = 4 };
    assert_int_equal(dsc_index_insert(f->ix, &id, &in, &ad), 0);
    assert_int_equal(ad.nvictims, 0);
    dsc_chunk_rec out;
    memset(&out, 0xaa, sizeof out);
    assert_int_equal(dsc_index_get(f->ix, &id, &out), 0);
    assert_memory_equal(&out, &in, sizeof in);
    /* A neighbour id is still absent. */
    dsc_chunk_id other = id;
    other.b[0] ^= 1;
    assert_int_equal(dsc_index_get(f->ix, &other, &out), DSC_ABSENT);
}

static void test_insert_existing_keeps_old(void **state)
{
    fixture *f = *state;
    ins_args a = { .cap = 1000 };
    assert_int_equal(ins(f->ix, 5, 100, 1, 500, &a), 0);
    assert_int_equal(ins(f->ix, 5, 300, 2, 900, &a), DSC_EXISTS);
    dsc_chunk_id id = mkid(5);
    dsc_chunk_rec r;
    assert_int_equal(dsc_index_get(f->ix, &id, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(r.size, 100);
    assert_int_equal(r.atime_ms, 500);
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 100);
    assert_int_equal(inf.chunks, 1);
    assert_int_equal(inf.inserts, 1);
}

static void test_totals_follow_inserts_and_removes(void **state)
{
    fixture *f = *state;
    ins_args a = { .cap = 10000 };
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 0);
    assert_int_equal(inf.chunks, 0);
    assert_int_equal(ins(f->ix, 1, 100, 1, 10, &a), 0);
    assert_int_equal(ins(f->ix, 2, 250, 2, 20, &a), 0);
    assert_int_equal(ins(f->ix, 3, 7, 3, 30, &a), 0);
    inf = info(f->ix);
    assert_int_equal(inf.bytes, 357);
    assert_int_equal(inf.chunks, 3);
    dsc_chunk_id id2 = mkid(2);
    assert_int_equal(dsc_index_remove(f->ix, &id2, 2, 0), 0);
    inf = info(f->ix);
    assert_int_equal(inf.bytes, 107);
    assert_int_equal(inf.chunks, 2);
    /* Removing what is gone changes nothing. */
    assert_int_equal(dsc_index_remove(f->ix, &id2, 2, 0), 0);
    inf = info(f->ix);
    assert_int_equal(inf.bytes, 107);
    assert_int_equal(inf.chunks, 2);
    /* An eviction takes its bytes off too: cap 107 + 50 - 1 forces one. */
    dsc_victim v[4];
    ins_args b = { .cap = 156, .v = v, .max_victims = 4 };
    assert_int_equal(ins(f->ix, 4, 50, 4, 40, &b), 0);
    assert_int_equal(b.nvictims, 1);
    assert_victim(&v[0], 1, 1);            /* atime 10: the oldest */
    inf = info(f->ix);
    assert_int_equal(inf.bytes, 57);
    assert_int_equal(inf.chunks, 2);
    assert_int_equal(inf.evictions, 1);
}

/* ---- LRU --------------------------------------------------------------- */

static void test_lru_evicts_oldest_atime(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    /* Insertion order is not access order: 2 has the oldest atime. */
    assert_int_equal(ins(f->ix, 1, 100, 101, 3000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 1000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, 2000, &a), 0);
    assert_int_equal(a.nvictims, 0);
    assert_int_equal(info(f->ix).bytes, 300);

    assert_int_equal(ins(f->ix, 4, 100, 104, 4000, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 2, 102);
    assert_int_equal(v[0].atime_ms, 1000);
    assert_false(present(f->ix, 2));
    assert_true(present(f->ix, 1));
    assert_true(present(f->ix, 3));
    assert_true(present(f->ix, 4));
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 300);
    assert_int_equal(inf.chunks, 3);
    assert_int_equal(inf.evictions, 1);

    /* Next in line is 3 (atime 2000). */
    assert_int_equal(ins(f->ix, 5, 100, 105, 5000, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 3, 103);
    assert_false(present(f->ix, 3));
}

static void test_lru_touch_makes_recent(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, 1000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 2000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, 3000, &a), 0);
    dsc_chunk_id id1 = mkid(1);
    assert_int_equal(dsc_index_touch(f->ix, &id1, 1, 5000, 0, 0), 0);
    dsc_chunk_rec r;
    assert_int_equal(dsc_index_get(f->ix, &id1, &r), 0);
    assert_int_equal(r.atime_ms, 5000);
    assert_int_equal(r.seq, 101);

    /* 1 is now the most recent, so 2 goes. */
    assert_int_equal(ins(f->ix, 4, 100, 104, 6000, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 2, 102);
    assert_true(present(f->ix, 1));
    assert_false(present(f->ix, 2));

    /* A touch with an older time never moves an entry back. */
    assert_int_equal(dsc_index_touch(f->ix, &id1, 1, 10, 0, 0), 0);
    assert_int_equal(dsc_index_get(f->ix, &id1, &r), 0);
    assert_int_equal(r.atime_ms, 5000);
    /* Then 3 (3000) goes before 1 (5000), and later 1 before 4 (6000). */
    assert_int_equal(ins(f->ix, 5, 100, 105, 7000, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 3, 103);
    assert_int_equal(ins(f->ix, 6, 100, 106, 8000, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 1, 101);
    assert_int_equal(v[0].atime_ms, 5000);
    assert_int_equal(info(f->ix).chunks, 3);
}

static void test_too_big_not_admitted(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, 1000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 2000, &a), 0);
    dsc_index_info before = info(f->ix);
    assert_int_equal(ins(f->ix, 3, 301, 103, 3000, &a), DSC_NOT_ADMITTED);
    assert_int_equal(a.nvictims, 0);
    assert_false(present(f->ix, 3));
    assert_true(present(f->ix, 1));
    assert_true(present(f->ix, 2));
    dsc_index_info after = info(f->ix);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.chunks, before.chunks);
    assert_int_equal(after.evictions, 0);
    assert_int_equal(after.inserts, before.inserts);
    assert_int_equal(after.rejected, before.rejected + 1);

    /* Exactly the cap fits (evicting everything else). */
    assert_int_equal(ins(f->ix, 4, 300, 104, 4000, &a), 0);
    assert_int_equal(a.nvictims, 2);
    after = info(f->ix);
    assert_int_equal(after.bytes, 300);
    assert_int_equal(after.chunks, 1);
}

static void test_max_victims_too_small(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, 1000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 2000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, 3000, &a), 0);

    /* 250 bytes need three 100-byte victims; one or two are not enough. */
    for (size_t max = 0; max < 3; max++) {
        ins_args s = { .cap = 300, .policy = DSC_POLICY_LRU,
                       .v = max ? v : NULL, .max_victims = max };
        assert_int_equal(ins(f->ix, 9, 250, 109, 9000, &s), DSC_NOT_ADMITTED);
        assert_int_equal(s.nvictims, 0);
        assert_true(present(f->ix, 1));
        assert_true(present(f->ix, 2));
        assert_true(present(f->ix, 3));
        assert_false(present(f->ix, 9));
        dsc_index_info inf = info(f->ix);
        assert_int_equal(inf.bytes, 300);
        assert_int_equal(inf.chunks, 3);
        assert_int_equal(inf.evictions, 0);
        assert_int_equal(inf.rejected, max + 1);
    }

    ins_args s = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 3 };
    assert_int_equal(ins(f->ix, 9, 250, 109, 9000, &s), 0);
    assert_int_equal(s.nvictims, 3);
    assert_victim(&v[0], 1, 101);
    assert_victim(&v[1], 2, 102);
    assert_victim(&v[2], 3, 103);
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 250);
    assert_int_equal(inf.chunks, 1);
    assert_int_equal(inf.evictions, 3);
}

/* ---- MinIO ------------------------------------------------------------- */

#define HOUR_MS (3600ull * 1000)

static void test_minio_refuses_while_fresh(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    uint64_t now = dsc_wall_ms();
    ins_args a = { .cap = 300, .policy = DSC_POLICY_MINIO,
                   .idle_ms = HOUR_MS, .v = v, .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, now - 3000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, now - 2000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, now - 1000, &a), 0);

    for (unsigned n = 4; n < 7; n++) {
        assert_int_equal(ins(f->ix, n, 100, 100 + n, now, &a), DSC_NOT_ADMITTED);
        assert_int_equal(a.nvictims, 0);
        assert_false(present(f->ix, n));
    }
    assert_true(present(f->ix, 1));
    assert_true(present(f->ix, 2));
    assert_true(present(f->ix, 3));
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 300);
    assert_int_equal(inf.chunks, 3);
    assert_int_equal(inf.evictions, 0);
    assert_int_equal(inf.rejected, 3);

    /* Not full yet: a smaller cache-filling insert is still admitted. */
    ins_args b = a;
    b.cap = 350;
    assert_int_equal(ins(f->ix, 8, 50, 108, now, &b), 0);
    assert_int_equal(b.nvictims, 0);
}

static void test_minio_evicts_idle_entries(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    uint64_t now = dsc_wall_ms();
    ins_args a = { .cap = 300, .policy = DSC_POLICY_MINIO,
                   .idle_ms = HOUR_MS, .v = v, .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, now - 2 * HOUR_MS, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, now - 3 * HOUR_MS, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, now - 60 * 1000, &a), 0);

    /* 2 is idle longest, then 1; 3 was read a minute ago and stays. */
    assert_int_equal(ins(f->ix, 4, 100, 104, now, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 2, 102);
    assert_int_equal(ins(f->ix, 5, 100, 105, now, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 1, 101);
    assert_int_equal(ins(f->ix, 6, 100, 106, now, &a), DSC_NOT_ADMITTED);
    assert_int_equal(a.nvictims, 0);
    assert_true(present(f->ix, 3));
    assert_true(present(f->ix, 4));
    assert_true(present(f->ix, 5));
    assert_false(present(f->ix, 6));
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 300);
    assert_int_equal(inf.evictions, 2);
    assert_int_equal(inf.rejected, 1);
}

static void test_minio_needs_all_victims_idle(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    uint64_t now = dsc_wall_ms();
    ins_args a = { .cap = 300, .policy = DSC_POLICY_MINIO,
                   .idle_ms = HOUR_MS, .v = v, .max_victims = 8 };
    assert_int_equal(ins(f->ix, 1, 100, 101, now - 2 * HOUR_MS, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, now - 1000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, now - 500, &a), 0);
    /* 150 bytes would need the idle 1 and the fresh 2: refused, and the
     * idle one is not deleted either. */
    assert_int_equal(ins(f->ix, 4, 150, 104, now, &a), DSC_NOT_ADMITTED);
    assert_int_equal(a.nvictims, 0);
    assert_true(present(f->ix, 1));
    assert_true(present(f->ix, 2));
    assert_true(present(f->ix, 3));
    assert_int_equal(info(f->ix).bytes, 300);
    assert_int_equal(info(f->ix).evictions, 0);
}

/* ---- remove ------------------------------------------------------------ */

static void test_remove_needs_matching_seq(void **state)
{
    fixture *f = *state;
    ins_args a = { .cap = 10000 };
    assert_int_equal(ins(f->ix, 1, 100, 7, 1000, &a), 0);
    dsc_chunk_id id = mkid(1);
    /* Another seq: a newer copy replaced the one the caller saw. */
    assert_int_equal(dsc_index_remove(f->ix, &id, 8, 1), 0);
    assert_true(present(f->ix, 1));
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 100);
    assert_int_equal(inf.chunks, 1);
    assert_int_equal(inf.corrupt, 0);

    assert_int_equal(dsc_index_remove(f->ix, &id, 7, 0), 0);
    assert_false(present(f->ix, 1));
    inf = info(f->ix);
    assert_int_equal(inf.bytes, 0);
    assert_int_equal(inf.chunks, 0);
    assert_int_equal(inf.corrupt, 0);

    /* Re-inserted, then removed as corrupt: counted. */
    assert_int_equal(ins(f->ix, 1, 100, 9, 2000, &a), 0);
    assert_int_equal(dsc_index_remove(f->ix, &id, 9, 1), 0);
    assert_false(present(f->ix, 1));
    inf = info(f->ix);
    assert_int_equal(inf.corrupt, 1);
    assert_int_equal(inf.chunks, 0);
    assert_int_equal(inf.bytes, 0);
}

static void test_remove_leaves_no_eviction_debris(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 300, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    /* The oldest entry is removed; it must not come back as a victim. */
    assert_int_equal(ins(f->ix, 1, 100, 101, 100, &a), 0);
    dsc_chunk_id id1 = mkid(1);
    assert_int_equal(dsc_index_remove(f->ix, &id1, 101, 0), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 200, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, 300, &a), 0);
    assert_int_equal(ins(f->ix, 4, 100, 104, 400, &a), 0);
    assert_int_equal(a.nvictims, 0);
    assert_int_equal(ins(f->ix, 5, 100, 105, 500, &a), 0);
    assert_int_equal(a.nvictims, 1);
    assert_victim(&v[0], 2, 102);
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.bytes, 300);
    assert_int_equal(inf.chunks, 3);
    assert_int_equal(inf.evictions, 1);
}

/* ---- node counters ----------------------------------------------------- */

static void test_node_counters(void **state)
{
    fixture *f = *state;
    dsc_victim v[8];
    ins_args a = { .cap = 200, .policy = DSC_POLICY_LRU, .v = v,
                   .max_victims = 8 };
    dsc_index_info inf = info(f->ix);
    assert_int_equal(inf.hits, 0);
    assert_int_equal(inf.misses, 0);
    assert_int_equal(inf.inserts, 0);
    assert_int_equal(inf.evictions, 0);
    assert_int_equal(inf.rejected, 0);

    assert_int_equal(ins(f->ix, 1, 100, 101, 1000, &a), 0);
    assert_int_equal(ins(f->ix, 2, 100, 102, 2000, &a), 0);
    assert_int_equal(ins(f->ix, 3, 100, 103, 3000, &a), 0);   /* evicts 1 */
    assert_int_equal(ins(f->ix, 4, 500, 104, 4000, &a), DSC_NOT_ADMITTED);   /* too big */
    assert_int_equal(ins(f->ix, 2, 100, 999, 5000, &a), DSC_EXISTS);   /* present */

    dsc_chunk_id ids[3] = { mkid(2), mkid(3), mkid(77) };
    assert_int_equal(dsc_index_touch(f->ix, ids, 3, 6000, 5, 2), 0);
    assert_int_equal(dsc_index_touch(f->ix, NULL, 0, 6000, 4, 0), 0);

    inf = info(f->ix);
    assert_int_equal(inf.hits, 9);
    /* Each admitted or refused insert was a fetch, i.e. a miss. */
    assert_int_equal(inf.misses, 2 + 3 + 1);
    assert_int_equal(inf.inserts, 3);
    assert_int_equal(inf.evictions, 1);
    assert_int_equal(inf.rejected, 1);
    assert_int_equal(inf.chunks, 2);
    assert_int_equal(inf.bytes, 200);

    /* Touching an absent id did not create it. */
    dsc_chunk_rec r;
    assert_int_equal(dsc_index_get(f->ix, &ids[2], &r), DSC_ABSENT);
    assert_int_equal(dsc_index_get(f->ix, &ids[0], &r), 0);
    assert_int_equal(r.atime_ms, 6000);

    /* Counters live in the index: a reopen sees them. */
    dsc_index_release(f->ix);
    f->ix = NULL;
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    dsc_index_info again = info(f->ix);
    assert_memory_equal(&again, &inf, sizeof inf);
}

/* ---- metadata cache ---------------------------------------------------- */

static void test_meta_round_trip(void **state)
{
    fixture *f = *state;
    const char *etag = "\"9b2cf535f27731c974343645a3985328-3\"";
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin",
                                        123456789012ull, etag, 1700000000123ull),
                     0);
    uint64_t size = 0, fetched = 0;
    char got[128];
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin",
                                        &size, got, sizeof got, &fetched), 0);
    assert_string_equal(got, etag);
    assert_int_equal(size, 123456789012ull);
    assert_int_equal(fetched, 1700000000123ull);

    /* Bucket and key do not run together. */
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "ab", "c", 1, "\"x\"", 1), 0);
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "a", "bc", 2, "\"y\"", 2), 0);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "ab", "c", &size, got,
                                        sizeof got, &fetched), 0);
    assert_string_equal(got, "\"x\"");
    assert_int_equal(size, 1);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "a", "bc", &size, got,
                                        sizeof got, &fetched), 0);
    assert_string_equal(got, "\"y\"");
    assert_int_equal(size, 2);

    /* Overwrite replaces. */
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin",
                                        5, "\"new\"", 77), 0);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin",
                                        &size, got, sizeof got, &fetched), 0);
    assert_string_equal(got, "\"new\"");
    assert_int_equal(size, 5);
    assert_int_equal(fetched, 77);

    /* Delete, twice (the second finds nothing, still fine). */
    assert_int_equal(dsc_index_meta_del(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin"),
                     0);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin",
                                        &size, got, sizeof got, &fetched), DSC_ABSENT);
    assert_int_equal(dsc_index_meta_del(f->ix, "http://o:80/path", "my-bucket", "dir/obj one.bin"),
                     0);
    /* The others are untouched. */
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "ab", "c", &size, got,
                                        sizeof got, &fetched), 0);
}

static void test_meta_missing_key(void **state)
{
    fixture *f = *state;
    uint64_t size = 42, fetched = 43;
    char got[64] = "unchanged";
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "bucket", "nope", &size, got,
                                        sizeof got, &fetched), DSC_ABSENT);
    assert_int_equal(size, 42);
    assert_int_equal(fetched, 43);
    assert_string_equal(got, "unchanged");
}

static void test_meta_etag_buffer_too_small(void **state)
{
    fixture *f = *state;
    const char *etag = "\"0123456789\"";              /* 12 bytes */
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "b", "k", 9, etag, 1), 0);
    uint64_t size, fetched;
    char got[32];
    memset(got, '#', sizeof got);
    /* No room for the terminator: not served, and nothing written past. */
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", "k", &size, got, 12,
                                        &fetched), DSC_ABSENT);
    for (size_t i = 12; i < sizeof got; i++)
        assert_int_equal(got[i], '#');
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", "k", &size, got, 13,
                                        &fetched), 0);
    assert_string_equal(got, etag);
}

static void test_meta_long_names_not_cached(void **state)
{
    fixture *f = *state;
    uint64_t size, fetched;
    char got[64];
    char key[2100];

    /* 16 bytes of origin hash, "b" NUL key: 511 bytes in all is LMDB's
     * limit and still cached. */
    memset(key, 'k', 493);
    key[493] = '\0';
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "b", key, 1, "\"e\"", 1), 0);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", key, &size, got,
                                        sizeof got, &fetched), 0);
    assert_string_equal(got, "\"e\"");

    /* One more byte, and much more: put succeeds without caching. */
    const size_t lens[] = { 494, 2000 };
    for (size_t i = 0; i < DSC_ARRAY_LEN(lens); i++) {
        memset(key, 'k', lens[i]);
        key[lens[i]] = '\0';
        dsc_clear_error();
        assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "b", key, 2, "\"f\"", 2), 0);
        assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", key, &size, got,
                                            sizeof got, &fetched), DSC_ABSENT);
        assert_int_equal(dsc_index_meta_del(f->ix, "http://o:80/path", "b", key), 0);
    }
    /* A long bucket counts as well. */
    char bucket[600];
    memset(bucket, 'b', 599);
    bucket[599] = '\0';
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", bucket, "k", 3, "\"g\"", 3), 0);
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", bucket, "k", &size, got,
                                        sizeof got, &fetched), DSC_ABSENT);
    /* The 511-byte entry is still there and intact. */
    memset(key, 'k', 493);
    key[493] = '\0';
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", key, &size, got,
                                        sizeof got, &fetched), 0);
    assert_int_equal(size, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- format ------------------------------------------------------------ */

/* The stored format number, as an index made by another libdsc version
 * would have it. */
static void format_of(void *record, uint32_t format)
{
    ((dsc_index_info *)record)->format = format;
}

static void set_stored_format(const char *dir, uint32_t format)
{
    rewrite_record(dir, "info", sizeof(dsc_index_info), format_of, format, NULL);
}

/* An index of the previous format (identities without the S3 endpoint)
 * must never be read: it opens emptied, in the current format, and asks
 * for a sweep of its now stray files. */
static void test_older_format_is_dropped(void **state)
{
    fixture *f = *state;
    ins_args a = { .cap = 1 << 20, .policy = DSC_POLICY_LRU, .v = NULL };
    dsc_victim v[4];
    a.v = v;
    a.max_victims = 4;
    assert_int_equal(ins(f->ix, 1, 100, 11, 1000, &a), 0);
    assert_int_equal(dsc_index_meta_put(f->ix, "http://o:80/path", "b", "k", 5,
                                        "\"e\"", dsc_wall_ms()), 0);
    dsc_index_release(f->ix);
    f->ix = NULL;
    set_stored_format(f->dir, DSC_INDEX_FORMAT - 1);
    char stamp[128];
    snprintf(stamp, sizeof stamp, "%s/last-clean", f->dir);
    int fd = open(stamp, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    assert_false(present(f->ix, 1));
    uint64_t size, fetched;
    char etag[64];
    assert_int_equal(dsc_index_meta_get(f->ix, "http://o:80/path", "b", "k", &size,
                                        etag, sizeof etag, &fetched), DSC_ABSENT);
    dsc_index_info inf;
    assert_int_equal(dsc_index_info_get(f->ix, &inf), 0);
    assert_int_equal(inf.format, DSC_INDEX_FORMAT);
    assert_int_equal(inf.chunks, 0);
    assert_int_equal(inf.bytes, 0);
    assert_int_equal(access(stamp, F_OK), -1);   /* the next open sweeps */
    /* And it works as an index of this format. */
    assert_int_equal(ins(f->ix, 2, 100, 12, 1000, &a), 0);
    assert_true(present(f->ix, 2));
}

/* A newer format is refused with a clear message, and left as it is. */

/* ---- growth ------------------------------------------------------------ */

/* An index in a new subdirectory of the fixture's, opened with o. */
static dsc_index *open_sub(fixture *f, const char *name, const dsc_index_opts *o,
                           char *dir, size_t dir_cap)
{
    snprintf(dir, dir_cap, "%s/%s", f->dir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    dsc_index *ix = NULL;
    if (dsc_index_open_opts(dir, o, &ix))
        fail_msg("open %s: %s", dir, dsc_errmsg());
    return ix;
}

static int insert_n(dsc_index *ix, unsigned from, unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        dsc_chunk_id id = mkid(i);
        dsc_chunk_rec r = mkrec(100, i + 1, 1000 + i);
        dsc_admit ad = { .cap = UINT64_MAX / 2 };
        int rc = dsc_index_insert(ix, &id, &r, &ad);
        if (rc)
            return rc;
    }
    return 0;
}

static void all_present(dsc_index *ix, unsigned from, unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        dsc_chunk_id id = mkid(i);
        dsc_chunk_rec r;
        if (dsc_index_get(ix, &id, &r) || r.seq != i + 1)
            fail_msg("entry %u missing after the map grew", i);
    }
}

/* A map far too small for what goes in grows, and nothing is lost. */
static void test_map_grows_when_full(void **state)
{
    fixture *f = *state;
    char dir[128];
    dsc_index_opts o = { .map_size = 1 << 20 };
    dsc_index *ix = open_sub(f, "grow", &o, dir, sizeof dir);
    uint64_t map0, used, full, map1;
    assert_int_equal(dsc_index_map_info(ix, &map0, &used, &full), 0);
    assert_int_equal(map0, 1 << 20);
    assert_int_equal(insert_n(ix, 0, 30000), 0);
    all_present(ix, 0, 30000);
    assert_int_equal(dsc_index_map_info(ix, &map1, &used, &full), 0);
    printf("    30,000 entries: map %llu KiB -> %llu KiB, %llu KiB used\n",
           (unsigned long long)map0 >> 10, (unsigned long long)map1 >> 10,
           (unsigned long long)used >> 10);
    assert_true(map1 >= 4 * map0);
    assert_int_equal(full, 0);
    dsc_index_info inf;
    assert_int_equal(dsc_index_info_get(ix, &inf), 0);
    assert_int_equal(inf.chunks, 30000);
    dsc_index_release(ix);
}

/* A process that opened the index before another grew it follows: its
 * writes and reads go on, and see everything. */
static void test_other_process_follows_growth(void **state)
{
    fixture *f = *state;
    char dir[128];
    dsc_index_opts o = { .map_size = 1 << 20 };
    snprintf(dir, sizeof dir, "%s/follow", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dsc_index *cix = NULL;
        char c = 'r';
        if (dsc_index_open_opts(dir, &o, &cix))
            _exit(10);
        if (insert_n(cix, 0, 100))
            _exit(11);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(12);
        /* The parent grew the map meanwhile (with ~20 MB of entries). */
        if (insert_n(cix, 40000, 5000))
            _exit(13);
        for (unsigned i = 0; i < 20100; i++) {
            dsc_chunk_id id = mkid(i);
            dsc_chunk_rec r;
            if (dsc_index_get(cix, &id, &r))
                _exit(14);
        }
        uint64_t map, used, full;
        dsc_index_map_info(cix, &map, &used, &full);
        _exit(map > (1 << 20) ? 0 : 15);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    dsc_index *ix = NULL;
    assert_int_equal(dsc_index_open_opts(dir, &o, &ix), 0);
    assert_int_equal(insert_n(ix, 100, 20000), 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st))
        fail_msg("the other process failed at step %d", WEXITSTATUS(st));
    all_present(ix, 40000, 5000);
    dsc_index_release(ix);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
}

/* Metadata stays within meta_max: the oldest go, and are counted. */
static void test_meta_is_bounded(void **state)
{
    fixture *f = *state;
    char dir[128], key[32];
    dsc_index_opts o = { .meta_max = 1000 };
    dsc_index *ix = open_sub(f, "meta", &o, dir, sizeof dir);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        assert_int_equal(dsc_index_meta_put(ix, "o", "b", key, (uint64_t)i,
                                            "\"e\"", 1000 + (uint64_t)i), 0);
    }
    int present = 0, newest_kept = 1;
    for (int i = 0; i < 5000; i++) {
        uint64_t size, fetched;
        char tag[16];
        snprintf(key, sizeof key, "k%05d", i);
        int rc = dsc_index_meta_get(ix, "o", "b", key, &size, tag, sizeof tag, &fetched);
        present += rc == 0;
        if (i >= 4000 && rc != 0)
            newest_kept = 0;
    }
    assert_int_equal(present, 1000);
    assert_true(newest_kept);
    dsc_index_info inf;
    assert_int_equal(dsc_index_info_get(ix, &inf), 0);
    assert_int_equal(inf.meta_dropped, 4000);
    /* A re-put entry moves to the young end instead of staying old. */
    assert_int_equal(dsc_index_meta_put(ix, "o", "b", "k04000", 1, "\"e\"", 99999), 0);
    for (int i = 0; i < 999; i++) {
        snprintf(key, sizeof key, "n%05d", i);
        assert_int_equal(dsc_index_meta_put(ix, "o", "b", key, 1, "\"e\"", 100000 + (uint64_t)i), 0);
    }
    uint64_t size, fetched;
    char tag[16];
    assert_int_equal(dsc_index_meta_get(ix, "o", "b", "k04000", &size, tag, sizeof tag, &fetched), 0);
    assert_int_equal(dsc_index_meta_get(ix, "o", "b", "k04001", &size, tag, sizeof tag, &fetched), DSC_ABSENT);
    dsc_index_release(ix);
}

/* A map that may not grow: metadata is shed first, then writes fail
 * loudly (an error, a count, a warning), never silently; reads go on. */
static void test_full_index_is_loud(void **state)
{
    fixture *f = *state;
    char dir[128], key[32];
    dsc_index_opts o = { .map_size = 1 << 20, .map_max = 1 << 20 };
    dsc_index *ix = open_sub(f, "full", &o, dir, sizeof dir);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        assert_int_equal(dsc_index_meta_put(ix, "o", "b", key, 1, "\"e\"", 1000 + (uint64_t)i), 0);
    }
    dsc_clear_error();
    int rc = 0;
    unsigned n;
    for (n = 0; n < 100000 && rc == 0; n++) {
        dsc_chunk_id id = mkid(n);
        dsc_chunk_rec r = mkrec(100, n + 1, 1000 + n);
        dsc_admit ad = { .cap = UINT64_MAX / 2 };
        rc = dsc_index_insert(ix, &id, &r, &ad);
    }
    assert_int_equal(rc, DSC_EIO);
    assert_errmsg_has("full");
    uint64_t map, used, full;
    assert_int_equal(dsc_index_map_info(ix, &map, &used, &full), 0);
    assert_int_equal(map, 1 << 20);
    assert_true(full >= 1);
    dsc_index_info inf;
    assert_int_equal(dsc_index_info_get(ix, &inf), 0);
    assert_true(inf.meta_dropped >= 1000);   /* shed before giving up */
    printf("    full at %u entries; %llu metadata entries shed first\n",
           n - 1, (unsigned long long)inf.meta_dropped);
    all_present(ix, 0, n - 1);
    dsc_index_release(ix);
}

/* Under an address-space limit (ulimit -v) the map stops growing short of
 * it (a failed remap would leave no map), and a process that cannot follow
 * another's growth stops using the index: errors, never a crash. In
 * children, so the limit stays theirs; not under sanitizers (their shadow
 * memory needs the address space). */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static void limit_address_space(long extra)
{
    struct rlimit as = { (rlim_t)(vm_size_bytes() + extra),
                         (rlim_t)(vm_size_bytes() + extra) };
    if (setrlimit(RLIMIT_AS, &as))
        _exit(20);
}
#endif

static void test_address_space_limit(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    (void)state;
    skip();
#else
    fixture *f = *state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/aslimit", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    /* 1: growing under the limit ends in "full", with the process alive. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        limit_address_space(96L << 20);
        dsc_index_opts o = { .map_size = 1 << 20 };
        dsc_index *ix;
        if (dsc_index_open_opts(dir, &o, &ix))
            _exit(10);
        int rc = 0;
        for (uint32_t n = 0; rc == 0 && n < 4000000; n++) {
            dsc_chunk_id wid = mkid(n & 0xffff);
            memcpy(wid.b, &n, sizeof n);   /* distinct past 65,535 too */
            dsc_chunk_rec r = mkrec(100, n + 1, 1000 + n);
            dsc_admit ad = { .cap = UINT64_MAX / 2 };
            rc = dsc_index_insert(ix, &wid, &r, &ad);
        }
        dsc_chunk_id id = mkid(5);
        memset(id.b, 0, 4);
        id.b[0] = 5;
        dsc_chunk_rec r;
        _exit(rc != DSC_EIO ? 11 : dsc_index_get(ix, &id, &r) ? 12 : 0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fail_msg("growing under ulimit -v: %s %d", WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    /* 2: another process makes the map bigger than this one may map. */
    snprintf(dir, sizeof dir, "%s/aslimit2", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dsc_index_opts o = { .map_size = 1 << 20 };
        dsc_index *ix;
        char c = 'r';
        if (dsc_index_open_opts(dir, &o, &ix) || insert_n(ix, 0, 10))
            _exit(10);
        limit_address_space(48L << 20);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(12);
        dsc_chunk_id id = mkid(3);
        dsc_chunk_rec r;
        int rc = dsc_index_get(ix, &id, &r);
        _exit(rc == DSC_EIO ? 0 : 13);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    dsc_index_opts big = { .map_size = (size_t)1 << 30 };
    dsc_index *ix;
    assert_int_equal(dsc_index_open_opts(dir, &big, &ix), 0);
    /* Data past the child's map, and the 1 GiB map recorded with it. */
    assert_int_equal(insert_n(ix, 100, 20000), 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    dsc_index_release(ix);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fail_msg("following a map too big for ulimit -v: %s %d",
                 WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
#endif
}

/* 1,100 live threads that each read, on an index of only 126 reader
 * slots: with slots per thread (no MDB_NOTLS) the 127th failed with
 * MDB_READERS_FULL; per transaction, only reads at once count. */
typedef struct reader_arg {
    dsc_index *ix;
    pthread_barrier_t *all_read;
    int rc;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    dsc_chunk_id id = mkid(7);
    dsc_chunk_rec r;
    a->rc = dsc_index_get(a->ix, &id, &r);
    pthread_barrier_wait(a->all_read);   /* stay alive until all have read */
    return NULL;
}

static void test_many_threads_read(void **state)
{
    fixture *f = *state;
    enum { THREADS = 1100 };
    char dir[128];
    dsc_index_opts o = { .max_readers = 126 };
    dsc_index *ix = open_sub(f, "readers", &o, dir, sizeof dir);
    assert_int_equal(insert_n(ix, 7, 1), 0);
    static pthread_t t[THREADS];
    static reader_arg a[THREADS];
    pthread_barrier_t all_read;
    pthread_barrier_init(&all_read, NULL, THREADS);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < THREADS; i++) {
        a[i] = (reader_arg){ ix, &all_read, -1 };
        assert_int_equal(pthread_create(&t[i], &attr, reader, &a[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += a[i].rc != 0;
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&all_read);
    dsc_index_release(ix);
    assert_int_equal(bad, 0);
}

static void test_newer_format_is_refused(void **state)
{
    fixture *f = *state;
    ins_args a = { .cap = 1 << 20, .policy = DSC_POLICY_LRU };
    assert_int_equal(ins(f->ix, 1, 100, 11, 1000, &a), 0);
    dsc_index_release(f->ix);
    f->ix = NULL;
    set_stored_format(f->dir, DSC_INDEX_FORMAT + 1);
    dsc_index *ix = NULL;
    assert_int_equal(dsc_index_open(f->dir, 0, &ix), DSC_EIO);
    assert_non_null(strstr(dsc_errmsg(), "newer"));
    set_stored_format(f->dir, DSC_INDEX_FORMAT);
    assert_int_equal(dsc_index_open(f->dir, 0, &f->ix), 0);
    assert_true(present(f->ix, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_twice_shares_environment),
        T(test_release_all_then_reopen),
        T(test_trust_from_boot),
        T(test_open_on_regular_file_fails),
        T(test_open_missing_dir_fails),
        T(test_open_index_is_a_file_fails),
        T(test_get_absent),
        T(test_insert_then_get),
        T(test_insert_existing_keeps_old),
        T(test_totals_follow_inserts_and_removes),
        T(test_lru_evicts_oldest_atime),
        T(test_lru_touch_makes_recent),
        T(test_too_big_not_admitted),
        T(test_max_victims_too_small),
        T(test_minio_refuses_while_fresh),
        T(test_minio_evicts_idle_entries),
        T(test_minio_needs_all_victims_idle),
        T(test_remove_needs_matching_seq),
        T(test_remove_leaves_no_eviction_debris),
        T(test_node_counters),
        T(test_meta_round_trip),
        T(test_meta_missing_key),
        T(test_meta_etag_buffer_too_small),
        T(test_meta_long_names_not_cached),
        T(test_older_format_is_dropped),
        T(test_newer_format_is_refused),
        T(test_map_grows_when_full),
        T(test_other_process_follows_growth),
        T(test_meta_is_bounded),
        T(test_full_index_is_loud),
        T(test_many_threads_read),
        T(test_address_space_limit),
    };
    return cmocka_run_group_tests_name("index", tests, NULL, NULL);
}
