/* Metrics and cost accounting: the node counters and the prefix table in
 * the index (sums across flushes, the bound on prefixes, their order),
 * what a cache counts for a read (prefix of a key, bytes by source, a
 * pending table that overflows), and the price variables.
 *
 * Each test gets a fresh directory under /tmp, removed afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/metrics.h"
#include "cache/internal.h"
#include "core/common.h"

typedef struct fixture {
    char dir[64];
    dsc_index *ix;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dsc-test-metrics-XXXXXX");
    if (!mkdtemp(f->dir) || dsc_index_open(f->dir, 0, &f->ix)) {
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

static dsc_prefix_count pc(const char *bucket, const char *prefix,
                           uint64_t cache, uint64_t s3, uint64_t peer)
{
    dsc_prefix_count p;
    memset(&p, 0, sizeof p);
    snprintf(p.bucket, sizeof p.bucket, "%s", bucket);
    snprintf(p.prefix, sizeof p.prefix, "%s", prefix);
    p.bytes[DSC_SRC_CACHE] = cache;
    p.bytes[DSC_SRC_S3] = s3;
    p.bytes[DSC_SRC_PEER] = peer;
    return p;
}

static void test_counters_add_up(void **state)
{
    fixture *f = *state;
    dsc_node_counters n;
    assert_int_equal(dsc_index_counters_get(f->ix, &n), 0);
    assert_int_equal(n.s3_gets, 0);
    dsc_flush a = { .add = { .s3_gets = 3, .s3_heads = 2, .s3_lists = 1,
                             .s3_retries = 4, .s3_bytes = 300,
                             .cache_bytes = 50, .peer_hits = 5,
                             .peer_bytes = 500 } };
    dsc_flush b = { .hits = 7, .add = { .s3_gets = 10, .s3_bytes = 1000,
                                        .cache_bytes = 1 } };
    assert_int_equal(dsc_index_flush(f->ix, &a), 0);
    assert_int_equal(dsc_index_flush(f->ix, &b), 0);
    assert_int_equal(dsc_index_counters_get(f->ix, &n), 0);
    assert_int_equal(n.s3_gets, 13);
    assert_int_equal(n.s3_heads, 2);
    assert_int_equal(n.s3_lists, 1);
    assert_int_equal(n.s3_retries, 4);
    assert_int_equal(n.s3_bytes, 1300);
    assert_int_equal(n.cache_bytes, 51);
    assert_int_equal(n.peer_hits, 5);
    assert_int_equal(n.peer_bytes, 500);
    /* The hits went to the info record, as before. */
    dsc_index_info inf;
    assert_int_equal(dsc_index_info_get(f->ix, &inf), 0);
    assert_int_equal(inf.hits, 7);
}

static void test_prefixes_sum_and_sort(void **state)
{
    fixture *f = *state;
    dsc_prefix_count p1[] = { pc("b", "train/", 10, 100, 0),
                              pc("b", "val/", 1, 2, 3),
                              pc("c", "train/", 0, 0, 50) };
    dsc_prefix_count p2[] = { pc("b", "val/", 1000, 0, 0),
                              pc("b", "train/", 5, 0, 7) };
    dsc_flush a = { .prefixes = p1, .nprefixes = 3 };
    dsc_flush b = { .prefixes = p2, .nprefixes = 2 };
    assert_int_equal(dsc_index_flush(f->ix, &a), 0);
    assert_int_equal(dsc_index_flush(f->ix, &b), 0);
    dsc_prefix_count out[8];
    size_t total;
    assert_int_equal(dsc_index_prefixes(f->ix, out, 8, &total), 0);
    assert_int_equal(total, 3);
    /* val/ 1006, train/ 122, c's train/ 50: most bytes first. */
    assert_string_equal(out[0].bucket, "b");
    assert_string_equal(out[0].prefix, "val/");
    assert_int_equal(out[0].bytes[DSC_SRC_CACHE], 1001);
    assert_int_equal(out[0].bytes[DSC_SRC_S3], 2);
    assert_int_equal(out[0].bytes[DSC_SRC_PEER], 3);
    assert_string_equal(out[1].prefix, "train/");
    assert_int_equal(out[1].bytes[DSC_SRC_CACHE], 15);
    assert_int_equal(out[1].bytes[DSC_SRC_S3], 100);
    assert_int_equal(out[1].bytes[DSC_SRC_PEER], 7);
    assert_string_equal(out[2].bucket, "c");
    /* A smaller buffer gets the top ones and the count of all. */
    assert_int_equal(dsc_index_prefixes(f->ix, out, 1, &total), 0);
    assert_int_equal(total, 3);
    assert_string_equal(out[0].prefix, "val/");
}

static void test_prefixes_are_bounded(void **state)
{
    fixture *f = *state;
    enum { N = DSC_PREFIXES_KEPT + 40 };
    dsc_prefix_count *p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%03d/", i);
        p[i] = pc("b", name, 1, 0, 0);
    }
    /* In two flushes, as two processes would. */
    dsc_flush a = { .prefixes = p, .nprefixes = DSC_PREFIXES_KEPT - 1 };
    dsc_flush b = { .prefixes = p + DSC_PREFIXES_KEPT - 1,
                    .nprefixes = N - (DSC_PREFIXES_KEPT - 1) };
    assert_int_equal(dsc_index_flush(f->ix, &a), 0);
    assert_int_equal(dsc_index_flush(f->ix, &b), 0);
    /* A prefix the table already has keeps its own record. */
    dsc_prefix_count again = pc("b", "p000/", 0, 9, 0);
    dsc_flush c = { .prefixes = &again, .nprefixes = 1 };
    assert_int_equal(dsc_index_flush(f->ix, &c), 0);
    dsc_prefix_count *out = calloc(N, sizeof *out);
    assert_non_null(out);
    size_t total;
    assert_int_equal(dsc_index_prefixes(f->ix, out, N, &total), 0);
    /* 256 kept, one "other" record (empty bucket) with the rest. */
    assert_int_equal(total, DSC_PREFIXES_KEPT + 1);
    uint64_t sum = 0;
    int others = 0;
    for (size_t i = 0; i < total; i++) {
        sum += out[i].bytes[DSC_SRC_CACHE];
        if (!out[i].bucket[0]) {
            others++;
            assert_int_equal(out[i].bytes[DSC_SRC_CACHE], N - DSC_PREFIXES_KEPT);
        }
        if (strcmp(out[i].prefix, "p000/") == 0)
            assert_int_equal(out[i].bytes[DSC_SRC_S3], 9);
    }
    assert_int_equal(others, 1);
    assert_int_equal(sum, N);   /* no byte lost, none counted twice */
    free(p);
    free(out);
}

/* A cache on the fixture's directory (its own index handle). */
static dsc_cache *open_cache(fixture *f, unsigned depth)
{
    dsc_cache_opts o = {
        .dir = f->dir, .origin = "http://127.0.0.1:9/path", .cap = 1 << 20,
        .chunk_size = 65536, .policy = DSC_POLICY_LRU, .fd_cache = 8,
        .flight_timeout_ms = 1000, .meta_max = 1000, .prefix_depth = depth,
    };
    dsc_cache *c = NULL;
    assert_int_equal(dsc_cache_open(&o, &c), 0);
    return c;
}

static void test_account_prefix_of_key(void **state)
{
    fixture *f = *state;
    dsc_cache *c = open_cache(f, 2);
    struct { const char *key; uint64_t bytes; } k[] = {
        { "a/b/c/d.bin", 1 }, { "a/b/x", 2 }, { "a/y", 4 }, { "top.bin", 8 },
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(k); i++) {
        dsc_objref o = { "bkt", k[i].key, "\"e\"", 100 };
        dsc_cache_account(c, &o, NULL, DSC_SRC_S3, k[i].bytes, 0, 0);
    }
    dsc_prefix_count out[8];
    size_t total;
    assert_int_equal(dsc_cache_prefixes(c, out, 8, &total), 0);
    assert_int_equal(total, 3);
    assert_string_equal(out[0].prefix, "");             /* top.bin */
    assert_string_equal(out[0].bucket, "bkt");
    assert_int_equal(out[0].bytes[DSC_SRC_S3], 8);
    assert_string_equal(out[1].prefix, "a/");
    assert_int_equal(out[1].bytes[DSC_SRC_S3], 4);
    assert_string_equal(out[2].prefix, "a/b/");
    assert_int_equal(out[2].bytes[DSC_SRC_S3], 3);
    /* No reader waited for them: prefetched, their first reads save nothing. */
    dsc_node_counters n;
    assert_int_equal(dsc_index_counters_get(dsc_cache_index(c), &n), 0);
    assert_int_equal(n.prefetched, 4);
    assert_int_equal(n.prefetched_bytes, 15);
    dsc_cache_close(c);
}

static void test_account_long_prefix_cut_whole(void **state)
{
    fixture *f = *state;
    dsc_cache *c = open_cache(f, 1);
    char key[400];
    memset(key, 'a', sizeof key);
    /* A 3-byte character across the record's last byte, then '/'. */
    memcpy(key + DSC_PREFIX_LEN - 2, "\xe2\x82\xac", 3);
    key[300] = '/';
    strcpy(key + 301, "x");
    dsc_objref o = { "bkt", key, "\"e\"", 100 };
    dsc_cache_account(c, &o, NULL, DSC_SRC_CACHE, 5, 1, 1);
    dsc_prefix_count out[2];
    size_t total;
    assert_int_equal(dsc_cache_prefixes(c, out, 2, &total), 0);
    assert_int_equal(total, 1);
    /* Cut before the character, never inside it. */
    assert_int_equal(strlen(out[0].prefix), DSC_PREFIX_LEN - 2);
    assert_int_equal(out[0].bytes[DSC_SRC_CACHE], 5);
    dsc_cache_close(c);
}

static void test_account_more_prefixes_than_pending(void **state)
{
    fixture *f = *state;
    dsc_cache *c = open_cache(f, 2);
    enum { N = 3 * DSC_PENDING_PREFIXES + 5 };
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "d%02d/k", i);
        dsc_objref o = { "bkt", key, "\"e\"", 100 };
        dsc_cache_account(c, &o, NULL, DSC_SRC_PEER, 10, 1, 0);
    }
    dsc_prefix_count out[N];
    size_t total;
    assert_int_equal(dsc_cache_prefixes(c, out, N, &total), 0);
    assert_int_equal(total, N);
    dsc_node_counters n;
    assert_int_equal(dsc_index_counters_get(dsc_cache_index(c), &n), 0);
    assert_int_equal(n.peer_hits, N);
    assert_int_equal(n.peer_bytes, 10 * N);
    assert_int_equal(n.prefetched, 0);   /* read: a reader waited */
    dsc_cache_close(c);
}

static void test_price_env(void **state)
{
    (void)state;
    struct { const char *v; double want; } ok[] = {
        { "0.0004", 0.0004 }, { "5", 5 }, { ".09", 0.09 }, { "5.", 5 },
        { "0", 0 }, { "", 7 },
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(ok); i++) {
        setenv("DSC_TEST_PRICE", ok[i].v, 1);
        double d = -1;
        assert_int_equal(dsc_price_env("DSC_TEST_PRICE", 7, &d), 0);
        assert_true(d == ok[i].want);   /* the nearest double, exactly */
    }
    const char *bad[] = { "abc", "-1", "1e3", " 1", "1 ", "1.2.3", ".",
                          "0,5", "1234567890123456789" };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        setenv("DSC_TEST_PRICE", bad[i], 1);
        double d;
        assert_int_equal(dsc_price_env("DSC_TEST_PRICE", 7, &d), DSC_EINVAL);
        assert_errmsg_has("DSC_TEST_PRICE=");
        assert_errmsg_has("not a price");
    }
    unsetenv("DSC_TEST_PRICE");
}

static void test_prices_defaults_and_env(void **state)
{
    (void)state;
    dsc_prices p;
    assert_int_equal(dsc_prices_get(&p, sizeof p), 0);
    assert_true(p.get_per_1000 == 0.0004);
    assert_true(p.list_per_1000 == 0.005);
    assert_true(p.egress_per_gb == 0.09);
    setenv("DSC_PRICE_EGRESS_PER_GB", "0", 1);
    assert_int_equal(dsc_prices_get(&p, sizeof p), 0);
    assert_true(p.egress_per_gb == 0);
    setenv("DSC_PRICE_LIST_PER_1000", "cheap", 1);
    assert_int_equal(dsc_prices_get(&p, sizeof p), DSC_EINVAL);
    assert_errmsg_has("DSC_PRICE_LIST_PER_1000=cheap");
    unsetenv("DSC_PRICE_LIST_PER_1000");
    unsetenv("DSC_PRICE_EGRESS_PER_GB");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_counters_add_up),
        T(test_prefixes_sum_and_sort),
        T(test_prefixes_are_bounded),
        T(test_account_prefix_of_key),
        T(test_account_long_prefix_cut_whole),
        T(test_account_more_prefixes_than_pending),
        cmocka_unit_test(test_price_env),
        cmocka_unit_test(test_prices_defaults_and_env),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
