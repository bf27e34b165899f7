/* Opening and closing a context; its cache directory; fork handling. */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "api/context.h"
#include "api/metrics.h"
#include "core/atomic.h"
#include "core/fork.h"
#include "core/log.h"

static int check_config(const dsc_config *c)
{
    if (c->addressing < DSC_ADDRESSING_AUTO || c->addressing > DSC_ADDRESSING_VHOST)
        return dsc_fail(DSC_EINVAL, "config: addressing %d unknown",
                        c->addressing);
    if (c->connect_timeout_ms <= 0 || c->request_timeout_ms <= 0)
        return dsc_fail(DSC_EINVAL, "config: timeouts must be positive");
    if (c->max_retries < 0 || c->retry_base_ms < 0 || c->retry_max_ms < 0)
        return dsc_fail(DSC_EINVAL, "config: retry settings must not be "
                        "negative");
    if (c->max_connections <= 0)
        return dsc_fail(DSC_EINVAL, "config: max_connections must be positive");
    if (c->chunk_size < DSC_MIN_CHUNK || c->chunk_size > DSC_MAX_CHUNK)
        return dsc_fail(DSC_EINVAL, "config: chunk_size %u outside 64 KiB.."
                        "256 MiB", c->chunk_size);
    if (c->cache_policy != DSC_POLICY_LRU && c->cache_policy != DSC_POLICY_MINIO)
        return dsc_fail(DSC_EINVAL, "config: cache_policy %d unknown",
                        c->cache_policy);
    if (c->prefetch_threads < 0 || c->prefetch_threads > 1024 ||
        c->prefetch_queue <= 0)
        return dsc_fail(DSC_EINVAL, "config: prefetch_threads must be "
                        "0..1024 and prefetch_queue positive");
    if (c->fd_cache <= 0 || c->cache_idle_sec < 0 || c->meta_ttl_ms < 0 ||
        c->op_timeout_ms < 0)
        return dsc_fail(DSC_EINVAL, "config: fd_cache must be positive, "
                        "cache_idle_sec, meta_ttl_ms and op_timeout_ms not "
                        "negative");
    if (c->cache_size && c->cache_size < DSC_MIN_CHUNK)
        return dsc_fail(DSC_EINVAL, "config: cache_size %llu is less than "
                        "one 64 KiB chunk", (unsigned long long)c->cache_size);
    if (c->peer_timeout_ms <= 0 || c->peer_backoff_ms < 0)
        return dsc_fail(DSC_EINVAL, "config: peer_timeout_ms must be "
                        "positive, peer_backoff_ms not negative");
    /* The bound DSC_PEERS_REFRESH_S has: a huge interval would overflow
     * the refresher's deadline into a busy loop. */
    if (c->peers_refresh_s < 1 || c->peers_refresh_s > 86400)
        return dsc_fail(DSC_EINVAL, "config: peers_refresh_s %ld outside "
                        "1..86400", c->peers_refresh_s);
    if (c->prefetch_memory < DSC_MIN_CHUNK ||
        c->prefetch_memory > (uint64_t)1 << 40 ||
        (c->prefetch_loop != 0 && c->prefetch_loop != 1) ||
        (c->cache_verify != DSC_VERIFY_BOOT && c->cache_verify != DSC_VERIFY_ALWAYS))
        return dsc_fail(DSC_EINVAL, "config: prefetch_memory %llu outside 64 "
                        "KiB..1 TiB, or prefetch_loop %d not 0 or 1, or "
                        "cache_verify %d not DSC_VERIFY_BOOT or _ALWAYS",
                        (unsigned long long)c->prefetch_memory,
                        c->prefetch_loop, c->cache_verify);
    return 0;
}

/* mkdir -p with 0700 for what we create: the cache holds S3 data. */
static int make_dirs(const char *path)
{
    char *p = dsc_strdup(path);
    if (!p)
        return DSC_ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) && errno != EEXIST) {
                rc = dsc_fail(DSC_EIO, "cannot create cache directory %s: %s",
                              p, strerror(errno));
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

/* NULL: no cache. */
static char *cache_dir_for(const dsc_config *cfg)
{
    const char *d = cfg->cache_dir ? cfg->cache_dir : getenv("DSC_CACHE_DIR");
    if (d && (!*d || strcmp(d, "off") == 0))
        return NULL;
    dsc_buf b = { 0 };
    if (d)
        dsc_buf_adds(&b, d);
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
        dsc_buf_printf(&b, "%s/dsc", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME") && *getenv("HOME"))
        dsc_buf_printf(&b, "%s/.cache/dsc", getenv("HOME"));
    return b.data;
}

/* Crash debris is rare and harmless but takes space: sweep it at most
 * once an hour per directory, when a context opens. */
static void clean_now_and_then(dsc_cache *c, const char *dir)
{
    dsc_buf stamp = { 0 };
    if (dsc_buf_printf(&stamp, "%s/last-clean", dir))
        return;
    struct stat sb;
    if (lstat(stamp.data, &sb) || time(NULL) - sb.st_mtime > 3600) {
        int fd = open(stamp.data, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
                      O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            dsc_cache_gc(c);
        }
    }
    dsc_buf_free(&stamp);
}

/* An index setting from the environment (sizes take K/M/G/T): 0 when
 * unset, DSC_EINVAL naming it when it is not a number in [min, max]. */
static int env_setting(const char *name, uint64_t min, uint64_t max,
                       uint64_t *out)
{
    const char *v = getenv(name);
    *out = 0;
    if (!v || !*v)
        return 0;
    int64_t x = dsc_parse_size(v);
    char shown[64];
    if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
        return dsc_fail(DSC_EINVAL, "%s=%s: not a number from %llu to %llu",
                        name, dsc_printable(v, shown, sizeof shown),
                        (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)x;
    return 0;
}

static long flight_timeout(const dsc_config *cfg)
{
    long all = cfg->request_timeout_ms * (cfg->max_retries + 1);
    long op = cfg->op_timeout_ms > 0 ? cfg->op_timeout_ms
                                     : 3 * cfg->request_timeout_ms;
    return (op < all ? op : all) + cfg->retry_max_ms;
}

static int open_cache(dsc_ctx *ctx, const dsc_config *cfg)
{
    uint64_t meta_max, map_size, readers;
    int rc = env_setting("DSC_META_MAX", 1000, (uint64_t)1 << 40, &meta_max);
    if (!rc)
        rc = env_setting("DSC_INDEX_MAP_SIZE", 256 << 10, (uint64_t)1 << 40, &map_size);
    if (!rc)
        rc = env_setting("DSC_INDEX_MAX_READERS", 126, 1 << 20, &readers);
    if (rc)
        return rc;
    char *dir = cache_dir_for(cfg);
    if (!dir)
        return 0;
    if (cfg->cache_existing) {
        /* A tool that only looks (dsc-stat) must not leave a new cache
         * behind at a mistyped path. A directory of another user goes on
         * to the trust check, whose refusal says more. */
        dsc_buf ix = { 0 };
        struct stat sb;
        rc = dsc_buf_printf(&ix, "%s/index/data.mdb", dir) ? DSC_ENOMEM
           : lstat(dir, &sb) ? dsc_fail(DSC_ENOCACHE, "no cache at %s (no "
                                        "such directory)", dir)
           : sb.st_uid == geteuid() && lstat(ix.data, &sb)
                 ? dsc_fail(DSC_ENOCACHE, "no cache at %s (no index/data.mdb "
                            "there)", dir)
           : 0;
        dsc_buf_free(&ix);
        if (rc) {
            free(dir);
            return rc;
        }
    }
    rc = make_dirs(dir);
    if (!rc) {
        dsc_cache_opts o = {
            .dir = dir, .origin = dsc_s3_origin(ctx->s3), .cap = cfg->cache_size, .chunk_size = cfg->chunk_size,
            .policy = cfg->cache_policy, .idle_sec = cfg->cache_idle_sec,
            .fd_cache = cfg->fd_cache, .sync = cfg->cache_sync,
            .verify_always = cfg->cache_verify == DSC_VERIFY_ALWAYS,
            /* The longest one S3 read may take: its deadline, capped
             * by what its attempts could take without one. */
            .flight_timeout_ms = flight_timeout(cfg),
            .meta_ttl_ms = cfg->meta_ttl_ms,
            .meta_max = meta_max ? meta_max : 2000000,
            .index_map_size = map_size,
            .index_max_readers = (unsigned)readers,
        };
        rc = dsc_metrics_cache_opts(ctx, &o);
        if (rc) {
            free(dir);
            return rc;
        }
        rc = dsc_cache_open(&o, &ctx->cache);
    }
    if (!rc)
        clean_now_and_then(ctx->cache, dir);
    if (rc) {
        /* A cache we cannot use (read-only, full, not ours) must not stop
         * reads: they go to S3. */
        dsc_log(DSC_LOG_WARN, "cache at %s unusable, reading from S3 "
                "directly: %s", dir, dsc_errmsg());
        ctx->cache = NULL;
        rc = 0;
    }
    free(dir);
    return rc;
}

static int open_peers(dsc_ctx *ctx, const dsc_config *cfg)
{
    const char *list = cfg->peers ? cfg->peers : getenv("DSC_PEERS");
    if (!list || !*list)
        return 0;
    if (!ctx->cache) {
        char *dir = cache_dir_for(cfg);
        if (!dir)
            return dsc_fail(DSC_EINVAL, "peers (DSC_PEERS) need a node cache, "
                            "and the cache is off");
        free(dir);
        dsc_log(DSC_LOG_WARN, "no usable node cache: peers not used");
        return 0;
    }
    const char *self = cfg->peer_self ? cfg->peer_self : getenv("DSC_SELF");
    char *secret = NULL;
    int rc = dsc_peer_secret(cfg->peer_secret, &secret);
    if (rc)
        return rc;
    /* Peer traffic in TLS, checked against the cluster's CA: for
     * clusters whose network is not private (docs/SECURITY.md). */
    const char *tls_ca = getenv("DSC_PEER_TLS_CA");
    const char *tls = getenv("DSC_PEER_TLS");
    if (tls && *tls && strcmp(tls, "0") && strcmp(tls, "1")) {
        rc = dsc_fail(DSC_EINVAL, "DSC_PEER_TLS='%s': use 1 (TLS) or 0", tls);
        goto done;
    }
    dsc_peer_opts o = {
        .peers = list, .self = self && *self ? self : NULL, .secret = secret,
        .origin = dsc_s3_origin(ctx->s3),
        .tls = (tls_ca && *tls_ca) || (tls && strcmp(tls, "1") == 0),
        .tls_ca = tls_ca && *tls_ca ? tls_ca : NULL,
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .timeout_ms = cfg->peer_timeout_ms, .backoff_ms = cfg->peer_backoff_ms,
        .keep_local = cfg->peer_keep_local,
        .max_connections = cfg->max_connections,
        .refresh_s = cfg->peers_refresh_s,
    };
    rc = dsc_peers_new(&o, &ctx->peers);
done:
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
    if (!rc)
        dsc_cache_set_peers(ctx->cache, ctx->peers);
    return rc;
}

/* Once per context (DSC_LOG=info): which source, key id and region. */
static void log_identity(const dsc_creds *c)
{
    char until[64] = "";
    if (c->keys.expires)
        snprintf(until, sizeof until, ", expire in %lld s",
                 (long long)(c->keys.expires - time(NULL)));
    dsc_log(DSC_LOG_INFO, "credentials from %s: %s%s; region %s (%s)",
            c->source, c->keys.access_key ? c->keys.access_key : "anonymous",
            until, c->region, c->region_source ? c->region_source : "?");
}

int dsc_ctx_open(const dsc_config *cfg, dsc_ctx **out)
{
    dsc_clear_error();
    if (!out)
        return dsc_fail(DSC_EINVAL, "dsc_ctx_open: out is NULL");
    *out = NULL;
    dsc_config defaults;
    if (!cfg) {
        dsc_config_init(&defaults, DSC_CONFIG_VERSION);
        cfg = &defaults;
    }
    if (cfg->version == 0 || cfg->version > DSC_CONFIG_VERSION)
        return dsc_fail(DSC_EINVAL, "config version %u unknown (use "
                        "dsc_config_init)", cfg->version);
    /* Fields the caller's (older) layout lacks keep their defaults. */
    dsc_config full;
    dsc_config_init(&full, DSC_CONFIG_VERSION);
    /* An invalid DSC_* value fails here, whoever made cfg: running on a
     * default nobody asked for would look like it worked. */
    int rc = dsc_config_env(&full, DSC_CONFIG_VERSION);
    if (rc)
        return rc;
    memcpy(&full, cfg, dsc_config_size(cfg->version));
    cfg = &full;
    rc = check_config(cfg);
    if (rc)
        return rc;
    dsc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return DSC_ENOMEM;
    ctx->cfg = full;
    ctx->pf_gen = DSC_FORK_NONE;
    pthread_mutex_init(&ctx->snap_lock, NULL);
    pthread_mutex_init(&ctx->listed_lock, NULL);
    ctx->keeper_gen = DSC_FORK_NONE;
    dsc_fork_mark(&ctx->snap_gen);
    ctx->ca_file = dsc_strdup(cfg->ca_file);
    rc = dsc_creds_resolve(cfg, &ctx->creds);
    /* Keep no pointer to caller strings: credentials, region and endpoint
     * live in ctx->creds, the CA file in ctx->ca_file. */
    ctx->cfg.endpoint = ctx->cfg.region = ctx->cfg.access_key_id = NULL;
    ctx->cfg.secret_access_key = ctx->cfg.session_token = NULL;
    ctx->cfg.profile = ctx->cfg.cache_dir = ctx->cfg.snapshot = NULL;
    ctx->cfg.ca_file = ctx->ca_file;
    if (!rc)
        log_identity(&ctx->creds);
    if (!rc)
        rc = dsc_s3_new(&ctx->cfg, &ctx->creds, &ctx->s3);
    if (!rc)
        dsc_s3_set_version_pin(ctx->s3, dsc_ctx_version_of, ctx);
    dsc_fork_mark(&ctx->s3_gen);
    if (!rc)
        rc = open_cache(ctx, cfg);
    if (!rc)
        rc = open_peers(ctx, cfg);
    if (!rc)
        rc = dsc_ctx_open_snapshot(ctx, cfg->snapshot ? cfg->snapshot
                                                      : getenv("DSC_SNAPSHOT"));
    if (rc) {
        dsc_ctx_close(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

/* First use in a fork()ed child: the parent's connections must not be
 * shared, so make new ones and leave the old ones untouched. */
static int remake_s3(void *arg)
{
    dsc_ctx *ctx = arg;
    dsc_s3 *fresh = NULL;
    int rc = dsc_s3_new(&ctx->cfg, &ctx->creds, &fresh);
    if (!rc) {
        dsc_s3_inherit_keys(fresh, ctx->s3);
        dsc_s3_set_version_pin(fresh, dsc_ctx_version_of, ctx);
        dsc_fork_graveyard(ctx->s3);
        ctx->s3 = fresh;
    }
    return rc;
}

dsc_s3 *dsc_ctx_s3(dsc_ctx *ctx)
{
    return dsc_fork_ensure(&ctx->s3_gen, remake_s3, ctx) ? NULL : ctx->s3;
}

static dsc_s3 *pool_s3(void *ctx)
{
    return dsc_ctx_s3(ctx);
}

static int pool_pinned(void *ctx, const char *bucket, const char *key,
                       uint64_t *size, char **etag)
{
    return dsc_ctx_pinned(ctx, bucket, key, size, etag);
}

/* Made on first use; a parent's pool has no threads in a child: it is
 * left be and a new one made. */
static int make_pf(void *arg)
{
    dsc_ctx *ctx = arg;
    dsc_pf_env env = {
        .cache = ctx->cache, .s3 = pool_s3, .s3_arg = ctx,
        .pinned = pool_pinned, .pinned_arg = ctx,
        .peers = ctx->peers != NULL, .threads = ctx->cfg.prefetch_threads,
        .queue = (size_t)ctx->cfg.prefetch_queue,
        .memory = (size_t)ctx->cfg.prefetch_memory,
        .connections = ctx->cfg.max_connections,
        .loop = ctx->cfg.prefetch_loop,
    };
    dsc_pf *pf = dsc_pf_new(&env);
    if (!pf)
        return DSC_ENOMEM;
    dsc_fork_graveyard(ctx->pf);
    dsc_atomic_publish(&ctx->pf, pf);
    return 0;
}

dsc_pf *dsc_ctx_pf(dsc_ctx *ctx)
{
    if (!ctx->cache || ctx->cfg.prefetch_threads <= 0)
        return NULL;
    return dsc_fork_ensure(&ctx->pf_gen, make_pf, ctx) ? NULL : ctx->pf;
}

dsc_pf *dsc_ctx_pf_if_made(dsc_ctx *ctx)
{
    dsc_pf *pf = dsc_atomic_acquire(&ctx->pf);
    return pf && dsc_fork_current(&ctx->pf_gen) ? pf : NULL;
}

dsc_cache *dsc_ctx_cache(dsc_ctx *ctx)
{
    return ctx->cache;
}

int dsc_ctx_has_peers(const dsc_ctx *ctx)
{
    return ctx->peers != NULL;
}

void dsc_ctx_close(dsc_ctx *ctx)
{
    if (!ctx)
        return;
    /* The keeper and the fetchers first: they use the cache and the S3
     * client. */
    dsc_listed_stop(ctx);
    dsc_pf_free(dsc_ctx_pf_if_made(ctx));
    dsc_cache_close(ctx->cache);
    dsc_peers_free(ctx->peers);
    if (dsc_fork_current(&ctx->s3_gen))
        dsc_s3_free(ctx->s3);
    else
        dsc_fork_graveyard(ctx->s3);
    dsc_ctx_drop_snapshot(ctx);
    dsc_listed_free(ctx);
    dsc_creds_free(&ctx->creds);
    free(ctx->ca_file);
    free(ctx);
}

const char *dsc_cache_dir(const dsc_ctx *ctx)
{
    return ctx ? dsc_cache_path(ctx->cache) : NULL;
}

int dsc_whoami(dsc_ctx *ctx, dsc_identity *out, size_t size)
{
    dsc_clear_error();
    if (!ctx || !out || size == 0)
        return dsc_fail(DSC_EINVAL, "dsc_whoami: bad argument");
    dsc_identity id;
    memset(&id, 0, sizeof id);
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (!s3)
        return dsc_fail(DSC_ENOMEM, "cannot re-make the S3 client after fork");
    int rc = dsc_s3_signer(s3, id.access_key_id, sizeof id.access_key_id,
                           &id.expires);
    if (rc)
        return rc;
    snprintf(id.source, sizeof id.source, "%s", ctx->creds.source);
    snprintf(id.region, sizeof id.region, "%s", dsc_s3_region(s3));
    snprintf(id.region_source, sizeof id.region_source, "%s",
             ctx->creds.region_source ? ctx->creds.region_source : "");
    snprintf(id.endpoint, sizeof id.endpoint, "%s", dsc_s3_origin(s3));
    memcpy(out, &id, size < sizeof id ? size : sizeof id);
    return 0;
}

int dsc_stats_get(dsc_ctx *ctx, dsc_stats *out, size_t size)
{
    if (!ctx || !out || size == 0)
        return dsc_fail(DSC_EINVAL, "dsc_stats_get: bad argument");
    dsc_stats st;
    memset(&st, 0, sizeof st);
    dsc_s3 *s3 = dsc_ctx_s3(ctx);
    if (s3) {
        dsc_s3_counters n;
        dsc_s3_counters_get(s3, &n);
        st.s3_gets = n.gets;
        st.s3_heads = n.heads;
        st.s3_lists = n.lists;
        st.s3_retries = n.retries;
        st.bytes_from_s3 = n.get_bytes;
    }
    if (ctx->cache)
        dsc_cache_stats(ctx->cache, &st);
    dsc_pf *pf = dsc_ctx_pf_if_made(ctx);
    if (pf) {
        dsc_pf_counters pc;
        dsc_pf_counters_get(pf, &pc);
        st.prefetch_queued = pc.queued;
        st.prefetch_done = pc.done;
        st.prefetch_errors = pc.errors;
        st.prefetch_dropped = pc.dropped;
        st.readahead_chunks = pc.readahead;
        st.prefetch_inflight_limit = (uint64_t)pc.limit;
        st.prefetch_inflight_peak = (uint64_t)pc.peak;
        st.prefetch_throttled = pc.throttled;
        st.prefetch_on_loop = pc.on_loop;
        st.prefetch_busy = pc.busy;
    }
    if (ctx->peers)
        dsc_peers_stats(ctx->peers, &st);
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
}

int dsc_cache_set_capacity(dsc_ctx *ctx, uint64_t bytes)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_cache_set_capacity: ctx is NULL");
    if (!ctx->cache)
        return dsc_fail(DSC_ENOCACHE, "dsc_cache_set_capacity: the context "
                        "has no node cache");
    if (bytes < DSC_MIN_CHUNK)
        return dsc_fail(DSC_EINVAL, "capacity %llu is less than one 64 KiB "
                        "chunk", (unsigned long long)bytes);
    return dsc_cache_set_capacity_of(ctx->cache, bytes);
}

int64_t dsc_cache_clean(dsc_ctx *ctx)
{
    dsc_clear_error();
    if (!ctx)
        return dsc_fail(DSC_EINVAL, "dsc_cache_clean: ctx is NULL");
    return ctx->cache ? dsc_cache_gc(ctx->cache) : 0;
}
