/* libFuzzer target: the AWS credentials/config INI parser. */
#include <stdint.h>
#include <string.h>
#include "s3/ini.h"

static int count(void *arg, const char *section, const char *key,
                 const char *value)
{
    /* Touch every byte the parser hands out. */
    size_t *n = arg;
    *n += strlen(section) + strlen(key) + strlen(value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    dsc_ini_parse((const char *)data, size, count, &n);
    return 0;
}
