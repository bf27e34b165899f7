/* Error codes, their names, and the thread-local detail message. */
#include <stdio.h>
#include <string.h>
#include "core/common.h"

static _Thread_local char errmsg[1024];

const char *dsc_strerror(int code)
{
    switch (code) {
    case DSC_OK:         return "success";
    case DSC_EINVAL:     return "invalid argument";
    case DSC_ENOMEM:     return "out of memory";
    case DSC_EURL:       return "malformed URL";
    case DSC_ENOTFOUND:  return "no such key or bucket";
    case DSC_EACCESS:    return "access denied";
    case DSC_ECREDS:     return "credentials missing or unreadable";
    case DSC_ETIMEDOUT:  return "timed out";
    case DSC_ENET:       return "network error";
    case DSC_ETHROTTLED: return "throttled by the server (SlowDown)";
    case DSC_ESERVER:    return "server error";
    case DSC_EPROTO:     return "malformed response";
    case DSC_ECHANGED:   return "object changed since it was opened";
    case DSC_EIO:        return "local I/O error";
    case DSC_ECANCELED:  return "canceled";
    case DSC_EHTTP:      return "unexpected HTTP status";
    case DSC_EAGAIN:     return "prefetch queue full";
    case DSC_ENOCACHE:   return "no node cache configured";
    default:             return dsc_is_outcome(code) ? "internal outcome (a bug "
                                                       "if seen outside libdsc)"
                                                     : "unknown error";
    }
}

const char *dsc_outcome_name(int rc)
{
    switch (rc) {
    case DSC_ABSENT:       return "absent";
    case DSC_EXISTS:       return "exists";
    case DSC_NOT_ADMITTED: return "not admitted";
    case DSC_CORRUPT:      return "corrupt";
    case DSC_EMPTY_RANGE:  return "empty range";
    case DSC_RETRY:        return "retry";
    case DSC_BUSY:         return "busy";
    default:               return NULL;
    }
}

const char *dsc_errmsg(void)
{
    return errmsg;
}

void dsc_clear_error(void)
{
    errmsg[0] = '\0';
}

void dsc_err_save(dsc_errsave *s)
{
    snprintf(s->msg, sizeof s->msg, "%s", errmsg);
}

void dsc_err_restore(const dsc_errsave *s)
{
    snprintf(errmsg, sizeof errmsg, "%s", s->msg);
}

int dsc_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return code;
}
