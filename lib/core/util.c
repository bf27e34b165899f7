/* Small building blocks: buffers, strings, clocks, randomness, sizes. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "core/common.h"
#include "core/atomic.h"
#include "core/fork.h"

static int buf_grow(dsc_buf *b, size_t extra)
{
    if (b->oom)
        return DSC_ENOMEM;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            goto oom;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        goto oom;
    b->data = p;
    b->cap = cap;
    return 0;
oom:
    b->oom = 1;
    return DSC_ENOMEM;
}

int dsc_buf_add(dsc_buf *b, const void *p, size_t n)
{
    if (buf_grow(b, n))
        return DSC_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dsc_buf_adds(dsc_buf *b, const char *s)
{
    return dsc_buf_add(b, s, strlen(s));
}

int dsc_buf_printf(dsc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        b->oom = 1;
    if (n < 0 || buf_grow(b, (size_t)n))
        return DSC_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void dsc_buf_reset(dsc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void dsc_buf_free(dsc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

char *dsc_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *dsc_printable(const char *s, char *out, size_t cap)
{
    size_t n = 0, limit = cap > 4 ? cap - 4 : 0;
    for (; s && s[n] && n < limit; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s && s[n]) {
        /* Don't split a multi-byte character: back off while the byte at
         * the cut continues one (the input's byte; out[n] is not written
         * yet and may hold anything). */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

char *dsc_strndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

int64_t dsc_now_ms(void)
{
    struct timespec ts;
    /* Millisecond use only: the coarse clock is a few times cheaper. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec dsc_deadline(clockid_t clock, int64_t ms)
{
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int dsc_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* glibc's malloc adapts to a program's buffers: freeing a mapped block
 * raises the size served from the heap to that block's and the heap top it
 * keeps to twice that. A dataloader worker frees a whole batch of sample
 * buffers (32 x 150 KiB) at once; below that size the heap top is given
 * back and the next batch faults every page in again (~35 faults, ~0.7 ms
 * per sample on a 2-core VM). Whether a process had adapted depended on
 * what it happened to allocate before. Freeing one mapped block of the
 * batch's size is that adaptation made on purpose: it sets no fixed
 * threshold (mallopt would end glibc's adapting), and a process whose
 * malloc already serves such sizes from its heap is not changed. */
#define HEAP_EXPECT_MIN (1u << 20)
/* glibc adapts to mapped blocks of up to 32 MiB, its header and page
 * rounding included: a request of exactly 32 MiB would teach nothing. */
#define HEAP_EXPECT_MAX ((32u << 20) - (64u << 10))

void dsc_heap_expect(size_t bytes)
{
#ifdef __GLIBC__
    static uint64_t expected;           /* largest taught, per process */
    if (bytes < HEAP_EXPECT_MIN)
        return;
    if (bytes > HEAP_EXPECT_MAX)
        bytes = HEAP_EXPECT_MAX;
    if (bytes <= dsc_counter_get(&expected))
        return;
    void *volatile block = malloc(bytes);
    if (!block)
        return;                         /* try again with the next batch */
    free(block);
    __atomic_store_n(&expected, (uint64_t)bytes, __ATOMIC_RELAXED);
#else
    (void)bytes;
#endif
}

/* Names show in top -H, gdb and /proc/PID/task: an operator can tell
 * which of a dataloader's threads is ours and what it is for. */
void dsc_thread_name(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}

void dsc_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* splitmix64 over a locked state: retries are rare, contention is not.
 * Seeded from getrandom, and again in every fork()ed child (core/fork.c),
 * so forked workers never draw the same backoff jitter or names. */
static pthread_mutex_t rand_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rand_state;

static uint64_t fresh_seed(void)
{
    (void)dsc_fork_generation();   /* makes sure the child handler is set */
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* No entropy yet (early boot): time and pid still differ. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
               ((uint64_t)getpid() << 40);
    }
    return seed | 1;   /* 0 means "not seeded" */
}

void dsc_rand_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    rand_lock = fresh;   /* a parent thread may have held it */
    rand_state = 0;      /* reseeded on next use */
}

uint64_t dsc_rand_below(uint64_t n)
{
    if (n == 0)
        return 0;
    pthread_mutex_lock(&rand_lock);
    if (rand_state == 0)
        rand_state = fresh_seed();
    uint64_t z = (rand_state += 0x9e3779b97f4a7c15ULL);
    pthread_mutex_unlock(&rand_lock);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z % n;
}

int dsc_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (!dsc_isdigit(*s) || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int64_t dsc_parse_size(const char *s)
{
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case 'B': shift = 0; break;
    default: return -1;
    }
    if (*end && toupper((unsigned char)*end) != 'B') {
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    } else if (*end) {
        end++;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    if (v > (unsigned long long)(INT64_MAX >> shift))
        return -1;
    return (int64_t)(v << shift);
}

void dsc_hex_encode(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int dsc_hex_decode(const char *s, void *out, size_t n)
{
    uint8_t *o = out;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        o[i] = (uint8_t)v;
    }
    return 0;
}

char *dsc_read_small_file(const char *path, size_t max, size_t *len)
{
    char *text = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    int err = 0;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        err = EINVAL;
    else if ((uint64_t)st.st_size > max)
        err = EFBIG;
    else if (!(text = malloc((size_t)st.st_size + 1)))
        err = ENOMEM;
    /* One buffer of the file's size: growing one would leave copies of
     * its secrets in freed memory. A file that grows meanwhile is cut. */
    size_t got = 0;
    while (!err && got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = EIO;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (err) {
        if (text)
            memset(text, 0, got);
        free(text);
        errno = err;
        return NULL;
    }
    text[got] = '\0';
    if (len)
        *len = got;
    return text;
}

int dsc_header_value_ok(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int dsc_region_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 31 || r[0] == '-' || r[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(dsc_isdigit(r[i]) || (r[i] >= 'a' && r[i] <= 'z') || r[i] == '-'))
            return 0;
    return 1;
}

int dsc_version_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > DSC_VERSION_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] > '~')
            return 0;
    return 1;
}

int dsc_etag_ok(const char *e, size_t n)
{
    if (n >= 2 && e[0] == 'W' && e[1] == '/') {
        e += 2;
        n -= 2;
    }
    if (n < 2 || e[0] != '"' || e[n - 1] != '"')
        return 0;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c < 0x21 || c == '"' || c > 0x7e)
            return 0;
    }
    return 1;
}

int dsc_boot_id(uint8_t out[16])
{
    char text[64], hex[33];
    int rc = -1;
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (fp && fgets(text, sizeof text, fp)) {
        size_t n = 0;
        for (const char *p = text; *p && *p != '\n' && n < 32; p++)
            if (*p != '-')
                hex[n++] = *p;
        hex[n] = '\0';
        rc = n == 32 && dsc_hex_decode(hex, out, 16) == 0 ? 0 : -1;
    }
    if (fp)
        fclose(fp);
    return rc;
}

void *dsc_bigbuf_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void dsc_bigbuf_free(void *p, size_t n)
{
    if (p)
        munmap(p, n ? n : 1);
}
