/* INI parsing for the AWS shared config files. */
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "s3/ini.h"

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

int dsc_ini_parse(const char *text, size_t len, dsc_ini_cb cb, void *arg)
{
    dsc_buf section = { 0 }, parent = { 0 }, key = { 0 }, val = { 0 };
    int rc = 0;
    if (dsc_buf_add(&section, "", 0) || dsc_buf_add(&parent, "", 0)) {
        rc = -1;
        goto out;
    }
    const char *p = text, *end = text + len;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p, *e = le;
        int indented = s < e && is_blank(*s);
        p = nl ? nl + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            const char *close = memchr(s, ']', (size_t)(e - s));
            if (!close)
                continue;
            const char *ns = s + 1, *ne = close;
            trim(&ns, &ne);
            dsc_buf_reset(&section);
            dsc_buf_reset(&parent);
            if (dsc_buf_add(&section, ns, (size_t)(ne - ns)) ||
                dsc_buf_add(&parent, "", 0))
                rc = -1;
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq)
            continue;
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (ks == ke)
            continue;
        dsc_buf_reset(&key);
        dsc_buf_reset(&val);
        if (indented && parent.len) {
            if (dsc_buf_printf(&key, "%s.", parent.data)) {
                rc = -1;
                break;
            }
        } else {
            dsc_buf_reset(&parent);
            /* An empty value opens a nested block (e.g. "s3 ="). */
            if (vs == ve && dsc_buf_add(&parent, ks, (size_t)(ke - ks))) {
                rc = -1;
                break;
            }
        }
        if (dsc_buf_add(&key, ks, (size_t)(ke - ks)) ||
            dsc_buf_add(&val, vs, (size_t)(ve - vs))) {
            rc = -1;
            break;
        }
        rc = cb(arg, section.data, key.data, val.data);
    }
out:
    dsc_buf_free(&section);
    dsc_buf_free(&parent);
    dsc_buf_free(&key);
    dsc_buf_free(&val);
    return rc;
}
