/* Asking the owner node for a chunk. Its answer is trusted only when the
 * response signature (bound to our request) holds, the length is the
 * chunk's and the body hashes to the XXH3 the owner recorded when it
 * fetched the chunk from S3: a peer with a rotten file, a cut connection
 * or a meddling proxy costs one S3 GET, never wrong bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include "core/fork.h"
#include "net/http.h"
#include "core/log.h"
#include "peer/client.h"
#include "peer/proto.h"
#include "peer/ring.h"

typedef struct peer_state {
    int64_t down_until_ms;         /* __atomic; monotonic clock */
    int warned;
} peer_state;

struct dsc_peers {
    dsc_peer_opts o;
    char *secret;
    dsc_ring *ring;
    peer_state *st;
    dsc_http *http;                /* re-made after fork() */
    unsigned fork_gen;
    int warned_auth;
    uint64_t hits, bytes, errors, bad_data;   /* __atomic */
};

static void bump(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static int make_http(dsc_peers *p, dsc_http **out)
{
    dsc_http_opts ho = {
        .connect_timeout_ms = p->o.connect_timeout_ms < p->o.timeout_ms
                                  ? p->o.connect_timeout_ms : p->o.timeout_ms,
        .request_timeout_ms = p->o.timeout_ms,
        .max_connections = p->o.max_connections,
        .verify_tls = 1,
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
    p->o.secret = p->o.peers = p->o.self = NULL;
    int rc = p->secret ? dsc_ring_new(o->peers, o->self, &p->ring) : DSC_ENOMEM;
    if (!rc) {
        p->st = calloc(dsc_ring_size(p->ring), sizeof *p->st);
        rc = p->st ? make_http(p, &p->http) : DSC_ENOMEM;
    }
    if (rc) {
        dsc_peers_free(p);
        return rc;
    }
    p->fork_gen = dsc_fork_generation();
    *out = p;
    return 0;
}

void dsc_peers_free(dsc_peers *p)
{
    if (!p)
        return;
    if (p->fork_gen == dsc_fork_generation())
        dsc_http_free(p->http);
    else
        dsc_fork_graveyard(p->http);
    dsc_ring_free(p->ring);
    free(p->st);
    if (p->secret)
        memset(p->secret, 0, strlen(p->secret));
    free(p->secret);
    free(p);
}

/* The connections of this process (a fork()ed child makes its own). */
static dsc_http *http_of(dsc_peers *p)
{
    unsigned gen = dsc_fork_generation();
    if (__builtin_expect(__atomic_load_n(&p->fork_gen, __ATOMIC_ACQUIRE) == gen, 1))
        return p->http;
    dsc_fork_remake_lock();
    if (p->fork_gen != gen) {
        dsc_http *fresh = NULL;
        if (make_http(p, &fresh) == 0) {
            dsc_fork_graveyard(p->http);
            p->http = fresh;
            __atomic_store_n(&p->fork_gen, gen, __ATOMIC_RELEASE);
        }
    }
    dsc_fork_remake_unlock();
    return p->fork_gen == gen ? p->http : NULL;
}

int dsc_peers_route(dsc_peers *p, const dsc_chunk_id *id)
{
    size_t owner = dsc_ring_owner(p->ring, id);
    if ((int)owner == dsc_ring_self(p->ring))
        return -1;
    int64_t until = __atomic_load_n(&p->st[owner].down_until_ms, __ATOMIC_RELAXED);
    if (until && dsc_now_ms() < until)
        return -1;
    return (int)owner;
}

static int peer_failed(dsc_peers *p, int peer, int code, const char *detail)
{
    const char *name = dsc_ring_peer(p->ring, (size_t)peer);
    bump(&p->errors, 1);
    if (p->o.backoff_ms > 0)
        __atomic_store_n(&p->st[peer].down_until_ms,
                         dsc_now_ms() + p->o.backoff_ms, __ATOMIC_RELAXED);
    dsc_log_once(&p->st[peer].warned, DSC_LOG_WARN, "peer %s: %s; reading "
                 "from S3, skipping it for %ld ms (warned once)", name,
                 detail, p->o.backoff_ms);
    return dsc_fail(code, "peer %s: %s", name, detail);
}

int dsc_peers_get(dsc_peers *p, int peer, const dsc_objref *obj,
                  uint32_t chunk_size, uint64_t index, const dsc_chunk_id *id,
                  void *buf, size_t len)
{
    dsc_http *http = http_of(p);
    if (!http)
        return DSC_ENOMEM;
    int head = buf == NULL;
    dsc_peer_signed sig;
    int rc = dsc_peer_sign(p->secret, head, id, obj->bucket, obj->key,
                           obj->etag, obj->size, chunk_size, index,
                           (int64_t)time(NULL), &sig);
    if (rc)
        return rc;
    dsc_buf url = { 0 };
    struct curl_slist *h = NULL, *t;
    const char *lines[] = { sig.bucket.data, sig.key.data, sig.etag.data,
                            sig.size.data, sig.chunk.data, sig.time.data,
                            sig.auth.data, "Accept:", "Expect:" };
    for (size_t i = 0; i < DSC_ARRAY_LEN(lines); i++) {
        if (!(t = curl_slist_append(h, lines[i]))) {
            rc = DSC_ENOMEM;
            break;
        }
        h = t;
    }
    if (!rc && dsc_buf_printf(&url, "http://%s%s",
                              dsc_ring_peer(p->ring, (size_t)peer), sig.path))
        rc = DSC_ENOMEM;
    dsc_http_req rq = { .method = head ? "HEAD" : "GET", .url = url.data,
                        .headers = h, .buf = buf, .cap = len };
    dsc_http_resp rs = { 0 };
    if (!rc && dsc_http_perform(http, &rq, &rs)) {
        rc = peer_failed(p, peer, rs.curl_code == CURLE_OPERATION_TIMEDOUT
                                      ? DSC_ETIMEDOUT : DSC_ENET,
                         rs.overflow ? "answer longer than "
                         "the chunk" : rs.curl_err);
        if (rs.overflow)
            bump(&p->bad_data, 1);
    } else if (!rc && rs.status != 200) {
        char detail[160];
        const char *why = rs.status == 401 ? " (does DSC_PEER_SECRET match "
                                             "on every node, and their clocks?)"
                        : rs.status == 502 ? " (its S3 read failed)" : "";
        snprintf(detail, sizeof detail, "HTTP %ld%s", rs.status, why);
        if (rs.status == 502) {
            /* The peer is fine; S3 is not. Our own GET will say why. */
            bump(&p->errors, 1);
            rc = dsc_fail(DSC_EHTTP, "peer %s: %s",
                          dsc_ring_peer(p->ring, (size_t)peer), detail);
        } else {
            rc = peer_failed(p, peer, rs.status == 401 ? DSC_EACCESS : DSC_EHTTP,
                             detail);
        }
    } else if (!rc) {
        uint64_t want_xxh = 0, got_xxh = 0;
        char *end = NULL, want_sig[65];
        if (rs.dsc_xxh3[0])
            want_xxh = strtoull(rs.dsc_xxh3, &end, 16);
        int ok = end && !*end && strlen(rs.dsc_xxh3) == 16 &&
                 dsc_peer_resp_sig(p->secret, sig.auth_hex, len, want_xxh,
                                   want_sig) == 0 &&
                 dsc_peer_hex_equal(want_sig, rs.dsc_sig);
        if (ok && !head) {
            got_xxh = XXH3_64bits(buf, rs.received);
            ok = rs.received == len && got_xxh == want_xxh;
        }
        if (!ok) {
            char detail[320];
            snprintf(detail, sizeof detail, "answer for chunk %" PRIu64
                     " of s3://%.40s/%.60s failed its check (%zu of %zu "
                     "bytes, xxh3 %016" PRIx64 " vs %.20s, signature %s)",
                     index, obj->bucket, obj->key, rs.received, len, got_xxh,
                     rs.dsc_xxh3, rs.dsc_sig[0] ? "present" : "missing");
            bump(&p->bad_data, 1);
            rc = peer_failed(p, peer, DSC_EPROTO, detail);
        } else if (!head) {
            bump(&p->hits, 1);
            bump(&p->bytes, len);
        }
    }
    dsc_http_resp_free(&rs);
    curl_slist_free_all(h);
    dsc_buf_free(&url);
    dsc_peer_signed_free(&sig);
    return rc;
}

int dsc_peers_keep_local(const dsc_peers *p)
{
    return p->o.keep_local;
}

size_t dsc_peers_count(const dsc_peers *p)
{
    return dsc_ring_size(p->ring);
}

const char *dsc_peers_name(const dsc_peers *p, size_t i)
{
    return dsc_ring_peer(p->ring, i);
}

void dsc_peers_stats(dsc_peers *p, dsc_stats *st)
{
    st->peer_hits = __atomic_load_n(&p->hits, __ATOMIC_RELAXED);
    st->peer_bytes = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
    st->peer_errors = __atomic_load_n(&p->errors, __ATOMIC_RELAXED);
    st->peer_bad_data = __atomic_load_n(&p->bad_data, __ATOMIC_RELAXED);
    int64_t now = dsc_now_ms();
    uint64_t down = 0;
    for (size_t i = 0; i < dsc_ring_size(p->ring); i++) {
        int64_t u = __atomic_load_n(&p->st[i].down_until_ms, __ATOMIC_RELAXED);
        down += u && now < u;
    }
    st->peers_down = down;
}
