/* What libdsc does when the origin misbehaves. s3rver cannot fail on
 * demand, so these tests put a scripted origin on 127.0.0.1 (libmicrohttpd,
 * real HTTP over real sockets) that answers each GET as the test says:
 * throttling, server errors, cut bodies, long bodies, wrong ranges, a
 * changed ETag, stalls. Every read must return the right bytes after
 * retries or a clear error within the configured time - never wrong
 * bytes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "itest.h"

#define OBJ_SIZE (1u << 20)
#define MAX_STEPS 16

enum action {
    A_OK = 0,       /* correct 206 */
    A_SLOWDOWN,     /* 503 SlowDown */
    A_ERR500,       /* 500 InternalError */
    A_TRUNCATE,     /* 206, connection cut halfway through the body */
    A_LONG,         /* 206 with more body than the range */
    A_BAD_RANGE,    /* 206 whose Content-Range names other bytes */
    A_WHOLE,        /* 200 with the whole object: range ignored */
    A_NEW_ETAG,     /* 206 of another version */
    A_STALL,        /* nothing for 1.5 s */
    A_DENIED,       /* 403 AccessDenied */
};

static const char *const action_names[] = {
    "ok", "503 SlowDown", "500 InternalError", "truncated body",
    "over-long body", "wrong Content-Range", "200 whole object",
    "changed ETag", "stall past timeout", "403 AccessDenied",
};

static unsigned char object[OBJ_SIZE];
static struct {
    pthread_mutex_t lock;
    enum action steps[MAX_STEPS];
    int nsteps, next;
    int gets, heads;
    char last_auth[512];    /* Authorization of the last request, "" if none */
} script = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void set_script(int n, const enum action *steps)
{
    pthread_mutex_lock(&script.lock);
    if (n)
        memcpy(script.steps, steps, (size_t)n * sizeof *steps);
    script.nsteps = n;
    script.next = 0;
    script.gets = script.heads = 0;
    pthread_mutex_unlock(&script.lock);
}

static enum action next_action(void)
{
    pthread_mutex_lock(&script.lock);
    enum action a = script.next < script.nsteps ? script.steps[script.next++]
                                                : A_OK;
    script.gets++;
    pthread_mutex_unlock(&script.lock);
    return a;
}

/* GETs seen since the script was set; a stalled handler may still be
 * running in its own thread, so read under the lock. */
static int gets_seen(void)
{
    pthread_mutex_lock(&script.lock);
    int n = script.gets;
    pthread_mutex_unlock(&script.lock);
    return n;
}

static const char *last_auth(void)
{
    static char copy[512];
    pthread_mutex_lock(&script.lock);
    memcpy(copy, script.last_auth, sizeof copy);
    pthread_mutex_unlock(&script.lock);
    return copy;
}

typedef struct cut_body {
    uint64_t start, len, cut_at;
} cut_body;

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    cut_body *cb = cls;
    if (pos >= cb->cut_at)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = cb->cut_at - pos < max ? (size_t)(cb->cut_at - pos) : max;
    memcpy(buf, object + cb->start + pos, n);
    return (ssize_t)n;
}

static enum MHD_Result send_xml_error(struct MHD_Connection *c, unsigned st,
                                      const char *code)
{
    char body[512];
    snprintf(body, sizeof body,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
             "<Message>scripted %s</Message><RequestId>REQ123</RequestId>"
             "</Error>", code, code);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/xml");
    enum MHD_Result ret = MHD_queue_response(c, st, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls; (void)url; (void)version; (void)upload; (void)upload_size;
    (void)con_cls;
    const char *etag = "\"v1\"";
    struct MHD_Response *r;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Authorization");
    pthread_mutex_lock(&script.lock);
    snprintf(script.last_auth, sizeof script.last_auth, "%s", auth ? auth : "");
    pthread_mutex_unlock(&script.lock);
    if (strcmp(method, "HEAD") == 0) {
        pthread_mutex_lock(&script.lock);
        script.heads++;
        pthread_mutex_unlock(&script.lock);
        r = MHD_create_response_from_buffer(OBJ_SIZE, object,
                                            MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "ETag", etag);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    enum action a = next_action();
    uint64_t first = 0, last = OBJ_SIZE - 1;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    "Range");
    if (range)
        sscanf(range, "bytes=%" SCNu64 "-%" SCNu64, &first, &last);
    uint64_t len = last - first + 1;
    char cr[128];
    snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%u", first, last,
             OBJ_SIZE);
    unsigned status = 206;
    static _Thread_local cut_body cut;
    switch (a) {
    case A_SLOWDOWN:
        return send_xml_error(c, 503, "SlowDown");
    case A_ERR500:
        return send_xml_error(c, 500, "InternalError");
    case A_DENIED:
        return send_xml_error(c, 403, "AccessDenied");
    case A_STALL:
        usleep(1500 * 1000);
        return send_xml_error(c, 500, "InternalError");
    case A_TRUNCATE:
        cut = (cut_body){ first, len, len / 2 };
        r = MHD_create_response_from_callback(len, 64 * 1024, cut_reader,
                                              &cut, NULL);
        break;
    case A_LONG:
        r = MHD_create_response_from_buffer(
            first + len + 100 <= OBJ_SIZE ? len + 100 : len,
            object + first, MHD_RESPMEM_PERSISTENT);
        break;
    case A_BAD_RANGE:
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%u", first + 1,
                 last + 1, OBJ_SIZE);
        r = MHD_create_response_from_buffer(len, object + first + 1,
                                            MHD_RESPMEM_PERSISTENT);
        break;
    case A_WHOLE:
        status = 200;
        r = MHD_create_response_from_buffer(OBJ_SIZE, object,
                                            MHD_RESPMEM_PERSISTENT);
        break;
    case A_NEW_ETAG:
        etag = "\"v2\"";
        /* fall through */
    default:
        r = MHD_create_response_from_buffer(len, object + first,
                                            MHD_RESPMEM_PERSISTENT);
        break;
    }
    MHD_add_response_header(r, "ETag", etag);
    if (status == 206)
        MHD_add_response_header(r, "Content-Range", cr);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *daemon_;
static char endpoint[64];

static int start_origin(void **state)
{
    (void)state;
    for (size_t i = 0; i < OBJ_SIZE; i++)
        object[i] = (unsigned char)((i * 2654435761u) >> 13);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!daemon_)
        return -1;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%u",
             (unsigned)di->port);
    return 0;
}

static int stop_origin(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

static dsc_ctx *fault_ctx(long timeout_ms, int retries)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = endpoint;
    cfg.cache_dir = "";   /* every read must reach the scripted origin */
    cfg.request_timeout_ms = timeout_ms;
    cfg.max_retries = retries;
    cfg.retry_base_ms = 5;
    cfg.retry_max_ms = 50;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    return ctx;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One fault (repeated `times`) then a good answer: the read succeeds with
 * the right bytes after exactly times+1 GETs. */
static void recover_from(enum action a, int times)
{
    enum action steps[MAX_STEPS];
    for (int i = 0; i < times; i++)
        steps[i] = a;
    set_script(times, steps);
    dsc_ctx *ctx = fault_ctx(5000, 5);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), 0);
    static unsigned char buf[300000];
    uint64_t off = 12345;
    ssize_t n = dsc_pread(f, buf, sizeof buf, off);
    if (n < 0)
        fail_msg("%s: %s", action_names[a], dsc_errmsg());
    assert_int_equal(n, (ssize_t)sizeof buf);
    assert_memory_equal(buf, object + off, sizeof buf);
    assert_int_equal(gets_seen(), times + 1);
    printf("    fault %-22s x%d: recovered, right bytes, %d GETs\n",
           action_names[a], times, gets_seen());
    dsc_close(f);
    dsc_ctx_close(ctx);
}

/* A fault that never stops: a clear error, within the retry budget. */
static void fail_with(enum action a, int expect_code, long timeout_ms,
                      int retries, double max_seconds)
{
    enum action steps[MAX_STEPS];
    for (int i = 0; i < MAX_STEPS; i++)
        steps[i] = a;
    set_script(MAX_STEPS, steps);
    dsc_ctx *ctx = fault_ctx(timeout_ms, retries);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), 0);
    static unsigned char buf[100000];
    memset(buf, 0xEE, sizeof buf);
    double t0 = now_s();
    ssize_t n = dsc_pread(f, buf, sizeof buf, 777);
    double took = now_s() - t0;
    printf("    fault %-22s always: %s after %d GETs in %.2fs (%s)\n",
           action_names[a], dsc_strerror((int)n), gets_seen(), took,
           dsc_errmsg());
    assert_int_equal(n, expect_code);
    assert_true(strlen(dsc_errmsg()) > 0);
    assert_true(took < max_seconds);
    if (a != A_DENIED && a != A_NEW_ETAG)
        assert_int_equal(gets_seen(), retries + 1);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

static void test_recover_slowdown(void **s) { (void)s; recover_from(A_SLOWDOWN, 3); }
static void test_recover_500(void **s) { (void)s; recover_from(A_ERR500, 2); }
static void test_recover_truncated(void **s) { (void)s; recover_from(A_TRUNCATE, 2); }
static void test_recover_long(void **s) { (void)s; recover_from(A_LONG, 1); }
static void test_recover_bad_range(void **s) { (void)s; recover_from(A_BAD_RANGE, 1); }
static void test_recover_whole(void **s) { (void)s; recover_from(A_WHOLE, 1); }
static void test_recover_stall(void **s)
{
    (void)s;
    enum action st[] = { A_STALL };
    set_script(1, st);
    dsc_ctx *ctx = fault_ctx(300, 3);
    dsc_file *f;
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), 0);
    unsigned char buf[5000];
    double t0 = now_s();
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 99), (ssize_t)sizeof buf);
    assert_memory_equal(buf, object + 99, sizeof buf);
    printf("    fault %-22s x1: recovered in %.2fs\n", action_names[A_STALL],
           now_s() - t0);
    assert_true(now_s() - t0 < 1.4);
    dsc_close(f);
    dsc_ctx_close(ctx);
}

static void test_fail_slowdown(void **s) { (void)s; fail_with(A_SLOWDOWN, DSC_ETHROTTLED, 2000, 3, 5); }
static void test_fail_500(void **s) { (void)s; fail_with(A_ERR500, DSC_ESERVER, 2000, 2, 5); }
static void test_fail_truncated(void **s) { (void)s; fail_with(A_TRUNCATE, DSC_ENET, 2000, 2, 5); }
static void test_fail_long(void **s) { (void)s; fail_with(A_LONG, DSC_EPROTO, 2000, 2, 5); }
static void test_fail_bad_range(void **s) { (void)s; fail_with(A_BAD_RANGE, DSC_EPROTO, 2000, 2, 5); }
static void test_fail_stall(void **s) { (void)s; fail_with(A_STALL, DSC_ETIMEDOUT, 250, 1, 1.5); }
static void test_fail_denied(void **s) { (void)s; fail_with(A_DENIED, DSC_EACCESS, 2000, 5, 1); }
static void test_changed_etag(void **s) { (void)s; fail_with(A_NEW_ETAG, DSC_ECHANGED, 2000, 5, 1); }

/* Nothing listens: a network error, fast, no hang. */
static void test_connection_refused(void **s)
{
    (void)s;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);   /* the port is now closed */
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", ntohs(sa.sin_port));
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = ep;
    cfg.cache_dir = "";
    cfg.max_retries = 2;
    cfg.retry_base_ms = 5;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    dsc_file *f;
    double t0 = now_s();
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), DSC_ENET);
    assert_true(now_s() - t0 < 2);
    assert_non_null(strstr(dsc_errmsg(), "127.0.0.1"));
    printf("    connection refused: %s\n", dsc_errmsg());
    dsc_ctx_close(ctx);
}

/* A listener that accepts and never answers: the connect succeeds, the
 * request times out as configured. */
static void test_silent_server(void **s)
{
    (void)s;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", ntohs(sa.sin_port));
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = ep;
    cfg.cache_dir = "";
    cfg.request_timeout_ms = 200;
    cfg.max_retries = 1;
    cfg.retry_base_ms = 5;
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    dsc_file *f;
    double t0 = now_s();
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), DSC_ETIMEDOUT);
    double took = now_s() - t0;
    printf("    silent server: %s in %.2fs\n", dsc_strerror(DSC_ETIMEDOUT), took);
    assert_true(took >= 0.35 && took < 1.5);
    dsc_ctx_close(ctx);
    close(fd);
}

/* Public buckets: an anonymous context sends no Authorization at all; a
 * signed one sends SigV4 with the configured key id and region. */
static void test_anonymous_and_signed(void **s)
{
    (void)s;
    set_script(0, NULL);
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.endpoint = endpoint;
    cfg.cache_dir = "";
    cfg.anonymous = 1;
    cfg.access_key_id = "AKIDIGNORED";
    cfg.secret_access_key = "x";
    dsc_ctx *ctx;
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    dsc_file *f;
    unsigned char buf[10];
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), 0);
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 5), 10);
    assert_string_equal(last_auth(), "");
    dsc_close(f);
    dsc_ctx_close(ctx);

    cfg.anonymous = 0;
    cfg.access_key_id = "AKIDSIGNED";
    cfg.region = "eu-west-3";
    assert_int_equal(dsc_ctx_open(&cfg, &ctx), 0);
    assert_int_equal(dsc_open(ctx, "s3://bucket/obj", &f), 0);
    assert_int_equal(dsc_pread(f, buf, sizeof buf, 5), 10);
    assert_non_null(strstr(last_auth(), "AWS4-HMAC-SHA256 Credential=AKIDSIGNED/"));
    assert_non_null(strstr(last_auth(), "/eu-west-3/s3/aws4_request"));
    assert_non_null(strstr(last_auth(), "SignedHeaders=host;if-match;range;"
                                             "x-amz-content-sha256;x-amz-date"));
    dsc_close(f);
    dsc_ctx_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recover_slowdown),
        cmocka_unit_test(test_recover_500),
        cmocka_unit_test(test_recover_truncated),
        cmocka_unit_test(test_recover_long),
        cmocka_unit_test(test_recover_bad_range),
        cmocka_unit_test(test_recover_whole),
        cmocka_unit_test(test_recover_stall),
        cmocka_unit_test(test_fail_slowdown),
        cmocka_unit_test(test_fail_500),
        cmocka_unit_test(test_fail_truncated),
        cmocka_unit_test(test_fail_long),
        cmocka_unit_test(test_fail_bad_range),
        cmocka_unit_test(test_fail_stall),
        cmocka_unit_test(test_fail_denied),
        cmocka_unit_test(test_changed_etag),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_silent_server),
        cmocka_unit_test(test_anonymous_and_signed),
    };
    return cmocka_run_group_tests_name("s3_faults", tests, start_origin,
                                       stop_origin);
}
