/* dscd: the node's peer daemon. Serves the chunks this node owns to the
 * other nodes of the cluster from the node cache, fetching from S3 on a
 * miss; /healthz and /metrics (Prometheus) on the same port.
 *
 *   dscd [--listen HOST:PORT] [--port-file FILE] [--cache-dir DIR]
 *        [--max-inflight N] [--max-connections N] [--max-per-address N]
 *        [--idle-timeout SECONDS] [--self NAME[,NAME]]
 *        [--tls-cert PEM --tls-key PEM]
 *
 * Listens on --listen, else DSC_LISTEN, else DSC_SELF, else
 * 127.0.0.1:7070, and answers requests signed for --self / DSC_SELF (its
 * name in DSC_PEERS) or for that address. The secret comes from DSC_PEER_SECRET or
 * DSC_PEER_SECRET_FILE; S3 and cache settings from the usual AWS_* and
 * DSC_* variables (the chunk size must be the cluster's). Stops cleanly on
 * SIGTERM or SIGINT. Exit 0 after a clean stop, 1 on start-up errors, 2
 * for usage errors. */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "peer/client.h"
#include "dscd/server.h"

static const char USAGE[] =
    "usage: dscd [--listen HOST:PORT] [--port-file FILE] [--cache-dir DIR]\n"
    "            [--max-inflight N] [--max-connections N] [--max-per-address N]\n"
    "            [--idle-timeout SECONDS] [--self NAME[,NAME]]\n"
    "            [--tls-cert PEM --tls-key PEM]\n";

/* A daemon often starts after a crash: sweep the debris of the killed one
 * (files evicted but not yet unlinked) without delaying the start. */
static void *sweep(void *ctx)
{
    int64_t n = dsc_cache_clean(ctx);
    if (n > 0)
        fprintf(stderr, "dscd: removed %lld stray files\n", (long long)n);
    return NULL;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    /* Never through a link someone planted at the predictable name. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f, "%u\n", port);
    if (fclose(f) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "port-file", required_argument, NULL, 'p' },
        { "cache-dir", required_argument, NULL, 'd' },
        { "max-inflight", required_argument, NULL, 'i' },
        { "max-connections", required_argument, NULL, 'c' },
        { "max-per-address", required_argument, NULL, 'a' },
        { "self", required_argument, NULL, 's' },
        { "tls-cert", required_argument, NULL, 'C' },
        { "tls-key", required_argument, NULL, 'K' },
        { "idle-timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = NULL, *port_file = NULL, *dir = NULL, *self = NULL;
    const char *tls_cert = NULL, *tls_key = NULL;
    int max_inflight = 0, max_conn = 0, max_per_addr = 0, idle = 0, c;
    while ((c = getopt_long(argc, argv, "l:p:d:i:c:a:t:s:C:K:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'p': port_file = optarg; break;
        case 'd': dir = optarg; break;
        case 'i': max_inflight = atoi(optarg); break;
        case 'c': max_conn = atoi(optarg); break;
        case 'a': max_per_addr = atoi(optarg); break;
        case 's': self = optarg; break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 't': idle = atoi(optarg); break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (optind != argc || max_inflight < 0 || max_conn < 0 ||
        max_per_addr < 0 || idle < 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!listen)
        listen = getenv("DSC_LISTEN");
    if (!listen || !*listen)
        listen = getenv("DSC_SELF");
    if (!listen || !*listen)
        listen = "127.0.0.1:7070";
    if (!self)
        self = getenv("DSC_SELF");
    if (!tls_cert)
        tls_cert = getenv("DSC_PEER_TLS_CERT");
    if (!tls_key)
        tls_key = getenv("DSC_PEER_TLS_KEY");
    if (tls_cert && !*tls_cert)
        tls_cert = NULL;
    if (tls_key && !*tls_key)
        tls_key = NULL;

    /* Threads made from here on (the server's) leave these signals to
     * sigwait below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    cfg.cache_dir = dir;
    cfg.peers = "";          /* the daemon answers; it never asks peers */
    dsc_ctx *ctx = NULL;
    char *secret = NULL;
    int rc = dsc_ctx_open(&cfg, &ctx);
    if (!rc && !dsc_cache_dir(ctx))
        rc = dsc_fail(DSC_EINVAL, "no usable cache directory (see the log "
                      "above; DSC_CACHE_DIR)");
    if (!rc)
        rc = dsc_peer_secret(NULL, &secret);
    dsc_server *srv = NULL;
    if (!rc) {
        dsc_server_opts so = { .listen = listen, .secret = secret,
                               .self = self,
                               .tls_cert = tls_cert, .tls_key = tls_key,
                               .max_inflight = max_inflight,
                               .max_connections = max_conn,
                               .max_per_address = max_per_addr,
                               .idle_timeout_s = idle };
        rc = dsc_server_start(ctx, &so, &srv);
    }
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
    if (rc) {
        fprintf(stderr, "dscd: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        dsc_ctx_close(ctx);
        return 1;
    }
    unsigned port = dsc_server_port(srv);
    if (port_file && write_port_file(port_file, port)) {
        perror("dscd: port file");
        dsc_server_stop(srv);
        dsc_ctx_close(ctx);
        return 1;
    }
    dsc_stats st;
    dsc_stats_get(ctx, &st, sizeof st);
    fprintf(stderr, "dscd %s: serving %s (chunk %u KiB) on %s, port %u, %s\n",
            dsc_version_string(), dsc_cache_dir(ctx), st.chunk_size / 1024,
            listen, port, tls_cert ? "TLS" : "plain HTTP (signed, not encrypted)");
    pthread_t sweeper;
    int swept = pthread_create(&sweeper, NULL, sweep, ctx) == 0;
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "dscd: signal %d, stopping\n", sig);
    if (swept)
        pthread_join(sweeper, NULL);
    dsc_server_stop(srv);
    dsc_ctx_close(ctx);
    return 0;
}
