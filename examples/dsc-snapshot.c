/* dsc-snapshot: make, refresh, compare and show dataset snapshots.
 *
 *   dsc-snapshot s3://bucket/prefix -o FILE        list once, write FILE
 *   dsc-snapshot --refresh FILE [-o NEW]           list FILE's prefix again,
 *                                                  print the diff, write NEW
 *                                                  (FILE itself by default)
 *   dsc-snapshot --diff OLD NEW                    compare two snapshots
 *   dsc-snapshot --show FILE|s3://bucket/key       header and entries
 *
 * Options: --json (machine output on stdout), --verbose (--diff and
 * --refresh: each differing key), --allow-empty (accept a listing with no
 * objects, which is otherwise taken for a mistyped prefix). Files are
 * written atomically. Exit: 0 done, 1 failed (reason on stderr), 2 usage
 * errors and malformed URLs. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dsc.h"
#include "tool.h"

typedef struct opts {
    int json, verbose, allow_empty;
} opts;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: dsc-snapshot [--no-sign-request] [--json] [--allow-empty] s3://bucket/prefix -o FILE\n"
        "       dsc-snapshot [--json] [--verbose] [--allow-empty] --refresh FILE [-o NEW]\n"
        "       dsc-snapshot [--json] [--verbose] --diff OLD NEW\n"
        "       dsc-snapshot [--json] --show FILE|s3://bucket/key\n");
}

/* A failed call: its reason, and the exit status it deserves. */
static int failed(const char *what, int rc)
{
    fprintf(stderr, "dsc-snapshot: %s: %s: %s\n", what, dsc_strerror(rc),
            dsc_errmsg());
    return rc == DSC_EURL ? 2 : 1;
}

static dsc_ctx *open_ctx(void)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.snapshot = "";       /* the tool lists; it pins nothing */
    cfg.readahead_max = 0;
    dsc_ctx *ctx = NULL;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (rc)
        failed("opening a context", rc);
    return ctx;
}

static void print_summary(const char *verb, const dsc_snapshot *s,
                          const char *file, const opts *o)
{
    dsc_snapshot_summary m;
    dsc_snapshot_summarize(s, &m, sizeof m);
    if (o->json) {
        printf("\"url\":");
        tool_json_str(m.url);
        printf(",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"file\":",
               m.objects, m.bytes);
        tool_json_str(file);
        printf(",\"file_bytes\":%" PRIu64 ",\"versioned\":%s", m.file_bytes,
               m.versioned ? "true" : "false");
        return;
    }
    char b1[32], b2[32];
    tool_bytes((double)m.bytes, b1, sizeof b1);
    tool_bytes((double)m.file_bytes, b2, sizeof b2);
    printf("dsc-snapshot: %s %s: %" PRIu64 " objects%s, %s, file %s (%s, %.1f "
           "bytes/object)\n", verb, m.url, m.objects,
           m.versioned ? " (pinned by version id)" : "", b1, file, b2,
           m.objects ? (double)m.file_bytes / (double)m.objects : 0.0);
}

static int check_nonempty(const dsc_snapshot *s, const opts *o)
{
    if (dsc_snapshot_count(s) || o->allow_empty)
        return 0;
    dsc_snapshot_summary m;
    dsc_snapshot_summarize(s, &m, sizeof m);
    fprintf(stderr, "dsc-snapshot: %s holds no objects (a mistyped prefix?); "
            "--allow-empty writes an empty snapshot\n", m.url);
    return 1;
}

static int create(const char *url, const char *out, const opts *o)
{
    dsc_ctx *ctx = open_ctx();
    if (!ctx)
        return 1;
    dsc_snapshot *s = NULL;
    int status = 0, rc = dsc_snapshot_list(ctx, url, &s);
    if (rc)
        status = failed(url, rc);
    if (!status)
        status = check_nonempty(s, o);
    if (!status && (rc = dsc_snapshot_save(s, out)))
        status = failed(out, rc);
    if (!status) {
        if (o->json)
            putchar('{');
        print_summary("wrote", s, out, o);
        if (o->json)
            printf("}\n");
    }
    dsc_snapshot_free(s);
    dsc_ctx_close(ctx);
    return status;
}

/* Differing keys, collected for --verbose and --json. */
typedef struct keys {
    char **list[4];
    size_t n[4], cap[4];
} keys;

static int on_diff(void *arg, int what, const dsc_object_info *a,
                   const dsc_object_info *b)
{
    keys *k = arg;
    const char *key = b ? b->key : a->key;
    if (k->n[what] == k->cap[what]) {
        size_t cap = k->cap[what] ? 2 * k->cap[what] : 64;
        char **p = realloc(k->list[what], cap * sizeof *p);
        if (!p)
            return 1;
        k->list[what] = p;
        k->cap[what] = cap;
    }
    return !(k->list[what][k->n[what]++] = strdup(key));
}

static const char *const kind_name[4] = { "", "changed", "deleted", "new" };

static void print_diff(const dsc_snapshot_delta *d, const keys *k,
                       const opts *o)
{
    if (o->json) {
        printf("\"changed\":%" PRIu64 ",\"deleted\":%" PRIu64 ",\"added\":%"
               PRIu64 ",\"same\":%" PRIu64 ",\"keys\":{", d->changed,
               d->deleted, d->added, d->same);
        for (int w = 1; w <= 3; w++) {
            printf("%s\"%s\":[", w > 1 ? "," : "", kind_name[w]);
            for (size_t i = 0; i < k->n[w]; i++) {
                if (i)
                    putchar(',');
                tool_json_str(k->list[w][i]);
            }
            putchar(']');
        }
        putchar('}');
        return;
    }
    printf("%" PRIu64 " changed, %" PRIu64 " deleted, %" PRIu64 " new\n",
           d->changed, d->deleted, d->added);
    if (o->verbose)
        for (int w = 1; w <= 3; w++)
            for (size_t i = 0; i < k->n[w]; i++)
                printf("%-8s %s\n", kind_name[w], k->list[w][i]);
}

static void keys_free(keys *k)
{
    for (int w = 1; w <= 3; w++) {
        for (size_t i = 0; i < k->n[w]; i++)
            free(k->list[w][i]);
        free(k->list[w]);
    }
}

static int load(dsc_ctx *ctx, const char *src, dsc_snapshot **s)
{
    int rc = dsc_snapshot_load(ctx, src, s);
    return rc ? failed(src, rc) : 0;
}

static int refresh(const char *file, const char *out, const opts *o)
{
    dsc_ctx *ctx = open_ctx();
    if (!ctx)
        return 1;
    dsc_snapshot *old = NULL, *now = NULL;
    keys k = { 0 };
    dsc_snapshot_delta d;
    int rc, status = load(ctx, file, &old);
    dsc_snapshot_summary m;
    if (!status) {
        dsc_snapshot_summarize(old, &m, sizeof m);
        if ((rc = dsc_snapshot_list(ctx, m.url, &now)))
            status = failed(m.url, rc);
    }
    if (!status)
        status = check_nonempty(now, o);
    if (!status && (rc = dsc_snapshot_diff_each(old, now, on_diff, &k, &d)))
        status = failed("diff", rc);
    if (!status && (rc = dsc_snapshot_save(now, out)))
        status = failed(out, rc);
    if (!status) {
        if (o->json)
            putchar('{');
        print_diff(&d, &k, o);
        if (o->json)
            putchar(',');
        print_summary("wrote", now, out, o);
        if (o->json)
            printf("}\n");
    }
    keys_free(&k);
    dsc_snapshot_free(old);
    dsc_snapshot_free(now);
    dsc_ctx_close(ctx);
    return status;
}

static int needs_ctx(const char *src)
{
    return strncmp(src, "s3://", 5) == 0;
}

static int diff(const char *a, const char *b, const opts *o)
{
    dsc_ctx *ctx = needs_ctx(a) || needs_ctx(b) ? open_ctx() : NULL;
    if ((needs_ctx(a) || needs_ctx(b)) && !ctx)
        return 1;
    dsc_snapshot *old = NULL, *now = NULL;
    keys k = { 0 };
    dsc_snapshot_delta d;
    int rc, status = load(ctx, a, &old);
    if (!status)
        status = load(ctx, b, &now);
    if (!status && (rc = dsc_snapshot_diff_each(old, now, on_diff, &k, &d)))
        status = failed("diff", rc);
    if (!status) {
        if (o->json)
            putchar('{');
        print_diff(&d, &k, o);
        if (o->json)
            printf("}\n");
    }
    keys_free(&k);
    dsc_snapshot_free(old);
    dsc_snapshot_free(now);
    dsc_ctx_close(ctx);
    return status;
}

static int show(const char *src, const opts *o)
{
    dsc_ctx *ctx = needs_ctx(src) ? open_ctx() : NULL;
    if (needs_ctx(src) && !ctx)
        return 1;
    dsc_snapshot *s = NULL;
    int status = load(ctx, src, &s);
    if (!status) {
        dsc_snapshot_summary m;
        dsc_snapshot_summarize(s, &m, sizeof m);
        time_t t = (time_t)(m.created_ms / 1000);
        char when[64];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        if (o->json) {
            printf("{\"file\":");
            tool_json_str(src);
            printf(",\"format\":%u,\"url\":", m.format);
            tool_json_str(m.url);
            printf(",\"bucket\":");
            tool_json_str(m.bucket);
            printf(",\"prefix\":");
            tool_json_str(m.prefix);
            printf(",\"origin\":");
            tool_json_str(m.origin);
            printf(",\"created\":\"%s\",\"created_ms\":%" PRId64 ",\"objects\":%"
                   PRIu64 ",\"bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
                   ",\"versioned\":%s,\"entries\":[", when, m.created_ms,
                   m.objects, m.bytes, m.file_bytes,
                   m.versioned ? "true" : "false");
        } else {
            printf("snapshot %s (format %u)\n  url      %s\n  origin   %s\n"
                   "  created  %s\n  objects  %" PRIu64 "\n  bytes    %" PRIu64
                   "\n  file     %" PRIu64 " bytes\n  versions %s\n", src,
                   m.format, m.url, m.origin, when, m.objects, m.bytes,
                   m.file_bytes, m.versioned ? "yes (reads pinned to them)"
                                             : "no (reads pinned by ETag)");
        }
        for (size_t i = 0; i < dsc_snapshot_count(s); i++) {
            dsc_object_info e;
            dsc_snapshot_get(s, i, &e);
            const char *vid = dsc_snapshot_version_id(s, i);
            if (o->json) {
                printf("%s{\"key\":", i ? "," : "");
                tool_json_str(e.key);
                printf(",\"size\":%" PRIu64 ",\"etag\":", e.size);
                tool_json_str(e.etag);
                if (vid) {
                    printf(",\"version_id\":");
                    tool_json_str(vid);
                }
                putchar('}');
            } else {
                printf("%12" PRIu64 "  %-40s  %s%s%s\n", e.size, e.etag, e.key,
                       vid ? "  version " : "", vid ? vid : "");
            }
        }
        if (o->json)
            printf("]}\n");
    }
    dsc_snapshot_free(s);
    dsc_ctx_close(ctx);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "refresh", no_argument, NULL, 'r' },
        { "diff", no_argument, NULL, 'd' },
        { "show", no_argument, NULL, 's' },
        { "json", no_argument, NULL, 'J' },
        { "verbose", no_argument, NULL, 'v' },
        { "allow-empty", no_argument, NULL, 'E' },
        { "no-sign-request", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    opts o = { 0 };
    const char *out = NULL;
    int mode = 0, c;
    while ((c = getopt_long(argc, argv, "o:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'r': case 'd': case 's':
            if (mode && mode != c) {
                fprintf(stderr, "dsc-snapshot: --refresh, --diff and --show "
                        "exclude each other\n");
                return 2;
            }
            mode = c;
            break;
        case 'J': o.json = 1; break;
        case 'v': o.verbose = 1; break;
        case 'E': o.allow_empty = 1; break;
        case 'N': tool_no_sign_request(); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    int want = mode == 'd' ? 2 : 1;
    if (nargs != want || (mode == 0 && !out) || ((mode == 'd' || mode == 's') && out)) {
        usage(stderr);
        return 2;
    }
    switch (mode) {
    case 'r': return refresh(args[0], out ? out : args[0], &o);
    case 'd': return diff(args[0], args[1], &o);
    case 's': return show(args[0], &o);
    default:
        if (!needs_ctx(args[0])) {
            fprintf(stderr, "dsc-snapshot: '%s' is not an s3:// URL\n", args[0]);
            return 2;
        }
        return create(args[0], out, &o);
    }
}
