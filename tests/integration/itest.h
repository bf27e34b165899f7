/* Shared helpers of the integration tests: the s3rver endpoint and the
 * fixture objects that tests/integration/fixtures.py uploaded. */
#ifndef DSC_ITEST_H
#define DSC_ITEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dsc.h"

typedef struct fixture {
    char url[2048];
    char path[2048];
    uint64_t size;
} fixture;

static inline const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run through tests/run.sh\n", name);
        exit(1);
    }
    return v;
}

/* Loads manifest.tsv; returns the count. */
static inline int itest_fixtures(fixture *out, int max)
{
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.tsv", itest_env("DSC_TEST_FIXTURES"));
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    int n = 0;
    char line[2048];
    while (n < max && fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = *t2 = '\0';
        snprintf(out[n].url, sizeof out[n].url, "%s", line);
        snprintf(out[n].path, sizeof out[n].path, "%s", t1 + 1);
        out[n].size = strtoull(t2 + 1, NULL, 10);
        n++;
    }
    fclose(f);
    return n;
}

static inline const fixture *itest_find(const fixture *fx, int n,
                                        const char *key_suffix)
{
    size_t sl = strlen(key_suffix);
    for (int i = 0; i < n; i++) {
        size_t ul = strlen(fx[i].url);
        if (ul >= sl && strcmp(fx[i].url + ul - sl, key_suffix) == 0)
            return &fx[i];
    }
    fail_msg("fixture %s missing", key_suffix);
    return NULL;
}

static inline unsigned char *itest_slurp(const char *path, uint64_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(buf);
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, size, f), size);
    fclose(f);
    return buf;
}

/* A context on the test server, credentials from the environment, no
 * node cache: these tests are about the S3 path itself. */
static inline dsc_ctx *itest_ctx(void)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    cfg.endpoint = itest_env("DSC_TEST_ENDPOINT");
    cfg.cache_dir = "";
    dsc_ctx *ctx = NULL;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc)
        fail_msg("dsc_ctx_open: %s: %s", dsc_strerror(rc), dsc_errmsg());
    return ctx;
}

#endif
