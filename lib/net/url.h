/* s3:// URLs, endpoint URLs, and the percent-encoding S3 and SigV4 need. */
#ifndef DSC_NET_URL_H
#define DSC_NET_URL_H

#include "core/common.h"

typedef struct dsc_s3url {
    char *bucket;
    char *key;          /* literal key, may be "" (bucket root / prefix) */
} dsc_s3url;

/* Parse "s3://bucket/key". The key is taken literally; it must be valid
 * UTF-8 without control characters. Returns DSC_EURL with a message. */
int dsc_s3url_parse(const char *url, dsc_s3url *out);
void dsc_s3url_free(dsc_s3url *u);

typedef struct dsc_endpoint {
    int https;
    char *host;         /* as written, IPv6 with its brackets */
    int port;           /* 0: scheme default */
} dsc_endpoint;

/* Parse "http[s]://host[:port][/]". No user info, path, query or fragment. */
int dsc_endpoint_parse(const char *s, dsc_endpoint *out);
void dsc_endpoint_free(dsc_endpoint *e);

/* Whether host is an IP literal or "localhost", where vhost cannot work. */
int dsc_host_is_literal(const char *host);

/* Whether a bucket name can be a DNS label prefix (vhost addressing). */
int dsc_bucket_vhost_ok(const char *bucket, int https);

/* Validate an S3 bucket name: 3-255 chars of letters, digits, '.', '-'
 * and '_' (today's rules are stricter, but legacy buckets exist). */
int dsc_bucket_name_ok(const char *bucket);
/* 1 when key is text an s3:// URL may hold: valid UTF-8, no control bytes. */
int dsc_key_text_ok(const char *key);

/* Append s[0..n) percent-encoded per RFC 3986 (unreserved kept, hex upper
 * case). keep_slash leaves '/' as is, for object key paths. */
int dsc_uri_encode(dsc_buf *out, const char *s, size_t n, int keep_slash);

/* Append the percent-decoding of s[0..n). DSC_EINVAL on a malformed
 * escape or an encoded NUL. */
int dsc_uri_decode(dsc_buf *out, const char *s, size_t n);

/* Where one request goes. */
typedef struct dsc_target {
    dsc_buf url;        /* full URL without query */
    dsc_buf host;       /* Host header value (port only if not default) */
    dsc_buf path;       /* encoded path as sent and signed */
} dsc_target;

/* Build the target for bucket/key (key may be "" for bucket operations). */
int dsc_target_build(dsc_target *t, const dsc_endpoint *ep, int addressing,
                     const char *bucket, const char *key);
void dsc_target_free(dsc_target *t);

#endif
