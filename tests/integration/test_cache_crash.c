/* Crash safety: a busy fill (4 threads, small cap, constant eviction) is
 * killed with SIGKILL at random moments, 50 times. After every kill the
 * cache must open and serve correct bytes; at the end it must be within
 * its cap and hold no debris after dsc_cache_clean. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "cachetest.h"

#define KILLS 50
#define CAP (12u << 20)
#define CHUNK (256u * 1024)

static fixture fx[128];
static int nfx;
static const fixture *objs[2];
static unsigned char *want[2];
static const char *dir;

static dsc_ctx *crash_ctx(void)
{
    return cache_ctx(dir, (cache_opts){ .cap = CAP, .chunk = CHUNK,
                                        .ttl_ms = 60000 });
}

/* Random reads, every byte checked; returns the number of bad reads. */
static int random_reads(dsc_ctx *ctx, unsigned *seed, int count)
{
    static _Thread_local unsigned char buf[1 << 20];
    int bad = 0;
    for (int i = 0; i < count; i++) {
        int which = rand_r(seed) % 2;
        const fixture *x = objs[which];
        uint64_t off = (uint64_t)rand_r(seed) % x->size;
        size_t len = 1 + (size_t)rand_r(seed) % sizeof buf;
        dsc_file *f;
        if (dsc_open(ctx, x->url, &f)) {
            bad++;
            continue;
        }
        ssize_t n = dsc_pread(f, buf, len, off);
        size_t e = x->size - off < len ? (size_t)(x->size - off) : len;
        if (n != (ssize_t)e || memcmp(buf, want[which] + off, e))
            bad++;
        dsc_close(f);
    }
    return bad;
}

static void *filler(void *p)
{
    dsc_ctx *ctx = p;
    unsigned seed = (unsigned)getpid() ^ (unsigned)(uintptr_t)&seed;
    for (;;)
        if (random_reads(ctx, &seed, 1000))
            _exit(42);   /* wrong bytes: the parent sees exit 42 */
    return NULL;
}

static void test_kill9_during_fill(void **state)
{
    (void)state;
    dir = fresh_dir("crash");
    unsigned seed = 12345;
    int killed = 0, finished_bad = 0;
    for (int round = 0; round < KILLS; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dsc_ctx *ctx = crash_ctx();
            pthread_t t[4];
            for (int i = 0; i < 4; i++)
                pthread_create(&t[i], NULL, filler, ctx);
            pthread_join(t[0], NULL);
            _exit(0);
        }
        struct timespec ts = { 0, (long)(20 + rand_r(&seed) % 230) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            killed++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
            finished_bad++;
        /* The survivor's view: opens, serves right bytes, within cap. */
        dsc_ctx *ctx = crash_ctx();
        assert_int_equal(random_reads(ctx, &seed, 8), 0);
        dsc_stats s = stats_of(ctx);
        assert_true(s.cache_bytes <= CAP);
        dsc_ctx_close(ctx);
    }
    assert_int_equal(finished_bad, 0);
    assert_true(killed >= KILLS - 2);

    dsc_ctx *ctx = crash_ctx();
    read_verify(ctx, objs[0], 1 << 20);
    read_verify(ctx, objs[1], 3 << 20);
    int64_t removed = dsc_cache_clean(ctx);
    assert_true(removed >= 0);
    dsc_stats s = stats_of(ctx);
    uint64_t on_disk = 0;
    int files = walk_chunks(dir, add_size, &on_disk);
    printf("    %d kills; index %llu bytes in %llu chunks (cap %u); disk %d "
           "files, %llu bytes after removing %lld stray files; %llu corrupt "
           "chunks dropped\n", killed, (unsigned long long)s.cache_bytes,
           (unsigned long long)s.cache_chunks, CAP, files,
           (unsigned long long)on_disk, (long long)removed,
           (unsigned long long)s.node_corrupt);
    assert_true(s.cache_bytes <= CAP);
    assert_true(on_disk <= CAP);
    assert_int_equal((uint64_t)files, s.cache_chunks);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 128);
    objs[0] = itest_find(fx, nfx, "sixty-four-mib");
    objs[1] = itest_find(fx, nfx, "five-mib-plus-one");
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(objs[i]->path, "rb");
        want[i] = malloc(objs[i]->size);
        if (!f || !want[i] || fread(want[i], 1, objs[i]->size, f) != objs[i]->size)
            return 1;
        fclose(f);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_during_fill),
    };
    return cmocka_run_group_tests_name("cache_crash", tests, NULL, NULL);
}
