/* Fork generation counter and the graveyard of parent-only objects. */
#include <pthread.h>
#include <stdlib.h>
#include "core/atomic.h"
#include "core/common.h"
#include "core/fork.h"

static unsigned generation;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static void **grave;
static size_t ngrave, grave_cap;
static pthread_mutex_t remake_lock = PTHREAD_MUTEX_INITIALIZER;

static void in_child(void)
{
    /* Parent threads may have held these at fork time. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    grave_lock = fresh;
    remake_lock = fresh;
    dsc_rand_after_fork();
    dsc_atomic_next(&generation);
}

static void register_handler(void)
{
    pthread_atfork(NULL, NULL, in_child);
}

void dsc_fork_remake_lock(void)
{
    pthread_once(&once, register_handler);
    pthread_mutex_lock(&remake_lock);
}

void dsc_fork_remake_unlock(void)
{
    pthread_mutex_unlock(&remake_lock);
}

unsigned dsc_fork_generation(void)
{
    pthread_once(&once, register_handler);
    return dsc_atomic_acquire(&generation);
}

void dsc_fork_mark(unsigned *gen)
{
    dsc_atomic_publish(gen, dsc_fork_generation());
}

int dsc_fork_current(const unsigned *gen)
{
    return dsc_atomic_acquire(gen) == dsc_fork_generation();
}

int dsc_fork_ensure(unsigned *gen, dsc_fork_remake_fn remake, void *arg)
{
    unsigned now = dsc_fork_generation();
    if (__builtin_expect(dsc_atomic_acquire(gen) == now, 1))
        return 0;
    int rc = 0;
    dsc_fork_remake_lock();
    if (*gen != now) {
        rc = remake(arg);
        if (!rc)
            dsc_atomic_publish(gen, now);
    }
    dsc_fork_remake_unlock();
    return rc;
}

void dsc_fork_graveyard(void *p)
{
    if (!p)
        return;
    pthread_once(&once, register_handler);
    pthread_mutex_lock(&grave_lock);
    if (ngrave == grave_cap) {
        size_t cap = grave_cap ? grave_cap * 2 : 16;
        void **g = realloc(grave, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&grave_lock);
            return;   /* it leaks unreachable; harmless */
        }
        grave = g;
        grave_cap = cap;
    }
    grave[ngrave++] = p;
    pthread_mutex_unlock(&grave_lock);
}
