/* A small JSON reader for the credential answers (container, IMDS, SSO,
 * credential_process): look one value up by path, and the two forms their
 * expiration times come in. */
#ifndef DSC_CORE_JSON_H
#define DSC_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

enum {
    DSC_JSON_STRING = 1, DSC_JSON_NUMBER, DSC_JSON_BOOL, DSC_JSON_NULL,
    DSC_JSON_OBJECT, DSC_JSON_ARRAY,
};

typedef struct dsc_json_val {
    int type;       /* DSC_JSON_* */
    char *text;     /* a string decoded to UTF-8; else the value as written
                       (number, true/false/null, or the raw object/array) */
} dsc_json_val;

/* The value at path, object keys joined by '.' ("roleCredentials.expiration").
 * The whole text must be one valid JSON value (RFC 8259, at most 64 levels
 * deep); when a key repeats the last one wins, as in Python's json. Returns
 * 0, DSC_ABSENT (valid JSON, no such path), DSC_EPROTO (not valid JSON, or
 * the string asked for holds a NUL), DSC_ENOMEM. */
int dsc_json_get(const char *text, size_t len, const char *path,
                 dsc_json_val *out);
/* The string at path into *out (malloc'd): 0, DSC_ABSENT (missing or
 * null), DSC_EPROTO (not JSON, or not a string), DSC_ENOMEM. */
int dsc_json_string(const char *text, size_t len, const char *path,
                    char **out);
void dsc_json_val_free(dsc_json_val *v);

/* "2024-05-01T12:00:00Z", with optional fraction and a zone of Z, UTC,
 * +HH:MM or +HHMM (none: UTC), 'T' or ' ' between date and time, to unix
 * seconds. 0 or -1. */
int dsc_time_iso8601(const char *s, int64_t *out);
/* Unix milliseconds as a JSON number ("1700000000000") to unix seconds.
 * 0 or -1. */
int dsc_time_epoch_ms(const char *s, int64_t *out);

#endif
