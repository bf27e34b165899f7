/* Cold-fetch benchmarks of libdsc (the "Prefetch" issue). One measurement
 * per process, so ru_maxrss is that measurement's peak; bench/run.sh runs
 * each several times, interleaved with the baselines of
 * bench/fetch_baselines.py, and prints medians and ratios.
 *
 *   bench_fetch big   ENDPOINT URL CACHE_DIR [opts]
 *       one object, cold: fresh CACHE_DIR, then dsc_warm(f, 0, 0)
 *       (--mode pread: one dsc_pread of the whole object into memory)
 *   bench_fetch many  ENDPOINT URL_PREFIX COUNT CACHE_DIR [opts]
 *       COUNT objects URL_PREFIX%04d, cold: dsc_prefetch_url for all, then
 *       dsc_prefetch_wait (--mode list: dsc_list the prefix first, whose
 *       sizes and ETags spare the HEADs, as dsc-prefetch does for a prefix;
 *       --mode open: --jobs threads each dsc_open + dsc_warm, as
 *       dsc-prefetch -j does; --mode premeta: HEAD every object before
 *       the timing, to see what prefetch_url costs without HEADs)
 *   bench_fetch epoch ENDPOINT URL_PREFIX COUNT CACHE_DIR [opts]
 *       a shuffled epoch, each sample read whole with dsc_open + dsc_pread
 *       and followed by a simulated training step (--step-us of sleep):
 *       first cold with the order handed over by dsc_plan_start, then the
 *       same loop again from the now warm cache (new context).
 *
 * Options: --threads N (prefetch_threads), --chunk BYTES (chunk_size),
 * --conns N (max_connections), --mode M, --jobs N, --step-us N, --seed N,
 * --window BYTES (plan_window), --keep (do not delete CACHE_DIR after).
 * Credentials and region come from the environment (AWS_*).
 * Output: one line of key=value pairs on stdout (secs: the timed part;
 * maxrss_kb: the process's peak RSS at its end; fs: the cache's file
 * system; the context's S3 request counters); errors on stderr, exit 1.
 * --verify DIR (a local copy laid out as DIR/bucket/key) checks, after the
 * timing, that the cache holds exactly those bytes (many: that every
 * object then reads back from the cache without a request). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "dsc.h"

typedef struct opts {
    int threads, conns, jobs, keep;
    uint32_t chunk;
    long step_us;
    unsigned seed;
    uint64_t window;
    const char *mode, *verify;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_fetch: %s: %s\n", what, dsc_errmsg());
    exit(1);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

static dsc_ctx *open_ctx(const char *endpoint, const char *cache,
                         const opts *o)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = endpoint;
    cfg.cache_dir = cache;
    cfg.cache_size = 8ull << 30;
    cfg.meta_ttl_ms = 3600 * 1000;   /* the warm epoch must not HEAD */
    if (o->threads >= 0)
        cfg.prefetch_threads = o->threads;
    if (o->chunk)
        cfg.chunk_size = o->chunk;
    if (o->conns > 0)
        cfg.max_connections = o->conns;
    if (o->window)
        cfg.plan_window = o->window;
    dsc_ctx *ctx;
    if (dsc_ctx_open(&cfg, &ctx))
        die("dsc_ctx_open");
    return ctx;
}

static void fresh_dir(const char *dir)
{
    rm_rf(dir);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "bench_fetch: mkdir %s: %s\n", dir, strerror(errno));
        exit(1);
    }
}

/* "s3://bucket/key" -> "DIR/bucket/key" */
static void local_path(const char *dir, const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, url + 5);
}

static void verify_bytes(const opts *o, const char *url, const void *buf,
                         size_t len, uint64_t off)
{
    if (!o->verify)
        return;
    char path[4096];
    local_path(o->verify, url, path, sizeof path);
    int fd = open(path, O_RDONLY);
    char *want = malloc(len ? len : 1);
    ssize_t n = fd >= 0 ? pread(fd, want, len, (off_t)off) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)len || memcmp(want, buf, len)) {
        fprintf(stderr, "bench_fetch: %s: bytes differ from %s\n", url, path);
        exit(1);
    }
    free(want);
}

/* The file system the cache is on: it costs a file per chunk. */
static const char *fs_name(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf))
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0x01021994UL: return "tmpfs";
    case 0xEF53UL: return "ext4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    default: return "other";
    }
}

static void print_stats(dsc_ctx *ctx)
{
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    printf(" fs=%s", fs_name(dsc_cache_dir(ctx)));
    printf(" gets=%" PRIu64 " heads=%" PRIu64 " lists=%" PRIu64
           " retries=%" PRIu64 " s3_bytes=%" PRIu64 " pf_errors=%" PRIu64
           " cache_errors=%" PRIu64, st.s3_gets, st.s3_heads, st.s3_lists,
           st.s3_retries, st.bytes_from_s3, st.prefetch_errors,
           st.cache_errors);
}

/* ---- one big object ---- */

static int cmd_big(const char *ep, const char *url, const char *cache,
                   const opts *o)
{
    fresh_dir(cache);
    dsc_ctx *ctx = open_ctx(ep, cache, o);
    double t0 = now_s();
    dsc_file *f;
    if (dsc_open(ctx, url, &f))
        die(url);
    uint64_t size = (uint64_t)dsc_size(f);
    char *buf = NULL;
    if (strcmp(o->mode, "pread") == 0) {
        buf = malloc(size);
        if (!buf || dsc_pread(f, buf, size, 0) != (ssize_t)size)
            die("dsc_pread");
    } else if (dsc_warm(f, 0, 0) < 0) {
        die("dsc_warm");
    }
    double secs = now_s() - t0;
    printf("secs=%.4f bytes=%" PRIu64 " maxrss_kb=%ld", secs, size, maxrss_kb());
    print_stats(ctx);
    printf("\n");
    if (o->verify) {
        /* Check what the cache now holds (outside the timing). */
        if (!buf)
            buf = malloc(size);
        if (!buf || dsc_pread(f, buf, size, 0) != (ssize_t)size)
            die("dsc_pread (verify)");
        verify_bytes(o, url, buf, size, 0);
    }
    free(buf);
    dsc_close(f);
    dsc_ctx_close(ctx);
    if (!o->keep)
        rm_rf(cache);
    return 0;
}

/* ---- many small objects ---- */

static char **make_urls(const char *prefix, int n)
{
    char **v = calloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(prefix) + 16;
        v[i] = malloc(len);
        snprintf(v[i], len, "%s%04d", prefix, i);
    }
    return v;
}

typedef struct open_job {
    dsc_ctx *ctx;
    char **urls;
    int n, next;
    pthread_mutex_t mu;
    int failed;
} open_job;

static void *open_worker(void *arg)
{
    open_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->next < j->n ? j->next++ : -1;
        pthread_mutex_unlock(&j->mu);
        if (i < 0)
            return NULL;
        dsc_file *f;
        if (dsc_open(j->ctx, j->urls[i], &f) || dsc_warm(f, 0, 0) < 0) {
            fprintf(stderr, "bench_fetch: %s: %s\n", j->urls[i], dsc_errmsg());
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        }
        dsc_close(f);
    }
}

/* Read every object back from the cache alone: all must be hits. */
static void check_all_cached(dsc_ctx *ctx, char **urls, int n, const opts *o)
{
    dsc_stats a, b;
    dsc_stats_get(ctx, &a, sizeof a);
    char *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        dsc_file *f;
        if (dsc_open(ctx, urls[i], &f))
            die(urls[i]);
        size_t size = (size_t)dsc_size(f);
        if (size > cap) {
            free(buf);
            buf = malloc(cap = size);
        }
        if (dsc_pread(f, buf, size, 0) != (ssize_t)size)
            die(urls[i]);
        verify_bytes(o, urls[i], buf, size, 0);
        dsc_close(f);
    }
    free(buf);
    dsc_stats_get(ctx, &b, sizeof b);
    if (b.s3_gets != a.s3_gets || b.s3_heads != a.s3_heads) {
        fprintf(stderr, "bench_fetch: after the prefetch, reading back went "
                "to S3 (%" PRIu64 " GETs, %" PRIu64 " HEADs)\n",
                b.s3_gets - a.s3_gets, b.s3_heads - a.s3_heads);
        exit(1);
    }
}

static int cmd_many(const char *ep, const char *prefix, int n,
                    const char *cache, const opts *o)
{
    fresh_dir(cache);
    dsc_ctx *ctx = open_ctx(ep, cache, o);
    char **urls = make_urls(prefix, n);
    if (strcmp(o->mode, "premeta") == 0) {
        /* Diagnostic: sizes and ETags known beforehand (HEADs outside the
         * timing), chunks cold: what prefetch_url costs without HEADs. */
        for (int i = 0; i < n; i++) {
            dsc_file *f;
            if (dsc_open(ctx, urls[i], &f))
                die(urls[i]);
            dsc_close(f);
        }
        dsc_ctx_close(ctx);
        ctx = open_ctx(ep, cache, o);
    }
    double t0 = now_s();
    if (strcmp(o->mode, "open") == 0) {
        open_job j = { .ctx = ctx, .urls = urls, .n = n };
        pthread_mutex_init(&j.mu, NULL);
        int jobs = o->jobs > 0 ? o->jobs : 16;
        pthread_t *th = calloc((size_t)jobs, sizeof *th);
        for (int i = 0; i < jobs; i++)
            pthread_create(&th[i], NULL, open_worker, &j);
        for (int i = 0; i < jobs; i++)
            pthread_join(th[i], NULL);
        free(th);
        if (j.failed)
            exit(1);
    } else {
        if (strcmp(o->mode, "list") == 0) {
            /* dsc-prefetch style: list the prefix first; the listing's
             * sizes and ETags spare the HEAD of each object. */
            int64_t listed = dsc_list(ctx, prefix, NULL, NULL);
            if (listed < 0)
                die("dsc_list");
            if (listed != n) {
                fprintf(stderr, "bench_fetch: %s lists %lld objects, not %d\n",
                        prefix, (long long)listed, n);
                exit(1);
            }
        }
        for (int i = 0; i < n; i++)
            if (dsc_prefetch_url(ctx, urls[i]))
                die(urls[i]);
        if (dsc_prefetch_wait(ctx, -1))
            die("dsc_prefetch_wait");
    }
    double secs = now_s() - t0;
    long rss = maxrss_kb();
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    if (st.prefetch_errors) {
        fprintf(stderr, "bench_fetch: %" PRIu64 " prefetch errors\n",
                st.prefetch_errors);
        exit(1);
    }
    printf("secs=%.4f objects=%d maxrss_kb=%ld", secs, n, rss);
    print_stats(ctx);
    printf("\n");
    if (o->verify)
        check_all_cached(ctx, urls, n, o);
    dsc_ctx_close(ctx);
    for (int i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    if (!o->keep)
        rm_rf(cache);
    return 0;
}

/* ---- plan-driven epoch vs warm epoch ---- */

static void step(long us)
{
    if (us <= 0)
        return;
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* The dataloader loop: read each sample whole, then "train" on it.
 * *read_secs: time spent in libdsc (open + read), i.e. waiting for data. */
static double epoch(dsc_ctx *ctx, char **urls, const int *order, int n,
                    const opts *o, uint64_t *bytes, double *read_secs)
{
    char *buf = NULL;
    size_t cap = 0;
    *bytes = 0;
    *read_secs = 0;
    double t0 = now_s();
    for (int k = 0; k < n; k++) {
        const char *url = urls[order[k]];
        double r0 = now_s();
        dsc_file *f;
        if (dsc_open(ctx, url, &f))
            die(url);
        size_t size = (size_t)dsc_size(f);
        if (size > cap) {
            free(buf);
            buf = malloc(cap = size);
        }
        if (dsc_pread(f, buf, size, 0) != (ssize_t)size)
            die(url);
        dsc_close(f);
        *read_secs += now_s() - r0;
        *bytes += size;
        step(o->step_us);
    }
    double secs = now_s() - t0;
    free(buf);
    return secs;
}

static int cmd_epoch(const char *ep, const char *prefix, int n,
                     const char *cache, const opts *o)
{
    fresh_dir(cache);
    char **urls = make_urls(prefix, n);
    int *order = malloc((size_t)n * sizeof *order);
    unsigned seed = o->seed;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rand_r(&seed) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    dsc_plan_item *items = calloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++)
        items[i] = (dsc_plan_item){ urls[order[i]], 0, 0 };

    /* Cold, with the plan: the plan is started inside the timing. */
    dsc_ctx *ctx = open_ctx(ep, cache, o);
    uint64_t bytes;
    double cold_read, warm_read;
    double t0 = now_s();
    dsc_plan *plan;
    if (dsc_plan_start(ctx, items, (size_t)n, &plan))
        die("dsc_plan_start");
    epoch(ctx, urls, order, n, o, &bytes, &cold_read);
    double cold = now_s() - t0;
    dsc_stats sc;
    dsc_stats_get(ctx, &sc, sizeof sc);
    dsc_plan_stop(plan);
    dsc_ctx_close(ctx);

    /* Warm: same loop, same order, same steps; a new context. */
    ctx = open_ctx(ep, cache, o);
    uint64_t wbytes;
    double warm = epoch(ctx, urls, order, n, o, &wbytes, &warm_read);
    dsc_stats sw;
    dsc_stats_get(ctx, &sw, sizeof sw);
    dsc_ctx_close(ctx);
    if (wbytes != bytes || sw.s3_gets || sw.s3_heads) {
        fprintf(stderr, "bench_fetch: warm epoch was not warm (%" PRIu64
                " GETs, %" PRIu64 " HEADs)\n", sw.s3_gets, sw.s3_heads);
        exit(1);
    }
    double steps = (double)n * (double)o->step_us / 1e6;
    printf("plan_secs=%.4f warm_secs=%.4f plan_read_secs=%.4f "
           "warm_read_secs=%.4f steps_secs=%.4f step_us=%ld objects=%d bytes=%"
           PRIu64 " cold_hits=%" PRIu64 " cold_misses=%" PRIu64
           " gets=%" PRIu64 " heads=%" PRIu64 " pf_errors=%" PRIu64
           " maxrss_kb=%ld\n",
           cold, warm, cold_read, warm_read, steps, o->step_us, n, bytes, sc.hits, sc.misses, sc.s3_gets,
           sc.s3_heads, sc.prefetch_errors, maxrss_kb());
    for (int i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    free(order);
    free(items);
    if (!o->keep)
        rm_rf(cache);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_fetch big   ENDPOINT URL CACHE_DIR [opts]\n"
            "       bench_fetch many  ENDPOINT URL_PREFIX COUNT CACHE_DIR [opts]\n"
            "       bench_fetch epoch ENDPOINT URL_PREFIX COUNT CACHE_DIR [opts]\n"
            "opts: --threads N --chunk BYTES --conns N --mode M --jobs N\n"
            "      --step-us N --seed N --window BYTES --verify DIR --keep\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = { .threads = -1, .mode = "", .seed = 7 };
    char *pos[8];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--keep"))
            o.keep = 1;
        else if (!strcmp(a, "--threads") && more)
            o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--chunk") && more)
            o.chunk = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(a, "--conns") && more)
            o.conns = atoi(argv[++i]);
        else if (!strcmp(a, "--jobs") && more)
            o.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--mode") && more)
            o.mode = argv[++i];
        else if (!strcmp(a, "--step-us") && more)
            o.step_us = atol(argv[++i]);
        else if (!strcmp(a, "--seed") && more)
            o.seed = (unsigned)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(a, "--window") && more)
            o.window = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--verify") && more)
            o.verify = argv[++i];
        else if (a[0] == '-' && a[1] == '-')
            usage();
        else if (npos < 8)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos == 4 && !strcmp(pos[0], "big"))
        return cmd_big(pos[1], pos[2], pos[3], &o);
    if (npos == 5 && !strcmp(pos[0], "many"))
        return cmd_many(pos[1], pos[2], atoi(pos[3]), pos[4], &o);
    if (npos == 5 && !strcmp(pos[0], "epoch"))
        return cmd_epoch(pos[1], pos[2], atoi(pos[3]), pos[4], &o);
    usage();
    return 2;
}
