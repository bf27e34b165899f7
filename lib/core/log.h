/* Diagnostics on stderr, filtered by DSC_LOG (off, error, warn, info,
 * debug; default warn). A library must stay quiet unless asked, except
 * for the few warnings that explain a silent slowdown. */
#ifndef DSC_CORE_LOG_H
#define DSC_CORE_LOG_H

enum { DSC_LOG_OFF, DSC_LOG_ERROR, DSC_LOG_WARN, DSC_LOG_INFO, DSC_LOG_DEBUG };

void dsc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log once per *flag (set atomically): for warnings that would otherwise
 * repeat on every read. */
void dsc_log_once(int *flag, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
