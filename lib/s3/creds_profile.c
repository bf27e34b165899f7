/* The AWS shared config and credentials files: which files, and one
 * profile's (or sso-session's) settings out of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3/ini.h"
#include "s3/internal.h"

const char *dsc_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

char *dsc_home_path(const char *rel)
{
    const char *home = dsc_env("HOME");
    if (!home)
        return NULL;
    dsc_buf b = { 0 };
    dsc_buf_printf(&b, "%s/%s", home, rel);
    return b.data;
}

const char *dsc_kvs_get(const dsc_kvs *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->k[i], key) == 0)
            return s->v[i];
    return NULL;
}

static int kvs_add(dsc_kvs *s, const char *key, const char *value)
{
    if (dsc_kvs_get(s, key))
        return 0;   /* the first one wins, as before */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **k = realloc(s->k, cap * sizeof *k);
        if (!k)
            return -1;
        s->k = k;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->k[s->n] = dsc_strdup(key);
    s->v[s->n] = dsc_strdup(value);
    if (!s->k[s->n] || !s->v[s->n]) {
        free(s->k[s->n]);
        free(s->v[s->n]);
        return -1;
    }
    s->n++;
    return 0;
}

static void kvs_free(dsc_kvs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        /* Keys, tokens and whatever else a profile holds: wiped alike. */
        memset(s->v[i], 0, strlen(s->v[i]));
        free(s->k[i]);
        free(s->v[i]);
    }
    free(s->k);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void dsc_profile_free(dsc_profile *p)
{
    kvs_free(&p->cred);
    kvs_free(&p->conf);
}

const char *dsc_profile_get(const dsc_profile *p, const char *key)
{
    const char *v = dsc_kvs_get(&p->cred, key);
    return v ? v : dsc_kvs_get(&p->conf, key);
}

typedef struct collect {
    const char *want;
    int *found;
    dsc_kvs *into;
} collect;

static int collect_cb(void *arg, const char *section, const char *key,
                      const char *value)
{
    collect *c = arg;
    if (strcmp(section, c->want) != 0)
        return 0;
    *c->found = 1;
    return kvs_add(c->into, key, value);
}

int dsc_ini_section(const char *text, size_t len, const char *section,
                         int *found, dsc_kvs *into)
{
    if (!text)
        return 0;
    collect c = { section, found, into };
    return dsc_ini_parse(text, len, collect_cb, &c) ? DSC_ENOMEM : 0;
}

/* A missing file is fine; an unreadable one is not, since going on
 * without it would pick other credentials than the user meant. */
static int load_file(const char *path, char **text, size_t *len)
{
    if (!path)
        return 0;
    *text = dsc_read_small_file(path, 1u << 24, len);
    if (*text || errno == ENOENT)
        return 0;
    return dsc_fail(DSC_ECREDS, "cannot read %s: %s", path, strerror(errno));
}

int dsc_aws_files_load(dsc_aws_files *f)
{
    f->cred_path = dsc_env("AWS_SHARED_CREDENTIALS_FILE")
                       ? dsc_strdup(dsc_env("AWS_SHARED_CREDENTIALS_FILE"))
                       : dsc_home_path(".aws/credentials");
    f->conf_path = dsc_env("AWS_CONFIG_FILE") ? dsc_strdup(dsc_env("AWS_CONFIG_FILE"))
                                          : dsc_home_path(".aws/config");
    int rc = load_file(f->cred_path, &f->cred, &f->cred_len);
    return rc ? rc : load_file(f->conf_path, &f->conf, &f->conf_len);
}

void dsc_aws_files_free(dsc_aws_files *f)
{
    free(f->cred_path);
    free(f->conf_path);
    /* The files' text holds every profile's secret. */
    if (f->cred)
        memset(f->cred, 0, f->cred_len);
    if (f->conf)
        memset(f->conf, 0, f->conf_len);
    free(f->cred);
    free(f->conf);
}

int dsc_profile_load(const dsc_aws_files *f, const char *name, dsc_profile *p)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    dsc_buf sect = { 0 };
    /* ~/.aws/config names sections "profile NAME"; the default one may be
     * "[default]" or "[profile default]". */
    dsc_buf_printf(&sect, "profile %s", name);
    int rc = dsc_buf_oom(&sect) ? DSC_ENOMEM : 0;
    if (!rc)
        rc = dsc_ini_section(f->cred, f->cred_len, name, &p->found, &p->cred);
    if (!rc)
        rc = dsc_ini_section(f->conf, f->conf_len, sect.data, &p->found,
                           &p->conf);
    if (!rc && strcmp(name, "default") == 0)
        rc = dsc_ini_section(f->conf, f->conf_len, "default", &p->found,
                           &p->conf);
    dsc_buf_free(&sect);
    return rc;
}
