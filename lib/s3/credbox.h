/* The keys an S3 client signs with, refreshed ahead of expiry: by one
 * thread at a time, while the others go on with the old keys until they
 * are about to expire. */
#ifndef DSC_S3_CREDBOX_H
#define DSC_S3_CREDBOX_H

#include "s3/creds.h"

/* An immutable set of keys; hold it for as long as a request signs. */
typedef struct dsc_keyset {
    int refs;
    unsigned gen;           /* which refresh made it */
    dsc_keys k;
} dsc_keyset;

typedef struct dsc_credbox dsc_credbox;

/* creds (the context's) must outlive the box; its keys are the first. */
int dsc_credbox_new(const dsc_creds *creds, dsc_credbox **out);
void dsc_credbox_free(dsc_credbox *b);

/* The keys to sign with now (a reference: dsc_keyset_put it). Refreshes
 * first when they are inside the refresh window: in the advisory window
 * one caller refreshes and the others sign with the old keys; in the
 * mandatory window every caller waits for the refresh. NULL with
 * DSC_ECREDS (message set) only when the keys have expired and no new
 * ones could be had. */
dsc_keyset *dsc_credbox_hold(dsc_credbox *b);
void dsc_keyset_put(dsc_keyset *ks);

/* S3 refused the keys of generation gen as expired: refresh now unless
 * another caller already did, the keys are younger than
 * DSC_CREDBOX_MIN_AGE seconds, or the source failed moments ago. 0 when
 * keys newer than gen are in place, else DSC_ECREDS. */
#define DSC_CREDBOX_MIN_AGE 5
int dsc_credbox_expired(dsc_credbox *b, unsigned gen);

/* In a fork()ed child, before b is used: start from the parent's current
 * keys instead of those resolved at open (they may be long refreshed). */
void dsc_credbox_inherit(dsc_credbox *b, const dsc_credbox *parent);

/* Windows before expiry, in seconds, for keys of the given lifetime: the
 * SDKs' 15 and 10 minutes, scaled down for short-lived keys. */
void dsc_credbox_windows(int64_t lifetime, int64_t *advisory,
                         int64_t *mandatory);

/* Refreshes done and failed, for stats and tests. */
void dsc_credbox_counts(dsc_credbox *b, uint64_t *refreshed, uint64_t *failed);

#endif
