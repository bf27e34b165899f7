/* The INI dialect of ~/.aws/credentials and ~/.aws/config. */
#ifndef DSC_S3_INI_H
#define DSC_S3_INI_H

#include <stddef.h>

/* Called for each key = value, with the current section ("" before any).
 * Return non-zero to stop. Strings are valid during the call only. */
typedef int (*dsc_ini_cb)(void *arg, const char *section, const char *key,
                          const char *value);

/* Parse text[0..len). Comments are whole lines starting with '#' or ';'
 * (after blanks); like botocore's configparser there are no inline
 * comments, so "k = a # b" is the value "a # b". Sections are "[name]" with
 * inner blanks trimmed; keys are case-sensitive and trimmed. Indented lines
 * under a key with an empty value are nested settings ("s3 =\n  x = y") and
 * are reported as "key.sub". Returns 0, the callback's non-zero value, or
 * -1 for memory exhaustion. Malformed lines are skipped, as the AWS CLI
 * would fail on them rather than guess. */
int dsc_ini_parse(const char *text, size_t len, dsc_ini_cb cb, void *arg);

#endif
