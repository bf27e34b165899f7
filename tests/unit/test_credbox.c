/* Refreshing temporary keys (s3/credbox.c) against a real source: a
 * credential_process script that issues keys expiring in a few seconds
 * and counts its runs in a file.
 *
 * HOME is a fresh temporary directory holding ~/.aws/config; every AWS_*
 * variable the chain reads is cleared first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include "core/common.h"
#include "s3/credbox.h"

static char tmpdir[256];
static char *saved_home;

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "DSC_ANONYMOUS",
};

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < DSC_ARRAY_LEN(aws_vars); i++)
        unsetenv(aws_vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    const char *home = getenv("HOME");
    saved_home = home ? strdup(home) : NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dsc-test-credbox-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = rm_tree(tmpdir);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    free(saved_home);
    saved_home = NULL;
    return rc;
}

/* A credential_process issuing keys that live `lifetime` seconds, named
 * by its run count; after `good_runs` runs it fails. */
static void write_source_token(int lifetime, int good_runs, const char *token)
{
    char path[512];
    snprintf(path, sizeof path, "%s/issue.sh", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "n=$(cat %s/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/runs\n"
            "[ $n -gt %d ] && { echo 'source gone' >&2; exit 3; }\n"
            "exp=$(date -u -d \"+%d seconds\" +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
            "printf '{\"Version\":1,\"AccessKeyId\":\"AKRUN%%s\",\"SecretAccessKey\":"
            "\"s%%s\",\"SessionToken\":\"%s%%s\",\"Expiration\":\"%%s\"}' $n $n $n $exp\n",
            tmpdir, tmpdir, good_runs, lifetime, token);
    fclose(f);
    chmod(path, 0700);
    char conf[512];
    snprintf(conf, sizeof conf, "%s/.aws", tmpdir);
    mkdir(conf, 0700);
    snprintf(conf, sizeof conf, "%s/.aws/config", tmpdir);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[default]\ncredential_process = %s\nregion = eu-west-1\n", path);
    fclose(f);
}

static void write_source(int lifetime, int good_runs)
{
    write_source_token(lifetime, good_runs, "t");
}

static int runs(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/runs", tmpdir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static void resolve(dsc_creds *c)
{
    dsc_config cfg;
    dsc_config_init(&cfg, DSC_CONFIG_VERSION);
    int rc = dsc_creds_resolve(&cfg, c);
    if (rc)
        fail_msg("resolve: %s", dsc_errmsg());
    assert_string_equal(c->source, "process");
    assert_non_null(c->refresh);
}

static void test_windows(void **state)
{
    (void)state;
    int64_t adv, man;
    dsc_credbox_windows(3600, &adv, &man);      /* the SDKs' own figures */
    assert_int_equal(adv, 900);
    assert_int_equal(man, 600);
    dsc_credbox_windows(20, &adv, &man);        /* scaled down */
    assert_int_equal(adv, 10);
    assert_int_equal(man, 5);
    dsc_credbox_windows(900, &adv, &man);       /* STS's shortest */
    assert_int_equal(adv, 450);
    assert_int_equal(man, 225);
}

/* Keys inside the advisory window are replaced before they expire. */
static void test_refresh_ahead(void **state)
{
    (void)state;
    write_source(4, 100);
    dsc_creds c;
    resolve(&c);
    assert_string_equal(c.keys.access_key, "AKRUN1");
    dsc_credbox *b;
    assert_int_equal(dsc_credbox_new(&c, &b), 0);
    dsc_keyset *ks = dsc_credbox_hold(b);
    assert_non_null(ks);
    assert_int_equal(ks->gen, 0);
    dsc_keyset_put(ks);
    assert_int_equal(runs(), 1);
    /* Past half the lifetime: the next caller refreshes. */
    sleep(3);
    ks = dsc_credbox_hold(b);
    assert_non_null(ks);
    assert_int_equal(ks->gen, 1);
    assert_string_equal(ks->k.access_key, "AKRUN2");
    assert_true(ks->k.expires > time(NULL));
    dsc_keyset_put(ks);
    uint64_t ok, failed;
    dsc_credbox_counts(b, &ok, &failed);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 0);
    dsc_credbox_free(b);
    dsc_creds_free(&c);
}

typedef struct reader {
    dsc_credbox *b;
    int failures;
    int stale;           /* keys handed out already expired */
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += 7;
    do {
        dsc_keyset *ks = dsc_credbox_hold(r->b);
        if (!ks)
            r->failures++;
        else if (ks->k.expires <= time(NULL))
            r->stale++;
        dsc_keyset_put(ks);
        struct timespec nap = { 0, 2000000 };
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec < end.tv_sec);
    return NULL;
}

/* 8 threads signing for 7 s with keys that live 3 s: never an expired key,
 * never a failure, and one refresh per lifetime, not one per thread. */
static void test_threads_share_one_refresh(void **state)
{
    (void)state;
    write_source(3, 100);
    dsc_creds c;
    resolve(&c);
    dsc_credbox *b;
    assert_int_equal(dsc_credbox_new(&c, &b), 0);
    pthread_t t[8];
    reader r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (reader){ b, 0, 0 };
        pthread_create(&t[i], NULL, read_loop, &r[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].failures, 0);
        assert_int_equal(r[i].stale, 0);
    }
    /* ~7 s / (3 s lifetime, refreshed at half of it) + the first: about
     * 5; 8 threads each refreshing would be dozens. */
    int n = runs();
    assert_true(n >= 3 && n <= 9);
    dsc_credbox_free(b);
    dsc_creds_free(&c);
}

/* S3 said "expired": one refresh for every caller holding that
 * generation, none for keys fetched moments ago (they would be refused
 * again: a refresh per request), none while a failed source pauses; a
 * source that fails leaves a clear DSC_ECREDS. */
static void test_expired_answer_and_failing_source(void **state)
{
    (void)state;
    write_source(600, 2);
    dsc_creds c;
    resolve(&c);
    dsc_credbox *b;
    assert_int_equal(dsc_credbox_new(&c, &b), 0);
    /* Just fetched: refused as expired means a clock or a revoked
     * session, not stale keys. */
    assert_int_equal(dsc_credbox_expired(b, 0), DSC_ECREDS);
    assert_errmsg_has("moments ago");
    assert_int_equal(runs(), 1);
    sleep(DSC_CREDBOX_MIN_AGE);
    assert_int_equal(dsc_credbox_expired(b, 0), 0);
    assert_int_equal(dsc_credbox_expired(b, 0), 0);   /* already renewed */
    assert_int_equal(runs(), 2);
    dsc_keyset *ks = dsc_credbox_hold(b);
    assert_string_equal(ks->k.access_key, "AKRUN2");
    dsc_keyset_put(ks);
    /* The source now fails: the keys in hand stay usable, and a second
     * caller right after takes that failure instead of asking again. */
    sleep(DSC_CREDBOX_MIN_AGE);
    assert_int_equal(dsc_credbox_expired(b, 1), DSC_ECREDS);
    assert_errmsg_has("process");
    assert_errmsg_has("source gone");
    assert_int_equal(dsc_credbox_expired(b, 1), DSC_ECREDS);
    assert_errmsg_has("source gone");
    assert_int_equal(runs(), 3);
    ks = dsc_credbox_hold(b);
    assert_non_null(ks);
    dsc_keyset_put(ks);
    dsc_credbox_free(b);
    dsc_creds_free(&c);
    /* ...and keys past expiry with a failing source are an error naming
     * it, not a request signed with dead keys. */
    write_source(1, 1);
    char path[512];
    snprintf(path, sizeof path, "%s/runs", tmpdir);
    unlink(path);
    resolve(&c);
    assert_int_equal(dsc_credbox_new(&c, &b), 0);
    sleep(2);
    assert_null(dsc_credbox_hold(b));
    assert_errmsg_has("expired and could not be refreshed");
    assert_errmsg_has("source gone");
    dsc_credbox_free(b);
    dsc_creds_free(&c);
}

/* A source whose keys are already expired when they arrive (a clock off
 * by more than their lifetime): a clear error, and not a fetch per call. */
static void test_keys_expired_on_arrival(void **state)
{
    (void)state;
    write_source(-30, 100);
    dsc_creds c;
    resolve(&c);
    dsc_credbox *b;
    assert_int_equal(dsc_credbox_new(&c, &b), 0);
    for (int i = 0; i < 20; i++) {
        assert_null(dsc_credbox_hold(b));
        assert_errmsg_has("clock");
    }
    assert_true(runs() <= 3);
    dsc_credbox_free(b);
    dsc_creds_free(&c);
}

/* A session token with CR LF would add headers of the source's choosing
 * to every S3 request: refused. */
static void test_control_bytes_refused(void **state)
{
    (void)state;
    write_source_token(600, 100, "t\\\\r\\\\nX-Injected: yes");
    dsc_creds c;
    resolve(&c);
    dsc_credbox *b = NULL;
    assert_int_equal(dsc_credbox_new(&c, &b), DSC_ECREDS);
    assert_errmsg_has("control character");
    assert_null(b);
    dsc_creds_free(&c);
}

/* A DataLoader worker fork()ed after the parent refreshed starts from the
 * parent's keys: no fetch of its own. */
static void test_child_inherits_current_keys(void **state)
{
    (void)state;
    write_source(600, 100);
    dsc_creds c;
    resolve(&c);
    dsc_credbox *parent;
    assert_int_equal(dsc_credbox_new(&c, &parent), 0);
    sleep(DSC_CREDBOX_MIN_AGE);
    assert_int_equal(dsc_credbox_expired(parent, 0), 0);   /* now AKRUN2 */
    assert_int_equal(runs(), 2);
    pid_t pid = fork();
    if (pid == 0) {
        dsc_credbox *child;
        int bad = dsc_credbox_new(&c, &child) != 0;
        if (!bad) {
            dsc_credbox_inherit(child, parent);
            dsc_keyset *ks = dsc_credbox_hold(child);
            bad = !ks || strcmp(ks->k.access_key, "AKRUN2") != 0;
            dsc_keyset_put(ks);
            dsc_credbox_free(child);
        }
        _exit(bad || runs() != 2);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    dsc_credbox_free(parent);
    dsc_creds_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test_setup_teardown(test_refresh_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_one_refresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_answer_and_failing_source,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expired_on_arrival, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_bytes_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_child_inherits_current_keys, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
