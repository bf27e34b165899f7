/* The snapshot file format (docs/SNAPSHOT.md): encoding a list of objects
 * into one image, and checking and reading an image in place, with no
 * allocation per entry. Depends on core only, so the fuzz target and the
 * unit test can use it alone. */
#ifndef DSC_API_SNAPFILE_H
#define DSC_API_SNAPFILE_H

#include "core/common.h"

#define DSC_SNAP_MAGIC "DSCSNAP\0"
#define DSC_SNAP_FORMAT 1
#define DSC_SNAP_HEADER 64          /* fixed part of the header */
#define DSC_SNAP_RECORD 56          /* bytes of one entry's record */
#define DSC_SNAP_KEY_MAX 1024       /* S3's longest key */
#define DSC_SNAP_STR_MAX 4096       /* origin, bucket, prefix */
/* "<32 hex>" and "<32 hex>-<parts>" in quotes: ETags of S3's MD5 kinds. */
#define DSC_SNAP_ETAG_MAX 80        /* text of a compact ETag, with NUL */

/* Header flags. */
#define DSC_SNAP_F_VERSIONS 1u      /* listed from a versioned bucket:
                                       entries carry version ids */

/* How a record keeps its ETag. */
enum {
    DSC_SNAP_ETAG_TEXT = 0,         /* as text in the blob */
    DSC_SNAP_ETAG_MD5 = 1,          /* "<32 hex>": 16 raw bytes */
    DSC_SNAP_ETAG_MD5_PARTS = 2,    /* "<32 hex>-<parts>": 16 bytes + parts */
};

/* One object to encode. */
typedef struct dsc_snap_obj {
    const char *key;
    size_t key_len;
    uint64_t size;
    const char *etag;               /* with its quotes, as S3 sent it */
    size_t etag_len;
    const char *version_id;         /* NULL: none (needs DSC_SNAP_F_VERSIONS) */
    size_t version_id_len;
} dsc_snap_obj;

/* What the header says. */
typedef struct dsc_snap_head {
    uint32_t format;
    uint32_t flags;                 /* DSC_SNAP_F_* */
    int64_t created_ms;             /* Unix time */
    const char *origin;             /* dsc_s3_origin of the lister */
    const char *bucket;
    const char *prefix;             /* "" for a whole bucket */
} dsc_snap_head;

/* A checked image, read in place: pointers go into img. */
typedef struct dsc_snap_view {
    dsc_snap_head head;
    const unsigned char *img;
    size_t len;
    uint64_t n;                     /* entries */
    const unsigned char *recs;      /* n records of DSC_SNAP_RECORD bytes */
    const char *blob;               /* keys (NUL-ended) and text ETags */
    uint64_t blob_len;
} dsc_snap_view;

/* One entry as stored. */
typedef struct dsc_snap_rec {
    const char *key;                /* NUL-terminated, in the image */
    uint32_t key_len;
    uint64_t size;
    int etag_kind;                  /* DSC_SNAP_ETAG_* */
    const unsigned char *md5;       /* 16 bytes, MD5 kinds */
    uint32_t parts;                 /* DSC_SNAP_ETAG_MD5_PARTS */
    const char *etag_text;          /* DSC_SNAP_ETAG_TEXT, NUL-terminated */
    uint32_t etag_len;
    const char *version_id;         /* NUL-terminated, or NULL: none */
    uint32_t version_id_len;
} dsc_snap_rec;

/* Encode objs (sorted here by key, in place) under head into *out, a
 * whole file image. DSC_EINVAL for duplicate keys, keys outside the
 * prefix, or strings too long; DSC_ENOMEM. */
int dsc_snap_encode(const dsc_snap_head *head, dsc_snap_obj *objs, size_t n,
                    dsc_buf *out);

/* Check img as a snapshot file and describe it in *v (pointers into img,
 * which must stay alive and unchanged). Every failure is DSC_EINVAL with
 * a message naming `name` (a path or URL) and what is wrong. */
/* Before reading a file of file_len bytes whole: its first head_len
 * bytes (DSC_SNAP_HEADER, or all of a shorter file) say it is a snapshot
 * of exactly that length. 0 or DSC_EINVAL naming name. */
int dsc_snap_check_head(const void *head, size_t head_len, uint64_t file_len,
                        const char *name);
int dsc_snap_parse(const void *img, size_t len, const char *name,
                   dsc_snap_view *v);

/* Entry i < v->n. */
void dsc_snap_get(const dsc_snap_view *v, uint64_t i, dsc_snap_rec *r);

/* Index of key, or -1 when absent (binary search). */
int64_t dsc_snap_find(const dsc_snap_view *v, const char *key, size_t key_len);

/* The ETag of r as S3 sent it, into out[DSC_SNAP_ETAG_MAX] for the MD5
 * kinds; text ETags are returned in place. Returns the text. */
const char *dsc_snap_etag(const dsc_snap_rec *r, char *out);

/* Whether the ETags (as text) of two records are equal. */
int dsc_snap_etag_eq(const dsc_snap_rec *a, const dsc_snap_rec *b);

/* Whether the key of r orders before/equals/after key: <0, 0, >0. */
int dsc_snap_keycmp(const char *a, size_t al, const char *b, size_t bl);

#endif
