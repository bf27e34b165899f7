/* S3 XML through expat: streaming, bounded, and strict about structure. */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "s3/xml.h"

/* No S3 field we read is anywhere near this; a hostile body can't make us
 * buffer more. */
#define MAX_TEXT (64 * 1024)
#define MAX_DEPTH 16

typedef struct parser {
    XML_Parser xp;
    int depth;
    const char *path[MAX_DEPTH];  /* names of open elements we know */
    dsc_buf text;
    int capture;                  /* collecting text of a leaf of interest */
    int err;                      /* DSC_E* or callback's value */
    /* list state */
    dsc_s3xml_obj_cb cb;
    void *arg;
    dsc_s3_list_page *page;
    char *key, *etag, *last_modified, *size;
    int root_ok;
    /* error state */
    dsc_s3_error *error;
} parser;

/* Element names we care about, interned so path[] holds stable pointers. */
static const char *const known[] = {
    "ListBucketResult", "Contents", "Key", "Size", "ETag", "LastModified",
    "IsTruncated", "NextContinuationToken", "Error", "Code", "Message",
    "RequestId",
};

static const char *intern(const char *name)
{
    /* Namespaced names arrive as "uri name" when namespaces are on; we
     * parse without namespace processing, so names are plain. */
    for (size_t i = 0; i < DSC_ARRAY_LEN(known); i++)
        if (strcmp(known[i], name) == 0)
            return known[i];
    return NULL;
}

static int at(const parser *p, int depth, const char *a, const char *b,
              const char *c)
{
    if (p->depth != depth)
        return 0;
    const char *want[3] = { a, b, c };
    for (int i = 0; i < depth && i < 3; i++)
        if (p->path[i] != want[i] && (!p->path[i] || !want[i] ||
                                       strcmp(p->path[i], want[i])))
            return 0;
    return 1;
}

static void stop(parser *p, int err)
{
    if (!p->err)
        p->err = err;
    XML_StopParser(p->xp, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs)
{
    (void)attrs;
    parser *p = ud;
    if (p->depth >= MAX_DEPTH) {
        stop(p, DSC_EPROTO);
        return;
    }
    p->path[p->depth++] = intern(name);
    dsc_buf_reset(&p->text);
    p->capture = 0;
    if (p->depth == 1)
        p->root_ok = p->error ? p->path[0] == known[8]
                              : p->path[0] == known[0];
    if (p->error)
        p->capture = p->depth == 2;
    else
        p->capture = at(p, 2, "ListBucketResult", "IsTruncated", NULL) ||
                     at(p, 2, "ListBucketResult", "NextContinuationToken", NULL) ||
                     at(p, 3, "ListBucketResult", "Contents", "Key") ||
                     at(p, 3, "ListBucketResult", "Contents", "Size") ||
                     at(p, 3, "ListBucketResult", "Contents", "ETag") ||
                     at(p, 3, "ListBucketResult", "Contents", "LastModified");
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parser *p = ud;
    if (!p->capture)
        return;
    if (p->text.len + (size_t)len > MAX_TEXT) {
        stop(p, DSC_EPROTO);
        return;
    }
    if (dsc_buf_add(&p->text, s, (size_t)len))
        stop(p, DSC_ENOMEM);
}

static int take(char **slot, dsc_buf *text)
{
    free(*slot);
    *slot = dsc_strdup(text->data ? text->data : "");
    return *slot ? 0 : DSC_ENOMEM;
}

static void end_contents(parser *p)
{
    uint64_t size;
    if (!p->key || dsc_parse_u64(p->size, &size)) {
        stop(p, DSC_EPROTO);
        return;
    }
    p->page->count++;
    int rc = p->cb ? p->cb(p->arg, p->key, size, p->etag ? p->etag : "",
                           p->last_modified ? p->last_modified : "")
                   : 0;
    free(p->key);
    free(p->etag);
    free(p->last_modified);
    free(p->size);
    p->key = p->etag = p->last_modified = p->size = NULL;
    if (rc)
        stop(p, rc);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    parser *p = ud;
    int rc = 0;
    if (p->capture) {
        const char *leaf = p->path[p->depth - 1];
        if (p->error) {
            if (leaf && strcmp(leaf, "Code") == 0)
                rc = take(&p->error->code, &p->text);
            else if (leaf && strcmp(leaf, "Message") == 0)
                rc = take(&p->error->message, &p->text);
            else if (leaf && strcmp(leaf, "RequestId") == 0)
                rc = take(&p->error->request_id, &p->text);
        } else if (p->depth == 2) {
            if (strcmp(leaf, "IsTruncated") == 0)
                p->page->truncated = strcmp(p->text.data ? p->text.data : "",
                                            "true") == 0;
            else
                rc = take(&p->page->next_token, &p->text);
        } else if (strcmp(leaf, "Key") == 0) {
            rc = take(&p->key, &p->text);
        } else if (strcmp(leaf, "Size") == 0) {
            rc = take(&p->size, &p->text);
        } else if (strcmp(leaf, "ETag") == 0) {
            rc = take(&p->etag, &p->text);
        } else {
            rc = take(&p->last_modified, &p->text);
        }
        p->capture = 0;
        if (rc) {
            stop(p, rc);
            return;
        }
    } else if (!p->error && at(p, 2, "ListBucketResult", "Contents", NULL)) {
        end_contents(p);
    }
    p->depth--;
}

static int run(parser *p, const char *xml, size_t len)
{
    p->xp = XML_ParserCreate(NULL);
    if (!p->xp)
        return DSC_ENOMEM;
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    int rc = 0;
    if (len > INT32_MAX) {
        rc = dsc_fail(DSC_EPROTO, "XML body too large");
    } else if (XML_Parse(p->xp, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (p->err)
            rc = p->err;
        else
            rc = dsc_fail(DSC_EPROTO, "malformed XML at line %lu: %s",
                          (unsigned long)XML_GetCurrentLineNumber(p->xp),
                          XML_ErrorString(XML_GetErrorCode(p->xp)));
    } else if (!p->root_ok) {
        rc = dsc_fail(DSC_EPROTO, "unexpected XML document element");
    }
    if (rc == DSC_EPROTO && p->err == DSC_EPROTO)
        dsc_fail(DSC_EPROTO, "XML document too deep, field too long or "
                 "entry without Key/Size");
    XML_ParserFree(p->xp);
    dsc_buf_free(&p->text);
    free(p->key);
    free(p->etag);
    free(p->last_modified);
    free(p->size);
    return rc;
}

int dsc_s3xml_parse_error(const char *xml, size_t len, dsc_s3_error *out)
{
    memset(out, 0, sizeof *out);
    parser p = { .error = out };
    int rc = run(&p, xml, len);
    if (rc)
        dsc_s3_error_free(out);
    return rc;
}

void dsc_s3_error_free(dsc_s3_error *e)
{
    free(e->code);
    free(e->message);
    free(e->request_id);
    memset(e, 0, sizeof *e);
}

int dsc_s3xml_parse_list(const char *xml, size_t len, dsc_s3xml_obj_cb cb,
                         void *arg, dsc_s3_list_page *page)
{
    memset(page, 0, sizeof *page);
    parser p = { .cb = cb, .arg = arg, .page = page };
    int rc = run(&p, xml, len);
    if (rc)
        dsc_s3_list_page_free(page);
    return rc;
}

void dsc_s3_list_page_free(dsc_s3_list_page *pg)
{
    free(pg->next_token);
    pg->next_token = NULL;
}

/* ---- Leaves by path (STS answers) --------------------------------------- */

typedef struct leaves {
    XML_Parser xp;
    int depth;
    char names[MAX_DEPTH][64];    /* open elements (longer names cut) */
    dsc_buf text;
    const char *const *paths;
    char **out;
    size_t n;
    int err;
} leaves;

/* Whether the open elements end with path ("A/B/C"). */
static int ends_with(const leaves *l, const char *path)
{
    int d = l->depth;
    const char *end = path + strlen(path);
    while (end > path) {
        const char *slash = end;
        while (slash > path && slash[-1] != '/')
            slash--;
        if (d == 0)
            return 0;
        const char *name = l->names[--d];
        size_t n = (size_t)(end - slash);
        if (strlen(name) != n || memcmp(name, slash, n) != 0)
            return 0;
        end = slash > path ? slash - 1 : path;
    }
    return 1;
}

static void XMLCALL leaf_start(void *ud, const XML_Char *name,
                               const XML_Char **attrs)
{
    (void)attrs;
    leaves *l = ud;
    if (l->depth >= MAX_DEPTH) {
        l->err = DSC_EPROTO;
        XML_StopParser(l->xp, XML_FALSE);
        return;
    }
    snprintf(l->names[l->depth++], sizeof l->names[0], "%s", name);
    dsc_buf_reset(&l->text);
}

static void XMLCALL leaf_text(void *ud, const XML_Char *s, int len)
{
    leaves *l = ud;
    if (l->text.len + (size_t)len > MAX_TEXT) {
        l->err = DSC_EPROTO;
        XML_StopParser(l->xp, XML_FALSE);
        return;
    }
    dsc_buf_add(&l->text, s, (size_t)len);
}

static void XMLCALL leaf_end(void *ud, const XML_Char *name)
{
    (void)name;
    leaves *l = ud;
    for (size_t i = 0; i < l->n; i++) {
        if (l->out[i] || !ends_with(l, l->paths[i]))
            continue;
        l->out[i] = dsc_strdup(l->text.data ? l->text.data : "");
        if (!l->out[i]) {
            l->err = DSC_ENOMEM;
            XML_StopParser(l->xp, XML_FALSE);
        }
    }
    dsc_buf_reset(&l->text);
    l->depth--;
}

int dsc_xml_leaves(const char *xml, size_t len, const char *const *paths,
                   size_t n, char **out)
{
    leaves l = { .paths = paths, .out = out, .n = n };
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    l.xp = XML_ParserCreate(NULL);
    if (!l.xp)
        return DSC_ENOMEM;
    XML_SetUserData(l.xp, &l);
    XML_SetElementHandler(l.xp, leaf_start, leaf_end);
    XML_SetCharacterDataHandler(l.xp, leaf_text);
    int rc = 0;
    if (len > INT32_MAX) {
        rc = dsc_fail(DSC_EPROTO, "XML body too large");
    } else if (XML_Parse(l.xp, xml, (int)len, XML_TRUE) != XML_STATUS_OK ||
               l.err || dsc_buf_oom(&l.text)) {
        rc = dsc_buf_oom(&l.text) ? DSC_ENOMEM
           : l.err == DSC_ENOMEM ? DSC_ENOMEM
           : l.err ? dsc_fail(DSC_EPROTO, "XML document too deep or field "
                              "too long")
           : dsc_fail(DSC_EPROTO, "malformed XML at line %lu: %s",
                      (unsigned long)XML_GetCurrentLineNumber(l.xp),
                      XML_ErrorString(XML_GetErrorCode(l.xp)));
    }
    XML_ParserFree(l.xp);
    dsc_buf_free(&l.text);
    if (rc)
        for (size_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    return rc;
}
