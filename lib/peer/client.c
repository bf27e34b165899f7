/* Asking the owner node for a chunk. Its answer is trusted only when the
 * response signature (bound to our request) holds, the length is the
 * chunk's and the body hashes to the XXH3 the owner recorded when it
 * fetched the chunk from S3: a peer with a rotten file, a cut connection
 * or a meddling proxy costs one S3 GET, never wrong bytes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <xxhash.h>
#include "core/atomic.h"
#include "core/fork.h"
#include "net/http.h"
#include "core/log.h"
#include "peer/client.h"
#include "peer/members.h"
#include "peer/proto.h"
#include "peer/ring.h"

struct dsc_peers {
    /* Set at creation, read-only after. */
    dsc_peer_opts o;
    char *secret;
    char *origin;                  /* the S3 endpoint this node reads */
    char *tls_ca;                  /* NULL: the system's CAs (or no TLS) */
    dsc_roster *roster;            /* who the peers are (members.h) */
    /* Per process (core/fork.h): re-made by http_of() after fork(). */
    unsigned fork_gen;
    dsc_http *http;
    /* Counters (core/atomic.h), any thread. */
    uint64_t hits, bytes, errors, bad_data;
};

static void bump(uint64_t *c, uint64_t v)
{
    dsc_counter_add(c, v);
}

static int make_http(dsc_peers *p, dsc_http **out)
{
    dsc_http_opts ho = {
        .connect_timeout_ms = p->o.connect_timeout_ms < p->o.timeout_ms
                                  ? p->o.connect_timeout_ms : p->o.timeout_ms,
        .request_timeout_ms = p->o.timeout_ms,
        .max_connections = p->o.max_connections,
        .verify_tls = 1,
        .ca_file = p->tls_ca,
    };
    return dsc_http_new(&ho, out);
}

int dsc_peers_new(const dsc_peer_opts *o, dsc_peers **out)
{
    *out = NULL;
    if (!o->secret || !*o->secret)
        return dsc_fail(DSC_EINVAL, "peers are set (DSC_PEERS) but no shared "
                        "secret (DSC_PEER_SECRET or DSC_PEER_SECRET_FILE)");
    dsc_peers *p = calloc(1, sizeof *p);
    if (!p)
        return DSC_ENOMEM;
    p->o = *o;
    p->secret = dsc_strdup(o->secret);
    p->origin = dsc_strdup(o->origin ? o->origin : "");
    p->tls_ca = dsc_strdup(o->tls_ca);
    p->o.secret = p->o.peers = p->o.self = p->o.origin = p->o.tls_ca = NULL;
    int rc = p->secret && p->origin && (!o->tls_ca || p->tls_ca) ? 0 : DSC_ENOMEM;
    if (!rc && o->tls_ca && access(o->tls_ca, R_OK))
        rc = dsc_fail(DSC_EINVAL, "DSC_PEER_TLS_CA %s: %s", o->tls_ca,
                      strerror(errno));
    if (!rc)
        rc = make_http(p, &p->http);
    dsc_roster_opts ro = { o->peers, o->self, o->refresh_s, o->connect_timeout_ms };
    if (!rc)
        rc = dsc_roster_new(&ro, &p->roster);
    if (rc) {
        dsc_peers_free(p);
        return rc;
    }
    dsc_fork_mark(&p->fork_gen);
    *out = p;
    return 0;
}

void dsc_peers_free(dsc_peers *p)
{
    if (!p)
        return;
    dsc_roster_free(p->roster);
    if (dsc_fork_current(&p->fork_gen))
        dsc_http_free(p->http);
    else
        dsc_fork_graveyard(p->http);
    if (p->secret)
        memset(p->secret, 0, strlen(p->secret));
    free(p->secret);
    free(p->origin);
    free(p->tls_ca);
    free(p);
}

static int remake_http(void *arg)
{
    dsc_peers *p = arg;
    dsc_http *fresh = NULL;
    int rc = make_http(p, &fresh);
    if (!rc) {
        dsc_fork_graveyard(p->http);
        p->http = fresh;
    }
    return rc;
}

/* The connections of this process (a fork()ed child makes its own). */
static dsc_http *http_of(dsc_peers *p)
{
    return dsc_fork_ensure(&p->fork_gen, remake_http, p) ? NULL : p->http;
}

int dsc_peers_route(dsc_peers *p, const dsc_chunk_id *id, dsc_peer_pick *pick)
{
    pick->m = NULL;
    dsc_peer_members *m = dsc_roster_get(p->roster);
    if (!m)
        return 0;
    if (m->ring) {
        size_t owner = dsc_ring_owner(m->ring, id);
        int64_t until = dsc_atomic_get(&m->st[owner].down_until_ms);
        if ((int)owner != m->self && !(until && dsc_now_ms() < until)) {
            pick->m = m;
            pick->peer = owner;
            return 1;
        }
    }
    dsc_members_put(m);
    return 0;
}

void dsc_peers_release(dsc_peer_pick *pick)
{
    dsc_members_put(pick->m);
    pick->m = NULL;
}

static int peer_failed(dsc_peers *p, const dsc_peer_pick *pk, int code, const char *detail)
{
    const char *name = dsc_ring_peer(pk->m->ring, pk->peer);
    bump(&p->errors, 1);
    if (p->o.backoff_ms > 0)
        dsc_atomic_set(&pk->m->st[pk->peer].down_until_ms, dsc_now_ms() + p->o.backoff_ms);
    dsc_log_once(&pk->m->st[pk->peer].warned, DSC_LOG_WARN, "peer %s: %s; reading "
                 "from S3, skipping it for %ld ms (warned once)", name,
                 detail, p->o.backoff_ms);
    return dsc_fail(code, "peer %s: %s", name, detail);
}

/* The headers of a signed request, as curl wants them. */
static int request_headers(const dsc_peer_signed *sig, struct curl_slist **out)
{
    for (size_t i = 0; i <= DSC_ARRAY_LEN(sig->lines); i++) {
        const char *line = i < DSC_ARRAY_LEN(sig->lines) ? sig->lines[i].data
                                                          : "Accept:";
        struct curl_slist *t = curl_slist_append(*out, line);
        if (!t)
            return DSC_ENOMEM;
        *out = t;
    }
    return 0;
}

/* The header of the answer that carries its proof. */
static const char *const ANSWER_HEADERS[] = { "X-Dsc-Mac", NULL };
enum { ANSWER_MAC };

/* The peer answered something other than 200. */
static int refused(dsc_peers *p, const dsc_peer_pick *pk, long status)
{
    char detail[160];
    const char *why = status == 401 ? " (does DSC_PEER_SECRET match on every "
                                      "node, and their clocks?)"
                    : status == 502 ? " (its S3 read failed)"
                    : status == 503 ? " (busy)" : "";
    snprintf(detail, sizeof detail, "HTTP %ld%s", status, why);
    if (status == 502 || status == 503) {
        /* The peer is fine (S3 is not, or it is busy for a moment): no
         * back-off. Our own GET decides this read. */
        bump(&p->errors, 1);
        return dsc_fail(DSC_EHTTP, "peer %s: %s",
                        dsc_ring_peer(pk->m->ring, pk->peer), detail);
    }
    return peer_failed(p, pk, status == 401 ? DSC_EACCESS : DSC_EHTTP, detail);
}

/* A 200: its MAC, under a key only this request's signer and the owner
 * can derive, must hold over exactly the bytes received (for a HEAD: an
 * empty body). Checked before the bytes are used or stored. */
static int check_answer(dsc_peers *p, const dsc_peer_pick *pk, const dsc_peer_signed *sig,
                        const dsc_http_resp *rs, const void *buf, size_t len,
                        const dsc_objref *obj, uint64_t index)
{
    const char *got_mac = rs->captured[ANSWER_MAC];
    char want_mac[33];
    size_t n = buf ? rs->received : 0;
    int ok = (!buf || rs->received == len) &&
             dsc_peer_answer_mac(p->secret, sig->auth_hex, buf ? buf : "", n,
                                 want_mac) == 0 &&
             dsc_peer_hex_equal(want_mac, got_mac);
    if (ok) {
        if (buf) {
            bump(&p->hits, 1);
            bump(&p->bytes, len);
        }
        return 0;
    }
    char detail[320];
    snprintf(detail, sizeof detail, "answer for chunk %" PRIu64 " of "
             "s3://%.40s/%.60s failed its check (%zu of %zu bytes, MAC %s)",
             index, obj->bucket, obj->key, rs->received, len,
             !got_mac[0] ? "missing" : "wrong");
    bump(&p->bad_data, 1);
    return peer_failed(p, pk, DSC_EPROTO, detail);
}

int dsc_peers_get(dsc_peers *p, const dsc_peer_pick *pk, const dsc_objref *obj,
                  uint32_t chunk_size, uint64_t index, const dsc_chunk_id *id,
                  void *buf, size_t len)
{
    dsc_http *http = http_of(p);
    if (!http)
        return DSC_ENOMEM;
    int head = buf == NULL;
    uint8_t nonce[DSC_PEER_NONCE];
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
        return dsc_fail(DSC_EIO, "getrandom: %s", strerror(errno));
    dsc_peer_ident who = { dsc_ring_peer(pk->m->ring, pk->peer), p->origin,
                           obj, chunk_size, index };
    dsc_peer_signed sig;
    int rc = dsc_peer_sign(p->secret, head, id, &who, (int64_t)time(NULL),
                           nonce, &sig);
    if (rc)
        return rc;
    dsc_buf url = { 0 };
    struct curl_slist *headers = NULL;
    dsc_http_resp rs = { 0 };
    rc = request_headers(&sig, &headers);
    if (rc)
        goto done;
    dsc_buf_printf(&url, "%s://%s%s", p->o.tls ? "https" : "http",
                   dsc_ring_peer(pk->m->ring, pk->peer), sig.path);
    if (dsc_buf_oom(&url)) {
        rc = DSC_ENOMEM;
        goto done;
    }
    dsc_http_req rq = { .method = head ? "HEAD" : "GET", .url = url.data,
                        .headers = headers, .buf = buf, .cap = len,
                        .capture = ANSWER_HEADERS };
    if (dsc_http_perform(http, &rq, &rs)) {
        if (rs.overflow)
            bump(&p->bad_data, 1);
        rc = peer_failed(p, pk, rs.curl_code == CURLE_OPERATION_TIMEDOUT
                                      ? DSC_ETIMEDOUT : DSC_ENET,
                         rs.overflow ? "answer longer than the chunk"
                                     : rs.curl_err);
    } else if (rs.status != 200) {
        rc = refused(p, pk, rs.status);
    } else {
        rc = check_answer(p, pk, &sig, &rs, buf, len, obj, index);
    }
done:
    dsc_http_resp_free(&rs);
    curl_slist_free_all(headers);
    dsc_buf_free(&url);
    dsc_peer_signed_free(&sig);
    return rc;
}

int dsc_peers_keep_local(const dsc_peers *p)
{
    return p->o.keep_local;
}

void dsc_peers_stats(dsc_peers *p, dsc_stats *st)
{
    st->peer_hits = dsc_counter_get(&p->hits);
    st->peer_bytes = dsc_counter_get(&p->bytes);
    st->peer_errors = dsc_counter_get(&p->errors);
    st->peer_bad_data = dsc_counter_get(&p->bad_data);
    dsc_roster_counts(p->roster, &st->peer_changes, &st->peer_resolve_errors);
    dsc_peer_members *m = dsc_roster_get(p->roster);
    if (!m)
        return;
    int64_t now = dsc_now_ms();
    uint64_t down = 0;
    size_t n = m->ring ? dsc_ring_size(m->ring) : 0;
    for (size_t i = 0; i < n; i++) {
        int64_t u = dsc_atomic_get(&m->st[i].down_until_ms);
        down += u && now < u;
    }
    st->peers_down = down;
    st->peers = n;
    dsc_members_put(m);
}

/* The first line of a secret file: kept out of the environment (and so
 * out of /proc/PID/environ and crash reports). */
static int read_secret_file(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dsc_fail(DSC_EIO, "cannot read peer secret file %s: %s", path,
                        strerror(errno));
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        dsc_log(DSC_LOG_WARN, "peer secret file %s is readable by others "
                "(mode %o); chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
    close(fd);
    if (n < 0)
        return dsc_fail(DSC_EIO, "cannot read peer secret file %s: %s", path,
                        strerror(errno));
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!*buf)
        return dsc_fail(DSC_EINVAL, "peer secret file %s is empty", path);
    *out = dsc_strdup(buf);
    memset(buf, 0, sizeof buf);
    return *out ? 0 : DSC_ENOMEM;
}

int dsc_peer_secret(const char *given, char **out)
{
    *out = NULL;
    const char *secret = given ? given : getenv("DSC_PEER_SECRET");
    const char *file = getenv("DSC_PEER_SECRET_FILE");
    if ((!secret || !*secret) && file && *file)
        return read_secret_file(file, out);
    if (!secret || !*secret)
        return 0;
    *out = dsc_strdup(secret);
    return *out ? 0 : DSC_ENOMEM;
}
