/* Reads through libdsc against a real S3 server (s3rver), every byte
 * compared with what boto3 uploaded. */
#include <pthread.h>
#include <dirent.h>
#include <unistd.h>
#include "itest.h"

static fixture fx[64];
static int nfx;

static void check_range(dsc_file *f, const unsigned char *want, uint64_t size,
                        uint64_t off, size_t len)
{
    unsigned char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    ssize_t n = dsc_pread(f, buf, len, off);
    size_t expect = off >= size ? 0 : (size - off < len ? size - off : len);
    if (n < 0)
        fail_msg("pread off=%llu len=%zu: %s: %s", (unsigned long long)off,
                 len, dsc_strerror((int)n), dsc_errmsg());
    assert_int_equal((size_t)n, expect);
    if (expect)
        assert_memory_equal(buf, want + off, expect);
    free(buf);
}

/* Every fixture read whole with dsc_read in odd-sized steps. */
static void test_whole_objects(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    for (int i = 0; i < nfx; i++) {
        unsigned char *want = itest_slurp(fx[i].path, fx[i].size);
        dsc_file *f;
        int rc = dsc_open(ctx, fx[i].url, &f);
        if (rc)
            fail_msg("open %s: %s: %s", fx[i].url, dsc_strerror(rc), dsc_errmsg());
        assert_int_equal(dsc_size(f), (int64_t)fx[i].size);
        assert_non_null(dsc_etag(f));
        assert_true(dsc_etag(f)[0] == '"');
        size_t step = 3 * 1024 * 1024 + 17;
        unsigned char *got = malloc(fx[i].size + 1);
        uint64_t pos = 0;
        for (;;) {
            ssize_t n = dsc_read(f, got + pos, step);
            assert_true(n >= 0);
            if (n == 0)
                break;
            pos += (uint64_t)n;
            assert_true(pos <= fx[i].size);
        }
        assert_int_equal(pos, fx[i].size);
        if (pos)
            assert_memory_equal(got, want, pos);
        free(got);
        free(want);
        dsc_close(f);
    }
    dsc_ctx_close(ctx);
}

static void test_edge_ranges(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    const char *names[] = { "five-mib-plus-one", "one-byte", "empty" };
    for (size_t k = 0; k < 3; k++) {
        const fixture *x = itest_find(fx, nfx, names[k]);
        unsigned char *want = itest_slurp(x->path, x->size);
        dsc_file *f;
        assert_int_equal(dsc_open(ctx, x->url, &f), 0);
        uint64_t s = x->size;
        check_range(f, want, s, 0, 1);
        check_range(f, want, s, 0, 0);
        if (s > 1) {
            check_range(f, want, s, s - 1, 1);          /* last byte */
            check_range(f, want, s, s - 2, 10);         /* crosses the end */
            check_range(f, want, s, 4194303, 2);        /* chunk-ish edges */
            check_range(f, want, s, 4194304, 4096);
            check_range(f, want, s, 1, s - 1);
        }
        check_range(f, want, s, s, 10);                 /* at the end */
        check_range(f, want, s, s + 12345, 10);         /* past the end */
        check_range(f, want, s, UINT64_MAX - 5, 10);    /* far past */
        free(want);
        dsc_close(f);
    }
    dsc_ctx_close(ctx);
}

/* dsc_pread_url: the bytes and size of open + pread + close, with or
 * without a cache, in one call. */
static void pread_url_in(dsc_ctx *ctx)
{
    const char *names[] = { "five-mib-plus-one", "one-byte", "empty" };
    for (size_t k = 0; k < 3; k++) {
        const fixture *x = itest_find(fx, nfx, names[k]);
        unsigned char *want = itest_slurp(x->path, x->size);
        size_t cap = (size_t)x->size + 10;
        unsigned char *buf = malloc(cap);
        assert_non_null(buf);
        int64_t size = -7;
        assert_int_equal(dsc_pread_url(ctx, x->url, buf, cap, 0, &size),
                         (ssize_t)x->size);
        assert_int_equal(size, (int64_t)x->size);
        assert_memory_equal(buf, want, x->size);
        size = -7;
        assert_int_equal(dsc_pread_url(ctx, x->url, NULL, 0, 0, &size), 0);
        assert_int_equal(size, (int64_t)x->size);
        if (x->size > 4194310) {
            assert_int_equal(dsc_pread_url(ctx, x->url, buf, 9, 4194300, NULL), 9);
            assert_memory_equal(buf, want + 4194300, 9);   /* two chunks */
            assert_int_equal(dsc_pread_url(ctx, x->url, buf, 100, x->size - 3,
                                           &size), 3);
            assert_memory_equal(buf, want + x->size - 3, 3);
        }
        assert_int_equal(dsc_pread_url(ctx, x->url, buf, 10, x->size + 5, &size), 0);
        free(buf);
        free(want);
    }
    char url[256], buf[16];
    int64_t size = 5;
    snprintf(url, sizeof url, "s3://%s/no/such/key", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_pread_url(ctx, url, buf, sizeof buf, 0, &size),
                     DSC_ENOTFOUND);
    assert_int_equal(size, -1);
    assert_non_null(strstr(dsc_errmsg(), "no/such/key"));
    assert_int_equal(dsc_pread_url(ctx, "s3://b", buf, sizeof buf, 0, &size),
                     DSC_EURL);
    assert_int_equal(dsc_pread_url(ctx, NULL, buf, 1, 0, NULL), DSC_EINVAL);
    assert_int_equal(dsc_pread_url(NULL, url, buf, 1, 0, NULL), DSC_EINVAL);
    assert_int_equal(dsc_pread_url(ctx, url, NULL, 1, 0, NULL), DSC_EINVAL);
}

static void test_pread_url(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    pread_url_in(ctx);
    dsc_ctx_close(ctx);

    char dir[] = "/tmp/dsc-test-preadurl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = dir;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    pread_url_in(ctx);              /* fetched */
    pread_url_in(ctx);              /* from the cache */
    dsc_stats st;
    assert_int_equal(dsc_stats_get(ctx, &st, sizeof st), 0);
    assert_true(st.hits > 0);
    dsc_ctx_close(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_seek(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    const fixture *x = itest_find(fx, nfx, "five-mib-plus-one");
    unsigned char *want = itest_slurp(x->path, x->size);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned char buf[100];
    assert_int_equal(dsc_seek(f, -10, SEEK_END), (int64_t)x->size - 10);
    assert_int_equal(dsc_read(f, buf, sizeof buf), 10);
    assert_memory_equal(buf, want + x->size - 10, 10);
    assert_int_equal(dsc_read(f, buf, sizeof buf), 0);
    assert_int_equal(dsc_seek(f, 1000, SEEK_SET), 1000);
    assert_int_equal(dsc_seek(f, 24, SEEK_CUR), 1024);
    assert_int_equal(dsc_read(f, buf, 50), 50);
    assert_memory_equal(buf, want + 1024, 50);
    assert_int_equal(dsc_seek(f, -2000, SEEK_CUR), DSC_EINVAL);
    assert_int_equal(dsc_seek(f, 0, 42), DSC_EINVAL);
    assert_int_equal(dsc_seek(f, 0, SEEK_CUR), 1074);
    free(want);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

static void test_missing_key_and_bucket(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    dsc_file *f = (dsc_file *)1;
    char url[256];
    snprintf(url, sizeof url, "s3://%s/no/such/key", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_open(ctx, url, &f), DSC_ENOTFOUND);
    assert_null(f);
    assert_non_null(strstr(dsc_errmsg(), "no/such/key"));
    assert_non_null(strstr(dsc_errmsg(), "404"));
    assert_int_equal(dsc_open(ctx, "s3://no-such-bucket-dsc/k", &f),
                     DSC_ENOTFOUND);
    assert_int_equal(dsc_list(ctx, "s3://no-such-bucket-dsc/", NULL, NULL),
                     DSC_ENOTFOUND);
    assert_non_null(strstr(dsc_errmsg(), "NoSuchBucket"));
    dsc_ctx_close(ctx);
}

static void test_malformed_urls(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    dsc_file *f;
    const char *bad[] = { "", "s3:/b/k", "http://b/k", "s3://", "s3:///k",
                          "s3://b", "s3://bucket/", "s3://bad bucket/k",
                          "s3://b/\x01" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(dsc_open(ctx, bad[i], &f), DSC_EURL);
        assert_true(strlen(dsc_errmsg()) > 0);
    }
    assert_int_equal(dsc_open(ctx, NULL, &f), DSC_EURL);
    assert_int_equal(dsc_open(NULL, "s3://b/k", &f), DSC_EINVAL);
    dsc_ctx_close(ctx);
}

/* s3rver refuses an unknown access key id (it does not check secrets). */
static void test_wrong_credentials(void **state)
{
    (void)state;
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = "";
    cfg.access_key_id = "AKIANOTAKNOWNKEY0000";
    cfg.secret_access_key = "wrong";
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    const fixture *x = itest_find(fx, nfx, "one-byte");
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), DSC_EACCESS);
    assert_non_null(strstr(dsc_errmsg(), "403"));
    char url[256];
    snprintf(url, sizeof url, "s3://%s/many/", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_list(ctx, url, NULL, NULL), DSC_EACCESS);
    assert_non_null(strstr(dsc_errmsg(), "InvalidAccessKeyId"));
    dsc_ctx_close(ctx);

    /* An access key without its secret is a configuration error. */
    cfg.secret_access_key = NULL;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), DSC_ECREDS);
}

/* The object changed after open: reads must fail, not mix versions. */
static void test_overwrite_detected(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    char url[256], cmd[1024];
    snprintf(url, sizeof url, "s3://%s/changing", itest_env("DSC_TEST_BUCKET"));
    snprintf(cmd, sizeof cmd, "%s put %s changing 1000 1",
             itest_env("DSC_TEST_PUT"), itest_env("DSC_TEST_ENDPOINT"));
    assert_int_equal(system(cmd), 0);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    char buf[1000];
    assert_int_equal(dsc_pread(f, buf, 100, 0), 100);
    snprintf(cmd, sizeof cmd, "%s put %s changing 1000 2",
             itest_env("DSC_TEST_PUT"), itest_env("DSC_TEST_ENDPOINT"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(dsc_pread(f, buf, 100, 0), DSC_ECHANGED);
    assert_non_null(strstr(dsc_errmsg(), "changed"));
    dsc_close(f);
    /* A fresh open sees the new version. */
    assert_int_equal(dsc_open(ctx, url, &f), 0);
    assert_int_equal(dsc_pread(f, buf, 1000, 0), 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal((unsigned char)buf[i], 2);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

typedef struct list_acc {
    int n;
    char last[1100];
    int sorted;
    int stop_at;
} list_acc;

static int on_obj(void *arg, const dsc_object_info *o)
{
    list_acc *a = arg;
    if (a->n && strcmp(a->last, o->key) >= 0)
        a->sorted = 0;
    snprintf(a->last, sizeof a->last, "%s", o->key);
    a->n++;
    if (strncmp(o->url, "s3://", 5) || !strstr(o->url, o->key) || o->size == 0 ||
        o->etag[0] != '"')
        a->sorted = 0;
    return a->stop_at && a->n == a->stop_at;
}

static void test_list_all_pages(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    char url[256];
    snprintf(url, sizeof url, "s3://%s/many/", itest_env("DSC_TEST_BUCKET"));
    list_acc a = { .sorted = 1 };
    int64_t n = dsc_list(ctx, url, on_obj, &a);
    if (n < 0)
        fail_msg("list: %s: %s", dsc_strerror((int)n), dsc_errmsg());
    assert_int_equal(n, 1203);
    assert_int_equal(a.n, 1203);
    assert_true(a.sorted);
    assert_string_equal(a.last, "many/obj-01202");

    /* A prefix with unicode and spaces goes through signing and the query. */
    snprintf(url, sizeof url, "s3://%s/awkward/ünïcødé/", itest_env("DSC_TEST_BUCKET"));
    list_acc b = { .sorted = 1 };
    assert_int_equal(dsc_list(ctx, url, on_obj, &b), 1);

    list_acc c = { .sorted = 1, .stop_at = 5 };
    snprintf(url, sizeof url, "s3://%s/many/", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_list(ctx, url, on_obj, &c), DSC_ECANCELED);
    assert_int_equal(c.n, 5);

    snprintf(url, sizeof url, "s3://%s/nothing-here/", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_list(ctx, url, NULL, NULL), 0);
    dsc_ctx_close(ctx);
}

/* Virtual-host addressing: bucket in the Host header (s3rver answers
 * bucket.s3.localhost when started with --service-endpoint localhost). */
static void test_vhost_addressing(void **state)
{
    (void)state;
    const char *ep = itest_env("DSC_TEST_ENDPOINT");
    const char *port = strrchr(ep, ':');
    char vep[128];
    snprintf(vep, sizeof vep, "http://s3.localhost%s", port);
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = vep;
    cfg.cache_dir = "";
    cfg.addressing = DSC_ADDRESSING_VHOST;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    const fixture *x = itest_find(fx, nfx, "😀.txt");
    unsigned char *want = itest_slurp(x->path, x->size);
    dsc_file *f;
    int rc = dsc_open(ctx, x->url, &f);
    if (rc)
        fail_msg("vhost open: %s", dsc_errmsg());
    check_range(f, want, x->size, 0, x->size);
    dsc_close(f);
    char url[256];
    snprintf(url, sizeof url, "s3://%s/many/obj-000", itest_env("DSC_TEST_BUCKET"));
    assert_int_equal(dsc_list(ctx, url, NULL, NULL), 100); /* obj-00000..00099 */
    free(want);
    dsc_ctx_close(ctx);
}

/* Sockets this process holds, by inode, from /proc/self/fd. */
static int socket_inodes(unsigned long *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        char p[300], link[64];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t l = readlink(p, link, sizeof link - 1);
        if (l <= 0)
            continue;
        link[l] = 0;
        unsigned long ino;
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            out[n++] = ino;
    }
    if (d)
        closedir(d);
    return n;
}

/* 200 sequential requests ride the one connection the first one opened. */
static void test_connection_reuse(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    const fixture *x = itest_find(fx, nfx, "five-mib-plus-one");
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    unsigned long before[64], after[64];
    int nb = socket_inodes(before, 64);
    char buf[4096];
    for (int i = 0; i < 200; i++)
        assert_int_equal(dsc_pread(f, buf, sizeof buf, (uint64_t)i * 20000), 4096);
    int na = socket_inodes(after, 64);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++)
        assert_int_equal(after[i], before[i]);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

typedef struct thr_arg {
    dsc_file *f;
    const unsigned char *want;
    uint64_t size;
    unsigned seed;
    int bad;
} thr_arg;

static void *reader(void *p)
{
    thr_arg *a = p;
    unsigned char *buf = malloc(1 << 20);
    for (int i = 0; i < 40 && buf; i++) {
        uint64_t off = (uint64_t)rand_r(&a->seed) % a->size;
        size_t len = 1 + (size_t)rand_r(&a->seed) % (1 << 20);
        ssize_t n = dsc_pread(a->f, buf, len, off);
        size_t expect = a->size - off < len ? a->size - off : len;
        if (n != (ssize_t)expect || memcmp(buf, a->want + off, expect))
            a->bad++;
    }
    free(buf);
    return NULL;
}

static void test_threads_share_one_file(void **state)
{
    (void)state;
    dsc_ctx *ctx = itest_ctx();
    const fixture *x = itest_find(fx, nfx, "sixty-four-mib");
    unsigned char *want = itest_slurp(x->path, x->size);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, x->url, &f), 0);
    pthread_t t[8];
    thr_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (thr_arg){ f, want, x->size, (unsigned)i * 7919 + 1, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        bad += a[i].bad;
    }
    assert_int_equal(bad, 0);
    free(want);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

int main(void)
{
    nfx = itest_fixtures(fx, 64);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_objects),
        cmocka_unit_test(test_edge_ranges),
        cmocka_unit_test(test_pread_url),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_missing_key_and_bucket),
        cmocka_unit_test(test_malformed_urls),
        cmocka_unit_test(test_wrong_credentials),
        cmocka_unit_test(test_overwrite_detected),
        cmocka_unit_test(test_list_all_pages),
        cmocka_unit_test(test_vhost_addressing),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_threads_share_one_file),
    };
    return cmocka_run_group_tests_name("s3_read", tests, NULL, NULL);
}
