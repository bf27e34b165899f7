/* Rendezvous ring: even spread, minimal movement, strict parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "peer/ring.h"

#define CHUNKS 100000

static dsc_chunk_id chunk(uint64_t i)
{
    dsc_chunk_id id;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(&i, sizeof i));
    memcpy(id.b, c.digest, 16);
    return id;
}

static dsc_ring *ring(const char *peers, const char *self)
{
    dsc_ring *r = NULL;
    int rc = dsc_ring_new(peers, self, &r);
    if (rc)
        fail_msg("ring '%s': %s", peers, dsc_errmsg());
    return r;
}

static const char EIGHT[] = "10.0.0.1:7070,10.0.0.2:7070,10.0.0.3:7070,"
                            "10.0.0.4:7070,10.0.0.5:7070,10.0.0.6:7070,"
                            "10.0.0.7:7070,10.0.0.8:7070";

static void test_spread_within_10_percent(void **state)
{
    (void)state;
    dsc_ring *r = ring(EIGHT, NULL);
    size_t count[8] = { 0 };
    for (uint64_t i = 0; i < CHUNKS; i++) {
        dsc_chunk_id id = chunk(i);
        count[dsc_ring_owner(r, &id)]++;
    }
    double fair = CHUNKS / 8.0;
    for (int p = 0; p < 8; p++) {
        printf("    %s owns %zu chunks (%.1f%% of fair)\n", dsc_ring_peer(r, p),
               count[p], 100.0 * count[p] / fair);
        assert_true(count[p] > fair * 0.9 && count[p] < fair * 1.1);
    }
    dsc_ring_free(r);
}

/* Removing one of N peers moves exactly its chunks (~1/N), spread over
 * the others; no other chunk changes owner. */
static void test_removal_moves_only_its_chunks(void **state)
{
    (void)state;
    dsc_ring *all = ring(EIGHT, NULL);
    dsc_ring *seven = ring("10.0.0.1:7070,10.0.0.2:7070,10.0.0.3:7070,"
                           "10.0.0.5:7070,10.0.0.6:7070,10.0.0.7:7070,"
                           "10.0.0.8:7070", NULL);
    size_t moved = 0;
    for (uint64_t i = 0; i < CHUNKS; i++) {
        dsc_chunk_id id = chunk(i);
        const char *before = dsc_ring_peer(all, dsc_ring_owner(all, &id));
        const char *after = dsc_ring_peer(seven, dsc_ring_owner(seven, &id));
        if (strcmp(before, after) != 0) {
            moved++;
            assert_string_equal(before, "10.0.0.4:7070");
        } else {
            assert_string_not_equal(before, "10.0.0.4:7070");
        }
    }
    printf("    removing 1 of 8 moved %.2f%% of chunks (1/8 = 12.5%%)\n",
           100.0 * moved / CHUNKS);
    assert_true(moved > CHUNKS / 8 * 0.9 && moved < CHUNKS / 8 * 1.1);
    dsc_ring_free(all);
    dsc_ring_free(seven);
}

static void test_order_does_not_matter(void **state)
{
    (void)state;
    dsc_ring *a = ring("b:1, a:2 ,c:3", NULL);
    dsc_ring *b = ring("c:3,b:1,a:2", NULL);
    for (uint64_t i = 0; i < 1000; i++) {
        dsc_chunk_id id = chunk(i);
        assert_string_equal(dsc_ring_peer(a, dsc_ring_owner(a, &id)),
                            dsc_ring_peer(b, dsc_ring_owner(b, &id)));
    }
    dsc_ring_free(a);
    dsc_ring_free(b);
}

static void test_self_and_single_peer(void **state)
{
    (void)state;
    dsc_ring *r = ring("node-a:7070,node-b:7070,[::1]:7071", "node-b:7070");
    assert_int_equal(dsc_ring_size(r), 3);
    assert_string_equal(dsc_ring_peer(r, (size_t)dsc_ring_self(r)), "node-b:7070");
    assert_null(dsc_ring_peer(r, 3));
    dsc_ring_free(r);
    r = ring("solo:1", NULL);
    dsc_chunk_id id = chunk(5);
    assert_int_equal(dsc_ring_owner(r, &id), 0);
    assert_int_equal(dsc_ring_self(r), -1);
    dsc_ring_free(r);
}

static void test_bad_lists(void **state)
{
    (void)state;
    static const struct { const char *peers, *self, *why; } bad[] = {
        { "", NULL, "empty" }, { " , ,", NULL, "empty" },
        { "host", NULL, "'host' is not host:port" },
        { "host:", NULL, "not host:port" }, { ":80", NULL, "not host:port" },
        { "host:0", NULL, "not host:port" }, { "host:65536", NULL, "not host:port" },
        { "host:8x", NULL, "not host:port" }, { "h/x:80", NULL, "not host:port" },
        { "[::1:80", NULL, "not host:port" }, { "[]:80", NULL, "not host:port" },
        { "a:1,b:2,a:1", NULL, "'a:1' is listed twice" },
        { "a:1,b:2", "c:3", "'c:3' (DSC_SELF) is not in the peer list" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dsc_ring *r = (dsc_ring *)1;
        assert_int_equal(dsc_ring_new(bad[i].peers, bad[i].self, &r), DSC_EINVAL);
        assert_null(r);
        if (!strstr(dsc_errmsg(), bad[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].peers,
                     dsc_errmsg(), bad[i].why);
    }
    dsc_ring *r;
    assert_int_equal(dsc_ring_new(NULL, NULL, &r), DSC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread_within_10_percent),
        cmocka_unit_test(test_removal_moves_only_its_chunks),
        cmocka_unit_test(test_order_does_not_matter),
        cmocka_unit_test(test_self_and_single_peer),
        cmocka_unit_test(test_bad_lists),
    };
    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
