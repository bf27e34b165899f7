/* Rosters (members.h). The refresher owns a reference of its own, so a
 * context can close while the resolver waits out a silent DNS server: the
 * thread finishes later and frees what is left. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/atomic.h"
#include "core/fork.h"
#include "core/log.h"
#include "peer/discover.h"
#include "peer/members.h"

/* How long closing waits for a refresher in the middle of a resolution. */
#define STOP_WAIT_MS 250

struct dsc_roster {
    int refs;                      /* dsc_ref: the owner, a running refresher */
    /* Set at creation, read-only after. */
    dsc_discovery disc;
    char *spec;
    char *self;                    /* canonical "addr:port" (DNS) */
    long refresh_s;
    /* Per process: re-made by the first call in a fork child (a parent
     * thread may have held mu), which also starts the child's refresher. */
    unsigned proc_gen;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    /* Guarded by mu. */
    dsc_peer_members *now;
    int stop;
    int answered;                  /* the first resolution ended */
    int thread_here;               /* a refresher runs in this process */
    pthread_t thread;
    /* Counters (core/atomic.h). */
    uint64_t changes, resolve_errors;
    /* The refresher's own. */
    int in_outage;
    int had_answer;
    int warned_self;
};

void dsc_members_put(dsc_peer_members *m)
{
    if (!m || !dsc_ref_put(&m->refs))
        return;
    dsc_ring_free(m->ring);
    free(m->st);
    free(m->list);
    free(m);
}

/* Members from a "host:port,..." list ("" for none). A fixed list must
 * name this node when self is set; a discovered one may not. Peers that
 * stay keep their back-off state from prev. */
static int members_new(const dsc_roster *r, const char *list,
                       const dsc_peer_members *prev, dsc_peer_members **out)
{
    *out = NULL;
    dsc_peer_members *m = calloc(1, sizeof *m);
    if (!m)
        return DSC_ENOMEM;
    m->refs = 1;
    m->self = -1;
    int fixed = r->disc.kind == DSC_PEERS_LIST;
    int rc = (m->list = dsc_strdup(list)) ? 0 : DSC_ENOMEM;
    if (!rc && *list)
        rc = dsc_ring_new(list, fixed ? r->self : NULL, &m->ring);
    if (!rc && m->ring) {
        m->self = r->self ? dsc_ring_find(m->ring, r->self) : -1;
        m->st = calloc(dsc_ring_size(m->ring), sizeof *m->st);
        rc = m->st ? 0 : DSC_ENOMEM;
    }
    for (size_t i = 0; !rc && m->ring && prev && prev->ring &&
                       i < dsc_ring_size(m->ring); i++) {
        int was = dsc_ring_find(prev->ring, dsc_ring_peer(m->ring, i));
        if (was >= 0)
            m->st[i].down_until_ms = dsc_atomic_get(&prev->st[was].down_until_ms);
    }
    if (rc) {
        dsc_members_put(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void roster_put(dsc_roster *r)
{
    if (!dsc_ref_put(&r->refs))
        return;
    if (dsc_fork_current(&r->proc_gen)) {
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->mu);
    }
    dsc_members_put(r->now);
    dsc_discovery_free(&r->disc);
    free(r->spec);
    free(r->self);
    free(r);
}

/* Swap in the members a resolution found, when they differ. */
static void adopt(dsc_roster *r, const char *list)
{
    pthread_mutex_lock(&r->mu);
    dsc_peer_members *prev = r->now;
    dsc_ref_get(&prev->refs);
    pthread_mutex_unlock(&r->mu);
    dsc_peer_members *m = NULL;
    if (strcmp(prev->list, list) == 0) {
        r->had_answer = 1;
        dsc_members_put(prev);
        return;
    }
    if (members_new(r, list, prev, &m)) {
        dsc_log(DSC_LOG_WARN, "peer discovery: %s named peers this node "
                "cannot use (%s); keeping the %zu it had", r->spec,
                dsc_errmsg(), prev->ring ? dsc_ring_size(prev->ring) : 0);
        dsc_members_put(prev);
        return;
    }
    pthread_mutex_lock(&r->mu);
    dsc_peer_members *old = r->now;
    r->now = m;
    pthread_mutex_unlock(&r->mu);
    if (r->had_answer)             /* the first answer fills, not changes */
        dsc_counter_add(&r->changes, 1);
    r->had_answer = 1;
    dsc_log(DSC_LOG_INFO, "peer discovery: %s now names %zu peers: %s",
            r->spec, m->ring ? dsc_ring_size(m->ring) : 0, *list ? list : "(none)");
    if (r->self && m->ring && m->self < 0)
        dsc_log_once(&r->warned_self, DSC_LOG_WARN, "peer discovery: this node "
                     "(DSC_SELF %s) is not among the peers %s names: it is "
                     "asked for no chunk (is DSC_SELF the address:port the "
                     "records give?)", r->self, r->spec);
    dsc_members_put(old);
    dsc_members_put(prev);
}

/* Resolve once: adopt the answer; keep the members when no answer came
 * (a DNS outage must not send the cluster's reads to S3). An outage is
 * logged when it starts and when it ends, not at every refresh. */
static void refresh(dsc_roster *r)
{
    char *list = NULL;
    if (dsc_discovery_resolve(&r->disc, &r->stop, &list) == 0) {
        if (r->in_outage)
            dsc_log(DSC_LOG_INFO, "peer discovery: %s answers again", r->spec);
        r->in_outage = 0;
        adopt(r, list);
    } else if (!dsc_atomic_get(&r->stop)) {
        dsc_counter_add(&r->resolve_errors, 1);
        if (!r->in_outage)
            dsc_log(DSC_LOG_WARN, r->had_answer ? "%s; keeping the peers known"
                    : "%s; reading from S3 until it answers", dsc_errmsg());
        r->in_outage = 1;
    }
    free(list);
    pthread_mutex_lock(&r->mu);
    r->answered = 1;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->mu);
}

static void *refresher_main(void *arg)
{
    dsc_roster *r = arg;
    dsc_thread_name("dsc-peers");
    for (int first = 1;; first = 0) {
        pthread_mutex_lock(&r->mu);
        if (!first) {
            struct timespec until = dsc_deadline(CLOCK_MONOTONIC,
                                                 (int64_t)r->refresh_s * 1000);
            while (!r->stop && pthread_cond_timedwait(&r->wake, &r->mu, &until) == 0)
                ;
        }
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        refresh(r);
    }
    roster_put(r);
    return NULL;
}

/* The lock, the condition and (DNS) the refresher of this process: at
 * creation, and again in a fork child, where the parent's refresher (and
 * its reference) does not exist. */
static int start_process(void *arg)
{
    dsc_roster *r = arg;
    int rc = pthread_mutex_init(&r->mu, NULL) || dsc_cond_init_monotonic(&r->wake);
    if (rc)
        return dsc_fail(DSC_ENOMEM, "peers: cannot make a lock");
    if (r->thread_here)
        r->refs--;
    r->thread_here = 0;
    r->stop = 0;
    if (r->disc.kind == DSC_PEERS_LIST)
        return 0;
    dsc_ref_get(&r->refs);
    if (pthread_create(&r->thread, NULL, refresher_main, r)) {
        r->refs--;
        return dsc_fail(DSC_ENOMEM, "peers: cannot start the discovery thread");
    }
    r->thread_here = 1;
    return 0;
}

/* "addr:port" as inet_ntop writes it ("[2001:db8::1]:7070"), so DSC_SELF
 * matches a discovered peer however the address was spelled. */
static char *canonical_self(const char *self)
{
    char host[64], addr[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 16];
    unsigned char bin[16];
    const char *colon = strrchr(self, ':');
    int v6 = self[0] == '[';
    size_t hl = colon ? (size_t)(colon - self) : 0;
    if (!colon || hl < 3 || hl >= sizeof host || (v6 && colon[-1] != ']'))
        return dsc_strdup(self);
    memcpy(host, self + v6, hl - 2 * v6);
    host[hl - 2 * v6] = '\0';
    int af = v6 ? AF_INET6 : AF_INET;
    if (inet_pton(af, host, bin) != 1 || !inet_ntop(af, bin, addr, sizeof addr))
        return dsc_strdup(self);
    snprintf(out, sizeof out, v6 ? "[%s]%s" : "%s%s", addr, colon);
    return dsc_strdup(out);
}

int dsc_roster_new(const dsc_roster_opts *o, dsc_roster **out)
{
    *out = NULL;
    dsc_roster *r = calloc(1, sizeof *r);
    if (!r)
        return DSC_ENOMEM;
    r->refs = 1;
    r->refresh_s = o->refresh_s;
    r->proc_gen = DSC_FORK_NONE;
    int rc = dsc_discovery_parse(o->spec, &r->disc);
    int dns = !rc && r->disc.kind != DSC_PEERS_LIST;
    if (!rc && !((r->spec = dsc_strdup(o->spec)) &&
                 (!o->self || (r->self = dns ? canonical_self(o->self)
                                             : dsc_strdup(o->self)))))
        rc = DSC_ENOMEM;
    if (!rc)
        rc = members_new(r, dns ? "" : o->spec, NULL, &r->now);
    if (!rc)
        rc = dsc_fork_ensure(&r->proc_gen, start_process, r);
    if (rc) {
        roster_put(r);
        return rc;
    }
    if (dns) {
        /* The first answer, when DNS gives it soon: without it the first
         * reads would all go to S3. */
        long ms = o->first_wait_ms > 0 ? o->first_wait_ms : 0;
        struct timespec until = dsc_deadline(CLOCK_MONOTONIC, ms);
        pthread_mutex_lock(&r->mu);
        while (!r->answered && pthread_cond_timedwait(&r->wake, &r->mu, &until) == 0)
            ;
        int answered = r->answered;
        size_t n = r->now->ring ? dsc_ring_size(r->now->ring) : 0;
        pthread_mutex_unlock(&r->mu);
        if (!answered)
            dsc_log(DSC_LOG_WARN, "peer discovery: no answer for %s within "
                    "%ld ms; reading from S3 until it answers", r->spec, ms);
        else if (n == 0)
            dsc_log(DSC_LOG_WARN, "peer discovery: %s names no peer yet; "
                    "reading from S3 until it does", r->spec);
    }
    *out = r;
    return 0;
}

void dsc_roster_free(dsc_roster *r)
{
    if (!r)
        return;
    if (dsc_fork_current(&r->proc_gen) && r->thread_here) {
        pthread_mutex_lock(&r->mu);
        dsc_atomic_set(&r->stop, 1);    /* also read between lookups */
        pthread_cond_broadcast(&r->wake);
        pthread_mutex_unlock(&r->mu);
        /* pthread_timedjoin_np counts on CLOCK_REALTIME. */
        struct timespec until = dsc_deadline(CLOCK_REALTIME, STOP_WAIT_MS);
        if (pthread_timedjoin_np(r->thread, NULL, &until))
            pthread_detach(r->thread);     /* it puts its own reference */
    }
    roster_put(r);
}

dsc_peer_members *dsc_roster_get(dsc_roster *r)
{
    if (dsc_fork_ensure(&r->proc_gen, start_process, r))
        return NULL;
    pthread_mutex_lock(&r->mu);
    dsc_peer_members *m = r->now;
    dsc_ref_get(&m->refs);
    pthread_mutex_unlock(&r->mu);
    return m;
}

void dsc_roster_counts(dsc_roster *r, uint64_t *changes, uint64_t *resolve_errors)
{
    *changes = dsc_counter_get(&r->changes);
    *resolve_errors = dsc_counter_get(&r->resolve_errors);
}
