/* S3 operations: HEAD, ranged GET, ListObjectsV2, with signing, error
 * mapping and retries. */
#ifndef DSC_S3_CLIENT_H
#define DSC_S3_CLIENT_H

#include "core/common.h"
#include "s3/creds.h"
#include "net/http.h"
#include "s3/xml.h"
#include "net/url.h"
#include "net/sigv4.h"

typedef struct dsc_s3 dsc_s3;

/* Takes the resolved endpoint and credentials from cfg/creds (copied). */
int dsc_s3_new(const dsc_config *cfg, const dsc_creds *creds, dsc_s3 **out);
void dsc_s3_free(dsc_s3 *s3);

/* The endpoint's canonical name, part of every chunk and metadata
 * identity: "scheme://host:port/addressing", host lower case, the port
 * always written ("https://s3.us-east-1.amazonaws.com:443/auto"). */
const char *dsc_s3_origin(const dsc_s3 *s3);
int dsc_origin_make(const dsc_endpoint *ep, int addressing, dsc_buf *out);

/* The version id a GET of bucket/key at etag is pinned to: 0 with it in
 * vid[DSC_VERSION_ID_MAX + 1], or non-zero for none. Any thread. */
typedef int (*dsc_s3_version_fn)(void *arg, const char *bucket,
                                 const char *key, const char *etag,
                                 char *vid);
/* Set before the client is shared: GETs with an ETag ask fn. */
void dsc_s3_set_version_pin(dsc_s3 *s3, dsc_s3_version_fn fn, void *arg);

/* HEAD: size and ETag (caller frees *etag). */
int dsc_s3_head(dsc_s3 *s3, const char *bucket, const char *key,
                uint64_t *size, char **etag);

/* Ranged GET of exactly len bytes at off of the version etag of an object
 * of obj_size bytes into buf. Anything but exactly those bytes of that
 * version is an error: DSC_ECHANGED for another version, DSC_EPROTO for a
 * short, long or mislabelled body (after retries). */
int dsc_s3_get(dsc_s3 *s3, const char *bucket, const char *key,
               const char *etag, uint64_t obj_size, uint64_t off, size_t len,
               void *buf);
/* The same GET streamed to sink (len >= 2; else DSC_EINVAL: use
 * dsc_s3_get). */
int dsc_s3_get_sink(dsc_s3 *s3, const char *bucket, const char *key,
                    const char *etag, uint64_t obj_size, uint64_t off,
                    size_t len, const dsc_http_sink *sink);

/* GET the first max_len bytes of an object whose size and ETag are not
 * known yet (saves the HEAD): *obj_size and *etag (caller frees) come from
 * the answer, *got bytes are in buf. DSC_EMPTY_RANGE for an empty
 * object (S3 refuses any range of it). */
int dsc_s3_get_first(dsc_s3 *s3, const char *bucket, const char *key,
                     size_t max_len, void *buf, uint64_t *obj_size,
                     char **etag, size_t *got);

/* ListObjectsV2 over all pages; cb as in s3/xml.h. Returns objects seen or a
 * negative code (the callback's non-zero value becomes DSC_ECANCELED). */
int64_t dsc_s3_list(dsc_s3 *s3, const char *bucket, const char *prefix,
                    dsc_s3xml_obj_cb cb, void *arg);

/* GET a bucket sub-resource (query) into body, whole (at most 32 MiB):
 * LIST pages, ?versioning. verb names it in messages; retried as any
 * request; counted with the LISTs when is_list. */
int dsc_s3_bucket_get(dsc_s3 *s3, const char *verb, int is_list,
                      const char *bucket, const dsc_kv *query, size_t nquery,
                      dsc_buf *body);

/* Versioning of a bucket: DSC_S3_UNVERSIONED (never enabled),
 * DSC_S3_VERSIONED (enabled or suspended: version ids exist), or a
 * DSC_E* error (e.g. DSC_EACCESS without s3:GetBucketVersioning). */
enum { DSC_S3_UNVERSIONED = 0, DSC_S3_VERSIONED = 1 };
int dsc_s3_versioning(dsc_s3 *s3, const char *bucket);

/* The current version of each key under prefix (ListObjectVersions over
 * all pages; keys whose current version is a delete marker are left
 * out), in key order. Returns objects seen or a negative code (the
 * callback's non-zero value becomes DSC_ECANCELED). */
typedef int (*dsc_s3_version_cb)(void *arg, const char *key, uint64_t size,
                                 const char *etag, const char *last_modified,
                                 const char *version_id);
int64_t dsc_s3_list_versions(dsc_s3 *s3, const char *bucket,
                             const char *prefix, dsc_s3_version_cb cb,
                             void *arg);

/* The keys requests are signed with now (refreshed when due): the access
 * key id into ak[cap] ("" anonymous) and their expiry (0: none); the
 * region requests are signed for. 0 or DSC_ECREDS. */
int dsc_s3_signer(dsc_s3 *s3, char *ak, size_t cap, int64_t *expires);
const char *dsc_s3_region(const dsc_s3 *s3);
/* A client made in a fork()ed child: sign with the keys parent (the
 * parent's client, not to be used otherwise) had, not those of open. */
void dsc_s3_inherit_keys(dsc_s3 *s3, const dsc_s3 *parent);

/* Counters since creation, for stats and tests. */
typedef struct dsc_s3_counters {
    uint64_t requests, gets, heads, lists, retries, bytes, get_bytes;
} dsc_s3_counters;
void dsc_s3_counters_get(dsc_s3 *s3, dsc_s3_counters *out);
/* The counters' growth since the last take (0 at the first: since
 * creation): this process's share of the node's totals, each request
 * reported once however many threads take. */
void dsc_s3_counters_take(dsc_s3 *s3, dsc_s3_counters *out);

#endif
