/* S3 error bodies and ListObjectsV2 pages. */
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
#include "s3/xml.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- Error bodies -------------------------------------------------------- */

static void check_error(const char *xml, const char *code, const char *msg,
                        const char *request_id)
{
    dsc_s3_error e;
    int rc = dsc_s3xml_parse_error(xml, strlen(xml), &e);
    if (rc != 0)
        fail_msg("dsc_s3xml_parse_error = %d (%s)", rc, dsc_errmsg());
    if (code)
        assert_string_equal(e.code, code);
    else
        assert_null(e.code);
    if (msg)
        assert_string_equal(e.message, msg);
    else
        assert_null(e.message);
    if (request_id)
        assert_string_equal(e.request_id, request_id);
    else
        assert_null(e.request_id);
    dsc_s3_error_free(&e);
    assert_null(e.code);
    assert_null(e.message);
    assert_null(e.request_id);
}

static void test_error_nosuchkey(void **state)
{
    (void)state;
    check_error(XML_DECL
                "<Error>\n"
                "  <Code>NoSuchKey</Code>\n"
                "  <Message>The specified key does not exist.</Message>\n"
                "  <Key>train/shard-00017.tar</Key>\n"
                "  <RequestId>4442587FB7D0A2F9</RequestId>\n"
                "  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPf"
                "TaOFg==</HostId>\n"
                "</Error>\n",
                "NoSuchKey", "The specified key does not exist.",
                "4442587FB7D0A2F9");
}

static void test_error_access_denied(void **state)
{
    (void)state;
    check_error(XML_DECL
                "<Error><Code>AccessDenied</Code><Message>Access Denied"
                "</Message><RequestId>656c76696e6727732072657175657374"
                "</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/"
                "C1NPcfTWAtRPfTaOFg==</HostId></Error>",
                "AccessDenied", "Access Denied",
                "656c76696e6727732072657175657374");
}

static void test_error_slowdown(void **state)
{
    (void)state;
    check_error(XML_DECL
                "<Error>\n"
                "  <Code>SlowDown</Code>\n"
                "  <Message>Please reduce your request rate.</Message>\n"
                "  <RequestId>A1B2C3D4E5F60718</RequestId>\n"
                "  <HostId>abc/def+ghi=</HostId>\n"
                "</Error>",
                "SlowDown", "Please reduce your request rate.",
                "A1B2C3D4E5F60718");
}

/* s3rver 3.7 (models/error.js toXML): no RequestId, no newline inside. */
static void test_error_s3rver_invalid_access_key(void **state)
{
    (void)state;
    check_error(XML_DECL
                "<Error><Code>InvalidAccessKeyId</Code><Message>The AWS "
                "Access Key Id you provided does not exist in our records."
                "</Message><AWSAccessKeyId>AKIDNOPE</AWSAccessKeyId></Error>",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our "
                "records.", NULL);
}

static void test_error_entities_and_missing_fields(void **state)
{
    (void)state;
    check_error("<Error><Code>InvalidArgument</Code>"
                "<Message>a &lt; b &amp; &quot;c&quot; caf\xc3\xa9</Message>"
                "</Error>",
                "InvalidArgument", "a < b & \"c\" caf\xc3\xa9", NULL);
    check_error("<Error/>", NULL, NULL, NULL);
}

/* Only the length given is parsed. */
static void test_error_length_respected(void **state)
{
    (void)state;
    const char *body = "<Error><Code>X</Code></Error>GARBAGE<<<";
    dsc_s3_error e;
    assert_int_equal(dsc_s3xml_parse_error(body, strlen("<Error><Code>X"
                                           "</Code></Error>"), &e), 0);
    assert_string_equal(e.code, "X");
    dsc_s3_error_free(&e);
}

static void check_bad_error(const char *xml, size_t len, const char *msg_part)
{
    dsc_s3_error e;
    dsc_clear_error();
    int rc = dsc_s3xml_parse_error(xml, len, &e);
    if (rc != DSC_EPROTO)
        fail_msg("dsc_s3xml_parse_error(\"%.*s\") = %d, want DSC_EPROTO",
                 (int)len, xml, rc);
    assert_null(e.code);
    assert_null(e.message);
    assert_null(e.request_id);
    assert_errmsg_has(msg_part);
}

#define BAD_ERROR(s, part) check_bad_error((s), strlen(s), (part))

static void test_error_garbage(void **state)
{
    (void)state;
    BAD_ERROR("this is not XML", "malformed XML");
    BAD_ERROR("", "malformed XML");
    check_bad_error("\0\0\0\0", 4, "malformed XML");
    BAD_ERROR("<Error><Code>A</Code></Error><Error/>", "malformed XML");
}

static void test_error_truncated(void **state)
{
    (void)state;
    BAD_ERROR(XML_DECL "<Error><Code>NoSuchKey</Code><Mess", "malformed XML");
    BAD_ERROR(XML_DECL "<Error><Code>NoSuchKey</Code>", "malformed XML");
    BAD_ERROR(XML_DECL "<Error><Code>NoSuchKey</Error>", "malformed XML");
}

static void test_error_wrong_root(void **state)
{
    (void)state;
    BAD_ERROR("<html><body><h1>502 Bad Gateway</h1></body></html>",
              "document element");
    BAD_ERROR("<ListBucketResult xmlns=\"" S3_NS "\"></ListBucketResult>",
              "document element");
    BAD_ERROR("<error><Code>X</Code></error>", "document element");
    BAD_ERROR("<Wrapper><Error><Code>X</Code></Error></Wrapper>",
              "document element");
}

/* ---- ListObjectsV2 pages ------------------------------------------------ */

typedef struct listed {
    int n;
    char key[8][256];
    uint64_t size[8];
    char etag[8][64];
    char last_modified[8][64];
    int stop_at;      /* 1-based call that returns stop_rc; 0 never */
    int stop_rc;
} listed;

static int on_obj(void *arg, const char *key, uint64_t size, const char *etag,
                  const char *last_modified)
{
    listed *l = arg;
    assert_non_null(key);
    assert_non_null(etag);
    assert_non_null(last_modified);
    assert_true(l->n < 8);
    snprintf(l->key[l->n], sizeof l->key[l->n], "%s", key);
    l->size[l->n] = size;
    snprintf(l->etag[l->n], sizeof l->etag[l->n], "%s", etag);
    snprintf(l->last_modified[l->n], sizeof l->last_modified[l->n], "%s",
             last_modified);
    l->n++;
    return l->n == l->stop_at ? l->stop_rc : 0;
}

#define CONTENTS(key, lm, etag, size)                                     \
    "<Contents><Key>" key "</Key><LastModified>" lm "</LastModified>"     \
    "<ETag>" etag "</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>"   \
    "<Size>" size "</Size><Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e"  \
    "7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>webfile"             \
    "</DisplayName></Owner><StorageClass>STANDARD</StorageClass>"         \
    "</Contents>\n"

static const char page_three[] =
    XML_DECL
    "<ListBucketResult xmlns=\"" S3_NS "\">\n"
    "  <Name>my-bucket</Name>\n"
    "  <Prefix>data/</Prefix>\n"
    "  <ContinuationToken>previous-token</ContinuationToken>\n"
    "  <KeyCount>3</KeyCount>\n"
    "  <MaxKeys>3</MaxKeys>\n"
    "  <IsTruncated>true</IsTruncated>\n"
    "  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken>\n"
    "  " CONTENTS("data/a&amp;b.txt", "2009-10-12T17:50:30.000Z",
                  "&quot;fba9dede5f27731c9771645a39863328&quot;", "434234")
    "  " CONTENTS("data/x&lt;y&gt;z &apos;q&apos;", "2009-10-12T17:50:31.000Z",
                  "\"599bab3ed2c697f1d26842727561fd94\"", "0")
    "  " CONTENTS("data/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.bin",
                  "2024-01-02T03:04:05.000Z",
                  "\"9b2cf535f27731c974343645a3985328-2\"", "5497558138880")
    "  <CommonPrefixes><Prefix>data/sub/</Prefix></CommonPrefixes>\n"
    "</ListBucketResult>\n";

static void test_list_page(void **state)
{
    (void)state;
    listed l = { 0 };
    dsc_s3_list_page pg;
    int rc = dsc_s3xml_parse_list(page_three, strlen(page_three), on_obj, &l,
                                  &pg);
    if (rc != 0)
        fail_msg("dsc_s3xml_parse_list = %d (%s)", rc, dsc_errmsg());
    assert_int_equal(l.n, 3);
    assert_int_equal(pg.count, 3);
    assert_string_equal(l.key[0], "data/a&b.txt");
    assert_string_equal(l.key[1], "data/x<y>z 'q'");
    assert_string_equal(l.key[2],
                        "data/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.bin");
    assert_int_equal(l.size[0], 434234);
    assert_int_equal(l.size[1], 0);
    assert_true(l.size[2] == UINT64_C(5497558138880));
    assert_string_equal(l.etag[0], "\"fba9dede5f27731c9771645a39863328\"");
    assert_string_equal(l.etag[2], "\"9b2cf535f27731c974343645a3985328-2\"");
    assert_string_equal(l.last_modified[0], "2009-10-12T17:50:30.000Z");
    assert_string_equal(l.last_modified[2], "2024-01-02T03:04:05.000Z");
    assert_true(pg.truncated);
    assert_non_null(pg.next_token);
    assert_string_equal(pg.next_token,
                        "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    dsc_s3_list_page_free(&pg);
    assert_null(pg.next_token);
}

static void test_list_last_page(void **state)
{
    (void)state;
    static const char xml[] =
        XML_DECL
        "<ListBucketResult xmlns=\"" S3_NS "\">"
        "<Name>my-bucket</Name><Prefix></Prefix><KeyCount>1</KeyCount>"
        "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        CONTENTS("only", "2024-01-01T00:00:00.000Z", "\"e\"", "7")
        "</ListBucketResult>";
    listed l = { 0 };
    dsc_s3_list_page pg;
    assert_int_equal(dsc_s3xml_parse_list(xml, strlen(xml), on_obj, &l, &pg),
                     0);
    assert_false(pg.truncated);
    assert_null(pg.next_token);
    assert_int_equal(pg.count, 1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.key[0], "only");
    assert_int_equal(l.size[0], 7);
    dsc_s3_list_page_free(&pg);
}

static void test_list_empty(void **state)
{
    (void)state;
    static const char xml[] =
        XML_DECL
        "<ListBucketResult xmlns=\"" S3_NS "\">\n"
        "  <Name>my-bucket</Name>\n"
        "  <Prefix>nothing-here/</Prefix>\n"
        "  <KeyCount>0</KeyCount>\n"
        "  <MaxKeys>1000</MaxKeys>\n"
        "  <IsTruncated>false</IsTruncated>\n"
        "</ListBucketResult>\n";
    listed l = { 0 };
    dsc_s3_list_page pg;
    assert_int_equal(dsc_s3xml_parse_list(xml, strlen(xml), on_obj, &l, &pg),
                     0);
    assert_int_equal(l.n, 0);
    assert_int_equal(pg.count, 0);
    assert_false(pg.truncated);
    assert_null(pg.next_token);
    dsc_s3_list_page_free(&pg);

    /* Self-closing root, as some servers send. */
    static const char xml2[] = "<ListBucketResult xmlns=\"" S3_NS "\"/>";
    assert_int_equal(dsc_s3xml_parse_list(xml2, strlen(xml2), on_obj, &l,
                                          &pg), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(pg.count, 0);
    dsc_s3_list_page_free(&pg);
}

/* S3 sends the namespace; a page without it must parse the same. */
static void test_list_namespace_optional(void **state)
{
    (void)state;
    static const char with_ns[] =
        "<ListBucketResult xmlns=\"" S3_NS "\"><IsTruncated>true"
        "</IsTruncated><NextContinuationToken>t</NextContinuationToken>"
        "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>";
    static const char without_ns[] =
        "<ListBucketResult><IsTruncated>true"
        "</IsTruncated><NextContinuationToken>t</NextContinuationToken>"
        "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>";
    const char *docs[] = { with_ns, without_ns };
    for (int i = 0; i < 2; i++) {
        listed l = { 0 };
        dsc_s3_list_page pg;
        assert_int_equal(dsc_s3xml_parse_list(docs[i], strlen(docs[i]),
                                              on_obj, &l, &pg), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.key[0], "k");
        assert_int_equal(l.size[0], 1);
        /* Absent ETag and LastModified come through as "". */
        assert_string_equal(l.etag[0], "");
        assert_string_equal(l.last_modified[0], "");
        assert_true(pg.truncated);
        assert_string_equal(pg.next_token, "t");
        dsc_s3_list_page_free(&pg);
    }
}

/* Only the Contents/Key directly under the root counts. */
static void test_list_ignores_lookalikes(void **state)
{
    (void)state;
    static const char xml[] =
        "<ListBucketResult xmlns=\"" S3_NS "\">"
        "<Key>not-an-object</Key><Size>5</Size>"
        "<CommonPrefixes><Prefix>p/</Prefix><Key>no</Key></CommonPrefixes>"
        "<Other><Contents><Key>nested</Key><Size>1</Size></Contents></Other>"
        "<Contents><Key>real</Key><Owner><Key>owner-key</Key></Owner>"
        "<Size>2</Size></Contents>"
        "<Extra><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>x</NextContinuationToken></Extra>"
        "</ListBucketResult>";
    listed l = { 0 };
    dsc_s3_list_page pg;
    assert_int_equal(dsc_s3xml_parse_list(xml, strlen(xml), on_obj, &l, &pg),
                     0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.key[0], "real");
    assert_int_equal(l.size[0], 2);
    assert_false(pg.truncated);
    assert_null(pg.next_token);
    dsc_s3_list_page_free(&pg);
}

static void test_list_callback_stop(void **state)
{
    (void)state;
    listed l = { .stop_at = 2, .stop_rc = 42 };
    dsc_s3_list_page pg;
    assert_int_equal(dsc_s3xml_parse_list(page_three, strlen(page_three),
                                          on_obj, &l, &pg), 42);
    assert_int_equal(l.n, 2);
    dsc_s3_list_page_free(&pg);

    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    l.stop_rc = DSC_ECANCELED;
    assert_int_equal(dsc_s3xml_parse_list(page_three, strlen(page_three),
                                          on_obj, &l, &pg), DSC_ECANCELED);
    assert_int_equal(l.n, 1);
    dsc_s3_list_page_free(&pg);
}

static void check_bad_list(const char *xml, size_t len, const char *msg_part)
{
    listed l = { 0 };
    dsc_s3_list_page pg;
    dsc_clear_error();
    int rc = dsc_s3xml_parse_list(xml, len, on_obj, &l, &pg);
    if (rc != DSC_EPROTO)
        fail_msg("dsc_s3xml_parse_list = %d, want DSC_EPROTO (%.200s)", rc,
                 xml);
    assert_null(pg.next_token);
    assert_errmsg_has(msg_part);
}

#define BAD_LIST(s, part) check_bad_list((s), strlen(s), (part))

#define ONE_ENTRY(body)                                                   \
    "<ListBucketResult xmlns=\"" S3_NS "\"><IsTruncated>false"            \
    "</IsTruncated>" body "</ListBucketResult>"

static void test_list_entry_without_key(void **state)
{
    (void)state;
    BAD_LIST(ONE_ENTRY("<Contents><Size>1</Size><ETag>\"e\"</ETag>"
                       "</Contents>"), "Key");
    BAD_LIST(ONE_ENTRY("<Contents></Contents>"), "Key");
    /* A good entry first, then a bad one: still an error. */
    BAD_LIST(ONE_ENTRY("<Contents><Key>a</Key><Size>1</Size></Contents>"
                       "<Contents><Size>1</Size></Contents>"), "Key");
}

static void test_list_entry_bad_size(void **state)
{
    (void)state;
    static const char *const bad[] = {
        ONE_ENTRY("<Contents><Key>k</Key></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size></Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>12a</Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>abc</Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>-5</Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>1.5</Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>0x10</Size></Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>18446744073709551616</Size>"
                  "</Contents>"),
        ONE_ENTRY("<Contents><Key>k</Key><Size>99999999999999999999999999"
                  "</Size></Contents>"),
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++)
        BAD_LIST(bad[i], "Size");
}

static void test_list_field_too_long(void **state)
{
    (void)state;
    const char *head = ONE_ENTRY("<Contents><Key>");
    const char *tail = "</Key><Size>1</Size></Contents></ListBucketResult>";
    size_t hl = strlen(head) - strlen("</ListBucketResult>");
    size_t kl = 64 * 1024 + 1;
    char *xml = malloc(hl + kl + strlen(tail) + 1);
    assert_non_null(xml);
    memcpy(xml, head, hl);
    memset(xml + hl, 'k', kl);
    strcpy(xml + hl + kl, tail);
    listed l = { 0 };
    dsc_s3_list_page pg;
    dsc_clear_error();
    int rc = dsc_s3xml_parse_list(xml, strlen(xml), on_obj, &l, &pg);
    free(xml);
    assert_int_equal(rc, DSC_EPROTO);
    assert_int_equal(l.n, 0);
    assert_errmsg_has("too long");

    /* Also for a token, and spread over several text chunks (entities). */
    size_t n = 70000;
    const char *th = "<ListBucketResult><NextContinuationToken>";
    const char *tt = "</NextContinuationToken></ListBucketResult>";
    xml = malloc(strlen(th) + n * 5 + strlen(tt) + 1);
    assert_non_null(xml);
    char *p = xml + sprintf(xml, "%s", th);
    for (size_t i = 0; i < n / 2; i++)
        p += sprintf(p, "a&amp;");
    strcpy(p, tt);
    dsc_clear_error();
    rc = dsc_s3xml_parse_list(xml, strlen(xml), on_obj, &l, &pg);
    free(xml);
    assert_int_equal(rc, DSC_EPROTO);
    assert_null(pg.next_token);
    assert_errmsg_has("too long");
}

/* Builds <ListBucketResult> with depth-1 nested <d> elements inside, so the
 * deepest element is at the given depth. */
static char *nested(int depth, int self_closing)
{
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_adds(&b, "<ListBucketResult xmlns=\"" S3_NS
                                      "\">"), 0);
    for (int i = 2; i < depth; i++)
        assert_int_equal(dsc_buf_adds(&b, "<d>"), 0);
    assert_int_equal(dsc_buf_adds(&b, self_closing ? "<d/>" : "<d>x</d>"), 0);
    for (int i = 2; i < depth; i++)
        assert_int_equal(dsc_buf_adds(&b, "</d>"), 0);
    assert_int_equal(dsc_buf_adds(&b, "</ListBucketResult>"), 0);
    return b.data;
}

static void test_list_depth_limit(void **state)
{
    (void)state;
    for (int sc = 0; sc < 2; sc++) {
        char *ok = nested(16, sc);
        listed l = { 0 };
        dsc_s3_list_page pg;
        int rc = dsc_s3xml_parse_list(ok, strlen(ok), on_obj, &l, &pg);
        free(ok);
        assert_int_equal(rc, 0);
        dsc_s3_list_page_free(&pg);

        static const int deep[] = { 17, 18, 100, 5000 };
        for (size_t i = 0; i < DSC_ARRAY_LEN(deep); i++) {
            char *bad = nested(deep[i], sc);
            check_bad_list(bad, strlen(bad), "deep");
            free(bad);
        }
    }
    /* The error parser has the same limit. */
    dsc_buf b = { 0 };
    assert_int_equal(dsc_buf_adds(&b, "<Error>"), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(dsc_buf_adds(&b, "<Code>"), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(dsc_buf_adds(&b, "</Code>"), 0);
    assert_int_equal(dsc_buf_adds(&b, "</Error>"), 0);
    check_bad_error(b.data, b.len, "deep");
    dsc_buf_free(&b);
}

static void test_list_wrong_root(void **state)
{
    (void)state;
    BAD_LIST(XML_DECL "<Error><Code>AccessDenied</Code><Message>Access Denied"
             "</Message></Error>", "document element");
    BAD_LIST("<ListAllMyBucketsResult xmlns=\"" S3_NS "\"><Buckets/>"
             "</ListAllMyBucketsResult>", "document element");
    BAD_LIST("<html><body>Bad Gateway</body></html>", "document element");
}

static void test_list_garbage_and_truncated(void **state)
{
    (void)state;
    BAD_LIST("", "malformed XML");
    BAD_LIST("{\"Contents\": []}", "malformed XML");
    BAD_LIST(XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\"><Contents><Key>"
             "k</Key><Size>1</Size></Contents><Conte", "malformed XML");
    BAD_LIST(XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">",
             "malformed XML");
    /* Cut through a multi-byte entity reference. */
    BAD_LIST("<ListBucketResult><Contents><Key>a&am", "malformed XML");
    /* Not well-formed UTF-8 inside a key. */
    BAD_LIST("<ListBucketResult><Contents><Key>\xff\xfe</Key><Size>1</Size>"
             "</Contents></ListBucketResult>", "malformed XML");
    /* A truncated page stops the listing, even after good entries. */
    size_t cut = strlen(page_three) / 2;
    check_bad_list(page_three, cut, "malformed XML");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_nosuchkey),
        cmocka_unit_test(test_error_access_denied),
        cmocka_unit_test(test_error_slowdown),
        cmocka_unit_test(test_error_s3rver_invalid_access_key),
        cmocka_unit_test(test_error_entities_and_missing_fields),
        cmocka_unit_test(test_error_length_respected),
        cmocka_unit_test(test_error_garbage),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_error_wrong_root),
        cmocka_unit_test(test_list_page),
        cmocka_unit_test(test_list_last_page),
        cmocka_unit_test(test_list_empty),
        cmocka_unit_test(test_list_namespace_optional),
        cmocka_unit_test(test_list_ignores_lookalikes),
        cmocka_unit_test(test_list_callback_stop),
        cmocka_unit_test(test_list_entry_without_key),
        cmocka_unit_test(test_list_entry_bad_size),
        cmocka_unit_test(test_list_field_too_long),
        cmocka_unit_test(test_list_depth_limit),
        cmocka_unit_test(test_list_wrong_root),
        cmocka_unit_test(test_list_garbage_and_truncated),
    };
    return cmocka_run_group_tests_name("s3xml", tests, NULL, NULL);
}
