/* Signs requests read from stdin with dsc_sigv4_authorization, so other
 * signers (botocore) can be compared with libdsc's byte for byte.
 *
 * One request per line, ten fields separated by TAB:
 *   method path query headers payload_hash region service amz_date
 *   access_key secret_key
 * Every field except query and headers is the hex encoding of its bytes
 * (empty for an empty string). query and headers are lists: zero or more
 * items joined by ',', each item HEXNAME=HEXVALUE (HEXVALUE may be empty).
 * Hex never contains ',', '=' or TAB, so any byte but NUL can be passed;
 * query names and values are raw, the signer encodes them.
 *
 * For each line one line is written: the Authorization header value, or
 * with -c that value, a TAB and the hex of the canonical request. A line
 * that cannot be parsed or signed prints "!error: ..." instead (keeping
 * output lines paired with input lines) and makes the exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/sigv4.h"

enum { F_METHOD, F_PATH, F_QUERY, F_HEADERS, F_PAYLOAD, F_REGION, F_SERVICE,
       F_DATE, F_AK, F_SK, NFIELDS };

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) in place into a NUL-terminated string. A decoded NUL is
 * refused: the signer takes C strings and would silently truncate. */
static int unhex(char *s, size_t n)
{
    if (n % 2)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]);
        int lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return -1;
        s[i] = (char)(hi << 4 | lo);
    }
    s[n / 2] = '\0';
    return 0;
}

/* Split a list field in place into kv pairs. *out is realloc'ed. */
static int parse_list(char *s, dsc_kv **out, size_t *n)
{
    *n = 0;
    if (!*s)
        return 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    dsc_kv *kv = realloc(*out, cap * sizeof *kv);
    if (!kv)
        return -1;
    *out = kv;
    for (char *item = s; item;) {
        char *next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        if (unhex(item, strlen(item)) || unhex(eq + 1, strlen(eq + 1)))
            return -1;
        kv[*n].name = item;
        kv[*n].value = eq + 1;
        (*n)++;
        item = next;
    }
    return 0;
}

static void put_hex(const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        putchar(hex[c >> 4]);
        putchar(hex[c & 15]);
    }
}

/* Sign one line; returns an error message or NULL. */
static const char *sign_line(char *line, int with_creq, dsc_kv **q,
                             dsc_kv **h)
{
    char *f[NFIELDS];
    char *p = line;
    for (int i = 0; i < NFIELDS; i++) {
        f[i] = p;
        p = strchr(p, '\t');
        if (i < NFIELDS - 1) {
            if (!p)
                return "too few fields";
            *p++ = '\0';
        } else if (p) {
            return "too many fields";
        }
    }
    dsc_sigv4_input in = { 0 };
    if (parse_list(f[F_QUERY], q, &in.nquery))
        return "bad query list";
    if (parse_list(f[F_HEADERS], h, &in.nheaders))
        return "bad header list";
    in.query = *q;
    in.headers = *h;
    for (int i = 0; i < NFIELDS; i++)
        if (i != F_QUERY && i != F_HEADERS && unhex(f[i], strlen(f[i])))
            return "bad hex field";
    in.method = f[F_METHOD];
    in.path = f[F_PATH];
    in.payload_hash = f[F_PAYLOAD];
    in.region = f[F_REGION];
    in.service = f[F_SERVICE];
    in.amz_date = f[F_DATE];
    in.access_key = f[F_AK];
    in.secret_key = f[F_SK];

    dsc_buf authz = { 0 }, creq = { 0 };
    const char *err = NULL;
    if (dsc_sigv4_authorization(&in, &authz))
        err = "dsc_sigv4_authorization failed";
    else if (with_creq && dsc_sigv4_canonical_request(&in, &creq, NULL))
        err = "dsc_sigv4_canonical_request failed";
    if (!err) {
        fputs(authz.data, stdout);
        if (with_creq) {
            putchar('\t');
            put_hex(creq.data, creq.len);
        }
        putchar('\n');
    }
    dsc_buf_free(&authz);
    dsc_buf_free(&creq);
    return err;
}

int main(int argc, char **argv)
{
    int with_creq = argc == 2 && strcmp(argv[1], "-c") == 0;
    if (argc > 2 || (argc == 2 && !with_creq)) {
        fprintf(stderr, "usage: %s [-c] < requests\n", argv[0]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    dsc_kv *q = NULL, *h = NULL;
    int status = 0;
    for (long lineno = 1; (len = getline(&line, &cap, stdin)) >= 0; lineno++) {
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        const char *err = sign_line(line, with_creq, &q, &h);
        if (err) {
            printf("!error: line %ld: %s\n", lineno, err);
            status = 1;
        }
    }
    free(line);
    free(q);
    free(h);
    return status;
}
