/* Chunk identity: dsc_chunk_id_make(origin, bucket, key, etag, chunk
 * size, index).
 *
 * The id names a chunk in the shared index and on disk, so it must be the
 * same in every process for the same chunk of the same object version, and
 * different whenever any part of that identity differs, including when the
 * same characters are split differently between bucket, key and ETag.
 *
 * (This file is not tests/unit/test_cache.c: that name would build to
 * build/tests/test_cache, the binary of tests/integration/test_cache.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "cache/cache.h"

#define MiB (1024u * 1024u)

#define ORIGIN "https://s3.us-east-1.amazonaws.com:443/auto"

static dsc_chunk_id make_at(const char *origin, const char *bucket,
                            const char *key, const char *etag, uint32_t chunk,
                            uint64_t index)
{
    dsc_objref o = { .bucket = bucket, .key = key, .etag = etag,
                     .size = 123456789 };
    dsc_chunk_id id;
    memset(&id, 0, sizeof id);
    int rc = dsc_chunk_id_make(origin, &o, chunk, index, &id);
    if (rc)
        fail_msg("dsc_chunk_id_make(%s, %.40s, %s, %u, %llu) = %d", bucket,
                 key, etag, chunk, (unsigned long long)index, rc);
    return id;
}

static dsc_chunk_id make(const char *bucket, const char *key,
                         const char *etag, uint32_t chunk, uint64_t index)
{
    return make_at(ORIGIN, bucket, key, etag, chunk, index);
}

static int same(dsc_chunk_id a, dsc_chunk_id b)
{
    return memcmp(a.b, b.b, 16) == 0;
}

static void test_deterministic(void **state)
{
    (void)state;
    dsc_chunk_id a = make("bkt", "train/shard-00001.tar", "\"abc-12\"",
                          4 * MiB, 17);
    /* The same values from other buffers: only content matters. */
    char bucket[] = "bkt", key[] = "train/shard-00001.tar",
         etag[] = "\"abc-12\"";
    dsc_chunk_id b = make(bucket, key, etag, 4 * MiB, 17);
    assert_memory_equal(a.b, b.b, 16);
    /* Not a constant or an all-zero result. */
    dsc_chunk_id zero;
    memset(&zero, 0, sizeof zero);
    assert_false(same(a, zero));
    /* The object size is not part of the identity (the ETag is). */
    dsc_objref o = { "bkt", "train/shard-00001.tar", "\"abc-12\"", 1 };
    dsc_chunk_id c;
    assert_int_equal(dsc_chunk_id_make(ORIGIN, &o, 4 * MiB, 17, &c), 0);
    assert_memory_equal(a.b, c.b, 16);
}

static void test_each_field_matters(void **state)
{
    (void)state;
    dsc_chunk_id ids[] = {
        make("bkt", "obj", "\"e1\"", 4 * MiB, 0),      /* base */
        make("bku", "obj", "\"e1\"", 4 * MiB, 0),      /* bucket */
        make("Bkt", "obj", "\"e1\"", 4 * MiB, 0),      /* case */
        make("bkt", "obk", "\"e1\"", 4 * MiB, 0),      /* key */
        make("bkt", "obj ", "\"e1\"", 4 * MiB, 0),     /* key length */
        make("bkt", "obj", "\"e2\"", 4 * MiB, 0),      /* etag */
        make("bkt", "obj", "e1", 4 * MiB, 0),          /* etag quotes */
        make("bkt", "obj", "\"e1\"", 8 * MiB, 0),      /* chunk size */
        make("bkt", "obj", "\"e1\"", 64 * 1024, 0),
        make("bkt", "obj", "\"e1\"", 4 * MiB, 1),      /* index */
        make("bkt", "obj", "\"e1\"", 4 * MiB, 1ull << 32),
        make("bkt", "obj", "\"e1\"", 4 * MiB, 1ull << 63),
        make("bkt", "", "\"e1\"", 4 * MiB, 0),         /* empty key */
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(ids); i++)
        for (size_t j = i + 1; j < DSC_ARRAY_LEN(ids); j++)
            if (same(ids[i], ids[j]))
                fail_msg("variants %zu and %zu have the same id", i, j);
}

/* Two endpoints holding the same bucket/key/ETag are two objects: every
 * part of the origin (scheme, host, port, addressing) counts, and the
 * origin does not run into the bucket. */
static void test_origin_matters(void **state)
{
    (void)state;
    dsc_chunk_id ids[] = {
        make_at("http://127.0.0.1:9000/auto", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("https://127.0.0.1:9000/auto", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("http://127.0.0.2:9000/auto", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("http://127.0.0.1:9001/auto", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("http://127.0.0.1:9000/path", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("http://127.0.0.1:9000/virtual", "bkt", "k", "\"e\"", 4 * MiB, 0),
        make_at("", "bkt", "k", "\"e\"", 4 * MiB, 0),
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(ids); i++)
        for (size_t j = i + 1; j < DSC_ARRAY_LEN(ids); j++)
            if (same(ids[i], ids[j]))
                fail_msg("origins %zu and %zu give the same id", i, j);
    assert_false(same(make_at("o/a", "bkt", "k", "e", 4 * MiB, 0),
                      make_at("o/", "abkt", "k", "e", 4 * MiB, 0)));
}

static void test_chunk_size_and_index_not_interchangeable(void **state)
{
    (void)state;
    /* Chunk size and index must not trade places, and chunks of another
     * chunk size are other chunks even when they start at the same byte. */
    assert_false(same(make("b", "k", "e", 4 * MiB, 2),
                      make("b", "k", "e", 2, 4 * MiB)));
    assert_false(same(make("b", "k", "e", 4 * MiB, 1),
                      make("b", "k", "e", 8 * MiB, 0)));
}

static void test_no_split_ambiguity(void **state)
{
    (void)state;
    /* bucket | key */
    assert_false(same(make("ab", "c", "e", 4 * MiB, 0),
                      make("a", "bc", "e", 4 * MiB, 0)));
    /* key | etag */
    assert_false(same(make("b", "k1", "\"e\"", 4 * MiB, 0),
                      make("b", "k", "1\"e\"", 4 * MiB, 0)));
    /* bucket | key | etag, all moved */
    assert_false(same(make("abc", "", "def", 4 * MiB, 0),
                      make("ab", "cd", "ef", 4 * MiB, 0)));
    assert_false(same(make("ab", "cd", "ef", 4 * MiB, 0),
                      make("a", "bcde", "f", 4 * MiB, 0)));
    /* etag | binary tail (chunk size, index) */
    assert_false(same(make("b", "k", "e", 4 * MiB, 0),
                      make("b", "k", "e\x01", 4 * MiB, 0)));
}

static void test_many_indexes_distinct(void **state)
{
    (void)state;
    enum { N = 2000 };
    dsc_chunk_id *ids = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (unsigned i = 0; i < N; i++)
        ids[i] = make("bucket", "data/file.bin", "\"0123abcd\"", 4 * MiB, i);
    /* Sort-free check: compare every pair once via a simple hash set. */
    enum { SLOTS = 8192 };
    int *slot = malloc(SLOTS * sizeof *slot);
    assert_non_null(slot);
    for (int i = 0; i < SLOTS; i++)
        slot[i] = -1;
    for (int i = 0; i < N; i++) {
        unsigned h = (unsigned)(ids[i].b[0] | ids[i].b[1] << 8) % SLOTS;
        while (slot[h] >= 0) {
            if (same(ids[slot[h]], ids[i]))
                fail_msg("chunks %d and %d have the same id", slot[h], i);
            h = (h + 1) % SLOTS;
        }
        slot[h] = i;
    }
    free(slot);
    free(ids);
}

static void test_long_key(void **state)
{
    (void)state;
    enum { LEN = 5000 };
    char *key = malloc(LEN + 1);
    assert_non_null(key);
    for (int i = 0; i < LEN; i++)
        key[i] = (char)('a' + i % 26);
    key[LEN] = '\0';
    dsc_chunk_id a = make("bkt", key, "\"e\"", 4 * MiB, 3);
    dsc_chunk_id b = make("bkt", key, "\"e\"", 4 * MiB, 3);
    assert_memory_equal(a.b, b.b, 16);
    assert_false(same(a, make("bkt", key, "\"e\"", 4 * MiB, 4)));
    /* The last byte counts. */
    key[LEN - 1] ^= 1;
    assert_false(same(a, make("bkt", key, "\"e\"", 4 * MiB, 3)));
    key[LEN - 1] ^= 1;
    /* So does the length: one byte shorter differs. */
    key[LEN - 1] = '\0';
    assert_false(same(a, make("bkt", key, "\"e\"", 4 * MiB, 3)));

    /* Keys around the size where the serialization stops fitting a small
     * buffer: each is stable and distinct from its neighbour. */
    memset(key, 'x', LEN);
    dsc_chunk_id prev;
    memset(&prev, 0, sizeof prev);
    for (int len = 2000; len < 2060; len++) {
        key[len] = '\0';
        dsc_chunk_id x = make("b", key, "e", 4 * MiB, 0);
        dsc_chunk_id y = make("b", key, "e", 4 * MiB, 0);
        if (!same(x, y))
            fail_msg("key of %d bytes: id not stable", len);
        if (same(x, prev))
            fail_msg("key of %d bytes: same id as %d bytes", len, len - 1);
        prev = x;
        key[len] = 'x';
    }
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_each_field_matters),
        cmocka_unit_test(test_origin_matters),
        cmocka_unit_test(test_chunk_size_and_index_not_interchangeable),
        cmocka_unit_test(test_no_split_ambiguity),
        cmocka_unit_test(test_many_indexes_distinct),
        cmocka_unit_test(test_long_key),
    };
    return cmocka_run_group_tests_name("chunkid", tests, NULL, NULL);
}
