/* Where credentials and region come from: config, environment, profiles. */
#ifndef DSC_S3_CREDS_H
#define DSC_S3_CREDS_H

#include "dsc.h"

typedef struct dsc_creds {
    char *access_key;       /* NULL: anonymous */
    char *secret_key;
    char *session_token;    /* may be NULL */
    char *region;           /* always set after resolve */
    char *endpoint;         /* from config/env/profile, NULL: AWS default */
    const char *source;     /* "config", "env", "profile", "anonymous" */
} dsc_creds;

/* Resolve with the AWS precedence: explicit config, then the environment,
 * then the profile files. A profile named explicitly (config or
 * AWS_PROFILE) that exists in neither file is DSC_ECREDS; so is an access
 * key without a secret. No credentials anywhere means anonymous. */
int dsc_creds_resolve(const dsc_config *cfg, dsc_creds *out);
void dsc_creds_free(dsc_creds *c);

#endif
