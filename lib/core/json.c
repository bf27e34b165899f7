/* JSON reading by path: one pass that checks the whole text and keeps the
 * value asked for. The answers it reads are a few hundred bytes, so there
 * is no tree and no streaming. */
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "core/json.h"

#define MAX_DEPTH 64

typedef struct jp {
    const char *p, *end;
    int depth;
    int bad;                  /* not valid JSON */
    int oom;
    int found;
    dsc_json_val *out;
} jp;

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
                             *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int fail(jp *j)
{
    j->bad = 1;
    return -1;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(dsc_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    dsc_buf_add(b, u, n);
}

/* A string at j->p (on its opening quote), decoded into dec when non-NULL. */
static int string(jp *j, dsc_buf *dec)
{
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            if (dec && dsc_buf_add(dec, "", 0))
                j->oom = 1;
            return 0;
        }
        if (c < 0x20)
            return fail(j);
        if (c != '\\') {
            const char *run = j->p;
            while (j->p < j->end && *j->p != '"' && *j->p != '\\' &&
                   (unsigned char)*j->p >= 0x20)
                j->p++;
            if (dec)
                dsc_buf_add(dec, run, (size_t)(j->p - run));
            continue;
        }
        if (j->end - j->p < 2)
            return fail(j);
        char e = j->p[1];
        j->p += 2;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(from, e) : NULL;
        if (simple) {
            if (dec)
                dsc_buf_add(dec, &to[simple - from], 1);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || j->end - j->p < 4 || hex4(j->p, &cp))
            return fail(j);
        j->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->p >= 6 &&
            j->p[0] == '\\' && j->p[1] == 'u' && !hex4(j->p + 2, &lo) &&
            lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            j->p += 6;
        } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;    /* a lone surrogate has no UTF-8 form */
        }
        if (dec)
            put_utf8(dec, cp);
    }
    return fail(j);
}

static int digits(jp *j)
{
    const char *s = j->p;
    while (j->p < j->end && dsc_isdigit((unsigned char)*j->p))
        j->p++;
    return j->p > s ? 0 : fail(j);
}

static int number(jp *j)
{
    if (*j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (digits(j))
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (digits(j))
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (digits(j))
            return -1;
    }
    return 0;
}

static int literal(jp *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return fail(j);
    j->p += n;
    return 0;
}

static int value(jp *j, const char *path);

/* The next path component matches key k[0..n)? Sets *rest. */
static int key_matches(const char *path, const dsc_buf *k, const char **rest)
{
    const char *dot = strchr(path, '.');
    size_t plen = dot ? (size_t)(dot - path) : strlen(path);
    if (plen != k->len || memcmp(path, k->data, plen) != 0)
        return 0;
    *rest = dot ? dot + 1 : "";
    return 1;
}

static int object(jp *j, const char *path)
{
    dsc_buf key = { 0 };
    int rc = 0;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        ws(j);
        if (j->p >= j->end || *j->p != '"') {
            rc = fail(j);
            break;
        }
        dsc_buf_reset(&key);
        if (string(j, path && *path ? &key : NULL)) {
            rc = -1;
            break;
        }
        ws(j);
        if (j->p >= j->end || *j->p != ':') {
            rc = fail(j);
            break;
        }
        j->p++;
        const char *rest = NULL;
        if (path && *path && key.data)
            key_matches(path, &key, &rest);
        if (value(j, rest)) {
            rc = -1;
            break;
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        rc = fail(j);
        break;
    }
    if (dsc_buf_oom(&key))
        j->oom = 1;
    dsc_buf_free(&key);
    return rc;
}

static int array(jp *j)
{
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        if (value(j, NULL))
            return -1;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        return fail(j);
    }
}

/* A value; path NULL: not wanted, "": this is the one, else look inside. */
static int value(jp *j, const char *path)
{
    ws(j);
    if (j->p >= j->end || ++j->depth > MAX_DEPTH)
        return fail(j);
    const char *start = j->p;
    int want = path && !*path;
    dsc_buf dec = { 0 };
    int type, rc;
    switch (*j->p) {
    case '{':
        type = DSC_JSON_OBJECT;
        rc = object(j, path);
        break;
    case '[':
        type = DSC_JSON_ARRAY;
        rc = array(j);
        break;
    case '"':
        type = DSC_JSON_STRING;
        rc = string(j, want ? &dec : NULL);
        break;
    case 't':
        type = DSC_JSON_BOOL;
        rc = literal(j, "true");
        break;
    case 'f':
        type = DSC_JSON_BOOL;
        rc = literal(j, "false");
        break;
    case 'n':
        type = DSC_JSON_NULL;
        rc = literal(j, "null");
        break;
    default:
        type = DSC_JSON_NUMBER;
        rc = (*j->p == '-' || dsc_isdigit((unsigned char)*j->p)) ? number(j)
                                                                 : fail(j);
    }
    j->depth--;
    if (!rc && want) {
        if (type != DSC_JSON_STRING)
            dsc_buf_add(&dec, start, (size_t)(j->p - start));
        if (dsc_buf_oom(&dec)) {
            j->oom = 1;
        } else if (type == DSC_JSON_STRING && strlen(dec.data) != dec.len) {
            rc = fail(j);   /* "\u0000": no C string can carry it */
        } else {
            free(j->out->text);     /* a repeated key: the last wins */
            j->out->text = dec.data;
            j->out->type = type;
            j->found = 1;
            dec.data = NULL;
        }
    }
    dsc_buf_free(&dec);
    return rc;
}

int dsc_json_get(const char *text, size_t len, const char *path,
                 dsc_json_val *out)
{
    memset(out, 0, sizeof *out);
    jp j = { .p = text, .end = text + len, .out = out };
    int rc = value(&j, path);
    ws(&j);
    if (!rc && j.p != j.end)
        fail(&j);
    if (j.oom) {
        rc = DSC_ENOMEM;
    } else if (j.bad) {
        rc = dsc_fail(DSC_EPROTO, "malformed JSON at byte %zu",
                      (size_t)(j.p - text));
    } else {
        rc = j.found ? 0 : DSC_ABSENT;
    }
    if (rc)
        dsc_json_val_free(out);
    return rc;
}

int dsc_json_string(const char *text, size_t len, const char *path,
                    char **out)
{
    dsc_json_val v;
    *out = NULL;
    int rc = dsc_json_get(text, len, path, &v);
    if (rc)
        return rc;
    if (v.type == DSC_JSON_NULL) {
        rc = DSC_ABSENT;
    } else if (v.type != DSC_JSON_STRING) {
        rc = dsc_fail(DSC_EPROTO, "JSON: %s is not a string", path);
    } else {
        *out = v.text;
        v.text = NULL;
    }
    dsc_json_val_free(&v);
    return rc;
}

void dsc_json_val_free(dsc_json_val *v)
{
    free(v->text);
    v->text = NULL;
    v->type = 0;
}

/* ---- Times -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no time zone or locale is consulted. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int num(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!dsc_isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int dsc_time_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, zh = 0, zm = 0, sign = 0;
    if (!s || num(&s, 4, &y) || *s++ != '-' || num(&s, 2, &mo) ||
        *s++ != '-' || num(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
        return -1;
    s++;
    if (num(&s, 2, &h) || *s++ != ':' || num(&s, 2, &mi) || *s++ != ':' ||
        num(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        s++;
        if (!dsc_isdigit((unsigned char)*s))
            return -1;
        while (dsc_isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (strcmp(s, "UTC") == 0) {
        s += 3;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '+' ? 1 : -1;
        if (num(&s, 2, &zh))
            return -1;
        if (*s == ':')
            s++;
        if (num(&s, 2, &zm))
            return -1;
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60 || zh > 23 || zm > 59)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
           sign * (zh * 3600 + zm * 60);
    return 0;
}

int dsc_time_epoch_ms(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!dsc_isdigit((unsigned char)*p) || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v / 1000;
    return 0;
}
