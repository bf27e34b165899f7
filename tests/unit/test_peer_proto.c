/* The peer protocol: a signed request parses and verifies; every field is
 * bound by the signature; malformed requests are refused by the parser
 * with a reason; times outside the window are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "peer/proto.h"
#include "net/url.h"
#include "unittest.h"

#define SECRET "s3cr3t"
#define NOW 1764000000

typedef struct req_text {
    char method[8], path[128], bucket[300], key[4096], etag[600], size[32],
         chunk[64], time[32], auth[80];
} req_text;

/* Header values after "Name: " of a signed request. */
static const char *value(const dsc_buf *line)
{
    return strchr(line->data, ':') + 2;
}

static void make(req_text *t, int head, const char *key, uint64_t size,
                 uint64_t index, int64_t when)
{
    dsc_chunk_id id;
    memset(&id, 0, sizeof id);
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(i * 17 + 3);
    dsc_peer_signed s;
    assert_int_equal(dsc_peer_sign(SECRET, head, &id, "my-bucket", key,
                                   "\"abc-1\"", size, 65536, index, when, &s), 0);
    snprintf(t->method, sizeof t->method, "%s", head ? "HEAD" : "GET");
    snprintf(t->path, sizeof t->path, "%s", s.path);
    snprintf(t->bucket, sizeof t->bucket, "%s", value(&s.bucket));
    snprintf(t->key, sizeof t->key, "%s", value(&s.key));
    snprintf(t->etag, sizeof t->etag, "%s", value(&s.etag));
    snprintf(t->size, sizeof t->size, "%s", value(&s.size));
    snprintf(t->chunk, sizeof t->chunk, "%s", value(&s.chunk));
    snprintf(t->time, sizeof t->time, "%s", value(&s.time));
    snprintf(t->auth, sizeof t->auth, "%s", value(&s.auth));
    assert_string_equal(t->auth, s.auth_hex);
    dsc_peer_signed_free(&s);
}

static dsc_peer_raw raw_of(const req_text *t)
{
    return (dsc_peer_raw){ t->method, t->path, t->bucket, t->key, t->etag,
                           t->size, t->chunk, t->time, t->auth };
}

/* 0 parse+verify ok, 1 parse refused, 2 verify refused. */
static int check(const req_text *t, int64_t now)
{
    dsc_peer_raw raw = raw_of(t);
    dsc_peer_req r;
    int rc = dsc_peer_req_parse(&raw, &r);
    if (rc) {
        assert_int_equal(rc, DSC_EINVAL);
        dsc_peer_req_free(&r);
        return 1;
    }
    rc = dsc_peer_req_verify(&r, SECRET, now, 300);
    dsc_peer_req_free(&r);
    if (rc)
        assert_int_equal(rc, DSC_EACCESS);
    return rc ? 2 : 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    req_text t;
    const char *key = "dir/a b+c%d=e&f?g#h/ünï/😀\n\tctl";
    make(&t, 0, key, 1000000, 15, NOW);
    dsc_peer_raw raw = raw_of(&t);
    dsc_peer_req r;
    assert_int_equal(dsc_peer_req_parse(&raw, &r), 0);
    assert_string_equal(r.key.data, key);
    assert_string_equal(r.etag.data, "\"abc-1\"");
    assert_string_equal(r.bucket.data, "my-bucket");
    assert_int_equal(r.size, 1000000);
    assert_int_equal(r.chunk_size, 65536);
    assert_int_equal(r.index, 15);
    assert_int_equal(r.head, 0);
    assert_int_equal(r.id.b[1], 20);
    assert_int_equal(dsc_peer_req_verify(&r, SECRET, NOW, 300), 0);
    assert_int_equal(dsc_peer_req_verify(&r, SECRET, NOW + 300, 300), 0);
    assert_int_equal(dsc_peer_req_verify(&r, SECRET, NOW - 300, 300), 0);
    assert_int_equal(dsc_peer_req_verify(&r, SECRET, NOW + 301, 300), DSC_EACCESS);
    assert_errmsg_has("away from now");
    assert_int_equal(dsc_peer_req_verify(&r, SECRET, NOW - 301, 300), DSC_EACCESS);
    assert_int_equal(dsc_peer_req_verify(&r, "other", NOW, 300), DSC_EACCESS);
    assert_errmsg_has("wrong signature");
    assert_int_equal(dsc_peer_req_verify(&r, "", NOW, 300), DSC_EACCESS);
    dsc_peer_req_free(&r);
    make(&t, 1, "k", 10, 0, NOW);
    assert_int_equal(check(&t, NOW), 0);
}

/* Changing any signed field after signing breaks the signature (or the
 * form). */
static void test_every_field_is_signed(void **state)
{
    (void)state;
    req_text good, t;
    make(&good, 0, "some/key", 1 << 20, 3, NOW);
    assert_int_equal(check(&good, NOW), 0);
    struct { char *field; size_t cap; const char *v; } edits[] = {
        { t.method, sizeof t.method, "HEAD" },
        { t.path, sizeof t.path, "/v1/chunk/00000000000000000000000000000000" },
        { t.bucket, sizeof t.bucket, "my-bucket2" },
        { t.key, sizeof t.key, "some/kez" },
        { t.etag, sizeof t.etag, "%22abc-2%22" },
        { t.size, sizeof t.size, "1048577" },
        { t.chunk, sizeof t.chunk, "65536/4" },
        { t.chunk, sizeof t.chunk, "131072/3" },
        { t.time, sizeof t.time, "1764000001" },
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(edits); i++) {
        t = good;
        /* fields are addressed in t: recompute the pointer into this copy */
        snprintf(edits[i].field, edits[i].cap, "%s", edits[i].v);
        int rc = check(&t, NOW);
        if (rc == 0)
            fail_msg("edit %zu (%s) still verifies", i, edits[i].v);
    }
    /* The signature covers the decoded identity: another spelling of the
     * same key is the same request. */
    t = good;
    snprintf(t.key, sizeof t.key, "some%%2fkey");
    assert_int_equal(check(&t, NOW), 0);
    t = good;
    t.auth[10] = t.auth[10] == 'a' ? 'b' : 'a';
    assert_int_equal(check(&t, NOW), 2);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    req_text good, t;
    make(&good, 0, "k", 1 << 20, 3, NOW);
    struct { size_t off, cap; const char *v; const char *why; } bad[] = {
#define F(f) offsetof(req_text, f), sizeof(((req_text *)0)->f)
        { F(method), "POST", "method" },
        { F(method), "get", "method" },
        { F(path), "/v1/chunk/../../etc/passwd", "path" },
        { F(path), "/v1/chunk/0123456789ABCDEF0123456789abcdef", "path" },
        { F(path), "/v1/chunk/0123456789abcdef0123456789abcde", "path" },
        { F(path), "/v1/chunk/0123456789abcdef0123456789abcdef0", "path" },
        { F(path), "/v1/chunk/0123456789abcdef0123456789abcdef/", "path" },
        { F(path), "/v2/chunk/0123456789abcdef0123456789abcdef", "path" },
        { F(path), "", "path" },
        { F(bucket), "", "bucket" },
        { F(bucket), "a/b", "bucket" },
        { F(bucket), "ab", "bucket" },
        { F(key), "", "key" },
        { F(key), "a%zz", "key" },
        { F(key), "a%0", "key" },
        { F(key), "a%00b", "key" },
        { F(etag), "%", "etag" },
        { F(size), "0", "size" },
        { F(size), "-1", "size" },
        { F(size), "+5", "size" },
        { F(size), " 5", "size" },
        { F(size), "18446744073709551616", "size" },
        { F(size), "", "size" },
        { F(chunk), "65536", "chunk" },
        { F(chunk), "65536/", "chunk" },
        { F(chunk), "/3", "chunk" },
        { F(chunk), "1024/3", "chunk" },
        { F(chunk), "65536/16", "chunk" },          /* past the object */
        { F(chunk), "65536/-1", "chunk" },
        { F(chunk), "999999999999999999999999/1", "chunk" },
        { F(time), "-5", "time" },
        { F(time), "9223372036854775808", "time" },
        { F(time), "12x", "time" },
        { F(auth), "abc", "auth" },
        { F(auth), "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
          "auth" },
#undef F
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        t = good;
        snprintf((char *)&t + bad[i].off, bad[i].cap, "%s", bad[i].v);
        dsc_peer_raw raw = raw_of(&t);
        dsc_peer_req r;
        int rc = dsc_peer_req_parse(&raw, &r);
        dsc_peer_req_free(&r);
        if (rc != DSC_EINVAL)
            fail_msg("case %zu (%s = '%s') parsed", i, bad[i].why, bad[i].v);
        assert_errmsg_has(bad[i].why);
    }
    /* Missing headers. */
    for (int f = 0; f < 9; f++) {
        t = good;
        dsc_peer_raw raw = raw_of(&t);
        ((const char **)&raw)[f] = NULL;
        dsc_peer_req r;
        assert_int_equal(dsc_peer_req_parse(&raw, &r), DSC_EINVAL);
        dsc_peer_req_free(&r);
    }
    /* Longest key S3 allows parses; one byte more does not. */
    char key[DSC_PEER_MAX_KEY + 2];
    memset(key, 'k', sizeof key);
    key[DSC_PEER_MAX_KEY] = '\0';
    make(&t, 0, key, 100, 0, NOW);
    assert_int_equal(check(&t, NOW), 0);
    key[DSC_PEER_MAX_KEY] = 'k';
    key[DSC_PEER_MAX_KEY + 1] = '\0';
    make(&t, 0, key, 100, 0, NOW);
    assert_int_equal(check(&t, NOW), 1);
}

static void test_response_signature(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    const char *auth = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_equal(dsc_peer_resp_sig(SECRET, auth, 100, 0x1234, a), 0);
    assert_int_equal(dsc_peer_resp_sig(SECRET, auth, 100, 0x1234, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(dsc_peer_resp_sig(SECRET, auth, 101, 0x1234, c), 0);
    assert_int_equal(dsc_peer_resp_sig(SECRET, auth, 100, 0x1235, d), 0);
    assert_true(strcmp(a, c) && strcmp(a, d) && strcmp(c, d));
    assert_true(dsc_peer_hex_equal(a, b));
    assert_false(dsc_peer_hex_equal(a, c));
    assert_false(dsc_peer_hex_equal(a, "00"));
}

static void test_uri_decode(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_uri_decode(&b, "a%20b%2Fc%e2%9c%93", 18), 0);
    assert_string_equal(b.data, "a b/c\xe2\x9c\x93");
    dsc_buf_reset(&b);
    assert_int_equal(dsc_uri_decode(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    const char *bad[] = { "%", "%2", "%g0", "%0g", "%00", "a%" };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        dsc_buf_reset(&b);
        assert_int_equal(dsc_uri_decode(&b, bad[i], strlen(bad[i])), DSC_EINVAL);
    }
    dsc_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_field_is_signed),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_response_signature),
        cmocka_unit_test(test_uri_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
