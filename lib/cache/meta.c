/* Object metadata in the node index. */
#include <string.h>
#include "cache/internal.h"
#include "cache/meta.h"

/* The index holding metadata, NULL when none is kept (no cache, a TTL of
 * 0, or a child that could not re-make its cache). */
static dsc_index *meta_index(dsc_cache *c)
{
    return c && c->o.meta_ttl_ms > 0 ? dsc_cache_index(c) : NULL;
}

/* The entry and its age: 0 and *fresh, DSC_ABSENT, or an error. A time
 * ahead of ours (another host's clock) is not fresh. */
static int meta_lookup(dsc_cache *c, const char *bucket, const char *key,
                       uint64_t *size, char *tag, size_t tag_cap, int *fresh,
                       uint64_t *age)
{
    dsc_index *ix = meta_index(c);
    uint64_t fetched, now = dsc_wall_ms();
    if (!ix)
        return DSC_ABSENT;
    int rc = dsc_index_meta_get(ix, c->o.origin, bucket, key, size, tag,
                                tag_cap, &fetched);
    *fresh = rc == 0 && fetched <= now &&
             now - fetched < (uint64_t)c->o.meta_ttl_ms;
    *age = rc == 0 && fetched <= now ? now - fetched : UINT64_MAX;
    return rc;
}

int dsc_meta_cached_aged(dsc_cache *c, const char *bucket, const char *key,
                         uint64_t *size, char **etag, uint64_t *age_ms)
{
    char tag[256];
    uint64_t sz;
    int fresh;
    if (meta_lookup(c, bucket, key, &sz, tag, sizeof tag, &fresh, age_ms) != 0)
        return DSC_ABSENT;
    if (!fresh) {
        dsc_counter_add(&c->n.meta_expired, 1);
        return DSC_ABSENT;
    }
    *size = sz;
    *etag = dsc_strdup(tag);
    dsc_counter_add(&c->n.meta_hits, 1);
    return *etag ? 0 : DSC_ENOMEM;
}

int dsc_meta_cached(dsc_cache *c, const char *bucket, const char *key,
                    uint64_t *size, char **etag)
{
    uint64_t age;
    return dsc_meta_cached_aged(c, bucket, key, size, etag, &age);
}

int dsc_meta_known(dsc_cache *c, const char *bucket, const char *key,
                   uint64_t *size, char **etag)
{
    char tag[256];
    uint64_t age;
    int fresh, rc = meta_lookup(c, bucket, key, size, tag, sizeof tag, &fresh, &age);
    if (rc)
        return rc;
    *etag = dsc_strdup(tag);
    return *etag ? 0 : DSC_ENOMEM;
}

int dsc_meta_fresh(dsc_cache *c, const char *bucket, const char *key)
{
    char tag[256];
    uint64_t size, age;
    int fresh;
    return meta_lookup(c, bucket, key, &size, tag, sizeof tag, &fresh, &age) == 0 && fresh;
}

uint64_t dsc_meta_age(dsc_cache *c, const char *bucket, const char *key)
{
    char tag[256];
    uint64_t size, age;
    int fresh;
    return meta_lookup(c, bucket, key, &size, tag, sizeof tag, &fresh, &age) == 0
               ? age : UINT64_MAX;
}

int dsc_meta_stat(dsc_cache *c, dsc_s3 *s3, const char *bucket,
                  const char *key, uint64_t *size, char **etag)
{
    int rc = dsc_meta_cached(c, bucket, key, size, etag);
    return rc == DSC_ABSENT ? dsc_meta_head(c, s3, bucket, key, size, etag) : rc;
}

int dsc_meta_head(dsc_cache *c, dsc_s3 *s3, const char *bucket,
                  const char *key, uint64_t *size, char **etag)
{
    int rc = dsc_s3_head(s3, bucket, key, size, etag);
    if (!rc)
        dsc_meta_remember(c, bucket, key, *size, *etag);
    return rc;
}

void dsc_meta_remember(dsc_cache *c, const char *bucket, const char *key,
                       uint64_t size, const char *etag)
{
    dsc_meta_entry e = { key, size, etag };
    dsc_meta_remember_many(c, bucket, &e, 1);
}

void dsc_meta_remember_many(dsc_cache *c, const char *bucket,
                            const dsc_meta_entry *e, size_t n)
{
    dsc_index *ix = meta_index(c);
    if (!ix || n == 0)
        return;
    dsc_errsave saved;
    dsc_err_save(&saved);
    dsc_index_meta_put_many(ix, c->o.origin, bucket, e, n, dsc_wall_ms());
    dsc_err_restore(&saved);
}

void dsc_meta_forget(dsc_cache *c, const char *bucket, const char *key)
{
    dsc_index *ix = c ? dsc_cache_index(c) : NULL;
    if (!ix)
        return;
    dsc_errsave saved;
    dsc_err_save(&saved);
    dsc_index_meta_del(ix, c->o.origin, bucket, key);
    dsc_err_restore(&saved);
}
