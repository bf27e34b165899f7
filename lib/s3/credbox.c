/* Temporary credentials kept fresh for one S3 client. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/atomic.h"
#include "core/common.h"
#include "core/log.h"
#include "s3/credbox.h"

struct dsc_credbox {
    const dsc_creds *creds;        /* the source; immutable, not owned */

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t done;           /* a refresh ended */
    dsc_keyset *cur;
    int64_t fetched_at;            /* when cur was fetched, Unix seconds */
    int refreshing;                /* a caller is fetching */
    int64_t next_try;              /* after a failure: not before */
    char last_err[512];            /* why the last refresh failed */

    uint64_t refreshed, failed;    /* counters (core/atomic.h) */
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int keyset_new(const dsc_keys *k, unsigned gen, const char *source,
                      dsc_keyset **out)
{
    *out = NULL;
    /* They go into headers: a control byte would add headers of the
     * source's choosing to every request. */
    if (!dsc_header_value_ok(k->access_key) ||
        !dsc_header_value_ok(k->secret_key) ||
        !dsc_header_value_ok(k->session_token))
        return dsc_fail(DSC_ECREDS, "credentials from %s hold a control "
                        "character; refusing to put them in a request",
                        source);
    dsc_keyset *ks = calloc(1, sizeof *ks);
    if (!ks || dsc_keys_copy(&ks->k, k)) {
        free(ks);
        return DSC_ENOMEM;
    }
    ks->refs = 1;
    ks->gen = gen;
    *out = ks;
    return 0;
}

void dsc_keyset_put(dsc_keyset *ks)
{
    if (ks && dsc_ref_put(&ks->refs)) {
        dsc_keys_free(&ks->k);
        free(ks);
    }
}

void dsc_credbox_windows(int64_t lifetime, int64_t *advisory,
                         int64_t *mandatory)
{
    if (lifetime < 0)
        lifetime = 0;
    *advisory = lifetime / 2 < 15 * 60 ? lifetime / 2 : 15 * 60;
    *mandatory = lifetime / 4 < 10 * 60 ? lifetime / 4 : 10 * 60;
}

int dsc_credbox_new(const dsc_creds *creds, dsc_credbox **out)
{
    dsc_credbox *b = calloc(1, sizeof *b);
    if (!b)
        return DSC_ENOMEM;
    b->creds = creds;
    int rc = keyset_new(&creds->keys, 0, creds->source, &b->cur);
    if (rc) {
        free(b);
        return rc;
    }
    b->fetched_at = now_s();
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->done, NULL);
    *out = b;
    return 0;
}

void dsc_credbox_free(dsc_credbox *b)
{
    if (!b)
        return;
    dsc_keyset_put(b->cur);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->done);
    free(b);
}

static int expires_in_window(const dsc_credbox *b, int64_t now,
                             int *mandatory)
{
    int64_t exp = b->cur->k.expires;
    if (!b->creds->refresh || exp == 0)
        return 0;
    int64_t adv, man;
    dsc_credbox_windows(exp - b->fetched_at, &adv, &man);
    *mandatory = now >= exp - man;
    return now >= exp - adv;
}

/* Fetch new keys with mu released; one caller at a time. Called with mu
 * held and b->refreshing set by the caller. */
static void refresh_locked(dsc_credbox *b)
{
    unsigned gen = b->cur->gen;
    pthread_mutex_unlock(&b->mu);
    dsc_keys fresh = { 0 };
    dsc_keyset *ks = NULL;
    int rc = dsc_creds_fetch(b->creds, &fresh);
    int64_t now = now_s();
    if (!rc && fresh.expires && fresh.expires <= now)
        rc = dsc_fail(DSC_ECREDS, "%s gave keys that expired %lld s ago: is "
                      "this machine's clock right?", b->creds->source,
                      (long long)(now - fresh.expires));
    if (!rc)
        rc = keyset_new(&fresh, gen + 1, b->creds->source, &ks);
    char why[512] = "";
    if (rc)
        snprintf(why, sizeof why, "%s", dsc_errmsg());
    dsc_keys_free(&fresh);
    pthread_mutex_lock(&b->mu);
    if (ks) {
        /* Published before the old set is dropped, so cur is always a
         * live set, even to a fork()ed child reading it (credbox_inherit). */
        dsc_keyset *old = b->cur;
        dsc_atomic_publish(&b->cur, ks);
        dsc_keyset_put(old);
        b->fetched_at = now;
        b->next_try = 0;
        dsc_counter_add(&b->refreshed, 1);
        dsc_log(DSC_LOG_INFO, "credentials refreshed from %s: %s, expire in "
                "%lld s", b->creds->source, ks->k.access_key ? ks->k.access_key
                                                             : "(anonymous)",
                (long long)(ks->k.expires ? ks->k.expires - now : 0));
    } else {
        /* Do not ask again on every request: a failing source is asked
         * every few seconds at most. */
        int64_t left = b->cur->k.expires - now;
        int64_t wait = left / 10 < 1 ? 1 : left / 10 > 30 ? 30 : left / 10;
        b->next_try = now + wait;
        snprintf(b->last_err, sizeof b->last_err, "%s",
                 why[0] ? why : "refresh failed");
        dsc_counter_add(&b->failed, 1);
        dsc_log(DSC_LOG_WARN, "credentials from %s: refresh failed (%s); the "
                "current ones expire in %lld s", b->creds->source, b->last_err,
                (long long)left);
    }
    b->refreshing = 0;
    pthread_cond_broadcast(&b->done);
}

dsc_keyset *dsc_credbox_hold(dsc_credbox *b)
{
    pthread_mutex_lock(&b->mu);
    int64_t now = now_s();
    int mandatory = 0;
    if (expires_in_window(b, now, &mandatory)) {
        if (!b->refreshing && now >= b->next_try) {
            b->refreshing = 1;
            refresh_locked(b);
        } else if (mandatory) {
            while (b->refreshing)
                pthread_cond_wait(&b->done, &b->mu);
        }
    }
    dsc_keyset *ks = b->cur;
    int expired = ks->k.expires && now_s() >= ks->k.expires &&
                  b->creds->refresh;
    if (!expired)
        dsc_ref_get(&ks->refs);
    else
        dsc_fail(DSC_ECREDS, "credentials from %s expired and could not be "
                 "refreshed: %s", b->creds->source, b->last_err);
    pthread_mutex_unlock(&b->mu);
    return expired ? NULL : ks;
}

int dsc_credbox_expired(dsc_credbox *b, unsigned gen)
{
    if (!b->creds->refresh)
        return dsc_fail(DSC_ECREDS, "credentials from %s were refused as "
                        "expired, and that source cannot refresh them",
                        b->creds->source);
    pthread_mutex_lock(&b->mu);
    while (b->refreshing)
        pthread_cond_wait(&b->done, &b->mu);
    /* Renew only keys that had time to go stale: keys just fetched and
     * refused again would make every request a fetch; and a source that
     * just failed is not asked again before its pause is over (callers
     * that waited for that attempt take its answer). */
    int64_t now = now_s();
    int fresh = now - b->fetched_at < DSC_CREDBOX_MIN_AGE;
    if (b->cur->gen == gen && !fresh && now >= b->next_try) {
        b->refreshing = 1;
        refresh_locked(b);
    }
    int rc = 0;
    if (b->cur->gen == gen)
        rc = dsc_fail(DSC_ECREDS, "credentials from %s were refused as "
                      "expired and %s%s", b->creds->source,
                      fresh ? "were fetched moments ago (is this machine's "
                              "clock right?)" : "could not be refreshed: ",
                      fresh ? "" : b->last_err);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void dsc_credbox_inherit(dsc_credbox *b, const dsc_credbox *parent)
{
    /* In a fork()ed child: the parent's lock may be held by a thread that
     * is not here, so read its current set without it (always live, see
     * refresh_locked). */
    const dsc_keyset *cur = dsc_atomic_acquire(&parent->cur);
    dsc_keyset *ks;
    if (keyset_new(&cur->k, cur->gen, b->creds->source, &ks))
        return;
    pthread_mutex_lock(&b->mu);
    dsc_keyset *old = b->cur;
    dsc_atomic_publish(&b->cur, ks);
    dsc_keyset_put(old);
    b->fetched_at = parent->fetched_at;
    pthread_mutex_unlock(&b->mu);
}

void dsc_credbox_counts(dsc_credbox *b, uint64_t *refreshed, uint64_t *failed)
{
    *refreshed = dsc_counter_get(&b->refreshed);
    *failed = dsc_counter_get(&b->failed);
}
