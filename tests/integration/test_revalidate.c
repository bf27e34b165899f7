/* Metadata past its TTL is checked, never paid for again: once an object's
 * size and ETag have expired, prefetch and open ask S3 with a HEAD (a plan
 * with one listing) and read the cached chunks; only an object that really
 * changed is fetched again. Requests are counted by our counters and by
 * s3rver's own log. */
#include <sys/wait.h>
#include "cachetest.h"

static fixture fx[128];
static int nfx;
#define N 48
#define TTL_MS 300

static const fixture *epoch[N];

static void epoch_fixtures(void)
{
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "epoch/obj-%02d", i);
        epoch[i] = itest_find(fx, nfx, name);
    }
}

static void reval_config(dsc_config *cfg, const char *dir, long ttl_ms)
{
    dsc_config_init(cfg, DSC_CONFIG_VERSION);
    cfg->endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg->cache_dir = dir;
    cfg->chunk_size = 64 * 1024;
    cfg->meta_ttl_ms = ttl_ms;
    cfg->readahead_max = 0;
}

static dsc_ctx *reval_ctx_ttl(const char *dir, long ttl_ms)
{
    dsc_config cfg;
    reval_config(&cfg, dir, ttl_ms);
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    return ctx;
}

static dsc_ctx *reval_ctx(const char *dir)
{
    return reval_ctx_ttl(dir, TTL_MS);
}

/* A dataset made from the epoch/ prefix: the listing teaches the context
 * every object's metadata. */
static void list_epoch(dsc_ctx *ctx)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "s3://%s/epoch/", itest_env("DSC_TEST_BUCKET"));
    assert_true(dsc_list(ctx, prefix, NULL, NULL) >= N);
}

/* What s3rver saw of the epoch objects: GETs (206), HEADs (200), LISTs. */
typedef struct seen {
    int gets, heads, lists;
} seen;

static seen server_seen(void)
{
    return (seen){ server_log_lines("epoch/obj-", " 206 "),
                   server_log_lines("epoch/obj-", " 200 "),
                   server_log_lines("Fetched bucket", NULL) };
}

static void past_ttl(void)
{
    struct timespec ts = { 0, (TTL_MS + 100) * 1000000L };
    nanosleep(&ts, NULL);
}

static void read_all(dsc_ctx *ctx)
{
    for (int i = 0; i < N; i++)
        read_verify(ctx, epoch[i], 65536);
}

/* Prefetch after the TTL: one HEAD per object, no body byte. */
static void test_prefetch_after_ttl_moves_no_bytes(void **state)
{
    (void)state;
    dsc_ctx *ctx = reval_ctx(fresh_dir("reval-pf"));
    for (int i = 0; i < N; i++)
        assert_int_equal(dsc_prefetch_url(ctx, epoch[i]->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    read_all(ctx);
    dsc_stats a = stats_of(ctx);
    seen s0 = server_seen();
    past_ttl();
    for (int i = 0; i < N; i++)
        assert_int_equal(dsc_prefetch_url(ctx, epoch[i]->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    read_all(ctx);
    dsc_stats b = stats_of(ctx);
    seen s1 = server_seen();
    printf("    after the TTL: %d GETs, %d HEADs, %llu body bytes from S3\n",
           s1.gets - s0.gets, s1.heads - s0.heads,
           (unsigned long long)(b.bytes_from_s3 - a.bytes_from_s3));
    assert_int_equal(s1.gets - s0.gets, 0);
    assert_int_equal(b.bytes_from_s3, a.bytes_from_s3);
    assert_int_equal(b.s3_gets, a.s3_gets);
    /* One HEAD an object: the prefetch's; the reads then found fresh metadata. */
    assert_int_equal(s1.heads - s0.heads, N);
    assert_int_equal(b.hits - a.hits, N);
    assert_int_equal(b.misses, a.misses);
    dsc_ctx_close(ctx);
}

/* Open after the TTL: a HEAD each, then the cached chunks. */
static void test_open_after_ttl_reads_cached_chunks(void **state)
{
    (void)state;
    dsc_ctx *ctx = reval_ctx(fresh_dir("reval-open"));
    read_all(ctx);
    dsc_stats a = stats_of(ctx);
    seen s0 = server_seen();
    past_ttl();
    read_all(ctx);
    dsc_stats b = stats_of(ctx);
    seen s1 = server_seen();
    assert_int_equal(s1.gets - s0.gets, 0);
    assert_int_equal(s1.heads - s0.heads, N);
    assert_int_equal(b.s3_heads - a.s3_heads, N);
    assert_int_equal(b.hits - a.hits, N);
    assert_int_equal(b.bytes_from_s3, a.bytes_from_s3);
    dsc_ctx_close(ctx);
}

/* A plan after the TTL revalidates its objects with one listing: no HEAD,
 * no GET, and the reader's opens find fresh metadata. */
static void test_plan_after_ttl_lists_once(void **state)
{
    (void)state;
    dsc_ctx *ctx = reval_ctx(fresh_dir("reval-plan"));
    dsc_plan_item items[N];
    for (int i = 0; i < N; i++)
        items[i] = (dsc_plan_item){ epoch[i]->url, 0, 0 };
    for (int epoch_no = 0; epoch_no < 3; epoch_no++) {
        dsc_stats a = stats_of(ctx);
        seen s0 = server_seen();
        dsc_plan *p;
        assert_int_equal(dsc_plan_start(ctx, items, N, &p), 0);
        read_all(ctx);
        dsc_plan_stop(p);
        dsc_stats b = stats_of(ctx);
        seen s1 = server_seen();
        printf("    epoch %d: %d GETs, %d HEADs, %d LISTs\n", epoch_no,
               s1.gets - s0.gets, s1.heads - s0.heads, s1.lists - s0.lists);
        if (epoch_no > 0) {
            assert_int_equal(s1.gets - s0.gets, 0);
            assert_int_equal(s1.heads - s0.heads, 0);
            assert_int_equal(b.s3_heads, a.s3_heads);
            assert_int_equal(s1.lists - s0.lists, 1);
            assert_int_equal(b.s3_lists - a.s3_lists, 1);
            assert_int_equal(b.hits - a.hits, N);
            assert_int_equal(b.bytes_from_s3, a.bytes_from_s3);
        }
        past_ttl();
    }
    dsc_ctx_close(ctx);
}

/* Objects a listing taught (a dataset made from a prefix) are revalidated
 * by listing again, once for every worker process: no HEAD per object.
 * The workers are forked after the listing, as a DataLoader's are. */
static void test_listed_objects_relist(void **state)
{
    (void)state;
    dsc_ctx *ctx = reval_ctx(fresh_dir("reval-listed"));
    list_epoch(ctx);
    read_all(ctx);
    for (int round = 0; round < 2; round++) {
        past_ttl();
        seen s0 = server_seen();
        pid_t kids[4];
        fflush(stdout);   /* else each child prints the parent's buffer again */
        for (int k = 0; k < 4; k++) {
            kids[k] = fork();
            assert_true(kids[k] >= 0);
            if (kids[k] == 0) {
                dsc_stats a = stats_of(ctx);
                read_all(ctx);
                dsc_stats b = stats_of(ctx);
                _exit(b.s3_heads != a.s3_heads ? 3 : b.hits - a.hits != N ? 4 : 0);
            }
        }
        for (int k = 0; k < 4; k++) {
            int st = 0;
            assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
            assert_true(WIFEXITED(st));
            if (WEXITSTATUS(st))
                fail_msg("worker %d: %s", k, WEXITSTATUS(st) == 3 ? "sent HEADs"
                         : "did not read every object from the cache");
        }
        seen s1 = server_seen();
        printf("    round %d, 4 workers after the TTL: %d GETs, %d HEADs, %d LISTs\n",
               round, s1.gets - s0.gets, s1.heads - s0.heads, s1.lists - s0.lists);
        assert_int_equal(s1.gets - s0.gets, 0);
        assert_int_equal(s1.heads - s0.heads, 0);
        assert_true(s1.lists - s0.lists >= 1);
        assert_true(s1.lists - s0.lists <= 4);
    }
    dsc_ctx_close(ctx);
}

/* A long epoch over a listed dataset: its listing is run again in the
 * background before the metadata expires, so no open ever finds it
 * expired, none sends a HEAD and none waits for a listing. */
static void test_refresh_ahead(void **state)
{
    (void)state;
    dsc_ctx *ctx = reval_ctx_ttl(fresh_dir("reval-ahead"), 1500);
    list_epoch(ctx);
    read_all(ctx);
    dsc_stats a = stats_of(ctx);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int passes = 0;
    do {
        read_all(ctx);
        passes++;
        struct timespec nap = { 0, 20 * 1000000L };   /* a training step */
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
    dsc_stats b = stats_of(ctx);
    printf("    %d passes over 5 s (TTL 1.5 s): %llu expired, %llu HEADs, %llu LISTs, "
           "%llu GETs\n", passes, (unsigned long long)(b.meta_expired - a.meta_expired),
           (unsigned long long)(b.s3_heads - a.s3_heads),
           (unsigned long long)(b.s3_lists - a.s3_lists),
           (unsigned long long)(b.s3_gets - a.s3_gets));
    assert_int_equal(b.meta_expired, a.meta_expired);
    assert_int_equal(b.s3_heads, a.s3_heads);
    assert_int_equal(b.s3_gets, a.s3_gets);
    assert_true(b.s3_lists - a.s3_lists >= 3);
    assert_true(b.s3_lists - a.s3_lists <= 10);
    dsc_ctx_close(ctx);
}

/* A pause longer than the TTL (evaluation, a checkpoint): the keeper of
 * the process that listed has run the listing again before it expired,
 * so the next epoch finds every object's metadata fresh. */
static void test_keeper_bridges_a_pause(void **state)
{
    (void)state;
    /* 10 s: the shortest TTL the keeper serves. */
    dsc_ctx *ctx = reval_ctx_ttl(fresh_dir("reval-keeper"), 10000);
    list_epoch(ctx);
    read_all(ctx);
    dsc_stats a = stats_of(ctx);
    struct timespec pause = { 12, 0 };
    nanosleep(&pause, NULL);
    dsc_stats b = stats_of(ctx);
    read_all(ctx);
    dsc_stats c = stats_of(ctx);
    printf("    after a 12 s pause (TTL 10 s): %llu LISTs during it; then %llu expired, "
           "%llu HEADs, %llu GETs\n", (unsigned long long)(b.s3_lists - a.s3_lists),
           (unsigned long long)(c.meta_expired - b.meta_expired),
           (unsigned long long)(c.s3_heads - b.s3_heads),
           (unsigned long long)(c.s3_gets - b.s3_gets));
    assert_true(b.s3_lists - a.s3_lists >= 1);
    assert_true(b.s3_lists - a.s3_lists <= 2);
    assert_int_equal(c.meta_expired, b.meta_expired);
    assert_int_equal(c.s3_heads, b.s3_heads);
    assert_int_equal(c.s3_gets, b.s3_gets);
    assert_int_equal(c.hits - b.hits, N);
    dsc_ctx_close(ctx);
}

/* An index started far too small (DSC_INDEX_MAP_SIZE=256K) grows as chunks
 * and metadata come: every chunk is cached, nothing is lost or refused.
 * A bad value is refused when the context opens, naming the variable. */
static void test_index_grows_in_use(void **state)
{
    (void)state;
    setenv("DSC_INDEX_MAP_SIZE", "256K", 1);
    dsc_config cfg;
    reval_config(&cfg, fresh_dir("reval-grow"), 60000);
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    unsetenv("DSC_INDEX_MAP_SIZE");
    dsc_stats a = stats_of(ctx);
    assert_int_equal(a.index_map_bytes, 256 << 10);
    /* 1,266 metadata records (a listing of the bucket) and 48 chunks. */
    char prefix[300];
    snprintf(prefix, sizeof prefix, "s3://%s/", itest_env("DSC_TEST_BUCKET"));
    assert_true(dsc_list(ctx, prefix, NULL, NULL) > 1000);
    read_all(ctx);
    read_all(ctx);
    dsc_stats b = stats_of(ctx);
    printf("    map %llu KiB -> %llu KiB (%llu KiB used); %llu chunks, %llu hits\n",
           (unsigned long long)a.index_map_bytes >> 10,
           (unsigned long long)b.index_map_bytes >> 10,
           (unsigned long long)b.index_used_bytes >> 10,
           (unsigned long long)b.cache_chunks, (unsigned long long)b.hits);
    assert_true(b.index_map_bytes > a.index_map_bytes);
    assert_int_equal(b.index_full, 0);
    assert_int_equal(b.cache_errors, 0);
    assert_int_equal(b.hits, N);
    dsc_ctx_close(ctx);

    setenv("DSC_INDEX_MAP_SIZE", "lots", 1);
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), "DSC_INDEX_MAP_SIZE"));
    unsetenv("DSC_INDEX_MAP_SIZE");
}

/* Revalidation still sees a change: the new version is fetched, by
 * prefetch and by open, never the old bytes under the new ETag. */
static void test_change_after_ttl_is_fetched(void **state)
{
    (void)state;
    char cmd[1024], url[300];
    const char *key = "reval/changing";
    snprintf(url, sizeof url, "s3://%s/%s", itest_env("DSC_TEST_BUCKET"), key);
    snprintf(cmd, sizeof cmd, "%s put %s %s 200000 1", itest_env("DSC_TEST_PUT"),
             itest_env("DSC_TEST_ENDPOINT"), key);
    assert_int_equal(system(cmd), 0);
    dsc_ctx *ctx = reval_ctx(fresh_dir("reval-change"));
    static unsigned char buf[200000];
    assert_int_equal(dsc_prefetch_url(ctx, url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[sizeof buf - 1], 1);
    dsc_close(f);
    snprintf(cmd, sizeof cmd, "%s put %s %s 200000 2", itest_env("DSC_TEST_PUT"),
             itest_env("DSC_TEST_ENDPOINT"), key);
    assert_int_equal(system(cmd), 0);
    past_ttl();
    int g0 = server_gets(key);
    assert_int_equal(dsc_prefetch_url(ctx, url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    assert_int_equal(server_gets(key), g0 + 4);   /* 4 chunks of the new version */
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != 2)
            fail_msg("byte %zu is %d, the new version has 2", i, buf[i]);
    dsc_close(f);
    assert_int_equal(server_gets(key), g0 + 4);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 128);
    epoch_fixtures();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_after_ttl_moves_no_bytes),
        cmocka_unit_test(test_open_after_ttl_reads_cached_chunks),
        cmocka_unit_test(test_plan_after_ttl_lists_once),
        cmocka_unit_test(test_listed_objects_relist),
        cmocka_unit_test(test_refresh_ahead),
        cmocka_unit_test(test_index_grows_in_use),
        cmocka_unit_test(test_keeper_bridges_a_pause),
        cmocka_unit_test(test_change_after_ttl_is_fetched),
    };
    return cmocka_run_group_tests_name("revalidate", tests, NULL, NULL);
}
