/* libFuzzer target: s3:// URLs, endpoint URLs and request targets. The
 * parsers must reject or accept without crashing, and what they accept
 * must round-trip: a parsed bucket/key rebuilds the same URL. */
#include <stdlib.h>
#include <string.h>
#include "net/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    dsc_s3url u;
    if (dsc_s3url_parse(s, &u) == 0) {
        dsc_buf again = { 0 };
        dsc_buf_printf(&again, "s3://%s%s%s", u.bucket,
                       strchr(s + 5, '/') ? "/" : "", u.key);
        if (strlen(s) == size && strcmp(again.data, s) != 0)
            abort();
        dsc_endpoint ep = { 0, (char *)"example.com", 0 };
        for (int a = 0; a <= 2; a++) {
            dsc_target t;
            if (dsc_target_build(&t, &ep, a, u.bucket, u.key) == 0)
                dsc_target_free(&t);
        }
        dsc_buf_free(&again);
        dsc_s3url_free(&u);
    }
    dsc_endpoint ep;
    if (dsc_endpoint_parse(s, &ep) == 0) {
        dsc_target t;
        if (dsc_target_build(&t, &ep, DSC_ADDRESSING_AUTO, "bucket", "k/ey") == 0)
            dsc_target_free(&t);
        dsc_endpoint_free(&ep);
    }
    dsc_buf enc = { 0 };
    dsc_uri_encode(&enc, s, size, size & 1);
    dsc_buf_free(&enc);
    free(s);
    return 0;
}
