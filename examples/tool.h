/* Small helpers the command-line tools share (output formatting, common flags). */
#ifndef DSC_TOOL_H
#define DSC_TOOL_H

#include <stdio.h>
#include <stdlib.h>

/* --no-sign-request: unsigned requests (public buckets), as the AWS CLI's
 * flag; the tools' contexts read DSC_ANONYMOUS. */
static inline void tool_no_sign_request(void)
{
    setenv("DSC_ANONYMOUS", "1", 1);
}

/* A JSON string literal for s, escaped. */
static inline void tool_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* "1.5 GiB" style, binary units. */
static inline void tool_bytes(double b, char *out, size_t cap)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, unit[i]);
}

#endif
