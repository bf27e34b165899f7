/* Fork detection: the generation counter and the graveyard.
 *
 * Children report through their exit status; 0 and 1 are never used as
 * "success" so that a crash or a tool's error exit cannot pass for one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/common.h"
#include "core/fork.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK 1
#endif
#endif

enum { CHILD_OK = 42, CHILD_SAME = 20, CHILD_SMALLER = 21,
       CHILD_UNSTABLE = 22, CHILD_FORK_FAILED = 23, CHILD_GRAND_BAD = 24 };

static int wait_status(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("child did not exit normally (status %#x)", st);
    return WEXITSTATUS(st);
}

static void *gen_thread(void *arg)
{
    *(unsigned *)arg = dsc_fork_generation();
    return NULL;
}

static void test_generation_stable_in_process(void **state)
{
    (void)state;
    unsigned g = dsc_fork_generation();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dsc_fork_generation(), g);
    /* The same in every thread of the process. */
    unsigned other = g + 100;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gen_thread, &other), 0);
    pthread_join(t, NULL);
    assert_int_equal(other, g);
}

/* The child's verdict on its generation against the parent's. */
static int judge(unsigned parent, unsigned child)
{
    if (dsc_fork_generation() != child)
        return CHILD_UNSTABLE;
    if (child == parent)
        return CHILD_SAME;
    if (child < parent)
        return CHILD_SMALLER;
    return CHILD_OK;
}

static void test_generation_larger_in_child(void **state)
{
    (void)state;
    unsigned g = dsc_fork_generation();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned c = dsc_fork_generation();
        int verdict = judge(g, c);
        if (verdict != CHILD_OK)
            _exit(verdict);
        /* And again one level down. */
        pid_t gp = fork();
        if (gp < 0)
            _exit(CHILD_FORK_FAILED);
        if (gp == 0)
            _exit(judge(c, dsc_fork_generation()));
        int st = 0;
        if (waitpid(gp, &st, 0) != gp || !WIFEXITED(st) ||
            WEXITSTATUS(st) != CHILD_OK)
            _exit(CHILD_GRAND_BAD);
        _exit(dsc_fork_generation() == c ? CHILD_OK : CHILD_UNSTABLE);
    }
    int code = wait_status(pid);
    if (code != CHILD_OK)
        fail_msg("child reported %d (20 same, 21 smaller, 22 unstable, "
                 "23 fork failed, 24 grandchild not larger)", code);
    /* The parent's own generation did not move. */
    assert_int_equal(dsc_fork_generation(), g);
}

typedef struct holder {
    int locked_w;     /* written once the remake lock is held */
    int release_r;    /* read to know when to let go */
} holder;

static void *hold_remake(void *arg)
{
    holder *h = arg;
    char c;
    dsc_fork_remake_lock();
    if (write(h->locked_w, "L", 1) != 1)
        abort();
    while (read(h->release_r, &c, 1) < 0 && errno == EINTR)
        ;
    dsc_fork_remake_unlock();
    return NULL;
}

static void test_remake_lock_usable_in_child(void **state)
{
    (void)state;
    (void)dsc_fork_generation();    /* as every user does before forking */
    int locked[2], release[2];
    assert_int_equal(pipe(locked), 0);
    assert_int_equal(pipe(release), 0);
    holder h = { locked[1], release[0] };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_remake, &h), 0);
    char c;
    assert_int_equal(read(locked[0], &c, 1), 1);
    /* Fork while another thread of ours holds the lock. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);                   /* a deadlock ends as SIGALRM */
        dsc_fork_remake_lock();
        dsc_fork_remake_unlock();
        dsc_fork_remake_lock();
        dsc_fork_remake_unlock();
        _exit(CHILD_OK);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(write(release[1], "R", 1), 1);
    pthread_join(t, NULL);
    for (int i = 0; i < 2; i++) {
        close(locked[i]);
        close(release[i]);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != CHILD_OK)
        fail_msg("child could not take the remake lock (status %#x)", st);
    /* The parent's lock works as before. */
    dsc_fork_remake_lock();
    dsc_fork_remake_unlock();
}

/* Forked workers draw different numbers (backoff jitter, file names):
 * the child reseeds, it does not continue the parent's sequence. */
static void test_children_draw_different_random(void **state)
{
    (void)state;
    (void)dsc_rand_below(1000);      /* the parent has drawn: state set */
    enum { KIDS = 3 };
    int fds[KIDS][2];
    pid_t pids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        assert_int_equal(pipe(fds[k]), 0);
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            alarm(10);
            uint64_t v[4];
            for (int i = 0; i < 4; i++)
                v[i] = dsc_rand_below(UINT64_MAX);
            _exit(write(fds[k][1], v, sizeof v) == (ssize_t)sizeof v ? CHILD_OK : 1);
        }
        close(fds[k][1]);
    }
    uint64_t got[KIDS][4];
    for (int k = 0; k < KIDS; k++) {
        assert_int_equal(read(fds[k][0], got[k], sizeof got[k]), sizeof got[k]);
        close(fds[k][0]);
        int st = 0;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK);
    }
    uint64_t mine = dsc_rand_below(UINT64_MAX);
    for (int a = 0; a < KIDS; a++) {
        assert_true(got[a][0] != mine);
        for (int b = 0; b < a; b++)
            if (memcmp(got[a], got[b], sizeof got[a]) == 0)
                fail_msg("children %d and %d drew the same sequence", a, b);
    }
}

/* The random lock held by a parent thread at fork() does not hang the
 * child. */
static void *draw_forever(void *arg)
{
    int *stop = arg;
    while (!__atomic_load_n(stop, __ATOMIC_RELAXED))
        (void)dsc_rand_below(7);
    return NULL;
}

static void test_random_usable_in_child_during_draws(void **state)
{
    (void)state;
    int stop = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, draw_forever, &stop), 0);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(10);               /* a deadlock ends as SIGALRM */
            (void)dsc_rand_below(100);
            _exit(CHILD_OK);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != CHILD_OK)
            fail_msg("child %d hung or failed drawing (status %#x)", i, st);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
}

static unsigned long definitely_lost(void)
{
#ifdef HAVE_MEMCHECK
    if (RUNNING_ON_VALGRIND) {
        unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
        VALGRIND_DO_QUICK_LEAK_CHECK;
        VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
        (void)dubious;
        (void)reachable;
        (void)suppressed;
        return leaked;
    }
#endif
    return 0;
}

enum { PER_THREAD = 3000, THREADS = 4 };

static void *bury_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char *p = malloc(24);
        if (!p)
            abort();
        snprintf(p, 24, "buried %d", i);
        dsc_fork_graveyard(p);
    }
    return NULL;
}

static void test_graveyard(void **state)
{
    (void)state;
    unsigned long lost_before = definitely_lost();
    dsc_fork_graveyard(NULL);
    /* Many pointers, from several threads at once (the array grows many
     * times while others add). */
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bury_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    dsc_fork_graveyard(NULL);
    /* A buried object is never touched again: its bytes stay ours. */
    char *mine = malloc(64);
    assert_non_null(mine);
    memset(mine, 0x5c, 64);
    dsc_fork_graveyard(mine);
    for (int i = 0; i < 64; i++)
        assert_int_equal((unsigned char)mine[i], 0x5c);
    mine = NULL;
    /* Buried objects stay reachable (never "definitely lost" to a leak
     * checker); only checkable under valgrind. */
    assert_int_equal(definitely_lost(), lost_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generation_stable_in_process),
        cmocka_unit_test(test_generation_larger_in_child),
        cmocka_unit_test(test_remake_lock_usable_in_child),
        cmocka_unit_test(test_graveyard),
        cmocka_unit_test(test_children_draw_different_random),
        cmocka_unit_test(test_random_usable_in_child_during_draws),
    };
    return cmocka_run_group_tests_name("fork", tests, NULL, NULL);
}
