/* Background GETs on the event loop, through faultproxy.py in front of
 * s3rver: many small objects prefetched with far more requests in flight
 * than fetcher threads (and no thread each), every byte right; a SlowDown
 * phase halves the in-flight limit and everything still arrives; closing
 * with GETs in flight is prompt and leaves nothing held (ASan checks the
 * leaks); a fork()ed child fetches on a loop of its own. */

#define N_OBJS 400
#define MIN_SIZE (8 * 1024)
#define MAX_SIZE (24 * 1024)
#define THREADS 4
#define PREFIX "loop/obj-"
#include "proxytest.h"

/* ---- helpers ------------------------------------------------------------ */

static dsc_ctx *loop_ctx_with(const char *dir, const char *endpoint, int loop)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = endpoint;
    cfg.cache_dir = dir;
    cfg.prefetch_threads = THREADS;
    cfg.prefetch_loop = loop;
    cfg.readahead_max = 0;
    dsc_ctx *ctx = NULL;
    if (dsc_ctx_open(&cfg, &ctx))
        fail_msg("dsc_ctx_open: %s", dsc_errmsg());
    return ctx;
}

static dsc_ctx *loop_ctx(const char *dir, const char *endpoint)
{
    return loop_ctx_with(dir, endpoint, 1);
}

static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void prefetch_all(dsc_ctx *ctx, int from, int to)
{
    char url[256];
    for (int i = from; i < to; i++) {
        obj_url(i, url, sizeof url);
        if (dsc_prefetch_url(ctx, url))
            fail_msg("prefetch %s: %s", url, dsc_errmsg());
    }
}

/* Wait for the prefetch, at most limit_ms; the most threads seen. */
static int wait_all(dsc_ctx *ctx, long limit_ms)
{
    int most = threads_now();
    int64_t end = now_ms() + limit_ms;
    for (;;) {
        int rc = dsc_prefetch_wait(ctx, 20);
        int n = threads_now();
        most = n > most ? n : most;
        if (rc == 0)
            return most;
        if (now_ms() > end)
            fail_msg("prefetch not done after %ld ms", limit_ms);
    }
}

/* Every object whole, byte for byte; returns how many. */
static int verify_all(dsc_ctx *ctx, int from, int to)
{
    char url[256];
    unsigned char *buf = malloc(MAX_SIZE);
    for (int i = from; i < to; i++) {
        obj_url(i, url, sizeof url);
        dsc_file *f;
        if (dsc_open(ctx, url, &f))
            fail_msg("open %s: %s", url, dsc_errmsg());
        size_t size = obj_size(i);
        assert_int_equal(dsc_size(f), (int64_t)size);
        ssize_t n = dsc_pread(f, buf, MAX_SIZE, 0);
        if (n < 0)
            fail_msg("pread %s: %s", url, dsc_errmsg());
        assert_int_equal((size_t)n, size);
        for (size_t j = 0; j < size; j++)
            if (buf[j] != obj_byte(i, j))
                fail_msg("%s: byte %zu is %d, want %d", url, j, buf[j],
                         obj_byte(i, j));
        dsc_close(f);
    }
    free(buf);
    return to - from;
}

/* ---- tests ---------------------------------------------------------------- */

/* 100 ms an answer: THREADS blocking fetchers would need N x 100 /
 * THREADS ms. The loop keeps many more in flight on one more thread. */
static void test_many_in_flight(void **state)
{
    (void)state;
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 100}]");
    dsc_ctx *ctx = loop_ctx(fresh_dir("loop-many"), px.endpoint);
    int64_t t0 = now_ms();
    prefetch_all(ctx, 0, N_OBJS);
    int most = wait_all(ctx, 60000);
    int64_t spent = now_ms() - t0;
    dsc_stats st = stats_of(ctx);
    double concurrency = N_OBJS * 100.0 / (double)(spent ? spent : 1);
    print_message("    %d objects in %lld ms (%.1f in flight on average, "
                  "limit peak %llu, now %llu); at most %d threads\n", N_OBJS,
                  (long long)spent, concurrency,
                  (unsigned long long)st.prefetch_inflight_peak,
                  (unsigned long long)st.prefetch_inflight_limit, most);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.prefetch_done, N_OBJS);
    assert_int_equal(st.prefetch_on_loop, N_OBJS);
    assert_int_equal(st.s3_gets, N_OBJS);       /* no HEADs, no repeats */
    assert_int_equal(st.s3_heads, 0);
    /* Main thread, the fetchers, the loop, and the cache's few helpers:
     * not a thread per request in flight. */
    if (most > THREADS + 5)
        fail_msg("%d threads for %d fetchers", most, THREADS);
    if (concurrency < 2.0 * THREADS)
        fail_msg("%.1f GETs in flight on average, want > %d", concurrency,
                 2 * THREADS);
    assert_true(st.prefetch_inflight_peak > THREADS);
    /* Everything cached: read with no request at all. */
    assert_int_equal(verify_all(ctx, 0, N_OBJS), N_OBJS);
    dsc_stats after = stats_of(ctx);
    assert_int_equal(after.misses, 0);
    assert_int_equal(after.s3_gets, st.s3_gets);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

/* prefetch_loop = 0: the blocking fetchers of old, THREADS in flight. */
static void test_loop_off(void **state)
{
    (void)state;
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 20}]");
    dsc_ctx *ctx = loop_ctx_with(fresh_dir("loop-off"), px.endpoint, 0);
    prefetch_all(ctx, 0, 100);
    wait_all(ctx, 60000);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.prefetch_done, 100);
    assert_int_equal(st.prefetch_on_loop, 0);
    assert_int_equal(st.prefetch_inflight_peak, THREADS);
    assert_int_equal(verify_all(ctx, 0, 100), 100);
    assert_int_equal(stats_of(ctx).misses, 0);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

/* The origin says SlowDown to a share of the GETs: the limit is halved
 * (counted), retries cure every one, every byte arrives. */
static void test_slow_down_backs_off(void **state)
{
    (void)state;
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 20}, "
                     "{\"fault\": \"slow_down\", \"prob\": 0.15, \"seed\": 3, "
                     "\"method\": \"GET\"}]");
    dsc_ctx *ctx = loop_ctx(fresh_dir("loop-slow"), px.endpoint);
    prefetch_all(ctx, 0, N_OBJS);
    wait_all(ctx, 120000);
    dsc_stats st = stats_of(ctx);
    print_message("    %llu retries, limit halved %llu times (peak %llu, "
                  "now %llu)\n", (unsigned long long)st.s3_retries,
                  (unsigned long long)st.prefetch_throttled,
                  (unsigned long long)st.prefetch_inflight_peak,
                  (unsigned long long)st.prefetch_inflight_limit);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.prefetch_done, N_OBJS);
    assert_true(st.s3_retries > 0);
    assert_true(st.prefetch_throttled > 0);
    assert_int_equal(verify_all(ctx, 0, N_OBJS), N_OBJS);
    assert_int_equal(stats_of(ctx).misses, 0);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

/* Closing with GETs in flight (each held 5 s by the proxy) returns at
 * once; the chunks' claims are let go, so another context on the same
 * cache reads them all now instead of waiting out single flight. */
static void test_close_in_flight(void **state)
{
    (void)state;
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 5000}]");
    const char *dir = fresh_dir("loop-close");
    dsc_ctx *ctx = loop_ctx(dir, px.endpoint);
    prefetch_all(ctx, 0, 100);
    usleep(300 * 1000);
    assert_true(stats_of(ctx).prefetch_on_loop > THREADS);
    int64_t t0 = now_ms();
    dsc_ctx_close(ctx);
    int64_t spent = now_ms() - t0;
    print_message("    close with GETs in flight: %lld ms\n", (long long)spent);
    if (spent > 1500)
        fail_msg("close took %lld ms", (long long)spent);
    dsc_ctx *direct = loop_ctx(dir, itest_env("DSC_TEST_ENDPOINT"));
    t0 = now_ms();
    assert_int_equal(verify_all(direct, 0, 100), 100);
    spent = now_ms() - t0;
    if (spent > 4000)
        fail_msg("reading after close took %lld ms", (long long)spent);
    dsc_ctx_close(direct);
    proxy_stop(&px);
}

/* A read of chunks whose prefetch GETs are in flight waits for them on
 * their single-flight locks, on every fetcher and the caller: the loop
 * then stores them itself (no fetcher is free to) and the read goes on,
 * without waiting out the flight timeout. */
static void test_read_joins_loop_gets(void **state)
{
    (void)state;
    fixture fx[128];
    int nfx = itest_fixtures(fx, 128);
    const fixture *x = itest_find(fx, nfx, "five-mib-plus-one");
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 1000, "
                     "\"method\": \"GET\"}]");
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = px.endpoint;
    cfg.cache_dir = fresh_dir("loop-join");
    cfg.chunk_size = 1u << 20;
    cfg.prefetch_threads = 2;
    cfg.readahead_max = 0;
    cfg.prefetch_loop = 1;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    assert_int_equal(dsc_prefetch(f, 0, 0), 0);          /* 6 chunks */
    /* The last chunk is 1 byte: that GET keeps dsc_s3_get's way. */
    for (int i = 0; i < 100 && stats_of(ctx).prefetch_on_loop < 5; i++)
        usleep(20 * 1000);
    assert_int_equal(stats_of(ctx).prefetch_on_loop, 5);
    unsigned char *want = itest_slurp(x->path, x->size);
    unsigned char *got = malloc(x->size);
    int64_t t0 = now_ms();
    assert_int_equal(dsc_pread(f, got, x->size, 0), (ssize_t)x->size);
    int64_t spent = now_ms() - t0;
    print_message("    read of 6 chunks the loop was fetching: %lld ms\n",
                  (long long)spent);
    assert_memory_equal(got, want, x->size);
    if (spent > 5000)
        fail_msg("the read waited %lld ms", (long long)spent);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.s3_gets, 6);          /* joined, not fetched again */
    assert_int_equal(st.misses, 0);
    free(got);
    free(want);
    dsc_close(f);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

/* A context on endpoint with chunks of chunk bytes and no readahead:
 * *cfg keeps its settings for a second open. */
static dsc_ctx *chunk_ctx(dsc_config *cfg, const char *endpoint,
                          const char *tag, uint32_t chunk, int loop)
{
    assert_int_equal(dsc_config_init(cfg, DSC_CONFIG_VERSION), 0);
    cfg->endpoint = endpoint;
    cfg->cache_dir = fresh_dir(tag);
    cfg->chunk_size = chunk;
    cfg->readahead_max = 0;
    cfg->prefetch_loop = loop;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(cfg, &ctx), 0);
    return ctx;
}

/* x, whole and right, from the cache cfg made, in a context that hashes
 * every file on first use: nothing fetched, nothing found corrupt. */
static void reread_rehashed(dsc_config *cfg, const fixture *x)
{
    cfg->cache_verify = DSC_VERIFY_ALWAYS;
    dsc_ctx *ctx;
    dsc_file *f;
    assert_int_equal(dsc_ctx_open(cfg, &ctx), 0);
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned char *want = itest_slurp(x->path, x->size);
    unsigned char *got = malloc(x->size);
    assert_int_equal(dsc_pread(f, got, x->size, 0), (ssize_t)x->size);
    assert_memory_equal(got, want, x->size);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.misses, 0);
    assert_int_equal(st.corrupt_dropped, 0);
    free(got);
    free(want);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Prefetched chunks go to their files as they arrive: a 64 MiB object's
 * 16 chunks all in flight at once (on the loop; or 8 at once on the
 * blocking fetchers) cost the process a few MiB, not a chunk buffer
 * each; what is stored hashes right (a context that re-hashes every
 * file on first use finds nothing corrupt). */
static void streamed_to_files(int loop)
{
    fixture fx[128];
    int nfx = itest_fixtures(fx, 128);
    const fixture *x = itest_find(fx, nfx, "sixty-four-mib");
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 300, "
                     "\"method\": \"GET\"}]");
    dsc_config cfg;
    dsc_ctx *ctx = chunk_ctx(&cfg, px.endpoint,
                             loop ? "loop-stream" : "loop-stream-off", 4u << 20, loop);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    /* The peak resident set from here on (Linux: "5" resets VmHWM). */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    assert_non_null(cr);
    fputs("5", cr);
    fclose(cr);
    long base = status_kib("VmRSS:");
    assert_int_equal(dsc_prefetch(f, 0, 0), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 60000), 0);
    long grown = status_kib("VmHWM:") - base;
    dsc_stats st = stats_of(ctx);
    print_message("    64 MiB in 16 chunks %s (peak %llu in flight): "
                  "peak RSS grew %ld KiB\n", loop ? "on the loop" : "on 8 fetchers",
                  (unsigned long long)st.prefetch_inflight_peak, grown);
    assert_int_equal(st.prefetch_errors, 0);
    if (loop)
        assert_true(st.prefetch_on_loop >= 15);
    /* A sanitizer's shadow memory and allocator grow with what the
     * threads touch: the bound is for the plain build. */
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    if (grown > 24 * 1024)
        fail_msg("peak RSS grew %ld KiB while 64 MiB streamed to files", grown);
#endif
    dsc_close(f);
    dsc_ctx_close(ctx);

    reread_rehashed(&cfg, x);
    proxy_stop(&px);
}

static void test_streamed_to_files(void **state)
{
    (void)state;
    streamed_to_files(1);
}

static void test_streamed_to_files_loop_off(void **state)
{
    (void)state;
    streamed_to_files(0);
}

/* GETs cut halfway are retried; the file of each starts over with the
 * retry's body, so what is stored and its hash are the whole chunk's. */
static void test_streamed_retry_starts_over(void **state)
{
    (void)state;
    fixture fx[128];
    int nfx = itest_fixtures(fx, 128);
    const fixture *x = itest_find(fx, nfx, "five-mib-plus-one");
    proxy px;
    proxy_start(&px, "[{\"fault\": \"truncate\", \"count\": 3, "
                     "\"method\": \"GET\", \"fraction\": 0.5}]");
    dsc_config cfg;
    dsc_ctx *ctx = chunk_ctx(&cfg, px.endpoint, "loop-stream-retry", 1u << 20, 1);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    uint64_t gets0 = stats_of(ctx).s3_gets;
    assert_int_equal(dsc_prefetch(f, 0, 0), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 60000), 0);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.s3_gets - gets0, 6);
    assert_int_equal(st.s3_retries, 3);         /* the cut ones, again */
    assert_int_equal(st.cache_errors, 0);
    dsc_close(f);
    dsc_ctx_close(ctx);

    reread_rehashed(&cfg, x);
    proxy_stop(&px);
}

/* A child after fork() never uses the parent's loop: it makes its own. */
static void test_fork_child(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    /* TSan cannot follow a child that starts threads after a fork of a
     * threaded parent; the normal and ASan runs cover this test. */
    skip();
#endif
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 20}]");
    const char *dir = fresh_dir("loop-fork");
    dsc_ctx *ctx = loop_ctx(dir, px.endpoint);
    prefetch_all(ctx, 0, 50);
    wait_all(ctx, 30000);
    pid_t pid = fork();
    if (pid == 0) {
        prefetch_all(ctx, 50, 150);
        int ok = dsc_prefetch_wait(ctx, 30000) == 0;
        dsc_stats st;
        ok = ok && dsc_stats_get(ctx, &st, sizeof st) == 0 &&
             st.prefetch_done == 100 && st.prefetch_errors == 0 &&
             st.prefetch_on_loop == 100;
        dsc_ctx_close(ctx);
        _exit(ok ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's loop still works, and the child's chunks are cached. */
    prefetch_all(ctx, 150, 200);
    wait_all(ctx, 30000);
    dsc_stats before = stats_of(ctx);
    assert_int_equal(verify_all(ctx, 0, 200), 200);
    assert_int_equal(stats_of(ctx).misses, before.misses);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

int main(void)
{
    if (put_objects(N_OBJS))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_loop_off),
        cmocka_unit_test(test_slow_down_backs_off),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_read_joins_loop_gets),
        cmocka_unit_test(test_streamed_to_files),
        cmocka_unit_test(test_streamed_to_files_loop_off),
        cmocka_unit_test(test_streamed_retry_starts_over),
        cmocka_unit_test(test_fork_child),
    };
    return cmocka_run_group_tests_name("prefetch_loop", tests, NULL, NULL);
}
