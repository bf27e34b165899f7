/* Metadata past its TTL, brought up to date by listing: one LIST page
 * answers for up to 1,000 objects where a HEAD answers for one, and
 * neither moves a body byte. Ways in: a plan lists the prefixes of its
 * stale objects before it starts; an open of an object a small listing of
 * this context taught lists that prefix again (or, past 3/4 of the TTL,
 * has a fetcher do it ahead); and the keeper thread of the process that
 * listed runs those listings again before they expire while the node
 * reads, so an epoch after a pause (evaluation, checkpointing) finds its
 * metadata fresh. Best effort: what a listing misses gets a HEAD. */
#include <stdlib.h>
#include <string.h>
#include "api/context.h"
#include "core/fork.h"
#include "core/log.h"

/* Listings this small are run again for an expired open (10 pages); a
 * larger one would make that open wait too long, its objects get HEADs. */
#define RELIST_MAX 10000
/* Listings remembered per context, the newest kept. */
#define LISTED_MAX 64
/* The keeper runs for TTLs at least this long (shorter ones are tests or
 * a wish for fresh data), and stops relisting once the node has read
 * nothing for KEEP_IDLE_MS. */
#define KEEP_TTL_MIN 10000
#define KEEP_IDLE_MS (10 * 60 * 1000)

struct dsc_listed {
    char *bucket, *prefix;
    char *probe;                   /* a key of it: its metadata's age is
                                      the listing's */
    int64_t relisted_ms;           /* when this process last listed it
                                      again for an expired open */
};

static void keeper_start(dsc_ctx *ctx);

static int remake_listed_lock(void *arg)
{
    dsc_ctx *ctx = arg;
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    ctx->listed_lock = fresh;
    return 0;
}

static void listed_clear(struct dsc_listed *l)
{
    free(l->bucket);
    free(l->prefix);
    free(l->probe);
}

/* Index of bucket/prefix among the remembered listings, or nlisted. Under
 * listed_lock. */
static size_t listed_find(const dsc_ctx *ctx, const char *bucket, const char *prefix)
{
    size_t i = 0;
    while (i < ctx->nlisted && (strcmp(ctx->listed[i].bucket, bucket) ||
                                strcmp(ctx->listed[i].prefix, prefix)))
        i++;
    return i;
}

/* Drop entry i, keeping the others in age order. Under listed_lock. */
static void listed_remove(dsc_ctx *ctx, size_t i)
{
    listed_clear(&ctx->listed[i]);
    memmove(&ctx->listed[i], &ctx->listed[i + 1],
            (ctx->nlisted - i - 1) * sizeof *ctx->listed);
    ctx->nlisted--;
}

/* A prefix that has grown past RELIST_MAX is no longer listed again: its
 * objects get HEADs. */
static void listed_forget(dsc_ctx *ctx, const char *bucket, const char *prefix)
{
    if (dsc_fork_ensure(&ctx->listed_gen, remake_listed_lock, ctx))
        return;
    pthread_mutex_lock(&ctx->listed_lock);
    size_t i = listed_find(ctx, bucket, prefix);
    if (i < ctx->nlisted)
        listed_remove(ctx, i);
    pthread_mutex_unlock(&ctx->listed_lock);
}

void dsc_listed_note(dsc_ctx *ctx, const char *bucket, const char *prefix,
                     uint64_t n, const char *probe)
{
    if (n > RELIST_MAX) {
        listed_forget(ctx, bucket, prefix);
        return;
    }
    if (dsc_fork_ensure(&ctx->listed_gen, remake_listed_lock, ctx))
        return;
    struct dsc_listed fresh = { dsc_strdup(bucket), dsc_strdup(prefix),
                                dsc_strdup(probe), 0 };
    pthread_mutex_lock(&ctx->listed_lock);
    if (!ctx->listed)
        ctx->listed = calloc(LISTED_MAX, sizeof *ctx->listed);
    size_t i = listed_find(ctx, bucket, prefix);
    if (!ctx->listed || !fresh.bucket || !fresh.prefix || !fresh.probe) {
        listed_clear(&fresh);
    } else {
        /* Drop the same listing or, when full, the oldest; append. */
        if (i == ctx->nlisted && ctx->nlisted == LISTED_MAX)
            i = 0;
        if (i < ctx->nlisted) {
            fresh.relisted_ms = ctx->listed[i].relisted_ms;
            listed_remove(ctx, i);
        }
        ctx->listed[ctx->nlisted++] = fresh;
        keeper_start(ctx);   /* under the lock: started once */
    }
    pthread_mutex_unlock(&ctx->listed_lock);
}

static void keeper_stop(dsc_ctx *ctx);

void dsc_listed_stop(dsc_ctx *ctx)
{
    keeper_stop(ctx);
}

void dsc_listed_free(dsc_ctx *ctx)
{
    keeper_stop(ctx);
    for (size_t i = 0; i < ctx->nlisted; i++)
        listed_clear(&ctx->listed[i]);
    free(ctx->listed);
    ctx->listed = NULL;
    ctx->nlisted = 0;
    pthread_mutex_destroy(&ctx->listed_lock);
}

/* The longest remembered listing holding bucket/key (a copy), or NULL;
 * also NULL when this process claimed it less than `every` ms ago (a TTL
 * shorter than a listing would else make every open a LIST: HEADs are
 * cheaper). A prefix returned is claimed now. */
static char *listing_of(dsc_ctx *ctx, const char *bucket, const char *key,
                        int64_t every)
{
    struct dsc_listed *best = NULL;
    char *prefix = NULL;
    int64_t now = dsc_now_ms();
    if (dsc_fork_ensure(&ctx->listed_gen, remake_listed_lock, ctx))
        return NULL;
    pthread_mutex_lock(&ctx->listed_lock);
    for (size_t i = 0; i < ctx->nlisted; i++) {
        struct dsc_listed *l = &ctx->listed[i];
        size_t pl = strlen(l->prefix);
        if (strcmp(l->bucket, bucket) == 0 && strncmp(key, l->prefix, pl) == 0 &&
            (!best || pl > strlen(best->prefix)))
            best = l;
    }
    if (best && (best->relisted_ms == 0 || now - best->relisted_ms >= every)) {
        best->relisted_ms = now;
        prefix = dsc_strdup(best->prefix);
    }
    pthread_mutex_unlock(&ctx->listed_lock);
    return prefix;
}

/* A listing run again stops past RELIST_MAX keys: the prefix has grown
 * since it was remembered, and one open must not wait for all of it. */
static int relist_bounded(void *arg, const dsc_object_info *o)
{
    (void)o;
    return ++*(uint64_t *)arg > RELIST_MAX;
}

/* List bucket/prefix again under its named lock, unless whoever held the
 * lock just did: key's metadata is then younger than `young` ms. */
static void relist(dsc_ctx *ctx, const char *bucket, const char *prefix,
                   const char *key, uint64_t young)
{
    dsc_buf name = { 0 };
    dsc_buf_printf(&name, "list %s/%s", bucket, prefix);
    if (dsc_buf_oom(&name))
        return;
    dsc_errsave saved;
    dsc_err_save(&saved);
    int locked = dsc_cache_lock_name(ctx->cache, name.data) == 0;
    if (dsc_meta_age(ctx->cache, bucket, key) >= young) {
        dsc_s3url u = { (char *)bucket, (char *)prefix };
        uint64_t seen = 0;
        int64_t n = dsc_list_run(ctx, &u, relist_bounded, &seen);
        if (seen > RELIST_MAX)
            listed_forget(ctx, bucket, prefix);
        dsc_log(DSC_LOG_DEBUG, "revalidated s3://%s/%s by listing: %lld objects%s%s",
                bucket, prefix, (long long)n, n < 0 ? ": " : "",
                n < 0 ? dsc_errmsg() : "");
    }
    if (locked)
        dsc_cache_unlock_name(ctx->cache, name.data);
    dsc_err_restore(&saved);
    dsc_buf_free(&name);
}

static int64_t ttl_ms(const dsc_ctx *ctx)
{
    return ctx->cfg.meta_ttl_ms;
}

int dsc_listed_revalidate(dsc_ctx *ctx, const char *bucket, const char *key)
{
    if (!ctx->cache || ttl_ms(ctx) <= 0)
        return DSC_ABSENT;
    char *prefix = listing_of(ctx, bucket, key, ttl_ms(ctx) > 1000 ? ttl_ms(ctx) : 1000);
    if (!prefix)
        return DSC_ABSENT;
    relist(ctx, bucket, prefix, key, (uint64_t)ttl_ms(ctx));
    free(prefix);
    return 0;
}

/* On a fetcher: the listing that taught bucket/key, again, before it
 * expires. */
static void refresh_task(void *arg, const char *bucket, const char *key)
{
    dsc_ctx *ctx = arg;
    char *prefix = listing_of(ctx, bucket, key, 0);
    if (prefix)
        relist(ctx, bucket, prefix, key, (uint64_t)ttl_ms(ctx) / 2);
    free(prefix);
}

void dsc_listed_refresh_ahead(dsc_ctx *ctx, const char *bucket, const char *key,
                              uint64_t age_ms)
{
    int64_t ttl = ttl_ms(ctx);
    if (!ctx->cache || ttl < 1000 || age_ms < (uint64_t)ttl / 4 * 3)
        return;
    /* Claimed here, at most once a half TTL; the task claims nothing. */
    char *prefix = listing_of(ctx, bucket, key, ttl / 2);
    dsc_pf *pf = prefix ? dsc_ctx_pf(ctx) : NULL;
    if (pf) {
        dsc_errsave saved;
        dsc_err_save(&saved);
        dsc_pf_call(pf, refresh_task, ctx, bucket, key);
        dsc_err_restore(&saved);
    }
    free(prefix);
}

/* ---- The keeper ------------------------------------------------------- */

/* One listing due for the keeper: a copy, so no lock is held while it
 * runs. */
typedef struct due {
    char *bucket, *prefix, *probe;
} due;

/* The listings whose probe's metadata is past 3/4 of the TTL. */
static size_t collect_due(dsc_ctx *ctx, due *out, size_t cap)
{
    uint64_t late = (uint64_t)ttl_ms(ctx) / 4 * 3;
    size_t n = 0;
    pthread_mutex_lock(&ctx->listed_lock);
    for (size_t i = 0; i < ctx->nlisted && n < cap; i++) {
        const struct dsc_listed *l = &ctx->listed[i];
        due d = { dsc_strdup(l->bucket), dsc_strdup(l->prefix), dsc_strdup(l->probe) };
        if (d.bucket && d.prefix && d.probe &&
            dsc_meta_age(ctx->cache, d.bucket, d.probe) >= late) {
            out[n++] = d;
        } else {
            free(d.bucket);
            free(d.prefix);
            free(d.probe);
        }
    }
    pthread_mutex_unlock(&ctx->listed_lock);
    return n;
}

static void *keeper_main(void *arg)
{
    dsc_ctx *ctx = arg;
    uint64_t last_hits = 0;
    dsc_thread_name("dsc-keeper");
    int64_t active = dsc_now_ms();
    due *d = malloc(LISTED_MAX * sizeof *d);
    pthread_mutex_lock(&ctx->keeper_mu);
    while (d && !ctx->keeper_stop) {
        struct timespec until = dsc_deadline(CLOCK_MONOTONIC, ttl_ms(ctx) / 4);
        while (!ctx->keeper_stop &&
               pthread_cond_timedwait(&ctx->keeper_cv, &ctx->keeper_mu, &until) == 0)
            ;
        if (ctx->keeper_stop)
            break;
        pthread_mutex_unlock(&ctx->keeper_mu);
        /* The node's hits (every process's, the DataLoader workers' too)
         * say whether anyone still reads. */
        dsc_stats st;
        memset(&st, 0, sizeof st);
        dsc_cache_stats(ctx->cache, &st);
        if (st.node_hits != last_hits)
            active = dsc_now_ms();
        last_hits = st.node_hits;
        if (dsc_now_ms() - active < KEEP_IDLE_MS) {
            size_t n = collect_due(ctx, d, LISTED_MAX);
            for (size_t i = 0; i < n; i++) {
                relist(ctx, d[i].bucket, d[i].prefix, d[i].probe,
                       (uint64_t)ttl_ms(ctx) / 2);
                free(d[i].bucket);
                free(d[i].prefix);
                free(d[i].probe);
            }
        }
        pthread_mutex_lock(&ctx->keeper_mu);
    }
    pthread_mutex_unlock(&ctx->keeper_mu);
    free(d);
    return NULL;
}

/* In the process that listed, once (a fork()ed child has none: its
 * parent's keeper keeps the node's metadata fresh for it). */
static void keeper_start(dsc_ctx *ctx)
{
    if (!ctx->cache || ttl_ms(ctx) < KEEP_TTL_MIN || ctx->keeper_gen != DSC_FORK_NONE)
        return;
    pthread_mutex_init(&ctx->keeper_mu, NULL);
    dsc_cond_init_monotonic(&ctx->keeper_cv);
    ctx->keeper_stop = 0;
    if (pthread_create(&ctx->keeper, NULL, keeper_main, ctx) == 0) {
        dsc_fork_mark(&ctx->keeper_gen);
    } else {
        pthread_cond_destroy(&ctx->keeper_cv);
        pthread_mutex_destroy(&ctx->keeper_mu);
    }
}

static void keeper_stop(dsc_ctx *ctx)
{
    if (ctx->keeper_gen == DSC_FORK_NONE || !dsc_fork_current(&ctx->keeper_gen))
        return;   /* none, or the parent's (not ours to stop) */
    pthread_mutex_lock(&ctx->keeper_mu);
    ctx->keeper_stop = 1;
    pthread_cond_signal(&ctx->keeper_cv);
    pthread_mutex_unlock(&ctx->keeper_mu);
    pthread_join(ctx->keeper, NULL);
    pthread_cond_destroy(&ctx->keeper_cv);
    pthread_mutex_destroy(&ctx->keeper_mu);
    ctx->keeper_gen = DSC_FORK_NONE;
}

/* ---- Plans ------------------------------------------------------------ */

/* Fewer stale objects than this are left to their HEADs. */
#define LIST_AT_LEAST 32
/* Stop a listing that finds less than one wanted key in this many. */
#define SPARSE 4

typedef struct stale {
    char *bucket, *key;
} stale;

typedef struct listing {
    const stale *want;             /* sorted by key, one bucket */
    size_t n;
    uint64_t listed, matched;
} listing;

static int by_bucket_key(const void *a, const void *b)
{
    const stale *x = a, *y = b;
    int c = strcmp(x->bucket, y->bucket);
    return c ? c : strcmp(x->key, y->key);
}

static int wanted(const listing *l, const char *key)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->want[mid].key, key);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Keys come in order: past the last wanted one, or in a prefix that holds
 * mostly other objects, the listing stops (the HEADs are cheaper). */
static int on_listed(void *arg, const dsc_object_info *o)
{
    listing *l = arg;
    l->listed++;
    l->matched += (uint64_t)wanted(l, o->key);
    if (strcmp(o->key, l->want[l->n - 1].key) >= 0)
        return 1;
    return l->listed >= 1000 && l->matched * SPARSE < l->listed;
}

/* List the common prefix of want[0..n) (sorted keys of one bucket). */
static void list_group(dsc_ctx *ctx, const stale *want, size_t n)
{
    const char *first = want[0].key, *last = want[n - 1].key;
    size_t common = 0;
    while (first[common] && first[common] == last[common])
        common++;
    dsc_s3url u = { .bucket = want[0].bucket, .key = dsc_strndup(first, common) };
    if (!u.key)
        return;
    listing l = { want, n, 0, 0 };
    dsc_errsave saved;
    dsc_err_save(&saved);
    int64_t rc = dsc_list_run(ctx, &u, on_listed, &l);
    if (rc < 0 && rc != DSC_ECANCELED)
        dsc_log(DSC_LOG_DEBUG, "revalidating s3://%s/%s by listing: %s",
                u.bucket, u.key, dsc_errmsg());
    dsc_log(DSC_LOG_DEBUG, "revalidated %llu of %zu objects under s3://%s/%s "
            "with one listing of %llu keys", (unsigned long long)l.matched, n,
            u.bucket, u.key, (unsigned long long)l.listed);
    dsc_err_restore(&saved);
    free(u.key);
}

void dsc_plan_revalidate(dsc_ctx *ctx, const dsc_plan_item *items, size_t n)
{
    if (!ctx->cache || ctx->cfg.meta_ttl_ms <= 0 || n < LIST_AT_LEAST)
        return;
    stale *s = malloc(n * sizeof *s);
    size_t ns = 0;
    for (size_t i = 0; s && i < n; i++) {
        dsc_s3url u;
        uint64_t size;
        char *etag = NULL;
        if (!items[i].url || dsc_s3url_parse(items[i].url, &u))
            continue;
        if (*u.key && dsc_ctx_pinned(ctx, u.bucket, u.key, &size, &etag) == DSC_ABSENT &&
            !dsc_meta_fresh(ctx->cache, u.bucket, u.key)) {
            s[ns++] = (stale){ u.bucket, u.key };
        } else {
            dsc_s3url_free(&u);
        }
        free(etag);
    }
    dsc_clear_error();
    if (ns >= LIST_AT_LEAST) {
        qsort(s, ns, sizeof *s, by_bucket_key);
        for (size_t i = 0, j; i < ns; i = j) {
            for (j = i + 1; j < ns && strcmp(s[j].bucket, s[i].bucket) == 0; j++)
                ;
            if (j - i >= LIST_AT_LEAST)
                list_group(ctx, s + i, j - i);
        }
    }
    for (size_t i = 0; i < ns; i++) {
        free(s[i].bucket);
        free(s[i].key);
    }
    free(s);
}
