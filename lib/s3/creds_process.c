/* credential_process: a program the profile names prints keys as JSON.
 * Run without a shell (posix_spawn), with a bounded wait. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/json.h"
#include "s3/internal.h"

#define OUT_MAX (64 * 1024)
#define ERR_KEEP 1024

void dsc_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int dsc_shell_split(const char *cmd, char ***out)
{
    size_t n = 0, cap = 8;
    char **argv = calloc(cap, sizeof *argv);
    dsc_buf word = { 0 };
    int rc = argv ? 0 : DSC_ENOMEM;
    const char *p = cmd;
    while (!rc) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        dsc_buf_reset(&word);
        dsc_buf_add(&word, "", 0);      /* '' is an empty word, not none */
        while (*p && !is_space(*p) && !rc) {
            if (*p == '\'') {
                const char *close = strchr(p + 1, '\'');
                if (!close) {
                    rc = dsc_fail(DSC_EINVAL, "unclosed quote");
                    break;
                }
                dsc_buf_add(&word, p + 1, (size_t)(close - p - 1));
                p = close + 1;
            } else if (*p == '"') {
                /* shlex: inside "...", a backslash escapes only " and \. */
                for (p++; *p && *p != '"'; p++) {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    dsc_buf_add(&word, p, 1);
                }
                if (!*p) {
                    rc = dsc_fail(DSC_EINVAL, "unclosed quote");
                    break;
                }
                p++;
            } else if (*p == '\\') {
                if (!p[1]) {
                    rc = dsc_fail(DSC_EINVAL, "backslash at the end");
                    break;
                }
                dsc_buf_add(&word, p + 1, 1);
                p += 2;
            } else {
                dsc_buf_add(&word, p++, 1);
            }
        }
        if (rc)
            break;
        if (n + 2 > cap) {
            char **a = realloc(argv, cap * 2 * sizeof *a);
            if (!a) {
                rc = DSC_ENOMEM;
                break;
            }
            argv = a;
            cap *= 2;
            memset(argv + n, 0, (cap - n) * sizeof *argv);
        }
        if (dsc_buf_oom(&word)) {
            rc = DSC_ENOMEM;
            break;
        }
        argv[n++] = word.data;
        word.data = NULL;
        word.len = word.cap = 0;
    }
    if (!rc && n == 0)
        rc = dsc_fail(DSC_EINVAL, "empty command");
    dsc_buf_free(&word);
    if (rc) {
        dsc_argv_free(argv);
        return rc;
    }
    *out = argv;
    return 0;
}

typedef struct child {
    pid_t pid;
    int out, err;           /* read ends; -1 once at EOF */
    dsc_buf stdout_b, stderr_b;
    int too_long;
} child;

static int start(const dsc_cred_source *s, child *c)
{
    int op[2] = { -1, -1 }, ep[2] = { -1, -1 };
    if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
        int e = errno;
        close(op[0]);
        close(op[1]);
        return dsc_fail(DSC_ECREDS, "credential_process of profile '%s': "
                        "pipe: %s", s->profile, strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    /* Its own process group, so a timeout kills what it started too; the
     * caller's blocked or ignored signals are not its business. */
    sigset_t none, deflt;
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGINT);
    sigaddset(&deflt, SIGTERM);
    sigaddset(&deflt, SIGHUP);
    sigaddset(&deflt, SIGCHLD);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &deflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                  POSIX_SPAWN_SETSIGMASK |
                                  POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawnp(&c->pid, s->argv[0], &fa, &at, s->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(op[1]);
    close(ep[1]);
    c->out = op[0];
    c->err = ep[0];
    if (e)
        return dsc_fail(DSC_ECREDS, "credential_process of profile '%s': "
                        "cannot run '%s': %s", s->profile, s->argv[0],
                        strerror(e));
    return 0;
}

static void drain(int *fd, dsc_buf *b, size_t max, int *too_long)
{
    char tmp[4096];
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    size_t room = max > b->len ? max - b->len : 0;
    if ((size_t)n > room && too_long)
        *too_long = 1;
    dsc_buf_add(b, tmp, (size_t)n < room ? (size_t)n : room);
}

/* Read both pipes until EOF and the child's exit, or the deadline.
 * Returns 0 with *status, or -1 on timeout (the group is killed). */
static int wait_child(child *c, int64_t deadline, int *status)
{
    while (c->out >= 0 || c->err >= 0) {
        int64_t left = deadline - dsc_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pf[2] = { { c->out, POLLIN, 0 }, { c->err, POLLIN, 0 } };
        int n = poll(pf, 2, (int)(left < 100000 ? left : 100000));
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && c->out >= 0 && pf[0].revents)
            drain(&c->out, &c->stdout_b, OUT_MAX, &c->too_long);
        if (n > 0 && c->err >= 0 && pf[1].revents)
            drain(&c->err, &c->stderr_b, ERR_KEEP, NULL);
    }
    /* Both pipes closed; it may still be running (or a daemon it left). */
    for (;;) {
        pid_t w = waitpid(c->pid, status, WNOHANG);
        if (w == c->pid)
            return 0;
        if (w < 0 && errno == ECHILD) {
            /* The host ignores SIGCHLD, so the child was reaped for us;
             * its output speaks for it. */
            *status = 0;
            c->pid = 0;
            return 0;
        }
        if (dsc_now_ms() >= deadline)
            return -1;
        dsc_sleep_ms(5);
    }
}

static void first_line(const dsc_buf *b, char *out, size_t cap)
{
    const char *t = b->data ? b->data : "";
    size_t n = strcspn(t, "\r\n");
    if (n == 0) {
        t = "(no output on stderr)";
        n = strlen(t);
    }
    char line[ERR_KEEP + 1];
    memcpy(line, t, n < ERR_KEEP ? n : ERR_KEEP);
    line[n < ERR_KEEP ? n : ERR_KEEP] = 0;
    dsc_printable(line, out, cap);
}

static int keys_from(const dsc_cred_source *s, const dsc_buf *b,
                     dsc_keys *out)
{
    const char *text = b->data ? b->data : "";
    dsc_json_val v;
    int rc = dsc_json_get(text, b->len, "Version", &v);
    int ok = !rc && v.type == DSC_JSON_NUMBER && strcmp(v.text, "1") == 0;
    dsc_json_val_free(&v);
    if (rc == DSC_ENOMEM)
        return rc;
    if (rc == DSC_EPROTO) {
        dsc_errsave why;
        dsc_err_save(&why);
        return dsc_fail(DSC_ECREDS, "credential_process of profile '%s': its "
                        "output is not JSON (%s)", s->profile, why.msg);
    }
    if (!ok)
        return dsc_fail(DSC_ECREDS, "credential_process of profile '%s': "
                        "\"Version\": 1 missing from its output (other "
                        "versions are not supported)", s->profile);
    char what[300];
    snprintf(what, sizeof what, "credential_process of profile '%s'",
             s->profile);
    return dsc_cred_keys_from_json(text, b->len, "AccessKeyId",
                                   "SecretAccessKey", "SessionToken",
                                   "Expiration", 0, what, out);
}

int dsc_cred_fetch_process(const dsc_cred_source *s, dsc_keys *out)
{
    memset(out, 0, sizeof *out);
    child c = { .out = -1, .err = -1 };
    long limit = s->request_timeout_ms;
    int rc = start(s, &c);
    int status = 0;
    if (!rc && wait_child(&c, dsc_now_ms() + limit, &status)) {
        if (c.pid > 0) {
            kill(-c.pid, SIGKILL);
            kill(c.pid, SIGKILL);
            waitpid(c.pid, &status, 0);
        }
        rc = dsc_fail(DSC_ECREDS, "credential_process of profile '%s': '%s' "
                      "did not finish within %ld ms (killed)", s->profile,
                      s->argv[0], limit);
    }
    if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        char line[300];
        first_line(&c.stderr_b, line, sizeof line);
        if (WIFSIGNALED(status))
            rc = dsc_fail(DSC_ECREDS, "credential_process of profile '%s': "
                          "'%s' killed by signal %d: %s", s->profile,
                          s->argv[0], WTERMSIG(status), line);
        else
            rc = dsc_fail(DSC_ECREDS, "credential_process of profile '%s': "
                          "'%s' exited with status %d: %s", s->profile,
                          s->argv[0], WEXITSTATUS(status), line);
    }
    if (!rc && c.too_long)
        rc = dsc_fail(DSC_ECREDS, "credential_process of profile '%s': more "
                      "than %d bytes of output", s->profile, OUT_MAX);
    if (!rc)
        rc = dsc_buf_oom(&c.stdout_b) ? DSC_ENOMEM : keys_from(s, &c.stdout_b,
                                                               out);
    if (c.out >= 0)
        close(c.out);
    if (c.err >= 0)
        close(c.err);
    /* Its output holds the secret. */
    if (c.stdout_b.data)
        memset(c.stdout_b.data, 0, c.stdout_b.len);
    dsc_buf_free(&c.stdout_b);
    dsc_buf_free(&c.stderr_b);
    return rc;
}
