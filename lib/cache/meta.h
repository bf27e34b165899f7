/* Object metadata (size and ETag, from a HEAD, a first GET or a listing)
 * kept in the node index for the metadata TTL, so opening an object again
 * within it needs no HEAD. Every function takes c NULL (no cache) and then
 * keeps nothing. */
#ifndef DSC_CACHE_META_H
#define DSC_CACHE_META_H

#include "cache/cache.h"
#include "cache/index.h"

/* Size and ETag from fresh metadata (caller frees *etag): 0, DSC_ABSENT
 * when there is none, or an error. */
int dsc_meta_cached(dsc_cache *c, const char *bucket, const char *key,
                    uint64_t *size, char **etag);
/* The same, and how old it is (ms since S3 said it). */
int dsc_meta_cached_aged(dsc_cache *c, const char *bucket, const char *key,
                         uint64_t *size, char **etag, uint64_t *age_ms);
/* Size and ETag from metadata of any age, fresh or past the TTL (caller
 * frees *etag): what a revalidation compares with. 0, DSC_ABSENT, or an
 * error. Not counted as a metadata hit. */
int dsc_meta_known(dsc_cache *c, const char *bucket, const char *key,
                   uint64_t *size, char **etag);
/* 1 when fresh metadata is kept for bucket/key (not counted as a hit). */
int dsc_meta_fresh(dsc_cache *c, const char *bucket, const char *key);
/* Milliseconds since S3 said what is kept for bucket/key; UINT64_MAX when
 * nothing is (not counted as a hit). */
uint64_t dsc_meta_age(dsc_cache *c, const char *bucket, const char *key);
/* Size and ETag: fresh metadata, else a HEAD (remembered). */
int dsc_meta_stat(dsc_cache *c, dsc_s3 *s3, const char *bucket,
                  const char *key, uint64_t *size, char **etag);
/* A HEAD, remembered (no lookup first: the caller has looked). */
int dsc_meta_head(dsc_cache *c, dsc_s3 *s3, const char *bucket,
                  const char *key, uint64_t *size, char **etag);
/* Keep what S3 just said (errors are the cache's, not the caller's). */
void dsc_meta_remember(dsc_cache *c, const char *bucket, const char *key,
                       uint64_t size, const char *etag);
void dsc_meta_remember_many(dsc_cache *c, const char *bucket,
                            const dsc_meta_entry *e, size_t n);
/* Drop it: S3 said the object changed. */
void dsc_meta_forget(dsc_cache *c, const char *bucket, const char *key);

#endif
