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
    char method[8], path[128], target[300], origin[300], bucket[300],
         key[4096], etag[600], size[32], chunk[64], time[32], nonce[40],
         auth[80];
} req_text;

#define TARGET "10.0.0.2:7070"
#define ORIGIN "https://s3.us-east-1.amazonaws.com:443/auto"

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
    dsc_objref o = { "my-bucket", key, "\"abc-1\"", size };
    dsc_peer_ident who = { TARGET, ORIGIN, &o, 65536, index };
    uint8_t nonce[DSC_PEER_NONCE];
    for (int i = 0; i < DSC_PEER_NONCE; i++)
        nonce[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(dsc_peer_sign(SECRET, head, &id, &who, when, nonce, &s), 0);
    snprintf(t->method, sizeof t->method, "%s", head ? "HEAD" : "GET");
    snprintf(t->path, sizeof t->path, "%s", s.path);
    char *fields[] = { t->target, t->origin, t->bucket, t->key, t->etag,
                       t->size, t->chunk, t->time, t->nonce, t->auth };
    size_t caps[] = { sizeof t->target, sizeof t->origin, sizeof t->bucket,
                      sizeof t->key, sizeof t->etag, sizeof t->size,
                      sizeof t->chunk, sizeof t->time, sizeof t->nonce,
                      sizeof t->auth };
    for (size_t i = 0; i < DSC_ARRAY_LEN(fields); i++)
        snprintf(fields[i], caps[i], "%s", value(&s.lines[i]));
    assert_string_equal(t->auth, s.auth_hex);
    dsc_peer_signed_free(&s);
}

static dsc_peer_raw raw_of(const req_text *t)
{
    return (dsc_peer_raw){ t->method, t->path, t->target, t->origin,
                           t->bucket, t->key, t->etag, t->size, t->chunk,
                           t->time, t->nonce, t->auth };
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
    assert_string_equal(r.target.data, TARGET);
    assert_string_equal(r.origin.data, ORIGIN);
    assert_int_equal(r.nonce[3], 0xa3);
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
        { t.path, sizeof t.path, "/v2/chunk/00000000000000000000000000000000" },
        { t.target, sizeof t.target, "10.0.0.3%3A7070" },
        { t.origin, sizeof t.origin, "http%3A%2F%2Fevil%3A80%2Fauto" },
        { t.nonce, sizeof t.nonce, "a1a1a2a3a4a5a6a7a8a9aaabacadaeaf" },
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
        { F(path), "/v2/chunk/../../etc/passwd", "path" },
        { F(path), "/v2/chunk/0123456789ABCDEF0123456789abcdef", "path" },
        { F(path), "/v2/chunk/0123456789abcdef0123456789abcde", "path" },
        { F(path), "/v2/chunk/0123456789abcdef0123456789abcdef0", "path" },
        { F(path), "/v2/chunk/0123456789abcdef0123456789abcdef/", "path" },
        { F(path), "/v1/chunk/0123456789abcdef0123456789abcdef", "path" },
        { F(target), "", "target" },
        { F(target), "a%zz", "target" },
        { F(origin), "", "origin" },
        { F(nonce), "", "nonce" },
        { F(nonce), "a0a1a2", "nonce" },
        { F(nonce), "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF", "nonce" },
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
    for (int f = 0; f < 12; f++) {
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

/* The answer's MAC: the same for the same request and bytes, different
 * for another request (its own key), another length, or any changed
 * byte - including a change that keeps the body's XXH3 (not asserted
 * here: any change at all is enough for Poly1305 under a secret key). */
static void test_answer_mac(void **state)
{
    (void)state;
    const char *auth = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *auth2 = "10112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static uint8_t body[70000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 131 + 7);
    char a[33], b[33], c[33], d[33], e[33], f[33];
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth, body, sizeof body, a), 0);
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth, body, sizeof body, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth2, body, sizeof body, c), 0);
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth, body, sizeof body - 1, d), 0);
    assert_int_equal(dsc_peer_answer_mac("other", auth, body, sizeof body, e), 0);
    body[50000] ^= 1;
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth, body, sizeof body, f), 0);
    const char *all[] = { a, c, d, e, f };
    for (size_t i = 0; i < DSC_ARRAY_LEN(all); i++)
        for (size_t j = i + 1; j < DSC_ARRAY_LEN(all); j++)
            if (strcmp(all[i], all[j]) == 0)
                fail_msg("MACs %zu and %zu are equal", i, j);
    /* An empty body (a HEAD) has a MAC of its own too. */
    assert_int_equal(dsc_peer_answer_mac(SECRET, auth, "", 0, b), 0);
    assert_string_not_equal(a, b);
    assert_true(dsc_peer_hex_equal(a, a));
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
        cmocka_unit_test(test_answer_mac),
        cmocka_unit_test(test_uri_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
