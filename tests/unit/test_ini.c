/* The INI dialect of ~/.aws/credentials and ~/.aws/config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3/ini.h"

/* Every callback is recorded as "section|key|value". */
#define MAX_ENTRIES 32

typedef struct seen {
    int n;
    char entry[MAX_ENTRIES][256];
    int stop_at;      /* 1-based call number that returns stop_rc; 0 never */
    int stop_rc;
} seen;

static int record(void *arg, const char *section, const char *key,
                  const char *value)
{
    seen *s = arg;
    assert_non_null(section);
    assert_non_null(key);
    assert_non_null(value);
    assert_true(s->n < MAX_ENTRIES);
    snprintf(s->entry[s->n], sizeof s->entry[s->n], "%s|%s|%s", section, key,
             value);
    s->n++;
    return s->n == s->stop_at ? s->stop_rc : 0;
}

/* Parse text and compare the callbacks with want[0..nwant). */
static void check_parse(const char *text, const char *const *want,
                        int nwant)
{
    seen s = { 0 };
    int rc = dsc_ini_parse(text, strlen(text), record, &s);
    assert_int_equal(rc, 0);
    for (int i = 0; i < s.n && i < nwant; i++)
        assert_string_equal(s.entry[i], want[i]);
    if (s.n != nwant)
        fail_msg("%d entries reported, want %d (first extra/missing: \"%s\")",
                 s.n, nwant, s.n > nwant ? s.entry[nwant] : want[s.n]);
}

#define CHECK(text, ...)                                                  \
    do {                                                                  \
        static const char *const want_[] = { __VA_ARGS__ };               \
        check_parse((text), want_, (int)(sizeof want_ / sizeof *want_));  \
    } while (0)

#define CHECK_NONE(text) check_parse((text), NULL, 0)

static void test_sections(void **state)
{
    (void)state;
    CHECK("[default]\n"
          "aws_access_key_id = AKIDDEFAULT\n"
          "region = us-east-1\n"
          "[profile dev]\n"
          "region=eu-west-1\n"
          "[dev]\n"
          "aws_access_key_id=AKIDDEV\n",
          "default|aws_access_key_id|AKIDDEFAULT",
          "default|region|us-east-1",
          "profile dev|region|eu-west-1",
          "dev|aws_access_key_id|AKIDDEV");
}

static void test_key_before_any_section(void **state)
{
    (void)state;
    CHECK("region = r0\n[s]\nregion = r1\n", "|region|r0", "s|region|r1");
}

static void test_section_name_trimmed(void **state)
{
    (void)state;
    CHECK("  [ default ]  \nk = v\n[\tprofile dev\t]\nk = w\n",
          "default|k|v", "profile dev|k|w");
}

static void test_comments_and_blank_lines(void **state)
{
    (void)state;
    CHECK("# leading comment\n"
          "; another\n"
          "\n"
          "   \t \n"
          "[default]\n"
          "    # indented comment = not a key\n"
          "\t; also = not a key\n"
          "region = us-west-2\n"
          "#region = commented-out\n"
          ";k = x\n"
          "\n",
          "default|region|us-west-2");
}

static void test_trimming(void **state)
{
    (void)state;
    CHECK("[d]\n  key   =   value with  inner  blanks \t \n"
          "\tk2\t=\tv2\t\n",
          "d|key|value with  inner  blanks", "d|k2|v2");
}

static void test_equals_in_value(void **state)
{
    (void)state;
    CHECK("[d]\n"
          "aws_session_token = IQoJb3JpZ2luX2VjEJ//////////wEaCXVz==\n"
          "k = a=b==c\n"
          "k2==x\n",
          "d|aws_session_token|IQoJb3JpZ2luX2VjEJ//////////wEaCXVz==",
          "d|k|a=b==c", "d|k2|=x");
}

/* botocore reads these files with configparser's defaults: '#' and ';'
 * start comments only at the start of a line, never after a value. */
static void test_no_inline_comments(void **state)
{
    (void)state;
    CHECK("[d]\n"
          "region = us-west-2 # my region\n"
          "output = json\t; tab then semicolon\n"
          "k = v    #   lots of blanks   \n",
          "d|region|us-west-2 # my region",
          "d|output|json\t; tab then semicolon",
          "d|k|v    #   lots of blanks");
}

static void test_hash_in_secret_survives(void **state)
{
    (void)state;
    CHECK("[d]\n"
          "aws_secret_access_key = wJalr#XUtn;FEMI/K7MD+ENG#\n"
          "aws_session_token = abc;def#ghi\n",
          "d|aws_secret_access_key|wJalr#XUtn;FEMI/K7MD+ENG#",
          "d|aws_session_token|abc;def#ghi");
}

static void test_nested_block(void **state)
{
    (void)state;
    CHECK("[profile minio]\n"
          "s3 =\n"
          "    endpoint_url = http://127.0.0.1:9000\n"
          "    addressing_style = path\n"
          "region = us-east-1\n",
          "profile minio|s3|",
          "profile minio|s3.endpoint_url|http://127.0.0.1:9000",
          "profile minio|s3.addressing_style|path",
          "profile minio|region|us-east-1");
}

static void test_nested_block_with_comments_and_tabs(void **state)
{
    (void)state;
    CHECK("[profile x]\n"
          "s3 =\n"
          "    # a comment inside the block\n"
          "\n"
          "\tendpoint_url = http://h:1\n",
          "profile x|s3|", "profile x|s3.endpoint_url|http://h:1");
}

/* A nested block ends at the next top-level key or section. */
static void test_nested_block_ends(void **state)
{
    (void)state;
    CHECK("[a]\n"
          "s3 =\n"
          "  x = 1\n"
          "[b]\n"
          "  y = 2\n",
          "a|s3|", "a|s3.x|1", "b|y|2");
    CHECK("[a]\n"
          "s3 =\n"
          "  x = 1\n"
          "region = r\n"
          "sts =\n"
          "  x = 2\n",
          "a|s3|", "a|s3.x|1", "a|region|r", "a|sts|", "a|sts.x|2");
}

static void test_crlf(void **state)
{
    (void)state;
    CHECK("[default]\r\n"
          "aws_access_key_id = AKID\r\n"
          "# comment\r\n"
          "\r\n"
          "[ profile p ]\r\n"
          "s3 =\r\n"
          "  endpoint_url = http://e:9000\r\n"
          "k = v\r\n",
          "default|aws_access_key_id|AKID", "profile p|s3|",
          "profile p|s3.endpoint_url|http://e:9000", "profile p|k|v");
}

static void test_no_trailing_newline(void **state)
{
    (void)state;
    CHECK("[d]\nk = v", "d|k|v");
    CHECK("[d]\r\nk = v\r", "d|k|v");
    CHECK("k=v", "|k|v");
}

/* Only text[0..len) is parsed; the text need not be NUL-terminated. */
static void test_length_respected(void **state)
{
    (void)state;
    char buf[] = "[d]\nk = value\nother = x\n";
    seen s = { 0 };
    size_t len = strlen("[d]\nk = val");
    assert_int_equal(dsc_ini_parse(buf, len, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.entry[0], "d|k|val");

    char raw[4] = { 'k', '=', 'v', 'X' }; /* no NUL at all */
    memset(&s, 0, sizeof s);
    assert_int_equal(dsc_ini_parse(raw, 3, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.entry[0], "|k|v");
}

static void test_malformed_lines_skipped(void **state)
{
    (void)state;
    CHECK("[d]\n"
          "this line has no equals sign\n"
          "= value without key\n"
          "   =   \n"
          "k = v\n"
          "]\n"
          "k2 = v2\n",
          "d|k|v", "d|k2|v2");
}

static void test_empty_value(void **state)
{
    (void)state;
    CHECK("[d]\nk =\nk2 =   \n", "d|k|", "d|k2|");
}

static void test_keys_case_sensitive(void **state)
{
    (void)state;
    CHECK("[Default]\nRegion = x\nregion = y\n",
          "Default|Region|x", "Default|region|y");
}

static void test_callback_stop(void **state)
{
    (void)state;
    const char *text = "[d]\na = 1\nb = 2\nc = 3\nd = 4\n";
    seen s = { .stop_at = 2, .stop_rc = 7 };
    assert_int_equal(dsc_ini_parse(text, strlen(text), record, &s), 7);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.entry[1], "d|b|2");

    memset(&s, 0, sizeof s);
    s.stop_at = 1;
    s.stop_rc = -42;
    assert_int_equal(dsc_ini_parse(text, strlen(text), record, &s), -42);
    assert_int_equal(s.n, 1);
}

static void test_empty_input(void **state)
{
    (void)state;
    seen s = { 0 };
    assert_int_equal(dsc_ini_parse("", 0, record, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(dsc_ini_parse("k = v", 0, record, &s), 0);
    assert_int_equal(s.n, 0);
    CHECK_NONE("\n\n\r\n   \n");
    CHECK_NONE("# only\n; comments\n[and a section]\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_key_before_any_section),
        cmocka_unit_test(test_section_name_trimmed),
        cmocka_unit_test(test_comments_and_blank_lines),
        cmocka_unit_test(test_trimming),
        cmocka_unit_test(test_equals_in_value),
        cmocka_unit_test(test_no_inline_comments),
        cmocka_unit_test(test_hash_in_secret_survives),
        cmocka_unit_test(test_nested_block),
        cmocka_unit_test(test_nested_block_with_comments_and_tabs),
        cmocka_unit_test(test_nested_block_ends),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_no_trailing_newline),
        cmocka_unit_test(test_length_respected),
        cmocka_unit_test(test_malformed_lines_skipped),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_keys_case_sensitive),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_empty_input),
    };
    return cmocka_run_group_tests_name("ini", tests, NULL, NULL);
}
