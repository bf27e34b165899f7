/* Background fetching against s3rver: prefetch, warm, readahead, plans,
 * parallel multi-chunk reads, budgets, errors, cancellation, fork. */
#include <pthread.h>
#include <sys/wait.h>
#include "cachetest.h"

static fixture fx[128];
static int nfx;
#define MiB (1u << 20)

static const fixture *fix(const char *name) { return itest_find(fx, nfx, name); }

static dsc_ctx *pf_ctx(const char *dir, int threads, int queue, uint64_t ra)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = dir;
    cfg.chunk_size = MiB;
    cfg.prefetch_threads = threads;
    cfg.prefetch_queue = queue;
    cfg.readahead_max = ra;
    dsc_ctx *ctx;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc)
        fail_msg("ctx: %s", dsc_errmsg());
    return ctx;
}

static void epoch_urls(const fixture **out)
{
    char name[32];
    for (int i = 0; i < 48; i++) {
        snprintf(name, sizeof name, "epoch/obj-%02d", i);
        out[i] = fix(name);
    }
}

/* Prefetched objects are then read with no S3 traffic at all. */
static void test_prefetch_url_then_read(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-url"), 4, 65536, 0);
    const fixture *objs[48];
    epoch_urls(objs);
    for (int i = 0; i < 48; i++)
        assert_int_equal(dsc_prefetch_url(ctx, objs[i]->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats a = stats_of(ctx);
    assert_int_equal(a.prefetch_errors, 0);
    /* One request an object: the first ranged GET brings size and ETag. */
    assert_int_equal(a.prefetch_done, 48);
    assert_int_equal(a.s3_heads, 0);
    assert_int_equal(a.s3_gets, 48);
    for (int i = 0; i < 48; i++)
        read_verify(ctx, objs[i], 65536);
    dsc_stats b = stats_of(ctx);
    assert_int_equal(b.misses, 0);
    assert_int_equal(b.hits, 48);
    assert_int_equal(b.s3_gets, a.s3_gets);
    dsc_ctx_close(ctx);
}

/* The bulk call: one call queues an epoch; the same epoch again, cached,
 * queues nothing and sends nothing; a bad URL stops it, counted. */
static void test_prefetch_urls_bulk(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-urls"), 4, 65536, 0);
    const fixture *objs[48];
    const char *urls[49];
    epoch_urls(objs);
    for (int i = 0; i < 48; i++)
        urls[i] = objs[i]->url;
    size_t taken = 99;
    assert_int_equal(dsc_prefetch_urls(ctx, urls, 48, &taken), 48);
    assert_int_equal(taken, 48);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats a = stats_of(ctx);
    assert_int_equal(a.prefetch_done, 48);
    assert_int_equal(a.s3_gets, 48);
    assert_int_equal(dsc_prefetch_urls(ctx, urls, 48, &taken), 0);
    assert_int_equal(taken, 48);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats b = stats_of(ctx);
    assert_int_equal(b.prefetch_queued, a.prefetch_queued);
    assert_int_equal(b.s3_gets + b.s3_heads, a.s3_gets + a.s3_heads);
    urls[10] = "gs://not/s3";
    assert_int_equal(dsc_prefetch_urls(ctx, urls, 48, &taken), DSC_EURL);
    assert_int_equal(taken, 10);
    assert_non_null(strstr(dsc_errmsg(), "gs://not/s3"));
    urls[10] = NULL;
    assert_int_equal(dsc_prefetch_urls(ctx, urls, 48, NULL), DSC_EINVAL);
    assert_int_equal(dsc_prefetch_urls(ctx, NULL, 1, NULL), DSC_EINVAL);
    assert_int_equal(dsc_prefetch_urls(ctx, NULL, 0, &taken), 0);
    assert_int_equal(taken, 0);
    dsc_ctx_close(ctx);
}

static void test_prefetch_range_and_warm(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-range"), 4, 65536, 0);
    const fixture *x = fix("sixty-four-mib");
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    assert_int_equal(dsc_prefetch(f, 10 * MiB + 5, 3 * MiB), 0);   /* 4 chunks */
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    assert_int_equal(stats_of(ctx).prefetch_done, 4);
    /* warm: fetches what is missing, reports the bytes it fetched. */
    assert_int_equal(dsc_warm(f, 0, 16 * MiB), 12 * MiB);
    assert_int_equal(dsc_warm(f, 0, 16 * MiB), 0);
    assert_int_equal(dsc_warm(f, x->size, 5), 0);
    dsc_stats before = stats_of(ctx);
    unsigned char *want = itest_slurp(x->path, x->size);
    static unsigned char buf[16 * MiB];
    assert_int_equal(dsc_pread(f, buf, 16 * MiB, 0), 16 * MiB);
    assert_memory_equal(buf, want, 16 * MiB);
    assert_int_equal(stats_of(ctx).misses, before.misses);
    free(want);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

/* One big read is fetched in parallel, written straight into the
 * caller's buffer, exactly right even when it starts and ends mid-chunk. */
static void test_parallel_big_read(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-big"), 8, 65536, 0);
    const fixture *x = fix("sixty-four-mib");
    unsigned char *want = itest_slurp(x->path, x->size);
    unsigned char *buf = malloc(x->size);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    uint64_t off = 777777;
    size_t len = (size_t)(x->size - off - 12345);
    assert_int_equal(dsc_pread(f, buf, len, off), (ssize_t)len);
    assert_memory_equal(buf, want + off, len);
    assert_int_equal(dsc_pread(f, buf, x->size, 0), (ssize_t)x->size);
    assert_memory_equal(buf, want, x->size);
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.misses, 64);      /* each chunk fetched once */
    dsc_close(f);
    dsc_ctx_close(ctx);
    free(buf);
    free(want);
}

/* A sequential reader's next chunks are fetched ahead; a random reader
 * gets no readahead. */
static void test_readahead(void **state)
{
    (void)state;
    const fixture *x = fix("sixty-four-mib");
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-ra"), 4, 65536, 16 * MiB);
    read_verify(ctx, x, 256 * 1024);
    dsc_stats s = stats_of(ctx);
    printf("    sequential 256 KiB reads: %llu chunks read ahead, reader "
           "hits %llu, misses %llu\n", (unsigned long long)s.readahead_chunks,
           (unsigned long long)s.hits, (unsigned long long)s.misses);
    assert_true(s.readahead_chunks >= 50);
    assert_true(s.misses <= 8);
    dsc_ctx_close(ctx);

    ctx = pf_ctx(fresh_dir("pf-rand"), 4, 65536, 16 * MiB);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned seed = 3;
    unsigned char buf[4096];
    for (int i = 0; i < 100; i++)
        assert_int_equal(dsc_pread(f, buf, sizeof buf,
                                   (uint64_t)rand_r(&seed) % (x->size - 4096)),
                         4096);
    assert_int_equal(stats_of(ctx).readahead_chunks, 0);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

/* Closing a file drops its queued readahead; closing the context with
 * work queued neither hangs nor leaks. */
static void test_cancel_on_close(void **state)
{
    (void)state;
    const fixture *x = fix("sixty-four-mib");
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-cancel"), 1, 65536, 64 * MiB);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned char buf[65536];
    for (int i = 0; i < 4; i++)
        assert_int_equal(dsc_pread(f, buf, sizeof buf, (uint64_t)i * sizeof buf),
                         (ssize_t)sizeof buf);
    dsc_close(f);
    dsc_stats s = stats_of(ctx);
    assert_true(s.readahead_chunks > 0);
    assert_true(s.prefetch_dropped > 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    assert_int_equal(dsc_prefetch_url(ctx, x->url), 0);
    dsc_ctx_close(ctx);          /* with the object's chunks in flight */
}

/* The queue is bounded: beyond it, DSC_EAGAIN, counted, nothing lost. */
static void test_queue_budget(void **state)
{
    (void)state;
    const fixture *x = fix("sixty-four-mib");
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-budget"), 1, 10, 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    assert_int_equal(dsc_prefetch(f, 0, 0), DSC_EAGAIN);
    dsc_stats s = stats_of(ctx);
    assert_true(s.prefetch_dropped >= 50);
    assert_true(s.prefetch_queued <= 11);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    read_verify(ctx, x, 8 * MiB);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

static void test_prefetch_errors(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-err"), 2, 65536, 0);
    char url[256];
    snprintf(url, sizeof url, "s3://%s/no/such/object", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_prefetch_url(ctx, url), 0);
    assert_int_equal(dsc_prefetch_url(ctx, fix("one-byte")->url), 0);
    assert_int_equal(dsc_prefetch_url(ctx, "s3:/bad"), DSC_EURL);
    assert_int_equal(dsc_prefetch_url(ctx, "s3://bucket-only/"), DSC_EURL);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.prefetch_errors, 1);
    assert_int_equal(s.prefetch_done, 1);       /* one GET for one-byte */
    dsc_ctx_close(ctx);

    ctx = itest_ctx();                          /* no cache */
    assert_int_equal(dsc_prefetch_url(ctx, fix("one-byte")->url), DSC_ENOCACHE);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, fix("one-byte")->url, &f), 0);
    assert_int_equal(dsc_prefetch(f, 0, 0), DSC_ENOCACHE);
    assert_int_equal(dsc_warm(f, 0, 0), DSC_ENOCACHE);
    dsc_plan *p;
    dsc_plan_item it = { fix("one-byte")->url, 0, 0 };
    assert_int_equal(dsc_plan_start(ctx, &it, 1, &p), DSC_ENOCACHE);
    assert_int_equal(dsc_prefetch_wait(ctx, 10), 0);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

/* A plan over a shuffled epoch: fetched ahead in order, so nearly every
 * read is a hit; its position follows the reader. */
static void test_plan(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-plan"), 4, 65536, 0);
    const fixture *objs[48];
    epoch_urls(objs);
    int order[48];
    for (int i = 0; i < 48; i++)
        order[i] = i;
    unsigned seed = 11;
    for (int i = 47; i > 0; i--) {
        int j = rand_r(&seed) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    dsc_plan_item items[48];
    for (int i = 0; i < 48; i++)
        items[i] = (dsc_plan_item){ objs[order[i]]->url, 0, 0 };
    dsc_plan_item bad[3] = { items[0], items[1], { "nope://x", 0, 0 } };
    dsc_plan *p;
    assert_int_equal(dsc_plan_start(ctx, bad, 3, &p), DSC_EURL);
    assert_non_null(strstr(dsc_errmsg(), "plan item 2"));
    assert_int_equal(dsc_plan_start(ctx, items, 48, &p), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);  /* all fit the window */
    for (int i = 0; i < 48; i++) {
        read_verify(ctx, objs[order[i]], 65536);
        assert_int_equal(dsc_plan_position(p), (size_t)i);
    }
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.hits, 48);
    dsc_plan_stop(p);
    dsc_plan_stop(NULL);
    dsc_ctx_close(ctx);
}

/* A small window: the plan stays at most that far ahead, yet the reader,
 * which consumes slower than the fetchers, still mostly hits. */
static void test_plan_window(void **state)
{
    (void)state;
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = fresh_dir("pf-window");
    cfg.chunk_size = 65536;
    cfg.plan_window = 4 * 65536;
    cfg.readahead_max = 0;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    const fixture *objs[48];
    epoch_urls(objs);
    dsc_plan_item items[48];
    for (int i = 0; i < 48; i++)
        items[i] = (dsc_plan_item){ objs[i]->url, 0, 0 };
    dsc_plan *p;
    assert_int_equal(dsc_plan_start(ctx, items, 48, &p), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats s = stats_of(ctx);
    /* Nothing read yet: only the window's worth was fetched. */
    assert_true(s.prefetch_done >= 4 && s.prefetch_done <= 6);
    for (int i = 0; i < 48; i++) {
        read_verify(ctx, objs[i], 65536);
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);    /* the "training step" */
    }
    s = stats_of(ctx);
    printf("    plan with a 4-item window: %llu hits, %llu misses of 48\n",
           (unsigned long long)s.hits, (unsigned long long)s.misses);
    assert_true(s.hits >= 40);
    dsc_plan_stop(p);
    dsc_ctx_close(ctx);
}

/* A read that arrives while its chunks are being prefetched joins those
 * fetches: s3rver sees every chunk exactly once. */
static void test_read_joins_prefetch(void **state)
{
    (void)state;
    dsc_ctx *ctx = pf_ctx(fresh_dir("pf-join"), 4, 65536, 0);
    const fixture *x = fix("flight/obj-4");
    assert_int_equal(dsc_prefetch_url(ctx, x->url), 0);
    read_verify(ctx, x, x->size);          /* at once, one big read */
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    assert_int_equal(server_gets("flight/obj-4"), 4);
    dsc_ctx_close(ctx);
}

/* Fetchers are threads: a child after fork() gets a pool of its own. */
static void test_prefetch_after_fork(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    /* TSan cannot follow a child that starts threads after a fork of a
     * threaded parent; the normal and ASan runs cover this test. */
    skip();
#endif
    const char *dir = fresh_dir("pf-fork");
    dsc_ctx *ctx = pf_ctx(dir, 2, 65536, 0);
    const fixture *x = fix("five-mib-plus-one");
    assert_int_equal(dsc_prefetch_url(ctx, fix("one-byte")->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = dsc_prefetch_url(ctx, x->url) == 0 &&
                 dsc_prefetch_wait(ctx, 30000) == 0;
        dsc_stats st;
        ok = ok && dsc_stats_get(ctx, &st, sizeof st) == 0 &&
             st.prefetch_done == 6 && st.prefetch_errors == 0;
        dsc_ctx_close(ctx);
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    dsc_stats before = stats_of(ctx);
    read_verify(ctx, x, MiB);                /* the child cached it */
    assert_int_equal(stats_of(ctx).misses, before.misses);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 128);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_url_then_read),
        cmocka_unit_test(test_prefetch_urls_bulk),
        cmocka_unit_test(test_prefetch_range_and_warm),
        cmocka_unit_test(test_parallel_big_read),
        cmocka_unit_test(test_readahead),
        cmocka_unit_test(test_cancel_on_close),
        cmocka_unit_test(test_queue_budget),
        cmocka_unit_test(test_prefetch_errors),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_window),
        cmocka_unit_test(test_read_joins_prefetch),
        cmocka_unit_test(test_prefetch_after_fork),
    };
    return cmocka_run_group_tests_name("prefetch", tests, NULL, NULL);
}
