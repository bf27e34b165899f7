/* dsc-stat: show the node cache's state and counters, or who we are.
 *
 *   dsc-stat [--json | --prometheus] [--top N] [--clean] [--cache-dir DIR]
 *            [--create] [--set-capacity SIZE]
 *   dsc-stat --whoami [--json] [--no-sign-request]
 *
 * The summary: capacity and use, hit ratio, the node's S3 requests, what
 * the cache saved and what S3 cost in dollars (at DSC_PRICE_GET_PER_1000,
 * DSC_PRICE_LIST_PER_1000 and DSC_PRICE_EGRESS_PER_GB; defaults: S3
 * Standard, us-east-1), and the N key prefixes with the most bytes read
 * (--top, default 5). Counters are the node's: every process that used
 * the cache, dscd included, as flushed (about once a second).
 * --prometheus prints the same counters as Prometheus text, the series
 * dscd serves at /metrics.
 * --whoami: where the credentials came from, the access key id, when they
 * expire, the region and endpoint (never the secret).
 * The cache directory is DIR, else DSC_CACHE_DIR, else the default
 * (~/.cache/dsc). A directory without a cache is an error (a mistyped
 * path must not become a new cache) unless --create is given.
 * --set-capacity sets the cache's capacity (every process's cap; "20G")
 * and evicts down to it. --clean also removes files left by crashed
 * processes. Exit 0, 1 when there is no usable cache (or a DSC_* variable
 * is invalid), 2 for usage errors. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include "dsc.h"
#include "tool.h"

#define USAGE "usage: dsc-stat [--json | --prometheus] [--top N] [--clean] [--cache-dir DIR]\n" \
              "                [--create] [--set-capacity SIZE]\n" \
              "       dsc-stat --whoami [--json] [--no-sign-request]\n" \
              "Prices (US dollars) for the cost figures: DSC_PRICE_GET_PER_1000 (GET, HEAD;\n" \
              "0.0004), DSC_PRICE_LIST_PER_1000 (0.005), DSC_PRICE_EGRESS_PER_GB (0.09, to\n" \
              "the internet; 0 in the bucket's region). Defaults: S3 Standard, us-east-1,\n" \
              "AWS's list prices of 2026-11-29.\n"

#define TOP_MAX 64

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

/* "$0.12" for cents and more, else six decimals ("$0.000014"). */
static void money(double d, char *out, size_t cap)
{
    snprintf(out, cap, d >= 0.01 ? "$%.2f" : "$%.6f", d);
}

/* The node's series as Prometheus text (the library renders them, as for
 * dscd's /metrics). The text grows while we look: ask until it fits. */
static int prometheus(dsc_ctx *ctx)
{
    size_t cap = 16384;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf) {
            fprintf(stderr, "dsc-stat: out of memory\n");
            return 1;
        }
        int64_t n = dsc_metrics_text(ctx, buf, cap);
        if (n >= 0 && (size_t)n < cap)
            fputs(buf, stdout);
        free(buf);
        if (n < 0) {
            fprintf(stderr, "dsc-stat: %s: %s\n", dsc_strerror((int)n),
                    dsc_errmsg());
            return 1;
        }
        if ((size_t)n < cap)
            return 0;
        cap = (size_t)n + 4096;
    }
}

typedef struct report {
    dsc_stats s;
    dsc_prices p;
    dsc_cost cost;
    dsc_prefix_stats top[TOP_MAX];
    size_t ntop;
    int64_t nprefixes;
} report;

static int gather(dsc_ctx *ctx, size_t top, report *r)
{
    int rc = dsc_prices_get(&r->p, sizeof r->p);
    if (!rc)
        rc = dsc_cost_get(ctx, &r->cost, sizeof r->cost);
    /* After the cost: the prefixes flush nothing new, so the two agree. */
    if (!rc)
        rc = dsc_stats_get(ctx, &r->s, sizeof r->s);
    r->nprefixes = rc ? 0 : dsc_top_prefixes(ctx, r->top, top, sizeof r->top[0]);
    if (!rc && r->nprefixes < 0)
        rc = (int)r->nprefixes;
    if (rc) {
        fprintf(stderr, "dsc-stat: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return rc;
    }
    r->ntop = (size_t)r->nprefixes < top ? (size_t)r->nprefixes : top;
    return 0;
}

static uint64_t prefix_bytes(const dsc_prefix_stats *p)
{
    return p->cache_bytes + p->s3_bytes + p->peer_bytes;
}

static void json_out(dsc_ctx *ctx, const report *r, double ratio, int clean,
                     int64_t cleaned)
{
    const dsc_stats *s = &r->s;
    printf("{\"cache_dir\":");
    tool_json_str(dsc_cache_dir(ctx));
    printf(",\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
           ",\"chunks\":%" PRIu64 ",\"chunk_size\":%u,\"policy\":\"%s\""
           ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
           ",\"hit_ratio\":%.4f,\"evictions\":%" PRIu64
           ",\"corrupt_dropped\":%" PRIu64
           ",\"capacity_set_bytes\":%" PRIu64
           ",\"capacity_disk_limit_bytes\":%" PRIu64,
           s->node_capacity ? s->node_capacity : s->cache_capacity,
           s->cache_bytes, s->cache_chunks, s->chunk_size,
           s->cache_policy == DSC_POLICY_MINIO ? "minio" : "lru",
           s->node_hits, s->node_misses, ratio, s->node_evictions,
           s->node_corrupt, s->node_capacity_set, s->node_capacity_disk);
    printf(",\"s3_gets\":%" PRIu64 ",\"s3_heads\":%" PRIu64
           ",\"s3_lists\":%" PRIu64 ",\"s3_retries\":%" PRIu64
           ",\"s3_bytes\":%" PRIu64 ",\"cache_read_bytes\":%" PRIu64
           ",\"peer_hits\":%" PRIu64 ",\"peer_bytes\":%" PRIu64
           ",\"prefetched_chunks\":%" PRIu64 ",\"prefetched_bytes\":%" PRIu64
           ",\"saved_requests\":%" PRIu64 ",\"saved_bytes\":%" PRIu64,
           s->node_s3_gets, s->node_s3_heads, s->node_s3_lists,
           s->node_s3_retries, s->node_s3_bytes, s->node_cache_bytes,
           s->node_peer_hits, s->node_peer_bytes, s->node_prefetched,
           s->node_prefetched_bytes, r->cost.gets_saved, r->cost.bytes_saved);
    const dsc_cost *c = &r->cost;
    printf(",\"cost_dollars\":{\"requests_spent\":%.10g,\"transfer_spent\":%.10g"
           ",\"requests_saved\":%.10g,\"transfer_saved\":%.10g"
           ",\"spent\":%.10g,\"saved\":%.10g}",
           c->requests_spent, c->transfer_spent, c->requests_saved,
           c->transfer_saved, c->requests_spent + c->transfer_spent,
           c->requests_saved + c->transfer_saved);
    printf(",\"prices_dollars\":{\"get_per_1000\":%.10g,\"list_per_1000\":%.10g"
           ",\"egress_per_gb\":%.10g}", r->p.get_per_1000, r->p.list_per_1000,
           r->p.egress_per_gb);
    printf(",\"prefixes\":%" PRId64 ",\"top_prefixes\":[", r->nprefixes);
    for (size_t i = 0; i < r->ntop; i++) {
        const dsc_prefix_stats *p = &r->top[i];
        printf("%s{\"bucket\":", i ? "," : "");
        tool_json_str(p->bucket);
        printf(",\"prefix\":");
        tool_json_str(p->prefix);
        printf(",\"bytes\":%" PRIu64 ",\"cache_bytes\":%" PRIu64
               ",\"s3_bytes\":%" PRIu64 ",\"peer_bytes\":%" PRIu64 "}",
               prefix_bytes(p), p->cache_bytes, p->s3_bytes, p->peer_bytes);
    }
    printf("]");
    if (clean)
        printf(",\"stray_files_removed\":%" PRId64, cleaned);
    printf("}\n");
}

static void human_out(dsc_ctx *ctx, const report *r, double ratio, int clean,
                      int64_t cleaned)
{
    const dsc_stats *s = &r->s;
    char used[32], cap[32], set[32], b1[32], b2[32], m1[32], m2[32], m3[32];
    tool_bytes((double)s->cache_bytes, used, sizeof used);
    uint64_t capacity = s->node_capacity ? s->node_capacity : s->cache_capacity;
    tool_bytes((double)capacity, cap, sizeof cap);
    printf("cache       %s\n", dsc_cache_dir(ctx));
    printf("used        %s of %s (%.1f%%), %" PRIu64 " chunks\n", used, cap,
           capacity ? 100.0 * (double)s->cache_bytes / (double)capacity : 0,
           s->cache_chunks);
    tool_bytes((double)s->node_capacity_set, set, sizeof set);
    if (s->node_capacity_disk && s->node_capacity_disk < s->node_capacity_set)
        printf("capacity    %s set, limited to %s: the filesystem filled "
               "first (free space, or dsc-stat --set-capacity)\n", set, cap);
    else
        printf("capacity    %s (the cache's; dsc-stat --set-capacity "
               "changes it)\n", set);
    printf("policy      %s, chunk size %u KiB (this process's settings)\n",
           s->cache_policy == DSC_POLICY_MINIO ? "minio" : "lru",
           s->chunk_size / 1024);
    printf("hits        %" PRIu64 "\n", s->node_hits);
    printf("misses      %" PRIu64 "\n", s->node_misses);
    printf("hit ratio   %.1f%%\n", 100 * ratio);
    printf("evictions   %" PRIu64 "\n", s->node_evictions);
    printf("corrupt     %" PRIu64 " chunks dropped and refetched\n",
           s->node_corrupt);
    tool_bytes((double)s->node_s3_bytes, b1, sizeof b1);
    printf("S3          %" PRIu64 " GETs, %" PRIu64 " HEADs, %" PRIu64
           " LISTs, %s received\n", s->node_s3_gets, s->node_s3_heads,
           s->node_s3_lists, b1);
    if (s->node_peer_hits || s->node_peer_bytes) {
        tool_bytes((double)s->node_peer_bytes, b1, sizeof b1);
        printf("peers       %" PRIu64 " chunk reads, %s received\n",
               s->node_peer_hits, b1);
    }
    const dsc_cost *c = &r->cost;
    tool_bytes((double)c->bytes_saved, b2, sizeof b2);
    money(c->requests_saved + c->transfer_saved, m1, sizeof m1);
    money(c->requests_saved, m2, sizeof m2);
    money(c->transfer_saved, m3, sizeof m3);
    printf("cost saved  %s: %" PRIu64 " GETs (%s) and %s of transfer (%s) "
           "served by the cache\n", m1, c->gets_saved, m2, b2, m3);
    money(c->requests_spent + c->transfer_spent, m1, sizeof m1);
    money(c->requests_spent, m2, sizeof m2);
    money(c->transfer_spent, m3, sizeof m3);
    printf("cost spent  %s: requests %s, transfer %s\n", m1, m2, m3);
    printf("prices      per 1,000 GET/HEAD $%g, LIST $%g; per GB $%g "
           "(DSC_PRICE_*)\n", r->p.get_per_1000, r->p.list_per_1000,
           r->p.egress_per_gb);
    if (r->ntop)
        printf("top prefixes by bytes read (%" PRId64 " in all)\n",
               r->nprefixes);
    for (size_t i = 0; i < r->ntop; i++) {
        const dsc_prefix_stats *p = &r->top[i];
        char all[32], hit[32], s3[32], peer[32];
        tool_bytes((double)prefix_bytes(p), all, sizeof all);
        tool_bytes((double)p->cache_bytes, hit, sizeof hit);
        tool_bytes((double)p->s3_bytes, s3, sizeof s3);
        tool_bytes((double)p->peer_bytes, peer, sizeof peer);
        if (p->bucket[0])
            printf("  %10s  s3://%s/%s  (cache %s, S3 %s, peers %s)\n", all,
                   p->bucket, p->prefix, hit, s3, peer);
        else
            printf("  %10s  (other prefixes)  (cache %s, S3 %s, peers %s)\n",
                   all, hit, s3, peer);
    }
    if (clean)
        printf("cleaned     %" PRId64 " stray files removed\n", cleaned);
}

static int summary(dsc_ctx *ctx, int json, size_t top, int clean,
                   int64_t cleaned)
{
    report r;
    if (gather(ctx, top, &r))
        return 1;
    uint64_t lookups = r.s.node_hits + r.s.node_misses;
    double ratio = lookups ? (double)r.s.node_hits / (double)lookups : 0;
    if (json)
        json_out(ctx, &r, ratio, clean, cleaned);
    else
        human_out(ctx, &r, ratio, clean, cleaned);
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
        { "prometheus", no_argument, NULL, 'p' },
        { "top", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, prom = 0, clean = 0, who = 0, unsigned_req = 0, create = 0, c;
    size_t top = 5;
    char *end;
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
        case 'p': prom = 1; break;
        case 't':
            top = strtoul(optarg, &end, 10);
            if (*end || end == optarg || top > TOP_MAX) {
                fprintf(stderr, "dsc-stat: --top '%s': a number from 0 to %d\n",
                        optarg, TOP_MAX);
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
    if (optind != argc || (who && (clean || create || set_cap || prom)) ||
        (prom && json)) {
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
    int out = prom ? prometheus(ctx) : summary(ctx, json, top, clean, cleaned);
    dsc_ctx_close(ctx);
    return out;
}
