/* Types every layer speaks: which object version a read is for, and the
 * identity of one of its chunks. */
#ifndef DSC_CORE_TYPES_H
#define DSC_CORE_TYPES_H

#include <stdint.h>
#include "core/common.h"

/* The object version a read is for (strings borrowed from the caller). */
typedef struct dsc_objref {
    const char *bucket, *key, *etag;
    uint64_t size;
} dsc_objref;

/* A chunk's identity: xxh3-128 of (origin, bucket, key, ETag, chunk size,
 * index), the origin being the S3 endpoint's canonical name (scheme, host,
 * port, addressing: dsc_s3_origin), so one name on two endpoints never
 * shares bytes. It names the chunk in the index, on disk, on the ring and
 * on the wire. */
typedef struct dsc_chunk_id {
    uint8_t b[16];
} dsc_chunk_id;

/* Identity of chunk `index` of an object version on origin. 0 or
 * DSC_ENOMEM. */
int dsc_chunk_id_make(const char *origin, const dsc_objref *obj,
                      uint32_t chunk_size, uint64_t index, dsc_chunk_id *out);

#endif
