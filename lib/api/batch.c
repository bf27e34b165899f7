/* dsc_read_batch: many small objects read whole at once, so their
 * round trips overlap instead of adding up. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "api/context.h"

#define BATCH_DEFAULT_THREADS 16

typedef struct batch_run {
    /* Set before the threads start, read-only after. */
    dsc_ctx *ctx;
    dsc_batch_item *items;
    size_t n;
    /* Guarded by mu. */
    pthread_mutex_t mu;
    size_t next;            /* first item no thread took yet */
    size_t failed;
    size_t first_bad;       /* index of the lowest failed item, n if none */
    char detail[1024];      /* its dsc_errmsg(), from the thread that read it */
} batch_run;

/* One item, whole or its first cap bytes; its status says how it went. */
static void read_item(dsc_ctx *ctx, dsc_batch_item *it)
{
    ssize_t got = dsc_read_url(ctx, it->url, it->buf, it->cap, 0, &it->size);
    it->status = got < 0 ? (int)got : 0;
    it->len = got < 0 ? 0 : (size_t)got;
}

/* The next item no thread took yet, or run->n. */
static size_t take(batch_run *run)
{
    pthread_mutex_lock(&run->mu);
    size_t i = run->next < run->n ? run->next++ : run->n;
    pthread_mutex_unlock(&run->mu);
    return i;
}

static void read_one(batch_run *run, size_t i)
{
    dsc_clear_error();
    read_item(run->ctx, &run->items[i]);
    if (run->items[i].status) {
        char msg[sizeof run->detail];
        snprintf(msg, sizeof msg, "%s", dsc_errmsg());
        pthread_mutex_lock(&run->mu);
        run->failed++;
        if (i < run->first_bad) {
            run->first_bad = i;
            memcpy(run->detail, msg, sizeof msg);
        }
        pthread_mutex_unlock(&run->mu);
    }
}

static void *batch_thread(void *arg)
{
    batch_run *run = arg;
    dsc_thread_name("dsc-batch");
    for (size_t i; (i = take(run)) < run->n;)
        read_one(run, i);
    return NULL;
}

/* Helpers come only once items show they wait on the network: an item
 * read from the cache takes microseconds, and a dataloader runs one
 * reading process per core already, so a helper for cached items only
 * competes with the other workers (a warm 4-worker epoch on 2 cores ran
 * ~25 % slower with one). Then all of them come, so round trips overlap.
 * Only time spent in items that slept counts (a voluntary context switch:
 * a GET, a flight, a disk read): on a busy node a cached read is often
 * preempted for longer than a round trip without sleeping. SLOW_US over
 * two or more such items (a 1 ms origin brings helpers at the third), or
 * SLOW_ONE_US in one: a lone item may have slept on this process's
 * once-a-second write of its counters, an LMDB commit that can wait
 * behind other processes' writes. */
#define SLOW_US 3000
#define SLOW_ONE_US 15000

/* -1 when the thread's count is not to be had (then every item counts as
 * having slept: helpers as before, rather than never). */
static long voluntary_switches(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : -1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void spawn(batch_run *run, pthread_t *tids, unsigned *started,
                  unsigned upto)
{
    while (*started < upto &&
           pthread_create(&tids[*started], NULL, batch_thread, run) == 0)
        ++*started;
}

ssize_t dsc_read_batch(dsc_ctx *ctx, dsc_batch_item *items, size_t n,
                       unsigned threads)
{
    dsc_clear_error();
    if (!ctx || (n && !items))
        return dsc_fail(DSC_EINVAL, "dsc_read_batch: ctx or items is NULL");
    for (size_t i = 0; i < n; i++)
        if (!items[i].url || (items[i].cap && !items[i].buf))
            return dsc_fail(DSC_EINVAL, "dsc_read_batch: item %zu: %s", i,
                            items[i].url ? "NULL buffer" : "NULL url");
    if (n == 0)
        return 0;
    if (threads == 0)
        threads = BATCH_DEFAULT_THREADS;
    if (threads > n)
        threads = (unsigned)n;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += items[i].cap < SIZE_MAX - total ? items[i].cap : SIZE_MAX - total;
    dsc_heap_expect(total);
    batch_run run = { .ctx = ctx, .items = items, .n = n, .first_bad = n };
    pthread_mutex_init(&run.mu, NULL);
    pthread_t *tids = calloc(threads, sizeof *tids);
    unsigned started = 0, helpers = tids ? threads - 1 : 0;
    int64_t slept_us = 0;
    unsigned slept_items = 0;
    /* One item's end is the next one's start: a clock read and a
     * getrusage an item, not two of each. */
    int64_t t0 = now_us();
    long sw0 = voluntary_switches();
    for (size_t i; (i = take(&run)) < n;) {
        read_one(&run, i);
        if (started == helpers)
            continue;
        int64_t t1 = now_us();
        long sw1 = voluntary_switches();
        if (sw0 < 0 || sw1 < 0 || sw1 != sw0) {
            slept_us += t1 - t0;
            slept_items++;
        }
        t0 = t1;
        sw0 = sw1;
        if (slept_us >= (slept_items >= 2 ? SLOW_US : SLOW_ONE_US))
            spawn(&run, tids, &started, helpers);
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    pthread_mutex_destroy(&run.mu);
    dsc_clear_error();
    if (run.failed)
        dsc_fail(items[run.first_bad].status, "item %zu: %s", run.first_bad,
                 run.detail);
    return (ssize_t)run.failed;
}
