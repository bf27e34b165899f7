/* The context: resolved configuration and the S3 client. */
#ifndef DSC_CTX_H
#define DSC_CTX_H

#include "cache.h"
#include "creds.h"
#include "s3.h"

struct dsc_ctx {
    dsc_config cfg;        /* caller strings cleared; copies live below */
    dsc_creds creds;
    char *ca_file;
    dsc_s3 *s3;            /* use dsc_ctx_s3(): re-made after fork() */
    unsigned fork_gen;
    dsc_cache *cache;      /* NULL: no cache */
    uint64_t meta_hits;
};

/* The S3 client of this process (a fork()ed child gets its own). */
dsc_s3 *dsc_ctx_s3(dsc_ctx *ctx);

struct dsc_file {
    dsc_ctx *ctx;
    char *bucket, *key, *url;
    char *etag;
    uint64_t size;
    int64_t pos;           /* dsc_read/dsc_seek position */
};

#endif
