/* Fork generation counter and the graveyard of parent-only objects. */
#include <pthread.h>
#include <stdlib.h>
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
    __atomic_fetch_add(&generation, 1, __ATOMIC_RELEASE);
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
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
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
