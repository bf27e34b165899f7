/* libFuzzer target: dscd's request parser and signature check. The input
 * is the request's fields (method, path, target, origin, bucket, key, etag,
 * size, chunk, time, nonce, auth) separated by newlines; missing fields are
 * absent headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "peer/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *f[12] = { 0 };
    char *p = copy;
    for (int i = 0; i < 12 && p; i++) {
        f[i] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    dsc_peer_raw raw = { f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                         f[9], f[10], f[11] };
    dsc_peer_req r;
    if (dsc_peer_req_parse(&raw, &r) == 0)
        dsc_peer_req_verify(&r, "fuzz-secret", r.time, 300);
    dsc_peer_req_free(&r);
    free(copy);
    return 0;
}
