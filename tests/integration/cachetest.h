/* Helpers for node-cache tests: contexts on a given cache directory, a
 * look at the files in it, and GETs counted from s3rver's own log. */
#ifndef DSC_CACHETEST_H
#define DSC_CACHETEST_H

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "itest.h"

typedef struct cache_opts {
    uint64_t cap;
    uint32_t chunk;
    int policy;
    long ttl_ms;
    int verify;                    /* DSC_VERIFY_* */
} cache_opts;

static inline dsc_ctx *cache_ctx(const char *dir, cache_opts o)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = dir;
    cfg.cache_size = o.cap ? o.cap : (uint64_t)1 << 30;
    cfg.chunk_size = o.chunk ? o.chunk : 1u << 20;
    cfg.cache_policy = o.policy;
    cfg.meta_ttl_ms = o.ttl_ms;
    cfg.cache_verify = o.verify;
    /* Counted hits and misses here are the reader's own: no readahead
     * fetching behind its back (test_prefetch covers that). */
    cfg.readahead_max = 0;
    dsc_ctx *ctx = NULL;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc)
        fail_msg("dsc_ctx_open: %s: %s", dsc_strerror(rc), dsc_errmsg());
    return ctx;
}

/* Milliseconds on CLOCK_MONOTONIC. */
static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new empty directory under the test run's state folder. */
static inline char *fresh_dir(const char *tag)
{
    static char paths[64][512];
    static int n;
    char *p = paths[n++ % 64];
    snprintf(p, 512, "%s/%s-XXXXXX", itest_env("DSC_TEST_STATE"), tag);
    assert_non_null(mkdtemp(p));
    return p;
}

typedef void (*file_fn)(const char *path, off_t size, void *arg);

/* Call fn for every chunk file under dir/data. Returns their count. */
static inline int walk_chunks(const char *dir, file_fn fn, void *arg)
{
    char top[600];
    snprintf(top, sizeof top, "%s/data", dir);
    DIR *d = opendir(top);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[900];
        snprintf(sub, sizeof sub, "%s/%s", top, e->d_name);
        DIR *d2 = opendir(sub);
        struct dirent *f;
        while (d2 && (f = readdir(d2))) {
            if (f->d_name[0] == '.')
                continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                n++;
                if (fn)
                    fn(path, sb.st_size, arg);
            }
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
    return n;
}

static inline void add_size(const char *path, off_t size, void *arg)
{
    (void)path;
    *(uint64_t *)arg += (uint64_t)size;
}

/* Ranged GETs s3rver answered for a key (its log has one line a
 * response; the start of the path is cut, the key's end is not). */
/* s3rver log lines holding a (and b, unless NULL). */
static inline int server_log_lines_now(const char *a, const char *b)
{
    FILE *f = fopen(itest_env("DSC_TEST_S3RVER_LOG"), "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, a) && (!b || strstr(line, b)))
            n++;
    fclose(f);
    return n;
}

/* s3rver logs a request after it has answered it, through a pipe: the last
 * line can land after our read returned.  Count once the log has held still
 * for 300 ms (5 s at most), so a late line is counted and an extra request
 * still shows. */
static inline int server_log_lines(const char *a, const char *b)
{
    int n = server_log_lines_now(a, b), still = 0;
    for (int waited = 0; still < 6 && waited < 100; waited++) {
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
        int m = server_log_lines_now(a, b);
        still = m == n ? still + 1 : 0;
        n = m;
    }
    return n;
}

/* GETs s3rver answered for key (ranged: 206; s3rver's log has no method). */
static inline int server_gets(const char *key)
{
    char needle[600];
    snprintf(needle, sizeof needle, "%s 206 ", key);
    return server_log_lines(needle, NULL);
}

/* Read a fixture whole in `step`-byte preads and compare every byte. */
static inline void read_verify(dsc_ctx *ctx, const fixture *x, size_t step)
{
    unsigned char *want = itest_slurp(x->path, x->size);
    unsigned char *got = malloc(step);
    dsc_file *f;
    int rc = dsc_open(ctx, x->url, &f);
    if (rc)
        fail_msg("open %s: %s", x->url, dsc_errmsg());
    for (uint64_t off = 0; off < x->size; off += step) {
        ssize_t n = dsc_pread(f, got, step, off);
        size_t expect = x->size - off < step ? (size_t)(x->size - off) : step;
        if (n < 0)
            fail_msg("pread %s@%llu: %s", x->url, (unsigned long long)off,
                     dsc_errmsg());
        assert_int_equal((size_t)n, expect);
        assert_memory_equal(got, want + off, expect);
    }
    dsc_close(f);
    free(got);
    free(want);
}

static inline dsc_stats stats_of(dsc_ctx *ctx)
{
    dsc_stats st;
    assert_int_equal(dsc_stats_get(ctx, &st, sizeof st), 0);
    return st;
}

#endif
