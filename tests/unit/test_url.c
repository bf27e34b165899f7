/* s3:// URL parsing, endpoint parsing, percent-encoding and request targets.
 *
 * Every rejected input is checked for both its DSC_E* code and a
 * dsc_errmsg() that lets a user find the offending text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "net/url.h"

/* dsc_errmsg() must contain needle. The message is cleared before each
 * failing call, so a stale message cannot satisfy this. */
/* ---- dsc_s3url_parse: accepted URLs ----------------------------------- */

static void check_url(const char *url, const char *bucket, const char *key)
{
    dsc_s3url u;
    int rc = dsc_s3url_parse(url, &u);
    if (rc != 0)
        fail_msg("dsc_s3url_parse(\"%s\") = %d (%s)", url, rc, dsc_errmsg());
    assert_string_equal(u.bucket, bucket);
    assert_string_equal(u.key, key);
    dsc_s3url_free(&u);
    assert_null(u.bucket);
    assert_null(u.key);
}

static void test_s3url_plain(void **state)
{
    (void)state;
    check_url("s3://my-bucket/path/to/obj.bin", "my-bucket", "path/to/obj.bin");
    check_url("s3://data.example.com/x", "data.example.com", "x");
    check_url("s3://abc/k", "abc", "k");
    /* Legacy bucket names (uppercase, '_') are still addressable. */
    check_url("s3://Legacy_Bucket/k", "Legacy_Bucket", "k");
}

static void test_s3url_key_literal_chars(void **state)
{
    (void)state;
    check_url("s3://my-bucket/dir name/file one.txt", "my-bucket",
              "dir name/file one.txt");
    /* No percent-decoding and no form decoding: '+', '%', '=' stay as is. */
    check_url("s3://my-bucket/a+b%20c=d", "my-bucket", "a+b%20c=d");
    check_url("s3://my-bucket/100%", "my-bucket", "100%");
    check_url("s3://my-bucket/k?versionId=1#frag", "my-bucket",
              "k?versionId=1#frag");
    check_url("s3://my-bucket/a:b@c;d,e!f*g'h(i)j~k", "my-bucket",
              "a:b@c;d,e!f*g'h(i)j~k");
}

static void test_s3url_key_unicode(void **state)
{
    (void)state;
    /* café / 日本 / 🙂.txt */
    check_url("s3://my-bucket/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/"
              "\xf0\x9f\x99\x82.txt", "my-bucket",
              "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x99\x82.txt");
    /* Edges of the valid ranges: U+0800, U+D7FF, U+E000, U+FFFD, U+10000,
     * U+10FFFF. */
    check_url("s3://my-bucket/\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
              "\xef\xbf\xbd\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "my-bucket",
              "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd"
              "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
}

static void test_s3url_slashes(void **state)
{
    (void)state;
    check_url("s3://my-bucket/a//b", "my-bucket", "a//b");
    check_url("s3://my-bucket//lead", "my-bucket", "/lead");
    check_url("s3://my-bucket/dir/", "my-bucket", "dir/");
    check_url("s3://my-bucket/a/b//", "my-bucket", "a/b//");
}

static void test_s3url_bucket_only(void **state)
{
    (void)state;
    check_url("s3://my-bucket", "my-bucket", "");
    check_url("s3://my-bucket/", "my-bucket", "");
}

static void test_s3url_key_1024_bytes_ok(void **state)
{
    (void)state;
    char url[16 + 1024 + 1];
    strcpy(url, "s3://my-bucket/");
    size_t off = strlen(url);
    memset(url + off, 'k', 1024);
    url[off + 1024] = '\0';
    check_url(url, "my-bucket", url + off);
}

/* ---- dsc_s3url_parse: rejected URLs ----------------------------------- */

/* The URL is rejected with DSC_EURL, nothing is left allocated, and the
 * message names the URL (or, if given, the expected fragment). */
static void check_bad_url(const char *url, const char *msg_part)
{
    dsc_s3url u = { (char *)"x", (char *)"y" };
    dsc_clear_error();
    int rc = dsc_s3url_parse(url, &u);
    if (rc != DSC_EURL)
        fail_msg("dsc_s3url_parse(\"%s\") = %d, want DSC_EURL", url, rc);
    assert_null(u.bucket);
    assert_null(u.key);
    assert_errmsg_has(msg_part ? msg_part : url);
}

static void test_s3url_null(void **state)
{
    (void)state;
    check_bad_url(NULL, "NULL");
}

static void test_s3url_empty(void **state)
{
    (void)state;
    check_bad_url("", "s3://");
}

static void test_s3url_wrong_scheme(void **state)
{
    (void)state;
    check_bad_url("http://my-bucket/k", NULL);
    check_bad_url("https://my-bucket/k", NULL);
    check_bad_url("s3:/my-bucket/k", NULL);
    check_bad_url("s3:my-bucket/k", NULL);
    check_bad_url("my-bucket/k", NULL);
    check_bad_url(" s3://my-bucket/k", NULL);
}

static void test_s3url_missing_bucket(void **state)
{
    (void)state;
    check_bad_url("s3:///k", NULL);
    assert_errmsg_has("bucket");
    check_bad_url("s3://", NULL);
    assert_errmsg_has("bucket");
}

static void test_s3url_bad_bucket(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "s3://my bucket/k", "s3://my$bucket/k", "s3://my%2Dbucket/k",
        "s3://bucket:9000/k", "s3://user@bucket/k", "s3://b\xc3\xa9ucket/k",
        "s3://ab/k", "s3://a/k", "s3://buck?et/k",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        check_bad_url(bad[i], NULL);
        assert_errmsg_has("bucket");
    }
}

static void test_s3url_bad_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "s3://my-bucket/\xc0\xaf",             /* overlong '/' (2 bytes) */
        "s3://my-bucket/\xc1\xbf",             /* overlong, 2 bytes */
        "s3://my-bucket/\xe0\x80\xaf",         /* overlong '/' (3 bytes) */
        "s3://my-bucket/\xe0\x9f\xbf",         /* overlong U+07FF */
        "s3://my-bucket/\xf0\x80\x80\xaf",     /* overlong '/' (4 bytes) */
        "s3://my-bucket/\xf0\x8f\xbf\xbf",     /* overlong U+FFFF */
        "s3://my-bucket/a\xed\xa0\x80z",       /* surrogate U+D800 */
        "s3://my-bucket/\xed\xbf\xbf",         /* surrogate U+DFFF */
        "s3://my-bucket/\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 pair */
        "s3://my-bucket/\xf4\x90\x80\x80",     /* U+110000 */
        "s3://my-bucket/\xf5\x80\x80\x80",     /* lead byte > F4 */
        "s3://my-bucket/\xff",
        "s3://my-bucket/\xfe",
        "s3://my-bucket/\x80",                 /* lone continuation */
        "s3://my-bucket/a\xbf",
        "s3://my-bucket/\xc3",                 /* truncated at end */
        "s3://my-bucket/\xe6\x97",
        "s3://my-bucket/\xf0\x9f\x99",
        "s3://my-bucket/\xc3x",                /* truncated, then ASCII */
        "s3://my-bucket/\xe6\x97/x",
        "s3://my-bucket/\xf0\x9f\x99" "abc",
        "s3://my-bucket/\xe6\xc3\xa9",         /* truncated, then a lead */
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        check_bad_url(bad[i], NULL);
        assert_errmsg_has("UTF-8");
    }
}

static void test_s3url_control_chars(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "s3://my-bucket/a\x01" "b", "s3://my-bucket/a\tb",
        "s3://my-bucket/a\nb",      "s3://my-bucket/a\rb",
        "s3://my-bucket/a\x1f",     "s3://my-bucket/\x7f",
        "s3://my-bucket/\x1b[31m",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        check_bad_url(bad[i], "s3://my-bucket/");
        assert_errmsg_has("control");
    }
}

/* A key is limited in bytes, not characters. */
static void test_s3url_key_too_long(void **state)
{
    (void)state;
    char url[16 + 1026 + 1];
    strcpy(url, "s3://my-bucket/");
    size_t off = strlen(url);
    memset(url + off, 'k', 1025);
    url[off + 1025] = '\0';
    check_bad_url(url, "s3://my-bucket/kkkk");

    /* 513 two-byte characters: 1026 bytes. */
    for (size_t i = 0; i < 513; i++) {
        url[off + 2 * i] = (char)0xc3;
        url[off + 2 * i + 1] = (char)0xa9;
    }
    url[off + 1026] = '\0';
    check_bad_url(url, "s3://my-bucket/\xc3\xa9");
}

/* The message must say why a long key is refused, not only echo it. */
static void test_s3url_key_too_long_says_why(void **state)
{
    (void)state;
    char url[16 + 1025 + 1];
    strcpy(url, "s3://my-bucket/");
    size_t off = strlen(url);
    memset(url + off, 'k', 1025);
    url[off + 1025] = '\0';
    check_bad_url(url, "s3://my-bucket/kkkk");
    /* Found by this test: the reason was printed after the whole URL into
     * dsc_errmsg()'s 1024-byte buffer and always cut off. */
    assert_errmsg_has("1024");
}

/* Any rejected URL long enough to fill the message buffer must still say
 * why it was rejected. Each case is the URL prefix, the filler byte, the
 * filler length, the suffix and the word the reason must contain. */
static void test_s3url_long_url_errors_say_why(void **state)
{
    (void)state;
    static const struct {
        const char *pre;
        size_t fill;
        const char *post, *why;
    } cases[] = {
        { "s3://my-bucket/", 1000, "\t", "control" },      /* legal length */
        { "s3://my-bucket/", 1000, "\xc3", "UTF-8" },
        { "s3://my-bucket/", 2000, "\n", "control" },      /* also too long */
        { "s3://bad$bucket/", 1000, "", "bucket" },
        { "http://my-bucket/", 1000, "", "s3://" },
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(cases); i++) {
        dsc_buf b = { 0 };
        assert_int_equal(dsc_buf_adds(&b, cases[i].pre), 0);
        for (size_t j = 0; j < cases[i].fill; j++)
            assert_int_equal(dsc_buf_add(&b, "k", 1), 0);
        assert_int_equal(dsc_buf_adds(&b, cases[i].post), 0);
        dsc_s3url u;
        dsc_clear_error();
        int rc = dsc_s3url_parse(b.data, &u);
        dsc_buf_free(&b);
        assert_int_equal(rc, DSC_EURL);
        /* BUG (lib/url.c dsc_s3url_parse): these messages print the whole
         * URL before the reason, so past ~1000 bytes of URL the reason is
         * truncated away (only the key-length message was shortened). */
        if (!strstr(dsc_errmsg(), cases[i].why))
            fail_msg("case %zu: dsc_errmsg() lacks \"%s\": \"%.80s...\" "
                     "(%zu bytes)", i, cases[i].why, dsc_errmsg(),
                     strlen(dsc_errmsg()));
    }
}

/* ---- dsc_endpoint_parse ----------------------------------------------- */

static void check_endpoint(const char *s, int https, const char *host,
                           int port)
{
    dsc_endpoint e;
    int rc = dsc_endpoint_parse(s, &e);
    if (rc != 0)
        fail_msg("dsc_endpoint_parse(\"%s\") = %d (%s)", s, rc, dsc_errmsg());
    assert_int_equal(e.https, https);
    assert_string_equal(e.host, host);
    assert_int_equal(e.port, port);
    dsc_endpoint_free(&e);
    assert_null(e.host);
}

static void test_endpoint_good(void **state)
{
    (void)state;
    check_endpoint("http://127.0.0.1:9000", 0, "127.0.0.1", 9000);
    check_endpoint("http://127.0.0.1:9000/", 0, "127.0.0.1", 9000);
    check_endpoint("https://s3.us-west-2.amazonaws.com", 1,
                   "s3.us-west-2.amazonaws.com", 0);
    check_endpoint("https://s3.us-west-2.amazonaws.com/", 1,
                   "s3.us-west-2.amazonaws.com", 0);
    check_endpoint("http://localhost", 0, "localhost", 0);
    check_endpoint("http://minio-1.internal:1", 0, "minio-1.internal", 1);
    check_endpoint("https://minio:65535", 1, "minio", 65535);
}

static void test_endpoint_default_port_folded(void **state)
{
    (void)state;
    check_endpoint("http://minio:80", 0, "minio", 0);
    check_endpoint("https://minio:443", 1, "minio", 0);
    check_endpoint("https://minio:443/", 1, "minio", 0);
    /* Only the scheme's own default is folded. */
    check_endpoint("http://minio:443", 0, "minio", 443);
    check_endpoint("https://minio:80", 1, "minio", 80);
}

static void test_endpoint_ipv6(void **state)
{
    (void)state;
    check_endpoint("http://[::1]:9000", 0, "[::1]", 9000);
    check_endpoint("http://[::1]", 0, "[::1]", 0);
    check_endpoint("https://[2001:DB8::1]:8443/", 1, "[2001:db8::1]", 8443);
    check_endpoint("http://[::ffff:127.0.0.1]:9000", 0, "[::ffff:127.0.0.1]",
                   9000);
}

static void test_endpoint_host_lowered(void **state)
{
    (void)state;
    check_endpoint("http://S3.Example.COM:9000/", 0, "s3.example.com", 9000);
    check_endpoint("https://LOCALHOST", 1, "localhost", 0);
}

static void check_bad_endpoint(const char *s, const char *msg_part)
{
    dsc_endpoint e = { 1, (char *)"x", 1 };
    dsc_clear_error();
    int rc = dsc_endpoint_parse(s, &e);
    if (rc != DSC_EURL)
        fail_msg("dsc_endpoint_parse(\"%s\") = %d, want DSC_EURL", s, rc);
    assert_null(e.host);
    assert_errmsg_has(msg_part ? msg_part : s);
}

static void test_endpoint_empty(void **state)
{
    (void)state;
    check_bad_endpoint("", "empty");
    check_bad_endpoint(NULL, "empty");
}

static void test_endpoint_bad_scheme(void **state)
{
    (void)state;
    check_bad_endpoint("127.0.0.1:9000", NULL);
    check_bad_endpoint("localhost", NULL);
    check_bad_endpoint("ftp://files.example.com", NULL);
    check_bad_endpoint("s3://my-bucket", NULL);
    check_bad_endpoint("http:/minio:9000", NULL);
    check_bad_endpoint("//minio:9000", NULL);
    assert_errmsg_has("http");
}

static void test_endpoint_bad_port(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://minio:0", "http://minio:65536", "http://minio:99999",
        "http://minio:99999999999999999999999", "http://minio:abc",
        "http://minio:", "http://minio:-1", "http://minio:+80",
        "http://minio:9000x", "http://minio:9000:9001",
        "http://[::1]:0", "http://[::1]:65536", "http://[::1]:",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        check_bad_endpoint(bad[i], NULL);
        assert_errmsg_has("port");
    }
}

static void test_endpoint_path_or_userinfo(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://minio:9000/bucket", "http://minio/path", "https://h//",
        "http://minio?x=1", "http://minio#frag", "http://user@minio",
        "http://user:pw@minio:9000", "http://minio:9000/ ",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++)
        check_bad_endpoint(bad[i], NULL);
}

static void test_endpoint_bad_host(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://", "https://", "http://:9000", "http:///", "http://[::1",
        "http://[]:9000", "http://[::g]", "http:// minio",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++)
        check_bad_endpoint(bad[i], NULL);
}

/* ---- dsc_uri_encode --------------------------------------------------- */

static char *encode(const char *s, size_t n, int keep_slash)
{
    dsc_buf b = { 0 };
    assert_int_equal(dsc_uri_encode(&b, s, n, keep_slash), 0);
    assert_int_equal(dsc_buf_add(&b, "", 0), 0); /* NUL-terminate if empty */
    return b.data;
}

static void check_encode(const char *in, int keep_slash, const char *want)
{
    char *got = encode(in, strlen(in), keep_slash);
    assert_string_equal(got, want);
    free(got);
}

static void test_encode_unreserved_kept(void **state)
{
    (void)state;
    const char *u = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_.~";
    check_encode(u, 0, u);
    check_encode(u, 1, u);
}

static void test_encode_reserved(void **state)
{
    (void)state;
    check_encode(" ", 0, "%20");
    check_encode("a b+c=d%e", 0, "a%20b%2Bc%3Dd%25e");
    check_encode("!\"#$&'()*,:;<>?@[\\]^`{|}", 0,
                 "%21%22%23%24%26%27%28%29%2A%2C%3A%3B%3C%3E%3F%40%5B%5C%5D"
                 "%5E%60%7B%7C%7D");
    check_encode("a/b", 0, "a%2Fb");
    check_encode("\t\n\x7f", 0, "%09%0A%7F");
}

static void test_encode_every_byte(void **state)
{
    (void)state;
    static const char unreserved[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    for (int c = 0; c < 256; c++) {
        char in = (char)c, want[4];
        if (c != 0 && strchr(unreserved, c))
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "%%%02X", c);
        char *got = encode(&in, 1, 0);
        if (strcmp(got, want) != 0)
            fail_msg("byte 0x%02x encoded as \"%s\", want \"%s\"", c, got,
                     want);
        free(got);
    }
}

static void test_encode_utf8_upper_hex(void **state)
{
    (void)state;
    check_encode("caf\xc3\xa9", 0, "caf%C3%A9");
    check_encode("\xe6\x97\xa5", 1, "%E6%97%A5");
    check_encode("\xf0\x9f\x99\x82", 0, "%F0%9F%99%82");
}

static void test_encode_keep_slash(void **state)
{
    (void)state;
    check_encode("a/b c//d/", 1, "a/b%20c//d/");
    check_encode("a/b c//d/", 0, "a%2Fb%20c%2F%2Fd%2F");
}

static void test_encode_respects_length_and_appends(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_adds(&b, "pre:"), 0);
    assert_int_equal(dsc_uri_encode(&b, "a b/cdef", 4, 1), 0);
    assert_string_equal(b.data, "pre:a%20b/");
    assert_int_equal(b.len, strlen("pre:a%20b/"));
    /* An embedded NUL inside n is encoded, not a terminator. */
    assert_int_equal(dsc_uri_encode(&b, "x\0y", 3, 0), 0);
    assert_string_equal(b.data, "pre:a%20b/x%00y");
    assert_int_equal(dsc_uri_encode(&b, "zzz", 0, 0), 0);
    assert_string_equal(b.data, "pre:a%20b/x%00y");
    dsc_buf_free(&b);
}

/* ---- dsc_target_build ------------------------------------------------- */

static void check_target(const char *endpoint, int addressing,
                         const char *bucket, const char *key,
                         const char *host, const char *path, const char *url)
{
    dsc_endpoint ep;
    assert_int_equal(dsc_endpoint_parse(endpoint, &ep), 0);
    dsc_target t;
    assert_int_equal(dsc_target_build(&t, &ep, addressing, bucket, key), 0);
    assert_string_equal(t.host.data, host);
    assert_string_equal(t.path.data, path);
    assert_string_equal(t.url.data, url);
    dsc_target_free(&t);
    dsc_endpoint_free(&ep);
}

static void test_target_path_style(void **state)
{
    (void)state;
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_PATH, "my-bucket",
                 "a/b.txt", "127.0.0.1:9000", "/my-bucket/a/b.txt",
                 "http://127.0.0.1:9000/my-bucket/a/b.txt");
    check_target("https://s3.us-east-1.amazonaws.com", DSC_ADDRESSING_PATH,
                 "my-bucket", "k", "s3.us-east-1.amazonaws.com",
                 "/my-bucket/k", "https://s3.us-east-1.amazonaws.com/my-bucket/k");
    /* A folded default port is not written into Host or the URL. */
    check_target("https://minio:443/", DSC_ADDRESSING_PATH, "my-bucket", "k",
                 "minio", "/my-bucket/k", "https://minio/my-bucket/k");
}

static void test_target_vhost(void **state)
{
    (void)state;
    check_target("https://s3.us-west-2.amazonaws.com", DSC_ADDRESSING_VHOST,
                 "my-bucket", "a/b.txt", "my-bucket.s3.us-west-2.amazonaws.com",
                 "/a/b.txt", "https://my-bucket.s3.us-west-2.amazonaws.com/a/b.txt");
    check_target("http://minio.local:9000", DSC_ADDRESSING_VHOST, "my-bucket",
                 "k", "my-bucket.minio.local:9000", "/k",
                 "http://my-bucket.minio.local:9000/k");
}

static void test_target_bucket_root(void **state)
{
    (void)state;
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_PATH, "my-bucket", "",
                 "127.0.0.1:9000", "/my-bucket",
                 "http://127.0.0.1:9000/my-bucket");
    check_target("https://s3.amazonaws.com", DSC_ADDRESSING_VHOST, "my-bucket",
                 "", "my-bucket.s3.amazonaws.com", "/",
                 "https://my-bucket.s3.amazonaws.com/");
}

static void test_target_key_encoding(void **state)
{
    (void)state;
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_PATH, "my-bucket",
                 "dir name/a+b=c%d/caf\xc3\xa9~x", "127.0.0.1:9000",
                 "/my-bucket/dir%20name/a%2Bb%3Dc%25d/caf%C3%A9~x",
                 "http://127.0.0.1:9000/my-bucket/dir%20name/a%2Bb%3Dc%25d/"
                 "caf%C3%A9~x");
    check_target("https://s3.amazonaws.com", DSC_ADDRESSING_VHOST, "my-bucket",
                 "q?x=1#f", "my-bucket.s3.amazonaws.com", "/q%3Fx%3D1%23f",
                 "https://my-bucket.s3.amazonaws.com/q%3Fx%3D1%23f");
    /* Empty path segments are part of the key and must survive. */
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_PATH, "my-bucket",
                 "a//b/", "127.0.0.1:9000", "/my-bucket/a//b/",
                 "http://127.0.0.1:9000/my-bucket/a//b/");
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_PATH, "my-bucket",
                 "/lead", "127.0.0.1:9000", "/my-bucket//lead",
                 "http://127.0.0.1:9000/my-bucket//lead");
    check_target("https://s3.amazonaws.com", DSC_ADDRESSING_VHOST, "my-bucket",
                 "/lead", "my-bucket.s3.amazonaws.com", "//lead",
                 "https://my-bucket.s3.amazonaws.com//lead");
}

static void test_target_auto(void **state)
{
    (void)state;
    /* IP literals and localhost cannot take a bucket label: path-style. */
    check_target("http://127.0.0.1:9000", DSC_ADDRESSING_AUTO, "my-bucket",
                 "k", "127.0.0.1:9000", "/my-bucket/k",
                 "http://127.0.0.1:9000/my-bucket/k");
    check_target("http://localhost:9000", DSC_ADDRESSING_AUTO, "my-bucket",
                 "k", "localhost:9000", "/my-bucket/k",
                 "http://localhost:9000/my-bucket/k");
    check_target("http://[::1]:9000", DSC_ADDRESSING_AUTO, "my-bucket", "k",
                 "[::1]:9000", "/my-bucket/k", "http://[::1]:9000/my-bucket/k");
    check_target("http://10.1.2.3", DSC_ADDRESSING_AUTO, "my-bucket", "",
                 "10.1.2.3", "/my-bucket", "http://10.1.2.3/my-bucket");
    /* A DNS-compatible bucket on a host name: vhost. */
    check_target("https://s3.eu-west-1.amazonaws.com", DSC_ADDRESSING_AUTO,
                 "my-bucket", "k", "my-bucket.s3.eu-west-1.amazonaws.com",
                 "/k", "https://my-bucket.s3.eu-west-1.amazonaws.com/k");
    check_target("http://minio.local:9000", DSC_ADDRESSING_AUTO, "my-bucket",
                 "", "my-bucket.minio.local:9000", "/",
                 "http://my-bucket.minio.local:9000/");
    /* A dotted bucket breaks the wildcard certificate on https: path. */
    check_target("https://s3.amazonaws.com", DSC_ADDRESSING_AUTO,
                 "data.example.com", "k", "s3.amazonaws.com",
                 "/data.example.com/k",
                 "https://s3.amazonaws.com/data.example.com/k");
    /* Over plain http the certificate does not matter. */
    check_target("http://s3.amazonaws.com", DSC_ADDRESSING_AUTO,
                 "data.example.com", "k", "data.example.com.s3.amazonaws.com",
                 "/k", "http://data.example.com.s3.amazonaws.com/k");
    /* Legacy names cannot be DNS labels: path. */
    check_target("https://s3.amazonaws.com", DSC_ADDRESSING_AUTO,
                 "Legacy_Bucket", "k", "s3.amazonaws.com", "/Legacy_Bucket/k",
                 "https://s3.amazonaws.com/Legacy_Bucket/k");
}

/* ---- dsc_bucket_vhost_ok / dsc_host_is_literal ------------------------ */

static void test_bucket_vhost_ok(void **state)
{
    (void)state;
    char b63[64], b64[65];
    memset(b63, 'a', 63);
    b63[63] = '\0';
    memset(b64, 'a', 64);
    b64[64] = '\0';

    assert_true(dsc_bucket_vhost_ok("my-bucket", 0));
    assert_true(dsc_bucket_vhost_ok("my-bucket", 1));
    assert_true(dsc_bucket_vhost_ok("abc", 1));
    assert_true(dsc_bucket_vhost_ok("123", 1));
    assert_true(dsc_bucket_vhost_ok("a1-b2-c3", 1));
    assert_true(dsc_bucket_vhost_ok(b63, 1));
    assert_true(dsc_bucket_vhost_ok("my.bucket", 0));

    assert_false(dsc_bucket_vhost_ok("my.bucket", 1));
    assert_false(dsc_bucket_vhost_ok("my..bucket", 0));
    assert_false(dsc_bucket_vhost_ok("ab", 0));
    assert_false(dsc_bucket_vhost_ok("", 0));
    assert_false(dsc_bucket_vhost_ok(b64, 0));
    assert_false(dsc_bucket_vhost_ok("MyBucket", 0));
    assert_false(dsc_bucket_vhost_ok("my_bucket", 0));
    assert_false(dsc_bucket_vhost_ok("-bucket", 0));
    assert_false(dsc_bucket_vhost_ok("bucket-", 0));
    assert_false(dsc_bucket_vhost_ok(".bucket", 0));
    assert_false(dsc_bucket_vhost_ok("bucket.", 0));
    assert_false(dsc_bucket_vhost_ok("my bucket", 0));
}

static void test_host_is_literal(void **state)
{
    (void)state;
    assert_true(dsc_host_is_literal("127.0.0.1"));
    assert_true(dsc_host_is_literal("localhost"));
    assert_true(dsc_host_is_literal("[::1]"));
    assert_false(dsc_host_is_literal("s3.amazonaws.com"));
    assert_false(dsc_host_is_literal("minio"));
    assert_false(dsc_host_is_literal("10.0.0.1.nip.io"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3url_plain),
        cmocka_unit_test(test_s3url_key_literal_chars),
        cmocka_unit_test(test_s3url_key_unicode),
        cmocka_unit_test(test_s3url_slashes),
        cmocka_unit_test(test_s3url_bucket_only),
        cmocka_unit_test(test_s3url_key_1024_bytes_ok),
        cmocka_unit_test(test_s3url_null),
        cmocka_unit_test(test_s3url_empty),
        cmocka_unit_test(test_s3url_wrong_scheme),
        cmocka_unit_test(test_s3url_missing_bucket),
        cmocka_unit_test(test_s3url_bad_bucket),
        cmocka_unit_test(test_s3url_bad_utf8),
        cmocka_unit_test(test_s3url_control_chars),
        cmocka_unit_test(test_s3url_key_too_long),
        cmocka_unit_test(test_s3url_key_too_long_says_why),
        cmocka_unit_test(test_s3url_long_url_errors_say_why),
        cmocka_unit_test(test_endpoint_good),
        cmocka_unit_test(test_endpoint_default_port_folded),
        cmocka_unit_test(test_endpoint_ipv6),
        cmocka_unit_test(test_endpoint_host_lowered),
        cmocka_unit_test(test_endpoint_empty),
        cmocka_unit_test(test_endpoint_bad_scheme),
        cmocka_unit_test(test_endpoint_bad_port),
        cmocka_unit_test(test_endpoint_path_or_userinfo),
        cmocka_unit_test(test_endpoint_bad_host),
        cmocka_unit_test(test_encode_unreserved_kept),
        cmocka_unit_test(test_encode_reserved),
        cmocka_unit_test(test_encode_every_byte),
        cmocka_unit_test(test_encode_utf8_upper_hex),
        cmocka_unit_test(test_encode_keep_slash),
        cmocka_unit_test(test_encode_respects_length_and_appends),
        cmocka_unit_test(test_target_path_style),
        cmocka_unit_test(test_target_vhost),
        cmocka_unit_test(test_target_bucket_root),
        cmocka_unit_test(test_target_key_encoding),
        cmocka_unit_test(test_target_auto),
        cmocka_unit_test(test_bucket_vhost_ok),
        cmocka_unit_test(test_host_is_literal),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
