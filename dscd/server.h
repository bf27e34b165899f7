/* The peer server inside dscd: serves this node's chunks to other nodes
 * (fetching from S3 on a miss), /healthz and /metrics. Built into dscd
 * only, so libdsc itself does not depend on libmicrohttpd. */
#ifndef DSC_DSCD_SERVER_H
#define DSC_DSCD_SERVER_H

#include <stdint.h>
#include "dsc.h"

typedef struct dsc_server dsc_server;

typedef struct dsc_server_opts {
    const char *listen;            /* "host:port"; host "" or "*": any;
                                      port 0: a free one */
    const char *secret;            /* HMAC key of the cluster */
    const char *self;              /* this node's name(s) in DSC_PEERS,
                                      comma-separated; requests are signed
                                      for one node. NULL: the listen
                                      address, which must name a host */
    const char *tls_cert, *tls_key;  /* PEM files: serve HTTPS (both or
                                        neither); the key must not be
                                        readable by others */
    size_t nonce_capacity;         /* nonces remembered at once; default
                                      2^18 (6 MiB) */
    long max_skew_s;               /* request time tolerance; default 300
                                      (its nonces are kept as long) */
    int max_connections;           /* default 512 */
    int max_per_address;           /* connections from one address;
                                      default 64 (a flood from one host
                                      leaves room for the others) */
    int max_inflight;              /* chunk reads buffered at once (memory:
                                      this x chunk size); default 32 */
    long idle_timeout_s;           /* a connection idle (or sending its
                                      request slower) this long closes;
                                      default 15 */
} dsc_server_opts;

/* Serve ctx's cache (ctx must have a cache and no peers). ctx must
 * outlive the server. DSC_EINVAL / DSC_ENET with dsc_errmsg(). */
int dsc_server_start(dsc_ctx *ctx, const dsc_server_opts *o, dsc_server **out);
uint16_t dsc_server_port(const dsc_server *s);
/* Stops listening, waits for requests in progress, frees. */
void dsc_server_stop(dsc_server *s);

/* The /metrics text (Prometheus exposition format). Caller frees. */
char *dsc_server_metrics(dsc_server *s);

#endif
