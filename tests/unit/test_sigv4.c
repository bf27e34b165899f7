/* SigV4 signer against AWS's published example vectors, plus the query and
 * path encoders it relies on.
 *
 * Sources of the expected values (none are computed here):
 *  [S3]    Amazon S3 API Reference, "Authenticating Requests: Using the
 *          Authorization Header", section "Examples: Signature
 *          Calculations" (docs.aws.amazon.com/AmazonS3/latest/API/
 *          sig-v4-header-based-auth.html).
 *  [SUITE] AWS Signature Version 4 Test Suite (formerly
 *          docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html),
 *          the .creq/.sts/.authz files of each case.
 *  [CRT]   The current form of that suite in awslabs/aws-c-auth,
 *          tests/aws-signing-test-suite/v4/<case>/header-signed-request.txt,
 *          for cases the old suite lacks; only their Authorization is used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/sigv4.h"
#include "net/url.h"

#define EMPTY DSC_EMPTY_SHA256

/* [S3] examples share one identity and instant. */
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"
#define S3_SCOPE "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
#define S3_STS(hash) \
    "AWS4-HMAC-SHA256\n" S3_DATE "\n20130524/us-east-1/s3/aws4_request\n" hash

/* So do the test suite cases. */
#define TS_AK "AKIDEXAMPLE"
#define TS_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TS_DATE "20150830T123600Z"
#define TS_HOST "example.amazonaws.com"
#define TS_STS(hash) \
    "AWS4-HMAC-SHA256\n" TS_DATE "\n20150830/us-east-1/service/aws4_request\n" hash
#define TS_AUTHZ(signed_headers, sig)                                        \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"    \
    "aws4_request, SignedHeaders=" signed_headers ", Signature=" sig
#define TS_HEADERS { "Host", TS_HOST }, { "X-Amz-Date", TS_DATE }
#define TS_CREQ_TAIL "host:" TS_HOST "\nx-amz-date:" TS_DATE \
    "\n\nhost;x-amz-date\n" EMPTY

#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
    "abcdefghijklmnopqrstuvwxyz"

typedef struct vector {
    const char *name;
    const char *method, *path;
    dsc_kv query[4];        /* ends at the first NULL name */
    dsc_kv headers[8];
    const char *payload_hash;
    int s3;                 /* [S3] identity, else the suite's */
    const char *creq;       /* NULL where no canonical request is published */
    const char *sts;        /* likewise */
    const char *authz;      /* [SUITE]/[CRT]: the whole header value */
    const char *signed_headers, *signature;  /* [S3], see check_s3_authz */
} vector;

static const vector vectors[] = {
    /* [S3] "Example: GET Object". Headers given unsorted and in mixed case:
     * the canonical form must not depend on either. */
    { .name = "s3-get-object", .s3 = 1, .method = "GET", .path = "/test.txt",
      .headers = { { "x-amz-date", S3_DATE }, { "Range", "bytes=0-9" },
                   { "Host", S3_HOST }, { "x-amz-content-sha256", EMPTY } },
      .payload_hash = EMPTY,
      .creq = "GET\n/test.txt\n\nhost:" S3_HOST "\nrange:bytes=0-9\n"
              "x-amz-content-sha256:" EMPTY "\nx-amz-date:" S3_DATE "\n\n"
              "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
      .sts = S3_STS("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"),
      .signed_headers = "host;range;x-amz-content-sha256;x-amz-date",
      .signature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" },

    /* [S3] "Example: PUT Object": a Date header with spaces and a comma,
     * and a '$' in the key, already encoded as S3 wants it. */
    { .name = "s3-put-object", .s3 = 1, .method = "PUT",
      .path = "/test%24file.text",
      .headers = { { "Host", S3_HOST },
                   { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                   { "x-amz-date", S3_DATE },
                   { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                   { "x-amz-content-sha256",
                     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" } },
      .payload_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
      .creq = "PUT\n/test%24file.text\n\n"
              "date:Fri, 24 May 2013 00:00:00 GMT\nhost:" S3_HOST "\n"
              "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
              "x-amz-date:" S3_DATE "\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
              "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
      .sts = S3_STS("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"),
      .signed_headers = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
      .signature = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },

    /* [S3] "Example: GET Bucket Lifecycle": a parameter without a value
     * is signed as "lifecycle=". Passed both ways: "" and NULL. */
    { .name = "s3-get-bucket-lifecycle", .s3 = 1, .method = "GET", .path = "/",
      .query = { { "lifecycle", "" } },
      .headers = { { "Host", S3_HOST }, { "x-amz-date", S3_DATE },
                   { "x-amz-content-sha256", EMPTY } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\nlifecycle=\nhost:" S3_HOST "\n"
              "x-amz-content-sha256:" EMPTY "\nx-amz-date:" S3_DATE "\n\n"
              "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
      .sts = S3_STS("9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"),
      .signed_headers = "host;x-amz-content-sha256;x-amz-date",
      .signature = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },
    { .name = "s3-get-bucket-lifecycle-null-value", .s3 = 1, .method = "GET",
      .path = "/", .query = { { "lifecycle", NULL } },
      .headers = { { "Host", S3_HOST }, { "x-amz-date", S3_DATE },
                   { "x-amz-content-sha256", EMPTY } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\nlifecycle=\nhost:" S3_HOST "\n"
              "x-amz-content-sha256:" EMPTY "\nx-amz-date:" S3_DATE "\n\n"
              "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
      .sts = S3_STS("9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"),
      .signed_headers = "host;x-amz-content-sha256;x-amz-date",
      .signature = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },

    /* [S3] "Example: Get Bucket (List Objects)", parameters given in the
     * opposite order to the canonical one. */
    { .name = "s3-list-objects", .s3 = 1, .method = "GET", .path = "/",
      .query = { { "prefix", "J" }, { "max-keys", "2" } },
      .headers = { { "Host", S3_HOST }, { "x-amz-date", S3_DATE },
                   { "x-amz-content-sha256", EMPTY } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\nmax-keys=2&prefix=J\nhost:" S3_HOST "\n"
              "x-amz-content-sha256:" EMPTY "\nx-amz-date:" S3_DATE "\n\n"
              "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
      .sts = S3_STS("df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"),
      .signed_headers = "host;x-amz-content-sha256;x-amz-date",
      .signature = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },

    /* [SUITE] get-vanilla */
    { .name = "get-vanilla", .method = "GET", .path = "/",
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\n\n" TS_CREQ_TAIL,
      .sts = TS_STS("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") },

    /* [SUITE] get-vanilla-query-order-key-case: sort by name. */
    { .name = "get-vanilla-query-order-key-case", .method = "GET", .path = "/",
      .query = { { "Param2", "value2" }, { "Param1", "value1" } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\nParam1=value1&Param2=value2\n" TS_CREQ_TAIL,
      .sts = TS_STS("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") },

    /* [SUITE] get-vanilla-query-order-key: a repeated name sorts by value,
     * byte-wise ('V' before 'v'). */
    { .name = "get-vanilla-query-order-key", .method = "GET", .path = "/",
      .query = { { "Param1", "value2" }, { "Param1", "Value1" } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\nParam1=Value1&Param1=value2\n" TS_CREQ_TAIL,
      .sts = TS_STS("704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1") },

    /* [SUITE] get-vanilla-query-order-value */
    { .name = "get-vanilla-query-order-value", .method = "GET", .path = "/",
      .query = { { "Param1", "value2" }, { "Param1", "value1" } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\nParam1=value1&Param1=value2\n" TS_CREQ_TAIL,
      .sts = TS_STS("c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694") },

    /* [SUITE] get-vanilla-query-unreserved: nothing unreserved is encoded. */
    { .name = "get-vanilla-query-unreserved", .method = "GET", .path = "/",
      .query = { { UNRESERVED, UNRESERVED } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\n" UNRESERVED "=" UNRESERVED "\n" TS_CREQ_TAIL,
      .sts = TS_STS("c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197") },

    /* [SUITE] get-vanilla-utf8-query: U+1234 as a raw UTF-8 name. */
    { .name = "get-vanilla-utf8-query", .method = "GET", .path = "/",
      .query = { { "\xE1\x88\xB4", "bar" } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/\n%E1%88%B4=bar\n" TS_CREQ_TAIL,
      .sts = TS_STS("eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04") },

    /* [CRT] get-vanilla-query-order-encoded: order is by *encoded* name,
     * so "%E1..." comes before "Param" and "Param" before "Param-3". */
    { .name = "get-vanilla-query-order-encoded", .method = "GET", .path = "/",
      .query = { { "Param-3", "Value3" }, { "Param", "Value2" },
                 { "\xE1\x88\xB4", "Value1" } },
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .authz = TS_AUTHZ("host;x-amz-date",
                        "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac") },

    /* [SUITE] get-header-key-duplicate: repeated names join in the order
     * given, not sorted. */
    { .name = "get-header-key-duplicate", .method = "GET", .path = "/",
      .headers = { { "Host", TS_HOST }, { "My-Header1", "value2" },
                   { "My-Header1", "value2" }, { "My-Header1", "value1" },
                   { "X-Amz-Date", TS_DATE } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\n\nhost:" TS_HOST "\nmy-header1:value2,value2,value1\n"
              "x-amz-date:" TS_DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY,
      .sts = TS_STS("dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c"),
      .authz = TS_AUTHZ("host;my-header1;x-amz-date",
                        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea") },

    /* [SUITE] get-header-value-order */
    { .name = "get-header-value-order", .method = "GET", .path = "/",
      .headers = { { "Host", TS_HOST }, { "My-Header1", "value4" },
                   { "My-Header1", "value1" }, { "My-Header1", "value3" },
                   { "My-Header1", "value2" }, { "X-Amz-Date", TS_DATE } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\n\nhost:" TS_HOST "\nmy-header1:value4,value1,value3,value2\n"
              "x-amz-date:" TS_DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY,
      .sts = TS_STS("31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86"),
      .authz = TS_AUTHZ("host;my-header1;x-amz-date",
                        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01") },

    /* [SUITE] get-header-value-multiline. The request folds My-Header1 over
     * three lines (obs-fold, obsolete since RFC 7230, never sent by libdsc);
     * the suite canonicalises each line as one value, so that is how it is
     * fed here. */
    { .name = "get-header-value-multiline", .method = "GET", .path = "/",
      .headers = { { "Host", TS_HOST }, { "My-Header1", "value1" },
                   { "My-Header1", "  value2" }, { "My-Header1", "     value3" },
                   { "X-Amz-Date", TS_DATE } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\n\nhost:" TS_HOST "\nmy-header1:value1,value2,value3\n"
              "x-amz-date:" TS_DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY,
      .sts = TS_STS("b7b6cbfd8a0430b78891e986784da2630c8a135a8595cec25b26ea94f926ee55"),
      .authz = TS_AUTHZ("host;my-header1;x-amz-date",
                        "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790") },

    /* [SUITE] get-header-value-trim: leading space dropped, inner runs
     * folded, quotes kept. */
    { .name = "get-header-value-trim", .method = "GET", .path = "/",
      .headers = { { "Host", TS_HOST }, { "My-Header1", " value1" },
                   { "My-Header2", " \"a   b   c\"" }, { "X-Amz-Date", TS_DATE } },
      .payload_hash = EMPTY,
      .creq = "GET\n/\n\nhost:" TS_HOST "\nmy-header1:value1\n"
              "my-header2:\"a b c\"\nx-amz-date:" TS_DATE "\n\n"
              "host;my-header1;my-header2;x-amz-date\n" EMPTY,
      .sts = TS_STS("a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"),
      .authz = TS_AUTHZ("host;my-header1;my-header2;x-amz-date",
                        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736") },

    /* [SUITE] get-unreserved */
    { .name = "get-unreserved", .method = "GET", .path = "/" UNRESERVED,
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/" UNRESERVED "\n\n" TS_CREQ_TAIL,
      .sts = TS_STS("6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f") },

    /* [SUITE] get-utf8: the path "/\u1234", passed encoded as the signer
     * wants it (test_uri_encode_suite_paths checks that encoding). */
    { .name = "get-utf8", .method = "GET", .path = "/%E1%88%B4",
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/%E1%88%B4\n\n" TS_CREQ_TAIL,
      .sts = TS_STS("2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85") },

    /* [SUITE] get-space: "/example space/" needs no normalisation, only
     * encoding, so it is passed encoded. */
    { .name = "get-space", .method = "GET", .path = "/example%20space/",
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "GET\n/example%20space/\n\n" TS_CREQ_TAIL,
      .sts = TS_STS("63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741") },

    /* Not used: get-relative, get-relative-relative, get-slash,
     * get-slash-dot-slash, get-slash-pointless-dot, get-slashes. Their
     * expected values assume the path is normalised ("/example/.." signed
     * as "/", "//" merged), which S3 forbids: an S3 key may contain "..",
     * "." and "//", so the signer signs the path exactly as sent. */

    /* [SUITE] post-vanilla */
    { .name = "post-vanilla", .method = "POST", .path = "/",
      .headers = { TS_HEADERS }, .payload_hash = EMPTY,
      .creq = "POST\n/\n\n" TS_CREQ_TAIL,
      .sts = TS_STS("553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"),
      .authz = TS_AUTHZ("host;x-amz-date",
                        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") },

    /* [SUITE] post-header-value-case: values keep their case. */
    { .name = "post-header-value-case", .method = "POST", .path = "/",
      .headers = { { "Host", TS_HOST }, { "My-Header1", "VALUE1" },
                   { "X-Amz-Date", TS_DATE } },
      .payload_hash = EMPTY,
      .creq = "POST\n/\n\nhost:" TS_HOST "\nmy-header1:VALUE1\n"
              "x-amz-date:" TS_DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY,
      .sts = TS_STS("d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93"),
      .authz = TS_AUTHZ("host;my-header1;x-amz-date",
                        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d") },

    /* [SUITE] post-sts-header-before: a session token signed as a header,
     * as libdsc does with temporary credentials. */
    { .name = "post-sts-header-before", .method = "POST", .path = "/",
      .headers = { TS_HEADERS,
                   { "X-Amz-Security-Token",
                     "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==" } },
      .payload_hash = EMPTY,
      .creq = "POST\n/\n\nhost:" TS_HOST "\nx-amz-date:" TS_DATE "\n"
              "x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\n"
              "host;x-amz-date;x-amz-security-token\n" EMPTY,
      .sts = TS_STS("c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"),
      .authz = TS_AUTHZ("host;x-amz-date;x-amz-security-token",
                        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead") },

    /* [CRT] get-vanilla-with-session-token */
    { .name = "get-vanilla-with-session-token", .method = "GET", .path = "/",
      .headers = { TS_HEADERS,
                   { "X-Amz-Security-Token",
                     "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267" } },
      .payload_hash = EMPTY,
      .authz = TS_AUTHZ("host;x-amz-date;x-amz-security-token",
                        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8") },
};

static size_t kv_count(const dsc_kv *kv, size_t max)
{
    size_t n = 0;
    while (n < max && kv[n].name)
        n++;
    return n;
}

static dsc_sigv4_input input_of(const vector *v)
{
    dsc_sigv4_input in = {
        .method = v->method, .path = v->path,
        .query = v->query, .nquery = kv_count(v->query, DSC_ARRAY_LEN(v->query)),
        .headers = v->headers,
        .nheaders = kv_count(v->headers, DSC_ARRAY_LEN(v->headers)),
        .payload_hash = v->payload_hash,
        .region = "us-east-1",
        .service = v->s3 ? "s3" : "service",
        .amz_date = v->s3 ? S3_DATE : TS_DATE,
        .access_key = v->s3 ? S3_AK : TS_AK,
        .secret_key = v->s3 ? S3_SK : TS_SK,
    };
    return in;
}

/* The [S3] page prints the header with bare commas between its parts; the
 * parts and the signature are what it publishes. libdsc writes ", " as
 * botocore and the test suite do, which S3 accepts as well. */
static void check_s3_authz(const vector *v, const char *got)
{
    char want[512];
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=%s, "
             "Signature=%s", v->signed_headers, v->signature);
    assert_string_equal(got, want);
}

static void test_vector(void **state)
{
    const vector *v = *state;
    dsc_sigv4_input in = input_of(v);
    dsc_buf creq = { 0 }, sh = { 0 }, sts = { 0 }, authz = { 0 };

    assert_int_equal(dsc_sigv4_canonical_request(&in, &creq, &sh), 0);
    if (v->creq)
        assert_string_equal(creq.data, v->creq);
    if (v->signed_headers)
        assert_string_equal(sh.data, v->signed_headers);
    assert_int_equal(dsc_sigv4_string_to_sign(&in, creq.data, &sts), 0);
    if (v->sts)
        assert_string_equal(sts.data, v->sts);
    assert_int_equal(dsc_sigv4_authorization(&in, &authz), 0);
    if (v->authz)
        assert_string_equal(authz.data, v->authz);
    else
        check_s3_authz(v, authz.data);

    dsc_buf_free(&creq);
    dsc_buf_free(&sh);
    dsc_buf_free(&sts);
    dsc_buf_free(&authz);
}

/* The [S3] PUT example states its x-amz-content-sha256 is the hash of the
 * body "Welcome to Amazon S3."; the empty-body hash is the one every GET
 * example uses. */
static void test_sha256_hex(void **state)
{
    (void)state;
    char hex[65];
    dsc_sha256_hex("Welcome to Amazon S3.", 21, hex);
    assert_string_equal(hex,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    dsc_sha256_hex("", 0, hex);
    assert_string_equal(hex, EMPTY);
}

/* FIPS 180 examples; the SSO token cache names its files by SHA-1. */
static void test_sha1_hex(void **state)
{
    (void)state;
    char out[41];
    dsc_sha1_hex("abc", 3, out);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    dsc_sha1_hex("", 0, out);
    assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void test_amz_date(void **state)
{
    (void)state;
    char d[17];
    dsc_amz_date(1369353600, d);        /* 2013-05-24T00:00:00Z */
    assert_string_equal(d, S3_DATE);
    dsc_amz_date(1440938160, d);        /* 2015-08-30T12:36:00Z */
    assert_string_equal(d, TS_DATE);
}

static void test_authorization_rejects_bad_date(void **state)
{
    (void)state;
    dsc_sigv4_input in = input_of(&vectors[0]);
    dsc_buf out = { 0 };
    in.amz_date = "20130524";
    assert_int_equal(dsc_sigv4_authorization(&in, &out), DSC_EINVAL);
    in.amz_date = NULL;
    assert_int_equal(dsc_sigv4_authorization(&in, &out), DSC_EINVAL);
    dsc_buf_free(&out);
}

static void expect_query(const dsc_kv *q, size_t n, const char *want)
{
    dsc_buf out = { 0 };
    assert_int_equal(dsc_sigv4_query_string(q, n, &out), 0);
    assert_non_null(out.data);
    assert_string_equal(out.data, want);
    dsc_buf_free(&out);
}

static void test_query_string(void **state)
{
    (void)state;
    expect_query(NULL, 0, "");

    /* Name first, then value. */
    const dsc_kv order[] = { { "b", "2" }, { "a", "2" }, { "a", "1" } };
    expect_query(order, 3, "a=1&a=2&b=2");

    /* Sorted on the encoded bytes, not the raw ones: raw '-' (0x2d) sorts
     * before '/' (0x2f), encoded "%2F" before "-". Same for values. */
    const dsc_kv enc_name[] = { { "a-", "1" }, { "a/", "2" } };
    expect_query(enc_name, 2, "a%2F=2&a-=1");
    const dsc_kv enc_value[] = { { "k", "." }, { "k", "/" } };
    expect_query(enc_value, 2, "k=%2F&k=.");

    /* Space is %20, never '+'; '+', '=', '&' are escaped; '~' is kept. */
    const dsc_kv chars[] = { { "prefix", "a b+c=d&e~f/g" } };
    expect_query(chars, 1, "prefix=a%20b%2Bc%3Dd%26e~f%2Fg");

    /* A continuation token is opaque base64 with '/', '+' and '='. */
    const dsc_kv token[] = { { "continuation-token", "1/Ab+c==" },
                             { "list-type", "2" } };
    expect_query(token, 2, "continuation-token=1%2FAb%2Bc%3D%3D&list-type=2");

    /* Empty and missing values both sign as "name=". */
    const dsc_kv empty[] = { { "versions", "" }, { "delete", NULL },
                             { "acl", "" } };
    expect_query(empty, 3, "acl=&delete=&versions=");

    /* UTF-8 is escaped byte by byte, upper-case hex. */
    const dsc_kv utf8[] = { { "prefix", "\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80" } };
    expect_query(utf8, 1, "prefix=%C3%A9%E6%97%A5%F0%9F%98%80");
}

/* The wire form is appended to what the buffer already holds, so a caller
 * can write "url?" first. */
static void test_query_string_appends(void **state)
{
    (void)state;
    dsc_buf out = { 0 };
    const dsc_kv q[] = { { "max-keys", "2" } };
    assert_int_equal(dsc_buf_adds(&out, "/?"), 0);
    assert_int_equal(dsc_sigv4_query_string(q, 1, &out), 0);
    assert_string_equal(out.data, "/?max-keys=2");
    dsc_buf_free(&out);
}

static void expect_enc(const char *s, size_t n, int keep_slash,
                       const char *want)
{
    dsc_buf out = { 0 };
    assert_int_equal(dsc_uri_encode(&out, s, n, keep_slash), 0);
    assert_string_equal(out.data ? out.data : "", want);
    dsc_buf_free(&out);
}

#define expect_encs(s, keep_slash, want) \
    expect_enc(s, strlen(s), keep_slash, want)

static void test_uri_encode(void **state)
{
    (void)state;
    expect_encs(UNRESERVED, 0, UNRESERVED);
    expect_encs("a/b//c/", 1, "a/b//c/");
    expect_encs("a/b//c/", 0, "a%2Fb%2F%2Fc%2F");
    expect_encs(" !\"#$%&'()*+,:;<=>?@[\\]^`{|}", 1,
               "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%3A%3B%3C%3D%3E%3F"
               "%40%5B%5C%5D%5E%60%7B%7C%7D");
    /* Already-encoded input is encoded again: callers pass literal keys. */
    expect_encs("a%20b", 1, "a%2520b");
    /* Upper-case hex for every byte, and exactly n bytes. */
    expect_enc("\x01\x7f\x80\xff", 4, 1, "%01%7F%80%FF");
    expect_enc("ab\0cd", 5, 1, "ab%00cd");
    expect_enc("abcdef", 3, 1, "abc");
    expect_enc("", 0, 1, "");
    expect_encs("dir/\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x98\x80 x.txt", 1,
               "dir/%E6%97%A5%E6%9C%AC/%F0%9F%98%80%20x.txt");
}

/* The encoded paths fed to the [SUITE] get-utf8 and get-space vectors are
 * what dsc_uri_encode makes of the suite's raw paths. */
static void test_uri_encode_suite_paths(void **state)
{
    (void)state;
    expect_encs("/\xE1\x88\xB4", 1, "/%E1%88%B4");
    expect_encs("/example space/", 1, "/example%20space/");
    expect_encs("/test$file.text", 1, "/test%24file.text");  /* [S3] PUT */
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_sha1_hex),
        cmocka_unit_test(test_amz_date),
        cmocka_unit_test(test_authorization_rejects_bad_date),
        cmocka_unit_test(test_query_string),
        cmocka_unit_test(test_query_string_appends),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_uri_encode_suite_paths),
    };
    enum { NV = DSC_ARRAY_LEN(vectors), NF = DSC_ARRAY_LEN(fixed) };
    struct CMUnitTest tests[NV + NF];
    for (size_t i = 0; i < NV; i++)
        tests[i] = (struct CMUnitTest){ vectors[i].name, test_vector, NULL,
                                        NULL, (void *)&vectors[i] };
    for (size_t i = 0; i < NF; i++)
        tests[NV + i] = fixed[i];
    return _cmocka_run_group_tests("sigv4", tests, NV + NF, NULL, NULL);
}
