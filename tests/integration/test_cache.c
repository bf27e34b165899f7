/* The node cache against a real s3rver: hits, integrity, eviction, fork,
 * single flight, full and read-only disks. Every byte is compared. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include "cachetest.h"

static fixture fx[128];
static int nfx;
#define MiB (1u << 20)

static const fixture *fix(const char *name) { return itest_find(fx, nfx, name); }

/* Epoch 1 fetches every chunk once; epoch 2 (a new context, so the files
 * are verified again) comes from disk with no S3 traffic at all. */
static void test_second_epoch_hits(void **state)
{
    (void)state;
    const char *dir = fresh_dir("epoch");
    const fixture *big = fix("sixty-four-mib"), *odd = fix("five-mib-plus-one");
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .ttl_ms = 60000 });
    read_verify(ctx, big, MiB);
    read_verify(ctx, odd, 3 * MiB + 7);
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.misses, 64 + 6);
    assert_int_equal(s.hits, 1);   /* chunk 3 of odd, read in two parts */
    assert_int_equal(s.s3_gets, 64 + 6);
    assert_int_equal(s.bytes_from_s3, big->size + odd->size);
    assert_int_equal(s.cache_chunks, 70);
    assert_int_equal(s.cache_bytes, big->size + odd->size);
    dsc_ctx_close(ctx);

    ctx = cache_ctx(dir, (cache_opts){ .ttl_ms = 60000 });
    read_verify(ctx, big, MiB);
    read_verify(ctx, odd, 3 * MiB + 7);
    s = stats_of(ctx);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.s3_gets, 0);
    assert_int_equal(s.s3_heads, 0);      /* sizes and ETags were cached */
    assert_int_equal(s.meta_hits, 2);
    assert_true(s.hits >= 70);
    assert_int_equal(s.bytes_from_cache, big->size + odd->size);
    assert_true(s.node_hits >= 70 && s.node_misses >= 70);
    dsc_ctx_close(ctx);
}

/* Reads of a cached chunk over and over (warm epochs of a small dataset,
 * one after another) record its access for eviction once a minute, not in
 * a write of the shared index every 256 reads: that write took the
 * node's single LMDB writer lock from every reader process in turn.
 * Without the once-a-minute rule the loop below commits 11 writes. */
static void test_rereads_write_the_index_rarely(void **state)
{
    (void)state;
    enum { READS = 3000 };
    const char *dir = fresh_dir("touch");
    const fixture *x = fix("epoch/obj-03");
    unsigned char *want = itest_slurp(x->path, x->size), *got = malloc(x->size);
    assert_non_null(got);
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0 fetches it and reads it from its open file; pass 1, a
         * new context, finds it through the index first. */
        dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .ttl_ms = 60000 });
        assert_int_equal(dsc_pread_url(ctx, x->url, got, x->size, 0, NULL),
                         (ssize_t)x->size);
        uint64_t before = stats_of(ctx).index_writes;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < READS; i++)
            if (dsc_pread_url(ctx, x->url, got, x->size, 0, NULL) != (ssize_t)x->size)
                fail_msg("read %d: %s", i, dsc_errmsg());
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_memory_equal(got, want, x->size);
        dsc_stats st = stats_of(ctx);
        print_message("    pass %d: %d reads, %llu index writes\n", pass, READS,
                      (unsigned long long)(st.index_writes - before));
        assert_true(st.hits >= READS);
        /* The counters' once-a-second writes (a slow machine or a
         * sanitizer takes seconds here), and the flush of stats_of. */
        long secs = (long)(t1.tv_sec - t0.tv_sec) + 1;
        if (st.index_writes - before > 2 + (uint64_t)secs)
            fail_msg("%llu index writes in %ld s of re-reads",
                     (unsigned long long)(st.index_writes - before), secs);
        dsc_ctx_close(ctx);
    }
    free(want);
    free(got);
}

/* Small reads across chunk edges, cold and warm. */
static void test_unaligned_reads(void **state)
{
    (void)state;
    const char *dir = fresh_dir("unaligned");
    const fixture *x = fix("five-mib-plus-one");
    unsigned char *want = itest_slurp(x->path, x->size);
    for (int pass = 0; pass < 2; pass++) {
        dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .chunk = 64 * 1024 });
        dsc_file *f;
        assert_int_equal(dsc_open(ctx, x->url, &f), 0);
        unsigned seed = 42;
        unsigned char buf[200000];
        for (int i = 0; i < 300; i++) {
            uint64_t off = (uint64_t)rand_r(&seed) % (x->size + 10);
            size_t len = (size_t)rand_r(&seed) % sizeof buf;
            ssize_t n = dsc_pread(f, buf, len, off);
            size_t expect = off >= x->size ? 0
                          : (x->size - off < len ? (size_t)(x->size - off) : len);
            assert_int_equal(n, (ssize_t)expect);
            if (expect)
                assert_memory_equal(buf, want + off, expect);
        }
        dsc_close(f);
        dsc_ctx_close(ctx);
    }
    free(want);
}

/* FLIP_MARKED: a flipped byte, then the file's mtime (its write mark) put
 * back by hand, as only a process of the cache's own uid could. */
typedef enum damage { FLIP, TRUNCATE, DELETE, FLIP_MARKED } damage;

static void do_damage(const char *path, off_t size, void *arg)
{
    damage d = *(damage *)arg;
    if (d == DELETE) {
        assert_int_equal(unlink(path), 0);
        return;
    }
    struct stat was;
    assert_int_equal(stat(path, &was), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (d == TRUNCATE) {
        assert_int_equal(ftruncate(fd, size / 2), 0);
    } else {
        unsigned char b;
        off_t at = size / 3;
        assert_int_equal(pread(fd, &b, 1, at), 1);
        b ^= 0x20;
        assert_int_equal(pwrite(fd, &b, 1, at), 1);
    }
    if (d == FLIP_MARKED) {
        struct timespec times[2] = { was.st_atim, was.st_mtim };
        assert_int_equal(futimens(fd, times), 0);
    }
    close(fd);
}

/* Damaged chunk files are caught, dropped and fetched again: the reader
 * gets the right bytes and the cache heals. */
static void damaged_cache(damage d)
{
    const char *dir = fresh_dir("damage");
    const fixture *x = fix("five-mib-plus-one");
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ 0 });
    read_verify(ctx, x, MiB);
    dsc_ctx_close(ctx);
    int n = walk_chunks(dir, do_damage, &d);
    assert_int_equal(n, 6);

    /* A mark put back defeats the skip of this boot's files; hashing
     * every file (DSC_VERIFY_ALWAYS) still catches it. */
    int verify = d == FLIP_MARKED ? DSC_VERIFY_ALWAYS : DSC_VERIFY_BOOT;
    ctx = cache_ctx(dir, (cache_opts){ .verify = verify });
    read_verify(ctx, x, 256 * 1024);          /* partial-chunk reads */
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.misses, 6);
    assert_int_equal(s.corrupt_dropped, d == DELETE ? 0 : 6);
    assert_int_equal(s.cache_chunks, 6);
    dsc_ctx_close(ctx);

    ctx = cache_ctx(dir, (cache_opts){ 0 });
    read_verify(ctx, x, MiB);
    s = stats_of(ctx);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.corrupt_dropped, 0);
    dsc_ctx_close(ctx);
    assert_int_equal(walk_chunks(dir, NULL, NULL), 6);   /* no leftovers */
}

static void test_flipped_bytes(void **s) { (void)s; damaged_cache(FLIP); }
static void test_flipped_marked_verify_always(void **s) { (void)s; damaged_cache(FLIP_MARKED); }
static void test_truncated_files(void **s) { (void)s; damaged_cache(TRUNCATE); }
static void test_deleted_files(void **s) { (void)s; damaged_cache(DELETE); }

/* The byte cap holds, in the index and on disk, while reading far more
 * than fits; evicted data is fetched again correctly. */
static void test_cap_respected(void **state)
{
    (void)state;
    const char *dir = fresh_dir("cap");
    const fixture *x = fix("sixty-four-mib");
    uint64_t cap = 5 * MiB + 100;
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .cap = cap });
    read_verify(ctx, x, 2 * MiB);
    dsc_stats s = stats_of(ctx);
    assert_true(s.cache_bytes <= cap);
    assert_int_equal(s.cache_chunks, 5);
    assert_int_equal(s.evictions, 64 - 5);
    uint64_t on_disk = 0;
    walk_chunks(dir, add_size, &on_disk);
    assert_true(on_disk <= cap);
    read_verify(ctx, x, 3 * MiB);
    dsc_ctx_close(ctx);
}

/* Four processes fill one small cache at once, each with its own
 * objects: the cap holds across writers, in the index and on disk. */
static void test_cap_concurrent_processes(void **state)
{
    (void)state;
    const char *dir = fresh_dir("cap-procs");
    const char *names[4] = { "sixty-four-mib", "five-mib-plus-one",
                             "flight/obj-2", "flight/obj-3" };
    uint64_t cap = 6 * MiB;
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .cap = cap, .chunk = 512 * 1024 });
            const fixture *x = fix(names[i]);
            unsigned char *want = itest_slurp(x->path, x->size);
            unsigned char *buf = malloc(MiB);
            int bad = 0;
            for (int pass = 0; pass < 2; pass++)
                for (uint64_t off = 0; off < x->size; off += MiB) {
                    dsc_file *f;
                    size_t e = x->size - off < MiB ? x->size - off : MiB;
                    bad |= dsc_open(ctx, x->url, &f) != 0 ||
                           dsc_pread(f, buf, MiB, off) != (ssize_t)e ||
                           memcmp(buf, want + off, e) != 0;
                    dsc_close(f);
                }
            dsc_ctx_close(ctx);
            _exit(bad);
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .cap = cap, .chunk = 512 * 1024 });
    dsc_stats s = stats_of(ctx);
    uint64_t on_disk = 0;
    int files = walk_chunks(dir, add_size, &on_disk);
    printf("    4 writers, cap %llu: index %llu bytes, disk %llu bytes in %d "
           "files, %llu evictions\n", (unsigned long long)cap,
           (unsigned long long)s.cache_bytes, (unsigned long long)on_disk,
           files, (unsigned long long)s.node_evictions);
    assert_true(s.cache_bytes <= cap);
    assert_true(on_disk <= cap);
    assert_true(s.node_evictions > 100);
    dsc_ctx_close(ctx);
}

/* With a TTL of 0 every open asks S3: an overwritten object is read in
 * its new version. Within a TTL, a handle keeps its version: cached
 * chunks of it are served, uncached ones fail with DSC_ECHANGED, and the
 * stale metadata is dropped so the next open sees the new version. */
static void test_overwrite(void **state)
{
    (void)state;
    const char *dir = fresh_dir("overwrite");
    char url[256], put[1024];
    snprintf(url, sizeof url, "s3://%s/cache-changing", itest_env("DSC_TEST_BUCKET"));
    snprintf(put, sizeof put, "%s put %s cache-changing %u 1",
             itest_env("DSC_TEST_PUT"), itest_env("DSC_TEST_ENDPOINT"), 3 * MiB);
    assert_int_equal(system(put), 0);
    static unsigned char buf[3 * MiB];
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .ttl_ms = 0 });
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 2 * MiB, 0), 2 * MiB);
    assert_int_equal(buf[0], 1);
    dsc_close(f);
    put[strlen(put) - 1] = '2';
    assert_int_equal(system(put), 0);
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 2 * MiB, 0), 2 * MiB);
    for (unsigned i = 0; i < 2 * MiB; i += 4099)
        assert_int_equal(buf[i], 2);
    dsc_close(f);
    dsc_ctx_close(ctx);

    ctx = cache_ctx(dir, (cache_opts){ .ttl_ms = 3600 * 1000 });
    assert_int_equal(dsc_open(ctx, url, &f), 0);     /* caches v2's HEAD */
    assert_int_equal(dsc_pread(f, buf, 100, 0), 100);
    dsc_close(f);
    put[strlen(put) - 1] = '3';
    assert_int_equal(system(put), 0);
    assert_int_equal(dsc_open(ctx, url, &f), 0);     /* within TTL: v2 */
    assert_int_equal(dsc_pread(f, buf, 100, 0), 100);
    assert_int_equal(buf[0], 2);                     /* cached v2 chunk */
    /* Chunk 2 of v2 was never cached: S3 now has v3 only. */
    assert_int_equal(dsc_pread(f, buf, 100, 2 * MiB + 5), DSC_ECHANGED);
    assert_non_null(strstr(dsc_errmsg(), "changed"));
    dsc_close(f);
    assert_int_equal(dsc_open(ctx, url, &f), 0);     /* metadata dropped */
    assert_int_equal(dsc_pread(f, buf, 3 * MiB, 0), 3 * MiB);
    for (unsigned i = 0; i < 3 * MiB; i += 4099)
        assert_int_equal(buf[i], 3);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

typedef struct sf_arg {
    dsc_ctx *ctx;
    const fixture *x;
    pthread_barrier_t *go;
    int ok;
} sf_arg;

static void *sf_reader(void *p)
{
    sf_arg *a = p;
    unsigned char *want = itest_slurp(a->x->path, a->x->size);
    unsigned char *got = malloc(a->x->size);
    dsc_file *f;
    pthread_barrier_wait(a->go);
    a->ok = dsc_open(a->ctx, a->x->url, &f) == 0 &&
            dsc_pread(f, got, a->x->size, 0) == (ssize_t)a->x->size &&
            memcmp(got, want, a->x->size) == 0;
    dsc_close(f);
    free(got);
    free(want);
    return NULL;
}

/* 16 threads miss the same chunks at once: s3rver sees each chunk once. */
static void test_single_flight_threads(void **state)
{
    (void)state;
    const char *dir = fresh_dir("sf-threads");
    const fixture *x = fix("flight/obj-0");
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ 0 });
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 16);
    pthread_t t[16];
    sf_arg a[16];
    for (int i = 0; i < 16; i++) {
        a[i] = (sf_arg){ ctx, x, &go, 0 };
        pthread_create(&t[i], NULL, sf_reader, &a[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].ok);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(server_gets("flight/obj-0"), 4);   /* 3 MiB + 12345 */
    assert_int_equal(stats_of(ctx).s3_gets, 4);
    dsc_ctx_close(ctx);
}

/* 8 processes miss the same chunks at once; half use a context inherited
 * across fork(), half open their own. s3rver sees each chunk once. */
static void test_single_flight_processes(void **state)
{
    (void)state;
    const char *dir = fresh_dir("sf-procs");
    const fixture *x = fix("flight/obj-1");
    dsc_ctx *parent = cache_ctx(dir, (cache_opts){ 0 });
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[8];
    for (int i = 0; i < 8; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0)   /* wait for the start signal */
                _exit(3);
            dsc_ctx *ctx = i % 2 ? parent : NULL;
            if (!ctx) {
                dsc_config cfg;
                dsc_config_init(&cfg, DSC_CONFIG_VERSION);
                cfg.endpoint = getenv("DSC_TEST_ENDPOINT");
                cfg.cache_dir = dir;
                cfg.chunk_size = MiB;
                if (dsc_ctx_open(&cfg, &ctx))
                    _exit(2);
            }
            unsigned char *want = malloc(x->size), *got = malloc(x->size);
            FILE *lf = fopen(x->path, "rb");
            if (!lf || fread(want, 1, x->size, lf) != x->size)
                _exit(2);
            fclose(lf);
            dsc_file *f;
            int ok = dsc_open(ctx, x->url, &f) == 0 &&
                     dsc_pread(f, got, x->size, 0) == (ssize_t)x->size &&
                     memcmp(got, want, x->size) == 0;
            _exit(ok ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);   /* everyone starts now */
    for (int i = 0; i < 8; i++) {
        int st;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(server_gets("flight/obj-1"), 4);
    /* The parent's context still works after its children used it. */
    read_verify(parent, x, MiB);
    assert_int_equal(server_gets("flight/obj-1"), 4);
    dsc_ctx_close(parent);
}

/* A context and open files made before fork() work in the children (as
 * PyTorch DataLoader workers use them) and in the parent afterwards. */
static void test_fork_inherited_handles(void **state)
{
    (void)state;
    const char *dir = fresh_dir("fork");
    const fixture *x = fix("five-mib-plus-one");
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ 0 });
    unsigned char *want = itest_slurp(x->path, x->size);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned char buf[300000];
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int bad = 0;
            for (uint64_t off = (uint64_t)i * 777; off < x->size; off += 400000) {
                ssize_t n = dsc_pread(f, buf, sizeof buf, off);
                size_t e = x->size - off < sizeof buf ? x->size - off : sizeof buf;
                bad |= n != (ssize_t)e || memcmp(buf, want + off, e);
            }
            dsc_stats st;
            bad |= dsc_stats_get(ctx, &st, sizeof st) != 0;
            dsc_close(f);
            dsc_ctx_close(ctx);
            _exit(bad);
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    read_verify(ctx, x, MiB);
    dsc_close(f);
    dsc_ctx_close(ctx);
    free(want);
}

/* Capture stderr while fn runs; returns how many lines held `needle`. */
static int count_stderr(void (*fn)(void *), void *arg, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stderr-XXXXXX", itest_env("DSC_TEST_STATE"));
    int fd = mkstemp(path);
    int saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        fputs(line, stdout);
        if (strstr(line, needle))
            n++;
    }
    fclose(f);
    unlink(path);
    return n;
}

static int mount_tmpfs(const char *dir, const char *opts)
{
    return mount("dsc-test", dir, "tmpfs", 0, opts);
}

typedef struct disk_case {
    const char *dir;
    uint32_t chunk;                /* 0: the default */
    int last_only;                 /* only the object read last */
    dsc_stats st;
} disk_case;

static void read_big_through(void *p)
{
    disk_case *dc = p;
    dsc_ctx *ctx = cache_ctx(dc->dir, (cache_opts){ .chunk = dc->chunk });
    if (dc->last_only) {
        /* The tail of the object read last: what a full cache kept. */
        const fixture *x = fix("five-mib-plus-one");
        unsigned char *want = itest_slurp(x->path, x->size);
        unsigned char *got = malloc(MiB + 1);
        dsc_file *f;
        assert_int_equal(dsc_open(ctx, x->url, &f), 0);
        assert_int_equal(dsc_pread(f, got, MiB + 1, 4 * MiB), MiB + 1);
        assert_memory_equal(got, want + 4 * MiB, MiB + 1);
        dsc_close(f);
        free(got);
        free(want);
    } else {
        read_verify(ctx, fix("sixty-four-mib"), 4 * MiB);
        read_verify(ctx, fix("five-mib-plus-one"), MiB);
    }
    dc->st = stats_of(ctx);
    dsc_ctx_close(ctx);
}

/* A disk that fills before the cap (10 GiB on a 6 MiB filesystem): every
 * read returns the right bytes, one warning says the cache now keeps what
 * the filesystem holds, chunks are evicted to make room (no failed
 * write), and a later process reads hits without a warning. */
static void test_disk_full(void **state)
{
    (void)state;
    const char *dir = fresh_dir("full");
    if (mount_tmpfs(dir, "size=6m,mode=0700")) {
        fail_msg("cannot mount a small tmpfs (needs root): %s", strerror(errno));
    }
    disk_case dc = { .dir = dir, .chunk = MiB };
    int warnings = count_stderr(read_big_through, &dc, "libdsc: warning");
    disk_case later = { .dir = dir, .chunk = MiB, .last_only = 1 };
    int later_warnings = count_stderr(read_big_through, &later, "libdsc: warning");
    umount2(dir, MNT_DETACH);
    assert_int_equal(warnings, 1);
    assert_int_equal(dc.st.cache_errors, 0);
    assert_true(dc.st.misses >= 64);
    assert_true(dc.st.evictions > 0);
    assert_true(dc.st.node_capacity_disk > 0);
    assert_true(dc.st.node_capacity_disk < 6 * MiB);
    assert_int_equal(dc.st.node_capacity, dc.st.node_capacity_disk);
    assert_int_equal(dc.st.node_capacity_set, (uint64_t)1 << 30);  /* cache_ctx's */
    assert_true(dc.st.cache_bytes <= dc.st.node_capacity);
    assert_int_equal(later_warnings, 0);
    assert_int_equal(later.st.cache_errors, 0);
    assert_true(later.st.hits > 0);
}

/* A read-only cache directory: reads work, straight from S3. */
static void test_read_only_cache(void **state)
{
    (void)state;
    const char *dir = fresh_dir("ro");
    if (mount_tmpfs(dir, "size=64m,mode=0700"))
        fail_msg("cannot mount a tmpfs (needs root): %s", strerror(errno));
    disk_case dc = { .dir = dir };
    read_big_through(&dc);                       /* warm it */
    assert_int_equal(mount("dsc-test", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL), 0);
    int warnings = count_stderr(read_big_through, &dc, "libdsc: warning");
    umount2(dir, MNT_DETACH);
    assert_int_equal(warnings, 1);
    assert_int_equal(dc.st.hits + dc.st.misses, dc.st.misses);
}

/* Shuffled epochs over 48 chunks with room for 24: "minio" keeps its
 * half and hits about half of every later epoch; LRU churns. */
static double epoch_hit_ratio(int policy, const char *tag)
{
    const char *dir = fresh_dir(tag);
    dsc_ctx *ctx = cache_ctx(dir, (cache_opts){ .cap = 24 * 65536,
                                                .chunk = 65536,
                                                .policy = policy });
    const fixture *objs[48];
    char name[32];
    for (int i = 0; i < 48; i++) {
        snprintf(name, sizeof name, "epoch/obj-%02d", i);
        objs[i] = fix(name);
    }
    unsigned seed = 7;
    uint64_t hits = 0, reads = 0;
    unsigned char buf[65536];
    for (int epoch = 0; epoch < 4; epoch++) {
        int order[48];
        for (int i = 0; i < 48; i++)
            order[i] = i;
        for (int i = 47; i > 0; i--) {
            int j = rand_r(&seed) % (i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        dsc_stats before = stats_of(ctx);
        for (int i = 0; i < 48; i++) {
            dsc_file *f;
            assert_int_equal(dsc_open(ctx, objs[order[i]]->url, &f), 0);
            assert_int_equal(dsc_pread(f, buf, sizeof buf, 0), 65536);
            dsc_close(f);
        }
        dsc_stats after = stats_of(ctx);
        if (epoch > 0) {
            hits += after.hits - before.hits;
            reads += 48;
        }
    }
    dsc_ctx_close(ctx);
    return (double)hits / (double)reads;
}

static void test_epoch_policies(void **state)
{
    (void)state;
    double minio = epoch_hit_ratio(DSC_POLICY_MINIO, "minio");
    double lru = epoch_hit_ratio(DSC_POLICY_LRU, "lru");
    printf("    epochs 2-4, cache = 50%% of dataset: minio hit ratio %.3f, "
           "lru %.3f\n", minio, lru);
    assert_true(minio >= 0.5 * 0.95 && minio <= 0.5 * 1.05);
    assert_true(lru < minio);
}

/* No cache directory at all: dsc_cache_dir says so, reads still work. */
static void test_cache_off(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    assert_null(dsc_cache_dir(ctx));
    read_verify(ctx, fix("one-byte"), 10);
    dsc_stats s = stats_of(ctx);
    assert_int_equal(s.hits + s.misses, 0);
    assert_int_equal(s.s3_gets, 1);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 128);
    setenv("DSC_LOG", "warn", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_epoch_hits),
        cmocka_unit_test(test_rereads_write_the_index_rarely),
        cmocka_unit_test(test_unaligned_reads),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_flipped_marked_verify_always),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_deleted_files),
        cmocka_unit_test(test_cap_respected),
        cmocka_unit_test(test_cap_concurrent_processes),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_single_flight_threads),
        cmocka_unit_test(test_single_flight_processes),
        cmocka_unit_test(test_fork_inherited_handles),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_read_only_cache),
        cmocka_unit_test(test_epoch_policies),
        cmocka_unit_test(test_cache_off),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
