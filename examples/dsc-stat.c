/* dsc-stat: show the node cache's state and counters, or who we are.
 *
 *   dsc-stat [--json] [--clean] [--cache-dir DIR] [--create]
 *            [--set-capacity SIZE]
 *   dsc-stat --whoami [--json] [--no-sign-request]
 *
 * --whoami: where the credentials came from, the access key id, when they
 * expire, the region and endpoint (never the secret).
 * The cache directory is DIR, else DSC_CACHE_DIR, else the default
 * (~/.cache/dsc). A directory without a cache is an error (a mistyped
 * path must not become a new cache) unless --create is given.
 * --set-capacity sets the cache's capacity (every process's cap; "20G")
 * and evicts down to it. --clean also removes files left by crashed
 * processes. Exit 0, 1 when there is no usable cache, 2 for usage errors. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include "dsc.h"
#include "tool.h"

#define USAGE "usage: dsc-stat [--json] [--clean] [--cache-dir DIR] [--create] [--set-capacity SIZE]\n" \
              "       dsc-stat --whoami [--json] [--no-sign-request]\n"

/* "20G", "512MiB", "10 G", bytes; powers of 1024. 0 when malformed. */
static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return 0;
    while (*end == ' ')
        end++;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: break;
    }
    if (shift) {
        end++;
        if (*end == 'i')
            end++;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return 0;
    return (uint64_t)v << shift;
}

static int whoami(const dsc_config *cfg, int json)
{
    dsc_ctx *ctx;
    dsc_identity id;
    int rc = dsc_ctx_open(cfg, &ctx);
    if (!rc) {
        rc = dsc_whoami(ctx, &id, sizeof id);
        dsc_ctx_close(ctx);
    }
    if (rc) {
        fprintf(stderr, "dsc-stat: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return 1;
    }
    char when[64] = "never";
    if (id.expires) {
        time_t t = (time_t)id.expires;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    }
    if (json) {
        printf("{\"source\":");
        tool_json_str(id.source);
        printf(",\"access_key_id\":");
        tool_json_str(id.access_key_id);
        printf(",\"expires\":%lld,\"region\":", (long long)id.expires);
        tool_json_str(id.region);
        printf(",\"region_source\":");
        tool_json_str(id.region_source);
        printf(",\"endpoint\":");
        tool_json_str(id.endpoint);
        printf("}\n");
        return 0;
    }
    printf("source         %s\naccess key id  %s\n", id.source,
           id.access_key_id[0] ? id.access_key_id : "(none: unsigned requests)");
    if (id.expires)
        printf("expires        %s (in %lld s)\n", when,
               (long long)(id.expires - time(NULL)));
    else
        printf("expires        never\n");
    printf("region         %s (%s)\nendpoint       %s\n", id.region,
           id.region_source, id.endpoint);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "clean", no_argument, NULL, 'c' },
        { "cache-dir", required_argument, NULL, 'd' },
        { "whoami", no_argument, NULL, 'w' },
        { "no-sign-request", no_argument, NULL, 'n' },
        { "create", no_argument, NULL, 'C' },
        { "set-capacity", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, clean = 0, who = 0, unsigned_req = 0, create = 0, c;
    const char *dir = NULL;
    uint64_t set_cap = 0;
    while ((c = getopt_long(argc, argv, "jcd:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'c': clean = 1; break;
        case 'd': dir = optarg; break;
        case 'w': who = 1; break;
        case 'n': unsigned_req = 1; break;
        case 'C': create = 1; break;
        case 's':
            set_cap = parse_size(optarg);
            if (!set_cap) {
                fprintf(stderr, "dsc-stat: --set-capacity '%s': not a size "
                        "(e.g. 20G, 512MiB)\n", optarg);
                return 2;
            }
            break;
        case 'h':
            printf(USAGE);
            return 0;
        default:
            fprintf(stderr, USAGE);
            return 2;
        }
    }
    if (optind != argc || (who && (clean || create || set_cap))) {
        fprintf(stderr, USAGE);
        return 2;
    }
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.cache_dir = dir;
    cfg.anonymous = unsigned_req;
    if (who) {
        cfg.cache_dir = "";         /* who we are needs no cache: make none */
        return whoami(&cfg, json);
    }
    /* The cache's state needs no S3 request, so no credentials either. */
    cfg.anonymous = 1;
    cfg.cache_existing = !create;
    /* A cache made here gets the capacity asked for, not a default. */
    if (create && set_cap)
        cfg.cache_size = set_cap;
    dsc_ctx *ctx;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc == DSC_ENOCACHE) {
        fprintf(stderr, "dsc-stat: %s (--create makes one; check the path, "
                "--cache-dir or DSC_CACHE_DIR)\n", dsc_errmsg());
        return 1;
    }
    if (rc) {
        fprintf(stderr, "dsc-stat: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return 1;
    }
    if (!dsc_cache_dir(ctx)) {
        fprintf(stderr, "dsc-stat: no usable cache directory (DSC_CACHE_DIR "
                        "is off, or the directory could not be opened)\n");
        dsc_ctx_close(ctx);
        return 1;
    }
    if (set_cap && (rc = dsc_cache_set_capacity(ctx, set_cap)) != 0) {
        fprintf(stderr, "dsc-stat: --set-capacity: %s: %s\n",
                dsc_strerror(rc), dsc_errmsg());
        dsc_ctx_close(ctx);
        return 1;
    }
    int64_t cleaned = clean ? dsc_cache_clean(ctx) : 0;
    if (cleaned < 0) {
        fprintf(stderr, "dsc-stat: clean: %s\n", dsc_errmsg());
        dsc_ctx_close(ctx);
        return 1;
    }
    dsc_stats s;
    if (dsc_stats_get(ctx, &s, sizeof s)) {
        fprintf(stderr, "dsc-stat: %s\n", dsc_errmsg());
        dsc_ctx_close(ctx);
        return 1;
    }
    uint64_t lookups = s.node_hits + s.node_misses;
    double ratio = lookups ? (double)s.node_hits / (double)lookups : 0;
    if (json) {
        printf("{\"cache_dir\":");
        tool_json_str(dsc_cache_dir(ctx));
        printf(",\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
               ",\"chunks\":%" PRIu64 ",\"chunk_size\":%u,\"policy\":\"%s\""
               ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
               ",\"hit_ratio\":%.4f,\"evictions\":%" PRIu64
               ",\"corrupt_dropped\":%" PRIu64
               ",\"capacity_set_bytes\":%" PRIu64
               ",\"capacity_disk_limit_bytes\":%" PRIu64,
               s.node_capacity ? s.node_capacity : s.cache_capacity,
               s.cache_bytes, s.cache_chunks, s.chunk_size,
               s.cache_policy == DSC_POLICY_MINIO ? "minio" : "lru",
               s.node_hits, s.node_misses, ratio, s.node_evictions,
               s.node_corrupt, s.node_capacity_set, s.node_capacity_disk);
        if (clean)
            printf(",\"stray_files_removed\":%" PRId64, cleaned);
        printf("}\n");
    } else {
        char used[32], cap[32];
        tool_bytes((double)s.cache_bytes, used, sizeof used);
        uint64_t capacity = s.node_capacity ? s.node_capacity : s.cache_capacity;
        tool_bytes((double)capacity, cap, sizeof cap);
        printf("cache       %s\n", dsc_cache_dir(ctx));
        printf("used        %s of %s (%.1f%%), %" PRIu64 " chunks\n", used, cap,
               capacity ? 100.0 * (double)s.cache_bytes / (double)capacity : 0,
               s.cache_chunks);
        char set[32];
        tool_bytes((double)s.node_capacity_set, set, sizeof set);
        if (s.node_capacity_disk && s.node_capacity_disk < s.node_capacity_set)
            printf("capacity    %s set, limited to %s: the filesystem filled "
                   "first (free space, or dsc-stat --set-capacity)\n", set, cap);
        else
            printf("capacity    %s (the cache's; dsc-stat --set-capacity "
                   "changes it)\n", set);
        printf("policy      %s, chunk size %u KiB (this process's settings)\n",
               s.cache_policy == DSC_POLICY_MINIO ? "minio" : "lru",
               s.chunk_size / 1024);
        printf("hits        %" PRIu64 "\n", s.node_hits);
        printf("misses      %" PRIu64 "\n", s.node_misses);
        printf("hit ratio   %.1f%%\n", 100 * ratio);
        printf("evictions   %" PRIu64 "\n", s.node_evictions);
        printf("corrupt     %" PRIu64 " chunks dropped and refetched\n",
               s.node_corrupt);
        if (clean)
            printf("cleaned     %" PRId64 " stray files removed\n", cleaned);
    }
    dsc_ctx_close(ctx);
    return 0;
}
