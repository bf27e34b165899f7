/* stderr logging with a level from DSC_LOG. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/atomic.h"
#include "core/log.h"

static int level_from_env(void)
{
    const char *v = getenv("DSC_LOG");
    if (!v || !*v)
        return DSC_LOG_WARN;
    static const char *const names[] = { "off", "error", "warn", "info", "debug" };
    for (int i = 0; i < 5; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return DSC_LOG_WARN;
}

static void vlog(int level, const char *fmt, va_list ap)
{
    if (level > level_from_env())
        return;
    static const char *const tags[] = { "", "error", "warning", "info", "debug" };
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    /* One write per line so lines of several processes don't interleave. */
    fprintf(stderr, "libdsc: %s: %s\n", tags[level], line);
}

void dsc_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void dsc_log_once(int *flag, int level, const char *fmt, ...)
{
    if (dsc_atomic_swap(flag, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}
