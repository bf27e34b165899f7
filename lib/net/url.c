/* s3:// URLs, endpoints and percent-encoding. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "net/url.h"

/* Valid UTF-8 without C0 controls or DEL: S3 keys must be UTF-8, and a
 * control character in a dataset URL is almost always a caller bug. */
int dsc_key_text_ok(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        unsigned c = *s;
        int extra;
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) { s++; continue; }
        if (c >= 0xc2 && c <= 0xdf) extra = 1;
        else if (c >= 0xe0 && c <= 0xef) extra = 2;
        else if (c >= 0xf0 && c <= 0xf4) extra = 3;
        else return 0;
        unsigned cp = c & (0x3f >> extra);
        for (int i = 1; i <= extra; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        s += extra + 1;
    }
    return 1;
}

int dsc_bucket_name_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!(dsc_isalnum(c) || c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int dsc_bucket_vhost_ok(const char *b, int https)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    if (!dsc_isalnum((unsigned char)b[0]) || !dsc_isalnum((unsigned char)b[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!((c >= 'a' && c <= 'z') || dsc_isdigit(c) || c == '-' || c == '.'))
            return 0;
        /* Dots break wildcard TLS certificates. */
        if (c == '.' && (https || b[i + 1] == '.'))
            return 0;
    }
    return 1;
}

int dsc_s3url_parse(const char *url, dsc_s3url *out)
{
    char q[200];
    memset(out, 0, sizeof *out);
    if (!url)
        return dsc_fail(DSC_EURL, "URL is NULL");
    if (strncmp(url, "s3://", 5) != 0)
        return dsc_fail(DSC_EURL, "URL must start with s3:// in '%s'",
                        dsc_printable(url, q, sizeof q));
    const char *b = url + 5;
    const char *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen == 0)
        return dsc_fail(DSC_EURL, "missing bucket name in '%s'",
                        dsc_printable(url, q, sizeof q));
    char *bucket = dsc_strndup(b, blen);
    if (!bucket)
        return DSC_ENOMEM;
    if (!dsc_bucket_name_ok(bucket)) {
        free(bucket);
        return dsc_fail(DSC_EURL, "invalid bucket name in '%s'",
                        dsc_printable(url, q, sizeof q));
    }
    const char *key = slash ? slash + 1 : "";
    if (!dsc_key_text_ok(key)) {
        free(bucket);
        return dsc_fail(DSC_EURL, "key is not UTF-8 or has control "
                        "characters in '%s'", dsc_printable(url, q, sizeof q));
    }
    if (strlen(key) > 1024) {
        free(bucket);
        return dsc_fail(DSC_EURL, "key of %zu bytes is longer than S3's "
                        "1024 in '%s'", strlen(key),
                        dsc_printable(url, q, 80));
    }
    out->bucket = bucket;
    out->key = dsc_strdup(key);
    if (!out->key) {
        dsc_s3url_free(out);
        return DSC_ENOMEM;
    }
    return 0;
}

void dsc_s3url_free(dsc_s3url *u)
{
    free(u->bucket);
    free(u->key);
    u->bucket = u->key = NULL;
}

int dsc_host_is_literal(const char *host)
{
    if (host[0] == '[' || strcmp(host, "localhost") == 0)
        return 1;
    for (const char *p = host; *p; p++)
        if (!dsc_isdigit((unsigned char)*p) && *p != '.')
            return 0;
    return 1;
}

int dsc_endpoint_parse(const char *s, dsc_endpoint *out)
{
    char qbuf[200];
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return dsc_fail(DSC_EURL, "endpoint is empty");
    const char *p;
    if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        p = s + 8;
        out->https = 1;
    } else {
        return dsc_fail(DSC_EURL,
                        "endpoint must start with http:// or https:// in '%s'",
                        dsc_printable(s, qbuf, sizeof qbuf));
    }
    const char *host_end;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end || host_end == p + 1)
            return dsc_fail(DSC_EURL, "endpoint: bad IPv6 literal in '%s'",
                                dsc_printable(s, qbuf, sizeof qbuf));
        for (const char *q = p + 1; q < host_end; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return dsc_fail(DSC_EURL, "endpoint: bad IPv6 literal in '%s'",
                                dsc_printable(s, qbuf, sizeof qbuf));
        host_end++;
    } else {
        host_end = p;
        while (*host_end && (dsc_isalnum((unsigned char)*host_end) ||
                             *host_end == '.' || *host_end == '-' ||
                             *host_end == '_'))
            host_end++;
        if (host_end == p)
            return dsc_fail(DSC_EURL, "endpoint: missing host in '%s'",
                                dsc_printable(s, qbuf, sizeof qbuf));
    }
    const char *q = host_end;
    int port = 0;
    if (*q == ':') {
        q++;
        if (!dsc_isdigit((unsigned char)*q))
            return dsc_fail(DSC_EURL, "endpoint: bad port in '%s'",
                                dsc_printable(s, qbuf, sizeof qbuf));
        long v = 0;
        while (dsc_isdigit((unsigned char)*q) && v <= 65535)
            v = v * 10 + (*q++ - '0');
        if (v < 1 || v > 65535 || dsc_isdigit((unsigned char)*q))
            return dsc_fail(DSC_EURL, "endpoint: port out of range in '%s'",
                                dsc_printable(s, qbuf, sizeof qbuf));
        port = (int)v;
    }
    if (*q == '/')
        q++;
    if (*q)
        return dsc_fail(DSC_EURL, "endpoint: only scheme://host[:port] is "
                        "allowed in '%s'", dsc_printable(s, qbuf, sizeof qbuf));
    out->host = dsc_strndup(p, (size_t)(host_end - p));
    if (!out->host)
        return DSC_ENOMEM;
    for (char *h = out->host; *h; h++)
        *h = (char)dsc_tolower((unsigned char)*h);
    if ((out->https && port == 443) || (!out->https && port == 80))
        port = 0;
    out->port = port;
    return 0;
}

void dsc_endpoint_free(dsc_endpoint *e)
{
    free(e->host);
    e->host = NULL;
}

int dsc_uri_encode(dsc_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (dsc_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
            (keep_slash && c == '/')) {
            if (dsc_buf_add(out, &s[i], 1))
                return DSC_ENOMEM;
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            if (dsc_buf_add(out, e, 3))
                return DSC_ENOMEM;
        }
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int dsc_uri_decode(dsc_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3)
                return DSC_EINVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return DSC_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '\0') {
            return DSC_EINVAL;
        }
        if (dsc_buf_add(out, &c, 1))
            return DSC_ENOMEM;
    }
    if (!out->data && dsc_buf_add(out, "", 0))
        return DSC_ENOMEM;
    return 0;
}

int dsc_target_build(dsc_target *t, const dsc_endpoint *ep, int addressing,
                     const char *bucket, const char *key)
{
    memset(t, 0, sizeof *t);
    int vhost;
    if (addressing == DSC_ADDRESSING_PATH)
        vhost = 0;
    else if (addressing == DSC_ADDRESSING_VHOST)
        vhost = 1;
    else
        vhost = !dsc_host_is_literal(ep->host) &&
                dsc_bucket_vhost_ok(bucket, ep->https);
    if (vhost)
        dsc_buf_printf(&t->host, "%s.%s", bucket, ep->host);
    else
        dsc_buf_adds(&t->host, ep->host);
    if (ep->port)
        dsc_buf_printf(&t->host, ":%d", ep->port);
    dsc_buf_adds(&t->path, "/");
    if (!vhost) {
        dsc_uri_encode(&t->path, bucket, strlen(bucket), 0);
        if (*key)
            dsc_buf_adds(&t->path, "/");
    }
    dsc_uri_encode(&t->path, key, strlen(key), 1);
    if (!dsc_buf_oom(&t->host) && !dsc_buf_oom(&t->path))
        dsc_buf_printf(&t->url, "%s://%s%s", ep->https ? "https" : "http",
                       t->host.data, t->path.data);
    if (dsc_buf_oom(&t->host) || dsc_buf_oom(&t->path) || dsc_buf_oom(&t->url)) {
        dsc_target_free(t);
        return DSC_ENOMEM;
    }
    return 0;
}

void dsc_target_free(dsc_target *t)
{
    dsc_buf_free(&t->url);
    dsc_buf_free(&t->host);
    dsc_buf_free(&t->path);
}
