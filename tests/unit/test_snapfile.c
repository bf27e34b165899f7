/* The snapshot file format (lib/api/snapfile.c): round trips, ETag
 * compaction, the size bound per object, every kind of bad file, and the
 * parse time of 10^6 entries (printed; the bound asserted is generous:
 * bench/bench_snapshot.c measures). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xxhash.h>
#include "unittest.h"
#include "api/snapfile.h"

#define MD5A "\"0123456789abcdef0123456789abcdef\""
#define MD5M "\"fedcba9876543210fedcba9876543210-17\""

static dsc_snap_head head(void)
{
    return (dsc_snap_head){ DSC_SNAP_FORMAT, 0, 1700000000123,
                            "http://127.0.0.1:9000/auto", "bkt", "train/" };
}

static dsc_snap_obj obj(const char *key, uint64_t size, const char *etag)
{
    return (dsc_snap_obj){ key, strlen(key), size, etag, strlen(etag),
                           NULL, 0 };
}

static dsc_snap_obj vobj(const char *key, uint64_t size, const char *etag,
                         const char *vid)
{
    dsc_snap_obj o = obj(key, size, etag);
    o.version_id = vid;
    o.version_id_len = vid ? strlen(vid) : 0;
    return o;
}

static void encode_ok(dsc_snap_obj *o, size_t n, dsc_buf *img)
{
    dsc_snap_head h = head();
    int rc = dsc_snap_encode(&h, o, n, img);
    if (rc)
        fail_msg("encode: %s", dsc_errmsg());
}

static void test_round_trip(void **state)
{
    (void)state;
    dsc_snap_obj o[] = {
        obj("train/c", 3, "\"not-md5\""), obj("train/a", 1, MD5A),
        obj("train/b", 1ull << 40, MD5M), obj("train/\xc3\xbc d", 0, "W/\"weak\""),
    };
    dsc_buf img = { 0 };
    encode_ok(o, 4, &img);
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(img.data, img.len, "t.dsnap", &v), 0);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.head.origin, "http://127.0.0.1:9000/auto");
    assert_string_equal(v.head.bucket, "bkt");
    assert_string_equal(v.head.prefix, "train/");
    assert_int_equal(v.head.created_ms, 1700000000123);
    const char *keys[] = { "train/a", "train/b", "train/c", "train/\xc3\xbc d" };
    const char *etags[] = { MD5A, MD5M, "\"not-md5\"", "W/\"weak\"" };
    uint64_t sizes[] = { 1, 1ull << 40, 3, 0 };
    char buf[DSC_SNAP_ETAG_MAX];
    for (int i = 0; i < 4; i++) {
        dsc_snap_rec r;
        dsc_snap_get(&v, (uint64_t)i, &r);
        assert_string_equal(r.key, keys[i]);
        assert_int_equal(r.size, sizes[i]);
        assert_string_equal(dsc_snap_etag(&r, buf), etags[i]);
        assert_int_equal(dsc_snap_find(&v, keys[i], strlen(keys[i])), i);
    }
    assert_int_equal(dsc_snap_find(&v, "train/", 6), -1);
    assert_int_equal(dsc_snap_find(&v, "train/bb", 8), -1);
    assert_int_equal(dsc_snap_find(&v, "zzz", 3), -1);
    dsc_buf_free(&img);
}

/* S3's MD5 ETags take 16 bytes (and a part count); anything else is
 * kept as text, and every form comes back byte for byte. */
static void test_etag_compaction(void **state)
{
    (void)state;
    static const struct { const char *etag; int kind; } cases[] = {
        { MD5A, DSC_SNAP_ETAG_MD5 },
        { MD5M, DSC_SNAP_ETAG_MD5_PARTS },
        { "\"0123456789abcdef0123456789abcdef-1\"", DSC_SNAP_ETAG_MD5_PARTS },
        { "\"0123456789abcdef0123456789abcdef-10000\"", DSC_SNAP_ETAG_MD5_PARTS },
        { "\"0123456789ABCDEF0123456789ABCDEF\"", DSC_SNAP_ETAG_TEXT },
        { "\"0123456789abcdef0123456789abcdef-0\"", DSC_SNAP_ETAG_TEXT },
        { "\"0123456789abcdef0123456789abcdef-01\"", DSC_SNAP_ETAG_TEXT },
        { "\"0123456789abcdef0123456789abcdef-\"", DSC_SNAP_ETAG_TEXT },
        { "W/\"0123456789abcdef0123456789abcdef\"", DSC_SNAP_ETAG_TEXT },
        { "\"0123456789abcdef0123456789abcde\"", DSC_SNAP_ETAG_TEXT },
        { "\"\"", DSC_SNAP_ETAG_TEXT },
    };
    size_t n = DSC_ARRAY_LEN(cases);
    dsc_snap_obj o[DSC_ARRAY_LEN(cases)];
    char keys[DSC_ARRAY_LEN(cases)][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "train/%02zu", i);
        o[i] = obj(keys[i], i, cases[i].etag);
    }
    dsc_buf img = { 0 };
    encode_ok(o, n, &img);
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(img.data, img.len, "t", &v), 0);
    char buf[DSC_SNAP_ETAG_MAX];
    for (size_t i = 0; i < n; i++) {
        dsc_snap_rec r;
        dsc_snap_get(&v, i, &r);
        assert_int_equal(r.etag_kind, cases[i].kind);
        assert_string_equal(dsc_snap_etag(&r, buf), cases[i].etag);
    }
    /* Equal by text, whatever the storage. */
    dsc_snap_rec a, b;
    dsc_snap_get(&v, 0, &a);
    dsc_snap_get(&v, 0, &b);
    assert_true(dsc_snap_etag_eq(&a, &b));
    dsc_snap_get(&v, 1, &b);
    assert_false(dsc_snap_etag_eq(&a, &b));
    dsc_buf_free(&img);
}

/* At most 64 bytes an object plus its key, for S3's ETags. */
static void test_bytes_per_object(void **state)
{
    (void)state;
    enum { N = 1000 };
    static dsc_snap_obj o[N];
    static char keys[N][40];
    size_t key_bytes = 0;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "train/shard-%06d.tar", i);
        o[i] = obj(keys[i], (uint64_t)i * 1000, i % 2 ? MD5A : MD5M);
        key_bytes += strlen(keys[i]);
    }
    dsc_buf img = { 0 };
    encode_ok(o, N, &img);
    size_t fixed = DSC_SNAP_HEADER + 40 + 8;   /* header, strings, sum */
    double per = (double)(img.len - fixed - key_bytes) / N;
    printf("    %.1f bytes per object plus its key\n", per);
    assert_true(per <= 64);
    dsc_buf_free(&img);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    dsc_buf img = { 0 };
    dsc_snap_head h = head();
    dsc_snap_obj dup[] = { obj("train/a", 1, MD5A), obj("train/a", 2, MD5A) };
    assert_int_equal(dsc_snap_encode(&h, dup, 2, &img), DSC_EINVAL);
    assert_errmsg_has("twice");
    dsc_snap_obj out[] = { obj("test/a", 1, MD5A) };
    assert_int_equal(dsc_snap_encode(&h, out, 1, &img), DSC_EINVAL);
    assert_errmsg_has("outside the prefix");
    /* Only entity tags may pin (they go into If-Match as they are): not
     * empty, unquoted, or with CR, LF, spaces or inner quotes. */
    static const char *bad_etags[] = {
        "", "0123456789abcdef0123456789abcdef", "\"a\"\r\nX-Injected: evil",
        "\"a\nb\"", "\"a b\"", "\"a\"b\"", "W/", "\"", "\"\x80\"",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad_etags); i++) {
        dsc_snap_obj be[] = { obj("train/a", 1, bad_etags[i]) };
        assert_int_equal(dsc_snap_encode(&h, be, 1, &img), DSC_EINVAL);
        assert_errmsg_has("entity tag");
    }
    /* Keys an s3:// URL cannot hold. */
    dsc_snap_obj ctl[] = { obj("train/a\nb", 1, MD5A) };
    assert_int_equal(dsc_snap_encode(&h, ctl, 1, &img), DSC_EINVAL);
    dsc_snap_obj empty[] = { obj("", 1, MD5A) };
    h.prefix = "";
    assert_int_equal(dsc_snap_encode(&h, empty, 1, &img), DSC_EINVAL);
    /* No objects is a valid (empty) snapshot. */
    assert_int_equal(dsc_snap_encode(&h, NULL, 0, &img), 0);
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(img.data, img.len, "t", &v), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(dsc_snap_find(&v, "a", 1), -1);
    dsc_buf_free(&img);
}

/* Re-seal an edited image, so the fault reaches the checks behind the
 * checksum. */
static void reseal(unsigned char *p, size_t len)
{
    uint64_t h = XXH3_64bits(p, len - 8);
    for (int i = 0; i < 8; i++)
        p[len - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void expect_bad(const unsigned char *p, size_t len, const char *why)
{
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(p, len, "bad.dsnap", &v), DSC_EINVAL);
    assert_errmsg_has("bad.dsnap");
    assert_errmsg_has(why);
}

static void test_bad_files(void **state)
{
    (void)state;
    dsc_snap_obj o[] = { obj("train/a", 1, MD5A), obj("train/b", 2, "\"x\""),
                         obj("train/c", 3, MD5M) };
    dsc_buf img = { 0 };
    encode_ok(o, 3, &img);
    size_t len = img.len;
    unsigned char *p = malloc(len + 8);
    memcpy(p, img.data, len);
    /* Cut anywhere: never accepted. */
    for (size_t cut = 0; cut < len; cut++) {
        dsc_snap_view v;
        assert_int_equal(dsc_snap_parse(p, cut, "cut.dsnap", &v), DSC_EINVAL);
        assert_errmsg_has("cut.dsnap");
    }
    expect_bad(p, 10, "truncated");
    expect_bad(p, len - 1, "truncated");
    memset(p + len, 0, 8);
    expect_bad(p, len + 8, "past its end");
    /* Every single flipped byte is caught. */
    for (size_t i = 0; i < len; i++) {
        p[i] ^= 0x20;
        dsc_snap_view v;
        assert_int_equal(dsc_snap_parse(p, len, "flip", &v), DSC_EINVAL);
        p[i] ^= 0x20;
    }
    p[0] = 'X';
    expect_bad(p, len, "bad magic");
    p[0] = 'D';
    p[8] = 99;
    expect_bad(p, len, "format version 99");
    p[8] = 1;
    p[len / 2] ^= 1;
    expect_bad(p, len, "checksum mismatch");
    p[len / 2] ^= 1;
    /* Behind a good checksum: counts that do not fit. */
    p[24] = 4;
    reseal(p, len);
    expect_bad(p, len, "do not fit");
    p[24] = 3;
    /* Unsorted: swap the first two records. */
    size_t recs = DSC_SNAP_HEADER + 40;   /* origin, bucket, prefix, padded */
    unsigned char tmp[DSC_SNAP_RECORD];
    memcpy(tmp, p + recs, DSC_SNAP_RECORD);
    memcpy(p + recs, p + recs + DSC_SNAP_RECORD, DSC_SNAP_RECORD);
    memcpy(p + recs + DSC_SNAP_RECORD, tmp, DSC_SNAP_RECORD);
    reseal(p, len);
    expect_bad(p, len, "not sorted");
    /* Duplicate: the second record names the first key. */
    memcpy(p, img.data, len);
    memcpy(p + recs + DSC_SNAP_RECORD + 8, p + recs + 8, 8);
    reseal(p, len);
    expect_bad(p, len, "not sorted or duplicated");
    /* A key offset out of the blob. */
    memcpy(p, img.data, len);
    p[recs + 15] = 0x7f;
    reseal(p, len);
    expect_bad(p, len, "out of bounds");
    /* A text ETag that would inject a header. */
    memcpy(p, img.data, len);
    unsigned char *x = memmem(p, len, "\"x\"", 3);
    assert_non_null(x);
    x[1] = '\r';
    reseal(p, len);
    expect_bad(p, len, "not an entity tag");
    /* A bucket no S3 has: its URLs would not parse back to it. */
    memcpy(p, img.data, len);
    unsigned char *b = memmem(p + DSC_SNAP_HEADER, 40, "bkt", 3);
    assert_non_null(b);
    b[1] = '/';
    reseal(p, len);
    expect_bad(p, len, "malformed origin, bucket");
    /* A flag this version does not know. */
    memcpy(p, img.data, len);
    p[12] = 2;
    reseal(p, len);
    expect_bad(p, len, "flags 0x2 unknown");
    /* A version id in a snapshot that is not of versions. */
    memcpy(p, img.data, len);
    p[recs + 44] = 1;
    reseal(p, len);
    expect_bad(p, len, "version id");
    free(p);
    dsc_buf_free(&img);
}

/* A snapshot of a versioned bucket: version ids come back byte for byte
 * (also "null", S3's id of a version made before versioning), an entry
 * may lack one, and a bad id is refused when encoding and when reading. */
static void test_versions(void **state)
{
    (void)state;
    static const char long_vid[] = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjV"
                                   "BH40Nr8X8gdRQBpUMLUo";
    dsc_snap_obj o[] = { vobj("train/b", 2, MD5A, "null"),
                         vobj("train/a", 1, "\"x\"", long_vid),
                         vobj("train/c", 3, MD5M, NULL) };
    dsc_snap_head h = head();
    dsc_buf img = { 0 };
    /* Version ids need the header flag. */
    assert_int_equal(dsc_snap_encode(&h, o, 3, &img), DSC_EINVAL);
    assert_errmsg_has("version id");
    h.flags = DSC_SNAP_F_VERSIONS;
    assert_int_equal(dsc_snap_encode(&h, o, 3, &img), 0);
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(img.data, img.len, "v", &v), 0);
    assert_int_equal(v.head.flags, DSC_SNAP_F_VERSIONS);
    dsc_snap_rec r;
    dsc_snap_get(&v, 0, &r);
    assert_string_equal(r.key, "train/a");
    assert_string_equal(r.version_id, long_vid);
    assert_int_equal(r.version_id_len, strlen(long_vid));
    dsc_snap_get(&v, 1, &r);
    assert_string_equal(r.version_id, "null");
    dsc_snap_get(&v, 2, &r);
    assert_null(r.version_id);
    /* A version id holding a space or a control byte would change the
     * query string: refused. */
    size_t len = img.len;
    unsigned char *p = malloc(len);
    memcpy(p, img.data, len);
    unsigned char *n = memmem(p, len, "null", 4);
    assert_non_null(n);
    n[1] = ' ';
    reseal(p, len);
    expect_bad(p, len, "version id");
    free(p);
    dsc_snap_obj bad[] = { vobj("train/a", 1, MD5A, "a b") };
    assert_int_equal(dsc_snap_encode(&h, bad, 1, &img), DSC_EINVAL);
    assert_errmsg_has("version id");
    dsc_snap_obj empty[] = { vobj("train/a", 1, MD5A, "") };
    assert_int_equal(dsc_snap_encode(&h, empty, 1, &img), DSC_EINVAL);
    dsc_buf_free(&img);
}

static double seconds(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

/* 10^6 entries: encoded, then checked and searched. */
static void test_million(void **state)
{
    (void)state;
    enum { N = 1000000 };
    dsc_snap_obj *o = malloc(N * sizeof *o);
    char *keys = malloc((size_t)N * 32);
    assert_non_null(o);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        char *k = keys + (size_t)i * 32;
        int kl = snprintf(k, 32, "train/shard-%08d.tar",
                          (int)((int64_t)i * 7919 % N));
        o[i] = (dsc_snap_obj){ k, (size_t)kl, (uint64_t)i, MD5A, 34, NULL, 0 };
    }
    dsc_buf img = { 0 };
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    encode_ok(o, N, &img);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dsc_snap_view v;
    assert_int_equal(dsc_snap_parse(img.data, img.len, "m", &v), 0);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    printf("    10^6 entries: %zu bytes (%.1f per object), encode %.3f s, "
           "check %.3f s\n", img.len, (double)img.len / N, seconds(t0, t1),
           seconds(t1, t2));
    assert_true(seconds(t1, t2) < 10);
    assert_int_equal(v.n, N);
    assert_int_equal(dsc_snap_find(&v, "train/shard-00123456.tar", 24), 123456);
    free(o);
    free(keys);
    dsc_buf_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_etag_compaction),
        cmocka_unit_test(test_bytes_per_object),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests_name("snapfile", tests, NULL, NULL);
}
