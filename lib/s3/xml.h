/* The two XML documents S3 sends us: error bodies and ListObjectsV2 pages. */
#ifndef DSC_S3_XML_H
#define DSC_S3_XML_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsc_s3_error {
    char *code;          /* "NoSuchKey" */
    char *message;
    char *request_id;
} dsc_s3_error;

/* Parse an <Error> document. 0 on success (fields may be NULL when
 * absent), DSC_EPROTO when it is not well-formed XML or not an <Error>. */
int dsc_s3xml_parse_error(const char *xml, size_t len, dsc_s3_error *out);
void dsc_s3_error_free(dsc_s3_error *e);

/* Called for each <Contents> entry; return non-zero to stop. */
typedef int (*dsc_s3xml_obj_cb)(void *arg, const char *key, uint64_t size,
                                const char *etag, const char *last_modified);

typedef struct dsc_s3_list_page {
    int truncated;
    char *next_token;    /* NextContinuationToken, NULL when absent */
    int64_t count;       /* <Contents> entries seen */
} dsc_s3_list_page;

/* Parse one ListObjectsV2 page. 0, the callback's non-zero value, or
 * DSC_EPROTO for malformed XML or an entry without Key or with a bad Size;
 * DSC_ENOMEM. */
int dsc_s3xml_parse_list(const char *xml, size_t len, dsc_s3xml_obj_cb cb,
                         void *arg, dsc_s3_list_page *page);
void dsc_s3_list_page_free(dsc_s3_list_page *p);

/* The text of the first element whose enclosing elements end with
 * paths[i] ("Credentials/AccessKeyId" matches .../Credentials/AccessKeyId)
 * into out[i] (malloc'd; NULL when there is none), for i < n. 0,
 * DSC_EPROTO (malformed XML), DSC_ENOMEM; on failure every out[i] is NULL.
 * For STS answers and their <ErrorResponse>. */
int dsc_xml_leaves(const char *xml, size_t len, const char *const *paths,
                   size_t n, char **out);

#endif
