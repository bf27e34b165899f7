/* Chunk identity. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "core/types.h"

int dsc_chunk_id_make(const char *origin, const dsc_objref *obj,
                      uint32_t chunk_size, uint64_t index, dsc_chunk_id *out)
{
    /* Fields are NUL-separated (no field holds a NUL), so no two distinct
     * identities serialize alike. */
    size_t lo = strlen(origin) + 1, lb = strlen(obj->bucket) + 1,
           lk = strlen(obj->key) + 1, le = strlen(obj->etag) + 1;
    uint8_t small[2048];
    size_t n = 4 + lo + lb + lk + le + 16;
    uint8_t *p = n <= sizeof small ? small : malloc(n);
    if (!p)
        return DSC_ENOMEM;
    uint8_t *w = p;
    memcpy(w, "dsc2", 4), w += 4;
    memcpy(w, origin, lo), w += lo;
    memcpy(w, obj->bucket, lb), w += lb;
    memcpy(w, obj->key, lk), w += lk;
    memcpy(w, obj->etag, le), w += le;
    for (int i = 0; i < 8; i++) {
        w[i] = (uint8_t)((uint64_t)chunk_size >> (8 * i));
        w[8 + i] = (uint8_t)(index >> (8 * i));
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out->b, c.digest, 16);
    if (p != small)
        free(p);
    return 0;
}
