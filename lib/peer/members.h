/* The peers a client knows (a roster) and, when DSC_PEERS names DNS
 * records, the thread that keeps them current. For lib/peer only. */
#ifndef DSC_PEER_MEMBERS_H
#define DSC_PEER_MEMBERS_H

#include "core/types.h"
#include "peer/client.h"
#include "peer/ring.h"

typedef struct dsc_peer_state {
    int64_t down_until_ms;         /* dsc_atomic_get/set; monotonic clock */
    int warned;                    /* dsc_log_once */
} dsc_peer_state;

/* The peers as known at one moment. A read holds a reference from route
 * to the end of its request, so a membership change never pulls a ring
 * or a peer's state out from under it. */
struct dsc_peer_members {
    int refs;                      /* dsc_ref_get/put */
    dsc_ring *ring;                /* NULL: no peer known (discovery) */
    int self;                      /* this node's index, or -1 */
    dsc_peer_state *st;            /* one per ring peer */
    char *list;                    /* what it was made of */
};

typedef struct dsc_roster dsc_roster;

typedef struct dsc_roster_opts {
    const char *spec;              /* DSC_PEERS: a list, dns: or srv: */
    const char *self;              /* NULL: no peer is this node */
    long refresh_s;                /* dns:/srv: resolved again this often
                                      (1..86400, checked with the config) */
    long first_wait_ms;            /* open waits this long for DNS at most */
} dsc_roster_opts;

/* A fixed list is checked here (DSC_EINVAL naming the entry); DNS
 * records are resolved by a thread, waited for first_wait_ms at most: no
 * answer yet means no peers yet (reads go to S3), said in the log. */
int dsc_roster_new(const dsc_roster_opts *o, dsc_roster **out);
/* Stops the refresher without waiting out a resolver stuck on a silent
 * server: after a short wait it is left to finish alone. */
void dsc_roster_free(dsc_roster *r);

/* The members now, referenced (dsc_members_put); NULL when a fork child
 * could not re-make its lock. Thread-safe. */
dsc_peer_members *dsc_roster_get(dsc_roster *r);
void dsc_members_put(dsc_peer_members *m);

void dsc_roster_counts(dsc_roster *r, uint64_t *changes, uint64_t *resolve_errors);

#endif
