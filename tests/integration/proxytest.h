/* For integration tests that need a slow or faulty origin: faultproxy.py
 * in front of s3rver as a child process, and the objects of s3put.py's
 * putmany (a test defines PREFIX, MIN_SIZE and MAX_SIZE first). */
#ifndef DSC_PROXYTEST_H
#define DSC_PROXYTEST_H

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include "cachetest.h"

extern char **environ;

/* As many_object() in s3put.py. */
static inline size_t obj_size(int i)
{
    return MIN_SIZE + (size_t)((i * 7919) % (MAX_SIZE - MIN_SIZE + 1));
}

static inline unsigned char obj_byte(int i, size_t j)
{
    return (unsigned char)((i * 131 + j * 7 + (j >> 8)) & 0xFF);
}

static inline void obj_url(int i, char *url, size_t cap)
{
    snprintf(url, cap, "s3://%s/" PREFIX "%06d", itest_env("DSC_TEST_BUCKET"), i);
}

/* Uploads PREFIX000000.. (s3put.py putmany); 0 when it worked, else -1
 * and says so on stderr. */
static inline int put_objects(int n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s putmany %s %s %d %d %d",
             itest_env("DSC_TEST_PUT"), itest_env("DSC_TEST_ENDPOINT"), PREFIX,
             n, MIN_SIZE, MAX_SIZE);
    if (system(cmd) == 0)
        return 0;
    fprintf(stderr, "could not upload %s*\n", PREFIX);
    return -1;
}

/* ---- faultproxy.py as a child process ------------------------------------ */

typedef struct proxy {
    pid_t pid;
    char endpoint[128];
} proxy;

static inline void proxy_start(proxy *p, const char *rules)
{
    char port_file[600], upstream[128];
    snprintf(port_file, sizeof port_file, "%s/proxy-port-XXXXXX",
             itest_env("DSC_TEST_STATE"));
    int fd = mkstemp(port_file);
    assert_true(fd >= 0);
    close(fd);
    unlink(port_file);
    const char *ep = itest_env("DSC_TEST_ENDPOINT");
    snprintf(upstream, sizeof upstream, "%s", strstr(ep, "://") + 3);
    /* Next to s3put.py. */
    char script[600];
    snprintf(script, sizeof script, "%s", itest_env("DSC_TEST_PUT"));
    snprintf(strrchr(script, '/'), sizeof script - (size_t)(strrchr(script, '/') - script),
             "/faultproxy.py");
    char *argv[] = { "/usr/bin/python3", script, "--upstream", upstream,
                     "--port-file", port_file, "--rules", (char *)rules,
                     "--exit-with-parent", NULL };
    assert_int_equal(posix_spawn(&p->pid, argv[0], NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            snprintf(p->endpoint, sizeof p->endpoint, "http://127.0.0.1:%d", port);
            unlink(port_file);
            return;
        }
        usleep(50 * 1000);
    }
    fail_msg("faultproxy did not start");
}

static inline void proxy_stop(proxy *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
}

#endif
