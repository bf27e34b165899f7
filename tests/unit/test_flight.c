/* Single flight: one fetcher per exact chunk across the threads of a
 * process and across processes sharing a cache directory; a held chunk
 * never delays another.
 *
 * Waits are measured with CLOCK_MONOTONIC (dsc_now_ms), which is one
 * clock for every process of the machine, so a holder can send the time
 * it let go and the waiter can check it really waited for that moment.
 * Each test gets a fresh directory under /tmp with a flight opened on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/common.h"
#include "cache/flight.h"

/* ---- fixture ----------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    dsc_flight *fl;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dsc-test-flight-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (dsc_flight_new(f->dir, &f->fl)) {
        print_error("dsc_flight_new(%s): %s\n", f->dir, dsc_errmsg());
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dsc_flight_free(f->fl);
    int rc = rm_tree(f->dir);
    free(f);
    return rc;
}

/* Distinct ids (they differ in their first two bytes). */
static dsc_chunk_id mkid(uint8_t b0, uint8_t b1)
{
    dsc_chunk_id id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(0x5a + i);
    id.b[0] = b0;
    id.b[1] = b1;
    return id;
}

static void write_all(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        abort();
}

static int read_all(int fd, void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)p + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

/* ---- threads ----------------------------------------------------------- */

typedef struct holder {
    dsc_flight *fl;
    dsc_chunk_id id;
    long hold_ms;
    int pipe_w;          /* gets one byte once locked */
    int rc;
    int64_t released_ms; /* just before unlocking */
} holder;

static void *hold_thread(void *arg)
{
    holder *h = arg;
    h->rc = dsc_flight_lock(h->fl, &h->id, 5000);
    write_all(h->pipe_w, "L", 1);
    if (h->rc < 0)
        return NULL;
    dsc_sleep_ms(h->hold_ms);
    __atomic_store_n(&h->released_ms, dsc_now_ms(), __ATOMIC_SEQ_CST);
    dsc_flight_unlock(h->fl, &h->id);
    return NULL;
}

static void start_holder(holder *h, pthread_t *t, int p[2])
{
    assert_int_equal(pipe(p), 0);
    h->pipe_w = p[1];
    assert_int_equal(pthread_create(t, NULL, hold_thread, h), 0);
    char c;
    assert_int_equal(read_all(p[0], &c, 1), 0);
    assert_int_equal(h->rc, 0);
}

static void test_threads_same_id_wait(void **state)
{
    fixture *f = *state;
    holder h = { .fl = f->fl, .id = mkid(1, 0), .hold_ms = 300 };
    pthread_t t;
    int p[2];
    start_holder(&h, &t, p);
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &h.id, 5000);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, 0);
    dsc_flight_unlock(f->fl, &h.id);
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    /* We got it only after the holder let go, about 300 ms later. */
    if (t1 < h.released_ms)
        fail_msg("lock returned at %lld, holder released at %lld",
                 (long long)t1, (long long)h.released_ms);
    if (t1 - t0 < 200)
        fail_msg("waited only %lld ms for a 300 ms holder",
                 (long long)(t1 - t0));
}

static void test_threads_other_chunk_no_wait(void **state)
{
    fixture *f = *state;
    holder h = { .fl = f->fl, .id = mkid(1, 0), .hold_ms = 600 };
    pthread_t t;
    int p[2];
    start_holder(&h, &t, p);
    dsc_chunk_id other = mkid(2, 0);
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &other, 5000);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, 0);
    /* Taken while the holder still holds its own chunk. */
    int64_t held_until = __atomic_load_n(&h.released_ms, __ATOMIC_SEQ_CST);
    dsc_flight_unlock(f->fl, &other);
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    assert_int_equal(held_until, 0);
    if (t1 - t0 > 150)
        fail_msg("another chunk took %lld ms", (long long)(t1 - t0));
}

static void test_threads_timeout(void **state)
{
    fixture *f = *state;
    holder h = { .fl = f->fl, .id = mkid(3, 0), .hold_ms = 1000 };
    pthread_t t;
    int p[2];
    start_holder(&h, &t, p);
    dsc_clear_error();
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &h.id, 200);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, DSC_ETIMEDOUT);
    assert_errmsg_has("single-flight");
    if (t1 - t0 < 190 || t1 - t0 > 600)
        fail_msg("timed out after %lld ms, wanted ~200", (long long)(t1 - t0));
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    s = dsc_flight_lock(f->fl, &h.id, 100);
    assert_int_equal(s, 0);
    dsc_flight_unlock(f->fl, &h.id);
}

/* ---- processes --------------------------------------------------------- */

typedef enum { HOLD_THEN_REPORT, HOLD_FOREVER } child_mode;

/* Fork a child that opens its own flight on dir, locks id, writes 'L' to
 * the pipe, holds for hold_ms and (HOLD_THEN_REPORT) writes the time it
 * released before unlocking. Returns once the child holds the lock. */
static pid_t spawn_holder(const char *dir, dsc_chunk_id id, long hold_ms,
                          child_mode mode, int *rfd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dsc_flight *cf = NULL;
        if (dsc_flight_new(dir, &cf))
            _exit(10);
        if (dsc_flight_lock(cf, &id, 2000))
            _exit(11);
        write_all(p[1], "L", 1);
        if (mode == HOLD_FOREVER)
            for (;;)
                pause();
        dsc_sleep_ms(hold_ms);
        int64_t rel = dsc_now_ms();
        write_all(p[1], &rel, sizeof rel);
        dsc_flight_unlock(cf, &id);
        dsc_flight_free(cf);
        close(p[1]);
        _exit(0);
    }
    close(p[1]);
    char c = 0;
    if (read_all(p[0], &c, 1) || c != 'L') {
        int st = 0;
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("child did not take the lock (status %d)", st);
    }
    *rfd = p[0];
    return pid;
}

static void reap_ok(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_process_holder_makes_parent_wait(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(4, 0);
    int rfd;
    pid_t pid = spawn_holder(f->dir, id, 300, HOLD_THEN_REPORT, &rfd);
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &id, 5000);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, 0);
    int64_t released = 0;
    assert_int_equal(read_all(rfd, &released, sizeof released), 0);
    dsc_flight_unlock(f->fl, &id);
    close(rfd);
    reap_ok(pid);
    if (t1 < released)
        fail_msg("parent got the lock at %lld, child released at %lld",
                 (long long)t1, (long long)released);
    if (t1 - t0 < 200)
        fail_msg("waited only %lld ms for a 300 ms holder",
                 (long long)(t1 - t0));
}

static void test_process_timeout(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(5, 0);
    int rfd;
    pid_t pid = spawn_holder(f->dir, id, 2000, HOLD_THEN_REPORT, &rfd);
    dsc_clear_error();
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &id, 200);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, DSC_ETIMEDOUT);
    assert_errmsg_has("single-flight");
    if (t1 - t0 < 190 || t1 - t0 > 600)
        fail_msg("timed out after %lld ms, wanted ~200", (long long)(t1 - t0));

    /* A timed-out wait left nothing behind: once the child lets go (about
     * 2 s after it took the lock) this process gets the chunk. */
    s = dsc_flight_lock(f->fl, &id, 5000);
    int64_t t2 = dsc_now_ms();
    assert_int_equal(s, 0);
    int64_t released = 0;
    assert_int_equal(read_all(rfd, &released, sizeof released), 0);
    assert_true(t2 >= released);
    dsc_flight_unlock(f->fl, &id);
    close(rfd);
    reap_ok(pid);
}

static void test_process_killed_holder_releases(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(6, 0);
    int rfd;
    pid_t pid = spawn_holder(f->dir, id, 0, HOLD_FOREVER, &rfd);

    /* It really holds the chunk... */
    int s = dsc_flight_lock(f->fl, &id, 50);
    assert_int_equal(s, DSC_ETIMEDOUT);
    /* ...but not the others. */
    dsc_chunk_id other = mkid(7, 0);
    int64_t t0 = dsc_now_ms();
    s = dsc_flight_lock(f->fl, &other, 2000);
    assert_int_equal(s, 0);
    assert_true(dsc_now_ms() - t0 < 150);
    dsc_flight_unlock(f->fl, &other);

    assert_int_equal(kill(pid, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    close(rfd);

    t0 = dsc_now_ms();
    s = dsc_flight_lock(f->fl, &id, 2000);
    int64_t t1 = dsc_now_ms();
    assert_int_equal(s, 0);
    dsc_flight_unlock(f->fl, &id);
    if (t1 - t0 > 100)
        fail_msg("lock of a dead holder took %lld ms", (long long)(t1 - t0));
}


/* Ids as the cache makes them: 16 bytes that look random. */
static dsc_chunk_id random_id(uint64_t *state)
{
    dsc_chunk_id id;
    for (int i = 0; i < 16; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        id.b[i] = (uint8_t)(*state >> 56);
    }
    return id;
}

/* Lock and unlock n random ids (seeded apart from the held ones); the
 * slowest took *worst_ms. */
static void lock_many(dsc_flight *fl, uint64_t seed, int n, int64_t *worst_ms)
{
    *worst_ms = 0;
    for (int i = 0; i < n; i++) {
        dsc_chunk_id id = random_id(&seed);
        int64_t t0 = dsc_now_ms();
        int rc = dsc_flight_lock(fl, &id, 3000);
        int64_t took = dsc_now_ms() - t0;
        if (rc)
            fail_msg("lock %d of %d: %s", i, n, dsc_errmsg());
        dsc_flight_unlock(fl, &id);
        if (took > *worst_ms)
            *worst_ms = took;
    }
}

/* Eight fetches stall (their locks held for the whole test) while 2,500
 * other chunks are locked: none of them waits. With locks shared by
 * stripes, some would have waited out the stall. */
static void test_threads_stalled_chunks_block_nothing_else(void **state)
{
    fixture *f = *state;
    holder h[8];
    pthread_t t[8];
    int p[8][2];
    uint64_t seed = 1;
    for (int i = 0; i < 8; i++) {
        h[i] = (holder){ .fl = f->fl, .id = random_id(&seed), .hold_ms = 4000 };
        start_holder(&h[i], &t[i], p[i]);
    }
    int64_t worst;
    lock_many(f->fl, 99, 2500, &worst);
    printf("    2,500 locks beside 8 held ones: slowest %lld ms\n",
           (long long)worst);
    int released = 0;   /* before the end of the test: nothing waited for them */
    for (int i = 0; i < 8; i++)
        released += __atomic_load_n(&h[i].released_ms, __ATOMIC_SEQ_CST) != 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        close(p[i][0]);
        close(p[i][1]);
    }
    assert_int_equal(released, 0);
    assert_true(worst < 500);
}

static void test_process_stalled_chunks_block_nothing_else(void **state)
{
    fixture *f = *state;
    uint64_t seed = 1;
    pid_t pid[8];
    int rfd[8];
    for (int i = 0; i < 8; i++)
        pid[i] = spawn_holder(f->dir, random_id(&seed), 0, HOLD_FOREVER, &rfd[i]);
    int64_t worst;
    lock_many(f->fl, 99, 2500, &worst);
    printf("    2,500 locks beside 8 held by other processes: slowest %lld ms\n",
           (long long)worst);
    /* And the held ones really are held. */
    seed = 1;
    dsc_chunk_id held = random_id(&seed);
    assert_int_equal(dsc_flight_lock(f->fl, &held, 50), DSC_ETIMEDOUT);
    for (int i = 0; i < 8; i++) {
        kill(pid[i], SIGKILL);
        waitpid(pid[i], NULL, 0);
        close(rfd[i]);
    }
    assert_true(worst < 500);
}

/* The timeout bounds the whole wait: first for a thread of this process,
 * then for another process, never the sum of both. */
static void test_timeout_is_total(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(8, 0);
    int rfd;
    pid_t pid = spawn_holder(f->dir, id, 0, HOLD_FOREVER, &rfd);
    /* A thread of ours holds it too (its own lock is a no-op against the
     * child's, which only this process's record lock would see). */
    holder h = { .fl = f->fl, .id = id, .hold_ms = 250 };
    pthread_t t;
    int p[2];
    assert_int_equal(pipe(p), 0);
    h.pipe_w = p[1];
    assert_int_equal(pthread_create(&t, NULL, hold_thread, &h), 0);
    char c;
    assert_int_equal(read_all(p[0], &c, 1), 0);
    int64_t t0 = dsc_now_ms();
    int s = dsc_flight_lock(f->fl, &id, 400);
    int64_t took = dsc_now_ms() - t0;
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(rfd);
    assert_int_equal(s, DSC_ETIMEDOUT);
    if (took < 390 || took > 600)
        fail_msg("a 400 ms wait took %lld ms", (long long)took);
}

static void test_new_on_missing_dir_fails(void **state)
{
    fixture *f = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent", f->dir);
    dsc_flight *fl = NULL;
    dsc_clear_error();
    assert_int_equal(dsc_flight_new(missing, &fl), DSC_EIO);
    assert_null(fl);
    assert_errmsg_has(missing);
}

/* The event loop's claims: a try never waits, says busy while any thread
 * or process holds the chunk, and a lock taken on one thread may be let
 * go on another (the loop's fetch is finished by a pool thread). */
static void *unlock_elsewhere(void *arg)
{
    fixture *f = ((void **)arg)[0];
    dsc_chunk_id *id = ((void **)arg)[1];
    dsc_flight_unlock(f->fl, id);
    return NULL;
}

static void test_trylock(void **state)
{
    fixture *f = *state;
    dsc_chunk_id id = mkid(21, 0);
    assert_int_equal(dsc_flight_trylock(f->fl, &id), 0);
    int64_t t0 = dsc_now_ms();
    assert_int_equal(dsc_flight_trylock(f->fl, &id), DSC_BUSY);
    assert_true(dsc_now_ms() - t0 < 50);
    void *args[2] = { f, &id };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, unlock_elsewhere, args), 0);
    pthread_join(th, NULL);
    /* Free again, for waiters and tries alike. */
    assert_int_equal(dsc_flight_lock(f->fl, &id, 100), 0);
    dsc_flight_unlock(f->fl, &id);

    int rfd;
    pid_t pid = spawn_holder(f->dir, id, 0, HOLD_FOREVER, &rfd);
    assert_int_equal(dsc_flight_lock(f->fl, &id, 50), DSC_ETIMEDOUT);
    assert_int_equal(dsc_flight_trylock(f->fl, &id), DSC_BUSY);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(rfd);
    assert_int_equal(dsc_flight_trylock(f->fl, &id), 0);
    dsc_flight_unlock(f->fl, &id);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_threads_same_id_wait),
        T(test_threads_other_chunk_no_wait),
        T(test_threads_timeout),
        T(test_process_holder_makes_parent_wait),
        T(test_process_timeout),
        T(test_process_killed_holder_releases),
        T(test_threads_stalled_chunks_block_nothing_else),
        T(test_process_stalled_chunks_block_nothing_else),
        T(test_timeout_is_total),
        T(test_new_on_missing_dir_fails),
        T(test_trylock),
    };
    return cmocka_run_group_tests_name("flight", tests, NULL, NULL);
}
