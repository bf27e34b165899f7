/* Nonces of requests already answered, remembered for as long as their
 * signature's time window lasts: a captured request replayed to its node
 * within the window is refused. Bounded memory, thread-safe. */
#ifndef DSC_DSCD_NONCES_H
#define DSC_DSCD_NONCES_H

#include <stdint.h>
#include "peer/proto.h"

typedef struct dsc_nonces dsc_nonces;

int dsc_nonces_new(size_t capacity, dsc_nonces **out);
void dsc_nonces_free(dsc_nonces *n);

/* Claim nonce until `until` (unix seconds). 0: first use, now remembered;
 * DSC_EXISTS: seen and not yet expired (a replay); DSC_EAGAIN: the table
 * is full of live nonces (refuse: the asker reads from S3). */
int dsc_nonces_claim(dsc_nonces *n, const uint8_t nonce[DSC_PEER_NONCE],
                     int64_t now, int64_t until);

#endif
