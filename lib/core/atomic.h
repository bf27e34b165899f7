/* The one place libdsc spells out atomics (as redis's atomicvar.h does):
 * statistics counters, and flags and pointers one thread publishes to
 * others. Everything else shared between threads is under a named mutex
 * (docs/CONVENTIONS.md, "Locks"). */
#ifndef DSC_CORE_ATOMIC_H
#define DSC_CORE_ATOMIC_H

#include <stdint.h>

/* Counters: monotonic, read for stats only, so no ordering is needed. */
static inline void dsc_counter_add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t dsc_counter_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* A level that goes up and down (bytes set aside), read as an estimate. */
static inline void dsc_gauge_add(uint64_t *g, uint64_t v)
{
    __atomic_fetch_add(g, v, __ATOMIC_RELAXED);
}

static inline void dsc_gauge_sub(uint64_t *g, uint64_t v)
{
    __atomic_fetch_sub(g, v, __ATOMIC_RELAXED);
}

/* A value read without a lock where a stale answer is harmless (a
 * back-off deadline, a "maybe there is a plan" hint). */
#define dsc_atomic_get(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define dsc_atomic_set(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Test-and-set of a once-flag; returns the old value. */
#define dsc_atomic_swap(p, v) __atomic_exchange_n((p), (v), __ATOMIC_RELAXED)

/* Publication: what a thread wrote before dsc_atomic_publish(p, v) is
 * visible to a thread that reads v through dsc_atomic_acquire(p). */
#define dsc_atomic_publish(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define dsc_atomic_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

/* Reference counts: the thread that drops the last one frees. */
#define dsc_ref_get(p) ((void)__atomic_add_fetch((p), 1, __ATOMIC_RELAXED))
#define dsc_ref_put(p) (__atomic_sub_fetch((p), 1, __ATOMIC_ACQ_REL) == 0)

/* A sequence number unique within the process. */
#define dsc_atomic_next(p) __atomic_add_fetch((p), 1, __ATOMIC_RELAXED)

#endif
