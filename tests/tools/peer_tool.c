/* Test helper for the peer protocol, with the library's own functions:
 *
 *   peer_tool origin ENDPOINT_URL
 *       prints the endpoint's canonical origin (auto addressing)
 *   peer_tool id ORIGIN BUCKET KEY ETAG SIZE CHUNK_SIZE INDEX
 *       prints the chunk id (32 hex)
 *   peer_tool sign SECRET ORIGIN METHOD BUCKET KEY ETAG SIZE CHUNK_SIZE INDEX TIME
 *       prints the request's X-Dsc-Auth value
 *
 * The tests sign with their own (Python) code and compare, so a change of
 * the canonical form on one side fails loudly. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cache/cache.h"
#include "peer/proto.h"
#include "s3/client.h"

static uint64_t num(const char *s)
{
    return strtoull(s, NULL, 10);
}

int main(int argc, char **argv)
{
    dsc_chunk_id id;
    if (argc == 3 && strcmp(argv[1], "origin") == 0) {
        dsc_endpoint ep;
        dsc_buf o = { 0 };
        if (dsc_endpoint_parse(argv[2], &ep) ||
            dsc_origin_make(&ep, DSC_ADDRESSING_AUTO, &o))
            return 1;
        printf("%s\n", o.data);
        dsc_buf_free(&o);
        dsc_endpoint_free(&ep);
        return 0;
    }
    if (argc == 9 && strcmp(argv[1], "id") == 0) {
        argv++;
        dsc_objref o = { argv[2], argv[3], argv[4], num(argv[5]) };
        if (dsc_chunk_id_make(argv[1], &o, (uint32_t)num(argv[6]), num(argv[7]), &id))
            return 1;
        char hex[33];
        dsc_hex_encode(id.b, 16, hex);
        printf("%s\n", hex);
        return 0;
    }
    if (argc == 12 && strcmp(argv[1], "sign") == 0) {
        const char *origin = argv[3];
        argv[3] = argv[2];
        argv++;
        dsc_objref o = { argv[4], argv[5], argv[6], num(argv[7]) };
        if (dsc_chunk_id_make(origin, &o, (uint32_t)num(argv[8]), num(argv[9]), &id))
            return 1;
        dsc_peer_signed s;
        if (dsc_peer_sign(argv[2], strcmp(argv[3], "HEAD") == 0, &id, argv[4],
                          argv[5], argv[6], num(argv[7]), (uint32_t)num(argv[8]),
                          num(argv[9]), (int64_t)num(argv[10]), &s))
            return 1;
        printf("%s\n", s.auth_hex);
        dsc_peer_signed_free(&s);
        return 0;
    }
    fprintf(stderr, "usage: peer_tool origin ENDPOINT_URL\n"
                    "       peer_tool id ORIGIN BUCKET KEY ETAG SIZE CHUNK_SIZE INDEX\n"
                    "       peer_tool sign SECRET ORIGIN METHOD BUCKET KEY ETAG SIZE "
                    "CHUNK_SIZE INDEX TIME\n");
    return 2;
}
