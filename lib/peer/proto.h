/* The peer protocol: how a node asks another node's dscd for a chunk, and
 * how both sides sign and check the exchange. Shared by the client
 * (peer/client.c), the server (dscd/server.c) and the fuzz target.
 *
 *   GET|HEAD /v1/chunk/<32 hex chunk id>
 *   X-Dsc-Bucket, X-Dsc-Key, X-Dsc-Etag (percent-encoded), X-Dsc-Size,
 *   X-Dsc-Chunk: <chunk size>/<index>, X-Dsc-Time: <unix seconds>,
 *   X-Dsc-Auth: hex HMAC-SHA256 under the cluster secret of
 *   "dsc-peer-1\n" method \n path \n bucket \n key \n etag \n size \n
 *   chunk size \n index \n time   (key and etag percent-encoded).
 *
 * A 200 carries the chunk (HEAD: only makes sure the server has it) with
 * X-Dsc-Xxh3 (hex XXH3-64 of the body) and X-Dsc-Sig, the HMAC of
 * "dsc-peer-1-resp\n" request auth \n length \n xxh3. */
#ifndef DSC_PEER_PROTO_H
#define DSC_PEER_PROTO_H

#include "core/common.h"
#include "core/types.h"

#define DSC_PEER_PREFIX "/v1/chunk/"
#define DSC_PEER_MAX_KEY 1024          /* S3's limit, in bytes */
#define DSC_PEER_MAX_ETAG 255

/* A chunk request as it arrives: header values, any of them NULL. */
typedef struct dsc_peer_raw {
    const char *method, *path;
    const char *bucket, *key, *etag, *size, *chunk, *time, *auth;
} dsc_peer_raw;

/* A parsed request: every field checked for form (not yet for its
 * signature, nor that id is the identity's chunk id). */
typedef struct dsc_peer_req {
    int head;                       /* HEAD rather than GET */
    dsc_chunk_id id;
    char auth_hex[65];
    dsc_buf bucket, key, etag;      /* decoded */
    uint64_t size, index;
    uint32_t chunk_size;
    int64_t time;
} dsc_peer_req;

/* DSC_EINVAL with the reason in dsc_errmsg() for a malformed request.
 * Frees nothing on failure beyond what it allocated; always call
 * dsc_peer_req_free. */
int dsc_peer_req_parse(const dsc_peer_raw *raw, dsc_peer_req *out);
void dsc_peer_req_free(dsc_peer_req *r);

/* 0 when the request is signed with secret and its time lies within
 * max_skew_s of now; DSC_EACCESS otherwise (constant-time compare). */
int dsc_peer_req_verify(const dsc_peer_req *r, const char *secret,
                        int64_t now, int64_t max_skew_s);

/* The signed headers of a request, "Name: value" each, for curl. */
typedef struct dsc_peer_signed {
    char path[64];                  /* "/v1/chunk/<hex id>" */
    char auth_hex[65];
    dsc_buf bucket, key, etag, size, chunk, time, auth;   /* header lines */
} dsc_peer_signed;

int dsc_peer_sign(const char *secret, int head, const dsc_chunk_id *id,
                  const char *bucket, const char *key, const char *etag,
                  uint64_t size, uint32_t chunk_size, uint64_t index,
                  int64_t now, dsc_peer_signed *out);
void dsc_peer_signed_free(dsc_peer_signed *s);

/* Response signature over (request auth, body length, body XXH3) into
 * out[65]. */
int dsc_peer_resp_sig(const char *secret, const char *auth_hex,
                      uint64_t length, uint64_t xxh, char out[65]);

/* Whether auth is a request signature in form: 64 lower-case hex. */
int dsc_peer_auth_wellformed(const char *auth);

/* Constant-time equality of two NUL-terminated hex strings. */
int dsc_peer_hex_equal(const char *a, const char *b);

#endif
