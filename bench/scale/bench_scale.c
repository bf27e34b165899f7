/* bench_scale: how the node cache behaves as its index grows, no server.
 *
 *   bench_scale                        (N = 10^4 10^5 10^6 10^7)
 *   BENCH_SCALE_MAX=1e5 bench_scale    (stop at 10^5: a quick run)
 *
 * For each N, in a child process (so RSS and its peak are that N's alone,
 * and a failure such as MDB_MAP_FULL costs one row, not the run), on a
 * fresh cache directory under $TMPDIR or /tmp:
 *   - 1,000 real chunks (64 KiB, one per object) stored with
 *     dsc_cache_put_chunk, then N - 1,000 synthetic chunk records inserted
 *     one write transaction each with dsc_index_insert (the insert of the
 *     read path; the cap is huge, so nothing is evicted): fill rate, and
 *     index/data.mdb bytes per chunk record;
 *   - metadata of 10^6 objects (dsc_index_meta_put_many, 10^4 a
 *     transaction): bytes per metadata record;
 *   - hit: dsc_pread of a random 4 KiB slice of a random real chunk, with
 *     fd_cache = 1 so nearly every read takes the whole hit path (index
 *     lookup, open, size and XXH3 check of the 64 KiB file, read). 64 KiB
 *     is the smallest chunk size: the share of the index in a hit is
 *     largest there, so it is the strictest test of the goal;
 *   - lookup: dsc_index_get of random synthetic records among all N (the
 *     index alone, pages spread over the whole tree);
 *   - dsc_open of random objects among the 10^6: metadata from the index
 *     (meta_ttl one day), then from a 10^6-object snapshot;
 *   - dsc_ctx_open on the filled directory (index environment closed
 *     before; the page cache is warm: it was just written);
 *   - VmRSS (anonymous and file-backed: LMDB's map counts as file pages),
 *     and VmHWM.
 * The endpoint is http://127.0.0.1:9 with no retries: a miss, a HEAD or a
 * LIST would fail loudly, and the request counters must stay 0.
 *
 * It links the static library and includes internal headers (synthetic
 * records need dsc_index_insert), which the layer rule forbids in the sources
 * directly in bench/ (tests/check_layers.sh), so it lives in bench/scale/, as test tools that
 * use internals live in tests/tools/. Not part of `make test`. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "dsc.h"
#include "api/node.h"
#include "api/snapfile.h"
#include "cache/cache.h"
#include "cache/index.h"

#define ENDPOINT "http://127.0.0.1:9"
#define ORIGIN   "http://127.0.0.1:9/auto"   /* dsc_s3_origin of ENDPOINT */
#define BUCKET   "bench"
#define PREFIX   "train/"
#define OBJECTS  1000000      /* objects with metadata, and in the snapshot */
#define REAL     1000         /* chunks with a file (objects 0..REAL-1) */
#define CHUNK    65536        /* chunk size = object size: one chunk each */
#define SLICE    4096
#define SAMPLES  30000        /* timed operations per measure */
#define META_TXN 10000        /* metadata records per write transaction */
#define ROUNDS   5            /* hit samples come in rounds: the spread of
                                 their p50s shows the machine's noise */

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

/* p50 and p99 of n samples in seconds, as microseconds (sorts v). */
static void pct(double *v, int n, double *p50, double *p99)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = v[n / 2] * 1e6;
    *p99 = v[(size_t)n * 99 / 100] * 1e6;
}

static void le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static void key_of(uint64_t i, char *out, size_t cap)
{
    snprintf(out, cap, PREFIX "shard-%09" PRIu64 ".tar", i);
}

/* The 16 digest bytes of object i's MD5-like ETag (as bench_snapshot). */
static void digest_of(const char *key, unsigned char d[16])
{
    uint64_t h = XXH3_64bits(key, strlen(key));
    le(d, h, 8);
    le(d + 8, ~h, 8);
}

static void etag_of(const char *key, char out[35])
{
    unsigned char d[16];
    digest_of(key, d);
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
    out[33] = '"';
    out[34] = '\0';
}

/* The bytes of real chunk j: cheap to check from any offset. */
static unsigned char pattern(uint64_t j, uint64_t off)
{
    return (unsigned char)(j * 131 + off / 7);
}

/* Synthetic record i's id: never one of a real chunk (those are
 * XXH3-128 of a different input). */
static void synth_id(uint64_t i, dsc_chunk_id *id)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(&i, sizeof i,
                                                       0x5ca1ab1e));
    memcpy(id->b, c.digest, sizeof id->b);
}

/* A snapshot of objects 0..n-1 (sizes CHUNK, the same ETags as the
 * metadata), made by the library's own encoder. 0 or -1 (reason on
 * stderr). */
static int write_snapshot(const char *path, uint64_t n)
{
    enum { KEY_CAP = 64, ETAG_CAP = 35 };
    int rc = -1;
    FILE *f = NULL;
    dsc_buf img = { 0 };
    char *keys = malloc(n * KEY_CAP), *etags = malloc(n * ETAG_CAP);
    dsc_snap_obj *objs = malloc(n * sizeof *objs);
    if (!keys || !etags || !objs) {
        fprintf(stderr, "bench_scale: snapshot of %" PRIu64 " objects: out of "
                "memory\n", n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        char *k = keys + i * KEY_CAP, *e = etags + i * ETAG_CAP;
        key_of(i, k, KEY_CAP);
        etag_of(k, e);
        objs[i] = (dsc_snap_obj){ k, strlen(k), CHUNK, e, strlen(e), NULL, 0 };
    }
    dsc_snap_head h = { DSC_SNAP_FORMAT, 0, 1700000000000LL, ORIGIN, BUCKET,
                        PREFIX };
    if (dsc_snap_encode(&h, objs, (size_t)n, &img)) {
        fprintf(stderr, "bench_scale: snapshot: %s\n", dsc_errmsg());
        goto done;
    }
    f = fopen(path, "wb");
    if (!f || fwrite(img.data, 1, img.len, f) != img.len) {
        perror(path);
        goto done;
    }
    rc = 0;
done:
    if (f && fclose(f) && rc == 0) {
        perror(path);
        rc = -1;
    }
    dsc_buf_free(&img);
    free(objs);
    free(etags);
    free(keys);
    malloc_trim(0);   /* the RSS figures start from a heap without it */
    return rc;
}

typedef struct mem {
    long rss, anon, file, hwm;    /* KiB, from /proc/self/status */
} mem;

static mem mem_now(void)
{
    mem m = { -1, -1, -1, -1 };
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return m;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &m.rss);
        sscanf(line, "RssAnon: %ld", &m.anon);
        sscanf(line, "RssFile: %ld", &m.file);
        sscanf(line, "VmHWM: %ld", &m.hwm);
    }
    fclose(f);
    return m;
}

static double mib(long kib)
{
    return kib / 1024.0;
}

/* One N's results, sent from its child to the parent through a pipe. */
typedef struct row {
    uint64_t n, filled;           /* asked for, and in the index */
    int ok;                       /* every measure ran */
    int requests;                 /* S3 requests made: must be 0 */
    char err[200];                /* first failure, "" if none */
    double fill_s, chunk_bytes, meta_bytes, ix_mib;
    double hit50, hit99, get50, get99;
    double hit_lo, hit_hi;        /* lowest and highest p50 of a round */
    double om50, om99, os50, os99;  /* dsc_open: metadata, snapshot */
    double ctx_open_ms;
    mem m;                        /* before the snapshot is loaded */
    long hwm_end;
} row;

static void note(row *r, const char *what)
{
    if (!r->err[0])
        snprintf(r->err, sizeof r->err, "%s: %s", what, dsc_errmsg());
}

static void config(dsc_config *cfg, const char *dir)
{
    dsc_config_init(cfg, DSC_CONFIG_VERSION);
    cfg->endpoint = ENDPOINT;
    cfg->anonymous = 1;
    cfg->max_retries = 0;
    cfg->connect_timeout_ms = 200;
    cfg->meta_ttl_ms = 86400000;
    cfg->cache_dir = dir;
    cfg->cache_size = (uint64_t)1 << 50;   /* nothing is ever evicted */
    cfg->chunk_size = CHUNK;
    cfg->fd_cache = 1;                     /* every hit looks up the index */
    cfg->prefetch_threads = 0;
    cfg->readahead_max = 0;
    cfg->peers = "";
    cfg->snapshot = "";
}

static uint64_t file_bytes(const char *dir)
{
    char p[640];
    struct stat st;
    snprintf(p, sizeof p, "%s/index/data.mdb", dir);
    return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

/* Real chunks, then synthetic records up to r->n. */
static int fill(dsc_cache *c, row *r)
{
    dsc_index *ix = dsc_cache_index(c);
    unsigned char *data = malloc(CHUNK);
    char key[64], etag[35];
    int rc = -1;
    if (!data)
        goto done;
    for (uint64_t j = 0; j < REAL; j++) {
        for (uint64_t k = 0; k < CHUNK; k++)
            data[k] = pattern(j, k);
        key_of(j, key, sizeof key);
        etag_of(key, etag);
        dsc_objref o = { BUCKET, key, etag, CHUNK };
        if (dsc_cache_put_chunk(c, &o, 0, data, CHUNK)) {
            note(r, "put_chunk");
            goto done;
        }
    }
    uint64_t now = dsc_wall_ms();
    dsc_admit ad = { .cap = (uint64_t)1 << 50, .policy = DSC_POLICY_LRU };
    double t0 = now_s();
    for (uint64_t i = 0; i < r->n - REAL; i++) {
        dsc_chunk_id id;
        synth_id(i, &id);
        dsc_chunk_rec rec = { CHUNK, 0, i + 1, now, now };
        int irc = dsc_index_insert(ix, &id, &rec, &ad);
        if (irc && irc != DSC_EXISTS) {
            snprintf(r->err, sizeof r->err, "insert %" PRIu64 ": %s", i + REAL,
                     dsc_errmsg());
            break;
        }
        if ((i + 1) % 2000000 == 0)
            fprintf(stderr, "  N=%" PRIu64 ": %" PRIu64 " inserted, %.0f s\n",
                    r->n, i + 1 + REAL, now_s() - t0);
    }
    r->fill_s = now_s() - t0;
    dsc_index_info inf;
    if (dsc_index_info_get(ix, &inf)) {
        note(r, "info");
        goto done;
    }
    r->filled = inf.chunks;
    rc = 0;
done:
    free(data);
    return rc;
}

static int seed_meta(dsc_cache *c, row *r)
{
    dsc_meta_entry *e = calloc(META_TXN, sizeof *e);
    char (*keys)[32] = calloc(META_TXN, sizeof *keys);
    char (*etags)[35] = calloc(META_TXN, sizeof *etags);
    int rc = -1;
    if (!e || !keys || !etags)
        goto done;
    for (uint64_t base = 0; base < OBJECTS; base += META_TXN) {
        for (int i = 0; i < META_TXN; i++) {
            key_of(base + (uint64_t)i, keys[i], sizeof keys[i]);
            etag_of(keys[i], etags[i]);
            e[i] = (dsc_meta_entry){ keys[i], CHUNK, etags[i] };
        }
        if (dsc_index_meta_put_many(dsc_cache_index(c), dsc_cache_origin(c),
                                    BUCKET, e, META_TXN, dsc_wall_ms())) {
            note(r, "metadata");
            goto done;
        }
    }
    rc = 0;
done:
    free(e);
    free(keys);
    free(etags);
    return rc;
}

/* Hit latency: REAL files open, random 4 KiB slices, each checked. */
static int hits(dsc_ctx *ctx, double *t, row *r)
{
    dsc_file **f = calloc(REAL, sizeof *f);
    unsigned char buf[SLICE];
    char url[96], key[64];
    unsigned seed = 11;
    int rc = -1;
    if (!f)
        goto done;
    for (int j = 0; j < REAL; j++) {
        key_of((uint64_t)j, key, sizeof key);
        snprintf(url, sizeof url, "s3://" BUCKET "/%s", key);
        if (dsc_open(ctx, url, &f[j])) {
            note(r, "open");
            goto done;
        }
    }
    for (int s = 0; s < SAMPLES; s++) {
        uint64_t j = (uint64_t)rand_r(&seed) % REAL;
        uint64_t off = (uint64_t)(rand_r(&seed) % (CHUNK / SLICE)) * SLICE;
        double t0 = now_s();
        ssize_t got = dsc_pread(f[j], buf, SLICE, off);
        t[s] = now_s() - t0;
        if (got != SLICE || buf[0] != pattern(j, off) ||
            buf[SLICE - 1] != pattern(j, off + SLICE - 1)) {
            snprintf(r->err, sizeof r->err, "hit: chunk %" PRIu64 " at %"
                     PRIu64 ": %zd bytes, %s", j, off, got,
                     got < 0 ? dsc_errmsg() : "wrong bytes");
            goto done;
        }
    }
    /* Rounds first (pct sorts what it is given), then all samples. */
    r->hit_lo = 1e30;
    for (int k = 0; k < ROUNDS; k++) {
        double p50, p99;
        pct(t + k * (SAMPLES / ROUNDS), SAMPLES / ROUNDS, &p50, &p99);
        r->hit_lo = p50 < r->hit_lo ? p50 : r->hit_lo;
        r->hit_hi = p50 > r->hit_hi ? p50 : r->hit_hi;
    }
    pct(t, SAMPLES, &r->hit50, &r->hit99);
    rc = 0;
done:
    for (int j = 0; f && j < REAL; j++)
        dsc_close(f[j]);
    free(f);
    return rc;
}

static int lookups(dsc_cache *c, double *t, row *r)
{
    unsigned seed = 13;
    uint64_t synth = r->filled > REAL ? r->filled - REAL : 0;
    if (!synth)
        return 0;
    for (int s = 0; s < SAMPLES; s++) {
        dsc_chunk_id id;
        dsc_chunk_rec rec;
        uint64_t i = (((uint64_t)rand_r(&seed) << 31) ^
                      (uint64_t)rand_r(&seed)) % synth;
        synth_id(i, &id);
        double t0 = now_s();
        int rc = dsc_index_get(dsc_cache_index(c), &id, &rec);
        t[s] = now_s() - t0;
        if (rc || rec.seq != i + 1) {
            snprintf(r->err, sizeof r->err, "lookup %" PRIu64 ": %d", i, rc);
            return -1;
        }
    }
    pct(t, SAMPLES, &r->get50, &r->get99);
    return 0;
}

static int opens(dsc_ctx *ctx, double *t, double *p50, double *p99, row *r)
{
    char url[96], key[64];
    unsigned seed = 17;
    for (int s = 0; s < SAMPLES; s++) {
        key_of((uint64_t)rand_r(&seed) % OBJECTS, key, sizeof key);
        snprintf(url, sizeof url, "s3://" BUCKET "/%s", key);
        dsc_file *f;
        double t0 = now_s();
        int rc = dsc_open(ctx, url, &f);
        t[s] = now_s() - t0;
        if (rc) {
            note(r, url);
            return -1;
        }
        dsc_close(f);
    }
    pct(t, SAMPLES, p50, p99);
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

/* Every measure of one N, in the child. Fills *r; 0 if all ran. */
static int measure(uint64_t n, const char *tmp, const char *snap_path, row *r)
{
    char dir[600];
    dsc_config cfg;
    dsc_ctx *ctx = NULL;
    dsc_snapshot *snap = NULL;
    double *t = malloc(SAMPLES * sizeof *t);
    int rc = -1, made = 0;
    memset(r, 0, sizeof *r);
    r->n = n;
    snprintf(dir, sizeof dir, "%s/bench-scale-XXXXXX", tmp);
    if (!t || !mkdtemp(dir)) {
        snprintf(r->err, sizeof r->err, "%.150s: %s", dir, strerror(errno));
        goto done;
    }
    made = 1;
    config(&cfg, dir);
    if (dsc_ctx_open(&cfg, &ctx)) {
        note(r, "context");
        goto done;
    }
    dsc_cache *c = dsc_ctx_cache(ctx);
    if (!c) {
        snprintf(r->err, sizeof r->err, "context has no cache");
        goto done;
    }
    /* A failed fill (map full) still lets the rest measure what is in. */
    if (fill(c, r) && !r->filled)
        goto done;
    uint64_t chunk_file = file_bytes(dir);
    r->chunk_bytes = r->filled ? (double)chunk_file / (double)r->filled : 0;
    if (seed_meta(c, r))
        goto done;
    r->ix_mib = file_bytes(dir) / 1048576.0;
    r->meta_bytes = (double)(file_bytes(dir) - chunk_file) / OBJECTS;
    if (hits(ctx, t, r) || lookups(c, t, r) ||
        opens(ctx, t, &r->om50, &r->om99, r))
        goto done;
    r->m = mem_now();
    if (dsc_snapshot_load(ctx, snap_path, &snap) ||
        dsc_ctx_use_snapshot(ctx, snap)) {
        note(r, "snapshot");
        goto done;
    }
    if (opens(ctx, t, &r->os50, &r->os99, r))
        goto done;
    r->hwm_end = mem_now().hwm;
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    r->requests = (int)(st.s3_heads + st.s3_gets + st.s3_lists);
    dsc_ctx_close(ctx);
    ctx = NULL;
    /* The environment is closed now (no context holds it): this open
     * maps and checks the filled index again. */
    double t0 = now_s();
    if (dsc_ctx_open(&cfg, &ctx)) {
        note(r, "context reopen");
        goto done;
    }
    r->ctx_open_ms = (now_s() - t0) * 1e3;
    rc = r->err[0] ? -1 : 0;
    r->ok = !rc && r->requests == 0;
done:
    dsc_ctx_close(ctx);
    dsc_snapshot_free(snap);
    if (made)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return rc;
}

/* Runs measure() in a child; 0 and *r when the child reported. */
static int run_child(uint64_t n, const char *tmp, const char *snap_path,
                     row *r)
{
    int p[2];
    if (pipe(p))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        measure(n, tmp, snap_path, r);
        ssize_t w = write(p[1], r, sizeof *r);
        _exit(w == (ssize_t)sizeof *r ? 0 : 1);
    }
    close(p[1]);
    ssize_t got = read(p[0], r, sizeof *r);
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof *r) {
        memset(r, 0, sizeof *r);
        r->n = n;
        snprintf(r->err, sizeof r->err, "child died (status %d)", status);
        return -1;
    }
    return 0;
}

/* Fork: 1 in the child (which must _exit), 0 in the parent once the
 * child is done; the child's RSS is its measure's alone. */
static int in_child(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        return 1;
    int status;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return 0;
}

/* "Listing 10^6 keys in flat memory": a loaded snapshot of 10^6 objects
 * walked with dsc_snapshot_get, RSS before and after (in a child). */
static void flat_listing(const char *snap_path)
{
    if (!in_child())
        return;
    dsc_snapshot *s = NULL;
    mem m0 = mem_now();
    double t0 = now_s();
    int rc = dsc_snapshot_load(NULL, snap_path, &s);
    double t_load = now_s() - t0;
    mem m1 = mem_now();
    uint64_t bytes = 0, walked = 0;
    t0 = now_s();
    for (size_t i = 0; !rc && i < dsc_snapshot_count(s); i++) {
        dsc_object_info o;
        if (dsc_snapshot_get(s, i, &o))
            break;
        bytes += o.size + strlen(o.key) + strlen(o.etag);
        walked++;
    }
    double t_walk = now_s() - t0;
    mem m2 = mem_now();
    if (rc)
        printf("flat listing: load failed: %s\n", dsc_errmsg());
    else
        printf("flat listing: %" PRIu64 " keys from a snapshot: load %.3f s, "
               "walk %.3f s (%.0f ns/key, checksum %" PRIu64 "); RSS %.1f -> "
               "%.1f after load (+%.1f MiB = %.0f B/key) -> %.1f MiB after "
               "the walk (+%.1f); peak %.1f MiB\n", walked, t_load, t_walk,
               t_walk / (walked ? walked : 1) * 1e9, bytes, mib(m0.rss),
               mib(m1.rss), mib(m1.rss - m0.rss),
               (m1.rss - m0.rss) * 1024.0 / (walked ? walked : 1),
               mib(m2.rss), mib(m2.rss - m1.rss), mib(m2.hwm));
    dsc_snapshot_free(s);
    fflush(stdout);
    _exit(rc ? 1 : 0);
}

static int count_obj(void *arg, const dsc_object_info *o)
{
    (void)o;
    ++*(uint64_t *)arg;
    return 0;
}

/* The S3 LIST path at 10^6 keys: dsc_list (streamed, each page's
 * metadata remembered in the node cache, as a user's listing does) and
 * dsc_snapshot_list (one in-memory image), against list_server.py, which
 * makes ListObjectsV2 pages on the fly (s3rver keeps a file per object
 * and lists slowly). In a child; RSS and time of each. */
static void list_path(const char *tmp, uint64_t n)
{
    if (!in_child())
        return;
    char port_file[700], dir[700], endpoint[64], count[32];
    snprintf(port_file, sizeof port_file, "%s/bench-list-%d.port", tmp,
             (int)getpid());
    snprintf(dir, sizeof dir, "%s/bench-list-%d", tmp, (int)getpid());
    snprintf(count, sizeof count, "%" PRIu64, n);
    const char *script = getenv("BENCH_LIST_SERVER") ? getenv("BENCH_LIST_SERVER")
                                                     : "bench/scale/list_server.py";
    pid_t srv = fork();
    if (srv == 0) {
        execl("/usr/bin/python3", "python3", script, port_file, count,
              (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 200 && !port; i++) {
        FILE *f = fopen(port_file, "r");
        if (!f || fscanf(f, "%d", &port) != 1)
            port = 0;
        if (f)
            fclose(f);
        if (!port)
            usleep(50000);
    }
    int rc = 1;
    dsc_ctx *ctx = NULL;
    if (!port) {
        printf("S3 LIST path: %s did not start\n", script);
        goto done;
    }
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = endpoint;
    cfg.anonymous = 1;
    cfg.cache_dir = dir;
    if (dsc_ctx_open(&cfg, &ctx)) {
        printf("S3 LIST path: %s\n", dsc_errmsg());
        goto done;
    }
    mem m0 = mem_now();
    double t0 = now_s();
    uint64_t seen = 0;
    int64_t got = dsc_list(ctx, "s3://bench-list/list/", count_obj, &seen);
    double t_list = now_s() - t0;
    mem m1 = mem_now();
    t0 = now_s();
    dsc_snapshot *s = NULL;
    int src = got >= 0 ? dsc_snapshot_list(ctx, "s3://bench-list/list/", &s) : 0;
    double t_snap = now_s() - t0;
    mem m2 = mem_now();
    dsc_snapshot_summary sum = { 0 };
    if (s)
        dsc_snapshot_summarize(s, &sum, sizeof sum);
    if (got < 0 || src)
        printf("S3 LIST path: failed: %s\n", dsc_errmsg());
    else
        printf("S3 LIST path, %" PRIu64 " keys, 1,000 a page (list_server.py, "
               "127.0.0.1): dsc_list %.1f s (%.0f keys/s), anon RSS %.1f -> "
               "%.1f MiB (+%.1f: flat); dsc_snapshot_list %.1f s, %" PRIu64
               " objects, image %.1f MiB, anon RSS -> %.1f MiB; peak RSS "
               "%.1f MiB\n", seen, t_list, seen / (t_list > 0 ? t_list : 1),
               mib(m0.anon), mib(m1.anon), mib(m1.anon - m0.anon), t_snap,
               sum.objects, sum.file_bytes / 1048576.0, mib(m2.anon),
               mib(m2.hwm));
    rc = got < 0 || src;
    dsc_snapshot_free(s);
done:
    dsc_ctx_close(ctx);
    if (srv > 0) {
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
    }
    unlink(port_file);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    fflush(stdout);
    _exit(rc);
}

static uint64_t max_n(void)
{
    const char *s = getenv("BENCH_SCALE_MAX");
    if (!s || !*s)
        return 10000000;
    char *end;
    double v = strtod(s, &end);
    if (*end || v < 1e4 || v > 1e9) {
        fprintf(stderr, "bench_scale: BENCH_SCALE_MAX=%s: want 1e4..1e9\n",
                s);
        return 0;
    }
    return (uint64_t)(v + 0.5);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    uint64_t top = max_n();
    char snap_path[600];
    row rows[8];
    int nrows = 0, rc = 1;
    if (!top)
        return 2;
    snprintf(snap_path, sizeof snap_path, "%s/bench-scale-%d.dsnap", tmp,
             (int)getpid());
    double t0 = now_s();
    if (write_snapshot(snap_path, OBJECTS))
        goto done;
    printf("bench_scale: %s; chunks of %d KiB (REAL=%d with files, the rest "
           "index records only), %d objects' metadata, %d samples a "
           "measure; times in us\n", dsc_version_string(), CHUNK / 1024,
           REAL, OBJECTS, SAMPLES);
    flat_listing(snap_path);
    list_path(tmp, OBJECTS);
    printf("\n%9s %8s %7s %6s %6s | %13s %13s | %13s %13s | %7s | %15s %7s %4s\n",
           "N", "ins/s", "ix MiB", "B/chk", "B/obj", "hit p50/p99",
           "lookup p50/99", "open-meta", "open-snap", "ctx ms",
           "RSS anon/file", "HWM", "ok");
    fflush(stdout);
    for (uint64_t n = 10000; n <= top && nrows < 8; n *= 10) {
        row *r = &rows[nrows++];
        run_child(n, tmp, snap_path, r);
        uint64_t synth = r->filled > REAL ? r->filled - REAL : 0;
        printf("%9" PRIu64 " %8.0f %7.1f %6.0f %6.0f | %6.1f %6.1f | %6.2f "
               "%6.2f | %6.1f %6.1f | %6.2f %6.2f | %7.1f | %7.1f %7.1f "
               "%7.1f %4s\n", r->n, r->fill_s > 0 ? synth / r->fill_s : 0,
               r->ix_mib, r->chunk_bytes, r->meta_bytes, r->hit50, r->hit99,
               r->get50, r->get99, r->om50, r->om99, r->os50, r->os99,
               r->ctx_open_ms, mib(r->m.anon), mib(r->m.file),
               mib(r->hwm_end), r->ok ? "yes" : "NO");
        printf("          hit p50 of %d rounds of %d: %.1f .. %.1f us\n",
               ROUNDS, SAMPLES / ROUNDS, r->hit_lo, r->hit_hi);
        if (r->filled != r->n)
            printf("          ^ index holds %" PRIu64 " of %" PRIu64
                   " records\n", r->filled, r->n);
        if (r->requests)
            printf("          ^ %d S3 requests were made: a measure missed "
                   "the cache\n", r->requests);
        if (r->err[0])
            printf("          ^ FAILED: %s\n", r->err);
        fflush(stdout);
    }
    row *lo = &rows[0], *hi = &rows[nrows - 1];
    if (nrows > 1 && lo->ok && hi->ok && lo->hit50 > 0) {
        double ratio = hi->hit50 / lo->hit50;
        printf("\nhit p50 at N=%" PRIu64 " / at N=%" PRIu64 ": %.3f (goal "
               "<= 1.2): %s\n", hi->n, lo->n, ratio,
               ratio <= 1.2 ? "PASS" : "FAIL");
        printf("same, lowest round p50s: %.3f; highest: %.3f\n",
               hi->hit_lo / lo->hit_lo, hi->hit_hi / lo->hit_hi);
        printf("index lookup p50 at N=%" PRIu64 " / at N=%" PRIu64 ": %.3f "
               "(p99 %.3f)\n", hi->n, lo->n, hi->get50 / lo->get50,
               hi->get99 / lo->get99);
        rc = ratio <= 1.2 ? 0 : 1;
    } else {
        printf("\nhit ratio: not computed (a row failed or only one N)\n");
    }
    printf("total %.0f s\n", now_s() - t0);
done:
    unlink(snap_path);
    return rc;
}
