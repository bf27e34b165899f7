/* Internal helpers shared by every file of lib/. Not installed. */
#ifndef DSC_CORE_COMMON_H
#define DSC_CORE_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "dsc.h"
#include "core/outcome.h"

#define DSC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define DSC_MIN_CHUNK (64 * 1024)
#define DSC_MAX_CHUNK (256 * 1024 * 1024)

/* Record a failure for dsc_errmsg() on this thread and return code, so
 * callers can write `return dsc_fail(DSC_EURL, "bad url %s", u);`. */
int dsc_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dsc_clear_error(void);

/* Keep this thread's error detail across calls whose own failures must
 * not replace it (cache trouble under a read that still succeeds). */
typedef struct dsc_errsave {
    char msg[1024];
} dsc_errsave;
void dsc_err_save(dsc_errsave *s);
void dsc_err_restore(const dsc_errsave *s);

/* Growable byte buffer, always NUL-terminated for text use. Out of memory
 * is sticky (as libgit2's git_str): once an append fails, later appends do
 * nothing and fail too, so a builder makes its calls in a row and asks
 * dsc_buf_oom() once at the end. dsc_buf_reset keeps the mark;
 * dsc_buf_free clears it. */
typedef struct dsc_buf {
    char *data;
    size_t len, cap;
    int oom;
} dsc_buf;

/* Whether an append to b has failed since it was made or freed. */
static inline int dsc_buf_oom(const dsc_buf *b) { return b->oom; }

int dsc_buf_add(dsc_buf *b, const void *p, size_t n);
int dsc_buf_adds(dsc_buf *b, const char *s);
int dsc_buf_printf(dsc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dsc_buf_reset(dsc_buf *b);
void dsc_buf_free(dsc_buf *b);

char *dsc_strdup(const char *s);      /* NULL-safe */

/* Caller input made safe to quote in a message: control bytes become '?',
 * and past cap-4 bytes it is cut at a UTF-8 boundary and ends in "...". */
const char *dsc_printable(const char *s, char *out, size_t cap);
/* 1 when e[0..n) is an entity tag as HTTP defines it: W/ at most, then a
 * quoted run of visible bytes without quotes. Only such an ETag may pin a
 * version (it goes into If-Match as it is). */
int dsc_etag_ok(const char *e, size_t n);
/* An S3 version id we can pin to: 1..DSC_VERSION_ID_MAX bytes of visible
 * ASCII (it goes into a query string and a snapshot file). */
#define DSC_VERSION_ID_MAX 1024
/* An AWS region name ("eu-west-1"): it becomes part of host names, so
 * only lower-case letters, digits and inner hyphens, 1..31 bytes. */
int dsc_region_ok(const char *r);
/* 1 when s (NULL counts) holds no C0 control byte and no DEL: a value
 * that goes into an HTTP header line and must not end it. */
int dsc_header_value_ok(const char *s);
/* A regular file of at most max bytes, whole and NUL-ended (malloc'd;
 * *len its length when len is not NULL), or NULL with errno set (EFBIG
 * when larger). Read into one buffer, so secrets leave no copies. */
char *dsc_read_small_file(const char *path, size_t max, size_t *len);
int dsc_version_id_ok(const char *v, size_t n);
char *dsc_strndup(const char *s, size_t n);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t dsc_now_ms(void);
void dsc_sleep_ms(long ms);
void dsc_thread_name(const char *name);   /* at most 15 characters */
/* The time ms milliseconds from now on clock, for timed waits. */
struct timespec dsc_deadline(clockid_t clock, int64_t ms);
/* A condition whose timed waits count on CLOCK_MONOTONIC (deadlines of
 * dsc_deadline(CLOCK_MONOTONIC, ...)), immune to wall-clock steps. */
int dsc_cond_init_monotonic(pthread_cond_t *cond);

/* Thread-safe uniform random number in [0, n) (not for secrets). */
uint64_t dsc_rand_below(uint64_t n);
/* In a fork()ed child (core/fork.c): a fresh lock and a fresh seed. */
void dsc_rand_after_fork(void);

/* Parse "20G", "4MiB", "512k", "1000": bytes, powers of 1024. -1 on error. */
int64_t dsc_parse_size(const char *s);
/* Decimal digits only (no sign, space or suffix), no overflow: 0, else -1. */
int dsc_parse_u64(const char *s, uint64_t *out);

/* Bytes of a dsc_config of that layout version (1..DSC_CONFIG_VERSION). */
size_t dsc_config_size(unsigned version);

/* Lower-case hex of n bytes into out[2n+1]; and back (exactly 2n lower-
 * case hex digits, else -1). */
void dsc_hex_encode(const void *in, size_t n, char *out);
int dsc_hex_decode(const char *s, void *out, size_t n);

/* Chunk-sized buffers, mapped and unmapped whole: freed ones go back to
 * the system at once instead of staying in a malloc arena of every thread
 * that used one. NULL when out of memory. */
void *dsc_bigbuf_alloc(size_t n);
void dsc_bigbuf_free(void *p, size_t n);
/* The caller's buffers, about `bytes` in all, are freed and made again
 * over and over (a dataloader's batches): see util.c. */
void dsc_heap_expect(size_t bytes);

/* The running kernel's boot id (/proc/sys/kernel/random/boot_id): 0, or
 * -1 when it cannot be read. */
int dsc_boot_id(uint8_t out[16]);



/* Locale-independent ASCII classes: a host program's setlocale() must not
 * change how URLs are encoded or signed. */
static inline int dsc_isdigit(int c) { return c >= '0' && c <= '9'; }
static inline int dsc_isalpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline int dsc_isalnum(int c) { return dsc_isdigit(c) || dsc_isalpha(c); }
static inline int dsc_tolower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}
#endif
