/* Striped locks, two levels: a mutex per stripe orders the threads of this
 * process, a POSIX record lock on one byte of dir/locks orders processes.
 * The kernel drops a killed process's record locks, so a crash never
 * leaves a chunk locked; record locks are not inherited across fork(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cache/flight.h"
#include "cache/trust.h"

#define STRIPES 4096

struct dsc_flight {
    int fd;
    pthread_mutex_t mu[STRIPES];
};

int dsc_flight_new(const char *dir, dsc_flight **out)
{
    dsc_flight *fl = calloc(1, sizeof *fl);
    dsc_buf path = { 0 };
    if (!fl || dsc_buf_printf(&path, "%s/locks", dir)) {
        free(fl);
        return DSC_ENOMEM;
    }
    fl->fd = open(path.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fl->fd >= 0 && dsc_trust_check_fd(fl->fd, 0, "file locks")) {
        int rc = dsc_fail(DSC_EACCESS, "%s (%s)", dsc_errmsg(), path.data);
        close(fl->fd);
        free(fl);
        dsc_buf_free(&path);
        return rc;
    }
    if (fl->fd < 0) {
        int e = errno;
        free(fl);
        int rc = dsc_fail(DSC_EIO, "cannot open %s: %s", path.data, strerror(e));
        dsc_buf_free(&path);
        return rc;
    }
    dsc_buf_free(&path);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&fl->mu[i], NULL);
    *out = fl;
    return 0;
}

void dsc_flight_free(dsc_flight *fl)
{
    if (!fl)
        return;
    close(fl->fd);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&fl->mu[i]);
    free(fl);
}

static int record_lock(int fd, int stripe, short type)
{
    struct flock l = { .l_type = type, .l_whence = SEEK_SET,
                       .l_start = stripe, .l_len = 1 };
    return fcntl(fd, F_SETLK, &l);
}

int dsc_flight_stripe(const dsc_chunk_id *id)
{
    return (id->b[0] | (id->b[1] << 8)) % STRIPES;
}

int dsc_flight_lock(dsc_flight *fl, const dsc_chunk_id *id, long timeout_ms)
{
    int stripe = dsc_flight_stripe(id);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&fl->mu[stripe], &deadline))
        return dsc_fail(DSC_ETIMEDOUT, "single-flight wait timed out");
    int64_t end = dsc_now_ms() + timeout_ms;
    long nap = 1;
    for (;;) {
        if (record_lock(fl->fd, stripe, F_WRLCK) == 0)
            return stripe;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            break;
        if (dsc_now_ms() >= end)
            break;
        /* Another process is fetching this stripe: poll, gently. */
        dsc_sleep_ms(nap);
        if (nap < 16)
            nap *= 2;
    }
    pthread_mutex_unlock(&fl->mu[stripe]);
    return dsc_fail(DSC_ETIMEDOUT, "single-flight wait timed out");
}

void dsc_flight_unlock(dsc_flight *fl, int stripe)
{
    if (stripe < 0)
        return;
    record_lock(fl->fd, stripe, F_UNLCK);
    pthread_mutex_unlock(&fl->mu[stripe]);
}
