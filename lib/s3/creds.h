/* Where credentials and region come from: config, environment, profile
 * files, STS, SSO, a credential process, the container endpoint and IMDS,
 * in the AWS SDKs' default order (botocore's is the reference). */
#ifndef DSC_S3_CREDS_H
#define DSC_S3_CREDS_H

#include <stdint.h>
#include "dsc.h"

/* One set of signing keys and when it stops working. */
typedef struct dsc_keys {
    char *access_key;       /* NULL: anonymous */
    char *secret_key;
    char *session_token;    /* may be NULL */
    int64_t expires;        /* unix seconds; 0: never (static keys) */
} dsc_keys;

/* How to fetch keys again: immutable after resolve, so any thread of any
 * process (also a fork()ed child) may call dsc_creds_fetch on it. */
typedef struct dsc_cred_source dsc_cred_source;

typedef struct dsc_creds {
    dsc_keys keys;          /* the keys resolve fetched */
    char *region;           /* always set after resolve */
    const char *region_source;  /* "config", "env", "profile", "imds",
                                   "default" */
    char *endpoint;         /* from config/env/profile, NULL: AWS default */
    int addressing;         /* the profile's s3 addressing_style as
                               DSC_ADDRESSING_*, or -1 when it has none */
    const char *source;     /* "config", "env", "profile", "assume-role",
                               "web-identity", "sso", "process",
                               "container", "imds", "anonymous" */
    dsc_cred_source *refresh;   /* NULL: the keys never change */
} dsc_creds;

/* Resolve in the SDKs' order and fetch the first keys. No credentials
 * anywhere is DSC_ECREDS naming every source tried, unless anonymous was
 * asked for (config or DSC_ANONYMOUS=1). A source that is configured but
 * fails (unreadable token file, STS error, malformed answer, a hung
 * endpoint past its bounded wait) is DSC_ECREDS naming that source. */
int dsc_creds_resolve(const dsc_config *cfg, dsc_creds *out);

/* Fetch fresh keys from c->refresh (non-NULL). Blocking, bounded by the
 * source's timeouts; reentrant and fork-safe (makes its own connections).
 * DSC_ECREDS naming the source when it fails. */
int dsc_creds_fetch(const dsc_creds *c, dsc_keys *out);

int dsc_keys_copy(dsc_keys *dst, const dsc_keys *src);
void dsc_keys_free(dsc_keys *k);    /* wipes the secret */
void dsc_creds_free(dsc_creds *c);

#endif
