/* Node-cache benchmarks, each against a baseline measured in the same run:
 *   1. hot-cache reads vs raw pread(2) of the same bytes from a local file
 *      (1 MiB sequential, 4 KiB random), medians of several runs;
 *   2. hit ratio of shuffled epochs per eviction policy, cache smaller
 *      than the dataset, against the ideal cache/dataset.
 * usage: bench_cache LOCAL_FILE s3://bucket/same-object EPOCH_PREFIX CACHE_DIR */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dsc.h"

#define RUNS 7
#define RANDOM_READS 200000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

typedef ssize_t (*read_fn)(void *h, void *buf, size_t len, uint64_t off);

static ssize_t raw_read(void *h, void *buf, size_t len, uint64_t off)
{
    return pread(*(int *)h, buf, len, (off_t)off);
}

static ssize_t dsc_read_fn(void *h, void *buf, size_t len, uint64_t off)
{
    return dsc_pread(h, buf, len, off);
}

static double sequential(read_fn fn, void *h, uint64_t size, char *buf)
{
    double t0 = now_s();
    for (uint64_t off = 0; off < size; off += 1 << 20)
        if (fn(h, buf, 1 << 20, off) <= 0)
            return -1;
    return size / (now_s() - t0);
}

static double random4k(read_fn fn, void *h, const uint64_t *offs, char *buf)
{
    double t0 = now_s();
    for (int i = 0; i < RANDOM_READS; i++)
        if (fn(h, buf, 4096, offs[i]) != 4096)
            return -1;
    return RANDOM_READS / (now_s() - t0);
}

static dsc_ctx *open_ctx(const char *cache_dir, uint64_t cap, uint32_t chunk,
                         int policy)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.cache_dir = cache_dir;
    cfg.cache_size = cap;
    cfg.chunk_size = chunk;
    cfg.cache_policy = policy;
    dsc_ctx *ctx;
    if (dsc_ctx_open(&cfg, &ctx)) {
        fprintf(stderr, "ctx: %s\n", dsc_errmsg());
        exit(1);
    }
    return ctx;
}

typedef struct names {
    char **v;
    int n, cap;
} names;

static int collect(void *arg, const dsc_object_info *o)
{
    names *nm = arg;
    if (nm->n == nm->cap) {
        nm->cap = nm->cap ? nm->cap * 2 : 64;
        nm->v = realloc(nm->v, (size_t)nm->cap * sizeof *nm->v);
    }
    nm->v[nm->n++] = strdup(o->url);
    return 0;
}

static double epochs(const names *nm, const char *dir, double fraction,
                     int policy, uint32_t obj_size)
{
    uint64_t cap = (uint64_t)(nm->n * fraction) * obj_size;
    dsc_ctx *ctx = open_ctx(dir, cap, obj_size, policy);
    int *order = malloc((size_t)nm->n * sizeof *order);
    char *buf = malloc(obj_size);
    unsigned seed = 99;
    uint64_t hits = 0, reads = 0;
    for (int e = 0; e < 4; e++) {
        for (int i = 0; i < nm->n; i++)
            order[i] = i;
        for (int i = nm->n - 1; i > 0; i--) {
            int j = rand_r(&seed) % (i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        dsc_stats a, b;
        dsc_stats_get(ctx, &a, sizeof a);
        for (int i = 0; i < nm->n; i++) {
            dsc_file *f;
            if (dsc_open(ctx, nm->v[order[i]], &f) ||
                dsc_pread(f, buf, obj_size, 0) != (ssize_t)obj_size) {
                fprintf(stderr, "read %s: %s\n", nm->v[order[i]], dsc_errmsg());
                exit(1);
            }
            dsc_close(f);
        }
        dsc_stats_get(ctx, &b, sizeof b);
        if (e > 0) {
            hits += b.hits - a.hits;
            reads += (uint64_t)nm->n;
        }
    }
    dsc_ctx_close(ctx);
    free(order);
    free(buf);
    return (double)hits / (double)reads;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_cache LOCAL_FILE URL EPOCH_PREFIX CACHE_DIR\n");
        return 2;
    }
    const char *local = argv[1], *url = argv[2], *prefix = argv[3], *dir = argv[4];
    char hot_dir[1024], ep_dir[1024];
    snprintf(hot_dir, sizeof hot_dir, "%s/hot", dir);
    int fd = open(local, O_RDONLY);
    if (fd < 0) {
        perror(local);
        return 1;
    }
    uint64_t size = (uint64_t)lseek(fd, 0, SEEK_END);
    dsc_ctx *ctx = open_ctx(hot_dir, 4ull << 30, 4u << 20, DSC_POLICY_LRU);
    dsc_file *f;
    if (dsc_open(ctx, url, &f) || (uint64_t)dsc_size(f) != size) {
        fprintf(stderr, "open %s: %s\n", url, dsc_errmsg());
        return 1;
    }
    char *buf = malloc(1 << 20), *want = malloc(1 << 20);
    /* Fill the cache and warm the page cache for both, checking bytes. */
    for (uint64_t off = 0; off < size; off += 1 << 20) {
        ssize_t a = dsc_pread(f, buf, 1 << 20, off);
        ssize_t b = pread(fd, want, 1 << 20, (off_t)off);
        if (a != b || memcmp(buf, want, (size_t)a)) {
            fprintf(stderr, "bytes differ at %" PRIu64 "\n", off);
            return 1;
        }
    }
    uint64_t *offs = malloc(RANDOM_READS * sizeof *offs);
    unsigned seed = 1;
    for (int i = 0; i < RANDOM_READS; i++)
        offs[i] = ((uint64_t)rand_r(&seed) * 4096) % (size - 4096);
    double seq_raw[RUNS], seq_dsc[RUNS], rnd_raw[RUNS], rnd_dsc[RUNS];
    random4k(dsc_read_fn, f, offs, buf);   /* every chunk opened once */
    for (int r = 0; r < RUNS; r++) {
        /* Alternate so drift in machine load hits both alike. */
        seq_raw[r] = sequential(raw_read, &fd, size, buf);
        seq_dsc[r] = sequential(dsc_read_fn, f, size, buf);
        rnd_raw[r] = random4k(raw_read, &fd, offs, buf);
        rnd_dsc[r] = random4k(dsc_read_fn, f, offs, buf);
    }
    double sr = median(seq_raw, RUNS), sd = median(seq_dsc, RUNS);
    double rr = median(rnd_raw, RUNS), rd = median(rnd_dsc, RUNS);
    printf("hot cache, %.0f MiB object, medians of %d runs:\n", size / 1048576.0, RUNS);
    printf("  1 MiB sequential: raw pread %7.0f MiB/s | dsc_pread %7.0f MiB/s | ratio %.2f (goal >= 0.90)\n",
           sr / 1048576, sd / 1048576, sd / sr);
    printf("  4 KiB random:     raw pread %7.0f k/s    | dsc_pread %7.0f k/s    | ratio %.2f (goal >= 0.70)\n",
           rr / 1000, rd / 1000, rd / rr);
    dsc_close(f);
    dsc_ctx_close(ctx);

    names nm = { 0 };
    ctx = open_ctx(NULL, 1 << 30, 1 << 20, DSC_POLICY_LRU);
    if (dsc_list(ctx, prefix, collect, &nm) <= 0) {
        fprintf(stderr, "list %s: %s\n", prefix, dsc_errmsg());
        return 1;
    }
    dsc_ctx_close(ctx);
    printf("shuffled epochs 2-4 over %d objects of 64 KiB, hit ratio:\n", nm.n);
    printf("  cache/dataset | ideal | minio          | lru\n");
    double fr[] = { 0.25, 0.5, 0.75 };
    for (int i = 0; i < 3; i++) {
        snprintf(ep_dir, sizeof ep_dir, "%s/minio-%d", dir, i);
        double m = epochs(&nm, ep_dir, fr[i], DSC_POLICY_MINIO, 65536);
        snprintf(ep_dir, sizeof ep_dir, "%s/lru-%d", dir, i);
        double l = epochs(&nm, ep_dir, fr[i], DSC_POLICY_LRU, 65536);
        printf("  %13.2f | %.3f | %.3f (%.2fx) | %.3f (%.2fx)\n", fr[i], fr[i],
               m, m / fr[i], l, l / fr[i]);
    }
    return 0;
}
