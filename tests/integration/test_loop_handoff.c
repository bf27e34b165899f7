/* A GET on the event loop can end before the fetcher that started it
 * returns from starting it: on a loaded machine the loop's thread runs
 * the whole request while the fetcher waits for a CPU. The task must
 * already say it is the loop's then, or the idle fetcher it is handed to
 * takes it for new work: a prefetched URL then waited the flight timeout
 * for its own first-fetch lock, and a chunk was dropped with its claim
 * held, so every reader of it waited the flight timeout (a rank of
 * test_python_distributed stalled past gloo's 60 s this way).
 *
 * This test makes that order certain instead of rare: it interposes
 * curl_multi_wakeup, which the fetcher calls right after queueing the
 * GET, and keeps the fetcher there while the loop does the GET. */
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "cachetest.h"

#define HOLD_MS 500
/* Flight timeout of the contexts here: 2 attempts of 2 s, + 100 ms. */
#define FLIGHT_MS 4100
/* Well under FLIGHT_MS: a wait this long was a wait for a lock. */
#define PROMPT_MS 2500

static int hold_submitter;         /* read by curl_multi_wakeup's caller */
static CURLMcode (*real_wakeup)(CURLM *);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real_wakeup(void)
{
    *(void **)&real_wakeup = dlsym(RTLD_NEXT, "curl_multi_wakeup");
}

/* libdsc's own calls resolve here (the executable comes first): the
 * real wakeup, then, when a test asks, HOLD_MS more in the caller.
 * Several threads call it: the real one is looked up once. */
CURLMcode curl_multi_wakeup(CURLM *m)
{
    pthread_once(&real_once, find_real_wakeup);
    CURLMcode rc = real_wakeup(m);
    if (__atomic_load_n(&hold_submitter, __ATOMIC_ACQUIRE))
        usleep(HOLD_MS * 1000);
    return rc;
}

static void hold(int on)
{
    __atomic_store_n(&hold_submitter, on, __ATOMIC_RELEASE);
}

/* Two fetchers (one starts the GET, one is idle to be handed its end), a
 * short flight timeout, the loop on. */
static dsc_ctx *handoff_ctx(const char *tag)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = fresh_dir(tag);
    cfg.chunk_size = 1u << 20;
    cfg.prefetch_threads = 2;
    cfg.prefetch_loop = 1;
    cfg.readahead_max = 0;
    cfg.request_timeout_ms = 2000;
    cfg.max_retries = 1;
    cfg.retry_max_ms = 100;
    dsc_ctx *ctx = NULL;
    if (dsc_ctx_open(&cfg, &ctx))
        fail_msg("dsc_ctx_open: %s", dsc_errmsg());
    return ctx;
}

/* The stats once the held fetcher is back: it counts the GET it started
 * on the loop (prefetch_on_loop) after the start returns, and that start
 * is what is held here, while the prefetch may be done already. */
static dsc_stats stats_settled(dsc_ctx *ctx)
{
    dsc_stats st = stats_of(ctx);
    for (int i = 0; i < 100 && st.prefetch_on_loop == 0; i++) {
        usleep(20 * 1000);
        st = stats_of(ctx);
    }
    return st;
}

static void read_whole(dsc_ctx *ctx, const fixture *x)
{
    unsigned char *want = itest_slurp(x->path, x->size);
    unsigned char *got = malloc(x->size);
    assert_non_null(got);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    int64_t t0 = now_ms();
    assert_int_equal(dsc_pread(f, got, x->size, 0), (ssize_t)x->size);
    int64_t spent = now_ms() - t0;
    if (spent > PROMPT_MS)
        fail_msg("reading the prefetched object waited %lld ms",
                 (long long)spent);
    assert_memory_equal(got, want, x->size);
    dsc_close(f);
    free(got);
    free(want);
}

/* An object's first GET (size and ETag unknown) ends before its fetcher
 * is back: the prefetch is done at once, with one GET, and chunk 0 is
 * cached with its first-fetch lock let go. */
static void test_first_get_ends_before_its_start_returns(void **state)
{
    (void)state;
    fixture fx[128];
    int n = itest_fixtures(fx, 128);
    const fixture *x = itest_find(fx, n, "epoch/obj-00");
    dsc_ctx *ctx = handoff_ctx("handoff-first");
    hold(1);
    int64_t t0 = now_ms();
    assert_int_equal(dsc_prefetch_url(ctx, x->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, FLIGHT_MS * 3), 0);
    int64_t spent = now_ms() - t0;
    hold(0);
    print_message("    prefetch of a URL whose GET ended first: %lld ms\n",
                  (long long)spent);
    if (spent > HOLD_MS + PROMPT_MS)
        fail_msg("the prefetch waited %lld ms", (long long)spent);
    dsc_stats st = stats_settled(ctx);
    assert_int_equal(st.prefetch_on_loop, 1);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.s3_gets, 1);
    read_whole(ctx, x);
    st = stats_of(ctx);
    assert_int_equal(st.s3_gets, 1);
    assert_int_equal(st.misses, 0);
    dsc_ctx_close(ctx);
}

/* A chunk's GET ends before its fetcher is back: it is stored and its
 * claim let go, so a read of it is a prompt hit. */
static void test_chunk_get_ends_before_its_start_returns(void **state)
{
    (void)state;
    fixture fx[128];
    int n = itest_fixtures(fx, 128);
    const fixture *x = itest_find(fx, n, "epoch/obj-01");
    dsc_ctx *ctx = handoff_ctx("handoff-chunk");
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);    /* size and ETag */
    hold(1);
    assert_int_equal(dsc_prefetch(f, 0, 0), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, FLIGHT_MS * 3), 0);
    hold(0);
    dsc_close(f);
    read_whole(ctx, x);
    dsc_stats st = stats_settled(ctx);
    assert_int_equal(st.prefetch_on_loop, 1);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.prefetch_busy, 0);      /* not met again as new work */
    assert_int_equal(st.s3_gets, 1);
    assert_int_equal(st.misses, 0);
    dsc_ctx_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_get_ends_before_its_start_returns),
        cmocka_unit_test(test_chunk_get_ends_before_its_start_returns),
    };
    return cmocka_run_group_tests_name("loop_handoff", tests, NULL, NULL);
}
