/* libFuzzer target: S3 listing pages and error bodies, and STS answers
 * (leaves by path), as a hostile or broken server could send them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "s3/xml.h"

static int on_obj(void *arg, const char *key, uint64_t size,
                  const char *etag, const char *lm)
{
    size_t *n = arg;
    *n += strlen(key) + strlen(etag) + strlen(lm) + (size & 1);
    return *n > (1u << 30);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    dsc_s3_list_page page;
    if (dsc_s3xml_parse_list((const char *)data, size, on_obj, &n, &page) == 0)
        dsc_s3_list_page_free(&page);
    static const char *const paths[] = { "Credentials/AccessKeyId",
                                         "Error/Code", "Message" };
    char *v[3];
    if (dsc_xml_leaves((const char *)data, size, paths, 3, v) == 0)
        for (int i = 0; i < 3; i++)
            free(v[i]);
    dsc_s3_error e;
    if (dsc_s3xml_parse_error((const char *)data, size, &e) == 0)
        dsc_s3_error_free(&e);
    return 0;
}
