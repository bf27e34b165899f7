/* AWS Signature Version 4 for S3 requests (header-based). */
#ifndef DSC_NET_SIGV4_H
#define DSC_NET_SIGV4_H

#include "core/common.h"

typedef struct dsc_kv {
    const char *name;
    const char *value;
} dsc_kv;

typedef struct dsc_sigv4_input {
    const char *method;        /* "GET" */
    const char *path;          /* URI-encoded path exactly as sent */
    const dsc_kv *query;       /* raw (not encoded) query parameters */
    size_t nquery;
    const dsc_kv *headers;     /* every header to sign, incl. host,
                                  x-amz-date, x-amz-content-sha256 */
    size_t nheaders;
    const char *payload_hash;  /* hex SHA-256 or "UNSIGNED-PAYLOAD" */
    const char *region;
    const char *service;       /* "s3" */
    const char *amz_date;      /* "20150830T123600Z" */
    const char *access_key;
    const char *secret_key;
} dsc_sigv4_input;

/* Steps of the signature, exposed for tests against published vectors. */
int dsc_sigv4_canonical_request(const dsc_sigv4_input *in, dsc_buf *out,
                                dsc_buf *signed_headers);
int dsc_sigv4_string_to_sign(const dsc_sigv4_input *in,
                             const char *canonical_request, dsc_buf *out);

/* The Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
int dsc_sigv4_authorization(const dsc_sigv4_input *in, dsc_buf *out);

/* Query string as sent on the wire: the same encoding and order as the
 * canonical query string, so what is signed is what is sent. */
int dsc_sigv4_query_string(const dsc_kv *query, size_t n, dsc_buf *out);

/* HMAC-SHA256 of msg under key. 0 or DSC_ENOMEM. */
int dsc_hmac_sha256(const void *key, size_t klen, const void *msg,
                    size_t mlen, unsigned char out[32]);

/* Hex SHA-256 of data into out[65]. */
void dsc_sha256_hex(const void *data, size_t len, char out[65]);

/* Hex SHA-1 into out[41]: the AWS CLI names its SSO token cache files so
 * (not for security). */
void dsc_sha1_hex(const void *data, size_t len, char out[41]);

/* "YYYYMMDDTHHMMSSZ" for the Unix time t. */
void dsc_amz_date(int64_t t, char out[17]);

#define DSC_EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#endif
