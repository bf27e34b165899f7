/* Metrics and cost accounting of the node cache (api/metrics.c): the
 * settings a context's cache counts with, and the one definition of the
 * exported series. Private to lib/api. */
#ifndef DSC_API_METRICS_H
#define DSC_API_METRICS_H

#include "api/context.h"

/* Set o's accounting fields for ctx's cache: the S3 counters it flushes
 * and DSC_PREFIX_DEPTH. The price variables are checked here too, so a
 * bad one fails dsc_ctx_open as every DSC_* variable does. 0, or
 * DSC_EINVAL naming the variable. */
int dsc_metrics_cache_opts(dsc_ctx *ctx, dsc_cache_opts *o);

/* A price from the environment: a plain decimal number ("0.0004", "5",
 * ".09"; no sign, exponent or space) into *out, def when unset or empty.
 * 0, or DSC_EINVAL naming the variable. Locale-independent. */
int dsc_price_env(const char *name, double def, double *out);

#endif
