/* dsc_config defaults: built-in values, overridden by DSC_* variables.
 * A variable set to a value we cannot use is an error (dsc_ctx_open
 * fails naming it): running with a default the user did not ask for
 * would look like it worked. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "api/context.h"
#include "core/common.h"
#include "core/log.h"

/* The first invalid variable is kept (sticky), the others not checked
 * further: one clear message beats a list. */
typedef struct env_check {
    int rc;
} env_check;

static void bad(env_check *ck, const char *name, const char *v,
                const char *want)
{
    if (ck->rc)
        return;
    char shown[64];
    ck->rc = dsc_fail(DSC_EINVAL, "%s='%s' is not valid: %s", name,
                      dsc_printable(v, shown, sizeof shown), want);
}

static const char *env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static long env_long(env_check *ck, const char *name, long def, long min,
                     long max)
{
    const char *v = env_set(name);
    if (!v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < min || x > max) {
        char want[96];
        snprintf(want, sizeof want, "a whole number from %ld to %ld", min, max);
        bad(ck, name, v, want);
        return def;
    }
    return x;
}

/* Sizes take K/M/G/T (powers of 1024, "20G", "512MiB", "10 G"). */
static uint64_t env_size(env_check *ck, const char *name, uint64_t def,
                         uint64_t min, uint64_t max)
{
    const char *v = env_set(name);
    if (!v)
        return def;
    int64_t x = dsc_parse_size(v);
    if (x < 0 || (uint64_t)x < min || (uint64_t)x > max) {
        char want[128];
        snprintf(want, sizeof want, "a size from %llu to %llu bytes (K, M, "
                 "G, T suffixes: e.g. 20G)", (unsigned long long)min,
                 (unsigned long long)max);
        bad(ck, name, v, want);
        return def;
    }
    return (uint64_t)x;
}

/* One of names[] (index returned), else def. */
static int env_enum(env_check *ck, const char *name, int def,
                    const char *const *names, int n, const char *want)
{
    const char *v = env_set(name);
    if (!v)
        return def;
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(v, names[i]) == 0)
            return i;
    bad(ck, name, v, want);
    return def;
}

size_t dsc_config_size(unsigned version)
{
    return version == 1 ? offsetof(dsc_config, peers)
         : version == 2 ? offsetof(dsc_config, snapshot)
         : version == 3 ? offsetof(dsc_config, op_timeout_ms)
         : version == 4 ? offsetof(dsc_config, peers_refresh_s)
         : version == 5 ? offsetof(dsc_config, prefetch_memory)
         : sizeof(dsc_config);
}

int dsc_config_env(dsc_config *cfg, unsigned version)
{
    env_check ck = { 0 };
    static const char *const addressing[] = { "auto", "path", "virtual" };
    cfg->addressing = env_enum(&ck, "DSC_S3_ADDRESSING", DSC_ADDRESSING_AUTO,
                               addressing, 3, "auto, path or virtual");
    cfg->connect_timeout_ms = env_long(&ck, "DSC_CONNECT_TIMEOUT_MS", 3000, 1, 3600000);
    cfg->request_timeout_ms = env_long(&ck, "DSC_REQUEST_TIMEOUT_MS", 30000, 1, 86400000);
    cfg->max_retries = (int)env_long(&ck, "DSC_MAX_RETRIES", 5, 0, 100);
    cfg->retry_base_ms = env_long(&ck, "DSC_RETRY_BASE_MS", 50, 0, 600000);
    cfg->retry_max_ms = env_long(&ck, "DSC_RETRY_MAX_MS", 5000, 0, 3600000);
    cfg->max_connections = (int)env_long(&ck, "DSC_MAX_CONNECTIONS", 64, 1, 4096);
    cfg->verify_tls = (int)env_long(&ck, "DSC_VERIFY_TLS", 1, 0, 1);
    cfg->meta_ttl_ms = env_long(&ck, "DSC_META_TTL_MS", 60000, 0, 86400000L * 365);
    /* 0: a new cache gets 10 GiB, an existing one keeps its own. */
    cfg->cache_size = env_size(&ck, "DSC_CACHE_SIZE", 0, DSC_MIN_CHUNK,
                               (uint64_t)1 << 60);
    cfg->chunk_size = (uint32_t)env_size(&ck, "DSC_CHUNK_SIZE", 4u << 20,
                                         DSC_MIN_CHUNK, DSC_MAX_CHUNK);
    static const char *const policies[] = { "lru", "minio" };
    cfg->cache_policy = env_enum(&ck, "DSC_CACHE_POLICY", DSC_POLICY_LRU,
                                 policies, 2, "lru or minio");
    cfg->cache_idle_sec = env_long(&ck, "DSC_CACHE_IDLE_SEC", 86400, 0, 86400L * 3650);
    cfg->fd_cache = (int)env_long(&ck, "DSC_FD_CACHE", 256, 1, 65536);
    cfg->cache_sync = (int)env_long(&ck, "DSC_CACHE_SYNC", 0, 0, 1);
    cfg->prefetch_threads = (int)env_long(&ck, "DSC_PREFETCH_THREADS", 8, 0, 256);
    cfg->prefetch_queue = (int)env_long(&ck, "DSC_PREFETCH_QUEUE", 65536, 1, 1 << 24);
    cfg->readahead_max = env_size(&ck, "DSC_READAHEAD", (uint64_t)64 << 20, 0,
                                  (uint64_t)1 << 40);
    cfg->plan_window = env_size(&ck, "DSC_PLAN_WINDOW", (uint64_t)256 << 20, 1,
                                (uint64_t)1 << 50);
    if (version >= 2) {
        cfg->peer_timeout_ms = env_long(&ck, "DSC_PEER_TIMEOUT_MS", 10000, 1, 3600000);
        cfg->peer_backoff_ms = env_long(&ck, "DSC_PEER_BACKOFF_MS", 10000, 0, 86400000);
        cfg->peer_keep_local = (int)env_long(&ck, "DSC_PEER_KEEP_LOCAL", 0, 0, 1);
    }
    if (version >= 4)
        cfg->op_timeout_ms = env_long(&ck, "DSC_OP_TIMEOUT_MS", 0, 0, 86400000L * 7);
    if (version >= 5)
        cfg->peers_refresh_s = env_long(&ck, "DSC_PEERS_REFRESH_S", 30, 1, 86400);
    if (version >= 6) {
        cfg->prefetch_memory = env_size(&ck, "DSC_PREFETCH_MEMORY",
                                        (uint64_t)256 << 20, DSC_MIN_CHUNK,
                                        (uint64_t)1 << 40);
        cfg->prefetch_loop = (int)env_long(&ck, "DSC_PREFETCH_LOOP", 1, 0, 1);
        static const char *const verify[] = { "boot", "always" };
        cfg->cache_verify = env_enum(&ck, "DSC_CACHE_VERIFY", DSC_VERIFY_BOOT,
                                     verify, 2, "boot or always");
    }
    /* Read elsewhere, checked here so every setting fails the same way. */
    static const char *const levels[] = { "off", "error", "warn", "info", "debug" };
    env_enum(&ck, "DSC_LOG", 0, levels, 5, "off, error, warn, info or debug");
    static const char *const flag[] = { "0", "1" };
    env_enum(&ck, "DSC_ANONYMOUS", 0, flag, 2, "1 (unsigned requests) or 0");
    return ck.rc;
}

int dsc_config_init(dsc_config *cfg, unsigned version)
{
    if (!cfg)
        return dsc_fail(DSC_EINVAL, "dsc_config_init: cfg is NULL");
    if (version == 0 || version > DSC_CONFIG_VERSION)
        return dsc_fail(DSC_EINVAL, "dsc_config_init: config version %u is "
                        "not known to libdsc %s", version, DSC_VERSION_STRING);
    /* A caller built against an older dsc.h has a shorter struct. */
    memset(cfg, 0, dsc_config_size(version));
    cfg->version = version;
    /* An invalid variable is reported by dsc_ctx_open: this function's
     * callers (the Python binding among them) read EINVAL as "version
     * unknown". */
    dsc_errsave saved;
    dsc_err_save(&saved);
    dsc_config_env(cfg, version);
    dsc_err_restore(&saved);
    return 0;
}
