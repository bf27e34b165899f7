/* The snapshot file format, byte by byte in docs/SNAPSHOT.md. An image is
 * checked once, whole, and then read in place: loading 10^7 entries costs
 * one read, one hash and one pass, with no allocation per entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "api/snapfile.h"
#include "net/url.h"

/* Little-endian fields at any alignment. */
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int dsc_snap_keycmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int obj_cmp(const void *x, const void *y)
{
    const dsc_snap_obj *a = x, *b = y;
    return dsc_snap_keycmp(a->key, a->key_len, b->key, b->key_len);
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(dsc_isdigit(s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* The compact kind of an ETag: S3's MD5 forms, written exactly as S3
 * writes them (lower-case hex, no leading zero in the part count), so
 * the text comes back byte for byte. */
static int etag_kind(const char *e, size_t n, unsigned char md5[16],
                     uint32_t *parts)
{
    *parts = 0;
    if (n < 34 || e[0] != '"' || e[n - 1] != '"' || !is_lower_hex(e + 1, 32))
        return DSC_SNAP_ETAG_TEXT;
    if (n == 34) {
        dsc_hex_decode(e + 1, md5, 16);
        return DSC_SNAP_ETAG_MD5;
    }
    size_t digits = n - 35;
    if (e[33] != '-' || digits < 1 || digits > 8 || e[34] == '0')
        return DSC_SNAP_ETAG_TEXT;
    uint32_t p = 0;
    for (size_t i = 0; i < digits; i++) {
        if (!dsc_isdigit(e[34 + i]))
            return DSC_SNAP_ETAG_TEXT;
        p = p * 10 + (uint32_t)(e[34 + i] - '0');
    }
    dsc_hex_decode(e + 1, md5, 16);
    *parts = p;
    return DSC_SNAP_ETAG_MD5_PARTS;
}

/* A key of len bytes (not NUL-ended) that an s3:// URL may hold. */
static int key_ok(const char *key, size_t len)
{
    char text[DSC_SNAP_KEY_MAX + 1];
    if (len == 0 || len > DSC_SNAP_KEY_MAX || memchr(key, 0, len))
        return 0;
    memcpy(text, key, len);
    text[len] = '\0';
    return dsc_key_text_ok(text);
}

static int head_strings_ok(const dsc_snap_head *h)
{
    return h->origin && h->bucket && h->prefix && *h->bucket &&
           strlen(h->origin) < DSC_SNAP_STR_MAX &&
           strlen(h->bucket) < DSC_SNAP_STR_MAX &&
           strlen(h->prefix) <= DSC_SNAP_KEY_MAX;
}

/* Records and blob of the sorted objects. */
static int encode_entries(const dsc_snap_head *h, const dsc_snap_obj *o,
                          size_t n, unsigned char *recs, dsc_buf *blob)
{
    size_t plen = strlen(h->prefix);
    for (size_t i = 0; i < n; i++) {
        char q[200];
        if (!key_ok(o[i].key, o[i].key_len))
            return dsc_fail(DSC_EINVAL, "snapshot: key '%s' is empty, too "
                            "long, or not text an s3:// URL may hold",
                            dsc_printable(o[i].key, q, sizeof q));
        if (o[i].key_len < plen || memcmp(o[i].key, h->prefix, plen))
            return dsc_fail(DSC_EINVAL, "snapshot: key '%s' is outside the "
                            "prefix '%s'", dsc_printable(o[i].key, q, sizeof q),
                            h->prefix);
        if (i && obj_cmp(&o[i - 1], &o[i]) == 0)
            return dsc_fail(DSC_EINVAL, "snapshot: key '%s' appears twice",
                            dsc_printable(o[i].key, q, sizeof q));
        if (o[i].etag_len > DSC_SNAP_KEY_MAX || !dsc_etag_ok(o[i].etag, o[i].etag_len))
            return dsc_fail(DSC_EINVAL, "snapshot: ETag of '%s' is too long "
                            "or not an entity tag", dsc_printable(o[i].key, q, sizeof q));
        if (o[i].version_id &&
            (!(h->flags & DSC_SNAP_F_VERSIONS) ||
             !dsc_version_id_ok(o[i].version_id, o[i].version_id_len)))
            return dsc_fail(DSC_EINVAL, "snapshot: version id of '%s' is not "
                            "one (or the snapshot is not of versions)",
                            dsc_printable(o[i].key, q, sizeof q));
        unsigned char *r = recs + i * DSC_SNAP_RECORD;
        memset(r, 0, DSC_SNAP_RECORD);
        put64(r, o[i].size);
        put64(r + 8, blob->len);
        put32(r + 16, (uint32_t)o[i].key_len);
        dsc_buf_add(blob, o[i].key, o[i].key_len);
        dsc_buf_add(blob, "", 1);
        uint32_t parts;
        int kind = etag_kind(o[i].etag, o[i].etag_len, r + 24, &parts);
        r[20] = (unsigned char)kind;
        put32(r + 40, parts);
        if (kind == DSC_SNAP_ETAG_TEXT) {
            put64(r + 24, blob->len);
            put32(r + 32, (uint32_t)o[i].etag_len);
            dsc_buf_add(blob, o[i].etag, o[i].etag_len);
            dsc_buf_add(blob, "", 1);
        }
        if (o[i].version_id) {
            put32(r + 44, (uint32_t)o[i].version_id_len);
            put64(r + 48, blob->len);
            dsc_buf_add(blob, o[i].version_id, o[i].version_id_len);
            dsc_buf_add(blob, "", 1);
        }
    }
    return dsc_buf_oom(blob) ? DSC_ENOMEM : 0;
}

int dsc_snap_encode(const dsc_snap_head *h, dsc_snap_obj *objs, size_t n,
                    dsc_buf *out)
{
    if (!head_strings_ok(h))
        return dsc_fail(DSC_EINVAL, "snapshot: origin, bucket or prefix "
                        "missing or too long");
    if (h->flags & ~DSC_SNAP_F_VERSIONS)
        return dsc_fail(DSC_EINVAL, "snapshot: unknown flags 0x%x", h->flags);
    if (n > (SIZE_MAX - 4096) / (DSC_SNAP_RECORD + 2 * DSC_SNAP_KEY_MAX))
        return dsc_fail(DSC_EINVAL, "snapshot: %zu entries is too many", n);
    if (n)
        qsort(objs, n, sizeof *objs, obj_cmp);
    size_t ol = strlen(h->origin), bl = strlen(h->bucket), pl = strlen(h->prefix);
    size_t strs = pad8(ol + bl + pl + 3);
    unsigned char *recs = malloc(n ? n * DSC_SNAP_RECORD : 1);
    dsc_buf blob = { 0 };
    int rc = recs ? encode_entries(h, objs, n, recs, &blob) : DSC_ENOMEM;
    if (rc)
        goto done;
    unsigned char hd[DSC_SNAP_HEADER] = { 0 };
    size_t total = DSC_SNAP_HEADER + strs + n * DSC_SNAP_RECORD + blob.len + 8;
    memcpy(hd, DSC_SNAP_MAGIC, 8);
    put32(hd + 8, DSC_SNAP_FORMAT);
    put32(hd + 12, h->flags);
    put64(hd + 16, (uint64_t)h->created_ms);
    put64(hd + 24, n);
    put64(hd + 32, blob.len);
    put64(hd + 40, total);
    put32(hd + 48, DSC_SNAP_RECORD);
    put16(hd + 52, (uint16_t)ol);
    put16(hd + 54, (uint16_t)bl);
    put16(hd + 56, (uint16_t)pl);
    static const char zeros[8];
    dsc_buf_reset(out);
    dsc_buf_add(out, hd, sizeof hd);
    dsc_buf_add(out, h->origin, ol + 1);
    dsc_buf_add(out, h->bucket, bl + 1);
    dsc_buf_add(out, h->prefix, pl + 1);
    dsc_buf_add(out, zeros, strs - (ol + bl + pl + 3));
    dsc_buf_add(out, recs, n * DSC_SNAP_RECORD);
    dsc_buf_add(out, blob.data ? blob.data : "", blob.len);
    if (dsc_buf_oom(out)) {
        rc = DSC_ENOMEM;
        goto done;
    }
    unsigned char sum[8];
    put64(sum, XXH3_64bits(out->data, out->len));
    dsc_buf_add(out, sum, 8);
    rc = dsc_buf_oom(out) ? DSC_ENOMEM : 0;
done:
    free(recs);
    dsc_buf_free(&blob);
    return rc;
}

/* A NUL-ended string of len bytes at s[0..len] with no NUL inside. */
static int cstr_ok(const char *s, size_t len)
{
    return s[len] == '\0' && !memchr(s, 0, len);
}

/* Magic, format and length from the fixed header of a file of len bytes
 * (p holds at least DSC_SNAP_HEADER bytes when len does). */
static int check_head(const unsigned char *p, uint64_t len, const char *nm)
{
    if (len < DSC_SNAP_HEADER + 8)
        return dsc_fail(DSC_EINVAL, "snapshot %s: truncated (%llu bytes; a "
                        "snapshot has at least %d)", nm, (unsigned long long)len,
                        DSC_SNAP_HEADER + 8);
    if (memcmp(p, DSC_SNAP_MAGIC, 8))
        return dsc_fail(DSC_EINVAL, "snapshot %s: not a libdsc snapshot "
                        "(bad magic)", nm);
    uint32_t format = get32(p + 8);
    if (format != DSC_SNAP_FORMAT)
        return dsc_fail(DSC_EINVAL, "snapshot %s: format version %u; this "
                        "libdsc %s reads version %d", nm, format,
                        DSC_VERSION_STRING, DSC_SNAP_FORMAT);
    uint64_t total = get64(p + 40);
    if (total != len)
        return dsc_fail(DSC_EINVAL, "snapshot %s: %s (%llu bytes; its header "
                        "says %llu)", nm, total > len ? "truncated"
                        : "has bytes past its end", (unsigned long long)len,
                        (unsigned long long)total);
    return 0;
}

int dsc_snap_check_head(const void *head, size_t head_len, uint64_t file_len,
                        const char *name)
{
    char nm[300];
    dsc_printable(name ? name : "(memory)", nm, sizeof nm);
    if (head_len < DSC_SNAP_HEADER)
        return check_head(head, head_len < file_len ? head_len : file_len, nm);
    return check_head(head, file_len, nm);
}

static int parse_head(const unsigned char *p, size_t len, const char *nm,
                      dsc_snap_view *v)
{
    int rc = check_head(p, len, nm);
    if (rc)
        return rc;
    uint32_t format = get32(p + 8);
    if (get64(p + len - 8) != XXH3_64bits(p, len - 8))
        return dsc_fail(DSC_EINVAL, "snapshot %s: checksum mismatch (the "
                        "file is corrupt)", nm);
    v->head.format = format;
    v->head.flags = get32(p + 12);
    v->head.created_ms = (int64_t)get64(p + 16);
    if (v->head.flags & ~DSC_SNAP_F_VERSIONS)
        return dsc_fail(DSC_EINVAL, "snapshot %s: flags 0x%x unknown to this "
                        "libdsc %s", nm, v->head.flags, DSC_VERSION_STRING);
    if (get32(p + 48) != DSC_SNAP_RECORD || get16(p + 58) || get32(p + 60))
        return dsc_fail(DSC_EINVAL, "snapshot %s: record size %u or reserved "
                        "header bytes unknown to this libdsc", nm, get32(p + 48));
    size_t ol = get16(p + 52), bl = get16(p + 54), pl = get16(p + 56);
    size_t strs = pad8(ol + bl + pl + 3);
    v->n = get64(p + 24);
    v->blob_len = get64(p + 32);
    /* Every count must fit the file exactly; checked in steps that cannot
     * overflow. */
    size_t room = len - DSC_SNAP_HEADER - 8;
    if (strs > room || v->n > (room - strs) / DSC_SNAP_RECORD ||
        v->blob_len != room - strs - v->n * DSC_SNAP_RECORD)
        return dsc_fail(DSC_EINVAL, "snapshot %s: %llu entries and %llu blob "
                        "bytes do not fit its %zu bytes", nm,
                        (unsigned long long)v->n,
                        (unsigned long long)v->blob_len, len);
    const char *s = (const char *)p + DSC_SNAP_HEADER;
    if (!cstr_ok(s, ol) || !cstr_ok(s + ol + 1, bl) ||
        !cstr_ok(s + ol + bl + 2, pl) || bl == 0 || pl > DSC_SNAP_KEY_MAX ||
        !dsc_bucket_name_ok(s + ol + 1))
        return dsc_fail(DSC_EINVAL, "snapshot %s: malformed origin, bucket or "
                        "prefix", nm);
    v->head.origin = s;
    v->head.bucket = s + ol + 1;
    v->head.prefix = s + ol + bl + 2;
    v->recs = p + DSC_SNAP_HEADER + strs;
    v->blob = (const char *)v->recs + v->n * DSC_SNAP_RECORD;
    return 0;
}

/* No version id (length and offset 0), or one within the blob in a
 * snapshot of versions. */
static int version_ok(const dsc_snap_view *v, const unsigned char *r)
{
    uint32_t vl = get32(r + 44);
    uint64_t vo = get64(r + 48);
    if (vl == 0)
        return vo == 0;
    return (v->head.flags & DSC_SNAP_F_VERSIONS) && vl <= DSC_VERSION_ID_MAX &&
           vo < v->blob_len && vl < v->blob_len - vo &&
           cstr_ok(v->blob + vo, vl) && dsc_version_id_ok(v->blob + vo, vl);
}

/* Entry i's fields within bounds, and its key after the previous one. */
static int check_entry(const dsc_snap_view *v, uint64_t i, const char *nm)
{
    const unsigned char *r = v->recs + i * DSC_SNAP_RECORD;
    uint64_t ko = get64(r + 8);
    uint32_t kl = get32(r + 16);
    int kind = r[20];
    size_t plen = strlen(v->head.prefix);
    const char *why = NULL;
    if (kl == 0 || kl > DSC_SNAP_KEY_MAX || ko >= v->blob_len ||
        kl >= v->blob_len - ko || !cstr_ok(v->blob + ko, kl) ||
        !dsc_key_text_ok(v->blob + ko))
        why = "key out of bounds or malformed";
    else if (kl < plen || memcmp(v->blob + ko, v->head.prefix, plen))
        why = "key outside the snapshot's prefix";
    else if (r[21] || get16(r + 22))
        why = "unknown entry flags";
    else if (!version_ok(v, r))
        why = "version id out of bounds, malformed, or in a snapshot not "
              "of versions";
    else if (kind == DSC_SNAP_ETAG_MD5 && get32(r + 40))
        why = "part count on a plain MD5 ETag";
    else if (kind == DSC_SNAP_ETAG_MD5_PARTS &&
             (get32(r + 40) == 0 || get32(r + 40) > 99999999))
        why = "bad part count";
    else if (kind == DSC_SNAP_ETAG_TEXT) {
        uint64_t eo = get64(r + 24);
        uint32_t el = get32(r + 32);
        if (get32(r + 36) || get32(r + 40) || el > DSC_SNAP_KEY_MAX ||
            eo >= v->blob_len || el >= v->blob_len - eo ||
            !cstr_ok(v->blob + eo, el) || !dsc_etag_ok(v->blob + eo, el))
            why = "ETag out of bounds or not an entity tag";
    } else if (kind > DSC_SNAP_ETAG_MD5_PARTS)
        why = "unknown ETag kind";
    if (!why && i > 0) {
        const unsigned char *pr = r - DSC_SNAP_RECORD;
        if (dsc_snap_keycmp(v->blob + get64(pr + 8), get32(pr + 16),
                            v->blob + ko, kl) >= 0)
            why = "keys not sorted or duplicated";
    }
    return why ? dsc_fail(DSC_EINVAL, "snapshot %s: entry %llu: %s", nm,
                          (unsigned long long)i, why) : 0;
}

int dsc_snap_parse(const void *img, size_t len, const char *name,
                   dsc_snap_view *v)
{
    char nm[300];
    dsc_printable(name ? name : "(memory)", nm, sizeof nm);
    memset(v, 0, sizeof *v);
    int rc = parse_head(img, len, nm, v);
    for (uint64_t i = 0; !rc && i < v->n; i++)
        rc = check_entry(v, i, nm);
    if (rc) {
        memset(v, 0, sizeof *v);
        return rc;
    }
    v->img = img;
    v->len = len;
    return 0;
}

void dsc_snap_get(const dsc_snap_view *v, uint64_t i, dsc_snap_rec *out)
{
    const unsigned char *r = v->recs + i * DSC_SNAP_RECORD;
    memset(out, 0, sizeof *out);
    out->size = get64(r);
    out->key = v->blob + get64(r + 8);
    out->key_len = get32(r + 16);
    out->etag_kind = r[20];
    out->parts = get32(r + 40);
    if (out->etag_kind == DSC_SNAP_ETAG_TEXT) {
        out->etag_text = v->blob + get64(r + 24);
        out->etag_len = get32(r + 32);
    } else {
        out->md5 = r + 24;
    }
    out->version_id_len = get32(r + 44);
    out->version_id = out->version_id_len ? v->blob + get64(r + 48) : NULL;
}

int64_t dsc_snap_find(const dsc_snap_view *v, const char *key, size_t key_len)
{
    uint64_t lo = 0, hi = v->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const unsigned char *r = v->recs + mid * DSC_SNAP_RECORD;
        int c = dsc_snap_keycmp(v->blob + get64(r + 8), get32(r + 16), key,
                                key_len);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const char *dsc_snap_etag(const dsc_snap_rec *r, char *out)
{
    if (r->etag_kind == DSC_SNAP_ETAG_TEXT)
        return r->etag_text;
    out[0] = '"';
    dsc_hex_encode(r->md5, 16, out + 1);
    if (r->etag_kind == DSC_SNAP_ETAG_MD5_PARTS)
        snprintf(out + 33, DSC_SNAP_ETAG_MAX - 33, "-%u\"", r->parts);
    else
        memcpy(out + 33, "\"", 2);
    return out;
}

int dsc_snap_etag_eq(const dsc_snap_rec *a, const dsc_snap_rec *b)
{
    if (a->etag_kind != b->etag_kind)
        return 0;
    if (a->etag_kind == DSC_SNAP_ETAG_TEXT)
        return a->etag_len == b->etag_len &&
               memcmp(a->etag_text, b->etag_text, a->etag_len) == 0;
    return a->parts == b->parts && memcmp(a->md5, b->md5, 16) == 0;
}
