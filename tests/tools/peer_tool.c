/* Test helper for the peer protocol, with the library's own functions:
 *
 *   peer_tool origin ENDPOINT_URL
 *       prints the endpoint's canonical origin (auto addressing)
 *   peer_tool id ORIGIN BUCKET KEY ETAG SIZE CHUNK_SIZE INDEX
 *       prints the chunk id (32 hex)
 *   peer_tool sign SECRET TARGET ORIGIN METHOD BUCKET KEY ETAG SIZE CHUNK_SIZE
 *                  INDEX TIME NONCE_HEX
 *       prints the request's X-Dsc-Auth value
 *   peer_tool mac SECRET AUTH FILE
 *       prints the answer MAC of FILE's bytes for the request AUTH
 *   peer_tool owners PEERS < IDS
 *       prints the owner among PEERS ("host:port,...") of each chunk id
 *       (32 hex, one a line)
 *
 * The tests sign with their own (Python) code and compare, so a change of
 * the canonical form on one side fails loudly. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cache/cache.h"
#include "peer/proto.h"
#include "peer/ring.h"
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
    if (argc == 14 && strcmp(argv[1], "sign") == 0) {
        /* sign SECRET TARGET ORIGIN METHOD BUCKET KEY ETAG SIZE CHUNK_SIZE
         *      INDEX TIME NONCE_HEX */
        dsc_objref o = { argv[6], argv[7], argv[8], num(argv[9]) };
        uint32_t cs = (uint32_t)num(argv[10]);
        uint64_t index = num(argv[11]);
        uint8_t nonce[DSC_PEER_NONCE];
        if (dsc_chunk_id_make(argv[4], &o, cs, index, &id) ||
            strlen(argv[13]) != 2 * DSC_PEER_NONCE ||
            dsc_hex_decode(argv[13], nonce, DSC_PEER_NONCE))
            return 1;
        dsc_peer_ident who = { argv[3], argv[4], &o, cs, index };
        dsc_peer_signed s;
        if (dsc_peer_sign(argv[2], strcmp(argv[5], "HEAD") == 0, &id, &who,
                          (int64_t)num(argv[12]), nonce, &s))
            return 1;
        printf("%s\n", s.auth_hex);
        dsc_peer_signed_free(&s);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "mac") == 0) {
        /* mac SECRET AUTH FILE: the answer MAC of FILE's bytes */
        FILE *f = fopen(argv[4], "rb");
        static char body[256 << 20];
        size_t n = f ? fread(body, 1, sizeof body, f) : 0;
        char mac[33];
        if (!f || ferror(f) || dsc_peer_answer_mac(argv[2], argv[3], body, n, mac))
            return 1;
        fclose(f);
        printf("%s\n", mac);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "owners") == 0) {
        dsc_ring *r;
        char line[128];
        if (dsc_ring_new(argv[2], NULL, &r))
            return 1;
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\n")] = '\0';
            if (dsc_hex_decode(line, id.b, sizeof id.b))
                return 1;
            printf("%s\n", dsc_ring_peer(r, dsc_ring_owner(r, &id)));
        }
        dsc_ring_free(r);
        return 0;
    }
    fprintf(stderr, "usage: peer_tool origin ENDPOINT_URL\n"
                    "       peer_tool id ORIGIN BUCKET KEY ETAG SIZE CHUNK_SIZE INDEX\n"
                    "       peer_tool sign SECRET TARGET ORIGIN METHOD BUCKET KEY ETAG "
                    "SIZE CHUNK_SIZE INDEX TIME NONCE_HEX\n"
                    "       peer_tool mac SECRET AUTH FILE\n"
                    "       peer_tool owners PEERS < IDS\n");
    return 2;
}
