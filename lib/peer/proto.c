/* Peer requests: their canonical form, signatures and strict parsing. A
 * request names a chunk only by its identity; nothing in it is ever used
 * as a file system path. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
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

static int canonical(dsc_buf *out, int head, const char *path,
                     const char *bucket, const char *key, const char *etag,
                     uint64_t size, uint32_t chunk_size, uint64_t index,
                     int64_t time)
{
    dsc_buf_printf(out, "dsc-peer-1\n%s\n%s\n%s\n", head ? "HEAD" : "GET",
                   path, bucket);
    dsc_uri_encode(out, key, strlen(key), 0);
    dsc_buf_adds(out, "\n");
    dsc_uri_encode(out, etag, strlen(etag), 0);
    dsc_buf_printf(out, "\n%" PRIu64 "\n%" PRIu32 "\n%" PRIu64 "\n%" PRId64,
                   size, chunk_size, index, time);
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

/* "/v1/chunk/<32 hex id>" into out. */
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
    if (!dsc_peer_auth_wellformed(raw->auth))
        return bad("auth", raw->auth);
    memcpy(out->auth_hex, raw->auth, 65);
    return 0;
}

void dsc_peer_req_free(dsc_peer_req *r)
{
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
    int rc = canonical(&msg, r->head, path, r->bucket.data, r->key.data,
                       r->etag.data, r->size, r->chunk_size, r->index, r->time);
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
                  const char *bucket, const char *key, const char *etag,
                  uint64_t size, uint32_t chunk_size, uint64_t index,
                  int64_t now, dsc_peer_signed *out)
{
    memset(out, 0, sizeof *out);
    chunk_path(id, out->path);
    dsc_buf msg = { 0 };
    int rc = canonical(&msg, head, out->path, bucket, key, etag, size,
                       chunk_size, index, now);
    if (!rc)
        rc = mac_hex(secret, &msg, out->auth_hex);
    dsc_buf_free(&msg);
    if (rc)
        return rc;
    dsc_buf_printf(&out->bucket, "X-Dsc-Bucket: %s", bucket);
    dsc_buf_adds(&out->key, "X-Dsc-Key: ");
    dsc_uri_encode(&out->key, key, strlen(key), 0);
    dsc_buf_adds(&out->etag, "X-Dsc-Etag: ");
    dsc_uri_encode(&out->etag, etag, strlen(etag), 0);
    dsc_buf_printf(&out->size, "X-Dsc-Size: %" PRIu64, size);
    dsc_buf_printf(&out->chunk, "X-Dsc-Chunk: %" PRIu32 "/%" PRIu64,
                   chunk_size, index);
    dsc_buf_printf(&out->time, "X-Dsc-Time: %" PRId64, now);
    dsc_buf_printf(&out->auth, "X-Dsc-Auth: %s", out->auth_hex);
    const dsc_buf *lines[] = { &out->bucket, &out->key, &out->etag, &out->size,
                               &out->chunk, &out->time, &out->auth };
    for (size_t i = 0; i < DSC_ARRAY_LEN(lines); i++)
        if (dsc_buf_oom(lines[i]))
            rc = DSC_ENOMEM;
    if (rc) {
        dsc_peer_signed_free(out);
        return DSC_ENOMEM;
    }
    return 0;
}

void dsc_peer_signed_free(dsc_peer_signed *s)
{
    dsc_buf_free(&s->bucket);
    dsc_buf_free(&s->key);
    dsc_buf_free(&s->etag);
    dsc_buf_free(&s->size);
    dsc_buf_free(&s->chunk);
    dsc_buf_free(&s->time);
    dsc_buf_free(&s->auth);
}

int dsc_peer_resp_sig(const char *secret, const char *auth_hex,
                      uint64_t length, uint64_t xxh, char out[65])
{
    dsc_buf msg = { 0 };
    int rc = dsc_buf_printf(&msg, "dsc-peer-1-resp\n%s\n%" PRIu64 "\n%016" PRIx64,
                            auth_hex, length, xxh) ? DSC_ENOMEM : 0;
    if (!rc)
        rc = mac_hex(secret, &msg, out);
    dsc_buf_free(&msg);
    return rc;
}
