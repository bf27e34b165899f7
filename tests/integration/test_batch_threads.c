/* dsc_read_batch as a dataloader worker calls it, 32 objects of 100-200
 * KiB a batch, on a node whose cores are all busy reading:
 *  - a batch of cached objects is read on the caller's thread: a helper
 *    thread for items that take microseconds only competed with the other
 *    workers (a warm epoch ran ~25 % slower with one);
 *  - a batch whose buffers the caller frees and makes again is not faulted
 *    in again each time: glibc gave the freed batch's heap back and every
 *    page of every sample faulted on the next one (~35 a sample);
 *  - a batch that waits on the origin still overlaps its round trips.
 * pthread_create is interposed to count the threads started. */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/resource.h>

#define N_OBJS 32
#define MIN_SIZE (100 * 1024)
#define MAX_SIZE (200 * 1024)
#define PREFIX "batch/obj-"
#include "proxytest.h"

#define LATENCY_MS 100

static unsigned long created;
static int (*real_create)(pthread_t *, const pthread_attr_t *,
                          void *(*)(void *), void *);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real_create(void)
{
    *(void **)&real_create = dlsym(RTLD_NEXT, "pthread_create");
}

/* libdsc's calls resolve here first (the executable's symbol). */
int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg)
{
    pthread_once(&real_once, find_real_create);
    __atomic_fetch_add(&created, 1, __ATOMIC_RELAXED);
    return real_create(t, attr, fn, arg);
}

static unsigned long threads_created(void)
{
    return __atomic_load_n(&created, __ATOMIC_RELAXED);
}

static dsc_ctx *batch_ctx(const char *dir, const char *endpoint)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = endpoint;
    cfg.cache_dir = dir;
    dsc_ctx *ctx = NULL;
    if (dsc_ctx_open(&cfg, &ctx))
        fail_msg("dsc_ctx_open: %s", dsc_errmsg());
    return ctx;
}

typedef struct batch {
    dsc_batch_item items[N_OBJS];
    char urls[N_OBJS][256];
} batch;

/* Buffers made afresh, as a Python worker makes each sample's bytes. */
static void batch_make(batch *b)
{
    for (int i = 0; i < N_OBJS; i++) {
        obj_url(i, b->urls[i], sizeof b->urls[i]);
        b->items[i] = (dsc_batch_item){ .url = b->urls[i], .cap = obj_size(i) };
        b->items[i].buf = malloc(b->items[i].cap);
        assert_non_null(b->items[i].buf);
    }
}

static void batch_check_free(batch *b)
{
    for (int i = 0; i < N_OBJS; i++) {
        const unsigned char *got = b->items[i].buf;
        assert_int_equal(b->items[i].status, 0);
        assert_int_equal(b->items[i].len, obj_size(i));
        for (size_t j = 0; j < obj_size(i); j++)
            if (got[j] != obj_byte(i, j))
                fail_msg("object %d: wrong byte at %zu", i, j);
        free(b->items[i].buf);
    }
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void warm_all(dsc_ctx *ctx, batch *b)
{
    batch_make(b);
    assert_int_equal(dsc_read_batch(ctx, b->items, N_OBJS, 0), 0);
    batch_check_free(b);
}

/* First in the run: the process's malloc has not seen a batch yet. */
static void test_cached_batches_keep_their_heap(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip();                     /* their malloc is not glibc's */
#endif
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        (tunables && strstr(tunables, "malloc")))
        skip();                     /* fixed thresholds: glibc adapts no more */
    dsc_ctx *ctx = batch_ctx(fresh_dir("batch-heap"),
                             itest_env("DSC_TEST_ENDPOINT"));
    batch *b = calloc(1, sizeof *b);
    assert_non_null(b);
    warm_all(ctx, b);
    long faults = 0;
    size_t bytes = 0;
    for (int round = 0; round < 10; round++) {
        batch_make(b);
        long f0 = minor_faults();
        assert_int_equal(dsc_read_batch(ctx, b->items, N_OBJS, 0), 0);
        if (round >= 2) {
            faults += minor_faults() - f0;
            for (int i = 0; i < N_OBJS; i++)
                bytes += b->items[i].len;
        }
        batch_check_free(b);
    }
    double per_item = (double)faults / (8 * N_OBJS);
    print_message("    cached batches: %.1f page faults a sample (%.0f pages)\n",
                  per_item, (double)bytes / (8 * N_OBJS) / 4096);
    if (per_item > 4)
        fail_msg("%.1f page faults a sample: the freed batch went back to "
                 "the system", per_item);
    free(b);
    dsc_ctx_close(ctx);
}

static void test_cached_batch_reads_on_the_callers_thread(void **state)
{
    (void)state;
    dsc_ctx *ctx = batch_ctx(fresh_dir("batch-warm"),
                             itest_env("DSC_TEST_ENDPOINT"));
    batch *b = calloc(1, sizeof *b);
    assert_non_null(b);
    warm_all(ctx, b);
    dsc_stats before = stats_of(ctx);
    unsigned long t0 = threads_created();
    for (int round = 0; round < 20; round++) {
        batch_make(b);
        assert_int_equal(dsc_read_batch(ctx, b->items, N_OBJS, 0), 0);
        batch_check_free(b);
    }
    assert_int_equal(threads_created() - t0, 0);
    assert_int_equal(stats_of(ctx).misses, before.misses);
    free(b);
    dsc_ctx_close(ctx);
}

/* Cold, each GET LATENCY_MS late: the items still wait together. */
static void test_slow_batch_overlaps(void **state)
{
    (void)state;
    proxy px;
    proxy_start(&px, "[{\"fault\": \"latency\", \"latency_ms\": 100}]");
    dsc_ctx *ctx = batch_ctx(fresh_dir("batch-cold"), px.endpoint);
    batch *b = calloc(1, sizeof *b);
    assert_non_null(b);
    batch_make(b);
    unsigned long t0 = threads_created();
    int64_t start = now_ms();
    assert_int_equal(dsc_read_batch(ctx, b->items, N_OBJS, 0), 0);
    int64_t spent = now_ms() - start;
    batch_check_free(b);
    print_message("    cold batch of %d at %d ms each: %lld ms, %lu threads\n",
                  N_OBJS, LATENCY_MS, (long long)spent, threads_created() - t0);
    assert_true(threads_created() - t0 >= 1);
    /* One by one it takes N_OBJS x (metadata + GET) round trips. */
    if (spent > N_OBJS * LATENCY_MS / 2)
        fail_msg("the batch took %lld ms: its round trips did not overlap",
                 (long long)spent);
    free(b);
    dsc_ctx_close(ctx);
    proxy_stop(&px);
}

int main(void)
{
    if (put_objects(N_OBJS))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_batches_keep_their_heap),
        cmocka_unit_test(test_cached_batch_reads_on_the_callers_thread),
        cmocka_unit_test(test_slow_batch_overlaps),
    };
    return cmocka_run_group_tests_name("batch_threads", tests, NULL, NULL);
}
