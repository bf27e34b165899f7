/* The context: resolved configuration and the S3 client. */
#ifndef DSC_CTX_H
#define DSC_CTX_H

#include "creds.h"
#include "s3.h"

struct dsc_ctx {
    dsc_config cfg;        /* strings point into owned copies below */
    dsc_creds creds;
    dsc_s3 *s3;
};

struct dsc_file {
    dsc_ctx *ctx;
    char *bucket, *key, *url;
    char *etag;
    uint64_t size;
    int64_t pos;           /* dsc_read/dsc_seek position */
};

#endif
