/* What a program of this project that serves the node cache (dscd) may
 * reach of a context: its cache and this process's S3 client, never the
 * context's insides (tests/check_layers.sh keeps it so). */
#ifndef DSC_API_NODE_H
#define DSC_API_NODE_H

#include "cache/cache.h"

/* The context's node cache, NULL when it has none. */
dsc_cache *dsc_ctx_cache(dsc_ctx *ctx);
/* Whether the context asks peers (a daemon's context must not). */
int dsc_ctx_has_peers(const dsc_ctx *ctx);
/* This process's S3 client (a fork()ed child gets its own); NULL when it
 * cannot be made. */
dsc_s3 *dsc_ctx_s3(dsc_ctx *ctx);

#endif
