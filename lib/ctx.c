/* Opening and closing a context. */
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

static int check_config(const dsc_config *c)
{
    if (c->version == 0 || c->version > DSC_CONFIG_VERSION)
        return dsc_fail(DSC_EINVAL, "config version %u unknown (use "
                        "dsc_config_init)", c->version);
    if (c->addressing < DSC_ADDRESSING_AUTO || c->addressing > DSC_ADDRESSING_VHOST)
        return dsc_fail(DSC_EINVAL, "config: addressing %d unknown",
                        c->addressing);
    if (c->connect_timeout_ms <= 0 || c->request_timeout_ms <= 0)
        return dsc_fail(DSC_EINVAL, "config: timeouts must be positive");
    if (c->max_retries < 0 || c->retry_base_ms < 0 || c->retry_max_ms < 0)
        return dsc_fail(DSC_EINVAL, "config: retry settings must not be "
                        "negative");
    if (c->max_connections <= 0)
        return dsc_fail(DSC_EINVAL, "config: max_connections must be positive");
    return 0;
}

int dsc_ctx_open(const dsc_config *cfg, dsc_ctx **out)
{
    dsc_clear_error();
    if (!out)
        return dsc_fail(DSC_EINVAL, "dsc_ctx_open: out is NULL");
    *out = NULL;
    dsc_config defaults;
    if (!cfg) {
        dsc_config_init(&defaults, DSC_CONFIG_VERSION);
        cfg = &defaults;
    }
    int rc = check_config(cfg);
    if (rc)
        return rc;
    dsc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return DSC_ENOMEM;
    /* Fields a caller's older header does not know keep our defaults. */
    dsc_config_init(&ctx->cfg, DSC_CONFIG_VERSION);
    memcpy(&ctx->cfg, cfg, sizeof ctx->cfg);
    rc = dsc_creds_resolve(cfg, &ctx->creds);
    if (!rc)
        rc = dsc_s3_new(&ctx->cfg, &ctx->creds, &ctx->s3);
    /* Strings of the caller's config are not kept: credentials, region and
     * endpoint live in ctx->creds, the CA file inside the HTTP pool. */
    ctx->cfg.endpoint = ctx->cfg.region = ctx->cfg.access_key_id = NULL;
    ctx->cfg.secret_access_key = ctx->cfg.session_token = NULL;
    ctx->cfg.profile = ctx->cfg.ca_file = NULL;
    if (rc) {
        dsc_ctx_close(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void dsc_ctx_close(dsc_ctx *ctx)
{
    if (!ctx)
        return;
    dsc_s3_free(ctx->s3);
    dsc_creds_free(&ctx->creds);
    free(ctx);
}
