/* AWS Signature Version 4, header form, as S3 wants it: the path is signed
 * as sent (no normalisation, no double encoding). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "net/sigv4.h"
#include "net/url.h"

void dsc_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    dsc_hex_encode(md, sizeof md, out);
}

void dsc_sha1_hex(const void *data, size_t len, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(data, len, md);
    dsc_hex_encode(md, sizeof md, out);
}

void dsc_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int dsc_hmac_sha256(const void *key, size_t klen, const void *msg,
                    size_t mlen, unsigned char out[32])
{
    unsigned int olen = 32;
    return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen)
               ? 0 : DSC_ENOMEM;
}

static int hmac(const void *key, size_t klen, const char *msg,
                unsigned char out[32])
{
    return dsc_hmac_sha256(key, klen, msg, strlen(msg), out);
}

typedef struct enc_pair {
    dsc_buf name, value;
} enc_pair;

static int cmp_pair(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name.data, y->name.data);
    return c ? c : strcmp(x->value.data, y->value.data);
}

int dsc_sigv4_query_string(const dsc_kv *query, size_t n, dsc_buf *out)
{
    if (n == 0)
        return dsc_buf_add(out, "", 0);
    enc_pair *p = calloc(n, sizeof *p);
    if (!p)
        return DSC_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *v = query[i].value ? query[i].value : "";
        dsc_uri_encode(&p[i].name, query[i].name, strlen(query[i].name), 0);
        dsc_buf_add(&p[i].name, "", 0);
        dsc_uri_encode(&p[i].value, v, strlen(v), 0);
        dsc_buf_add(&p[i].value, "", 0);
        rc = dsc_buf_oom(&p[i].name) || dsc_buf_oom(&p[i].value);
    }
    if (!rc) {
        qsort(p, n, sizeof *p, cmp_pair);
        for (size_t i = 0; i < n; i++)
            dsc_buf_printf(out, "%s%s=%s", i ? "&" : "", p[i].name.data,
                           p[i].value.data);
        rc = dsc_buf_oom(out);
    }
    for (size_t i = 0; i < n; i++) {
        dsc_buf_free(&p[i].name);
        dsc_buf_free(&p[i].value);
    }
    free(p);
    return rc ? DSC_ENOMEM : 0;
}

typedef struct canon_header {
    char *name;     /* lower case */
    dsc_buf value;  /* trimmed, inner runs of spaces folded, joined by ',' */
    size_t order;
} canon_header;

static int cmp_header(const void *a, const void *b)
{
    const canon_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int add_trimmed(dsc_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    int in_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            in_space = 1;
            continue;
        }
        if (in_space && dsc_buf_add(b, " ", 1))
            return DSC_ENOMEM;
        in_space = 0;
        if (dsc_buf_add(b, &v[i], 1))
            return DSC_ENOMEM;
    }
    return dsc_buf_add(b, "", 0);
}

int dsc_sigv4_canonical_request(const dsc_sigv4_input *in, dsc_buf *out,
                                dsc_buf *signed_headers)
{
    size_t n = in->nheaders;
    canon_header *h = calloc(n ? n : 1, sizeof *h);
    if (!h)
        return DSC_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        h[i].name = dsc_strdup(in->headers[i].name);
        if (!h[i].name) {
            rc = DSC_ENOMEM;
            break;
        }
        for (char *c = h[i].name; *c; c++)
            *c = (char)dsc_tolower((unsigned char)*c);
        h[i].order = i;
        rc = add_trimmed(&h[i].value, in->headers[i].value);
    }
    if (!rc)
        qsort(h, n, sizeof *h, cmp_header);

    dsc_buf sh = { 0 };
    if (!rc) {
        dsc_buf_printf(out, "%s\n%s\n", in->method, in->path);
        if (dsc_sigv4_query_string(in->query, in->nquery, out))
            out->oom = 1;   /* its scratch failed: still out of memory */
        dsc_buf_adds(out, "\n");
        for (size_t i = 0; i < n;) {
            /* Repeated header names join their values in the order given. */
            size_t j = i + 1;
            dsc_buf_printf(out, "%s:%s", h[i].name, h[i].value.data);
            for (; j < n && strcmp(h[j].name, h[i].name) == 0; j++)
                dsc_buf_printf(out, ",%s", h[j].value.data);
            dsc_buf_adds(out, "\n");
            dsc_buf_printf(&sh, "%s%s", i ? ";" : "", h[i].name);
            i = j;
        }
        dsc_buf_printf(out, "\n%s\n%s", sh.data ? sh.data : "",
                       in->payload_hash);
        if (signed_headers)
            dsc_buf_adds(signed_headers, sh.data ? sh.data : "");
        rc = dsc_buf_oom(out) || dsc_buf_oom(&sh) ||
             (signed_headers && dsc_buf_oom(signed_headers));
    }
    dsc_buf_free(&sh);
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        dsc_buf_free(&h[i].value);
    }
    free(h);
    return rc ? DSC_ENOMEM : 0;
}

int dsc_sigv4_string_to_sign(const dsc_sigv4_input *in,
                             const char *canonical_request, dsc_buf *out)
{
    char hash[65];
    dsc_sha256_hex(canonical_request, strlen(canonical_request), hash);
    return dsc_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s",
                          in->amz_date, in->amz_date, in->region, in->service,
                          hash);
}

int dsc_sigv4_authorization(const dsc_sigv4_input *in, dsc_buf *out)
{
    if (!in->amz_date || strlen(in->amz_date) != 16)
        return dsc_fail(DSC_EINVAL, "sigv4: bad x-amz-date");
    dsc_buf creq = { 0 }, sh = { 0 }, sts = { 0 }, key = { 0 };
    int rc = dsc_sigv4_canonical_request(in, &creq, &sh);
    if (!rc)
        rc = dsc_sigv4_string_to_sign(in, creq.data, &sts);
    if (!rc)
        rc = dsc_buf_printf(&key, "AWS4%s", in->secret_key);
    unsigned char k[32], sig[32];
    char date[9], sig_hex[65];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    if (!rc)
        rc = hmac(key.data, key.len, date, k);
    if (!rc)
        rc = hmac(k, 32, in->region, k);
    if (!rc)
        rc = hmac(k, 32, in->service, k);
    if (!rc)
        rc = hmac(k, 32, "aws4_request", k);
    if (!rc)
        rc = hmac(k, 32, sts.data, sig);
    if (!rc) {
        dsc_hex_encode(sig, 32, sig_hex);
        rc = dsc_buf_printf(out,
            "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
            "SignedHeaders=%s, Signature=%s",
            in->access_key, date, in->region, in->service, sh.data, sig_hex);
    }
    if (key.data)
        OPENSSL_cleanse(key.data, key.len);
    OPENSSL_cleanse(k, sizeof k);
    dsc_buf_free(&creq);
    dsc_buf_free(&sh);
    dsc_buf_free(&sts);
    dsc_buf_free(&key);
    return rc;
}
