/* dsc-prefetch: warm the node cache with a dataset before training.
 *
 *   dsc-prefetch [-j N] [--json] [--quiet] [--list FILE|-] [URL...]
 *
 * A URL ending in '/' (or naming a bucket) is a prefix: every object under
 * it is fetched. Other URLs are single objects. --list reads URLs, one a
 * line, from FILE or stdin ('-'). Listed objects (their sizes known) go to
 * libdsc's background fetching in bulk: many GETs in flight on its event
 * loop, as many as the origin sustains, with no thread each. Then N
 * threads (-j N) go over every object: a cached one costs a lookup; the
 * rest (single URLs, failures) are fetched there, each failure with its
 * reason. A progress bar is
 * drawn on a terminal, plain progress lines otherwise; a summary at the
 * end (JSON on stdout with --json; objects_fetched_alone counts those
 * the bulk pass left to the threads). A prefix that cannot be listed, or
 * that matches no object (a mistyped prefix; --allow-empty accepts it),
 * is a failure like an object that cannot be fetched: in "failures" with
 * "listing": true. Exit: 0 all fetched, 1 some failed (each listed on
 * stderr), 2 usage errors. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dsc.h"
#include "tool.h"

typedef struct item {
    char *url;
    int64_t size;        /* -1 until known */
    int status;          /* DSC_OK or DSC_E* */
    char *error;
} item;

typedef struct job {
    dsc_ctx *ctx;
    item *items;
    size_t n, cap;
    size_t next;                     /* under lock */
    pthread_mutex_t lock;
    /* progress, __atomic */
    uint64_t done, failed, bytes_done, bytes_fetched, bytes_known;
    uint64_t fetched_alone;          /* objects the bulk pass left to fetch */
    /* What the bulk pass showed: the progress shown never goes back. */
    uint64_t bulk_done, bulk_bytes;
} job;

static int add_item(job *j, const char *url, int64_t size)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        item *p = realloc(j->items, cap * sizeof *p);
        if (!p)
            return -1;
        j->items = p;
        j->cap = cap;
    }
    item *it = &j->items[j->n++];
    it->url = strdup(url);
    it->size = size;
    it->status = 0;
    it->error = NULL;
    if (size > 0)
        j->bytes_known += (uint64_t)size;
    return it->url ? 0 : -1;
}

static int on_listed(void *arg, const dsc_object_info *o)
{
    return add_item(arg, o->url, (int64_t)o->size) ? 1 : 0;
}

static void *worker(void *arg)
{
    job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next < j->n ? j->next++ : SIZE_MAX;
        pthread_mutex_unlock(&j->lock);
        if (i == SIZE_MAX)
            return NULL;
        item *it = &j->items[i];
        dsc_file *f = NULL;
        int rc = dsc_open(j->ctx, it->url, &f);
        int64_t fetched = 0;
        if (!rc) {
            if (it->size < 0) {
                it->size = dsc_size(f);
                __atomic_fetch_add(&j->bytes_known, (uint64_t)it->size,
                                   __ATOMIC_RELAXED);
            }
            fetched = dsc_warm(f, 0, 0);
            if (fetched < 0)
                rc = (int)fetched;
        }
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s: %s", dsc_strerror(rc), dsc_errmsg());
            it->error = strdup(msg);
            it->status = rc;
            __atomic_fetch_add(&j->failed, 1, __ATOMIC_RELAXED);
        } else {
            __atomic_fetch_add(&j->bytes_fetched, (uint64_t)fetched, __ATOMIC_RELAXED);
            if (fetched > 0)
                __atomic_fetch_add(&j->fetched_alone, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&j->bytes_done, (uint64_t)it->size, __ATOMIC_RELAXED);
        }
        __atomic_fetch_add(&j->done, 1, __ATOMIC_RELAXED);
        dsc_close(f);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(job *j, double t0, int tty, int final)
{
    uint64_t done = __atomic_load_n(&j->done, __ATOMIC_RELAXED);
    uint64_t bytes = __atomic_load_n(&j->bytes_done, __ATOMIC_RELAXED);
    if (!final && done < j->bulk_done)
        done = j->bulk_done;
    if (!final && bytes < j->bulk_bytes)
        bytes = j->bulk_bytes;
    uint64_t known = __atomic_load_n(&j->bytes_known, __ATOMIC_RELAXED);
    uint64_t failed = __atomic_load_n(&j->failed, __ATOMIC_RELAXED);
    double dt = now_s() - t0;
    double frac = known ? (double)bytes / (double)known
                        : (j->n ? (double)done / (double)j->n : 1);
    if (frac > 1)
        frac = 1;
    double rate = dt > 0 ? bytes / dt : 0;
    double eta = rate > 0 && known > bytes ? (known - bytes) / rate : 0;
    char b1[32], b2[32], r[32];
    tool_bytes((double)bytes, b1, sizeof b1);
    tool_bytes((double)known, b2, sizeof b2);
    tool_bytes(rate, r, sizeof r);
    if (tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3.0f%% %s/%s %llu/%zu obj %.0f obj/s %s/s "
                "ETA %.0fs%s \033[K", bar, frac * 100, b1, b2,
                (unsigned long long)done, j->n, dt > 0 ? done / dt : 0, r,
                eta, failed ? " (failures)" : "");
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "dsc-prefetch: %3.0f%% %s of %s, %llu of %zu objects, "
                "%.0f objects/s, %s/s, ETA %.0f s, %llu failed\n", frac * 100,
                b1, b2, (unsigned long long)done, j->n,
                dt > 0 ? done / dt : 0, r, eta, (unsigned long long)failed);
    }
}

/* A progress line (or bar frame) when the last is old enough; *last is
 * when it was drawn. */
static void progress_tick(job *j, double t0, int tty, int quiet, double *last)
{
    double period = tty ? 0.2 : 5.0;
    if (!quiet && now_s() - *last >= period) {
        progress(j, t0, tty, 0);
        *last = now_s();
    }
}

static dsc_stats stats_now(dsc_ctx *ctx)
{
    dsc_stats st;
    if (dsc_stats_get(ctx, &st, sizeof st))
        memset(&st, 0, sizeof st);
    return st;
}

/* Bytes this context brought in so far (from S3 or peers): the node's
 * counters would count every other process on the node too. */
static uint64_t fetched_bytes(const dsc_stats *st)
{
    return st->bytes_from_s3 + st->peer_bytes;
}

/* Background tasks a slice of the bulk pass may queue: an object's URL task
 * and its chunks share one queue (65,536), and chunks that find it full
 * are dropped, so a slice takes a quarter of it and drains first. */
#define SLICE_TASKS 16384

typedef struct bulk {
    job *j;
    dsc_stats base;
    uint64_t done_objects;             /* of the slices drained */
    uint64_t slice_objects, slice_bytes, slice_base;
    double t0, last;
    int tty, quiet;
} bulk;

/* Wait up to 100 ms for the queued fetches; show progress (objects of the
 * slice in flight estimated by its bytes). 1 when nothing is left. */
static int bulk_wait(bulk *b)
{
    int idle = dsc_prefetch_wait(b->j->ctx, 100) == 0;
    dsc_stats st = stats_now(b->j->ctx);
    uint64_t got = fetched_bytes(&st) - fetched_bytes(&b->base);
    uint64_t in_slice = got - b->slice_base;
    if (in_slice > b->slice_bytes)
        in_slice = b->slice_bytes;
    uint64_t objs = b->done_objects + (b->slice_bytes ? b->slice_objects *
                    in_slice / b->slice_bytes : 0);
    if (objs > b->j->bulk_done)
        b->j->bulk_done = objs;
    if (got > b->j->bulk_bytes)
        b->j->bulk_bytes = got;
    progress_tick(b->j, b->t0, b->tty, b->quiet, &b->last);
    return idle;
}

/* The bulk pass: the listed objects go to dsc_prefetch_urls (those found
 * cached are not queued) a slice at a time, each slice waited for.
 * Returns the bytes it fetched. Anything that went wrong here is met
 * again, with its reason, by the pass over every object after it. */
static uint64_t bulk_fetch(job *j, double t0, int tty, int quiet)
{
    const char **urls = malloc((j->n ? j->n : 1) * sizeof *urls);
    uint64_t *sizes = malloc((j->n ? j->n : 1) * sizeof *sizes);
    size_t n = 0;
    bulk b = { .j = j, .t0 = t0, .last = now_s(), .tty = tty, .quiet = quiet };
    b.base = stats_now(j->ctx);
    uint64_t chunk = b.base.chunk_size ? b.base.chunk_size : 1, known = 0;
    if (!urls || !sizes)
        goto done;
    for (size_t i = 0; i < j->n; i++)
        if (j->items[i].size >= 0) {
            sizes[n] = (uint64_t)j->items[i].size;
            known += sizes[n];
            urls[n++] = j->items[i].url;
        }
    for (size_t at = 0; at < n;) {
        size_t end = at;
        uint64_t tasks = 0;
        b.slice_bytes = 0;
        while (end < n && (end == at || tasks < SLICE_TASKS)) {
            tasks += 1 + (sizes[end] + chunk - 1) / chunk;
            b.slice_bytes += sizes[end++];
        }
        b.slice_objects = end - at;
        dsc_stats st = stats_now(j->ctx);
        b.slice_base = fetched_bytes(&st) - fetched_bytes(&b.base);
        while (at < end) {
            size_t taken = 0;
            ssize_t rc = dsc_prefetch_urls(j->ctx, urls + at, end - at, &taken);
            at += taken;
            if (rc == DSC_EAGAIN)
                bulk_wait(&b);          /* queue full: let some finish */
            else if (rc < 0)
                at++;                   /* refused: the pass over all says why */
        }
        while (!bulk_wait(&b))
            ;
        b.done_objects += b.slice_objects;
    }
done:
    free(urls);
    free(sizes);
    dsc_stats st = stats_now(j->ctx);
    uint64_t got = fetched_bytes(&st) - fetched_bytes(&b.base);
    return got < known ? got : known;
}

static int read_list(job *j, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "dsc-prefetch: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (add_item(j, line, -1)) {
            free(line);
            return -1;
        }
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return 0;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: dsc-prefetch [--no-sign-request] [-j N] [--json] [--quiet] [--allow-empty]\n"
                "                    [--list FILE|-] [s3://bucket/prefix/ | s3://bucket/key ...]\n");
}

/* A prefix that gave nothing to fetch, and why. */
typedef struct bad_listing {
    const char *url;
    int code;
    char *error;
} bad_listing;

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "json", no_argument, NULL, 'J' },
        { "quiet", no_argument, NULL, 'q' },
        { "list", required_argument, NULL, 'l' },
        { "no-sign-request", no_argument, NULL, 'N' },
        { "allow-empty", no_argument, NULL, 'E' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int jobs = 16, json = 0, quiet = 0, allow_empty = 0, c;
    const char *lists[64];
    int nlists = 0;
    while ((c = getopt_long(argc, argv, "j:ql:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "dsc-prefetch: -j wants 1..1024\n");
                return 2;
            }
            jobs = (int)v;
            break;
        }
        case 'J': json = 1; break;
        case 'q': quiet = 1; break;
        case 'l':
            if (nlists == 64)
                return 2;
            lists[nlists++] = optarg;
            break;
        case 'N': tool_no_sign_request(); break;
        case 'E': allow_empty = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind == argc && nlists == 0) {
        usage(stderr);
        return 2;
    }
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    if (cfg.prefetch_threads < jobs)
        cfg.prefetch_threads = jobs;
    cfg.readahead_max = 0;
    job j = { .lock = PTHREAD_MUTEX_INITIALIZER };
    int rc = dsc_ctx_open(&cfg, &j.ctx);
    if (rc) {
        fprintf(stderr, "dsc-prefetch: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return 1;
    }
    if (!dsc_cache_dir(j.ctx)) {
        fprintf(stderr, "dsc-prefetch: no usable cache directory: nothing to "
                        "warm (see DSC_CACHE_DIR)\n");
        dsc_ctx_close(j.ctx);
        return 1;
    }
    int status = 0;
    bad_listing *bad = calloc((size_t)argc, sizeof *bad);
    size_t nbad = 0;
    if (!bad) {
        dsc_ctx_close(j.ctx);
        return 1;
    }
    for (int i = optind; i < argc; i++) {
        const char *u = argv[i];
        size_t len = strlen(u);
        int is_prefix = len && u[len - 1] == '/';
        if (!is_prefix && strncmp(u, "s3://", 5) == 0 && !strchr(u + 5, '/'))
            is_prefix = 1;    /* a bare bucket */
        if (is_prefix) {
            int64_t n = dsc_list(j.ctx, u, on_listed, &j);
            if (n < 0) {
                fprintf(stderr, "dsc-prefetch: list %s: %s: %s\n", u,
                        dsc_strerror((int)n), dsc_errmsg());
                status = n == DSC_EURL ? 2 : 1;
                bad[nbad++] = (bad_listing){ u, (int)n, strdup(dsc_errmsg()) };
            } else if (n == 0 && !allow_empty) {
                /* Nothing to warm is what a mistyped prefix looks like;
                 * a training job would then read everything cold. */
                fprintf(stderr, "dsc-prefetch: %s matches no object (check "
                        "the prefix; --allow-empty accepts this)\n", u);
                status = 1;
                bad[nbad++] = (bad_listing){ u, DSC_ENOTFOUND,
                                             strdup("matches no object") };
            }
        } else if (add_item(&j, u, -1)) {
            status = 1;
        }
    }
    for (int i = 0; i < nlists; i++)
        if (read_list(&j, lists[i]))
            status = 1;
    if (status == 2) {
        for (size_t i = 0; i < nbad; i++)
            free(bad[i].error);
        free(bad);
        dsc_ctx_close(j.ctx);
        return 2;
    }
    int tty = isatty(STDERR_FILENO);
    double t0 = now_s();
    j.bytes_fetched = bulk_fetch(&j, t0, tty, quiet);
    int nthreads = jobs < (int)j.n ? jobs : (int)j.n;
    pthread_t *tids = calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof *tids);
    int started = 0;
    for (; tids && started < nthreads; started++)
        if (pthread_create(&tids[started], NULL, worker, &j))
            break;
    if (started == 0 && j.n)
        worker(&j);   /* no threads to be had: do it here */
    double last = t0;
    while (__atomic_load_n(&j.done, __ATOMIC_RELAXED) < j.n) {
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
        progress_tick(&j, t0, tty, quiet, &last);
    }
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    double dt = now_s() - t0;
    if (!quiet)
        progress(&j, t0, tty, 1);
    for (size_t i = 0; i < j.n; i++)
        if (j.items[i].status)
            fprintf(stderr, "dsc-prefetch: FAILED %s: %s\n", j.items[i].url,
                    j.items[i].error ? j.items[i].error : "");
    uint64_t ok = j.done - j.failed;
    if (json) {
        printf("{\"objects\":%zu,\"ok\":%llu,\"failed\":%llu,\"bytes\":%llu,"
               "\"bytes_fetched\":%llu,\"bytes_already_cached\":%llu,"
               "\"objects_fetched_alone\":%llu,"
               "\"seconds\":%.3f,\"bytes_per_second\":%.0f,\"failures\":[",
               j.n, (unsigned long long)ok,
               (unsigned long long)(j.failed + nbad),
               (unsigned long long)j.bytes_done,
               (unsigned long long)j.bytes_fetched,
               (unsigned long long)(j.bytes_done > j.bytes_fetched
                                        ? j.bytes_done - j.bytes_fetched : 0),
               (unsigned long long)j.fetched_alone, dt,
               dt > 0 ? j.bytes_done / dt : 0);
        int first = 1;
        for (size_t i = 0; i < nbad; i++) {
            printf("%s{\"url\":", first ? "" : ",");
            tool_json_str(bad[i].url);
            printf(",\"listing\":true,\"code\":%d,\"error\":", bad[i].code);
            tool_json_str(bad[i].error ? bad[i].error : "");
            putchar('}');
            first = 0;
        }
        for (size_t i = 0; i < j.n; i++) {
            if (!j.items[i].status)
                continue;
            printf("%s{\"url\":", first ? "" : ",");
            tool_json_str(j.items[i].url);
            printf(",\"code\":%d,\"error\":", j.items[i].status);
            tool_json_str(j.items[i].error ? j.items[i].error : "");
            putchar('}');
            first = 0;
        }
        printf("]}\n");
    } else {
        char b1[32], b2[32], r[32];
        tool_bytes((double)j.bytes_done, b1, sizeof b1);
        tool_bytes((double)j.bytes_fetched, b2, sizeof b2);
        tool_bytes(dt > 0 ? j.bytes_done / dt : 0, r, sizeof r);
        printf("dsc-prefetch: %llu of %zu objects ready (%s; %s fetched now, "
               "the rest already cached) in %.2f s, %s/s; %llu failed\n",
               (unsigned long long)ok, j.n, b1, b2, dt, r,
               (unsigned long long)j.failed + nbad);
    }
    for (size_t i = 0; i < nbad; i++)
        free(bad[i].error);
    free(bad);
    for (size_t i = 0; i < j.n; i++) {
        free(j.items[i].url);
        free(j.items[i].error);
    }
    free(j.items);
    dsc_ctx_close(j.ctx);
    if (status)
        return status;
    return j.failed ? 1 : 0;
}
