/* Single flight: one fetch per exact chunk at a time across the threads and the
 * processes sharing a cache directory. */
#ifndef DSC_CACHE_FLIGHT_H
#define DSC_CACHE_FLIGHT_H

#include "core/types.h"

typedef struct dsc_flight dsc_flight;

int dsc_flight_new(const char *dir, dsc_flight **out);
void dsc_flight_free(dsc_flight *fl);

/* Take id's lock, waiting at most timeout_ms in all. 0 when held (then
 * unlock it), else DSC_ETIMEDOUT or DSC_ENOMEM: the caller then fetches
 * without it (a duplicate GET beats a hang). Only the readers of id wait. */
int dsc_flight_lock(dsc_flight *fl, const dsc_chunk_id *id, long timeout_ms);
/* Take id's lock only if nobody holds it: 0 when held, DSC_BUSY when a
 * thread or process of ours or another holds it, DSC_ENOMEM. Never waits. */
int dsc_flight_trylock(dsc_flight *fl, const dsc_chunk_id *id);
/* Any thread of the process that took the lock may let it go (a fetch
 * the event loop completes is finished on another thread). */
void dsc_flight_unlock(dsc_flight *fl, const dsc_chunk_id *id);

#endif
