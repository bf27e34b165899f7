/* DSC_PEERS naming DNS records instead of listing the nodes:
 *
 *   dns:NAME:PORT   every A/AAAA address of NAME (a Kubernetes headless
 *                   Service), each a peer "addr:PORT" ("[v6]:PORT")
 *   srv:NAME        the SRV records of NAME ("_dsc._tcp.svc.example"):
 *                   each target's addresses with the record's port
 *
 * Resolved to the "host:port,..." list a ring is made of; a peer is named
 * by its address so DSC_SELF and dscd's --self are "addr:port" too. */
#ifndef DSC_PEER_DISCOVER_H
#define DSC_PEER_DISCOVER_H

#include "core/types.h"

typedef enum dsc_peers_kind {
    DSC_PEERS_LIST,                /* a fixed "host:port,..." list */
    DSC_PEERS_DNS,
    DSC_PEERS_SRV,
} dsc_peers_kind;

typedef struct dsc_discovery {
    dsc_peers_kind kind;
    char *name;                    /* the DNS name (not for LIST) */
    unsigned port;                 /* DNS: every address's port */
} dsc_discovery;

/* Parse a DSC_PEERS value: a "dns:" or "srv:" spec, else LIST (whose
 * entries the ring checks). DSC_EINVAL saying what is wrong. */
int dsc_discovery_parse(const char *spec, dsc_discovery *out);
void dsc_discovery_free(dsc_discovery *d);

/* At most this many peers: more is taken for a broken or hostile answer. */
#define DSC_MAX_PEERS 1024

/* The peers the records name now: 0 with *list a sorted "a:p,b:p" ("" when
 * the name has no records: NXDOMAIN or no data, an answer). When there
 * are IPv4 addresses the IPv6 ones are left out (a dual-stack node would
 * be two peers); IPv6-only records give IPv6 peers. DSC_ENET when no
 * usable answer came (server down, SERVFAIL, timeout, over DSC_MAX_PEERS
 * peers), which callers treat as "membership unknown", not "empty";
 * DSC_ECANCELED when *cancel (read atomically, may be NULL) became
 * non-zero between lookups. Blocks for the resolver's timeout
 * (resolv.conf) per lookup. Thread-safe. */
int dsc_discovery_resolve(const dsc_discovery *d, const int *cancel, char **list);

#endif
