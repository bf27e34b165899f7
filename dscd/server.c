/* dscd's HTTP side on libmicrohttpd, one thread per connection (a miss
 * blocks on S3; clients keep their connections, so threads stay few).
 *
 * Every chunk request is checked in this order before the cache is
 * touched: form of path and headers, signature and time, then that the
 * path's id is the hash of the identity in the headers. The id alone picks
 * the data file, so no request can name anything but a cached chunk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <microhttpd.h>
#include <xxhash.h>
#include "api/node.h"
#include "core/atomic.h"
#include "peer/proto.h"
#include "dscd/nonces.h"
#include "dscd/server.h"

/* Upper bounds in seconds of the latency histogram's buckets. */
static const double BUCKETS[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

enum { R_HIT, R_MISS, R_ERROR, NRESULTS };
static const char *const RESULT_NAMES[] = { "hit", "miss", "error" };

static const unsigned CODES[] = { 200, 400, 401, 404, 405, 500, 502, 503 };
#define NCODES (sizeof CODES / sizeof CODES[0])

typedef struct histogram {
    uint64_t le[NBUCKETS + 1];     /* last: +Inf */
    uint64_t sum_us, count;
} histogram;

struct dsc_server {
    /* Set at start, read-only while serving. */
    dsc_ctx *ctx;
    dsc_cache *cache;              /* ctx's */
    char *secret;
    dsc_server_opts o;
    struct MHD_Daemon *d;
    uint16_t port;
    sem_t inflight;                /* bounds chunk buffers in memory */
    dsc_nonces *nonces;            /* seen request nonces (replays) */
    char *tls_cert, *tls_key;      /* PEM, kept while MHD uses them */
    int64_t started;               /* unix seconds: older requests refused */
    /* Published once the port is known (dsc_atomic_publish/acquire). */
    char *names;                   /* ",name,name," this node answers to */
    /* Counters (core/atomic.h), any connection thread. */
    uint64_t by_code[NCODES];
    uint64_t chunk_requests, bytes_sent, zero_copy, auth_failures;
    histogram lat[NRESULTS];
};

static void bump(uint64_t *c, uint64_t v)
{
    dsc_counter_add(c, v);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void observe(dsc_server *s, int result, uint64_t us)
{
    histogram *h = &s->lat[result];
    size_t i = 0;
    while (i < NBUCKETS && (double)us / 1e6 > BUCKETS[i])
        i++;
    bump(&h->le[i], 1);
    bump(&h->sum_us, us);
    bump(&h->count, 1);
}

static enum MHD_Result reply(dsc_server *s, struct MHD_Connection *c,
                             unsigned code, struct MHD_Response *r)
{
    for (size_t i = 0; i < NCODES; i++)
        if (CODES[i] == code)
            bump(&s->by_code[i], 1);
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(dsc_server *s, struct MHD_Connection *c,
                                  unsigned code, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    return reply(s, c, code, r);
}

/* Whether target is a name this node answers to (DSC_SELF, or the
 * host:port it listens on): requests are signed for one node. */
static int is_my_name(dsc_server *s, const char *target)
{
    const char *names = dsc_atomic_acquire(&s->names);
    size_t n = strlen(target);
    if (!names || n == 0 || strchr(target, ','))
        return 0;
    for (const char *p = strstr(names, target); p; p = strstr(p + 1, target))
        if (p[-1] == ',' && p[n] == ',')
            return 1;
    return 0;
}

/* ",self1,self2,host:port," from --self / DSC_SELF and the listen
 * address (when it names one host). */
static char *my_names(const char *self, const char *listen, unsigned port)
{
    dsc_buf b = { 0 };
    dsc_buf_adds(&b, ",");
    if (self && *self) {
        for (const char *p = self; *p;) {
            size_t n = strcspn(p, ",");
            size_t lead = 0;
            while (lead < n && p[lead] == ' ')
                lead++;
            size_t len = n - lead;
            while (len && p[lead + len - 1] == ' ')
                len--;
            if (len)
                dsc_buf_printf(&b, "%.*s,", (int)len, p + lead);
            p += n + (p[n] == ',');
        }
    }
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    int any = hl == 0 || (hl == 1 && listen[0] == '*') ||
              (hl == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
              (hl == 4 && strncmp(listen, "[::]", 4) == 0);
    if (!any)
        dsc_buf_printf(&b, "%.*s:%u,", (int)hl, listen, port);
    if (dsc_buf_oom(&b) || b.len < 2) {
        dsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Phase 1: form, signature and time, then that the path's id is the
 * identity's and of this node's chunk size. 0, or the HTTP status to
 * refuse with and its text in msg. */
static unsigned check_request(dsc_server *s, struct MHD_Connection *c,
                              const char *url, const char *method,
                              dsc_peer_req *rq, char *msg, size_t cap)
{
    dsc_peer_raw raw = {
        .method = method, .path = url, .target = hdr(c, "X-Dsc-Target"),
        .origin = hdr(c, "X-Dsc-Origin"), .bucket = hdr(c, "X-Dsc-Bucket"),
        .key = hdr(c, "X-Dsc-Key"), .etag = hdr(c, "X-Dsc-Etag"),
        .size = hdr(c, "X-Dsc-Size"), .chunk = hdr(c, "X-Dsc-Chunk"),
        .time = hdr(c, "X-Dsc-Time"), .nonce = hdr(c, "X-Dsc-Nonce"),
        .auth = hdr(c, "X-Dsc-Auth"),
    };
    if (!raw.time || !dsc_peer_auth_wellformed(raw.auth)) {
        bump(&s->auth_failures, 1);
        snprintf(msg, cap, "unsigned request\n");
        return 401;
    }
    if (dsc_peer_req_parse(&raw, rq)) {
        snprintf(msg, cap, "%s\n", dsc_errmsg());
        return 400;
    }
    int64_t now = (int64_t)time(NULL);
    if (dsc_peer_req_verify(rq, s->secret, now, s->o.max_skew_s)) {
        /* Say no more than "no" to whoever cannot sign. */
        bump(&s->auth_failures, 1);
        snprintf(msg, cap, "bad or stale signature\n");
        return 401;
    }
    if (rq->time < s->started) {
        /* Signed before this daemon started: its nonce may have been
         * seen by the previous one, whose memory is gone. */
        bump(&s->auth_failures, 1);
        snprintf(msg, cap, "signed before this daemon started\n");
        return 401;
    }
    if (!is_my_name(s, rq->target.data)) {
        /* Signed for another node: a capture replayed here. */
        bump(&s->auth_failures, 1);
        snprintf(msg, cap, "request signed for another node\n");
        return 401;
    }
    /* Remembered past the last moment its time could still pass. */
    int claim = dsc_nonces_claim(s->nonces, rq->nonce, now,
                                 rq->time + s->o.max_skew_s + 1);
    if (claim == DSC_EXISTS) {
        bump(&s->auth_failures, 1);
        snprintf(msg, cap, "request replayed\n");
        return 401;
    }
    if (claim) {
        snprintf(msg, cap, "too many requests in the signature window\n");
        return 503;
    }
    if (strcmp(rq->origin.data, dsc_cache_origin(s->cache))) {
        snprintf(msg, cap, "this node reads S3 endpoint %s, not %.200s\n",
                 dsc_cache_origin(s->cache), rq->origin.data);
        return 400;
    }
    dsc_objref obj = { rq->bucket.data, rq->key.data, rq->etag.data, rq->size };
    dsc_chunk_id id;
    uint32_t cs = dsc_cache_chunk_size(s->cache);
    if (dsc_chunk_id_make(rq->origin.data, &obj, rq->chunk_size, rq->index, &id) ||
        memcmp(id.b, rq->id.b, sizeof id.b)) {
        snprintf(msg, cap, "chunk id does not match its identity\n");
        return 400;
    }
    if (rq->chunk_size != cs) {
        snprintf(msg, cap, "chunk size %" PRIu32 " asked, this node uses %"
                 PRIu32 " (set DSC_CHUNK_SIZE alike on every node)\n",
                 rq->chunk_size, cs);
        return 400;
    }
    return 0;
}

/* The answer's MAC over the bytes of an open chunk file, mapped (no
 * copy): the file then goes out by sendfile. */
static int mac_of_file(dsc_server *s, const dsc_peer_req *rq, int fd,
                       size_t len, char mac[33])
{
    if (len == 0)
        return dsc_peer_answer_mac(s->secret, rq->auth_hex, "", 0, mac);
    /* Populated in one go: page by page, the faults cost more than the MAC. */
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED)
        return dsc_fail(DSC_EIO, "mmap: %s", strerror(errno));
    int rc = dsc_peer_answer_mac(s->secret, rq->auth_hex, map, len, mac);
    munmap(map, len);
    return rc;
}

/* Phase 2: the chunk's bytes as a response body with their MAC (over
 * nothing for a HEAD), straight from its file when this process has
 * verified that file (sendfile), else read through the cache (fetched
 * from S3 on a miss). NULL with the status and text to answer instead. */
static struct MHD_Response *chunk_body(dsc_server *s, const dsc_peer_req *rq,
                                       const dsc_objref *obj, size_t len,
                                       char mac[33], int *result,
                                       unsigned *code, char *msg, size_t cap)
{
    uint64_t size = 0, xxh;
    struct MHD_Response *r = NULL;
    *result = R_HIT;
    int fd = dsc_cache_open_chunk(s->cache, obj, rq->index, &size, &xxh);
    if (fd >= 0 && size == len &&
        mac_of_file(s, rq, fd, rq->head ? 0 : len, mac) == 0) {
        r = MHD_create_response_from_fd64(size, fd);
        if (!r)
            close(fd);
        else
            bump(&s->zero_copy, 1);
        goto done;
    }
    if (fd >= 0)
        close(fd);
    /* Bounded: each of these holds a chunk in memory. */
    while (sem_wait(&s->inflight) && errno == EINTR)
        ;
    void *buf = malloc(len ? len : 1);
    int fetched = 0, rc = DSC_ENOMEM;
    dsc_s3 *s3 = dsc_ctx_s3(s->ctx);
    if (buf && s3)
        rc = dsc_cache_read_chunk(s->cache, s3, obj, rq->index, buf, 0, len,
                                  &fetched);
    sem_post(&s->inflight);
    if (!rc)
        rc = dsc_peer_answer_mac(s->secret, rq->auth_hex, buf,
                                 rq->head ? 0 : len, mac);
    if (rc) {
        free(buf);
        *code = 502;
        snprintf(msg, cap, "s3: %s\n", dsc_errmsg());
        return NULL;
    }
    *result = fetched ? R_MISS : R_HIT;
    r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(buf);
done:
    if (!r) {
        *code = 500;
        snprintf(msg, cap, "out of memory\n");
    }
    return r;
}

/* Phase 3: the MAC into the answer's headers. */
static int sign_answer(struct MHD_Response *r, const char mac[33])
{
    if (MHD_add_response_header(r, "Content-Type", "application/octet-stream") != MHD_YES ||
        MHD_add_response_header(r, "X-Dsc-Mac", mac) != MHD_YES)
        return DSC_ENOMEM;
    return 0;
}

static enum MHD_Result serve_chunk(dsc_server *s, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   uint64_t t0)
{
    bump(&s->chunk_requests, 1);
    dsc_peer_req rq;
    memset(&rq, 0, sizeof rq);
    char msg[1200];
    struct MHD_Response *r = NULL;
    int result = R_ERROR;
    size_t len = 0;
    unsigned code = check_request(s, c, url, method, &rq, msg, sizeof msg);
    if (code)
        goto done;
    dsc_objref obj = { rq.bucket.data, rq.key.data, rq.etag.data, rq.size };
    uint32_t cs = rq.chunk_size;
    uint64_t start = rq.index * cs;
    char mac[33];
    len = (size_t)(rq.size - start < cs ? rq.size - start : cs);
    r = chunk_body(s, &rq, &obj, len, mac, &result, &code, msg, sizeof msg);
    if (r && sign_answer(r, mac)) {
        MHD_destroy_response(r);
        r = NULL;
        code = 500;
        snprintf(msg, sizeof msg, "out of memory\n");
    }
done:
    observe(s, r ? result : R_ERROR, now_us() - t0);
    if (!r) {
        dsc_peer_req_free(&rq);
        return reply_text(s, c, code, msg);
    }
    if (!rq.head)
        bump(&s->bytes_sent, len);
    dsc_peer_req_free(&rq);
    return reply(s, c, 200, r);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)con_cls;
    dsc_server *s = cls;
    uint64_t t0 = now_us();
    if (*upload_size) {
        /* No request of ours has a body. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply_text(s, c, 405, "only GET and HEAD\n");
    if (strcmp(url, "/healthz") == 0)
        return reply_text(s, c, 200, "ok\n");
    if (strcmp(url, "/metrics") == 0) {
        char *text = dsc_server_metrics(s);
        if (!text)
            return reply_text(s, c, 500, "out of memory\n");
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(text);
            return reply_text(s, c, 500, "out of memory\n");
        }
        MHD_add_response_header(r, "Content-Type",
                                "text/plain; version=0.0.4; charset=utf-8");
        return reply(s, c, 200, r);
    }
    if (strncmp(url, DSC_PEER_PREFIX, strlen(DSC_PEER_PREFIX)) == 0)
        return serve_chunk(s, c, url, method, t0);
    return reply_text(s, c, 404, "not found\n");
}

static int parse_listen(const char *listen, struct addrinfo **ai)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return dsc_fail(DSC_EINVAL, "listen address '%s' is not host:port",
                        listen);
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return dsc_fail(DSC_EINVAL, "listen host too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        h = host + 1;
    }
    int any = !*h || strcmp(h, "*") == 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
    if (any)
        hints.ai_family = AF_INET;
    int e = getaddrinfo(any ? NULL : h, colon + 1, &hints, ai);
    if (e)
        return dsc_fail(DSC_EINVAL, "listen address '%s': %s", listen,
                        gai_strerror(e));
    return 0;
}

/* A PEM file into memory (MHD takes TLS material as strings). A key
 * readable by others is refused: it is the node's identity. */
static int read_pem(const char *path, int is_key, char **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dsc_fail(DSC_EINVAL, "TLS %s %s: %s", is_key ? "key" : "certificate",
                        path, strerror(e));
    }
    int rc = 0;
    if (is_key && (sb.st_mode & 077))
        rc = dsc_fail(DSC_EINVAL, "TLS key %s is readable by others (mode %03o): "
                      "chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
    else if (sb.st_size <= 0 || sb.st_size > (1 << 20))
        rc = dsc_fail(DSC_EINVAL, "TLS %s %s: empty or too large",
                      is_key ? "key" : "certificate", path);
    char *buf = rc ? NULL : calloc(1, (size_t)sb.st_size + 1);
    if (!rc && !buf)
        rc = DSC_ENOMEM;
    if (!rc && read(fd, buf, (size_t)sb.st_size) != sb.st_size)
        rc = dsc_fail(DSC_EINVAL, "TLS %s %s: short read", is_key ? "key" : "certificate",
                      path);
    close(fd);
    if (rc)
        free(buf);
    else
        *out = buf;
    return rc;
}

int dsc_server_start(dsc_ctx *ctx, const dsc_server_opts *o, dsc_server **out)
{
    *out = NULL;
    dsc_cache *cache = dsc_ctx_cache(ctx);
    if (!cache)
        return dsc_fail(DSC_EINVAL, "dscd needs a node cache (DSC_CACHE_DIR)");
    if (dsc_ctx_has_peers(ctx))
        return dsc_fail(DSC_EINVAL, "dscd's context must not use peers");
    if (!o->secret || !*o->secret)
        return dsc_fail(DSC_EINVAL, "dscd needs a secret (DSC_PEER_SECRET or "
                        "DSC_PEER_SECRET_FILE)");
    if (!o->tls_cert != !o->tls_key)
        return dsc_fail(DSC_EINVAL, "TLS needs both a certificate and a key "
                        "(DSC_PEER_TLS_CERT and DSC_PEER_TLS_KEY)");
    char *cert = NULL, *key = NULL;
    int rc = 0;
    if (o->tls_cert) {
        rc = read_pem(o->tls_cert, 0, &cert);
        if (!rc)
            rc = read_pem(o->tls_key, 1, &key);
        if (rc) {
            free(cert);
            return rc;
        }
    }
    struct addrinfo *ai = NULL;
    rc = parse_listen(o->listen, &ai);
    if (rc) {
        free(cert);
        free(key);
        return rc;
    }
    dsc_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        free(cert);
        free(key);
        return DSC_ENOMEM;
    }
    s->ctx = ctx;
    s->cache = cache;
    s->started = (int64_t)time(NULL);
    s->o = *o;
    s->o.listen = s->o.secret = NULL;
    if (s->o.max_skew_s <= 0)
        s->o.max_skew_s = 300;
    if (s->o.max_connections <= 0)
        s->o.max_connections = 512;
    if (s->o.max_inflight <= 0)
        s->o.max_inflight = 32;
    if (s->o.max_per_address <= 0)
        s->o.max_per_address = 64;
    if (s->o.max_per_address > s->o.max_connections)
        s->o.max_per_address = s->o.max_connections;
    if (s->o.idle_timeout_s <= 0)
        s->o.idle_timeout_s = 15;
    s->secret = dsc_strdup(o->secret);
    if (!s->secret || dsc_nonces_new(s->o.nonce_capacity ? s->o.nonce_capacity
                                                         : 1u << 18, &s->nonces)) {
        free(s->secret);
        free(s);
        freeaddrinfo(ai);
        free(cert);
        free(key);
        return DSC_ENOMEM;
    }
    sem_init(&s->inflight, 0, (unsigned)s->o.max_inflight);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* MHD copies neither string: they live as long as the server. */
    struct MHD_OptionItem tls[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (cert)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_ARRAY, cert ? tls : tls + 2,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->o.max_per_address,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.idle_timeout_s,
        /* Request headers are small (a key is at most 1 KiB): a bound on
         * what one connection may make the daemon hold. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_END);
    freeaddrinfo(ai);
    s->tls_cert = cert;
    s->tls_key = key;
    if (!s->d) {
        int err = errno;
        free(cert);
        if (key)
            memset(key, 0, strlen(key));
        free(key);
        sem_destroy(&s->inflight);
        dsc_nonces_free(s->nonces);
        free(s->secret);
        free(s);
        return dsc_fail(DSC_ENET, "cannot listen on %s: %s", o->listen,
                        strerror(err));
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    char *names = my_names(o->self, o->listen, s->port);
    if (!names) {
        dsc_server_stop(s);
        return dsc_fail(DSC_EINVAL, "dscd listens on all addresses (%s): set "
                        "DSC_SELF (or --self) to this node's name in DSC_PEERS, "
                        "which requests are signed for", o->listen);
    }
    dsc_atomic_publish(&s->names, names);
    *out = s;
    return 0;
}

uint16_t dsc_server_port(const dsc_server *s)
{
    return s->port;
}

void dsc_server_stop(dsc_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    sem_destroy(&s->inflight);
    dsc_nonces_free(s->nonces);
    memset(s->secret, 0, strlen(s->secret));
    free(s->secret);
    free(s->names);
    free(s->tls_cert);
    if (s->tls_key)
        memset(s->tls_key, 0, strlen(s->tls_key));
    free(s->tls_key);
    free(s);
}

#define LOAD(x) dsc_counter_get(&(x))

static void counter(dsc_buf *b, const char *name, const char *help, uint64_t v)
{
    dsc_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n",
                   name, help, name, name, v);
}

static void gauge(dsc_buf *b, const char *name, const char *help, uint64_t v)
{
    dsc_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n",
                   name, help, name, name, v);
}

static void histograms(dsc_server *s, dsc_buf *b)
{
    dsc_buf_adds(b, "# HELP dscd_request_seconds Time to answer a chunk "
                 "request, by result.\n# TYPE dscd_request_seconds histogram\n");
    for (int r = 0; r < NRESULTS; r++) {
        const char *name = RESULT_NAMES[r];
        uint64_t cum = 0;
        for (size_t i = 0; i < NBUCKETS; i++) {
            cum += LOAD(s->lat[r].le[i]);
            dsc_buf_printf(b, "dscd_request_seconds_bucket{result=\"%s\",le=\"%g\"} %"
                           PRIu64 "\n", name, BUCKETS[i], cum);
        }
        cum += LOAD(s->lat[r].le[NBUCKETS]);
        dsc_buf_printf(b, "dscd_request_seconds_bucket{result=\"%s\",le=\"+Inf\"} %"
                       PRIu64 "\n", name, cum);
        dsc_buf_printf(b, "dscd_request_seconds_sum{result=\"%s\"} %.6f\n"
                       "dscd_request_seconds_count{result=\"%s\"} %" PRIu64 "\n",
                       name, (double)LOAD(s->lat[r].sum_us) / 1e6, name,
                       LOAD(s->lat[r].count));
    }
}

/* The node's dsc_* series, rendered by the library as for dsc-stat
 * --prometheus (one definition: they cannot drift). */
static void node_series(dsc_server *s, dsc_buf *b)
{
    size_t cap = 16384;
    for (int tries = 0; tries < 4; tries++) {
        char *text = malloc(cap);
        int64_t n = text ? dsc_metrics_text(s->ctx, text, cap) : DSC_ENOMEM;
        if (n >= 0 && (size_t)n < cap)
            dsc_buf_add(b, text, (size_t)n);
        free(text);
        if (n < 0 || (size_t)n < cap)
            return;
        cap = (size_t)n + 4096;   /* it grew while we looked: again */
    }
}

char *dsc_server_metrics(dsc_server *s)
{
    dsc_stats st;
    dsc_stats_get(s->ctx, &st, sizeof st);
    dsc_buf b = { 0 };
    node_series(s, &b);
    dsc_buf_adds(&b, "# HELP dscd_requests_total HTTP requests answered, "
                 "by status code.\n# TYPE dscd_requests_total counter\n");
    for (size_t i = 0; i < NCODES; i++)
        dsc_buf_printf(&b, "dscd_requests_total{code=\"%u\"} %" PRIu64 "\n",
                       CODES[i], LOAD(s->by_code[i]));
    counter(&b, "dscd_peer_requests_total", "Chunk requests from peers.",
            LOAD(s->chunk_requests));
    counter(&b, "dscd_auth_failures_total", "Chunk requests refused for a "
            "missing, wrong or stale signature.", LOAD(s->auth_failures));
    counter(&b, "dscd_sent_bytes_total", "Chunk bytes sent to peers.",
            LOAD(s->bytes_sent));
    counter(&b, "dscd_zero_copy_total", "Chunks sent straight from their "
            "file (sendfile).", LOAD(s->zero_copy));
    counter(&b, "dscd_cache_hits_total", "Chunk reads served from the node "
            "cache.", st.hits);
    counter(&b, "dscd_cache_misses_total", "Chunk reads fetched from S3.",
            st.misses);
    counter(&b, "dscd_s3_gets_total", "Ranged GETs sent to S3.", st.s3_gets);
    counter(&b, "dscd_s3_bytes_total", "Bytes received from S3.",
            st.bytes_from_s3);
    counter(&b, "dscd_s3_heads_total", "HEADs sent to S3.", st.s3_heads);
    counter(&b, "dscd_s3_retries_total", "S3 attempts repeated.", st.s3_retries);
    counter(&b, "dscd_evictions_total", "Chunks this daemon evicted.",
            st.evictions);
    counter(&b, "dscd_errors_total", "Failed cache writes (the answer still "
            "went out).", st.cache_errors);
    counter(&b, "dscd_corrupt_dropped_total", "Cached chunks that failed "
            "their check and were fetched again.", st.corrupt_dropped);
    gauge(&b, "dscd_cache_bytes", "Bytes of all cached chunks of the node.",
          st.cache_bytes);
    gauge(&b, "dscd_cache_chunks", "Cached chunks of the node.", st.cache_chunks);
    gauge(&b, "dscd_cache_capacity_bytes", "The cache's byte cap.",
          st.cache_capacity);
    histograms(s, &b);
    if (dsc_buf_oom(&b)) {
        dsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}
