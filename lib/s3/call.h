/* One S3 operation's attempts as steps, so the blocking client (client.c)
 * and the event loop's (async.c) run the same signing, classification,
 * validation and retry policy. For lib/s3/ only. */
#ifndef DSC_S3_CALL_H
#define DSC_S3_CALL_H

#include "s3/client.h"

#define DSC_S3_REGION_LEN 32

/* One logical request and what its answer must look like. */
typedef struct s3_op {
    const char *verb;          /* for messages: "GET", "HEAD", "LIST" */
    const char *method;
    const char *bucket, *key;
    const dsc_kv *query;
    size_t nquery;
    const char *range;         /* "bytes=a-b" */
    const char *if_match;
    const char *version_id;    /* ?versionId= of a GET pinned to it */
    void *buf;                 /* GET body destination */
    const dsc_http_sink *sink; /* or where it is streamed (buf NULL) */
    size_t len;
    dsc_buf *body;             /* LIST body destination */
    size_t body_max;
    int first_part;            /* GET of up to len bytes at 0 of an object
                                  of unknown size (no HEAD first) */
} s3_op;

/* A GET of an object's bytes (not a listing's body). */
static inline int dsc_s3_op_is_get(const s3_op *op)
{
    return op->buf != NULL || op->sink != NULL;
}

/* What one attempt signed with: the region, and the keys' generation. */
typedef struct signed_as {
    char region[DSC_S3_REGION_LEN];
    unsigned gen;
    int temporary;                 /* keys with a session token */
} signed_as;

/* An operation in progress: its attempts so far and the current one. */
typedef struct dsc_s3_call {
    dsc_s3 *s3;
    const s3_op *op;
    uint64_t obj_size;
    dsc_http_resp *rs;
    dsc_buf msg_url;               /* s3://b/k for messages */
    int fresh, moved, renewed, attempts, attempt, deadline;
    int slowed;                    /* an attempt was throttled, timed out
                                      or found no connection */
    int64_t t0;
    /* The current attempt (between prepare and after). */
    dsc_buf url;
    struct curl_slist *hdrs;
    signed_as as;
    dsc_http_req rq;
} dsc_s3_call;

/* How one attempt ended. */
typedef struct s3_outcome {
    int code;       /* 0 or DSC_E* */
    int retry;      /* transient: worth another attempt */
    int slow_down;  /* back off harder */
    int fresh;      /* retry on a new connection: a pooled one was bad */
} s3_outcome;

/* An answer that arrived (any status) of op, for an object of obj_size
 * bytes (GETs of a known object); url names it in messages. Sets this
 * thread's detail on failure. (classify.c) */
s3_outcome dsc_s3_classify(const s3_op *op, const dsc_http_resp *rs,
                           const char *url, uint64_t obj_size);
/* No answer: what curl said. */
s3_outcome dsc_s3_classify_curl(const s3_op *op, const dsc_http_resp *rs,
                                const char *url);

enum { DSC_S3_CALL_DONE, DSC_S3_CALL_AGAIN };

/* Set up k; 0 or DSC_ENOMEM (then nothing to end). */
int dsc_s3_call_start(dsc_s3_call *k, dsc_s3 *s3, const s3_op *op,
                      uint64_t obj_size, dsc_http_resp *rs);
/* Sign the next attempt into k->rq: 0, or the operation's error. */
int dsc_s3_call_prepare(dsc_s3_call *k);
/* The attempt ended (answered: an HTTP response arrived). DONE with the
 * operation's result in *rc, or AGAIN after *pause_ms (then prepare). */
int dsc_s3_call_after(dsc_s3_call *k, int answered, int *rc, long *pause_ms);
/* The operation ended with rc: its detail says what was tried. Frees
 * what k holds; returns rc. */
int dsc_s3_call_end(dsc_s3_call *k, int rc);

dsc_http *dsc_s3_http(dsc_s3 *s3);
void dsc_s3_count_get(dsc_s3 *s3);

/* A ranged GET's op (dsc_s3_get) into op, its body for buf or, when
 * sink is not NULL, for sink; with its range and version strings in
 * range[64] and vid[DSC_VERSION_ID_MAX + 1], *q the query. */
void dsc_s3_get_op(dsc_s3 *s3, const char *bucket, const char *key,
                   const char *etag, uint64_t off, size_t len, void *buf,
                   const dsc_http_sink *sink, s3_op *op, char *range,
                   char *vid, dsc_kv *q);
/* A first GET's op (dsc_s3_get_first), range in range[64]. */
void dsc_s3_first_op(const char *bucket, const char *key, size_t max_len,
                     void *buf, s3_op *op, char *range);
/* What a first GET's answer rs (after run's rc) tells: size, ETag (caller
 * frees), bytes received. Returns rc, DSC_EMPTY_RANGE or DSC_ENOMEM. */
int dsc_s3_first_result(int rc, const dsc_http_resp *rs, uint64_t *obj_size,
                        char **etag, size_t *got);

#endif
