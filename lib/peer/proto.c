/* Peer requests: their canonical form, signatures and strict parsing. A
 * request names a chunk only by its identity; nothing in it is ever used
 * as a file system path. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "peer/proto.h"
#include "net/sigv4.h"
#include "net/url.h"

/* Strict decimal: digits only, no sign or blanks, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!dsc_isdigit(*s))
            return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* The signed form of a request: every field, in order, one a line;
 * free-form ones percent-encoded so no field can hold a line break. */
typedef struct canon_in {
    int head;
    const char *path, *target, *origin, *bucket, *key, *etag;
    uint64_t size, index;
    uint32_t chunk_size;
    int64_t time;
    const uint8_t *nonce;
} canon_in;

static int canonical(dsc_buf *out, const canon_in *c)
{
    char nonce[2 * DSC_PEER_NONCE + 1];
    dsc_hex_encode(c->nonce, DSC_PEER_NONCE, nonce);
    dsc_buf_printf(out, "dsc-peer-2\n%s\n%s\n", c->head ? "HEAD" : "GET",
                   c->path);
    dsc_uri_encode(out, c->target, strlen(c->target), 0);
    dsc_buf_adds(out, "\n");
    dsc_uri_encode(out, c->origin, strlen(c->origin), 0);
    dsc_buf_printf(out, "\n%s\n", c->bucket);
    dsc_uri_encode(out, c->key, strlen(c->key), 0);
    dsc_buf_adds(out, "\n");
    dsc_uri_encode(out, c->etag, strlen(c->etag), 0);
    dsc_buf_printf(out, "\n%" PRIu64 "\n%" PRIu32 "\n%" PRIu64 "\n%" PRId64 "\n%s",
                   c->size, c->chunk_size, c->index, c->time, nonce);
    return dsc_buf_oom(out) ? DSC_ENOMEM : 0;
}

static int mac_hex(const char *secret, const dsc_buf *msg, char out[65])
{
    unsigned char mac[32];
    if (dsc_hmac_sha256(secret, strlen(secret), msg->data, msg->len, mac))
        return DSC_ENOMEM;
    dsc_hex_encode(mac, sizeof mac, out);
    return 0;
}

int dsc_peer_hex_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

int dsc_peer_auth_wellformed(const char *auth)
{
    uint8_t mac[32];
    return auth && strlen(auth) == 64 && dsc_hex_decode(auth, mac, sizeof mac) == 0;
}

/* "/v2/chunk/<32 hex id>" into out. */
static void chunk_path(const dsc_chunk_id *id, char out[64])
{
    size_t plen = strlen(DSC_PEER_PREFIX);
    memcpy(out, DSC_PEER_PREFIX, plen);
    dsc_hex_encode(id->b, 16, out + plen);
}

static int bad(const char *what, const char *v)
{
    char shown[64];
    return dsc_fail(DSC_EINVAL, "peer request: bad %s '%s'", what,
                    dsc_printable(v ? v : "(missing)", shown, sizeof shown));
}

int dsc_peer_req_parse(const dsc_peer_raw *raw, dsc_peer_req *out)
{
    memset(out, 0, sizeof *out);
    if (!raw->method || (strcmp(raw->method, "GET") && strcmp(raw->method, "HEAD")))
        return bad("method", raw->method);
    out->head = raw->method[0] == 'H';
    size_t plen = strlen(DSC_PEER_PREFIX);
    if (!raw->path || strncmp(raw->path, DSC_PEER_PREFIX, plen) ||
        strlen(raw->path) != plen + 32 ||
        dsc_hex_decode(raw->path + plen, out->id.b, 16))
        return bad("path", raw->path);
    if (!raw->target || dsc_uri_decode(&out->target, raw->target, strlen(raw->target)) ||
        out->target.len == 0 || out->target.len > DSC_PEER_MAX_NAME)
        return bad("target", raw->target);
    if (!raw->origin || dsc_uri_decode(&out->origin, raw->origin, strlen(raw->origin)) ||
        out->origin.len == 0 || out->origin.len > DSC_PEER_MAX_NAME)
        return bad("origin", raw->origin);
    if (!raw->bucket || !dsc_bucket_name_ok(raw->bucket) ||
        dsc_buf_adds(&out->bucket, raw->bucket))
        return bad("bucket", raw->bucket);
    if (!raw->key || dsc_uri_decode(&out->key, raw->key, strlen(raw->key)) ||
        out->key.len == 0 || out->key.len > DSC_PEER_MAX_KEY)
        return bad("key", raw->key);
    if (!raw->etag || dsc_uri_decode(&out->etag, raw->etag, strlen(raw->etag)) ||
        out->etag.len > DSC_PEER_MAX_ETAG)
        return bad("etag", raw->etag);
    if (parse_u64(raw->size, &out->size) || out->size == 0)
        return bad("size", raw->size);
    const char *slash = raw->chunk ? strchr(raw->chunk, '/') : NULL;
    char cs[24];
    uint64_t cs64;
    if (!slash || (size_t)(slash - raw->chunk) >= sizeof cs)
        return bad("chunk", raw->chunk);
    memcpy(cs, raw->chunk, (size_t)(slash - raw->chunk));
    cs[slash - raw->chunk] = '\0';
    if (parse_u64(cs, &cs64) || cs64 < DSC_MIN_CHUNK || cs64 > DSC_MAX_CHUNK ||
        parse_u64(slash + 1, &out->index) ||
        out->index > (out->size - 1) / cs64)
        return bad("chunk", raw->chunk);
    out->chunk_size = (uint32_t)cs64;
    uint64_t t;
    if (parse_u64(raw->time, &t) || t > (uint64_t)INT64_MAX)
        return bad("time", raw->time);
    out->time = (int64_t)t;
    if (!raw->nonce || strlen(raw->nonce) != 2 * DSC_PEER_NONCE ||
        dsc_hex_decode(raw->nonce, out->nonce, DSC_PEER_NONCE))
        return bad("nonce", raw->nonce);
    if (!dsc_peer_auth_wellformed(raw->auth))
        return bad("auth", raw->auth);
    memcpy(out->auth_hex, raw->auth, 65);
    return 0;
}

void dsc_peer_req_free(dsc_peer_req *r)
{
    dsc_buf_free(&r->target);
    dsc_buf_free(&r->origin);
    dsc_buf_free(&r->bucket);
    dsc_buf_free(&r->key);
    dsc_buf_free(&r->etag);
}

int dsc_peer_req_verify(const dsc_peer_req *r, const char *secret,
                        int64_t now, int64_t max_skew_s)
{
    if (!secret || !*secret)
        return dsc_fail(DSC_EACCESS, "peer request: no secret configured");
    int64_t skew = now > r->time ? now - r->time : r->time - now;
    if (skew > max_skew_s)
        return dsc_fail(DSC_EACCESS, "peer request: signed %" PRId64 " s "
                        "away from now (limit %" PRId64 " s)", skew, max_skew_s);
    char path[64], want[65];
    chunk_path(&r->id, path);
    dsc_buf msg = { 0 };
    canon_in c = { r->head, path, r->target.data, r->origin.data,
                   r->bucket.data, r->key.data, r->etag.data, r->size,
                   r->index, r->chunk_size, r->time, r->nonce };
    int rc = canonical(&msg, &c);
    if (!rc)
        rc = mac_hex(secret, &msg, want);
    dsc_buf_free(&msg);
    if (rc)
        return rc;
    if (!dsc_peer_hex_equal(want, r->auth_hex))
        return dsc_fail(DSC_EACCESS, "peer request: wrong signature");
    return 0;
}

int dsc_peer_sign(const char *secret, int head, const dsc_chunk_id *id,
                  const dsc_peer_ident *who, int64_t now,
                  const uint8_t nonce[DSC_PEER_NONCE], dsc_peer_signed *out)
{
    const dsc_objref *o = who->obj;
    memset(out, 0, sizeof *out);
    chunk_path(id, out->path);
    dsc_buf msg = { 0 };
    canon_in c = { head, out->path, who->target, who->origin, o->bucket,
                   o->key, o->etag, o->size, who->index, who->chunk_size, now,
                   nonce };
    int rc = canonical(&msg, &c);
    if (!rc)
        rc = mac_hex(secret, &msg, out->auth_hex);
    dsc_buf_free(&msg);
    if (rc)
        return rc;
    char nonce_hex[2 * DSC_PEER_NONCE + 1];
    dsc_hex_encode(nonce, DSC_PEER_NONCE, nonce_hex);
    dsc_buf *l = out->lines;
    dsc_buf_adds(&l[0], "X-Dsc-Target: ");
    dsc_uri_encode(&l[0], who->target, strlen(who->target), 0);
    dsc_buf_adds(&l[1], "X-Dsc-Origin: ");
    dsc_uri_encode(&l[1], who->origin, strlen(who->origin), 0);
    dsc_buf_printf(&l[2], "X-Dsc-Bucket: %s", o->bucket);
    dsc_buf_adds(&l[3], "X-Dsc-Key: ");
    dsc_uri_encode(&l[3], o->key, strlen(o->key), 0);
    dsc_buf_adds(&l[4], "X-Dsc-Etag: ");
    dsc_uri_encode(&l[4], o->etag, strlen(o->etag), 0);
    dsc_buf_printf(&l[5], "X-Dsc-Size: %" PRIu64, o->size);
    dsc_buf_printf(&l[6], "X-Dsc-Chunk: %" PRIu32 "/%" PRIu64, who->chunk_size,
                   who->index);
    dsc_buf_printf(&l[7], "X-Dsc-Time: %" PRId64, now);
    dsc_buf_printf(&l[8], "X-Dsc-Nonce: %s", nonce_hex);
    dsc_buf_printf(&l[9], "X-Dsc-Auth: %s", out->auth_hex);
    dsc_buf_adds(&l[10], "Expect:");   /* no 100-continue round trip */
    for (size_t i = 0; i < DSC_ARRAY_LEN(out->lines); i++)
        if (dsc_buf_oom(&l[i]))
            rc = DSC_ENOMEM;
    if (rc)
        dsc_peer_signed_free(out);
    return rc;
}

void dsc_peer_signed_free(dsc_peer_signed *s)
{
    for (size_t i = 0; i < DSC_ARRAY_LEN(s->lines); i++)
        dsc_buf_free(&s->lines[i]);
}

/* Poly1305 through OpenSSL's EVP_MAC, fetched once per process. */
static EVP_MAC *poly1305;
static pthread_once_t poly_once = PTHREAD_ONCE_INIT;

static void poly_fetch(void)
{
    poly1305 = EVP_MAC_fetch(NULL, "POLY1305", NULL);
}

int dsc_peer_answer_mac(const char *secret, const char *auth_hex,
                        const void *body, size_t len, char out[33])
{
    pthread_once(&poly_once, poly_fetch);
    if (!poly1305)
        return dsc_fail(DSC_ENOMEM, "OpenSSL has no POLY1305");
    dsc_buf label = { 0 };
    dsc_buf_printf(&label, "dsc-peer-2-answer\n%s", auth_hex);
    unsigned char key[32], tag[16], le[8];
    int rc = dsc_buf_oom(&label) ? DSC_ENOMEM
             : dsc_hmac_sha256(secret, strlen(secret), label.data, label.len, key);
    dsc_buf_free(&label);
    if (rc)
        return rc;
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(poly1305);
    size_t tl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, sizeof key, NULL) &&
             EVP_MAC_update(ctx, body, len) && EVP_MAC_update(ctx, le, sizeof le) &&
             EVP_MAC_final(ctx, tag, &tl, sizeof tag) && tl == sizeof tag;
    EVP_MAC_CTX_free(ctx);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok)
        return dsc_fail(DSC_ENOMEM, "Poly1305 failed");
    dsc_hex_encode(tag, sizeof tag, out);
    return 0;
}
