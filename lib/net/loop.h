/* An event loop of libcurl transfers: one thread runs many transfers in
 * flight through a curl multi handle, instead of one blocked thread each. */
#ifndef DSC_NET_LOOP_H
#define DSC_NET_LOOP_H

#include <curl/curl.h>
#include "core/common.h"

typedef struct dsc_loop dsc_loop;

/* Called on the loop's thread once per submitted transfer: with how it
 * ended, or CURLE_ABORTED_BY_CALLBACK when the loop is freed first. It may
 * submit again (a retry) and must not free the loop. */
typedef void (*dsc_loop_fn)(void *arg, CURLcode code);

/* Starts the loop's thread. 0, or DSC_ENOMEM. */
int dsc_loop_new(dsc_loop **out);

/* Stop the thread: every transfer not done yet is removed and its
 * callback told CURLE_ABORTED_BY_CALLBACK, on the thread calling this
 * (after the loop's thread has ended). */
void dsc_loop_free(dsc_loop *l);

/* Run the easy handle c (set up by the caller: net/http.h's
 * dsc_http_begin) after delay_ms (0: now; a retry's back-off), then call
 * fn(arg, code). Any thread. 0, or DSC_ENOMEM / DSC_ECANCELED (the loop
 * is stopping): then fn is not called. */
int dsc_loop_submit(dsc_loop *l, CURL *c, long delay_ms, dsc_loop_fn fn,
                    void *arg);

#endif
