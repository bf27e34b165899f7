/* Which peer owns a chunk: rendezvous (highest random weight) hashing
 * over the DSC_PEERS list. */
#ifndef DSC_PEER_RING_H
#define DSC_PEER_RING_H

#include "core/types.h"

typedef struct dsc_ring dsc_ring;

/* A host name or IPv4 address as peers are named: len > 0 characters of
 * [A-Za-z0-9.-_]. Shared with DNS discovery's names. */
int dsc_ring_host_ok(const char *s, size_t len);

/* Parse "host:port,host:port,..." (IPv6 as [addr]:port; blanks around
 * entries ignored; duplicates refused). self names this node (may be
 * NULL: then no peer is this node). DSC_EINVAL with the offending entry in
 * dsc_errmsg() on bad input. */
int dsc_ring_new(const char *peers, const char *self, dsc_ring **out);
void dsc_ring_free(dsc_ring *r);

size_t dsc_ring_size(const dsc_ring *r);
const char *dsc_ring_peer(const dsc_ring *r, size_t i);   /* "host:port" */
int dsc_ring_self(const dsc_ring *r);                     /* index or -1 */
int dsc_ring_find(const dsc_ring *r, const char *name);   /* index or -1 */

/* Index of the peer that owns id. Depends only on the set of peer names,
 * not their order; removing a peer moves only the chunks it owned. */
size_t dsc_ring_owner(const dsc_ring *r, const dsc_chunk_id *id);

#endif
