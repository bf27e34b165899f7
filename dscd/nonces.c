/* Open addressing over random keys: a nonce's first bytes are its hash. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dscd/nonces.h"

#define PROBES 64

typedef struct slot {
    uint8_t nonce[DSC_PEER_NONCE];
    int64_t until;                 /* 0: never used; <= now: free again */
} slot;

struct dsc_nonces {
    pthread_mutex_t mu;            /* guards slots */
    slot *slots;
    size_t cap;
};

int dsc_nonces_new(size_t capacity, dsc_nonces **out)
{
    dsc_nonces *n = calloc(1, sizeof *n);
    if (!n || !(n->slots = calloc(capacity ? capacity : 1, sizeof *n->slots))) {
        free(n);
        return DSC_ENOMEM;
    }
    n->cap = capacity ? capacity : 1;
    pthread_mutex_init(&n->mu, NULL);
    *out = n;
    return 0;
}

void dsc_nonces_free(dsc_nonces *n)
{
    if (!n)
        return;
    pthread_mutex_destroy(&n->mu);
    free(n->slots);
    free(n);
}

int dsc_nonces_claim(dsc_nonces *n, const uint8_t nonce[DSC_PEER_NONCE],
                     int64_t now, int64_t until)
{
    uint64_t h;
    memcpy(&h, nonce, sizeof h);
    size_t home = (size_t)(h % n->cap), probes = n->cap < PROBES ? n->cap : PROBES;
    slot *free_slot = NULL;
    int rc = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < probes; i++) {
        slot *s = &n->slots[(home + i) % n->cap];
        int live = s->until > now;
        if (live && memcmp(s->nonce, nonce, DSC_PEER_NONCE) == 0) {
            rc = DSC_EXISTS;
            goto done;
        }
        if (!live && !free_slot)
            free_slot = s;
    }
    if (!free_slot) {
        rc = DSC_EAGAIN;
        goto done;
    }
    memcpy(free_slot->nonce, nonce, DSC_PEER_NONCE);
    free_slot->until = until;
done:
    pthread_mutex_unlock(&n->mu);
    return rc;
}
