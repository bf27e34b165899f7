/* dsc-epoch: read every object under an s3:// prefix, as one training epoch
 * would, and report throughput.
 *
 *   dsc-epoch [-j THREADS] [-e EPOCHS] [--duration SEC] [--seed N]
 *             [--verify DIR] s3://bucket/prefix
 *
 * Objects are read in a shuffled order (a new order each epoch) by THREADS
 * threads in 4 MiB reads. With --verify, each object's bytes are compared
 * with DIR/<key relative to the prefix>. Exit 0 when every read succeeded
 * (and matched), 1 otherwise, 2 for usage errors. With --duration, epochs
 * go on (up to EPOCHS, if given) until SEC seconds have passed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dsc.h"
#include "tool.h"

typedef struct object {
    char *url;
    char *rel;      /* key relative to the prefix */
    uint64_t size;
} object;

typedef struct run {
    dsc_ctx *ctx;
    object *objs;
    size_t nobjs, cap;
    size_t *order;
    size_t next;            /* next index into order */
    pthread_mutex_t lock;
    const char *verify_dir;
    uint64_t bytes;
    unsigned errors, mismatches;
} run;

static int on_object(void *arg, const dsc_object_info *o)
{
    run *r = arg;
    if (r->nobjs == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        object *p = realloc(r->objs, cap * sizeof *p);
        if (!p)
            return 1;
        r->objs = p;
        r->cap = cap;
    }
    object *ob = &r->objs[r->nobjs++];
    ob->url = strdup(o->url);
    ob->rel = NULL;
    ob->size = o->size;
    return ob->url ? 0 : 1;
}

static int verify(const run *r, const object *ob, const unsigned char *data)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", r->verify_dir, ob->rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char *want = malloc(ob->size ? ob->size : 1);
    int ok = want && fread(want, 1, ob->size, f) == ob->size &&
             fgetc(f) == EOF && memcmp(want, data, ob->size) == 0;
    free(want);
    fclose(f);
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    run *r = arg;
    const size_t step = 4u << 20;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next < r->nobjs ? r->order[r->next++] : SIZE_MAX;
        pthread_mutex_unlock(&r->lock);
        if (i == SIZE_MAX)
            break;
        object *ob = &r->objs[i];
        unsigned char *data = malloc(ob->size ? ob->size : 1);
        dsc_file *f = NULL;
        int rc = data ? dsc_open(r->ctx, ob->url, &f) : DSC_ENOMEM;
        uint64_t got = 0;
        while (!rc && got < ob->size) {
            size_t want = ob->size - got < step ? (size_t)(ob->size - got) : step;
            ssize_t n = dsc_pread(f, data + got, want, got);
            if (n <= 0) {
                rc = n < 0 ? (int)n : DSC_EPROTO;
                break;
            }
            got += (uint64_t)n;
        }
        int bad = !rc && r->verify_dir && verify(r, ob, data);
        pthread_mutex_lock(&r->lock);
        if (rc) {
            r->errors++;
            fprintf(stderr, "dsc-epoch: %s: %s: %s\n", ob->url,
                    dsc_strerror(rc), dsc_errmsg());
        } else {
            r->bytes += got;
        }
        if (bad) {
            r->mismatches++;
            fprintf(stderr, "dsc-epoch: %s: bytes differ from %s/%s\n",
                    ob->url, r->verify_dir, ob->rel);
        }
        pthread_mutex_unlock(&r->lock);
        dsc_close(f);
        free(data);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: dsc-epoch [--no-sign-request] [-j THREADS] [-e EPOCHS] [--duration SEC] "
                "[--seed N] [--verify DIR] s3://bucket/prefix\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "epochs", required_argument, NULL, 'e' },
        { "seed", required_argument, NULL, 's' },
        { "verify", required_argument, NULL, 'v' },
        { "duration", required_argument, NULL, 'd' },
        { "no-sign-request", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int threads = 8, epochs = 0;
    double duration = 0;
    unsigned seed = 1;
    run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
    int c;
    while ((c = getopt_long(argc, argv, "j:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': threads = atoi(optarg); break;
        case 'e': epochs = atoi(optarg); break;
        case 's': seed = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'v': r.verify_dir = optarg; break;
        case 'd': duration = atof(optarg); break;
        case 'N': tool_no_sign_request(); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (epochs == 0)
        epochs = duration > 0 ? INT_MAX : 1;
    if (optind != argc - 1 || threads < 1 || threads > 1024 || epochs < 1 ||
        duration < 0) {
        usage(stderr);
        return 2;
    }
    const char *prefix = argv[optind];
    int rc = dsc_ctx_open(NULL, &r.ctx);
    if (rc) {
        fprintf(stderr, "dsc-epoch: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return 1;
    }
    int64_t n = dsc_list(r.ctx, prefix, on_object, &r);
    if (n < 0) {
        fprintf(stderr, "dsc-epoch: list %s: %s: %s\n", prefix,
                dsc_strerror((int)n), dsc_errmsg());
        dsc_ctx_close(r.ctx);
        return n == DSC_EURL ? 2 : 1;
    }
    size_t plen = strlen(prefix);
    uint64_t total = 0;
    for (size_t i = 0; i < r.nobjs; i++) {
        r.objs[i].rel = r.objs[i].url + plen;
        total += r.objs[i].size;
    }
    r.order = malloc((r.nobjs ? r.nobjs : 1) * sizeof *r.order);
    printf("dataset: %zu objects, %.1f MiB under %s\n", r.nobjs,
           total / 1048576.0, prefix);
    int status = 0;
    dsc_stats prev;
    dsc_stats_get(r.ctx, &prev, sizeof prev);
    if (dsc_cache_dir(r.ctx))
        printf("cache: %s, %.1f GiB cap, %s policy\n", dsc_cache_dir(r.ctx),
               prev.cache_capacity / 1073741824.0,
               prev.cache_policy == DSC_POLICY_MINIO ? "minio" : "lru");
    else
        printf("cache: off (reads go to S3)\n");
    double first_start = now_s();
    for (int e = 1; e <= epochs && r.order; e++) {
        if (e > 1 && duration > 0 && now_s() - first_start >= duration)
            break;
        for (size_t i = 0; i < r.nobjs; i++)
            r.order[i] = i;
        unsigned s = seed + (unsigned)e;
        for (size_t i = r.nobjs; i > 1; i--) {
            size_t j = (size_t)rand_r(&s) % i;
            size_t t = r.order[i - 1];
            r.order[i - 1] = r.order[j];
            r.order[j] = t;
        }
        r.next = 0;
        r.bytes = 0;
        r.errors = r.mismatches = 0;
        double t0 = now_s();
        pthread_t *tids = calloc((size_t)threads, sizeof *tids);
        int started = 0;
        for (; tids && started < threads; started++)
            if (pthread_create(&tids[started], NULL, worker, &r))
                break;
        for (int i = 0; i < started; i++)
            pthread_join(tids[i], NULL);
        free(tids);
        double dt = now_s() - t0;
        dsc_stats st;
        dsc_stats_get(r.ctx, &st, sizeof st);
        printf("epoch %d: %zu objects, %.1f MiB in %.2f s: %.1f MiB/s, "
               "%.0f objects/s | chunk hits %llu, misses %llu, S3 GET %.1f MiB"
               " | %u errors%s\n",
               e, r.nobjs, r.bytes / 1048576.0, dt,
               dt > 0 ? r.bytes / 1048576.0 / dt : 0.0,
               dt > 0 ? r.nobjs / dt : 0.0,
               (unsigned long long)(st.hits - prev.hits),
               (unsigned long long)(st.misses - prev.misses),
               (st.bytes_from_s3 - prev.bytes_from_s3) / 1048576.0, r.errors,
               r.verify_dir ? (r.mismatches ? ", BYTES DIFFER" : ", all bytes verified")
                            : "");
        if (st.peer_hits || st.peer_errors)
            printf("epoch %d peers: %llu chunks from peers (%.1f MiB), %llu "
                   "peer errors (%llu bad answers), %llu peers down\n", e,
                   (unsigned long long)(st.peer_hits - prev.peer_hits),
                   (st.peer_bytes - prev.peer_bytes) / 1048576.0,
                   (unsigned long long)(st.peer_errors - prev.peer_errors),
                   (unsigned long long)(st.peer_bad_data - prev.peer_bad_data),
                   (unsigned long long)st.peers_down);
        prev = st;
        if (r.errors || r.mismatches || started == 0)
            status = 1;
    }
    for (size_t i = 0; i < r.nobjs; i++)
        free(r.objs[i].url);
    free(r.objs);
    free(r.order);
    dsc_ctx_close(r.ctx);
    return status;
}
