/* Chunk GETs streamed to their cache files meet cache trouble (a file
 * that cannot grow, no memory for the hash state): that stays the
 * cache's trouble, as on the buffered path -- counted, the chunk not
 * cached -- and never fails the warm, the prefetch or the read. */
#include <dlfcn.h>
#include <signal.h>
#include <sys/resource.h>
#include <xxhash.h>
#include "cachetest.h"

/* ---- XXH3_createState failing on demand (interposes libxxhash's) ---- */
static volatile int fail_hash_state;

XXH3_state_t *XXH3_createState(void)
{
    static XXH3_state_t *(*real)(void);
    if (fail_hash_state)
        return NULL;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "XXH3_createState");
    return real();
}

static dsc_ctx *ctx_for(const char *tag, int threads, int loop)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = fresh_dir(tag);
    cfg.chunk_size = 4u << 20;
    cfg.readahead_max = 0;
    cfg.prefetch_threads = threads;
    cfg.prefetch_loop = loop;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    return ctx;
}

static const fixture *five_mib(void)
{
    static fixture fx[128];
    int nfx = itest_fixtures(fx, 128);
    return itest_find(fx, nfx, "five-mib-plus-one");
}

/* Cache files limited to 2 MiB (EFBIG, as EDQUOT, EIO, or ENOSPC on a
 * filesystem without fallocate would do): chunk 0 (4 MiB) cannot be
 * cached. That is cache trouble, which never fails a read: dsc_warm
 * still succeeds, as it did when chunks came through buffers. */
static void limit_files(struct rlimit *old)
{
    struct rlimit lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, old), 0);
    lim = *old;
    lim.rlim_cur = 2u << 20;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

static void warm_write_fails(int threads, int loop)
{
    dsc_ctx *ctx = ctx_for("rv-efbig", threads, loop);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, five_mib()->url, &f), 0);
    struct rlimit old;
    limit_files(&old);
    int64_t got = dsc_warm(f, 0, 0);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", got < 0 ? dsc_errmsg() : "");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    dsc_stats st = stats_of(ctx);
    print_message("    threads %d: dsc_warm -> %lld [%s]; cache_errors %llu, "
                  "bytes_from_s3 %llu\n", threads, (long long)got, msg,
                  (unsigned long long)st.cache_errors,
                  (unsigned long long)st.bytes_from_s3);
    dsc_close(f);
    dsc_ctx_close(ctx);
    if (got < 0)
        fail_msg("dsc_warm failed on a cache write error: %lld", (long long)got);
    assert_int_equal(st.cache_errors, 1);     /* chunk 0; chunk 1 fits */
}

static void test_warm_write_fails_inline(void **state)
{
    (void)state;
    warm_write_fails(0, 0);
}

static void test_warm_write_fails_pool(void **state)
{
    (void)state;
    warm_write_fails(2, 1);
}

/* The same under dsc_prefetch on the loop: the chunk is cache trouble,
 * not a failed prefetch. */
static void test_prefetch_write_fails_loop(void **state)
{
    (void)state;
    dsc_ctx *ctx = ctx_for("rv-efbig-loop", 2, 1);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, five_mib()->url, &f), 0);
    struct rlimit old;
    limit_files(&old);
    assert_int_equal(dsc_prefetch(f, 0, 0), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 60000), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    dsc_stats st = stats_of(ctx);
    print_message("    loop: prefetch_done %llu, prefetch_errors %llu, "
                  "cache_errors %llu\n", (unsigned long long)st.prefetch_done,
                  (unsigned long long)st.prefetch_errors,
                  (unsigned long long)st.cache_errors);
    dsc_close(f);
    dsc_ctx_close(ctx);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.cache_errors, 1);
}

/* No memory for a hash state: the chunk goes through a buffer. */
static void test_sink_hash_state_oom(void **state)
{
    (void)state;
    dsc_ctx *ctx = ctx_for("rv-oom", 0, 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, five_mib()->url, &f), 0);
    fail_hash_state = 1;
    int64_t got = dsc_warm(f, 0, 0);
    fail_hash_state = 0;
    assert_true(got > 0);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_write_fails_inline),
        cmocka_unit_test(test_warm_write_fails_pool),
        cmocka_unit_test(test_prefetch_write_fails_loop),
        cmocka_unit_test(test_sink_hash_state_oom),
    };
    return cmocka_run_group_tests_name("stream_trouble", tests, NULL, NULL);
}
