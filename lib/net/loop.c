/* One thread, one curl multi handle, many transfers. Submissions arrive
 * on a list under a mutex and wake the thread (curl_multi_wakeup); a
 * transfer with a delay (a retry's back-off) waits in the thread's own
 * list until due, so back-off costs no thread either. Callbacks run on
 * the loop's thread with no lock held, so they may submit again. */
#include <pthread.h>
#include <stdlib.h>
#include "net/loop.h"

typedef struct job {
    CURL *c;
    int64_t due;                   /* dsc_now_ms() when it may start */
    dsc_loop_fn fn;
    void *arg;
    struct job *next;
} job;

struct dsc_loop {
    /* Set at new, read-only after. */
    CURLM *m;
    pthread_t thread;
    /* Guarded by mu. */
    pthread_mutex_t mu;
    job *incoming;                 /* submitted, not taken by the thread */
    int stop;
    /* The loop's thread only (then dsc_loop_free's, after the join). */
    job *waiting;                  /* taken, due later */
    job *running;                  /* added to m */
};

static void unlink_job(job **list, job *j)
{
    for (job **p = list; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

/* Start what is due; returns ms until the next waiting job (-1: none). */
static long start_due(dsc_loop *l)
{
    int64_t now = dsc_now_ms();
    long next = -1;
    for (job **p = &l->waiting; *p;) {
        job *j = *p;
        if (j->due > now) {
            long in = (long)(j->due - now);
            if (next < 0 || in < next)
                next = in;
            p = &j->next;
            continue;
        }
        *p = j->next;
        curl_easy_setopt(j->c, CURLOPT_PRIVATE, j);
        if (curl_multi_add_handle(l->m, j->c) != CURLM_OK) {
            j->fn(j->arg, CURLE_OUT_OF_MEMORY);
            free(j);
            continue;
        }
        j->next = l->running;
        l->running = j;
    }
    return next;
}

static void finish_done(dsc_loop *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *c = msg->easy_handle;
        CURLcode code = msg->data.result;
        job *j = NULL;
        curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&j);
        curl_multi_remove_handle(l->m, c);
        unlink_job(&l->running, j);
        j->fn(j->arg, code);
        free(j);
    }
}

static void *loop_main(void *arg)
{
    dsc_loop *l = arg;
    dsc_thread_name("dsc-loop");
    for (;;) {
        pthread_mutex_lock(&l->mu);
        int stop = l->stop;
        while (l->incoming) {
            job *j = l->incoming;
            l->incoming = j->next;
            j->next = l->waiting;
            l->waiting = j;
        }
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        long next = start_due(l);
        int still;
        curl_multi_perform(l->m, &still);
        finish_done(l);
        long wait = -1;
        curl_multi_timeout(l->m, &wait);
        if (wait < 0 || wait > 1000)
            wait = 1000;
        if (next >= 0 && next < wait)
            wait = next;
        if (wait > 0)
            curl_multi_poll(l->m, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

int dsc_loop_new(dsc_loop **out)
{
    dsc_loop *l = calloc(1, sizeof *l);
    if (!l)
        return DSC_ENOMEM;
    l->m = curl_multi_init();
    if (!l->m) {
        free(l);
        return DSC_ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, loop_main, l)) {
        pthread_mutex_destroy(&l->mu);
        curl_multi_cleanup(l->m);
        free(l);
        return dsc_fail(DSC_ENOMEM, "cannot start the transfer loop's thread");
    }
    *out = l;
    return 0;
}

static void abort_list(job **list, CURLM *m)
{
    while (*list) {
        job *j = *list;
        *list = j->next;
        if (m)
            curl_multi_remove_handle(m, j->c);
        j->fn(j->arg, CURLE_ABORTED_BY_CALLBACK);
        free(j);
    }
}

void dsc_loop_free(dsc_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_mutex_unlock(&l->mu);
    curl_multi_wakeup(l->m);
    pthread_join(l->thread, NULL);
    /* stop is set: a callback's submit is refused, so the lists only
     * shrink. */
    abort_list(&l->running, l->m);
    abort_list(&l->waiting, NULL);
    abort_list(&l->incoming, NULL);
    curl_multi_cleanup(l->m);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int dsc_loop_submit(dsc_loop *l, CURL *c, long delay_ms, dsc_loop_fn fn,
                    void *arg)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return DSC_ENOMEM;
    *j = (job){ c, dsc_now_ms() + (delay_ms > 0 ? delay_ms : 0), fn, arg, NULL };
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    if (l->stop) {
        rc = dsc_fail(DSC_ECANCELED, "the transfer loop is stopping");
    } else {
        j->next = l->incoming;
        l->incoming = j;
        j = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    free(j);
    if (!rc)
        curl_multi_wakeup(l->m);
    return rc;
}
