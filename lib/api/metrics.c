/* The node cache's metrics: the one definition of the dsc_* series that
 * `dsc-stat --prometheus` prints and dscd serves at /metrics (so the two
 * cannot drift), S3 prices and the cost estimate made with them, the
 * prefix table, and what a context's cache counts with. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/metrics.h"
#include "core/fork.h"

/* AWS's list prices for S3 Standard in us-east-1, taken 2026-11-29:
 * GET, HEAD (and SELECT) $0.0004 per 1,000; LIST (as PUT, COPY, POST)
 * $0.005 per 1,000; data transfer out to the internet $0.09 per GB for
 * the first 10 TB a month (S3 to EC2 in the bucket's region: free). */
#define PRICE_GET_PER_1000 0.0004
#define PRICE_LIST_PER_1000 0.005
#define PRICE_EGRESS_PER_GB 0.09
#define GB 1073741824.0           /* AWS bills GB of 2^30 bytes */

#define PREFIX_DEPTH 2

int dsc_price_env(const char *name, double def, double *out)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v)
        return 0;
    /* Digits into an integer and a power of ten: the quotient is
     * rounded once, so "0.0004" is the double nearest 0.0004. */
    uint64_t mant = 0, scale = 1;
    int digits = 0, dot = 0;
    const char *p;
    for (p = v; *p; p++) {
        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }
        if (!dsc_isdigit(*p) || digits == 18)
            break;
        mant = mant * 10 + (uint64_t)(*p - '0');
        scale *= dot ? 10 : 1;
        digits++;
    }
    if (*p || !digits) {
        char shown[64];
        return dsc_fail(DSC_EINVAL, "%s=%s: not a price in dollars (a plain "
                        "decimal number such as 0.0004)", name,
                        dsc_printable(v, shown, sizeof shown));
    }
    *out = (double)mant / (double)scale;
    return 0;
}

int dsc_prices_get(dsc_prices *out, size_t size)
{
    dsc_clear_error();
    if (!out || !size)
        return dsc_fail(DSC_EINVAL, "dsc_prices_get: bad argument");
    dsc_prices p;
    int rc = dsc_price_env("DSC_PRICE_GET_PER_1000", PRICE_GET_PER_1000,
                           &p.get_per_1000);
    if (!rc)
        rc = dsc_price_env("DSC_PRICE_LIST_PER_1000", PRICE_LIST_PER_1000,
                           &p.list_per_1000);
    if (!rc)
        rc = dsc_price_env("DSC_PRICE_EGRESS_PER_GB", PRICE_EGRESS_PER_GB,
                           &p.egress_per_gb);
    if (!rc)
        memcpy(out, &p, size < sizeof p ? size : sizeof p);
    return rc;
}

static int prefix_depth(unsigned *out)
{
    const char *v = getenv("DSC_PREFIX_DEPTH");
    uint64_t d = PREFIX_DEPTH;
    char shown[64];
    if (v && *v && (dsc_parse_u64(v, &d) || d < 1 || d > 16))
        return dsc_fail(DSC_EINVAL, "DSC_PREFIX_DEPTH=%s: not a number from "
                        "1 to 16", dsc_printable(v, shown, sizeof shown));
    *out = (unsigned)d;
    return 0;
}

/* The cache's flush takes this process's S3 requests from the client.
 * A fork()ed child that has not made its own client yet has none: the
 * parent's client and its counts are the parent's to flush. */
static void take_s3(void *arg, dsc_node_counters *n)
{
    dsc_ctx *ctx = arg;
    if (!dsc_fork_current(&ctx->s3_gen))
        return;
    dsc_s3_counters d;
    dsc_s3_counters_take(ctx->s3, &d);
    n->s3_gets += d.gets;
    n->s3_heads += d.heads;
    n->s3_lists += d.lists;
    n->s3_retries += d.retries;
    n->s3_bytes += d.get_bytes;
}

int dsc_metrics_cache_opts(dsc_ctx *ctx, dsc_cache_opts *o)
{
    dsc_prices p;
    int rc = dsc_prices_get(&p, sizeof p);
    if (!rc)
        rc = prefix_depth(&o->prefix_depth);
    o->take_s3 = take_s3;
    o->take_s3_arg = ctx;
    return rc;
}

static uint64_t less(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* A hit saved a GET and its bytes, unless it was the first read of a
 * prefetched chunk (the GET was made, only earlier): so the node's hits
 * less its prefetched chunks, at 0 while prefetching runs ahead of the
 * reads. Prefetched chunks never read lower it for good: wasted GETs. */
static dsc_cost cost_of(const dsc_stats *st, const dsc_prices *p)
{
    dsc_cost c = {
        .requests_spent = ((double)(st->node_s3_gets + st->node_s3_heads) *
                               p->get_per_1000 +
                           (double)st->node_s3_lists * p->list_per_1000) / 1000,
        .transfer_spent = (double)st->node_s3_bytes / GB * p->egress_per_gb,
        .gets_saved = less(st->node_hits, st->node_prefetched),
        .bytes_saved = less(st->node_cache_bytes, st->node_prefetched_bytes),
    };
    c.requests_saved = (double)c.gets_saved * p->get_per_1000 / 1000;
    c.transfer_saved = (double)c.bytes_saved / GB * p->egress_per_gb;
    return c;
}

int dsc_cost_get(dsc_ctx *ctx, dsc_cost *out, size_t size)
{
    dsc_clear_error();
    if (!ctx || !out || !size)
        return dsc_fail(DSC_EINVAL, "dsc_cost_get: bad argument");
    dsc_prices p;
    dsc_stats st;
    int rc = dsc_prices_get(&p, sizeof p);
    if (!rc)
        rc = dsc_stats_get(ctx, &st, sizeof st);
    if (rc)
        return rc;
    dsc_cost c = cost_of(&st, &p);
    memcpy(out, &c, size < sizeof c ? size : sizeof c);
    return 0;
}

/* All the node's prefixes (at most DSC_PREFIXES_KEPT + 1), malloc'd. */
static int all_prefixes(dsc_ctx *ctx, dsc_prefix_count **out, size_t *n)
{
    enum { MAX = DSC_PREFIXES_KEPT + 1 };
    *out = NULL;
    *n = 0;
    if (!ctx->cache)
        return dsc_fail(DSC_ENOCACHE, "the context has no node cache");
    dsc_prefix_count *all = malloc(MAX * sizeof *all);
    if (!all)
        return DSC_ENOMEM;
    size_t total;
    int rc = dsc_cache_prefixes(ctx->cache, all, MAX, &total);
    if (rc) {
        free(all);
        return rc;
    }
    *out = all;
    *n = total < MAX ? total : MAX;
    return 0;
}

int64_t dsc_top_prefixes(dsc_ctx *ctx, dsc_prefix_stats *out, size_t n,
                         size_t size)
{
    dsc_clear_error();
    if (!ctx || (n && (!out || !size)))
        return dsc_fail(DSC_EINVAL, "dsc_top_prefixes: bad argument");
    dsc_prefix_count *all;
    size_t have;
    int rc = all_prefixes(ctx, &all, &have);
    if (rc)
        return rc;
    for (size_t i = 0; i < have && i < n; i++) {
        dsc_prefix_stats ps;
        memset(&ps, 0, sizeof ps);
        snprintf(ps.bucket, sizeof ps.bucket, "%s", all[i].bucket);
        snprintf(ps.prefix, sizeof ps.prefix, "%s", all[i].prefix);
        ps.cache_bytes = all[i].bytes[DSC_SRC_CACHE];
        ps.s3_bytes = all[i].bytes[DSC_SRC_S3];
        ps.peer_bytes = all[i].bytes[DSC_SRC_PEER];
        memcpy((char *)out + i * size, &ps, size < sizeof ps ? size : sizeof ps);
    }
    free(all);
    return (int64_t)have;
}

/* ---- The series --------------------------------------------------------- */

typedef struct family {
    const char *name, *type, *help;
} family;

/* Every dsc_* series, once: name, type and help. docs: README "Metrics
 * and cost"; deploy/grafana/libdsc.json uses these names. */
static const family FAMILIES[] = {
    { "dsc_build_info", "gauge", "libdsc's version (the value is 1)." },
    { "dsc_cache_hits_total", "counter", "Chunk reads served from the node "
      "cache by every process of the node (dscd's answers to peers "
      "included)." },
    { "dsc_cache_misses_total", "counter", "Chunks fetched into the node "
      "cache." },
    { "dsc_cache_evictions_total", "counter", "Chunks evicted from the node "
      "cache." },
    { "dsc_cache_corrupt_dropped_total", "counter", "Cached chunks that "
      "failed their check and were fetched again." },
    { "dsc_cache_bytes", "gauge", "Bytes of all cached chunks." },
    { "dsc_cache_chunks", "gauge", "Cached chunks." },
    { "dsc_cache_capacity_bytes", "gauge", "The byte cap every process of "
      "the node keeps to." },
    { "dsc_s3_requests_total", "counter", "Requests the node's processes "
      "sent to S3, by kind (a retried request counts once)." },
    { "dsc_s3_retries_total", "counter", "S3 attempts repeated after a "
      "failure." },
    { "dsc_read_bytes_total", "counter", "Bytes the node read, by source: "
      "s3 (GET bodies), cache (the node cache), peer (other nodes' dscd)." },
    { "dsc_peer_hits_total", "counter", "Chunk reads served by their owner "
      "node's dscd." },
    { "dsc_prefetched_chunks_total", "counter", "Chunks brought into the "
      "node cache with no reader waiting (prefetch, readahead, plans)." },
    { "dsc_prefetched_bytes_total", "counter", "The bytes of those chunks." },
    { "dsc_saved_requests", "gauge", "S3 GETs not sent so far: chunk reads "
      "served from the node cache less the chunks prefetched into it." },
    { "dsc_saved_bytes", "gauge", "S3 bytes not transferred so far: bytes "
      "read from the node cache less the bytes prefetched into it." },
    { "dsc_cost_dollars_total", "counter", "Estimated S3 charges of the "
      "node's requests and transfer, US dollars at dsc_price_dollars." },
    { "dsc_saved_dollars", "gauge", "Estimated S3 charges the node cache "
      "saved so far, US dollars at dsc_price_dollars." },
    { "dsc_price_dollars", "gauge", "The prices of the estimates "
      "(DSC_PRICE_GET_PER_1000, DSC_PRICE_LIST_PER_1000, "
      "DSC_PRICE_EGRESS_PER_GB)." },
    { "dsc_prefix_read_bytes_total", "counter", "Bytes read per key prefix, "
      "by source; past 256 prefixes a node counts new ones under bucket "
      "\"\", prefix \"(other)\"." },
};

static void head(dsc_buf *b, const char *name)
{
    for (size_t i = 0; i < DSC_ARRAY_LEN(FAMILIES); i++)
        if (strcmp(FAMILIES[i].name, name) == 0)
            dsc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name,
                           FAMILIES[i].help, name, FAMILIES[i].type);
}

/* A label value as the exposition format quotes it. */
static void label_value(dsc_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            dsc_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            dsc_buf_adds(b, "\\n");
        else
            dsc_buf_add(b, s, 1);
    }
}

/* One sample: labels is "" or `key="value",...` already quoted. */
static void u64(dsc_buf *b, const char *name, const char *labels, uint64_t v)
{
    dsc_buf_printf(b, *labels ? "%s{%s} %" PRIu64 "\n" : "%s%s %" PRIu64 "\n",
                   name, labels, v);
}

static void dollars(dsc_buf *b, const char *name, const char *labels, double v)
{
    dsc_buf_printf(b, *labels ? "%s{%s} %.10g\n" : "%s%s %.10g\n", name,
                   labels, v);
}

static void one(dsc_buf *b, const char *name, uint64_t v)
{
    head(b, name);
    u64(b, name, "", v);
}

static void prefixes(dsc_buf *b, const dsc_prefix_count *all, size_t n)
{
    static const char *const SOURCES[DSC_NSRC] = { "cache", "s3", "peer" };
    head(b, "dsc_prefix_read_bytes_total");
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < DSC_NSRC; s++) {
            dsc_buf_adds(b, "dsc_prefix_read_bytes_total{bucket=\"");
            label_value(b, all[i].bucket);
            dsc_buf_adds(b, "\",prefix=\"");
            label_value(b, all[i].bucket[0] ? all[i].prefix : "(other)");
            dsc_buf_printf(b, "\",source=\"%s\"} %" PRIu64 "\n", SOURCES[s],
                           all[i].bytes[s]);
        }
    }
}

static void series(dsc_buf *b, const dsc_stats *st, const dsc_prices *p,
                   const dsc_prefix_count *all, size_t n)
{
    head(b, "dsc_build_info");
    dsc_buf_printf(b, "dsc_build_info{version=\"%s\"} 1\n", DSC_VERSION_STRING);
    one(b, "dsc_cache_hits_total", st->node_hits);
    one(b, "dsc_cache_misses_total", st->node_misses);
    one(b, "dsc_cache_evictions_total", st->node_evictions);
    one(b, "dsc_cache_corrupt_dropped_total", st->node_corrupt);
    one(b, "dsc_cache_bytes", st->cache_bytes);
    one(b, "dsc_cache_chunks", st->cache_chunks);
    one(b, "dsc_cache_capacity_bytes", st->node_capacity);
    head(b, "dsc_s3_requests_total");
    u64(b, "dsc_s3_requests_total", "kind=\"get\"", st->node_s3_gets);
    u64(b, "dsc_s3_requests_total", "kind=\"head\"", st->node_s3_heads);
    u64(b, "dsc_s3_requests_total", "kind=\"list\"", st->node_s3_lists);
    one(b, "dsc_s3_retries_total", st->node_s3_retries);
    head(b, "dsc_read_bytes_total");
    u64(b, "dsc_read_bytes_total", "source=\"s3\"", st->node_s3_bytes);
    u64(b, "dsc_read_bytes_total", "source=\"cache\"", st->node_cache_bytes);
    u64(b, "dsc_read_bytes_total", "source=\"peer\"", st->node_peer_bytes);
    one(b, "dsc_peer_hits_total", st->node_peer_hits);
    one(b, "dsc_prefetched_chunks_total", st->node_prefetched);
    one(b, "dsc_prefetched_bytes_total", st->node_prefetched_bytes);
    dsc_cost c = cost_of(st, p);
    one(b, "dsc_saved_requests", c.gets_saved);
    one(b, "dsc_saved_bytes", c.bytes_saved);
    head(b, "dsc_cost_dollars_total");
    dollars(b, "dsc_cost_dollars_total", "item=\"requests\"", c.requests_spent);
    dollars(b, "dsc_cost_dollars_total", "item=\"transfer\"", c.transfer_spent);
    head(b, "dsc_saved_dollars");
    dollars(b, "dsc_saved_dollars", "item=\"requests\"", c.requests_saved);
    dollars(b, "dsc_saved_dollars", "item=\"transfer\"", c.transfer_saved);
    head(b, "dsc_price_dollars");
    dollars(b, "dsc_price_dollars", "item=\"get_per_1000\"", p->get_per_1000);
    dollars(b, "dsc_price_dollars", "item=\"list_per_1000\"", p->list_per_1000);
    dollars(b, "dsc_price_dollars", "item=\"egress_per_gb\"", p->egress_per_gb);
    prefixes(b, all, n);
}

int64_t dsc_metrics_text(dsc_ctx *ctx, char *buf, size_t cap)
{
    dsc_clear_error();
    if (!ctx || (cap && !buf))
        return dsc_fail(DSC_EINVAL, "dsc_metrics_text: bad argument");
    dsc_prices p;
    dsc_stats st;
    dsc_prefix_count *all = NULL;
    size_t n = 0;
    dsc_buf b = { 0 };
    int64_t rc = dsc_prices_get(&p, sizeof p);
    if (!rc)
        rc = all_prefixes(ctx, &all, &n);
    /* After the prefixes: their flush is in the counters too. */
    if (!rc)
        rc = dsc_stats_get(ctx, &st, sizeof st);
    if (rc)
        goto done;
    series(&b, &st, &p, all, n);
    if (dsc_buf_oom(&b)) {
        rc = DSC_ENOMEM;
        goto done;
    }
    if (cap) {
        size_t k = b.len < cap - 1 ? b.len : cap - 1;
        memcpy(buf, b.data, k);
        buf[k] = 0;
    }
    rc = (int64_t)b.len;
done:
    free(all);
    dsc_buf_free(&b);
    return rc;
}
