/* Single flight: one fetch per chunk at a time across the threads and the
 * processes sharing a cache directory. */
#ifndef DSC_CACHE_FLIGHT_H
#define DSC_CACHE_FLIGHT_H

#include "core/types.h"

typedef struct dsc_flight dsc_flight;

int dsc_flight_new(const char *dir, dsc_flight **out);
void dsc_flight_free(dsc_flight *fl);

/* Take the lock for id's stripe, waiting at most timeout_ms. Returns the
 * stripe (>= 0) to pass to unlock, or DSC_ETIMEDOUT (the caller then
 * fetches without it: a duplicate GET beats a hang). */
int dsc_flight_lock(dsc_flight *fl, const dsc_chunk_id *id, long timeout_ms);
void dsc_flight_unlock(dsc_flight *fl, int stripe);

/* The stripe an id locks (two ids on one stripe share one lock). */
int dsc_flight_stripe(const dsc_chunk_id *id);

#endif
