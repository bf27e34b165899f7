/* Rendezvous hashing: each chunk goes to the peer whose hash of (peer,
 * chunk) is highest. Chosen over a ketama ring because it needs no virtual
 * nodes to spread evenly, has no ring to rebuild, and moves exactly the
 * chunks of a peer that leaves (to the others, evenly) - at O(peers) per
 * lookup, which for the tens of nodes of a training cluster is a few
 * nanoseconds each. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "peer/ring.h"

typedef struct peer {
    char *name;
    uint64_t seed;      /* xxh3 of the name: the peer's hash salt */
} peer;

struct dsc_ring {
    peer *p;
    size_t n;
    int self;
};

static int cmp_peer(const void *a, const void *b)
{
    return strcmp(((const peer *)a)->name, ((const peer *)b)->name);
}

int dsc_ring_host_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!(dsc_isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '-' ||
              s[i] == '_'))
            return 0;
    return len > 0;
}

/* host:port with a port of 1..65535; host a name, IPv4 or [IPv6]. */
static int valid_peer(const char *s)
{
    const char *colon;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':')
            return 0;
        for (const char *q = s + 1; q < close; q++)
            if (!(dsc_isalnum((unsigned char)*q) || *q == ':' || *q == '.'))
                return 0;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || !dsc_ring_host_ok(s, (size_t)(colon - s)))
            return 0;
    }
    long port = 0;
    const char *d = colon + 1;
    if (!*d)
        return 0;
    for (; *d; d++) {
        if (!dsc_isdigit((unsigned char)*d) || port > 65535)
            return 0;
        port = port * 10 + (*d - '0');
    }
    return port >= 1 && port <= 65535;
}

void dsc_ring_free(dsc_ring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->p[i].name);
    free(r->p);
    free(r);
}

int dsc_ring_new(const char *peers, const char *self, dsc_ring **out)
{
    *out = NULL;
    if (!peers)
        return dsc_fail(DSC_EINVAL, "peer list is NULL");
    dsc_ring *r = calloc(1, sizeof *r);
    if (!r)
        return DSC_ENOMEM;
    r->self = -1;
    size_t cap = 0;
    const char *s = peers;
    int rc = 0;
    while (*s && !rc) {
        const char *comma = strchr(s, ',');
        const char *e = comma ? comma : s + strlen(s);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t > s) {
            char *name = dsc_strndup(s, (size_t)(t - s));
            char q[200];
            if (!name) {
                rc = DSC_ENOMEM;
            } else if (!valid_peer(name)) {
                rc = dsc_fail(DSC_EINVAL, "peer '%s' is not host:port",
                              dsc_printable(name, q, sizeof q));
                free(name);
            } else {
                if (r->n == cap) {
                    cap = cap ? cap * 2 : 8;
                    peer *np = realloc(r->p, cap * sizeof *np);
                    if (!np) {
                        free(name);
                        rc = DSC_ENOMEM;
                        break;
                    }
                    r->p = np;
                }
                r->p[r->n].name = name;
                r->p[r->n].seed = XXH3_64bits(name, strlen(name));
                r->n++;
            }
        }
        s = comma ? comma + 1 : e;
    }
    if (!rc && r->n == 0)
        rc = dsc_fail(DSC_EINVAL, "peer list is empty");
    if (!rc) {
        /* Sorted, so the owner cannot depend on the list's order and ties
         * (equal scores) break the same way on every node. */
        qsort(r->p, r->n, sizeof *r->p, cmp_peer);
        for (size_t i = 1; i < r->n && !rc; i++)
            if (strcmp(r->p[i].name, r->p[i - 1].name) == 0)
                rc = dsc_fail(DSC_EINVAL, "peer '%s' is listed twice",
                              r->p[i].name);
    }
    if (!rc && self) {
        for (size_t i = 0; i < r->n; i++)
            if (strcmp(r->p[i].name, self) == 0)
                r->self = (int)i;
        if (r->self < 0)
            rc = dsc_fail(DSC_EINVAL, "this node '%s' (DSC_SELF) is not in "
                          "the peer list", self);
    }
    if (rc) {
        dsc_ring_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

size_t dsc_ring_size(const dsc_ring *r)
{
    return r->n;
}

const char *dsc_ring_peer(const dsc_ring *r, size_t i)
{
    return i < r->n ? r->p[i].name : NULL;
}

int dsc_ring_self(const dsc_ring *r)
{
    return r->self;
}

int dsc_ring_find(const dsc_ring *r, const char *name)
{
    peer key = { (char *)name, 0 };
    const peer *hit = bsearch(&key, r->p, r->n, sizeof *r->p, cmp_peer);
    return hit ? (int)(hit - r->p) : -1;
}

size_t dsc_ring_owner(const dsc_ring *r, const dsc_chunk_id *id)
{
    size_t best = 0;
    uint64_t best_score = 0;
    for (size_t i = 0; i < r->n; i++) {
        uint64_t score = XXH3_64bits_withSeed(id->b, sizeof id->b, r->p[i].seed);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}
