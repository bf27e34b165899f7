/* dsc_read_batch: many small objects read whole at once, so their
 * round trips overlap instead of adding up. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
    for (size_t i; (i = take(run)) < run->n;)
        read_one(run, i);
    return NULL;
}

/* Helpers come as the items show what they cost: an item read from the
 * cache takes microseconds, and starting 15 threads for those costs more
 * than it saves, so cached items get one helper a spare core; the first
 * item that waited on the network brings all of them, so round trips
 * overlap. */
#define SLOW_ITEM_MS 3

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
    batch_run run = { .ctx = ctx, .items = items, .n = n, .first_bad = n };
    pthread_mutex_init(&run.mu, NULL);
    pthread_t *tids = calloc(threads, sizeof *tids);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned spare = cpus > 1 ? (unsigned)(cpus - 1) : 0;
    unsigned started = 0, helpers = tids ? threads - 1 : 0;
    if (spare > helpers)
        spare = helpers;
    for (size_t i; (i = take(&run)) < n;) {
        int64_t t0 = dsc_now_ms();
        read_one(&run, i);
        if (dsc_now_ms() - t0 >= SLOW_ITEM_MS)
            spawn(&run, tids, &started, helpers);
        else if (!started)
            spawn(&run, tids, &started, spare);
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
