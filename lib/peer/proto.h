/* The peer protocol: how a node asks another node's dscd for a chunk, and
 * how both sides authenticate the exchange. Shared by the client
 * (peer/client.c), the server (dscd/server.c), the test tool and the
 * fuzz target. Version 2:
 *
 *   GET|HEAD /v2/chunk/<32 hex chunk id>
 *   X-Dsc-Target: the peer asked, as named in DSC_PEERS ("10.0.0.2:7070")
 *   X-Dsc-Origin, X-Dsc-Bucket, X-Dsc-Key, X-Dsc-Etag (origin, key and
 *   etag percent-encoded), X-Dsc-Size, X-Dsc-Chunk: <chunk size>/<index>,
 *   X-Dsc-Time: <unix seconds>, X-Dsc-Nonce: 32 hex random,
 *   X-Dsc-Auth: hex HMAC-SHA256 under the cluster secret of
 *   "dsc-peer-2\n" method \n path \n target \n origin \n bucket \n key \n
 *   etag \n size \n chunk size \n index \n time \n nonce.
 *
 * The server answers only requests signed for it (target), within the
 * time window, whose nonce it has not seen in that window: a captured
 * request can be replayed neither to its node nor to another.
 *
 * A 200 carries X-Dsc-Mac: hex Poly1305 tag of body || le64(length) under
 * the one-time key HMAC-SHA256(secret, "dsc-peer-2-answer\n" request
 * auth). Every request has its own auth, so every answer its own key: a
 * party on the path without the secret cannot make bytes that pass
 * (a plain checksum such as XXH3 could be forged), and an answer to one
 * request is no answer to another. A HEAD's body is empty. */
#ifndef DSC_PEER_PROTO_H
#define DSC_PEER_PROTO_H

#include "core/common.h"
#include "core/types.h"

#define DSC_PEER_PREFIX "/v2/chunk/"
#define DSC_PEER_MAX_KEY 1024          /* S3's limit, in bytes */
#define DSC_PEER_MAX_ETAG 255
#define DSC_PEER_MAX_NAME 255          /* target and origin */
#define DSC_PEER_NONCE 16

/* A chunk request as it arrives: header values, any of them NULL. */
typedef struct dsc_peer_raw {
    const char *method, *path;
    const char *target, *origin, *bucket, *key, *etag, *size, *chunk, *time,
               *nonce, *auth;
} dsc_peer_raw;

/* A parsed request: every field checked for form (not yet for its
 * signature, its target, its nonce, nor that id is the identity's). */
typedef struct dsc_peer_req {
    int head;                       /* HEAD rather than GET */
    dsc_chunk_id id;
    char auth_hex[65];
    dsc_buf target, origin, bucket, key, etag;   /* decoded */
    uint64_t size, index;
    uint32_t chunk_size;
    int64_t time;
    uint8_t nonce[DSC_PEER_NONCE];
} dsc_peer_req;

/* DSC_EINVAL with the reason in dsc_errmsg() for a malformed request.
 * Always call dsc_peer_req_free. */
int dsc_peer_req_parse(const dsc_peer_raw *raw, dsc_peer_req *out);
void dsc_peer_req_free(dsc_peer_req *r);

/* 0 when the request is signed with secret and its time lies within
 * max_skew_s of now; DSC_EACCESS otherwise (constant-time compare). */
int dsc_peer_req_verify(const dsc_peer_req *r, const char *secret,
                        int64_t now, int64_t max_skew_s);

/* What a request names besides its chunk id. */
typedef struct dsc_peer_ident {
    const char *target;             /* the peer asked, as in DSC_PEERS */
    const char *origin;             /* dsc_s3_origin of the asker */
    const dsc_objref *obj;
    uint32_t chunk_size;
    uint64_t index;
} dsc_peer_ident;

/* The signed headers of a request, "Name: value" each, for curl. */
typedef struct dsc_peer_signed {
    char path[64];                  /* "/v2/chunk/<hex id>" */
    char auth_hex[65];
    dsc_buf lines[11];              /* header lines, X-Dsc-Target first */
} dsc_peer_signed;

int dsc_peer_sign(const char *secret, int head, const dsc_chunk_id *id,
                  const dsc_peer_ident *who, int64_t now,
                  const uint8_t nonce[DSC_PEER_NONCE], dsc_peer_signed *out);
void dsc_peer_signed_free(dsc_peer_signed *s);

/* The answer's MAC (hex Poly1305 tag, out[33]) over body[0..len) for the
 * request whose X-Dsc-Auth is auth_hex. 0 or DSC_ENOMEM. */
int dsc_peer_answer_mac(const char *secret, const char *auth_hex,
                        const void *body, size_t len, char out[33]);

/* Whether auth is a request signature in form: 64 lower-case hex. */
int dsc_peer_auth_wellformed(const char *auth);

/* Constant-time equality of two NUL-terminated hex strings. */
int dsc_peer_hex_equal(const char *a, const char *b);

#endif
