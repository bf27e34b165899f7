/* libFuzzer target: the JSON reader, on what a credential endpoint or a
 * credential_process could print. */
#include <stdint.h>
#include <string.h>
#include "core/json.h"

static const char *const paths[] = {
    "", "AccessKeyId", "roleCredentials.accessKeyId",
    "roleCredentials.expiration", "a.b.c.d", "Expiration",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        dsc_json_val v;
        if (dsc_json_get((const char *)data, size, paths[i], &v) == 0) {
            /* Touch every byte handed out. */
            volatile size_t n = strlen(v.text);
            (void)n;
            int64_t t;
            (void)dsc_time_iso8601(v.text, &t);
            (void)dsc_time_epoch_ms(v.text, &t);
            dsc_json_val_free(&v);
        }
    }
    return 0;
}
