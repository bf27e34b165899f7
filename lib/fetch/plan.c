/* Plans: the reader's whole order of items, fetched ahead of it within a
 * byte window (clairvoyant prefetching). One plan is active per pool; a
 * new one replaces it. The reader's position comes from its reads
 * (dsc_pf_plan_observe), so a plan needs no calls in the training loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "fetch/internal.h"
#include "net/url.h"

/* How far ahead of the reader's position we look for its current item:
 * dataloader workers read a little out of order. */
#define PLAN_MATCH_SPAN 256

static void plan_free(dsc_plan_state *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->bucket[i]);
        free(ps->key[i]);
    }
    free(ps->bucket);
    free(ps->key);
    free(ps->off);
    free(ps->len);
    free(ps->bytes);
    free(ps);
}

void dsc_pf_plan_unref(dsc_plan_state *ps)
{
    if (--ps->refs == 0)
        plan_free(ps);
}

/* Fetch one item's chunks; size and ETag first (which also corrects the
 * item's share of the window). */
static int fetch_item(dsc_pf *pf, dsc_plan_state *ps, size_t i)
{
    uint64_t size;
    char *etag = NULL;
    int got_first;   /* chunk 0, if it came, is stored already */
    int rc = dsc_pf_stat(pf, ps->bucket[i], ps->key[i], &size, &etag, &got_first);
    if (rc)
        return rc;
    uint64_t off = ps->off[i], end = size;
    if (ps->len[i] && off + ps->len[i] < size)
        end = off + ps->len[i];
    uint64_t bytes = end > off ? end - off : 0;
    pthread_mutex_lock(&pf->mu);
    if (i >= ps->cursor)
        ps->ahead = ps->ahead - ps->bytes[i] + bytes;
    ps->bytes[i] = bytes;
    pthread_mutex_unlock(&pf->mu);
    dsc_s3 *s3 = dsc_pf_s3(pf);
    dsc_objref o = { ps->bucket[i], ps->key[i], etag, size };
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    for (uint64_t c = off / cs; !rc && off < end && c <= (end - 1) / cs; c++) {
        int fetched;
        if (dsc_atomic_get(&ps->stopped))
            break;
        rc = s3 ? dsc_cache_ensure_chunk(pf->env.cache, s3, &o, c, &fetched)
                : DSC_ENOMEM;
    }
    free(etag);
    return rc;
}

void dsc_pf_run_plan_item(dsc_pf *pf, dsc_pf_task *t)
{
    dsc_plan_state *ps = t->plan;
    size_t i = t->item;
    int rc = fetch_item(pf, ps, i);
    if (rc) {
        dsc_counter_add(&pf->n.errors, 1);
        dsc_log(DSC_LOG_DEBUG, "plan item %zu s3://%s/%s: %s", i,
                ps->bucket[i], ps->key[i], dsc_errmsg());
    } else {
        dsc_counter_add(&pf->n.done, 1);
    }
    pthread_mutex_lock(&pf->mu);
    dsc_pf_plan_top_up(pf, ps);
    dsc_pf_plan_unref(ps);
    pthread_mutex_unlock(&pf->mu);
}

/* Queue items while the window has room. */
void dsc_pf_plan_top_up(dsc_pf *pf, dsc_plan_state *ps)
{
    uint64_t cs = dsc_cache_chunk_size(pf->env.cache);
    while (!ps->stopped && ps->next < ps->n &&
           (ps->ahead < ps->window || ps->next <= ps->cursor)) {
        if (pf->bg.n >= pf->bg_cap)
            break;
        dsc_pf_task *t = calloc(1, sizeof *t);
        if (!t)
            break;
        size_t i = ps->next++;
        /* Until its HEAD is in, an item counts as its range or a chunk. */
        ps->bytes[i] = ps->len[i] ? ps->len[i] : cs;
        if (i >= ps->cursor)
            ps->ahead += ps->bytes[i];
        t->kind = DSC_PF_PLAN_ITEM;
        t->plan = ps;
        t->item = i;
        t->owner = ps;
        ps->refs++;
        dsc_pf_push(&pf->bg, t);
        pf->bg_outstanding++;
        dsc_counter_add(&pf->n.queued, 1);
    }
    pthread_cond_broadcast(&pf->work);
}

void dsc_pf_plan_dequeue(dsc_pf *pf, dsc_plan_state *ps)
{
    dsc_atomic_set(&ps->stopped, 1);
    for (dsc_pf_task *t = pf->bg.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->plan == ps) {
            dsc_pf_unlink(&pf->bg, t);
            dsc_pf_plan_unref(ps);
            dsc_pf_free_task(t);
            pf->bg_outstanding--;
            dsc_counter_add(&pf->n.dropped, 1);
        }
    }
}

/* The items, parsed; every URL must name an object. */
static int plan_new(dsc_pf *pf, const dsc_plan_item *items, size_t n,
                    uint64_t window, dsc_plan_state **out)
{
    dsc_plan_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return DSC_ENOMEM;
    ps->pf = pf;
    ps->n = n;
    ps->window = window;
    ps->refs = 1;
    ps->bucket = calloc(n ? n : 1, sizeof *ps->bucket);
    ps->key = calloc(n ? n : 1, sizeof *ps->key);
    ps->off = calloc(n ? n : 1, sizeof *ps->off);
    ps->len = calloc(n ? n : 1, sizeof *ps->len);
    ps->bytes = calloc(n ? n : 1, sizeof *ps->bytes);
    int rc = 0;
    if (!ps->bucket || !ps->key || !ps->off || !ps->len || !ps->bytes) {
        rc = DSC_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        dsc_s3url u;
        rc = dsc_s3url_parse(items[i].url, &u);
        if (rc == 0 && !*u.key) {
            dsc_s3url_free(&u);
            rc = dsc_fail(DSC_EURL, "plan item %zu names a bucket, not an "
                          "object", i);
        }
        if (rc) {
            char why[512];
            snprintf(why, sizeof why, "%s", dsc_errmsg());
            rc = dsc_fail(rc, "plan item %zu: %s", i, why);
            goto done;
        }
        ps->bucket[i] = u.bucket;
        ps->key[i] = u.key;
        ps->off[i] = items[i].off;
        ps->len[i] = items[i].len;
    }
done:
    if (rc)
        plan_free(ps);
    else
        *out = ps;
    return rc;
}

int dsc_pf_plan_start(dsc_pf *pf, const dsc_plan_item *items, size_t n,
                      uint64_t window, dsc_plan_state **out)
{
    dsc_plan_state *ps;
    int rc = plan_new(pf, items, n, window, &ps);
    if (rc)
        return rc;
    pthread_mutex_lock(&pf->mu);
    if (pf->plan) {
        /* One plan at a time: the new order replaces the old one. */
        dsc_pf_plan_dequeue(pf, pf->plan);
        dsc_pf_plan_unref(pf->plan);
    }
    dsc_atomic_set(&pf->plan, ps);
    ps->refs++;                 /* the pool's reference */
    dsc_pf_plan_top_up(pf, ps);
    pthread_mutex_unlock(&pf->mu);
    *out = ps;
    return 0;
}

void dsc_pf_plan_stop(dsc_pf *pf, dsc_plan_state *ps)
{
    pthread_mutex_lock(&pf->mu);
    dsc_pf_plan_dequeue(pf, ps);
    if (pf->plan == ps) {
        dsc_atomic_set(&pf->plan, NULL);
        dsc_pf_plan_unref(ps);
    }
    if (pf->bg_outstanding == 0)
        pthread_cond_broadcast(&pf->idle);
    dsc_pf_plan_unref(ps);      /* the user's reference */
    pthread_mutex_unlock(&pf->mu);
}

size_t dsc_pf_plan_position(const dsc_plan_state *ps)
{
    return dsc_atomic_get(&ps->cursor);
}

void dsc_pf_plan_observe(dsc_pf *pf, const char *bucket, const char *key)
{
    if (!dsc_atomic_get(&pf->plan))
        return;
    pthread_mutex_lock(&pf->mu);
    dsc_plan_state *ps = pf->plan;
    size_t end = ps && ps->cursor + PLAN_MATCH_SPAN < ps->n
                     ? ps->cursor + PLAN_MATCH_SPAN : ps ? ps->n : 0;
    for (size_t i = ps ? ps->cursor : 0; i < end; i++) {
        if (strcmp(ps->key[i], key) || strcmp(ps->bucket[i], bucket))
            continue;
        /* The reader is at item i: everything before it is consumed. */
        for (size_t j = ps->cursor; j < i && j < ps->next; j++)
            ps->ahead -= ps->bytes[j] <= ps->ahead ? ps->bytes[j] : ps->ahead;
        dsc_atomic_set(&ps->cursor, i);
        if (ps->next < i)
            ps->next = i;   /* passed before we queued them: skip */
        dsc_pf_plan_top_up(pf, ps);
        break;
    }
    pthread_mutex_unlock(&pf->mu);
}
