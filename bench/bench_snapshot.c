/* bench_snapshot: what a snapshot of N objects costs, with no server.
 *
 *   bench_snapshot [N...]        (default: 1000000 10000000)
 *
 * For each N it writes a synthetic snapshot file of N objects straight
 * from docs/SNAPSHOT.md (keys "train/shard-<9 digits>.tar", S3 MD5
 * ETags; this writer is independent of the library's, so the bench also
 * checks that the document is enough to write the format), then times
 * dsc_snapshot_load (the file is in the page cache: it was just written),
 * dsc_snapshot_save, 10^6 dsc_snapshot_find, and 10^5 dsc_open of
 * snapshot objects (a context with no cache on an endpoint nobody serves:
 * a pinned open makes no request). Prints bytes per object and seconds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "dsc.h"

#define ORIGIN "http://127.0.0.1:9/auto"
#define BUCKET "bench"
#define PREFIX "train/"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

/* The file of docs/SNAPSHOT.md for n objects; returns its size. */
static size_t write_synthetic(const char *path, uint64_t n)
{
    const size_t klen = strlen(PREFIX "shard-000000000.tar");
    size_t ol = strlen(ORIGIN), bl = strlen(BUCKET), pl = strlen(PREFIX);
    size_t strs = (ol + bl + pl + 3 + 7) & ~(size_t)7;
    size_t blob = n * (klen + 1);
    size_t total = 64 + strs + n * 56 + blob + 8;
    unsigned char *img = calloc(1, total);
    if (!img) {
        fprintf(stderr, "bench_snapshot: %zu bytes: out of memory\n", total);
        exit(1);
    }
    memcpy(img, "DSCSNAP\0", 8);
    le(img + 8, 1, 4);
    le(img + 16, 1700000000000ULL, 8);
    le(img + 24, n, 8);
    le(img + 32, blob, 8);
    le(img + 40, total, 8);
    le(img + 48, 56, 4);
    le(img + 52, ol, 2);
    le(img + 54, bl, 2);
    le(img + 56, pl, 2);
    memcpy(img + 64, ORIGIN, ol);
    memcpy(img + 64 + ol + 1, BUCKET, bl);
    memcpy(img + 64 + ol + bl + 2, PREFIX, pl);
    unsigned char *rec = img + 64 + strs;
    char *keys = (char *)rec + n * 56;
    for (uint64_t i = 0; i < n; i++, rec += 56) {
        char *k = keys + i * (klen + 1), kb[64];
        snprintf(kb, sizeof kb, PREFIX "shard-%09" PRIu64 ".tar", i);
        memcpy(k, kb, klen);
        le(rec, 100000 + i % 1000, 8);             /* size */
        le(rec + 8, i * (klen + 1), 8);            /* key offset */
        le(rec + 16, klen, 4);
        rec[20] = 1;                               /* plain MD5 ETag */
        uint64_t h = XXH3_64bits(k, klen);
        le(rec + 24, h, 8);
        le(rec + 32, ~h, 8);
    }
    le(img + total - 8, XXH3_64bits(img, total - 8), 8);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(img, 1, total, f) != total || fclose(f)) {
        perror(path);
        exit(1);
    }
    free(img);
    return total;
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_snapshot: %s: %s\n", what, dsc_errmsg());
    exit(1);
}

static void run(uint64_t n, const char *dir)
{
    char path[600], copy[620];
    snprintf(path, sizeof path, "%s/bench-%" PRIu64 ".dsnap", dir, n);
    snprintf(copy, sizeof copy, "%s.saved", path);
    size_t len = write_synthetic(path, n);

    double t0 = now_s();
    dsc_snapshot *s;
    if (dsc_snapshot_load(NULL, path, &s))
        fail("load");
    double t_load = now_s() - t0;
    t0 = now_s();
    if (dsc_snapshot_save(s, copy))
        fail("save");
    double t_save = now_s() - t0;

    enum { FINDS = 1000000, OPENS = 100000 };
    char key[64];
    unsigned seed = 7;
    t0 = now_s();
    for (int i = 0; i < FINDS; i++) {
        snprintf(key, sizeof key, PREFIX "shard-%09" PRIu64 ".tar",
                 (uint64_t)rand_r(&seed) % n);
        if (dsc_snapshot_find(s, key) < 0)
            fail("find");
    }
    double t_find = now_s() - t0;

    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = "http://127.0.0.1:9";
    cfg.cache_dir = "";
    cfg.snapshot = "";
    dsc_ctx *ctx;
    if (dsc_ctx_open(&cfg, &ctx) || dsc_ctx_use_snapshot(ctx, s))
        fail("context");
    char url[128];
    t0 = now_s();
    for (int i = 0; i < OPENS; i++) {
        snprintf(url, sizeof url, "s3://" BUCKET "/" PREFIX "shard-%09" PRIu64
                 ".tar", (uint64_t)rand_r(&seed) % n);
        dsc_file *f;
        if (dsc_open(ctx, url, &f))
            fail("open");
        dsc_close(f);
    }
    double t_open = now_s() - t0;
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    dsc_ctx_close(ctx);
    dsc_snapshot_free(s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%9" PRIu64 " objects: file %.1f MiB, %.1f bytes/object (key %zu); "
           "load %.3f s, save %.3f s, find %.2f us, open %.2f us "
           "(requests %" PRIu64 "); peak RSS %ld MiB\n", n,
           (double)len / (1 << 20), (double)len / (double)n,
           strlen(PREFIX "shard-000000000.tar"), t_load, t_save,
           t_find / FINDS * 1e6, t_open / OPENS * 1e6,
           st.s3_heads + st.s3_gets + st.s3_lists, ru.ru_maxrss / 1024);
    fflush(stdout);
    unlink(path);
    unlink(copy);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (argc < 2) {
        run(1000000, dir);
        run(10000000, dir);
    }
    for (int i = 1; i < argc; i++) {
        char *end;
        uint64_t n = strtoull(argv[i], &end, 10);
        if (*end || n == 0) {
            fprintf(stderr, "usage: bench_snapshot [N...]\n");
            return 2;
        }
        run(n, dir);
    }
    return 0;
}
