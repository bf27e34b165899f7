/* S3 GETs on an event loop (net/loop.h): the same requests, checks and
 * retries as dsc_s3_get and dsc_s3_get_first (s3/call.h), with no thread
 * blocked per request; a retry's back-off is a timer of the loop. */
#ifndef DSC_S3_ASYNC_H
#define DSC_S3_ASYNC_H

#include "core/common.h"
#include "net/loop.h"
#include "s3/client.h"

typedef struct dsc_s3_result {
    int rc;                        /* 0, DSC_E*, or DSC_EMPTY_RANGE (a
                                      first GET of an empty object) */
    dsc_errsave detail;            /* rc's dsc_errmsg, from the loop */
    int slowed;                    /* some attempt was throttled (503,
                                      SlowDown), timed out or found no
                                      connection */
    /* A first GET's answer (rc 0): size, ETag (malloc'd, the callback's
     * to keep or free), bytes in the buffer. */
    uint64_t obj_size;
    char *etag;
    size_t got;
} dsc_s3_result;

/* Called once, on the loop's thread (or on the thread freeing the loop,
 * with DSC_ECANCELED). */
typedef void (*dsc_s3_done_fn)(void *arg, dsc_s3_result *res);

/* dsc_s3_get's ranged GET, into buf or, when sink is not NULL, streamed
 * to it (buf unused). bucket, key, etag, buf and sink must stay valid
 * until fn is called. 0 when submitted (fn will be called), else an
 * error and fn is not called: do it with dsc_s3_get instead. */
int dsc_s3_get_async(dsc_s3 *s3, dsc_loop *loop, const char *bucket,
                     const char *key, const char *etag, uint64_t obj_size,
                     uint64_t off, size_t len, void *buf,
                     const dsc_http_sink *sink, dsc_s3_done_fn fn, void *arg);

/* dsc_s3_get_first's GET of the first max_len bytes; as above. */
int dsc_s3_get_first_async(dsc_s3 *s3, dsc_loop *loop, const char *bucket,
                           const char *key, size_t max_len, void *buf,
                           dsc_s3_done_fn fn, void *arg);

#endif
