/* What an S3 answer means: success, or an error and whether it is worth
 * another attempt. Shared by every S3 operation (s3/call.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "s3/call.h"
#include "s3/xml.h"

static int map_s3_code(const char *code, long status)
{
    if (code) {
        static const struct { const char *name; int err; } map[] = {
            { "NoSuchKey", DSC_ENOTFOUND }, { "NoSuchBucket", DSC_ENOTFOUND },
            { "AccessDenied", DSC_EACCESS }, { "InvalidAccessKeyId", DSC_EACCESS },
            { "SignatureDoesNotMatch", DSC_EACCESS },
            { "ExpiredToken", DSC_EACCESS }, { "InvalidToken", DSC_EACCESS },
            { "AllAccessDisabled", DSC_EACCESS },
            { "RequestTimeTooSkewed", DSC_EACCESS },
            { "PreconditionFailed", DSC_ECHANGED },
            { "NoSuchVersion", DSC_ECHANGED },
            { "InvalidRange", DSC_ECHANGED },
            { "SlowDown", DSC_ETHROTTLED }, { "RequestTimeout", DSC_ETIMEDOUT },
            { "InternalError", DSC_ESERVER }, { "ServiceUnavailable", DSC_ESERVER },
            { "InvalidBucketName", DSC_EURL }, { "KeyTooLongError", DSC_EURL },
        };
        for (size_t i = 0; i < DSC_ARRAY_LEN(map); i++)
            if (strcmp(code, map[i].name) == 0)
                return map[i].err;
    }
    switch (status) {
    case 400: return DSC_EINVAL;
    case 401: case 403: return DSC_EACCESS;
    case 404: return DSC_ENOTFOUND;
    case 412: case 416: return DSC_ECHANGED;
    case 429: case 503: return DSC_ETHROTTLED;
    default: return status >= 500 ? DSC_ESERVER : DSC_EHTTP;
    }
}

s3_outcome dsc_s3_classify_curl(const s3_op *op, const dsc_http_resp *rs,
                             const char *url)
{
    s3_outcome o = { DSC_ENET, 1, 0, 0 };
    switch (rs->curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
        o.code = DSC_ETIMEDOUT;
        break;
    case CURLE_WRITE_ERROR:
        if (rs->sink_failed) {
            /* The local side failed (the cache's disk): asking again
             * would fail the same way. */
            o.code = dsc_fail(DSC_EIO, "%s %s: stopped: the cache could not "
                              "write the body", op->verb, url);
            o.retry = 0;
            return o;
        }
        if (rs->overflow) {
            o.code = dsc_fail(DSC_EPROTO, "%s %s: body longer than the %zu "
                              "bytes asked for", op->verb, url,
                              dsc_s3_op_is_get(op) ? op->len : op->body_max);
            return o;
        }
        o.code = DSC_ENOMEM;
        o.retry = 0;
        break;
    case CURLE_URL_MALFORMAT:
        o.code = DSC_EURL;
        o.retry = 0;
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
        /* Our URLs are checked, so this is the answer: typically bytes a
         * server sent past the previous body on a reused connection, read
         * as a reply ("HTTP/0.9"). curl drops that connection; retry. */
        o.code = DSC_EPROTO;
        o.fresh = 1;
        break;
    case CURLE_OUT_OF_MEMORY:
        o.code = DSC_ENOMEM;
        o.retry = 0;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        o.retry = 0;
        break;
    default:
        break;
    }
    dsc_fail(o.code, "%s %s: %s", op->verb, url, rs->curl_err);
    return o;
}

/* Content-Range must name exactly the bytes we asked for, of an object of
 * the size we opened. */
static int range_ok(const char *cr, uint64_t first, uint64_t last,
                    uint64_t total)
{
    uint64_t a, b, t;
    char tail;
    if (sscanf(cr, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64 "%c", &a, &b, &t,
               &tail) != 3)
        return 0;
    return a == first && b == last && t == total;
}

/* bytes=0-(len-1) of an object of unknown size: S3 answers 206 with the
 * range clamped to the object (0-(min(len,total)-1)/total), or 200 with a
 * whole object of at most len bytes. Anything else is malformed. */
static s3_outcome classify_first_part(const s3_op *op, const dsc_http_resp *rs,
                                   const char *url)
{
    s3_outcome o = { 0, 0, 0, 0 };
    uint64_t a, b, t;
    char tail;
    int ok;
    if (rs->status == 206)
        ok = sscanf(rs->content_range, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64
                    "%c", &a, &b, &t, &tail) == 3 &&
             a == 0 && t > 0 && b == (t < op->len ? t : op->len) - 1 &&
             rs->received == b + 1;
    else
        ok = rs->status == 200 && rs->content_length >= 0 &&
             rs->received == (uint64_t)rs->content_length;
    if (!ok || !dsc_etag_ok(rs->etag, strlen(rs->etag))) {
        o.code = dsc_fail(DSC_EPROTO, "GET %s: status %ld, Content-Range '%s', "
                          "%zu bytes, ETag '%s' for the first %zu bytes", url,
                          rs->status, rs->content_range, rs->received,
                          rs->etag, op->len);
        o.retry = 1;
    }
    return o;
}

s3_outcome dsc_s3_classify(const s3_op *op, const dsc_http_resp *rs,
                        const char *url, uint64_t obj_size)
{
    s3_outcome o = { 0, 0, 0, 0 };
    long st = rs->status;
    if (st >= 200 && st < 300) {
        if (!dsc_s3_op_is_get(op))
            return o;
        if (op->first_part)
            return classify_first_part(op, rs, url);
        /* A GET: exactly the asked range of the opened version. */
        if (op->if_match && rs->etag[0] && strcmp(rs->etag, op->if_match)) {
            o.code = dsc_fail(DSC_ECHANGED, "GET %s: object changed (ETag %s, "
                              "opened as %s)", url, rs->etag, op->if_match);
            return o;
        }
        uint64_t off = 0;
        if (op->range)
            sscanf(op->range, "bytes=%" SCNu64, &off);
        int shape_ok = st == 206
            ? range_ok(rs->content_range, off, off + op->len - 1, obj_size)
            : (st == 200 && off == 0 && op->len == obj_size);
        if (!shape_ok) {
            o.code = dsc_fail(DSC_EPROTO, "GET %s: status %ld with "
                              "Content-Range '%s' for %s of %" PRIu64 " bytes",
                              url, st, rs->content_range,
                              op->range ? op->range : "whole object", obj_size);
            o.retry = 1;
        } else if (rs->received != op->len) {
            o.code = dsc_fail(DSC_EPROTO, "GET %s: short body, %zu of %zu "
                              "bytes", url, rs->received, op->len);
            o.retry = 1;
        }
        return o;
    }
    dsc_s3_error e = { 0 };
    if (rs->err_body.len)
        dsc_s3xml_parse_error(rs->err_body.data, rs->err_body.len, &e);
    o.code = map_s3_code(e.code, st);
    o.retry = st >= 500 || st == 429 || o.code == DSC_ETHROTTLED ||
              (e.code && strcmp(e.code, "RequestTimeout") == 0);
    o.slow_down = o.code == DSC_ETHROTTLED;
    char rid[160] = "";
    const char *reqid = e.request_id ? e.request_id : rs->request_id;
    if (reqid && *reqid)
        snprintf(rid, sizeof rid, " (request id %s)", reqid);
    /* HEAD answers have no body, so no S3 error code: name the status. */
    const char *what = e.code ? e.code
                     : st == 403 ? "Forbidden (no error body; e.g. unknown key id, "
                                   "bad signature or no permission)"
                     : st == 404 ? "Not Found (no such key or bucket)"
                     : st == 412 ? "Precondition Failed"
                     : st >= 500 ? "Server Error" : "";
    dsc_fail(o.code, "%s %s: HTTP %ld %s%s%s%s", op->verb, url, st, what,
             e.message ? ": " : "", e.message ? e.message : "", rid);
    dsc_s3_error_free(&e);
    return o;
}
