/* A reader process that stays up across a test's phases, so a change
 * made between them (peers joining or leaving) happens to a running
 * context:
 *
 *   pass_reader THREADS VERIFY_DIR URL...
 *
 * Commands on stdin, one a line; each answers one line on stdout:
 *   pass   read every URL whole (THREADS at once), compare with
 *          VERIFY_DIR/<the URL's last path part>:
 *          "pass ok=N bad=N errors=N " + the stats line
 *   stats  "stats peers=N changes=N resolve_errors=N s3_gets=N
 *          peer_hits=N peer_errors=N"
 *   forkwait N
 *          fork (as a DataLoader starts its workers); the child waits up
 *          to 30 s until its context knows N peers, makes a pass and
 *          answers "fork ..." as pass does; the parent waits for it
 * EOF ends it. Uses dsc.h alone (settings from the environment). */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dsc.h"

static dsc_ctx *ctx;
static char **urls;
static int nurls;
static const char *verify_dir;
static int next_url, ok, bad, errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n >= 0 && (data = malloc((size_t)n + 1)) && fread(data, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

/* 1: the object's bytes are the local copy's; 0: they differ; -1: error. */
static int read_one(const char *url)
{
    char path[4096];
    size_t want_len = 0;
    snprintf(path, sizeof path, "%s/%s", verify_dir, strrchr(url, '/') + 1);
    char *want = slurp(path, &want_len);
    dsc_file *f = NULL;
    char *got = NULL;
    int rc = -1;
    if (!want || dsc_open(ctx, url, &f)) {
        fprintf(stderr, "%s: %s\n", url, want ? dsc_errmsg() : "no local copy");
        goto done;
    }
    int64_t size = dsc_size(f);
    got = malloc((size_t)size + 1);
    ssize_t n = got ? dsc_pread(f, got, (size_t)size, 0) : -1;
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", url, dsc_errmsg());
        goto done;
    }
    rc = (size_t)n == want_len && memcmp(got, want, want_len) == 0;
done:
    dsc_close(f);
    free(got);
    free(want);
    return rc;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        int i = next_url < nurls ? next_url++ : -1;
        pthread_mutex_unlock(&mu);
        if (i < 0)
            return NULL;
        int r = read_one(urls[i]);
        pthread_mutex_lock(&mu);
        *(r > 0 ? &ok : r == 0 ? &bad : &errors) += 1;
        pthread_mutex_unlock(&mu);
    }
}

static uint64_t peers_known(void)
{
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    return st.peers;
}

static void read_all(int threads)
{
    pthread_t t[64];
    next_url = ok = bad = errors = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
}

static void print_stats(void)
{
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    printf("peers=%llu changes=%llu resolve_errors=%llu s3_gets=%llu "
           "peer_hits=%llu peer_errors=%llu\n",
           (unsigned long long)st.peers, (unsigned long long)st.peer_changes,
           (unsigned long long)st.peer_resolve_errors,
           (unsigned long long)st.s3_gets, (unsigned long long)st.peer_hits,
           (unsigned long long)st.peer_errors);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pass_reader THREADS VERIFY_DIR URL...\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    verify_dir = argv[2];
    urls = argv + 3;
    nurls = argc - 3;
    if (threads < 1 || threads > 64 || dsc_ctx_open(NULL, &ctx)) {
        fprintf(stderr, "pass_reader: %s\n", threads < 1 ? "bad THREADS" : dsc_errmsg());
        return 1;
    }
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        unsigned want;
        if (strcmp(line, "pass\n") == 0) {
            read_all(threads);
            printf("pass ok=%d bad=%d errors=%d ", ok, bad, errors);
        } else if (sscanf(line, "forkwait %u", &want) == 1) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                for (int i = 0; i < 300 && peers_known() != want; i++)
                    usleep(100000);
                read_all(threads);
                printf("fork ok=%d bad=%d errors=%d ", ok, bad, errors);
                print_stats();
                fflush(stdout);
                dsc_ctx_close(ctx);
                _exit(0);
            }
            int status = 0;
            if (pid < 0 || waitpid(pid, &status, 0) != pid || status) {
                printf("fork failed\n");
                fflush(stdout);
            }
            continue;
        } else if (strcmp(line, "stats\n") == 0) {
            printf("stats ");
        } else {
            printf("unknown command\n");
            fflush(stdout);
            continue;
        }
        print_stats();
        fflush(stdout);
    }
    dsc_ctx_close(ctx);
    return 0;
}
