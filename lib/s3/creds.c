/* Credential and region resolution following the AWS CLI's conventions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "s3/creds.h"
#include "s3/ini.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Read a whole small file; NULL with errno set on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    dsc_buf b = { 0 };
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (dsc_buf_add(&b, chunk, n) || b.len > (1u << 24)) {
            dsc_buf_free(&b);
            fclose(f);
            errno = EFBIG;
            return NULL;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        dsc_buf_free(&b);
        errno = EIO;
        return NULL;
    }
    if (!b.data && dsc_buf_add(&b, "", 0))
        return NULL;
    *len = b.len;
    return b.data;
}

typedef struct profile_values {
    const char *want;       /* section name to match */
    int found;
    char *access_key, *secret_key, *session_token, *region, *endpoint;
    char *s3_endpoint;      /* "s3 =" block's endpoint_url: beats the
                               profile-wide one, as in the AWS CLI */
} profile_values;

static int set_once(char **slot, const char *v)
{
    if (*slot)
        return 0;
    *slot = dsc_strdup(v);
    return *slot ? 0 : -1;
}

static int profile_cb(void *arg, const char *section, const char *key,
                      const char *value)
{
    profile_values *pv = arg;
    if (strcmp(section, pv->want) != 0)
        return 0;
    pv->found = 1;
    if (strcmp(key, "aws_access_key_id") == 0)
        return set_once(&pv->access_key, value);
    if (strcmp(key, "aws_secret_access_key") == 0)
        return set_once(&pv->secret_key, value);
    if (strcmp(key, "aws_session_token") == 0)
        return set_once(&pv->session_token, value);
    if (strcmp(key, "region") == 0)
        return set_once(&pv->region, value);
    if (strcmp(key, "endpoint_url") == 0)
        return set_once(&pv->endpoint, value);
    if (strcmp(key, "s3.endpoint_url") == 0)
        return set_once(&pv->s3_endpoint, value);
    return 0;
}

static void profile_free(profile_values *pv)
{
    free(pv->access_key);
    free(pv->secret_key);
    free(pv->session_token);
    free(pv->region);
    free(pv->endpoint);
    free(pv->s3_endpoint);
}

/* Load one profile file. A missing file is fine; an unreadable one is not,
 * since silently falling back to anonymous would confuse everyone. */
static int load_profile_file(const char *path, const char *section,
                             profile_values *pv)
{
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        if (errno == ENOENT)
            return 0;
        return dsc_fail(DSC_ECREDS, "cannot read %s: %s", path,
                        strerror(errno));
    }
    pv->want = section;
    int rc = dsc_ini_parse(text, len, profile_cb, pv);
    free(text);
    return rc ? DSC_ENOMEM : 0;
}

static char *home_path(const char *rel)
{
    const char *home = env("HOME");
    if (!home)
        return NULL;
    dsc_buf b = { 0 };
    if (dsc_buf_printf(&b, "%s/%s", home, rel))
        return NULL;
    return b.data;
}

static int read_profiles(const char *name, profile_values *pv)
{
    char *cred_path = env("AWS_SHARED_CREDENTIALS_FILE")
                          ? dsc_strdup(env("AWS_SHARED_CREDENTIALS_FILE"))
                          : home_path(".aws/credentials");
    char *conf_path = env("AWS_CONFIG_FILE") ? dsc_strdup(env("AWS_CONFIG_FILE"))
                                             : home_path(".aws/config");
    int rc = 0;
    if (cred_path)
        rc = load_profile_file(cred_path, name, pv);
    if (!rc && conf_path) {
        /* ~/.aws/config names sections "profile NAME"; the default one
         * may be "[default]" or "[profile default]". */
        dsc_buf sect = { 0 };
        rc = dsc_buf_printf(&sect, "profile %s", name);
        if (!rc)
            rc = load_profile_file(conf_path, sect.data, pv);
        if (!rc && strcmp(name, "default") == 0)
            rc = load_profile_file(conf_path, "default", pv);
        dsc_buf_free(&sect);
    }
    free(cred_path);
    free(conf_path);
    return rc;
}

void dsc_creds_free(dsc_creds *c)
{
    if (c->secret_key)
        memset(c->secret_key, 0, strlen(c->secret_key));
    free(c->access_key);
    free(c->secret_key);
    free(c->session_token);
    free(c->region);
    free(c->endpoint);
    memset(c, 0, sizeof *c);
}

static int take_keys(dsc_creds *out, const char *ak, const char *sk,
                     const char *tok, const char *source)
{
    if (!ak || !sk)
        return dsc_fail(DSC_ECREDS, "%s: access key id without secret access "
                        "key (or the reverse)", source);
    out->access_key = dsc_strdup(ak);
    out->secret_key = dsc_strdup(sk);
    out->session_token = dsc_strdup(tok);
    out->source = source;
    if (!out->access_key || !out->secret_key || (tok && !out->session_token))
        return DSC_ENOMEM;
    return 0;
}

int dsc_creds_resolve(const dsc_config *cfg, dsc_creds *out)
{
    memset(out, 0, sizeof *out);
    const char *explicit_profile = cfg->profile ? cfg->profile : env("AWS_PROFILE");
    const char *profile = explicit_profile ? explicit_profile : "default";
    profile_values pv = { 0 };
    int rc = read_profiles(profile, &pv);
    if (rc)
        goto done;
    if (explicit_profile && !pv.found) {
        rc = dsc_fail(DSC_ECREDS, "profile '%s' not found in the AWS "
                      "credentials or config file", profile);
        goto done;
    }

    if (cfg->anonymous) {
        out->source = "anonymous";
    } else if (cfg->access_key_id || cfg->secret_access_key) {
        rc = take_keys(out, cfg->access_key_id, cfg->secret_access_key,
                       cfg->session_token, "config");
    } else if (!cfg->profile &&
               (env("AWS_ACCESS_KEY_ID") || env("AWS_SECRET_ACCESS_KEY"))) {
        /* An explicit profile in the config beats the environment, as the
         * CLI's --profile does; AWS_PROFILE does not. */
        rc = take_keys(out, env("AWS_ACCESS_KEY_ID"),
                       env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN"),
                       "env");
    } else if (pv.access_key || pv.secret_key) {
        rc = take_keys(out, pv.access_key, pv.secret_key, pv.session_token,
                       "profile");
    } else {
        out->source = "anonymous";
    }
    if (rc)
        goto done;

    const char *region = cfg->region ? cfg->region
                       : env("AWS_REGION") ? env("AWS_REGION")
                       : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION")
                       : pv.region ? pv.region : "us-east-1";
    const char *endpoint = cfg->endpoint ? cfg->endpoint
                         : env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
                         : env("AWS_ENDPOINT_URL") ? env("AWS_ENDPOINT_URL")
                         : pv.s3_endpoint ? pv.s3_endpoint : pv.endpoint;
    out->region = dsc_strdup(region);
    out->endpoint = dsc_strdup(endpoint);
    if (!out->region || (endpoint && !out->endpoint))
        rc = DSC_ENOMEM;
done:
    profile_free(&pv);
    if (rc)
        dsc_creds_free(out);
    return rc;
}
