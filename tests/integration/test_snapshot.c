/* Snapshots against s3rver: list -> save -> load equals the listing;
 * opening, reading, prefetching and planning snapshot objects sends no
 * HEAD and no LIST (our counters and s3rver's own log); an object
 * overwritten after the snapshot reads its pinned bytes from the cache or
 * fails with DSC_ECHANGED naming it; keys not in it, other endpoints, bad
 * files; loading from s3://; the config and DSC_SNAPSHOT. */
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include "cachetest.h"

static fixture fx[128];
static int nfx;
#define MiB (1u << 20)
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const fixture *fix(const char *name) { return itest_find(fx, nfx, name); }

static char epoch_url[256];

static dsc_ctx *ctx_on(const char *endpoint, const char *dir, long ttl_ms)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = endpoint;
    cfg.cache_dir = dir;
    cfg.chunk_size = 64 * 1024;
    cfg.meta_ttl_ms = ttl_ms;
    cfg.readahead_max = 0;
    cfg.prefetch_threads = 4;
    dsc_ctx *ctx = NULL;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc)
        fail_msg("dsc_ctx_open: %s: %s", dsc_strerror(rc), dsc_errmsg());
    return ctx;
}

static dsc_ctx *fresh_ctx(const char *tag)
{
    return ctx_on(itest_env("DSC_TEST_ENDPOINT"), fresh_dir(tag), 60000);
}

static dsc_snapshot *list_snap(const char *url)
{
    dsc_ctx *ctx = fresh_ctx("snap-list");
    dsc_snapshot *s = NULL;
    int rc = dsc_snapshot_list(ctx, url, &s);
    if (rc)
        fail_msg("dsc_snapshot_list %s: %s", url, dsc_errmsg());
    dsc_ctx_close(ctx);
    return s;
}

static char *state_path(const char *name)
{
    static char paths[16][600];
    static int n;
    char *p = paths[n++ % 16];
    snprintf(p, 600, "%s/%s", itest_env("DSC_TEST_STATE"), name);
    return p;
}

/* What s3rver saw of metadata requests: listings ("Fetched bucket"), and
 * 200 answers for epoch objects (HEADs; libdsc reads with ranged GETs,
 * which are 206). */
typedef struct server_meta {
    int lists, heads;
} server_meta;

static server_meta server_meta_now(void)
{
    return (server_meta){ server_log_lines("Fetched bucket", NULL),
                          server_log_lines("obj-", " 200 ") };
}

/* tests/integration/s3put.py OP ENDPOINT ARGS (put, putfile, delete). */
static void s3put(const char *op, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s %s", itest_env("DSC_TEST_PUT"), op,
             itest_env("DSC_TEST_ENDPOINT"), args);
    assert_int_equal(system(cmd), 0);
}

typedef struct listing {
    char keys[64][128];
    char etags[64][80];
    uint64_t sizes[64];
    int n;
} listing;

static int on_listed(void *arg, const dsc_object_info *o)
{
    listing *l = arg;
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", o->key);
    snprintf(l->etags[l->n], sizeof l->etags[0], "%s", o->etag);
    l->sizes[l->n++] = o->size;
    return 0;
}

static void assert_same_as_listing(const dsc_snapshot *s, const listing *l)
{
    assert_int_equal(dsc_snapshot_count(s), l->n);
    for (int i = 0; i < l->n; i++) {
        dsc_object_info o;
        assert_int_equal(dsc_snapshot_get(s, (size_t)i, &o), 0);
        assert_string_equal(o.key, l->keys[i]);
        assert_string_equal(o.etag, l->etags[i]);
        assert_int_equal(o.size, l->sizes[i]);
        char url[300];
        snprintf(url, sizeof url, "s3://%s/%s", itest_env("DSC_TEST_BUCKET"),
                 l->keys[i]);
        assert_string_equal(o.url, url);
    }
}

/* One listing, saved and loaded back (from a path and from s3://): the
 * same keys, sizes and ETags as dsc_list gives. */
static void test_round_trip(void **state)
{
    (void)state;
    dsc_ctx *ctx = fresh_ctx("snap-rt");
    static listing l;
    assert_int_equal(dsc_list(ctx, epoch_url, on_listed, &l), 48);
    dsc_stats before = stats_of(ctx);
    dsc_snapshot *s;
    assert_int_equal(dsc_snapshot_list(ctx, epoch_url, &s), 0);
    assert_int_equal(stats_of(ctx).s3_lists - before.s3_lists, 1);
    assert_same_as_listing(s, &l);
    dsc_snapshot_summary sum;
    assert_int_equal(dsc_snapshot_summarize(s, &sum, sizeof sum), 0);
    assert_int_equal(sum.objects, 48);
    assert_int_equal(sum.bytes, 48 * 65536);
    assert_string_equal(sum.url, epoch_url);
    assert_string_equal(sum.prefix, "epoch/");
    assert_int_equal(sum.format, 1);
    assert_true(sum.file_bytes < 48 * (64 + 16) + 256);
    assert_true(sum.created_ms > 1700000000000LL);
    assert_int_equal(dsc_snapshot_find(s, "epoch/obj-07"), 7);
    assert_int_equal(dsc_snapshot_find(s, "epoch/obj-99"), DSC_ENOTFOUND);

    const char *path = state_path("epoch.dsnap");
    assert_int_equal(dsc_snapshot_save(s, path), 0);
    dsc_snapshot *back;
    assert_int_equal(dsc_snapshot_load(NULL, path, &back), 0);
    assert_same_as_listing(back, &l);
    dsc_snapshot_delta d;
    assert_int_equal(dsc_snapshot_diff(s, back, &d), 0);
    assert_int_equal(d.same, 48);
    assert_int_equal(d.changed + d.added + d.deleted, 0);
    /* Saving over an existing file replaces it whole. */
    assert_int_equal(dsc_snapshot_save(back, path), 0);
    dsc_snapshot_free(back);

    /* One shared file for every rank: load it from S3. */
    char args[700];
    snprintf(args, sizeof args, "snapfiles/epoch.dsnap %s", path);
    s3put("putfile", args);
    char url[300];
    snprintf(url, sizeof url, "s3://%s/snapfiles/epoch.dsnap",
             itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_snapshot_load(NULL, url, &back), DSC_EINVAL);
    assert_int_equal(dsc_snapshot_load(ctx, url, &back), 0);
    assert_same_as_listing(back, &l);
    dsc_snapshot_free(back);
    dsc_snapshot_free(s);
    dsc_snapshot_free(NULL);
    dsc_ctx_close(ctx);
}

/* Open and read every object, prefetch them and plan them: not one HEAD
 * or LIST, by our counters and by s3rver's log. */
static void test_no_head_no_list(void **state)
{
    (void)state;
    dsc_snapshot *s = list_snap(epoch_url);
    const fixture *objs[48];
    char name[32];
    for (int i = 0; i < 48; i++) {
        snprintf(name, sizeof name, "epoch/obj-%02d", i);
        objs[i] = fix(name);
    }
    server_meta m0 = server_meta_now();

    /* Reads: the metadata TTL is 0, so without the snapshot every open
     * would HEAD. */
    dsc_ctx *ctx = ctx_on(itest_env("DSC_TEST_ENDPOINT"), fresh_dir("snap-read"), 0);
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), 0);
    for (int i = 0; i < 48; i++)
        read_verify(ctx, objs[i], 65536);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.s3_heads, 0);
    assert_int_equal(st.s3_lists, 0);
    assert_int_equal(st.s3_gets, 48);
    assert_int_equal(st.meta_hits, 0);
    dsc_ctx_close(ctx);

    /* Prefetch by URL: one GET an object, no HEAD. */
    ctx = fresh_ctx("snap-pf");
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), 0);
    for (int i = 0; i < 48; i++)
        assert_int_equal(dsc_prefetch_url(ctx, objs[i]->url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    st = stats_of(ctx);
    assert_int_equal(st.prefetch_errors, 0);
    assert_int_equal(st.s3_heads, 0);
    assert_int_equal(st.s3_lists, 0);
    assert_int_equal(st.s3_gets, 48);
    dsc_ctx_close(ctx);

    /* A plan of the epoch. */
    ctx = fresh_ctx("snap-plan");
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), 0);
    dsc_plan_item items[48];
    for (int i = 0; i < 48; i++)
        items[i] = (dsc_plan_item){ objs[47 - i]->url, 0, 0 };
    dsc_plan *p;
    assert_int_equal(dsc_plan_start(ctx, items, 48, &p), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    for (int i = 0; i < 48; i++)
        read_verify(ctx, objs[47 - i], 65536);
    st = stats_of(ctx);
    assert_int_equal(st.s3_heads, 0);
    assert_int_equal(st.s3_lists, 0);
    assert_int_equal(st.misses, 0);
    assert_int_equal(st.s3_gets, 48);
    dsc_plan_stop(p);
    dsc_ctx_close(ctx);

    server_meta m1 = server_meta_now();
    assert_int_equal(m1.lists, m0.lists);
    assert_int_equal(m1.heads, m0.heads);
    /* The log does show a HEAD: the same open without the snapshot. */
    ctx = ctx_on(itest_env("DSC_TEST_ENDPOINT"), "", 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, objs[5]->url, &f), 0);
    dsc_close(f);
    dsc_ctx_close(ctx);
    assert_int_equal(server_meta_now().heads, m1.heads + 1);
    dsc_snapshot_free(s);
}

/* Overwritten after the snapshot: cached chunks are the pinned version
 * and are served; an uncached one fails with DSC_ECHANGED naming the
 * object; no call returns bytes of the new version. */
static void test_overwrite(void **state)
{
    (void)state;
    s3put("put", "snapchg/obj-ow 200000 1");
    s3put("put", "snapchg/obj-keep 1000 5");
    char prefix[300], url[320];
    snprintf(prefix, sizeof prefix, "s3://%s/snapchg/", itest_env("DSC_TEST_BUCKET"));
    snprintf(url, sizeof url, "%sobj-ow", prefix);
    dsc_snapshot *s = list_snap(prefix);
    assert_int_equal(dsc_snapshot_count(s), 2);
    dsc_ctx *ctx = fresh_ctx("snap-ow");
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), 0);
    dsc_snapshot_free(s);                   /* the context keeps its own */
    dsc_file *f;
    static unsigned char buf[200000];
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 1000, 0), 1000);   /* chunk 0 cached */
    dsc_close(f);

    s3put("put", "snapchg/obj-ow 200000 2");
    assert_int_equal(dsc_open(ctx, url, &f), 0);          /* no HEAD: pinned */
    memset(buf, 0, sizeof buf);
    assert_int_equal(dsc_pread(f, buf, 1000, 0), 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf[i], 1);                      /* the pinned bytes */
    assert_int_equal(dsc_pread(f, buf, 1000, 150000), DSC_ECHANGED);
    char want[400];
    snprintf(want, sizeof want, "%s changed since the snapshot", url);
    if (!strstr(dsc_errmsg(), want))
        fail_msg("errmsg '%s' lacks '%s'", dsc_errmsg(), want);
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 0), DSC_ECHANGED);
    dsc_close(f);
    /* Still the snapshot's: a new open does not take the new version. */
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 10, 100000), DSC_ECHANGED);
    dsc_close(f);
    assert_int_equal(stats_of(ctx).s3_heads, 0);
    /* Without a snapshot the object reads in its new version. */
    assert_int_equal(dsc_ctx_use_snapshot(ctx, NULL), 0);
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 10, 100000), 10);
    assert_int_equal(buf[0], 2);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

/* A key under the snapshot's prefix that it does not list is not found,
 * with no request; keys elsewhere open as usual. */
static void test_not_in_snapshot(void **state)
{
    (void)state;
    dsc_snapshot *s = list_snap(epoch_url);
    dsc_ctx *ctx = fresh_ctx("snap-nf");
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), 0);
    char url[300];
    snprintf(url, sizeof url, "%sobj-99", epoch_url);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, url, &f), DSC_ENOTFOUND);
    assert_non_null(strstr(dsc_errmsg(), "not in the snapshot"));
    assert_non_null(strstr(dsc_errmsg(), "obj-99"));
    assert_int_equal(dsc_prefetch_url(ctx, url), 0);
    assert_int_equal(dsc_prefetch_wait(ctx, 30000), 0);
    dsc_stats st = stats_of(ctx);
    assert_int_equal(st.prefetch_errors, 1);
    assert_int_equal(st.s3_heads + st.s3_gets, 0);
    /* Outside the prefix: the normal path (a HEAD). */
    assert_int_equal(dsc_open(ctx, fix("one-byte")->url, &f), 0);
    dsc_close(f);
    assert_int_equal(stats_of(ctx).s3_heads, 1);
    dsc_ctx_close(ctx);
    dsc_snapshot_free(s);
}

/* Two endpoints may have buckets of the same name: a snapshot listed from
 * one is refused by a context of the other, naming both. */
static void test_other_origin(void **state)
{
    (void)state;
    dsc_snapshot *s = list_snap(epoch_url);
    char other[200];
    const char *ep = itest_env("DSC_TEST_ENDPOINT");
    const char *port = strrchr(ep, ':');
    snprintf(other, sizeof other, "http://localhost%s", port);
    dsc_ctx *ctx = ctx_on(other, fresh_dir("snap-origin"), 60000);
    assert_int_equal(dsc_ctx_use_snapshot(ctx, s), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), "127.0.0.1"));
    assert_non_null(strstr(dsc_errmsg(), "localhost"));
    /* Nor are two such snapshots compared key by key. */
    dsc_snapshot *there;
    assert_int_equal(dsc_snapshot_list(ctx, epoch_url, &there), 0);
    dsc_snapshot_delta d;
    assert_int_equal(dsc_snapshot_diff(s, there, &d), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), "different endpoints"));
    assert_int_equal(dsc_ctx_use_snapshot(ctx, there), 0);
    dsc_snapshot_free(there);
    dsc_ctx_close(ctx);
    /* The same through the config. */
    const char *path = state_path("origin.dsnap");
    assert_int_equal(dsc_snapshot_save(s, path), 0);
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = other;
    cfg.cache_dir = "";
    cfg.snapshot = path;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), DSC_EINVAL);
    assert_null(ctx);
    dsc_snapshot_free(s);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void expect_bad_file(const char *path, const char *why)
{
    dsc_snapshot *s = (dsc_snapshot *)1;
    assert_int_equal(dsc_snapshot_load(NULL, path, &s), DSC_EINVAL);
    assert_null(s);
    if (!strstr(dsc_errmsg(), path) || !strstr(dsc_errmsg(), why))
        fail_msg("errmsg '%s': wanted the file and '%s'", dsc_errmsg(), why);
}

/* Cut, foreign, newer, flipped, retargeted: a clear DSC_EINVAL naming
 * the file, never a crash. */
static void test_bad_files(void **state)
{
    (void)state;
    dsc_snapshot *s = list_snap(epoch_url);
    const char *good = state_path("good.dsnap"), *bad = state_path("bad.dsnap");
    assert_int_equal(dsc_snapshot_save(s, good), 0);
    dsc_snapshot_free(s);
    size_t len;
    {
        FILE *f = fopen(good, "rb");
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fclose(f);
    }
    unsigned char *img = itest_slurp(good, len);
    const size_t cuts[] = { 0, 1, 8, 63, 64, 100, len / 2, len - 9, len - 1 };
    for (size_t i = 0; i < LEN(cuts); i++) {
        write_file(bad, img, cuts[i]);
        expect_bad_file(bad, "truncated");
    }
    img[0] = 'Z';
    write_file(bad, img, len);
    expect_bad_file(bad, "not a libdsc snapshot");
    img[0] = 'D';
    img[8] = 99;
    write_file(bad, img, len);
    expect_bad_file(bad, "format version 99");
    img[8] = 1;
    img[len / 2] ^= 0x40;
    write_file(bad, img, len);
    expect_bad_file(bad, "checksum mismatch");
    img[len / 2] ^= 0x40;
    /* Another bucket of the same length written into the header. */
    unsigned char *b = memmem(img, len, itest_env("DSC_TEST_BUCKET"),
                              strlen(itest_env("DSC_TEST_BUCKET")));
    assert_non_null(b);
    b[0] = 'x';
    write_file(bad, img, len);
    expect_bad_file(bad, "checksum mismatch");
    /* Not there at all, not a file. */
    dsc_snapshot *none;
    assert_int_equal(dsc_snapshot_load(NULL, state_path("none.dsnap"), &none), DSC_EIO);
    assert_non_null(strstr(dsc_errmsg(), "none.dsnap"));
    assert_int_equal(dsc_snapshot_load(NULL, itest_env("DSC_TEST_STATE"), &none), DSC_EINVAL);
    /* A bad file in the config fails the open. */
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = "";
    cfg.snapshot = bad;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), bad));
    free(img);
}

/* config.snapshot (a path or an s3:// URL), else DSC_SNAPSHOT; an older
 * caller's version-2 config still opens. */
static void test_config(void **state)
{
    (void)state;
    dsc_snapshot *s = list_snap(epoch_url);
    const char *path = state_path("cfg.dsnap");
    assert_int_equal(dsc_snapshot_save(s, path), 0);
    dsc_snapshot_free(s);
    char args[700];
    snprintf(args, sizeof args, "snapfiles/cfg.dsnap %s", path);
    s3put("putfile", args);
    char s3url[300];
    snprintf(s3url, sizeof s3url, "s3://%s/snapfiles/cfg.dsnap",
             itest_env("DSC_TEST_BUCKET"));
    const char *srcs[] = { path, s3url };
    for (int i = 0; i < 3; i++) {
        dsc_config cfg;
        dsc_config_init(&cfg, DSC_CONFIG_VERSION);
        cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
        cfg.cache_dir = fresh_dir("snap-cfg");
        cfg.meta_ttl_ms = 0;
        if (i < 2)
            cfg.snapshot = srcs[i];
        else
            setenv("DSC_SNAPSHOT", path, 1);
        dsc_ctx *ctx;
        assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
        dsc_stats before = stats_of(ctx);   /* loading from s3:// costs a HEAD */
        read_verify(ctx, fix("epoch/obj-03"), 65536);
        dsc_stats after = stats_of(ctx);
        assert_int_equal(after.s3_heads, before.s3_heads);
        assert_int_equal(after.s3_lists, 0);
        dsc_ctx_close(ctx);
    }
    /* DSC_SNAPSHOT reaches a version-2 caller; "" turns it off. */
    dsc_config old;
    dsc_config_init(&old, 2);
    old.endpoint = itest_env("DSC_TEST_ENDPOINT");
    old.cache_dir = "";
    old.meta_ttl_ms = 0;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&old, &ctx), 0);
    read_verify(ctx, fix("epoch/obj-04"), 65536);
    assert_int_equal(stats_of(ctx).s3_heads, 0);
    dsc_ctx_close(ctx);
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = "";
    cfg.meta_ttl_ms = 0;
    cfg.snapshot = "";
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    read_verify(ctx, fix("epoch/obj-04"), 65536);
    assert_int_equal(stats_of(ctx).s3_heads, 1);
    dsc_ctx_close(ctx);
    unsetenv("DSC_SNAPSHOT");
}

/* Refresh: a new listing compared with the old one, key by key. */
typedef struct seen {
    int changed, deleted, added;
    char last[128];
} seen;

static int on_diff(void *arg, int what, const dsc_object_info *a,
                   const dsc_object_info *b)
{
    seen *s = arg;
    const dsc_object_info *o = b ? b : a;
    snprintf(s->last, sizeof s->last, "%s", o->key);
    if (what == DSC_DIFF_CHANGED)
        s->changed += a && b && strcmp(a->key, b->key) == 0;
    else if (what == DSC_DIFF_DELETED)
        s->deleted += a && !b;
    else if (what == DSC_DIFF_ADDED)
        s->added += b && !a;
    return 0;
}

static void test_diff(void **state)
{
    (void)state;
    s3put("put", "snapdiff/a 10 1");
    s3put("put", "snapdiff/b 10 1");
    s3put("put", "snapdiff/c 10 1");
    char prefix[300];
    snprintf(prefix, sizeof prefix, "s3://%s/snapdiff/", itest_env("DSC_TEST_BUCKET"));
    dsc_snapshot *old = list_snap(prefix);
    s3put("put", "snapdiff/b 10 2");
    s3put("delete", "snapdiff/c");
    s3put("put", "snapdiff/d 10 1");
    dsc_snapshot *now = list_snap(prefix);
    dsc_snapshot_delta d;
    seen s = { 0 };
    assert_int_equal(dsc_snapshot_diff_each(old, now, on_diff, &s, &d), 0);
    assert_int_equal(d.changed, 1);
    assert_int_equal(d.deleted, 1);
    assert_int_equal(d.added, 1);
    assert_int_equal(d.same, 1);
    assert_int_equal(s.changed + s.deleted + s.added, 3);
    assert_string_equal(s.last, "snapdiff/d");
    dsc_snapshot *epoch = list_snap(epoch_url);
    assert_int_equal(dsc_snapshot_diff(old, epoch, &d), 0);   /* same bucket */
    assert_int_equal(d.deleted, 3);
    assert_int_equal(d.added, 48);
    dsc_snapshot_free(epoch);
    dsc_snapshot_free(old);
    dsc_snapshot_free(now);
}

/* Snapshots swapped while threads open objects and prefetch runs: every
 * open succeeds from one snapshot or the other (the sanitizer runs
 * check that a replaced snapshot lives until its last reader is done). */
typedef struct swap_arg {
    dsc_ctx *ctx;
    int stop, opens, errors;
} swap_arg;

static void *opener(void *p)
{
    swap_arg *a = p;
    char url[300];
    for (int i = 0; !__atomic_load_n(&a->stop, __ATOMIC_RELAXED); i++) {
        snprintf(url, sizeof url, "%sobj-%02d", epoch_url, i % 48);
        dsc_file *f;
        if (dsc_open(a->ctx, url, &f) || dsc_size(f) != 65536)
            __atomic_fetch_add(&a->errors, 1, __ATOMIC_RELAXED);
        else
            dsc_close(f);
        __atomic_fetch_add(&a->opens, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_swap_while_reading(void **state)
{
    (void)state;
    dsc_snapshot *s[2] = { list_snap(epoch_url), list_snap(epoch_url) };
    swap_arg a = { fresh_ctx("snap-swap"), 0, 0, 0 };
    const char *path = state_path("swap.dsnap");
    assert_int_equal(dsc_snapshot_save(s[0], path), 0);
    assert_int_equal(dsc_ctx_use_snapshot(a.ctx, s[0]), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, opener, &a), 0);
    /* At least 300 rounds, and on until the openers have really run (on a
     * busy machine they may not have started before 300 were done). */
    int i;
    for (i = 0; i < 300 || (__atomic_load_n(&a.opens, __ATOMIC_RELAXED) < 100 &&
                            i < 1000000); i++) {
        dsc_snapshot *fresh;
        assert_int_equal(dsc_snapshot_load(NULL, path, &fresh), 0);
        assert_int_equal(dsc_ctx_use_snapshot(a.ctx, fresh), 0);
        dsc_snapshot_free(fresh);            /* the context's is the last */
        if (i % 50 == 0)
            dsc_prefetch_url(a.ctx, fix("epoch/obj-01")->url);
        assert_int_equal(dsc_ctx_use_snapshot(a.ctx, s[i % 2]), 0);
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < 3; k++)
        pthread_join(t[k], NULL);
    printf("    %d opens during %d swaps, %d errors\n", a.opens, 2 * i, a.errors);
    assert_int_equal(a.errors, 0);
    assert_true(a.opens > 0);
    assert_int_equal(dsc_prefetch_wait(a.ctx, 30000), 0);
    assert_int_equal(stats_of(a.ctx).s3_heads, 0);
    dsc_ctx_close(a.ctx);
    dsc_snapshot_free(s[0]);
    dsc_snapshot_free(s[1]);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sources an attacker or a slip of the hand can point a load at: a FIFO
 * (no hang), a huge file that is no snapshot (refused from its header,
 * not read into memory), and a newer snapshot stored under the prefix the
 * context is pinned to (read as S3 has it, not through the pin). A save
 * over a private file keeps it private. */
static void test_hostile_sources(void **state)
{
    (void)state;
    dsc_snapshot *s;
    const char *fifo = state_path("snap.fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int64_t t0 = mono_ms();
    assert_int_equal(dsc_snapshot_load(NULL, fifo, &s), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), "not a regular file"));
    assert_true(mono_ms() - t0 < 2000);
    unlink(fifo);

    const char *huge = state_path("huge.dsnap");
    int fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)64 << 30), 0);   /* sparse 64 GiB */
    close(fd);
    t0 = mono_ms();
    assert_int_equal(dsc_snapshot_load(NULL, huge, &s), DSC_EINVAL);
    assert_non_null(strstr(dsc_errmsg(), "bad magic"));
    assert_true(mono_ms() - t0 < 2000);
    unlink(huge);

    /* A context pinned to the snapfiles/ prefix loads a snapshot file
     * that appeared there later. */
    dsc_ctx *ctx = fresh_ctx("snap-hostile");
    dsc_snapshot *epoch = list_snap(epoch_url);
    const char *path = state_path("private.dsnap");
    assert_int_equal(dsc_snapshot_save(epoch, path), 0);
    char args[700], url[300], dir_url[300];
    snprintf(args, sizeof args, "snappinned/first.dsnap %s", path);
    s3put("putfile", args);
    snprintf(dir_url, sizeof dir_url, "s3://%s/snappinned/",
             itest_env("DSC_TEST_BUCKET"));
    dsc_snapshot *pin = list_snap(dir_url);
    assert_int_equal(dsc_ctx_use_snapshot(ctx, pin), 0);
    snprintf(args, sizeof args, "snappinned/next.dsnap %s", path);
    s3put("putfile", args);
    snprintf(url, sizeof url, "s3://%s/snappinned/next.dsnap",
             itest_env("DSC_TEST_BUCKET"));
    if (dsc_snapshot_load(ctx, url, &s))
        fail_msg("load through a pinned context: %s", dsc_errmsg());
    assert_int_equal(dsc_snapshot_count(s), 48);
    dsc_snapshot_free(s);

    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(dsc_snapshot_save(epoch, path), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    dsc_snapshot_free(pin);
    dsc_snapshot_free(epoch);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 128);
    snprintf(epoch_url, sizeof epoch_url, "s3://%s/epoch/", itest_env("DSC_TEST_BUCKET"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_no_head_no_list),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_not_in_snapshot),
        cmocka_unit_test(test_other_origin),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_swap_while_reading),
        cmocka_unit_test(test_hostile_sources),
    };
    return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
