/* Credential, region and endpoint resolution: config, environment, files.
 *
 * Each test runs with every AWS_* variable cleared and HOME pointing at a
 * fresh temporary directory, so the real ~/.aws is never read; the
 * directory is removed afterwards. IMDS is disabled unless a test points
 * it at its own responder, so no test waits for 169.254.169.254.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "unittest.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include "core/common.h"
#include "net/sigv4.h"
#include "s3/creds.h"
#include "s3/internal.h"

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO", "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "DSC_ANONYMOUS",
};

static char tmpdir[256];
static char *saved_home;

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < DSC_ARRAY_LEN(aws_vars); i++)
        unsetenv(aws_vars[i]);
    const char *home = getenv("HOME");
    saved_home = home ? strdup(home) : NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dsc-test-creds-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = rm_tree(tmpdir);
    for (size_t i = 0; i < DSC_ARRAY_LEN(aws_vars); i++)
        unsetenv(aws_vars[i]);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_home);
    saved_home = NULL;
    return rc;
}

/* tmpdir/rel, creating parent directories. Returned path is static. */
static const char *tmp_path(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    for (char *p = path + strlen(tmpdir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(path, 0700) && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    return path;
}

static void write_file(const char *rel, const char *text)
{
    const char *path = tmp_path(rel);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("fopen %s: %s", path, strerror(errno));
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static dsc_config config(void)
{
    dsc_config cfg;
    assert_int_equal(dsc_config_init(&cfg, DSC_CONFIG_VERSION), 0);
    return cfg;
}

static void resolve_ok(const dsc_config *cfg, dsc_creds *c)
{
    int rc = dsc_creds_resolve(cfg, c);
    if (rc != 0)
        fail_msg("dsc_creds_resolve = %d (%s)", rc, dsc_errmsg());
}

static void resolve_fails(const dsc_config *cfg, int want)
{
    dsc_creds c;
    dsc_clear_error();
    int rc = dsc_creds_resolve(cfg, &c);
    if (rc != want)
        fail_msg("dsc_creds_resolve = %d, want %d", rc, want);
    /* Nothing is handed out on failure. */
    assert_null(c.keys.access_key);
    assert_null(c.keys.secret_key);
    assert_null(c.keys.session_token);
    assert_null(c.region);
    assert_null(c.endpoint);
    dsc_creds_free(&c);
}

#define DEFAULT_CREDS                                                     \
    "[default]\n"                                                         \
    "aws_access_key_id = AKIDFILE\n"                                      \
    "aws_secret_access_key = secretfile\n"                                \
    "aws_session_token = tokenfile\n"

/* The resolved region is want; everything is freed before any failure. */
static void check_region(const dsc_config *cfg, const char *want)
{
    /* Where, not who: no credentials needed. */
    dsc_config anon = *cfg;
    anon.anonymous = 1;
    dsc_creds c;
    resolve_ok(&anon, &c);
    int same = c.region && strcmp(c.region, want) == 0;
    char got[256];
    snprintf(got, sizeof got, "%s", c.region ? c.region : "(null)");
    dsc_creds_free(&c);
    if (!same)
        fail_msg("region is \"%s\", want \"%s\"", got, want);
}

#define ASSERT_REGION(cfg, want) check_region((cfg), (want))

/* The resolved endpoint is want (NULL: none). */
static void check_endpoint(const dsc_config *cfg, const char *want)
{
    dsc_config anon = *cfg;
    anon.anonymous = 1;
    dsc_creds c;
    resolve_ok(&anon, &c);
    int same = want ? c.endpoint && strcmp(c.endpoint, want) == 0
                    : c.endpoint == NULL;
    char got[256];
    snprintf(got, sizeof got, "%s", c.endpoint ? c.endpoint : "(null)");
    dsc_creds_free(&c);
    if (!same)
        fail_msg("endpoint is \"%s\", want \"%s\"", got,
                 want ? want : "(null)");
}

#define ASSERT_ENDPOINT(cfg, want) check_endpoint((cfg), (want))

/* ---- Which keys win ---------------------------------------------------- */

static void test_config_keys_win(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
    dsc_config cfg = config();
    cfg.access_key_id = "AKIDCFG";
    cfg.secret_access_key = "secretcfg";
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDCFG");
    assert_string_equal(c.keys.secret_key, "secretcfg");
    /* The environment's token belongs to the environment's keys. */
    assert_null(c.keys.session_token);
    assert_string_equal(c.source, "config");
    dsc_creds_free(&c);

    cfg.session_token = "tokencfg";
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.session_token, "tokencfg");
    dsc_creds_free(&c);
}

static void test_env_wins_over_profile(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDENV");
    assert_string_equal(c.keys.secret_key, "secretenv");
    assert_string_equal(c.keys.session_token, "tokenenv");
    assert_string_equal(c.source, "env");
    dsc_creds_free(&c);

    /* Without AWS_SESSION_TOKEN the profile's token must not leak in. */
    unsetenv("AWS_SESSION_TOKEN");
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDENV");
    assert_null(c.keys.session_token);
    dsc_creds_free(&c);
}

static void test_default_profile_from_home(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS
               "\n[other]\naws_access_key_id = AKIDOTHER\n"
               "aws_secret_access_key = secretother\n");
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDFILE");
    assert_string_equal(c.keys.secret_key, "secretfile");
    assert_string_equal(c.keys.session_token, "tokenfile");
    assert_string_equal(c.region, "us-east-1");
    assert_null(c.endpoint);
    dsc_creds_free(&c);
}

static void test_default_profile_from_config_file(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\n"
               "aws_access_key_id = AKIDCONF\n"
               "aws_secret_access_key = secretconf\n"
               "region = eu-central-1\n");
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDCONF");
    assert_string_equal(c.keys.secret_key, "secretconf");
    assert_string_equal(c.region, "eu-central-1");
    dsc_creds_free(&c);
}

/* As in the AWS CLI, the credentials file beats the config file. */
static void test_credentials_file_beats_config_file(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    write_file(".aws/config", "[default]\n"
               "aws_access_key_id = AKIDCONF\n"
               "aws_secret_access_key = secretconf\n");
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDFILE");
    assert_string_equal(c.keys.secret_key, "secretfile");
    dsc_creds_free(&c);
}

/* ---- Profile selection -------------------------------------------------- */

static void test_aws_profile_in_credentials(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS
               "[dev]\n"
               "aws_access_key_id = AKIDDEV\n"
               "aws_secret_access_key = secretdev\n");
    setenv("AWS_PROFILE", "dev", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDDEV");
    assert_string_equal(c.keys.secret_key, "secretdev");
    assert_null(c.keys.session_token);
    dsc_creds_free(&c);
}

static void test_aws_profile_in_config(void **state)
{
    (void)state;
    write_file(".aws/config",
               "[default]\nregion = us-east-2\n"
               /* Without "profile " the config file's section is not it. */
               "[dev]\n"
               "aws_access_key_id = AKIDWRONG\n"
               "aws_secret_access_key = secretwrong\n"
               "[profile dev]\n"
               "aws_access_key_id = AKIDDEV\n"
               "aws_secret_access_key = secretdev\n"
               "region = ap-south-1\n");
    setenv("AWS_PROFILE", "dev", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDDEV");
    assert_string_equal(c.keys.secret_key, "secretdev");
    assert_string_equal(c.region, "ap-south-1");
    dsc_creds_free(&c);
}

/* The AWS CLI (botocore) also reads the default profile from a
 * "[profile default]" section of the config file. */
static void test_profile_default_section_in_config(void **state)
{
    (void)state;
    write_file(".aws/config", "[profile default]\nregion = eu-west-1\n");
    dsc_config cfg = config();
    /* BUG (lib/creds.c read_profiles): for the default profile only
     * "[default]" is looked up in the config file, so this region is
     * ignored (us-east-1 is used), and with AWS_PROFILE=default the
     * resolve fails with DSC_ECREDS "profile 'default' not found". */
    ASSERT_REGION(&cfg, "eu-west-1");
    setenv("AWS_PROFILE", "default", 1);
    ASSERT_REGION(&cfg, "eu-west-1");
}

/* A profile given in the config is like --profile: it beats env keys. */
static void test_cfg_profile(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS
               "[prod]\n"
               "aws_access_key_id = AKIDPROD\n"
               "aws_secret_access_key = secretprod\n");
    setenv("AWS_PROFILE", "default", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    dsc_config cfg = config();
    cfg.profile = "prod";
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDPROD");
    assert_string_equal(c.keys.secret_key, "secretprod");
    dsc_creds_free(&c);
}

static void test_file_locations_from_env(void **state)
{
    (void)state;
    /* Decoys where the files would be by default. */
    write_file(".aws/credentials", DEFAULT_CREDS);
    write_file(".aws/config", "[default]\nregion = decoy-region\n");
    write_file("elsewhere/creds.ini", "[default]\n"
               "aws_access_key_id = AKIDALT\n"
               "aws_secret_access_key = secretalt\n");
    write_file("elsewhere/conf.ini", "[default]\nregion = alt-region-1\n");
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s", tmp_path("elsewhere/creds.ini"));
    setenv("AWS_SHARED_CREDENTIALS_FILE", cpath, 1);
    setenv("AWS_CONFIG_FILE", tmp_path("elsewhere/conf.ini"), 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDALT");
    assert_string_equal(c.keys.secret_key, "secretalt");
    assert_null(c.keys.session_token);
    assert_string_equal(c.region, "alt-region-1");
    dsc_creds_free(&c);
}

static void test_file_locations_with_named_profile(void **state)
{
    (void)state;
    write_file("x/creds", "[team]\n"
               "aws_access_key_id = AKIDTEAM\n"
               "aws_secret_access_key = secretteam\n");
    write_file("x/conf", "[profile team]\nregion = sa-east-1\n"
               "endpoint_url = http://127.0.0.1:9000\n");
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s", tmp_path("x/creds"));
    setenv("AWS_SHARED_CREDENTIALS_FILE", cpath, 1);
    setenv("AWS_CONFIG_FILE", tmp_path("x/conf"), 1);
    setenv("AWS_PROFILE", "team", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDTEAM");
    assert_string_equal(c.region, "sa-east-1");
    assert_string_equal(c.endpoint, "http://127.0.0.1:9000");
    dsc_creds_free(&c);
}

/* ---- Region and endpoint order ------------------------------------------ */

static void test_region_order(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\nregion = profile-region\n");
    setenv("AWS_REGION", "env-region", 1);
    setenv("AWS_DEFAULT_REGION", "env-default-region", 1);
    dsc_config cfg = config();
    cfg.region = "cfg-region";
    ASSERT_REGION(&cfg, "cfg-region");
    cfg.region = NULL;
    ASSERT_REGION(&cfg, "env-region");
    unsetenv("AWS_REGION");
    ASSERT_REGION(&cfg, "env-default-region");
    unsetenv("AWS_DEFAULT_REGION");
    ASSERT_REGION(&cfg, "profile-region");
    write_file(".aws/config", "[default]\noutput = json\n");
    ASSERT_REGION(&cfg, "us-east-1");
}

/* An empty variable counts as unset, as in the AWS CLI. */
static void test_region_empty_env_ignored(void **state)
{
    (void)state;
    setenv("AWS_REGION", "", 1);
    setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
    dsc_config cfg = config();
    ASSERT_REGION(&cfg, "eu-west-3");
}

static void test_endpoint_order(void **state)
{
    (void)state;
    write_file(".aws/config",
               "[default]\nendpoint_url = http://profile:9000\n");
    setenv("AWS_ENDPOINT_URL_S3", "http://env-s3:9000", 1);
    setenv("AWS_ENDPOINT_URL", "http://env-all:9000", 1);
    dsc_config cfg = config();
    cfg.endpoint = "http://cfg:9000";
    ASSERT_ENDPOINT(&cfg, "http://cfg:9000");
    cfg.endpoint = NULL;
    ASSERT_ENDPOINT(&cfg, "http://env-s3:9000");
    unsetenv("AWS_ENDPOINT_URL_S3");
    ASSERT_ENDPOINT(&cfg, "http://env-all:9000");
    unsetenv("AWS_ENDPOINT_URL");
    ASSERT_ENDPOINT(&cfg, "http://profile:9000");
    write_file(".aws/config", "[default]\nregion = us-east-1\n");
    ASSERT_ENDPOINT(&cfg, NULL);
}

static void test_endpoint_from_nested_s3_block(void **state)
{
    (void)state;
    write_file(".aws/config", "[profile minio]\n"
               "region = us-east-1\n"
               "s3 =\n"
               "    endpoint_url = http://127.0.0.1:9000\n"
               "    addressing_style = path\n");
    setenv("AWS_PROFILE", "minio", 1);
    dsc_config cfg = config();
    ASSERT_ENDPOINT(&cfg, "http://127.0.0.1:9000");
}

/* S3's own endpoint beats the all-services one, as AWS_ENDPOINT_URL_S3
 * beats AWS_ENDPOINT_URL, whatever their order in the file. */
static void test_nested_s3_endpoint_beats_global(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\n"
               "s3 =\n"
               "    endpoint_url = http://s3-only:9000\n"
               "endpoint_url = http://all-services:9000\n");
    dsc_config cfg = config();
    ASSERT_ENDPOINT(&cfg, "http://s3-only:9000");

    write_file(".aws/config", "[default]\n"
               "endpoint_url = http://all-services:9000\n"
               "s3 =\n"
               "    endpoint_url = http://s3-only:9000\n");
    /* Found by this test: endpoint_url and s3.endpoint_url used to share
     * one slot, so the first in the file won. */
    ASSERT_ENDPOINT(&cfg, "http://s3-only:9000");
}

/* ---- Failures ----------------------------------------------------------- */

static void test_missing_named_profile(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    write_file(".aws/config", "[default]\nregion = us-west-1\n"
               "[profile other]\nregion = us-west-2\n");
    setenv("AWS_PROFILE", "nonexistent-prof", 1);
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("nonexistent-prof");

    /* Also when named in the config, and with no files at all. */
    unsetenv("AWS_PROFILE");
    cfg.profile = "ghost-prof";
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("ghost-prof");

    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path(".aws/credentials"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(unlink(tmp_path(".aws/config")), 0);
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("ghost-prof");
}

/* The default profile is not "named": it may be missing, and then there
 * are no credentials (not "profile not found"). */
static void test_missing_default_profile_is_fine(void **state)
{
    (void)state;
    write_file(".aws/credentials", "[dev]\naws_access_key_id = A\n"
               "aws_secret_access_key = S\n");
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("no credentials found");
    setenv("DSC_ANONYMOUS", "1", 1);
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_null(c.keys.access_key);
    assert_string_equal(c.source, "anonymous");
    dsc_creds_free(&c);
}

static void test_access_key_without_secret_env(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("secret");
    assert_errmsg_has("env");

    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("secret");
}

static void test_access_key_without_secret_config(void **state)
{
    (void)state;
    dsc_config cfg = config();
    cfg.access_key_id = "AKIDCFG";
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("secret");
    assert_errmsg_has("config");
}

static void test_access_key_without_secret_profile(void **state)
{
    (void)state;
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDF\n");
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("secret");
    assert_errmsg_has("profile");
}

/* No credentials anywhere is an error naming every source tried, never a
 * silent fall back to unsigned requests. */
static void test_nothing_is_an_error(void **state)
{
    (void)state;
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("no credentials found");
    assert_errmsg_has("env (AWS_ACCESS_KEY_ID unset)");
    assert_errmsg_has("web identity (AWS_WEB_IDENTITY_TOKEN_FILE unset)");
    assert_errmsg_has("profile 'default'");
    assert_errmsg_has(tmp_path(".aws/credentials"));
    assert_errmsg_has(tmp_path(".aws/config"));
    assert_errmsg_has("container (AWS_CONTAINER_CREDENTIALS_* unset)");
    assert_errmsg_has("IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
    assert_errmsg_has("DSC_ANONYMOUS=1");

    /* Same without HOME at all. */
    unsetenv("HOME");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("profile 'default'");
}

/* Anonymous only when asked: DSC_ANONYMOUS=1 (or cfg.anonymous). */
static void test_dsc_anonymous_env(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    setenv("DSC_ANONYMOUS", "1", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_null(c.keys.access_key);
    assert_null(c.keys.secret_key);
    assert_null(c.refresh);
    assert_string_equal(c.source, "anonymous");
    assert_string_equal(c.region, "us-east-1");
    dsc_creds_free(&c);
    /* The program's own keys beat the variable. */
    cfg.access_key_id = "AKIDCFG";
    cfg.secret_access_key = "secretcfg";
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "config");
    dsc_creds_free(&c);
    /* DSC_ANONYMOUS=0 is not a request. */
    setenv("DSC_ANONYMOUS", "0", 1);
    cfg.access_key_id = cfg.secret_access_key = NULL;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "profile");
    dsc_creds_free(&c);
}

static void test_cfg_anonymous_forces_anonymous(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    write_file(".aws/config", "[default]\nregion = eu-north-1\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
    dsc_config cfg = config();
    cfg.anonymous = 1;
    cfg.access_key_id = "AKIDCFG";
    cfg.secret_access_key = "secretcfg";
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_null(c.keys.access_key);
    assert_null(c.keys.secret_key);
    assert_null(c.keys.session_token);
    /* Region still resolves normally. */
    assert_string_equal(c.region, "eu-north-1");
    dsc_creds_free(&c);
}

/* fopen() succeeds on a directory but reading it fails, even for root. */
static void test_unreadable_credentials_file(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path(".aws/credentials"));
    assert_int_equal(mkdir(path, 0700), 0);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has(path);
}

static void test_unreadable_config_file(void **state)
{
    (void)state;
    write_file(".aws/credentials", DEFAULT_CREDS);
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("dir-not-file"));
    assert_int_equal(mkdir(path, 0700), 0);
    setenv("AWS_CONFIG_FILE", path, 1);
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has(path);
}

/* A file that is merely absent is not an error. */
static void test_missing_file_from_env_is_fine(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\nregion = ca-central-1\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("no/such/file"), 1);
    dsc_config cfg = config();
    ASSERT_REGION(&cfg, "ca-central-1");
}

/* ---- A tiny HTTP responder on 127.0.0.1 for the HTTP sources ---------- */

typedef struct route {
    const char *method, *prefix;    /* request line "METHOD PREFIX..." */
    int status;
    const char *body;
} route;

#define MAX_SEEN 16

static struct responder {
    int fd, port;
    pthread_t th;
    const route *routes;
    size_t nroutes;
    pthread_mutex_t mu;
    char seen[MAX_SEEN][4096];      /* request head, as received */
    int nseen;
} srv;

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096] = "";
        size_t n = 0;
        while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = 0;
        }
        const route *rt = NULL;
        for (size_t i = 0; i < srv.nroutes && !rt; i++) {
            size_t ml = strlen(srv.routes[i].method);
            if (strncmp(req, srv.routes[i].method, ml) == 0 && req[ml] == ' ' &&
                strncmp(req + ml + 1, srv.routes[i].prefix,
                        strlen(srv.routes[i].prefix)) == 0)
                rt = &srv.routes[i];
        }
        pthread_mutex_lock(&srv.mu);
        if (srv.nseen < MAX_SEEN)
            memcpy(srv.seen[srv.nseen++], req, sizeof req);
        pthread_mutex_unlock(&srv.mu);
        char head[256];
        const char *body = rt ? rt->body : "no route";
        int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: "
                          "%zu\r\nConnection: close\r\n\r\n",
                          rt ? rt->status : 404, strlen(body));
        if (write(c, head, (size_t)hl) < 0 ||
            write(c, body, strlen(body)) < 0)
            perror("responder write");
        close(c);
    }
}

/* Start answering routes; returns "http://127.0.0.1:PORT". */
static const char *responder_start(const route *routes, size_t n)
{
    static char url[64];
    memset(&srv, 0, sizeof srv);
    srv.routes = routes;
    srv.nroutes = n;
    pthread_mutex_init(&srv.mu, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.fd, 16), 0);
    assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&a, &al), 0);
    srv.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv.th, NULL, serve, NULL), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    return url;
}

static void responder_stop(void)
{
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv.th, NULL);
    pthread_mutex_destroy(&srv.mu);
}

/* The i-th request the responder saw contains needle. */
static void assert_seen(int i, const char *needle)
{
    if (i >= srv.nseen)
        fail_msg("request %d not seen (%d seen)", i, srv.nseen);
    if (!strstr(srv.seen[i], needle))
        fail_msg("request %d lacks \"%s\":\n%s", i, needle, srv.seen[i]);
}

static void assert_not_seen(int i, const char *needle)
{
    if (i < srv.nseen && strstr(srv.seen[i], needle))
        fail_msg("request %d has \"%s\":\n%s", i, needle, srv.seen[i]);
}

/* No secret in this thread's error detail. */
static void assert_no_secret(const char *secret)
{
    if (strstr(dsc_errmsg(), secret))
        fail_msg("a secret in the message: %s", dsc_errmsg());
}

/* ---- credential_process -------------------------------------------------- */

/* tmpdir/rel as an executable shell script. Returns its path (static). */
static const char *script(const char *rel, const char *body)
{
    char text[2048];
    snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
    write_file(rel, text);
    const char *path = tmp_path(rel);
    assert_int_equal(chmod(path, 0700), 0);
    return path;
}

static void process_profile(const char *cmd)
{
    char text[1024];
    snprintf(text, sizeof text, "[profile proc]\ncredential_process = %s\n",
             cmd);
    write_file(".aws/config", text);
    setenv("AWS_PROFILE", "proc", 1);
}

#define GOOD_PROCESS                                                        \
    "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "                \
    "\"SecretAccessKey\": \"secretproc\", \"SessionToken\": \"tokproc\", "  \
    "\"Expiration\": \"2099-01-02T03:04:05Z\"}'"

static void test_process_good(void **state)
{
    (void)state;
    /* A path with a blank, quoted as shlex wants; arguments arrive whole. */
    script("my dir/creds.sh", "[ \"$1\" = 'a b' ] || exit 3\n" GOOD_PROCESS);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' \"a b\"", tmp_path("my dir/creds.sh"));
    process_profile(cmd);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "process");
    assert_string_equal(c.keys.access_key, "AKIDPROC");
    assert_string_equal(c.keys.secret_key, "secretproc");
    assert_string_equal(c.keys.session_token, "tokproc");
    assert_int_equal(c.keys.expires, 4071006245);
    assert_non_null(c.refresh);
    dsc_keys k;
    assert_int_equal(dsc_creds_fetch(&c, &k), 0);
    assert_string_equal(k.access_key, "AKIDPROC");
    dsc_keys_free(&k);
    assert_null(k.secret_key);
    dsc_creds_free(&c);
}

static void test_process_failures(void **state)
{
    (void)state;
    dsc_config cfg = config();
    process_profile(script("bad.sh", "echo 'not json secretXYZ'"));
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("credential_process of profile 'proc'");
    assert_errmsg_has("not JSON");
    assert_no_secret("secretXYZ");

    process_profile(script("v2.sh", "echo '{\"Version\": 2}'"));
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("Version");

    process_profile(script("nokey.sh", "echo '{\"Version\": 1, "
                           "\"AccessKeyId\": \"A\"}'"));
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("SecretAccessKey");

    process_profile(script("exit.sh", "echo 'token expired, log in' >&2\n"
                           "echo 'second line' >&2\nexit 7"));
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("status 7");
    assert_errmsg_has("token expired, log in");
    if (strstr(dsc_errmsg(), "second line"))
        fail_msg("more than the first line: %s", dsc_errmsg());

    process_profile(tmp_path("no-such-program"));
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("cannot run");

    process_profile("'unclosed");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("unclosed quote");
}

/* A hung process is killed at the request timeout, with what it started. */
static void test_process_hang_is_bounded(void **state)
{
    (void)state;
    process_profile(script("hang.sh", "sleep 30 & sleep 30"));
    dsc_config cfg = config();
    cfg.request_timeout_ms = 300;
    int64_t t0 = dsc_now_ms();
    resolve_fails(&cfg, DSC_ECREDS);
    int64_t took = dsc_now_ms() - t0;
    assert_errmsg_has("did not finish within 300 ms");
    if (took > 3000)
        fail_msg("took %lld ms", (long long)took);
}

/* botocore's order: credentials file keys, then credential_process, then
 * the config file's keys. */
static void test_process_order(void **state)
{
    (void)state;
    const char *sh = script("good.sh", GOOD_PROCESS);
    char text[1024];
    snprintf(text, sizeof text, "[default]\ncredential_process = %s\n"
             "aws_access_key_id = AKIDCONF\naws_secret_access_key = sc\n", sh);
    write_file(".aws/config", text);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDPROC");
    dsc_creds_free(&c);
    write_file(".aws/credentials", DEFAULT_CREDS);
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "AKIDFILE");
    assert_string_equal(c.source, "profile");
    assert_null(c.refresh);
    dsc_creds_free(&c);
}

static void test_shell_split(void **state)
{
    (void)state;
    static const struct { const char *in; const char *out; } cases[] = {
        { "a b  c", "a|b|c" },
        { "'a b' \"c d\"", "a b|c d" },
        { "a\\ b c", "a b|c" },
        { "\"a\\\"b\\\\c\\$d\"", "a\"b\\c\\$d" },
        { "'a\\b'", "a\\b" },
        { "x'y'\"z\"", "xyz" },
        { "'' b", "|b" },
    };
    for (size_t i = 0; i < DSC_ARRAY_LEN(cases); i++) {
        char **argv;
        assert_int_equal(dsc_shell_split(cases[i].in, &argv), 0);
        char joined[256] = "";
        for (char **a = argv; *a; a++) {
            if (a != argv)
                strcat(joined, "|");
            strcat(joined, *a);
        }
        dsc_argv_free(argv);
        if (strcmp(joined, cases[i].out))
            fail_msg("split(%s) = %s, want %s", cases[i].in, joined,
                     cases[i].out);
    }
    char **argv;
    assert_int_equal(dsc_shell_split("'x", &argv), DSC_EINVAL);
    assert_int_equal(dsc_shell_split("\"x", &argv), DSC_EINVAL);
    assert_int_equal(dsc_shell_split("x\\", &argv), DSC_EINVAL);
    assert_int_equal(dsc_shell_split("   ", &argv), DSC_EINVAL);
}

/* ---- Addressing, profile precedence --------------------------------------- */

static void test_addressing_style(void **state)
{
    (void)state;
    static const struct { const char *style; int want; } cases[] = {
        { "path", DSC_ADDRESSING_PATH }, { "virtual", DSC_ADDRESSING_VHOST },
        { "auto", DSC_ADDRESSING_AUTO },
    };
    dsc_config cfg = config();
    cfg.anonymous = 1;
    dsc_creds c;
    for (size_t i = 0; i < DSC_ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof text, "[default]\ns3 =\n  addressing_style = "
                 "%s\n", cases[i].style);
        write_file(".aws/config", text);
        resolve_ok(&cfg, &c);
        assert_int_equal(c.addressing, cases[i].want);
        dsc_creds_free(&c);
    }
    write_file(".aws/config", "[default]\nregion = x\n");
    resolve_ok(&cfg, &c);
    assert_int_equal(c.addressing, -1);
    assert_string_equal(c.region_source, "profile");
    dsc_creds_free(&c);
    write_file(".aws/config", "[default]\ns3 =\n  addressing_style = odd\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("addressing_style");
}

static void test_region_source(void **state)
{
    (void)state;
    dsc_config cfg = config();
    cfg.anonymous = 1;
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.region_source, "default");
    dsc_creds_free(&c);
    setenv("AWS_DEFAULT_REGION", "eu-west-2", 1);
    resolve_ok(&cfg, &c);
    assert_string_equal(c.region_source, "env");
    dsc_creds_free(&c);
    cfg.region = "ap-east-1";
    resolve_ok(&cfg, &c);
    assert_string_equal(c.region_source, "config");
    dsc_creds_free(&c);
}

/* A region becomes part of host names (S3, STS, the SSO portal): one
 * that is not a region name would send requests, and the SSO token, to a
 * host of someone else's choosing. */
static void test_region_must_be_a_region(void **state)
{
    (void)state;
    dsc_config cfg = config();
    cfg.anonymous = 1;
    dsc_creds c;
    static const char *const bad[] = { "evil.example#", "us-east-1/x", "EU",
                                       "-a", "a b", "" };
    for (size_t i = 0; i < DSC_ARRAY_LEN(bad); i++) {
        setenv("AWS_REGION", bad[i], 1);
        int rc = dsc_creds_resolve(&cfg, &c);
        if (*bad[i]) {
            assert_int_equal(rc, DSC_EINVAL);
            assert_errmsg_has("not a region name");
        } else {
            assert_int_equal(rc, 0);     /* empty: unset, as the CLI reads it */
            dsc_creds_free(&c);
        }
    }
    unsetenv("AWS_REGION");
    cfg.anonymous = 0;
    write_file(".aws/config", "[profile s]\nsso_start_url = https://x/start\n"
               "sso_region = evil.example#\nsso_account_id = 1\n"
               "sso_role_name = r\n");
    setenv("AWS_PROFILE", "s", 1);
    assert_int_equal(dsc_creds_resolve(&cfg, &c), DSC_ECREDS);
    assert_errmsg_has("sso_region 'evil.example#' is not a region name");
}

/* ---- Roles ----------------------------------------------------------------- */

static void test_role_config_errors(void **state)
{
    (void)state;
    dsc_config cfg = config();
    setenv("AWS_PROFILE", "r", 1);
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = base\nmfa_serial = arn:mfa\n"
               "[profile base]\naws_access_key_id = A\n"
               "aws_secret_access_key = S\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("mfa_serial");
    assert_errmsg_has("not supported");

    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = s1\n"
               "[profile s1]\nrole_arn = arn:aws:iam::1:role/y\n"
               "source_profile = r\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("loop");

    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "credential_source = Somewhere\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("Somewhere");

    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = ghost\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("'ghost' does not exist");

    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = empty\n[profile empty]\nregion = x\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("no credentials");
}

#define STS_OK                                                             \
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">" \
    "<AssumeRoleResult><AssumedRoleUser><Arn>x</Arn></AssumedRoleUser>"      \
    "<Credentials><AccessKeyId>ASIAROLE</AccessKeyId>"                       \
    "<SecretAccessKey>secretrole</SecretAccessKey>"                          \
    "<SessionToken>tokrole</SessionToken>"                                   \
    "<Expiration>2099-01-02T03:04:05Z</Expiration></Credentials>"            \
    "</AssumeRoleResult></AssumeRoleResponse>"

/* A role from a source profile's static keys: signed for sts, with the
 * profile's settings in the query; a self-referencing profile may use its
 * own keys. */
static void test_assume_role_source_profile(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/?", 200, STS_OK } };
    const char *url = responder_start(routes, 1);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    setenv("AWS_PROFILE", "r", 1);
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = base\nexternal_id = ext-1\n"
               "duration_seconds = 1800\nrole_session_name = sess\n"
               "region = eu-west-1\n");
    write_file(".aws/credentials", "[base]\naws_access_key_id = AKIDBASE\n"
               "aws_secret_access_key = secretbase\n");
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "assume-role");
    assert_string_equal(c.keys.access_key, "ASIAROLE");
    assert_string_equal(c.keys.secret_key, "secretrole");
    assert_string_equal(c.keys.session_token, "tokrole");
    assert_int_equal(c.keys.expires, 4071006245);
    assert_seen(0, "Action=AssumeRole&");
    assert_seen(0, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx");
    assert_seen(0, "ExternalId=ext-1");
    assert_seen(0, "DurationSeconds=1800");
    assert_seen(0, "RoleSessionName=sess");
    assert_seen(0, "Credential=AKIDBASE/");
    assert_seen(0, "/eu-west-1/sts/aws4_request");
    /* A refresh asks again. */
    dsc_keys k;
    assert_int_equal(dsc_creds_fetch(&c, &k), 0);
    assert_string_equal(k.access_key, "ASIAROLE");
    dsc_keys_free(&k);
    assert_int_equal(srv.nseen, 2);
    dsc_creds_free(&c);

    write_file(".aws/credentials", "");
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = r\naws_access_key_id = AKIDSELF\n"
               "aws_secret_access_key = secretself\n");
    resolve_ok(&cfg, &c);
    assert_string_equal(c.keys.access_key, "ASIAROLE");
    assert_seen(2, "Credential=AKIDSELF/");
    assert_seen(2, "RoleSessionName=dsc-session-");
    dsc_creds_free(&c);
    responder_stop();
}

/* A role whose source is a role; credential_source Environment. */
static void test_assume_role_chain(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/?", 200, STS_OK } };
    setenv("AWS_ENDPOINT_URL", responder_start(routes, 1), 1);
    setenv("AWS_PROFILE", "top", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
    write_file(".aws/config", "[profile top]\nrole_arn = arn:top\n"
               "source_profile = mid\n"
               "[profile mid]\nrole_arn = arn:mid\n"
               "credential_source = Environment\n");
    /* Env keys win over the profile unless cfg names one. */
    dsc_config cfg = config();
    cfg.profile = "top";
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "assume-role");
    assert_int_equal(srv.nseen, 2);
    assert_seen(0, "RoleArn=arn%3Amid");
    assert_seen(0, "Credential=AKIDENV/");
    assert_seen(1, "RoleArn=arn%3Atop");
    assert_seen(1, "Credential=ASIAROLE/");
    assert_seen(1, "x-amz-security-token: tokrole");
    dsc_creds_free(&c);
    responder_stop();
}

static void test_sts_error(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/?", 403,
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
        "<Message>not allowed to assume arn:x</Message></Error>"
        "<RequestId>r1</RequestId></ErrorResponse>" } };
    setenv("AWS_ENDPOINT_URL_STS", responder_start(routes, 1), 1);
    setenv("AWS_PROFILE", "r", 1);
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n"
               "source_profile = r\naws_access_key_id = AKIDSELF\n"
               "aws_secret_access_key = secretself\n");
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("STS AssumeRole arn:aws:iam::1:role/x: AccessDenied: "
                      "not allowed to assume arn:x");
    assert_no_secret("secretself");
    responder_stop();
}

/* ---- Web identity ---------------------------------------------------------- */

static void test_web_identity(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/?", 200,
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
        "<Credentials><AccessKeyId>ASIAWEB</AccessKeyId>"
        "<SecretAccessKey>secretweb</SecretAccessKey>"
        "<SessionToken>tokweb</SessionToken>"
        "<Expiration>2099-01-02T03:04:05Z</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>" } };
    setenv("AWS_ENDPOINT_URL_STS", responder_start(routes, 1), 1);
    write_file("token", "jwt-one\n");
    char tok[512];
    snprintf(tok, sizeof tok, "%s", tmp_path("token"));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/web", 1);
    setenv("AWS_ROLE_SESSION_NAME", "pod", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "web-identity");
    assert_string_equal(c.keys.access_key, "ASIAWEB");
    assert_seen(0, "Action=AssumeRoleWithWebIdentity");
    assert_seen(0, "WebIdentityToken=jwt-one HTTP");
    assert_seen(0, "RoleSessionName=pod");
    assert_not_seen(0, "Authorization");
    /* The token file is read again on every fetch (EKS rotates it). */
    write_file("token", "jwt-two");
    dsc_keys k;
    assert_int_equal(dsc_creds_fetch(&c, &k), 0);
    dsc_keys_free(&k);
    assert_seen(1, "WebIdentityToken=jwt-two");
    /* Gone: a clear error naming the file. */
    assert_int_equal(unlink(tok), 0);
    assert_int_equal(dsc_creds_fetch(&c, &k), DSC_ECREDS);
    assert_errmsg_has(tok);
    dsc_creds_free(&c);
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("web identity token file");
    assert_errmsg_has(tok);
    responder_stop();
}

/* ---- SSO ----------------------------------------------------------------- */

#define SSO_CONFIG                                                          \
    "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\n"    \
    "sso_role_name = Reader\n"                                              \
    "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"  \
    "sso_region = us-east-2\n"

/* The AWS CLI's cache file for session "corp": sha1("corp"). */
static void sso_cache(const char *name_sha1, const char *expires)
{
    char rel[128], text[512];
    snprintf(rel, sizeof rel, ".aws/sso/cache/%s.json", name_sha1);
    snprintf(text, sizeof text, "{\"startUrl\": \"https://corp.awsapps.com/"
             "start\", \"region\": \"us-east-2\", \"accessToken\": "
             "\"ssotok\", \"expiresAt\": \"%s\"}", expires);
    write_file(rel, text);
}

static void test_sso(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/federation/credentials?", 200,
        "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\","
        "\"secretAccessKey\":\"secretsso\",\"sessionToken\":\"toksso\","
        "\"expiration\":4071006245000}}" } };
    setenv("AWS_ENDPOINT_URL_SSO", responder_start(routes, 1), 1);
    setenv("AWS_PROFILE", "dev", 1);
    write_file(".aws/config", SSO_CONFIG);
    char hex[41];
    dsc_sha1_hex("corp", 4, hex);
    dsc_config cfg = config();

    /* No token yet. */
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("aws sso login --profile dev");

    sso_cache(hex, "2000-01-01T00:00:00Z");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("expired");
    assert_errmsg_has("aws sso login --profile dev");

    sso_cache(hex, "2099-01-01T00:00:00Z");
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "sso");
    assert_string_equal(c.keys.access_key, "ASIASSO");
    assert_string_equal(c.keys.session_token, "toksso");
    assert_int_equal(c.keys.expires, 4071006245);
    assert_seen(0, "account_id=111122223333");
    assert_seen(0, "role_name=Reader");
    assert_seen(0, "x-amz-sso_bearer_token: ssotok");
    dsc_creds_free(&c);
    responder_stop();

    /* Legacy profiles: the cache file is named by the start URL. */
    write_file(".aws/config", "[profile dev]\nsso_start_url = https://old/s\n"
               "sso_region = us-east-2\nsso_account_id = 1\n");
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("sso_role_name");
}

static void test_sso_legacy_cache_name(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/federation/credentials?", 401,
        "{\"message\":\"Session token not found or invalid\"}" } };
    setenv("AWS_ENDPOINT_URL", responder_start(routes, 1), 1);
    setenv("AWS_PROFILE", "old", 1);
    write_file(".aws/config", "[profile old]\nsso_start_url = https://old/s\n"
               "sso_region = us-east-2\nsso_account_id = 1\n"
               "sso_role_name = R\n");
    char hex[41];
    dsc_sha1_hex("https://old/s", strlen("https://old/s"), hex);
    sso_cache(hex, "2099-01-01T00:00:00Z");
    dsc_config cfg = config();
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("HTTP status 401: Session token not found or invalid");
    assert_seen(0, "x-amz-sso_bearer_token: ssotok");
    assert_no_secret("ssotok");
    responder_stop();
}

/* ---- Container and IMDS --------------------------------------------------- */

#define ECS_OK                                                              \
    "{\"AccessKeyId\":\"ASIAECS\",\"SecretAccessKey\":\"secretecs\","       \
    "\"Token\":\"tokecs\",\"Expiration\":\"2099-01-02T03:04:05Z\"}"

static void test_container(void **state)
{
    (void)state;
    static const route routes[] = { { "GET", "/creds", 200, ECS_OK } };
    char full[128];
    snprintf(full, sizeof full, "%s/creds", responder_start(routes, 1));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
    write_file("ecs-token", "tok-one\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path("ecs-token"), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored", 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "container");
    assert_string_equal(c.keys.access_key, "ASIAECS");
    assert_string_equal(c.keys.session_token, "tokecs");
    assert_seen(0, "Authorization: tok-one\r\n");
    write_file("ecs-token", "tok-two");
    dsc_keys k;
    assert_int_equal(dsc_creds_fetch(&c, &k), 0);
    dsc_keys_free(&k);
    assert_seen(1, "Authorization: tok-two\r\n");
    dsc_creds_free(&c);

    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    resolve_ok(&cfg, &c);
    assert_seen(2, "Authorization: ignored\r\n");
    dsc_creds_free(&c);
    responder_stop();

    /* Plain http only to loopback and the ECS/EKS hosts. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/c", 1);
    resolve_fails(&cfg, DSC_ECREDS);
    assert_errmsg_has("container credentials");
    assert_errmsg_has("example.com");
}

static void test_imds(void **state)
{
    (void)state;
    static const route routes[] = {
        { "PUT", "/latest/api/token", 200, "imdstok" },
        { "GET", "/latest/meta-data/iam/security-credentials/role1", 200,
          "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAIMDS\","
          "\"SecretAccessKey\":\"secretimds\",\"Token\":\"tokimds\","
          "\"Expiration\":\"2099-01-02T03:04:05Z\"}" },
        { "GET", "/latest/meta-data/iam/security-credentials/", 200, "role1\n" },
        { "GET", "/latest/meta-data/placement/region", 200, "eu-north-1" },
    };
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", responder_start(routes, 4), 1);
    dsc_config cfg = config();
    dsc_creds c;
    resolve_ok(&cfg, &c);
    assert_string_equal(c.source, "imds");
    assert_string_equal(c.keys.access_key, "ASIAIMDS");
    assert_string_equal(c.region, "eu-north-1");
    assert_string_equal(c.region_source, "imds");
    assert_int_equal(c.keys.expires, 4071006245);
    assert_seen(0, "PUT /latest/api/token");
    assert_seen(0, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    assert_seen(1, "GET /latest/meta-data/placement/region");
    assert_seen(1, "X-aws-ec2-metadata-token: imdstok");
    assert_seen(3, "GET /latest/meta-data/iam/security-credentials/ ");
    assert_seen(4, "security-credentials/role1 ");
    assert_seen(4, "X-aws-ec2-metadata-token: imdstok");
    dsc_creds_free(&c);

    /* A custom endpoint needs no region from IMDS. */
    cfg.endpoint = "http://127.0.0.1:9";
    resolve_ok(&cfg, &c);
    assert_string_equal(c.region_source, "default");
    dsc_creds_free(&c);
    responder_stop();
}

/* An IMDS that does not answer: the summary says so, within its timeout. */
static void test_imds_unreachable(void **state)
{
    (void)state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    /* A listening socket that never accepts: the connection is made but
     * nothing answers, so the IMDS timeout bounds the wait. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.3", 1);
    setenv("AWS_REGION", "us-west-2", 1);
    dsc_config cfg = config();
    int64_t t0 = dsc_now_ms();
    resolve_fails(&cfg, DSC_ECREDS);
    int64_t took = dsc_now_ms() - t0;
    close(fd);
    assert_errmsg_has("no credentials found");
    assert_errmsg_has(url);
    if (took > 2000)
        fail_msg("took %lld ms", (long long)took);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_config_keys_win),
        T(test_env_wins_over_profile),
        T(test_default_profile_from_home),
        T(test_default_profile_from_config_file),
        T(test_credentials_file_beats_config_file),
        T(test_aws_profile_in_credentials),
        T(test_aws_profile_in_config),
        T(test_profile_default_section_in_config),
        T(test_cfg_profile),
        T(test_file_locations_from_env),
        T(test_file_locations_with_named_profile),
        T(test_region_order),
        T(test_region_empty_env_ignored),
        T(test_endpoint_order),
        T(test_endpoint_from_nested_s3_block),
        T(test_nested_s3_endpoint_beats_global),
        T(test_missing_named_profile),
        T(test_missing_default_profile_is_fine),
        T(test_access_key_without_secret_env),
        T(test_access_key_without_secret_config),
        T(test_access_key_without_secret_profile),
        T(test_nothing_is_an_error),
        T(test_dsc_anonymous_env),
        T(test_cfg_anonymous_forces_anonymous),
        T(test_unreadable_credentials_file),
        T(test_unreadable_config_file),
        T(test_missing_file_from_env_is_fine),
        T(test_process_good),
        T(test_process_failures),
        T(test_process_hang_is_bounded),
        T(test_process_order),
        T(test_shell_split),
        T(test_addressing_style),
        T(test_region_source),
        T(test_region_must_be_a_region),
        T(test_role_config_errors),
        T(test_assume_role_source_profile),
        T(test_assume_role_chain),
        T(test_sts_error),
        T(test_web_identity),
        T(test_sso),
        T(test_sso_legacy_cache_name),
        T(test_container),
        T(test_imds),
        T(test_imds_unreachable),
    };
    return cmocka_run_group_tests_name("creds", tests, NULL, NULL);
}
