/* Asking the owner node for a chunk. Its answer is trusted only when the
 * response signature (bound to our request) holds, the length is the
 * chunk's and the body hashes to the XXH3 the owner recorded when it
 * fetched the chunk from S3: a peer with a rotten file, a cut connection
 * or a meddling proxy costs one S3 GET, never wrong bytes. */
#include <errno.h>
#include <pthread.h>
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
#include "peer/discover.h"
#include "peer/proto.h"
#include "peer/ring.h"

typedef struct peer_state {
    int64_t down_until_ms;         /* dsc_atomic_get/set; monotonic clock */
    int warned;                    /* dsc_log_once */
} peer_state;

/* The peers as known at one moment. A read holds a reference from route
 * to the end of its request, so a membership change never pulls a ring
 * or a peer's state out from under it. */
struct dsc_peer_members {
    int refs;                      /* dsc_ref_get/put */
    dsc_ring *ring;                /* NULL: no peer known (discovery) */
    int self;                      /* this node's index, or -1 */
    peer_state *st;                /* one per ring peer */
    char *list;                    /* what it was made of */
};

struct dsc_peers {
    /* Set at creation, read-only after. */
    dsc_peer_opts o;
    char *secret;
    char *origin;                  /* the S3 endpoint this node reads */
    char *tls_ca;                  /* NULL: the system's CAs (or no TLS) */
    char *self;
    dsc_discovery disc;            /* LIST: o.peers is the fixed list */
    /* Guarded by mu; mu and wake are re-made by the first call in a fork
     * child (a parent thread may have held mu), which also starts the
     * child's own refresher. */
    unsigned proc_gen;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    dsc_peer_members *now;
    int stop;
    int refresher_running;         /* in this process */
    pthread_t refresher;
    /* Per process (core/fork.h): re-made by http_of() after fork(). */
    unsigned fork_gen;
    dsc_http *http;
    /* Counters (core/atomic.h), any thread. */
    uint64_t hits, bytes, errors, bad_data, changes, resolve_errors;
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

static void members_put(dsc_peer_members *m)
{
    if (!m || !dsc_ref_put(&m->refs))
        return;
    dsc_ring_free(m->ring);
    free(m->st);
    free(m->list);
    free(m);
}

/* Members from a "host:port,..." list ("" for none). A fixed list must
 * name this node when self is set; a discovered one may not yet. Peers
 * that stay keep their back-off state from prev. */
static int members_new(const dsc_peers *p, const char *list,
                       const dsc_peer_members *prev, dsc_peer_members **out)
{
    *out = NULL;
    dsc_peer_members *m = calloc(1, sizeof *m);
    if (!m)
        return DSC_ENOMEM;
    m->refs = 1;
    m->self = -1;
    int fixed = p->disc.kind == DSC_PEERS_LIST;
    int rc = (m->list = dsc_strdup(list)) ? 0 : DSC_ENOMEM;
    if (!rc && *list)
        rc = dsc_ring_new(list, fixed ? p->self : NULL, &m->ring);
    if (!rc && m->ring) {
        m->self = p->self ? dsc_ring_find(m->ring, p->self) : -1;
        m->st = calloc(dsc_ring_size(m->ring), sizeof *m->st);
        rc = m->st ? 0 : DSC_ENOMEM;
    }
    for (size_t i = 0; !rc && m->ring && prev && prev->ring &&
                       i < dsc_ring_size(m->ring); i++) {
        int was = dsc_ring_find(prev->ring, dsc_ring_peer(m->ring, i));
        if (was >= 0)
            m->st[i].down_until_ms = dsc_atomic_get(&prev->st[was].down_until_ms);
    }
    if (rc) {
        members_put(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Swap in the members a resolution found, when they differ. */
static void adopt(dsc_peers *p, const char *list)
{
    pthread_mutex_lock(&p->mu);
    dsc_peer_members *prev = p->now;
    dsc_ref_get(&prev->refs);
    pthread_mutex_unlock(&p->mu);
    dsc_peer_members *m = NULL;
    if (strcmp(prev->list, list) == 0) {
        members_put(prev);
        return;
    }
    if (members_new(p, list, prev, &m)) {
        dsc_log(DSC_LOG_WARN, "peer discovery: %s named peers this node "
                "cannot use (%s); keeping the %zu it had", p->o.peers,
                dsc_errmsg(), prev->ring ? dsc_ring_size(prev->ring) : 0);
        members_put(prev);
        return;
    }
    pthread_mutex_lock(&p->mu);
    dsc_peer_members *old = p->now;
    p->now = m;
    pthread_mutex_unlock(&p->mu);
    bump(&p->changes, 1);
    dsc_log(DSC_LOG_INFO, "peer discovery: %s now names %zu peers: %s",
            p->o.peers, m->ring ? dsc_ring_size(m->ring) : 0,
            *list ? list : "(none)");
    members_put(old);
    members_put(prev);
}

/* Resolve the spec once: adopt the answer, keep the members when no
 * answer came (a DNS outage must not send the cluster's reads to S3). */
static void refresh(dsc_peers *p)
{
    char *list = NULL;
    if (dsc_discovery_resolve(&p->disc, &list) == 0) {
        adopt(p, list);
    } else {
        bump(&p->resolve_errors, 1);
        dsc_log(DSC_LOG_WARN, "%s; keeping the peers known", dsc_errmsg());
    }
    free(list);
}

static void *refresher_main(void *arg)
{
    dsc_peers *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->o.refresh_s;
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->mu, &until) == 0)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        refresh(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The lock, the condition and (discovery) the refresher of this
 * process: at creation, and again in a fork child. */
static int start_process(void *arg)
{
    dsc_peers *p = arg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return dsc_fail(DSC_ENOMEM, "peers: cannot make a lock");
    p->stop = 0;
    p->refresher_running = 0;
    if (p->disc.kind == DSC_PEERS_LIST)
        return 0;
    if (pthread_create(&p->refresher, NULL, refresher_main, p))
        return dsc_fail(DSC_ENOMEM, "peers: cannot start the discovery thread");
    p->refresher_running = 1;
    return 0;
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
    p->self = dsc_strdup(o->self);
    p->o.peers = dsc_strdup(o->peers);
    p->o.secret = p->o.self = p->o.origin = p->o.tls_ca = NULL;
    p->proc_gen = DSC_FORK_NONE;
    char *found = NULL;
    int rc = p->secret && p->origin && p->o.peers && (!o->tls_ca || p->tls_ca) &&
             (!o->self || p->self) ? 0 : DSC_ENOMEM;
    if (!rc)
        rc = dsc_discovery_parse(o->peers, &p->disc);
    if (!rc && p->disc.kind != DSC_PEERS_LIST && p->o.refresh_s <= 0)
        rc = dsc_fail(DSC_EINVAL, "peers: refresh interval %ld s (DSC_PEERS_REFRESH_S) "
                      "must be positive", p->o.refresh_s);
    if (!rc && p->disc.kind != DSC_PEERS_LIST &&
        dsc_discovery_resolve(&p->disc, &found)) {
        /* Not fatal: DNS may be back before the next refresh, and reads
         * go to S3 meanwhile. Said, so a wrong name is not silent. */
        bump(&p->resolve_errors, 1);
        dsc_log(DSC_LOG_WARN, "%s; reading from S3 until it answers", dsc_errmsg());
    }
    if (!rc)
        rc = members_new(p, p->disc.kind == DSC_PEERS_LIST ? o->peers
                            : found ? found : "", NULL, &p->now);
    if (!rc && p->disc.kind != DSC_PEERS_LIST && !found[0])
        dsc_log(DSC_LOG_WARN, "peer discovery: %s names no peer yet; reading "
                "from S3 until it does", o->peers);
    free(found);
    if (!rc && o->tls_ca && access(o->tls_ca, R_OK))
        rc = dsc_fail(DSC_EINVAL, "DSC_PEER_TLS_CA %s: %s", o->tls_ca,
                      strerror(errno));
    if (!rc)
        rc = make_http(p, &p->http);
    if (!rc)
        rc = dsc_fork_ensure(&p->proc_gen, start_process, p);
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
    if (dsc_fork_current(&p->proc_gen)) {
        if (p->refresher_running) {
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            pthread_cond_signal(&p->wake);
            pthread_mutex_unlock(&p->mu);
            pthread_join(p->refresher, NULL);
        }
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
    }
    if (dsc_fork_current(&p->fork_gen))
        dsc_http_free(p->http);
    else
        dsc_fork_graveyard(p->http);
    members_put(p->now);
    dsc_discovery_free(&p->disc);
    if (p->secret)
        memset(p->secret, 0, strlen(p->secret));
    free(p->secret);
    free(p->origin);
    free(p->tls_ca);
    free(p->self);
    free((char *)p->o.peers);
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

/* The members now, referenced; NULL when this process cannot take the
 * lock (a fork child that could not re-make it). */
static dsc_peer_members *members_get(dsc_peers *p)
{
    if (dsc_fork_ensure(&p->proc_gen, start_process, p))
        return NULL;
    pthread_mutex_lock(&p->mu);
    dsc_peer_members *m = p->now;
    dsc_ref_get(&m->refs);
    pthread_mutex_unlock(&p->mu);
    return m;
}

int dsc_peers_route(dsc_peers *p, const dsc_chunk_id *id, dsc_peer_pick *pick)
{
    pick->m = NULL;
    dsc_peer_members *m = members_get(p);
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
    members_put(m);
    return 0;
}

void dsc_peers_release(dsc_peer_pick *pick)
{
    members_put(pick->m);
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
    st->peer_changes = dsc_counter_get(&p->changes);
    st->peer_resolve_errors = dsc_counter_get(&p->resolve_errors);
    dsc_peer_members *m = members_get(p);
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
    members_put(m);
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
