/* The peer client: which node owns a chunk, and asking that node's dscd
 * for it. A peer that fails is skipped for a back-off period; the caller
 * then reads from S3 itself. */
#ifndef DSC_PEER_CLIENT_H
#define DSC_PEER_CLIENT_H

#include "core/types.h"

typedef struct dsc_peers dsc_peers;

typedef struct dsc_peer_opts {
    const char *peers;             /* "host:port,...", or "dns:NAME:PORT" /
                                      "srv:NAME" (peer/discover.h) */
    const char *self;              /* NULL: no peer is this node */
    const char *secret;
    const char *origin;            /* this node's S3 endpoint (dsc_s3_origin) */
    long connect_timeout_ms;
    long timeout_ms;
    long backoff_ms;
    int keep_local;
    int tls;                       /* https to peers (DSC_PEER_TLS=1) */
    const char *tls_ca;            /* the cluster CA (DSC_PEER_TLS_CA);
                                      NULL: the system's */
    int max_connections;
    long refresh_s;                /* dns:/srv: re-resolved this often */
} dsc_peer_opts;

/* A peer chosen for one request: holds the membership it was chosen
 * from until dsc_peers_release, so a change of members meanwhile does
 * not disturb the request. */
typedef struct dsc_peer_members dsc_peer_members;
typedef struct dsc_peer_pick {
    dsc_peer_members *m;
    size_t peer;
} dsc_peer_pick;

int dsc_peers_new(const dsc_peer_opts *o, dsc_peers **out);
void dsc_peers_free(dsc_peers *p);

/* The peer to ask for id: 1 with *pick set (release it after the
 * request), or 0 when this node owns it, the owner is backing off or no
 * peer is known. Thread-safe. */
int dsc_peers_route(dsc_peers *p, const dsc_chunk_id *id, dsc_peer_pick *pick);
void dsc_peers_release(dsc_peer_pick *pick);

/* Fetch chunk `index` (len bytes, id) of obj from the picked peer into
 * buf and check it; with buf NULL only ask the peer to have it cached
 * (HEAD). 0 or <0 with dsc_errmsg(); a failed peer is backed off.
 * Thread-safe. */
int dsc_peers_get(dsc_peers *p, const dsc_peer_pick *pick, const dsc_objref *obj,
                  uint32_t chunk_size, uint64_t index, const dsc_chunk_id *id,
                  void *buf, size_t len);

int dsc_peers_keep_local(const dsc_peers *p);

/* The cluster's peer secret: given, else DSC_PEER_SECRET, else the first
 * line of DSC_PEER_SECRET_FILE. *out NULL when there is none; caller
 * frees (and should wipe) it. */
int dsc_peer_secret(const char *given, char **out);

/* Add this client's peer counters to st. */
void dsc_peers_stats(dsc_peers *p, dsc_stats *st);

#endif
