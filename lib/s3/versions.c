/* Versioned buckets: is versioning on, and the current version of each key
 * (ListObjectVersions), so a snapshot can pin GETs to version ids. */
#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include "s3/client.h"

#define MAX_TEXT (64 * 1024)
#define MAX_DEPTH 16
#define NAME_MAX_LEN 32

/* The leaves we read, by depth: 2 under the root, 3 under an entry. */
enum { F_KEY, F_VID, F_LATEST, F_ETAG, F_SIZE, F_LM, F_NFIELDS };
static const char *const entry_fields[F_NFIELDS] = {
    "Key", "VersionId", "IsLatest", "ETag", "Size", "LastModified",
};
enum { T_TRUNC, T_NEXT_KEY, T_NEXT_VID, T_STATUS, T_NFIELDS };
static const char *const top_fields[T_NFIELDS] = {
    "IsTruncated", "NextKeyMarker", "NextVersionIdMarker", "Status",
};

typedef struct vparser {
    XML_Parser xp;
    const char *root;              /* the document element we expect */
    int depth, root_ok, err;
    char names[4][NAME_MAX_LEN];   /* element names at depths 1..3 */
    dsc_buf text;
    int capture;                   /* index+1 of the leaf being read */
    char *entry[F_NFIELDS];        /* the open <Version>/<DeleteMarker> */
    char *top[T_NFIELDS];
    int64_t count;                 /* current versions reported */
    int stopped;                   /* by the callback */
    dsc_s3_version_cb cb;
    void *arg;
} vparser;

static int find(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static void stop(vparser *p, int err)
{
    if (!p->err)
        p->err = err;
    XML_StopParser(p->xp, XML_FALSE);
}

static int in_entry(const vparser *p)
{
    return strcmp(p->names[1], "Version") == 0 ||
           strcmp(p->names[1], "DeleteMarker") == 0;
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs)
{
    (void)attrs;
    vparser *p = ud;
    if (p->depth >= MAX_DEPTH) {
        stop(p, DSC_EPROTO);
        return;
    }
    p->depth++;
    if (p->depth <= 3)
        snprintf(p->names[p->depth - 1], NAME_MAX_LEN, "%s", name);
    if (p->depth == 1)
        p->root_ok = strcmp(name, p->root) == 0;
    dsc_buf_reset(&p->text);
    int i = -1;
    if (p->depth == 2)
        i = find(top_fields, T_NFIELDS, name);
    else if (p->depth == 3 && in_entry(p))
        i = T_NFIELDS + find(entry_fields, F_NFIELDS, name);
    p->capture = i >= 0 && (p->depth == 2 || i >= T_NFIELDS) ? i + 1 : 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    vparser *p = ud;
    if (!p->capture)
        return;
    if (p->text.len + (size_t)len > MAX_TEXT)
        stop(p, DSC_EPROTO);
    else if (dsc_buf_add(&p->text, s, (size_t)len))
        stop(p, DSC_ENOMEM);
}

static void clear_entry(vparser *p)
{
    for (int i = 0; i < F_NFIELDS; i++) {
        free(p->entry[i]);
        p->entry[i] = NULL;
    }
}

/* Name the request in a parse failure (the message is copied first: the
 * new one is written where it lives). */
static int parse_failed(int rc, const char *what, const char *bucket,
                        const char *prefix)
{
    char why[512];
    snprintf(why, sizeof why, "%s", dsc_errmsg());
    return dsc_fail(rc, "%s s3://%s%s%s: %s", what, bucket, prefix ? "/" : "",
                    prefix ? prefix : "", why);
}

static void end_entry(vparser *p)
{
    char **e = p->entry;
    int is_version = strcmp(p->names[1], "Version") == 0;
    uint64_t size = 0;
    if (!e[F_KEY] || !e[F_VID] || !dsc_version_id_ok(e[F_VID], strlen(e[F_VID])) ||
        (is_version && dsc_parse_u64(e[F_SIZE], &size))) {
        dsc_fail(DSC_EPROTO, "a version entry without Key, a valid VersionId "
                 "or Size");
        stop(p, DSC_EPROTO);
        return;
    }
    int latest = e[F_LATEST] && strcmp(e[F_LATEST], "true") == 0;
    if (is_version && latest) {
        p->count++;
        int rc = p->cb(p->arg, e[F_KEY], size, e[F_ETAG] ? e[F_ETAG] : "",
                       e[F_LM] ? e[F_LM] : "", e[F_VID]);
        if (rc) {
            p->stopped = 1;
            stop(p, DSC_ECANCELED);
        }
    }
    clear_entry(p);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    vparser *p = ud;
    if (p->capture) {
        int i = p->capture - 1;
        char **slot = i < T_NFIELDS ? &p->top[i] : &p->entry[i - T_NFIELDS];
        free(*slot);
        *slot = dsc_strdup(p->text.data ? p->text.data : "");
        p->capture = 0;
        if (!*slot)
            stop(p, DSC_ENOMEM);
    } else if (p->depth == 2 && in_entry(p)) {
        end_entry(p);
    }
    p->depth--;
}

static int parse(vparser *p, const dsc_buf *body)
{
    p->xp = XML_ParserCreate(NULL);
    if (!p->xp)
        return DSC_ENOMEM;
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    int rc = 0;
    if (body->len > INT32_MAX)
        rc = dsc_fail(DSC_EPROTO, "XML body too large");
    else if (XML_Parse(p->xp, body->data ? body->data : "", (int)body->len,
                       XML_TRUE) != XML_STATUS_OK)
        rc = p->err ? p->err
                    : dsc_fail(DSC_EPROTO, "malformed XML at line %lu: %s",
                               (unsigned long)XML_GetCurrentLineNumber(p->xp),
                               XML_ErrorString(XML_GetErrorCode(p->xp)));
    else if (!p->root_ok)
        rc = dsc_fail(DSC_EPROTO, "expected a <%s> document", p->root);
    XML_ParserFree(p->xp);
    p->xp = NULL;
    dsc_buf_reset(&p->text);
    clear_entry(p);
    return rc;
}

static void vparser_free(vparser *p)
{
    dsc_buf_free(&p->text);
    clear_entry(p);
    for (int i = 0; i < T_NFIELDS; i++)
        free(p->top[i]);
}

int dsc_s3_versioning(dsc_s3 *s3, const char *bucket)
{
    dsc_kv q = { "versioning", "" };
    dsc_buf body = { 0 };
    vparser p = { .root = "VersioningConfiguration" };
    int rc = dsc_s3_bucket_get(s3, "GET versioning", 0, bucket, &q, 1, &body);
    if (!rc)
        rc = parse(&p, &body);
    if (rc == DSC_EPROTO)
        rc = parse_failed(rc, "GET versioning", bucket, NULL);
    if (!rc)
        rc = p.top[T_STATUS] && *p.top[T_STATUS] ? DSC_S3_VERSIONED
                                                 : DSC_S3_UNVERSIONED;
    vparser_free(&p);
    dsc_buf_free(&body);
    return rc;
}

int64_t dsc_s3_list_versions(dsc_s3 *s3, const char *bucket,
                             const char *prefix, dsc_s3_version_cb cb,
                             void *arg)
{
    vparser p = { .root = "ListVersionsResult", .cb = cb, .arg = arg };
    char *key_marker = NULL, *vid_marker = NULL;
    dsc_buf body = { 0 };
    int rc = 0;
    for (;;) {
        dsc_kv q[4];
        size_t nq = 0;
        q[nq++] = (dsc_kv){ "prefix", prefix };
        if (key_marker)
            q[nq++] = (dsc_kv){ "key-marker", key_marker };
        if (vid_marker)
            q[nq++] = (dsc_kv){ "version-id-marker", vid_marker };
        q[nq++] = (dsc_kv){ "versions", "" };
        rc = dsc_s3_bucket_get(s3, "LIST versions", 1, bucket, q, nq, &body);
        if (rc)
            break;
        for (int i = 0; i < T_NFIELDS; i++) {
            free(p.top[i]);
            p.top[i] = NULL;
        }
        rc = parse(&p, &body);
        if (rc) {
            if (p.stopped)
                rc = dsc_fail(DSC_ECANCELED, "listing stopped by callback");
            else if (rc == DSC_EPROTO)
                rc = parse_failed(rc, "LIST versions", bucket, prefix);
            break;
        }
        if (!p.top[T_TRUNC] || strcmp(p.top[T_TRUNC], "true") != 0)
            break;
        if (!p.top[T_NEXT_KEY] || !*p.top[T_NEXT_KEY]) {
            rc = dsc_fail(DSC_EPROTO, "LIST versions s3://%s/%s: truncated "
                          "page without NextKeyMarker", bucket, prefix);
            break;
        }
        free(key_marker);
        free(vid_marker);
        key_marker = p.top[T_NEXT_KEY];
        vid_marker = p.top[T_NEXT_VID];
        p.top[T_NEXT_KEY] = p.top[T_NEXT_VID] = NULL;
    }
    free(key_marker);
    free(vid_marker);
    vparser_free(&p);
    dsc_buf_free(&body);
    return rc ? rc : p.count;
}
