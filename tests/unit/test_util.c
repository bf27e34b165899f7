/* Sizes, buffers, randomness, error names and configuration defaults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)
#define TiB (INT64_C(1) << 40)

/* ---- dsc_parse_size ------------------------------------------------------ */

static void check_size(const char *s, int64_t want)
{
    int64_t got = dsc_parse_size(s);
    if (got != want)
        fail_msg("dsc_parse_size(\"%s\") = %lld, want %lld", s,
                 (long long)got, (long long)want);
}

static void test_parse_size_good(void **state)
{
    (void)state;
    check_size("20G", 20 * GiB);
    check_size("4MiB", 4 * MiB);
    check_size("512k", 512 * KiB);
    check_size("1000", 1000);
    check_size("1 GiB", GiB);
    check_size(" 2T ", 2 * TiB);
    check_size("0", 0);
    check_size("7B", 7);
    check_size("3K", 3 * KiB);
    check_size("3KB", 3 * KiB);
    check_size("3kib", 3 * KiB);
    check_size("5m", 5 * MiB);
    check_size("5MB", 5 * MiB);
    check_size("1g", GiB);
    check_size("1t", TiB);
    check_size("\t64M\n", 64 * MiB);
    /* The largest representable values. */
    check_size("9223372036854775807", INT64_MAX);
    check_size("8388607T", 8388607 * TiB);
}

static void test_parse_size_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "   ", "G", "MiB", "-1", "-1G", "+1G", "1.5G", "1,5G", "12Q",
        "1GG", "1Gx", "1 G B", "1iB", "0x10", "1e3", "G1", "1 2",
        "99999999999T", "8388608T", "9223372036854775808",
        "18446744073709551616", "99999999999999999999999999",
        "17179869184G", "8796093022208M",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++)
        check_size(bad[i], -1);
    assert_int_equal(dsc_parse_size(NULL), -1);
}

/* ---- dsc_buf ------------------------------------------------------------ */

static void test_buf_add_and_terminate(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_add(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    assert_int_equal(dsc_buf_add(&b, "defXXX", 3), 0);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    /* Binary data keeps its NUL bytes; len counts them. */
    assert_int_equal(dsc_buf_add(&b, "\0z", 2), 0);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "abcdef\0z", 9);
    assert_true(b.cap > b.len);
    dsc_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_empty_add_gives_string(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_add(&b, "", 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    dsc_buf_free(&b);
}

static void test_buf_grows(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    char chunk[1000];
    for (int i = 0; i < 300; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(dsc_buf_add(&b, chunk, sizeof chunk), 0);
    }
    assert_int_equal(b.len, 300000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (int i = 0; i < 300; i++) {
        assert_int_equal(b.data[i * 1000], 'a' + i % 26);
        assert_int_equal(b.data[i * 1000 + 999], 'a' + i % 26);
    }
    dsc_buf_free(&b);
}

static void test_buf_adds_printf(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_adds(&b, "GET "), 0);
    assert_int_equal(dsc_buf_printf(&b, "s3://%s/%s %d", "b", "k", 404), 0);
    assert_string_equal(b.data, "GET s3://b/k 404");
    assert_int_equal(b.len, strlen("GET s3://b/k 404"));
    assert_int_equal(dsc_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, strlen("GET s3://b/k 404"));

    /* printf output longer than the first allocation. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(dsc_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, strlen("GET s3://b/k 404") + 2 + 4999);
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(strlen(b.data), b.len);
    dsc_buf_free(&b);
}

static void test_buf_reset(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    dsc_buf_reset(&b); /* on a never-used buffer */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(dsc_buf_adds(&b, "hello"), 0);
    size_t cap = b.cap;
    dsc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* memory kept for reuse */
    assert_int_equal(dsc_buf_adds(&b, "hi"), 0);
    assert_string_equal(b.data, "hi");
    dsc_buf_free(&b);
    dsc_buf_free(&b); /* a second free is harmless */
}

static void test_strdup_null_safe(void **state)
{
    (void)state;
    assert_null(dsc_strdup(NULL));
    assert_null(dsc_strndup(NULL, 3));
    char *s = dsc_strdup("abc");
    assert_string_equal(s, "abc");
    free(s);
    s = dsc_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = dsc_strndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
}

/* ---- dsc_rand_below ----------------------------------------------------- */

static void test_rand_below_bounds(void **state)
{
    (void)state;
    assert_int_equal(dsc_rand_below(0), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dsc_rand_below(1), 0);
    for (int i = 0; i < 10000; i++)
        assert_true(dsc_rand_below(7) < 7);
    for (int i = 0; i < 10000; i++)
        assert_true(dsc_rand_below(UINT64_MAX) < UINT64_MAX);
}

/* Every value of a small range comes up (the chance that one of 10 values
 * is missed in 20000 draws is below 1e-900), and not always the same. */
static void test_rand_below_covers_range(void **state)
{
    (void)state;
    int hits[10] = { 0 };
    for (int i = 0; i < 20000; i++) {
        uint64_t v = dsc_rand_below(10);
        assert_true(v < 10);
        hits[v]++;
    }
    for (int i = 0; i < 10; i++) {
        if (hits[i] < 1000 || hits[i] > 3000)
            fail_msg("value %d drawn %d times of 20000", i, hits[i]);
    }
    /* Large ranges use the high bits too. */
    int high = 0;
    for (int i = 0; i < 1000; i++)
        high += dsc_rand_below(UINT64_C(1) << 62) >= (UINT64_C(1) << 61);
    assert_in_range(high, 350, 650);
}

/* ---- dsc_strerror ------------------------------------------------------- */

static void test_strerror_distinct(void **state)
{
    (void)state;
    static const int codes[] = {
        DSC_OK, DSC_EINVAL, DSC_ENOMEM, DSC_EURL, DSC_ENOTFOUND,
        DSC_EACCESS, DSC_ECREDS, DSC_ETIMEDOUT, DSC_ENET, DSC_ETHROTTLED,
        DSC_ESERVER, DSC_EPROTO, DSC_ECHANGED, DSC_EIO, DSC_ECANCELED,
        DSC_EHTTP, DSC_EAGAIN, DSC_ENOCACHE,
    };
    const char *unknown = dsc_strerror(-999);
    assert_string_equal(unknown, "unknown error");
    for (size_t i = 0; i < DSC_ARRAY_LEN(codes); i++) {
        const char *s = dsc_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        if (strcmp(s, unknown) == 0)
            fail_msg("dsc_strerror(%d) is \"%s\"", codes[i], s);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s, dsc_strerror(codes[j])) == 0)
                fail_msg("dsc_strerror(%d) == dsc_strerror(%d) == \"%s\"",
                         codes[i], codes[j], s);
    }
}

static void test_strerror_unknown(void **state)
{
    (void)state;
    static const int codes[] = { 1, 2, -99, -999, -1100, 100, -100, INT_MIN,
                                 INT_MAX };
    for (size_t i = 0; i < DSC_ARRAY_LEN(codes); i++)
        assert_string_equal(dsc_strerror(codes[i]), "unknown error");
}

/* The cut is decided by the input, whatever stale bytes the output
 * buffer held: no character dropped, none split. */
static void test_printable_cut_ignores_stale_output(void **state)
{
    (void)state;
    static const unsigned char stale[] = { 0x80, 'x', 0xA9, 0x00 };
    for (size_t k = 0; k < sizeof stale; k++) {
        char out[10];
        memset(out, stale[k], sizeof out);
        assert_string_equal(dsc_printable("abcdefghij", out, sizeof out),
                            "abcdef...");
        memset(out, stale[k], sizeof out);
        /* "é" (C3 A9) straddles the cut at 6: it goes whole. */
        assert_string_equal(dsc_printable("abcde\xc3\xa9" "fgh", out, sizeof out),
                            "abcde...");
        memset(out, stale[k], sizeof out);
        assert_string_equal(dsc_printable("ab\x01", out, sizeof out), "ab?");
    }
}

/* Out of memory is sticky: once an append failed, later ones change
 * nothing and fail, reset keeps the mark, free clears it. */
static void test_buf_oom_sticky(void **state)
{
    (void)state;
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_adds(&b, "ok"), 0);
    assert_false(dsc_buf_oom(&b));
    b.oom = 1;   /* as a failed realloc leaves it */
    assert_int_equal(dsc_buf_adds(&b, "more"), DSC_ENOMEM);
    assert_int_equal(dsc_buf_printf(&b, "%d", 42), DSC_ENOMEM);
    assert_int_equal(dsc_buf_add(&b, "x", 1), DSC_ENOMEM);
    assert_string_equal(b.data, "ok");
    dsc_buf_reset(&b);
    assert_true(dsc_buf_oom(&b));
    assert_int_equal(dsc_buf_adds(&b, "again"), DSC_ENOMEM);
    dsc_buf_free(&b);
    assert_false(dsc_buf_oom(&b));
    assert_int_equal(dsc_buf_adds(&b, "fresh"), 0);
    assert_string_equal(b.data, "fresh");
    dsc_buf_free(&b);
}

/* Internal outcomes sit in their reserved range, apart from every public
 * code, each with its own name; one leaked out says what it is. */
static void test_outcomes_reserved(void **state)
{
    (void)state;
    static const int outcomes[] = { DSC_ABSENT, DSC_EXISTS, DSC_NOT_ADMITTED,
                                    DSC_CORRUPT, DSC_EMPTY_RANGE, DSC_RETRY,
                                    DSC_BUSY };
    for (size_t i = 0; i < DSC_ARRAY_LEN(outcomes); i++) {
        int o = outcomes[i];
        assert_true(dsc_is_outcome(o));
        assert_true(o <= DSC_OUTCOME_FIRST && o >= DSC_OUTCOME_LAST);
        assert_non_null(dsc_outcome_name(o));
        assert_non_null(strstr(dsc_strerror(o), "internal outcome"));
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(o, outcomes[j]);
            assert_string_not_equal(dsc_outcome_name(o),
                                    dsc_outcome_name(outcomes[j]));
        }
    }
    /* Every value of the range is named: no hole a bare number could use. */
    for (int o = DSC_OUTCOME_FIRST; o >= DSC_OUTCOME_LAST; o--)
        assert_non_null(dsc_outcome_name(o));
    static const int public_codes[] = {
        DSC_OK, DSC_EINVAL, DSC_ENOMEM, DSC_EURL, DSC_ENOTFOUND,
        DSC_EACCESS, DSC_ECREDS, DSC_ETIMEDOUT, DSC_ENET, DSC_ETHROTTLED,
        DSC_ESERVER, DSC_EPROTO, DSC_ECHANGED, DSC_EIO, DSC_ECANCELED,
        DSC_EHTTP, DSC_EAGAIN, DSC_ENOCACHE,
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(public_codes); i++) {
        assert_false(dsc_is_outcome(public_codes[i]));
        assert_null(dsc_outcome_name(public_codes[i]));
    }
}

/* ---- dsc_config_init ---------------------------------------------------- */

static const char *const dsc_vars[] = {
    "DSC_S3_ADDRESSING", "DSC_CONNECT_TIMEOUT_MS", "DSC_REQUEST_TIMEOUT_MS",
    "DSC_MAX_RETRIES", "DSC_RETRY_BASE_MS", "DSC_RETRY_MAX_MS",
    "DSC_MAX_CONNECTIONS", "DSC_VERIFY_TLS", "DSC_META_TTL_MS",
};

static int clear_dsc_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < DSC_ARRAY_LEN(dsc_vars); i++)
        unsetenv(dsc_vars[i]);
    return 0;
}

static void test_config_bad_version(void **state)
{
    (void)state;
    dsc_config cfg;
    dsc_clear_error();
    assert_int_equal(dsc_config_init(&cfg, 0), DSC_EINVAL);
    assert_errmsg_has("version 0");

    dsc_clear_error();
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION + 1),
                     DSC_EINVAL);
    char v[32];
    snprintf(v, sizeof v, "version %u", DSC_CONFIG_VERSION + 1);
    assert_errmsg_has(v);

    dsc_clear_error();
    assert_int_equal(dsc_config_init(&cfg, UINT_MAX), DSC_EINVAL);
    assert_errmsg_has("version");

    dsc_clear_error();
    assert_int_equal(dsc_config_init(NULL, DSC_CONFIG_VERSION), DSC_EINVAL);
    assert_errmsg_has("NULL");
}

static void test_config_defaults(void **state)
{
    (void)state;
    dsc_config cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    assert_int_equal(cfg.version, DSC_CONFIG_VERSION);
    assert_null(cfg.endpoint);
    assert_null(cfg.region);
    assert_int_equal(cfg.addressing, DSC_ADDRESSING_AUTO);
    assert_null(cfg.access_key_id);
    assert_null(cfg.secret_access_key);
    assert_null(cfg.session_token);
    assert_null(cfg.profile);
    assert_int_equal(cfg.anonymous, 0);
    assert_int_equal(cfg.connect_timeout_ms, 3000);
    assert_int_equal(cfg.request_timeout_ms, 30000);
    assert_int_equal(cfg.max_retries, 5);
    assert_int_equal(cfg.retry_base_ms, 50);
    assert_int_equal(cfg.retry_max_ms, 5000);
    assert_int_equal(cfg.max_connections, 64);
    assert_int_equal(cfg.verify_tls, 1);
    assert_null(cfg.ca_file);
    assert_int_equal(cfg.meta_ttl_ms, 60000);
    assert_int_equal(cfg.prefetch_memory, (uint64_t)256 << 20);
    assert_int_equal(cfg.prefetch_loop, 1);
}

static int max_retries_with(const char *value)
{
    dsc_config cfg;
    setenv("DSC_MAX_RETRIES", value, 1);
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    unsetenv("DSC_MAX_RETRIES");
    return cfg.max_retries;
}

static void test_config_env_max_retries(void **state)
{
    (void)state;
    assert_int_equal(max_retries_with("7"), 7);
    assert_int_equal(max_retries_with("0"), 0);   /* 0: no retries */
    assert_int_equal(max_retries_with("100"), 100);
    /* Invalid values keep the default. */
    static const char *const bad[] = {
        "abc", "7x", "-1", "101", "", "1e2", "99999999999999999999",
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        int got = max_retries_with(bad[i]);
        if (got != 5)
            fail_msg("DSC_MAX_RETRIES=\"%s\" gave %d, want default 5",
                     bad[i], got);
    }
}

static int addressing_with(const char *value)
{
    dsc_config cfg;
    setenv("DSC_S3_ADDRESSING", value, 1);
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    unsetenv("DSC_S3_ADDRESSING");
    return cfg.addressing;
}

static void test_config_env_addressing(void **state)
{
    (void)state;
    assert_int_equal(addressing_with("path"), DSC_ADDRESSING_PATH);
    assert_int_equal(addressing_with("virtual"), DSC_ADDRESSING_VHOST);
    assert_int_equal(addressing_with("auto"), DSC_ADDRESSING_AUTO);
    assert_int_equal(addressing_with("bogus"), DSC_ADDRESSING_AUTO);
    assert_int_equal(addressing_with(""), DSC_ADDRESSING_AUTO);
}

static void test_config_env_other_numbers(void **state)
{
    (void)state;
    dsc_config cfg;
    setenv("DSC_CONNECT_TIMEOUT_MS", "1500", 1);
    setenv("DSC_REQUEST_TIMEOUT_MS", "0", 1);     /* below minimum: ignored */
    setenv("DSC_MAX_CONNECTIONS", "8", 1);
    setenv("DSC_VERIFY_TLS", "0", 1);
    setenv("DSC_META_TTL_MS", "soon", 1);        /* not a number: ignored */
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    assert_int_equal(cfg.connect_timeout_ms, 1500);
    assert_int_equal(cfg.request_timeout_ms, 30000);
    assert_int_equal(cfg.max_connections, 8);
    assert_int_equal(cfg.verify_tls, 0);
    assert_int_equal(cfg.meta_ttl_ms, 60000);
    clear_dsc_env(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_dsc_env, clear_dsc_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size_good),
        cmocka_unit_test(test_parse_size_bad),
        cmocka_unit_test(test_buf_add_and_terminate),
        cmocka_unit_test(test_buf_empty_add_gives_string),
        cmocka_unit_test(test_buf_grows),
        cmocka_unit_test(test_buf_adds_printf),
        cmocka_unit_test(test_buf_reset),
        cmocka_unit_test(test_strdup_null_safe),
        cmocka_unit_test(test_rand_below_bounds),
        cmocka_unit_test(test_rand_below_covers_range),
        cmocka_unit_test(test_strerror_distinct),
        cmocka_unit_test(test_strerror_unknown),
        cmocka_unit_test(test_outcomes_reserved),
        cmocka_unit_test(test_buf_oom_sticky),
        cmocka_unit_test(test_printable_cut_ignores_stale_output),
        T(test_config_bad_version),
        T(test_config_defaults),
        T(test_config_env_max_retries),
        T(test_config_env_addressing),
        T(test_config_env_other_numbers),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
