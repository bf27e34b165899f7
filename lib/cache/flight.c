/* Single flight per exact chunk, two levels: a table of the chunks this
 * process is fetching orders its threads, and a POSIX record lock on one
 * byte of dir/locks, at an offset drawn from the chunk id, orders
 * processes. The file stays empty: record locks may lie past its end, and
 * with 2^62 offsets two chunks share a byte about never (a shared byte
 * only costs a wait, never a wrong byte). The kernel drops a killed
 * process's record locks, so a crash never leaves a chunk locked; record
 * locks are not inherited across fork(). A stalled fetch so blocks only
 * the readers of its own chunk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cache/flight.h"
#include "cache/trust.h"

#define BUCKETS 1024   /* of the in-flight table; chains stay short */

typedef struct flight_entry {
    dsc_chunk_id id;
    int held;                      /* a thread of ours owns the chunk */
    int waiters;                   /* threads waiting for it */
    struct flight_entry *next;
} flight_entry;

struct dsc_flight {
    int fd;                        /* dir/locks: immutable after new */
    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t released;       /* some chunk was let go */
    flight_entry *table[BUCKETS];
};

int dsc_flight_new(const char *dir, dsc_flight **out)
{
    int rc = 0;
    dsc_flight *fl = calloc(1, sizeof *fl);
    dsc_buf path = { 0 };
    if (!fl || dsc_buf_printf(&path, "%s/locks", dir)) {
        rc = DSC_ENOMEM;
        goto done;
    }
    fl->fd = open(path.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fl->fd < 0) {
        rc = dsc_fail(DSC_EIO, "cannot open %s: %s", path.data, strerror(errno));
        goto done;
    }
    if (dsc_trust_check_fd(fl->fd, 0, "file locks")) {
        rc = dsc_fail(DSC_EACCESS, "%s (%s)", dsc_errmsg(), path.data);
        close(fl->fd);
        goto done;
    }
    dsc_cond_init_monotonic(&fl->released);
    pthread_mutex_init(&fl->mu, NULL);
    *out = fl;
    fl = NULL;
done:
    free(fl);
    dsc_buf_free(&path);
    return rc;
}

void dsc_flight_free(dsc_flight *fl)
{
    if (!fl)
        return;
    close(fl->fd);
    for (int i = 0; i < BUCKETS; i++) {
        while (fl->table[i]) {
            flight_entry *e = fl->table[i];
            fl->table[i] = e->next;
            free(e);
        }
    }
    pthread_cond_destroy(&fl->released);
    pthread_mutex_destroy(&fl->mu);
    free(fl);
}

static uint64_t id_word(const dsc_chunk_id *id)
{
    uint64_t w;
    memcpy(&w, id->b, sizeof w);
    return w;
}

static int record_lock(int fd, const dsc_chunk_id *id, short type)
{
    struct flock l = { .l_type = type, .l_whence = SEEK_SET,
                       .l_start = (off_t)(id_word(id) & (UINT64_MAX >> 2)),
                       .l_len = 1 };
    return fcntl(fd, F_SETLK, &l);
}

static flight_entry **slot_of(dsc_flight *fl, const dsc_chunk_id *id)
{
    flight_entry **s = &fl->table[(id_word(id) >> 32) % BUCKETS];
    while (*s && memcmp((*s)->id.b, id->b, sizeof id->b))
        s = &(*s)->next;
    return s;
}

/* id's entry, made when missing; NULL when out of memory. Under mu. */
static flight_entry *entry_get(dsc_flight *fl, const dsc_chunk_id *id)
{
    flight_entry **s = slot_of(fl, id);
    if (!*s) {
        *s = calloc(1, sizeof **s);
        if (*s)
            (*s)->id = *id;
    }
    return *s;
}

/* Drop e from the table once nobody holds or wants it. Under mu. */
static void entry_release(dsc_flight *fl, flight_entry *e)
{
    e->held = 0;
    if (e->waiters == 0) {
        flight_entry **s = slot_of(fl, &e->id);
        *s = e->next;
        free(e);
    }
    pthread_cond_broadcast(&fl->released);
}

int dsc_flight_lock(dsc_flight *fl, const dsc_chunk_id *id, long timeout_ms)
{
    int rc = 0;
    struct timespec deadline = dsc_deadline(CLOCK_MONOTONIC, timeout_ms);
    int64_t end = dsc_now_ms() + timeout_ms;   /* the same moment */
    pthread_mutex_lock(&fl->mu);
    flight_entry *e = entry_get(fl, id);
    if (!e) {
        pthread_mutex_unlock(&fl->mu);
        return DSC_ENOMEM;
    }
    e->waiters++;
    while (e->held && rc == 0)
        rc = pthread_cond_timedwait(&fl->released, &fl->mu, &deadline);
    e->waiters--;
    if (e->held) {   /* timed out while another thread fetches it */
        pthread_mutex_unlock(&fl->mu);
        return dsc_fail(DSC_ETIMEDOUT, "single-flight wait timed out");
    }
    e->held = 1;
    pthread_mutex_unlock(&fl->mu);

    long nap = 1;
    for (;;) {
        if (record_lock(fl->fd, id, F_WRLCK) == 0)
            return 0;
        if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
            dsc_now_ms() >= end)
            break;
        /* Another process is fetching this chunk: poll, gently. */
        dsc_sleep_ms(nap);
        if (nap < 16)
            nap *= 2;
    }
    pthread_mutex_lock(&fl->mu);
    entry_release(fl, e);
    pthread_mutex_unlock(&fl->mu);
    return dsc_fail(DSC_ETIMEDOUT, "single-flight wait timed out");
}

int dsc_flight_trylock(dsc_flight *fl, const dsc_chunk_id *id)
{
    pthread_mutex_lock(&fl->mu);
    flight_entry *e = entry_get(fl, id);
    if (!e || e->held) {
        pthread_mutex_unlock(&fl->mu);
        return e ? DSC_BUSY : DSC_ENOMEM;
    }
    e->held = 1;
    pthread_mutex_unlock(&fl->mu);
    if (record_lock(fl->fd, id, F_WRLCK) == 0)
        return 0;
    pthread_mutex_lock(&fl->mu);
    entry_release(fl, e);
    pthread_mutex_unlock(&fl->mu);
    return DSC_BUSY;
}

void dsc_flight_unlock(dsc_flight *fl, const dsc_chunk_id *id)
{
    record_lock(fl->fd, id, F_UNLCK);
    pthread_mutex_lock(&fl->mu);
    flight_entry *e = *slot_of(fl, id);
    if (e && e->held)
        entry_release(fl, e);
    pthread_mutex_unlock(&fl->mu);
}
