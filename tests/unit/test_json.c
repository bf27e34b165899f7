/* The JSON reader and the expiration time forms of the credential sources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "core/json.h"

static int get(const char *text, const char *path, dsc_json_val *v)
{
    return dsc_json_get(text, strlen(text), path, v);
}

static void want_string(const char *text, const char *path, const char *want)
{
    char *s = NULL;
    int rc = dsc_json_string(text, strlen(text), path, &s);
    if (rc)
        fail_msg("%s in %s: rc %d (%s)", path, text, rc, dsc_errmsg());
    assert_string_equal(s, want);
    free(s);
}

static void want_rc(const char *text, const char *path, int want)
{
    dsc_json_val v;
    int rc = get(text, path, &v);
    if (rc != want)
        fail_msg("%s in %s: rc %d, want %d", path, text, rc, want);
    if (rc)
        assert_null(v.text);
    dsc_json_val_free(&v);
}

static void test_flat_object(void **state)
{
    (void)state;
    const char *doc = "{\"Version\": 1, \"AccessKeyId\": \"AKID\",\n"
                      " \"SecretAccessKey\" : \"sec/ret+\",\"Token\":null}";
    want_string(doc, "AccessKeyId", "AKID");
    want_string(doc, "SecretAccessKey", "sec/ret+");
    dsc_json_val v;
    assert_int_equal(get(doc, "Version", &v), 0);
    assert_int_equal(v.type, DSC_JSON_NUMBER);
    assert_string_equal(v.text, "1");
    dsc_json_val_free(&v);
    want_rc(doc, "Missing", DSC_ABSENT);
    /* null reads as absent for a string; a number is not a string */
    char *s;
    assert_int_equal(dsc_json_string(doc, strlen(doc), "Token", &s), DSC_ABSENT);
    assert_int_equal(dsc_json_string(doc, strlen(doc), "Version", &s), DSC_EPROTO);
    assert_null(s);
}

static void test_nested_path(void **state)
{
    (void)state;
    const char *doc = "{\"roleCredentials\":{\"accessKeyId\":\"A\","
                      "\"expiration\":1700000000123,"
                      "\"inner\":{\"x\":[1,{\"accessKeyId\":\"decoy\"}]}},"
                      "\"accessKeyId\":\"top\"}";
    want_string(doc, "roleCredentials.accessKeyId", "A");
    want_string(doc, "accessKeyId", "top");
    dsc_json_val v;
    assert_int_equal(get(doc, "roleCredentials.expiration", &v), 0);
    assert_string_equal(v.text, "1700000000123");
    dsc_json_val_free(&v);
    assert_int_equal(get(doc, "roleCredentials.inner", &v), 0);
    assert_int_equal(v.type, DSC_JSON_OBJECT);
    dsc_json_val_free(&v);
    /* A path through a non-object finds nothing. */
    want_rc(doc, "roleCredentials.accessKeyId.x", DSC_ABSENT);
    want_rc(doc, "roleCredentials.inner.x.accessKeyId", DSC_ABSENT);
}

static void test_escapes(void **state)
{
    (void)state;
    want_string("{\"k\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}", "k",
                "a\"b\\c/d\b\f\n\r\t");
    want_string("{\"k\":\"\\u00e9\\u20AC\"}", "k", "\xc3\xa9\xe2\x82\xac");
    /* A surrogate pair is one code point (U+1F600). */
    want_string("{\"k\":\"\\ud83d\\ude00\"}", "k", "\xf0\x9f\x98\x80");
    /* A lone surrogate becomes U+FFFD. */
    want_string("{\"k\":\"\\ud800x\"}", "k", "\xef\xbf\xbdx");
    /* Escaped keys match their decoded form. */
    want_string("{\"\\u0041ccessKeyId\":\"A\"}", "AccessKeyId", "A");
    /* Raw UTF-8 passes through. */
    want_string("{\"k\":\"\xc3\xa9\"}", "k", "\xc3\xa9");
}

static void test_last_key_wins(void **state)
{
    (void)state;
    want_string("{\"k\":\"first\",\"k\":\"second\"}", "k", "second");
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "{\"k\":}", "{\"k\":\"v\",}", "[1,]", "{\"k\" \"v\"}",
        "{'k':'v'}", "{\"k\":\"v\"} x", "{\"k\":01}", "{\"k\":1.}",
        "{\"k\":-}", "{\"k\":1e}", "{\"k\":tru}", "{\"k\":\"\\x\"}",
        "{\"k\":\"\\u12\"}", "{\"k\":\"a\nb\"}", "{\"k\":\"open}",
        "{k:1}", "nul", "{\"k\":NaN}",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        dsc_json_val v;
        int rc = get(bad[i], "k", &v);
        if (rc != DSC_EPROTO)
            fail_msg("'%s': rc %d, want DSC_EPROTO", bad[i], rc);
    }
    assert_errmsg_has("JSON");
    /* A NUL inside the string asked for cannot be handed out. */
    want_rc("{\"k\":\"a\\u0000b\"}", "k", DSC_EPROTO);
    /* Valid odd ones. */
    want_rc(" {\"k\" : -0.5e+10 } ", "k", 0);
    want_rc("[]", "k", DSC_ABSENT);
    want_rc("\"s\"", "", 0);
}

static void test_depth_bounded(void **state)
{
    (void)state;
    char doc[400];
    memset(doc, '[', 300);
    doc[300] = 0;
    want_rc(doc, "k", DSC_EPROTO);
    /* 30 levels are fine. */
    char ok[200] = "";
    for (int i = 0; i < 30; i++)
        strcat(ok, "[");
    for (int i = 0; i < 30; i++)
        strcat(ok, "]");
    want_rc(ok, "k", DSC_ABSENT);
}

/* Not NUL-terminated input: only len bytes are read. */
static void test_length_bounded(void **state)
{
    (void)state;
    const char doc[] = "{\"k\":\"v\"}GARBAGE";
    dsc_json_val v;
    assert_int_equal(dsc_json_get(doc, 9, "k", &v), 0);
    assert_string_equal(v.text, "v");
    dsc_json_val_free(&v);
    assert_int_equal(dsc_json_get(doc, 8, "k", &v), DSC_EPROTO);
}

static void test_iso8601(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(dsc_time_iso8601("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(dsc_time_iso8601("2024-05-01T12:34:56Z", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_iso8601("2024-05-01T12:34:56.789Z", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_iso8601("2024-05-01T14:34:56+02:00", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_iso8601("2024-05-01T07:34:56-0500", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_iso8601("2024-05-01 12:34:56UTC", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_iso8601("2024-05-01T12:34:56", &t), 0);
    assert_int_equal(t, 1714566896);
    /* A leap day. */
    assert_int_equal(dsc_time_iso8601("2000-02-29T00:00:00Z", &t), 0);
    assert_int_equal(t, 951782400);
    static const char *const bad[] = {
        "", "2024-05-01", "2024-05-01T12:34Z", "2024-13-01T00:00:00Z",
        "2024-05-01T24:00:00Z", "2024-05-01T12:34:56Zjunk",
        "2024-05-01T12:34:56.Z", "24-05-01T12:34:56Z", "1714566896",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++)
        if (dsc_time_iso8601(bad[i], &t) != -1)
            fail_msg("'%s' parsed", bad[i]);
}

static void test_epoch_ms(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(dsc_time_epoch_ms("1714566896789", &t), 0);
    assert_int_equal(t, 1714566896);
    assert_int_equal(dsc_time_epoch_ms("", &t), -1);
    assert_int_equal(dsc_time_epoch_ms("1.5e12", &t), -1);
    assert_int_equal(dsc_time_epoch_ms("-5", &t), -1);
    assert_int_equal(dsc_time_epoch_ms("99999999999999999999999", &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_object),
        cmocka_unit_test(test_nested_path),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_last_key_wins),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth_bounded),
        cmocka_unit_test(test_length_bounded),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_epoch_ms),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
