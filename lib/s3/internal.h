/* The credential chain's insides, shared by creds.c (the order, profiles,
 * region), creds_fetch.c (the HTTP sources) and creds_process.c
 * (credential_process). For lib/s3/ only. */
#ifndef DSC_S3_INTERNAL_H
#define DSC_S3_INTERNAL_H

#include "core/common.h"
#include "s3/creds.h"

/* ---- Profiles (creds_profile.c) ---------------------------------------- */

typedef struct dsc_kvs {
    size_t n, cap;
    char **k, **v;
} dsc_kvs;

/* One profile's settings, per file: static keys are looked up per file
 * (botocore's shared-credentials and config providers are two), the rest
 * in both with the credentials file first (botocore's full_config). */
typedef struct dsc_profile {
    const char *name;
    int found;
    dsc_kvs cred, conf;
} dsc_profile;

typedef struct dsc_aws_files {
    char *cred_path, *conf_path;    /* NULL: no HOME and no variable */
    char *cred, *conf;              /* NULL: the file does not exist */
    size_t cred_len, conf_len;
} dsc_aws_files;

/* getenv, with an empty value as unset (as the AWS CLI). */
const char *dsc_env(const char *name);
/* $HOME/rel (malloc'd), NULL without HOME. */
char *dsc_home_path(const char *rel);
/* Find the two files (variables, else ~/.aws) and read them; a missing
 * file is none, an unreadable one DSC_ECREDS naming it. */
int dsc_aws_files_load(dsc_aws_files *f);
void dsc_aws_files_free(dsc_aws_files *f);
/* Profile name's settings from both files into p (p->found: a section
 * exists). 0 or DSC_ENOMEM. */
int dsc_profile_load(const dsc_aws_files *f, const char *name, dsc_profile *p);
void dsc_profile_free(dsc_profile *p);
/* A setting: the credentials file's, else the config file's. */
const char *dsc_profile_get(const dsc_profile *p, const char *key);
const char *dsc_kvs_get(const dsc_kvs *s, const char *key);
/* Collect the keys of [section] in text into *into (first wins). */
int dsc_ini_section(const char *text, size_t len, const char *section,
                    int *found, dsc_kvs *into);

/* ---- Sources ------------------------------------------------------------ */

typedef enum cred_kind {
    CRED_STATIC = 1,        /* keys that never change (a role's source) */
    CRED_ASSUME_ROLE,
    CRED_WEB_IDENTITY,
    CRED_SSO,
    CRED_PROCESS,
    CRED_CONTAINER,
    CRED_IMDS,
} cred_kind;

/* Everything a fetch needs, copied at resolve: immutable afterwards, so
 * fetches may run in any thread or fork()ed child at once. */
struct dsc_cred_source {
    cred_kind kind;
    const char *name;           /* dsc_creds.source of this kind */
    char *profile;              /* the profile it came from, for messages */

    /* Network, from the config (IMDS: its own timeouts). */
    long connect_timeout_ms, request_timeout_ms;
    int verify_tls;
    char *ca_file;
    int attempts;               /* tries of each request (IMDS, container) */

    char *url;                  /* STS/SSO/container/IMDS endpoint */
    char *region;               /* STS signing region */

    /* STS */
    char *role_arn, *session_name, *external_id, *duration;
    char *token_file;           /* web identity: re-read on every fetch */
    dsc_cred_source *base;      /* assume role: where its keys come from */
    dsc_keys keys;              /* CRED_STATIC */

    /* SSO */
    char *sso_cache_file, *sso_account, *sso_role;

    /* credential_process */
    char **argv;

    /* container */
    char *auth_token, *auth_token_file;
};

void dsc_cred_source_free(dsc_cred_source *s);

/* Fetch s's keys: any kind (creds.c). DSC_ABSENT only when absent_ok and
 * s is IMDS that does not answer. */
int dsc_cred_fetch(const dsc_cred_source *s, int absent_ok, dsc_keys *out);

/* Fetch one source's keys (the body of dsc_creds_fetch). CRED_IMDS's
 * "unreachable" is DSC_ABSENT when absent_ok (resolve: try the next way),
 * else DSC_ECREDS. Messages never hold a secret. */
int dsc_cred_fetch_http(const dsc_cred_source *s, int absent_ok,
                        dsc_keys *out);
int dsc_cred_fetch_process(const dsc_cred_source *s, dsc_keys *out);

/* The region IMDS names for this instance (GET placement/region with a
 * token), in *out; DSC_ABSENT when IMDS is disabled or does not answer
 * (why in *why, for the summary of sources tried). */
int dsc_imds_region(const dsc_cred_source *imds, char **out, dsc_buf *why);

/* Split a command line as Python's shlex.split (botocore's for
 * credential_process): blanks separate, '...' is literal, inside "..." a
 * backslash escapes only " and \, elsewhere it quotes the next byte.
 * NULL-terminated malloc'd vector (free with dsc_argv_free); DSC_EINVAL
 * for an unclosed quote, a trailing backslash or an empty command. */
int dsc_shell_split(const char *cmd, char ***argv);
void dsc_argv_free(char **argv);

/* Keys out of a JSON answer: the names of the access key, secret, token
 * and expiration fields; expiration ISO-8601 unless epoch_ms. what names
 * the source in messages. DSC_ECREDS when a key is missing. */
int dsc_cred_keys_from_json(const char *json, size_t len, const char *ak,
                            const char *sk, const char *tok, const char *exp,
                            int epoch_ms, const char *what, dsc_keys *out);

#endif
