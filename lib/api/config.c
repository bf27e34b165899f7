/* dsc_config defaults: built-in values, overridden by DSC_* variables. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

static long env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < min || x > max) ? def : x;
}

size_t dsc_config_size(unsigned version)
{
    return version == 1 ? offsetof(dsc_config, peers)
         : version == 2 ? offsetof(dsc_config, snapshot)
         : sizeof(dsc_config);
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
    const char *addr = getenv("DSC_S3_ADDRESSING");
    cfg->addressing = !addr ? DSC_ADDRESSING_AUTO
                    : strcmp(addr, "path") == 0 ? DSC_ADDRESSING_PATH
                    : strcmp(addr, "virtual") == 0 ? DSC_ADDRESSING_VHOST
                    : DSC_ADDRESSING_AUTO;
    cfg->connect_timeout_ms = env_long("DSC_CONNECT_TIMEOUT_MS", 3000, 1, 3600000);
    cfg->request_timeout_ms = env_long("DSC_REQUEST_TIMEOUT_MS", 30000, 1, 86400000);
    cfg->max_retries = (int)env_long("DSC_MAX_RETRIES", 5, 0, 100);
    cfg->retry_base_ms = env_long("DSC_RETRY_BASE_MS", 50, 0, 600000);
    cfg->retry_max_ms = env_long("DSC_RETRY_MAX_MS", 5000, 0, 3600000);
    cfg->max_connections = (int)env_long("DSC_MAX_CONNECTIONS", 64, 1, 4096);
    cfg->verify_tls = (int)env_long("DSC_VERIFY_TLS", 1, 0, 1);
    cfg->meta_ttl_ms = env_long("DSC_META_TTL_MS", 60000, 0, 86400000L * 365);
    int64_t v = dsc_parse_size(getenv("DSC_CACHE_SIZE"));
    cfg->cache_size = v > 0 ? (uint64_t)v : (uint64_t)10 << 30;
    v = dsc_parse_size(getenv("DSC_CHUNK_SIZE"));
    cfg->chunk_size = v >= DSC_MIN_CHUNK && v <= DSC_MAX_CHUNK ? (uint32_t)v
                                                               : 4u << 20;
    const char *pol = getenv("DSC_CACHE_POLICY");
    cfg->cache_policy = pol && strcmp(pol, "minio") == 0 ? DSC_POLICY_MINIO
                                                         : DSC_POLICY_LRU;
    cfg->cache_idle_sec = env_long("DSC_CACHE_IDLE_SEC", 86400, 0, 86400L * 3650);
    cfg->fd_cache = (int)env_long("DSC_FD_CACHE", 256, 1, 65536);
    cfg->cache_sync = (int)env_long("DSC_CACHE_SYNC", 0, 0, 1);
    cfg->prefetch_threads = (int)env_long("DSC_PREFETCH_THREADS", 8, 0, 256);
    cfg->prefetch_queue = (int)env_long("DSC_PREFETCH_QUEUE", 65536, 1, 1 << 24);
    v = dsc_parse_size(getenv("DSC_READAHEAD"));
    cfg->readahead_max = v >= 0 ? (uint64_t)v : (uint64_t)64 << 20;
    v = dsc_parse_size(getenv("DSC_PLAN_WINDOW"));
    cfg->plan_window = v > 0 ? (uint64_t)v : (uint64_t)256 << 20;
    if (version >= 2) {
        cfg->peer_timeout_ms = env_long("DSC_PEER_TIMEOUT_MS", 10000, 1, 3600000);
        cfg->peer_backoff_ms = env_long("DSC_PEER_BACKOFF_MS", 10000, 0, 86400000);
        cfg->peer_keep_local = (int)env_long("DSC_PEER_KEEP_LOCAL", 0, 0, 1);
    }
    return 0;
}
