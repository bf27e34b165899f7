/* Chunk files and the per-context cache of open, verified chunk files.
 *
 * A chunk file is never modified after rename(): a reader holding its fd
 * keeps reading the right bytes even after the chunk is evicted and
 * unlinked, so readers need no lock against writers or evictors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "cache/store.h"
#include "core/atomic.h"

typedef struct open_chunk {
    dsc_chunk_id id;
    int fd;             /* -1: slot free */
    int refs;           /* readers using fd right now */
    int doomed;         /* close when refs drops to 0 */
    int referenced;     /* clock bit */
    uint64_t size;
} open_chunk;

struct dsc_store {
    char *dir;
    pthread_mutex_t lock;
    open_chunk *slots;
    int nslots, hand;
    uint64_t tmp_seq;
};

int dsc_store_path(const char *dir, const dsc_chunk_id *id, uint64_t seq,
                   dsc_buf *out)
{
    char h[33];
    dsc_hex_encode(id->b, 16, h);
    return dsc_buf_printf(out, "%s/data/%.2s/%s-%016llx", dir, h, h,
                          (unsigned long long)seq) ? DSC_ENOMEM : 0;
}

static int make_dir(const char *dir, const char *sub)
{
    dsc_buf p = { 0 };
    if (dsc_buf_printf(&p, "%s/%s", dir, sub))
        return DSC_ENOMEM;
    int rc = 0;
    if (mkdir(p.data, 0700) && errno != EEXIST)
        rc = dsc_fail(DSC_EIO, "cannot create %s: %s", p.data, strerror(errno));
    dsc_buf_free(&p);
    return rc;
}

/* Temporary files are named PID.N.RANDOM; those of dead processes are debris of
 * a crash and go. */
static void sweep_tmp(const char *dir)
{
    dsc_buf p = { 0 };
    if (dsc_buf_printf(&p, "%s/tmp", dir))
        return;
    DIR *d = opendir(p.data);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0 || (kill((pid_t)pid, 0) == -1 && errno == ESRCH)) {
            if (e->d_name[0] == '.')
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    if (d)
        closedir(d);
    dsc_buf_free(&p);
}

int dsc_store_open(const char *dir, int fd_cache, dsc_store **out)
{
    int rc = make_dir(dir, "data");
    if (!rc)
        rc = make_dir(dir, "tmp");
    if (rc)
        return rc;
    dsc_store *st = calloc(1, sizeof *st);
    if (!st)
        return DSC_ENOMEM;
    st->dir = dsc_strdup(dir);
    st->nslots = fd_cache > 0 ? fd_cache : 1;
    st->slots = calloc((size_t)st->nslots, sizeof *st->slots);
    if (!st->dir || !st->slots) {
        free(st->dir);
        free(st->slots);
        free(st);
        return DSC_ENOMEM;
    }
    for (int i = 0; i < st->nslots; i++)
        st->slots[i].fd = -1;
    pthread_mutex_init(&st->lock, NULL);
    sweep_tmp(dir);
    *out = st;
    return 0;
}

void dsc_store_free(dsc_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nslots; i++)
        if (st->slots[i].fd >= 0)
            close(st->slots[i].fd);
    pthread_mutex_destroy(&st->lock);
    free(st->slots);
    free(st->dir);
    free(st);
}

/* Find id among the open files and take a reference. Linear probing from
 * the id's home slot keeps lookups short without a separate hash table. */
static open_chunk *acquire(dsc_store *st, const dsc_chunk_id *id)
{
    unsigned home = (unsigned)(id->b[2] | (id->b[3] << 8)) % (unsigned)st->nslots;
    open_chunk *hit = NULL;
    pthread_mutex_lock(&st->lock);
    for (int i = 0; i < st->nslots; i++) {
        open_chunk *oc = &st->slots[(home + (unsigned)i) % (unsigned)st->nslots];
        if (oc->fd >= 0 && !oc->doomed && memcmp(oc->id.b, id->b, 16) == 0) {
            oc->refs++;
            oc->referenced = 1;
            hit = oc;
            break;
        }
        if (i >= 8)
            break;   /* insert() keeps entries within 8 of home */
    }
    pthread_mutex_unlock(&st->lock);
    return hit;
}

static void release(dsc_store *st, open_chunk *oc)
{
    pthread_mutex_lock(&st->lock);
    if (--oc->refs == 0 && oc->doomed) {
        close(oc->fd);
        oc->fd = -1;
        oc->doomed = 0;
    }
    pthread_mutex_unlock(&st->lock);
}

/* Keep fd open for id; close it instead when every nearby slot is busy. */
static void insert(dsc_store *st, const dsc_chunk_id *id, int fd,
                   uint64_t size)
{
    unsigned home = (unsigned)(id->b[2] | (id->b[3] << 8)) % (unsigned)st->nslots;
    int span = st->nslots < 9 ? st->nslots : 9;
    pthread_mutex_lock(&st->lock);
    open_chunk *victim = NULL;
    /* Clock over the probe window: a free slot, else one not recently
     * used, else the home slot. */
    for (int pass = 0; pass < 2 && !victim; pass++) {
        for (int i = 0; i < span; i++) {
            open_chunk *oc = &st->slots[(home + (unsigned)i) % (unsigned)st->nslots];
            if (oc->fd >= 0 && !oc->doomed && memcmp(oc->id.b, id->b, 16) == 0) {
                pthread_mutex_unlock(&st->lock);
                close(fd);   /* another thread got there first */
                return;
            }
            if (oc->fd < 0 || (pass == 1 && oc->refs == 0 && !oc->referenced)) {
                victim = oc;
                break;
            }
        }
        if (!victim)
            for (int i = 0; i < span; i++)
                st->slots[(home + (unsigned)i) % (unsigned)st->nslots].referenced = 0;
    }
    if (!victim) {
        pthread_mutex_unlock(&st->lock);
        close(fd);
        return;
    }
    if (victim->fd >= 0) {
        if (victim->refs > 0) {
            pthread_mutex_unlock(&st->lock);
            close(fd);
            return;
        }
        close(victim->fd);
    }
    victim->id = *id;
    victim->fd = fd;
    victim->refs = 0;
    victim->doomed = 0;
    victim->referenced = 1;
    victim->size = size;
    pthread_mutex_unlock(&st->lock);
}

void dsc_store_forget(dsc_store *st, const dsc_chunk_id *id)
{
    pthread_mutex_lock(&st->lock);
    for (int i = 0; i < st->nslots; i++) {
        open_chunk *oc = &st->slots[i];
        if (oc->fd >= 0 && memcmp(oc->id.b, id->b, 16) == 0) {
            if (oc->refs) {
                oc->doomed = 1;
            } else {
                close(oc->fd);
                oc->fd = -1;
            }
        }
    }
    pthread_mutex_unlock(&st->lock);
}

/* 0, DSC_CORRUPT (the file is shorter), or -errno (never returned
 * further: callers fall back or turn it into DSC_EIO). */
static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        /* Bare codes: the callers that fall back stay silent. */
        if (n < 0)
            return -errno;
        if (n == 0)
            return DSC_CORRUPT;   /* shorter than its record says */
        done += (size_t)n;
    }
    return 0;
}

int dsc_store_read_open(dsc_store *st, const dsc_chunk_id *id, void *dst,
                        size_t off, size_t len)
{
    open_chunk *oc = acquire(st, id);
    if (!oc)
        return DSC_ABSENT;
    int rc = off + len <= oc->size ? read_full(oc->fd, dst, len, off)
                                   : DSC_CORRUPT;
    release(st, oc);
    if (rc)
        dsc_store_forget(st, id);   /* shrank under us: verify again */
    return rc ? DSC_ABSENT : 0;
}

int dsc_store_dup_open(dsc_store *st, const dsc_chunk_id *id, uint64_t *size)
{
    open_chunk *oc = acquire(st, id);
    if (!oc)
        return -1;
    int fd = fcntl(oc->fd, F_DUPFD_CLOEXEC, 0);
    *size = oc->size;
    release(st, oc);
    return fd;
}

int dsc_store_read(dsc_store *st, const dsc_chunk_id *id,
                   const dsc_chunk_rec *rec, void *dst, size_t off,
                   size_t len, void *scratch)
{
    if (off + len > rec->size)
        return DSC_CORRUPT;
    open_chunk *oc = acquire(st, id);
    if (oc) {
        int rc = oc->size == rec->size ? read_full(oc->fd, dst, len, off)
                                       : DSC_CORRUPT;
        release(st, oc);
        if (rc == 0)
            return 0;
        /* Truncated under us (or another version): re-verify from disk. */
        dsc_store_forget(st, id);
    }
    dsc_buf path = { 0 };
    if (dsc_store_path(st->dir, id, rec->seq, &path))
        return DSC_ENOMEM;
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        dsc_buf_free(&path);
        if (e == ENOENT)
            return DSC_ABSENT;
        return dsc_fail(DSC_EIO, "open cached chunk: %s", strerror(e));
    }
    dsc_buf_free(&path);
    struct stat sb;
    if (fstat(fd, &sb) || (uint64_t)sb.st_size != rec->size) {
        close(fd);
        return DSC_CORRUPT;
    }
    /* Verify the whole chunk once, then trust the open file. */
    int whole = off == 0 && len == rec->size;
    void *buf = whole ? dst : scratch;
    int rc = read_full(fd, buf, rec->size, 0);
    if (rc == 0 && XXH3_64bits(buf, rec->size) != rec->xxh)
        rc = DSC_CORRUPT;
    if (rc) {
        close(fd);
        return rc == DSC_CORRUPT ? rc : dsc_fail(DSC_EIO, "read cached chunk: %s",
                                                 strerror(-rc));
    }
    if (!whole)
        memcpy(dst, (char *)scratch + off, len);
    insert(st, id, fd, rec->size);
    return 0;
}

int dsc_store_write_tmp(dsc_store *st, const void *data, size_t len,
                        dsc_buf *tmp)
{
    uint64_t n = dsc_atomic_next(&st->tmp_seq);
    if (dsc_buf_printf(tmp, "%s/tmp/%ld.%llx.%llx", st->dir, (long)getpid(),
                       (unsigned long long)n,
                       (unsigned long long)dsc_rand_below(UINT64_MAX)))
        return DSC_ENOMEM;
    int fd = open(tmp->data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return dsc_fail(DSC_EIO, "cache write %s: %s", tmp->data,
                        strerror(errno));
    size_t done = 0;
    int err = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (close(fd) && !err)
        err = errno;
    if (err) {
        unlink(tmp->data);
        return dsc_fail(DSC_EIO, "cache write %s: %s", tmp->data,
                        strerror(err));
    }
    return 0;
}

int dsc_store_publish(dsc_store *st, const char *tmp, const dsc_chunk_id *id,
                      uint64_t seq)
{
    dsc_buf path = { 0 };
    if (dsc_store_path(st->dir, id, seq, &path))
        return DSC_ENOMEM;
    int rc = 0;
    if (rename(tmp, path.data)) {
        if (errno == ENOENT) {
            /* First chunk in this fan-out directory. */
            char *slash = strrchr(path.data, '/');
            *slash = '\0';
            if (mkdir(path.data, 0700) && errno != EEXIST)
                rc = -1;
            *slash = '/';
            if (!rc && rename(tmp, path.data))
                rc = -1;
        } else {
            rc = -1;
        }
    }
    if (rc) {
        rc = dsc_fail(DSC_EIO, "cache publish %s: %s", path.data,
                      strerror(errno));
        unlink(tmp);
    }
    dsc_buf_free(&path);
    return rc;
}

void dsc_store_adopt(dsc_store *st, const dsc_chunk_id *id, uint64_t seq,
                     uint64_t size)
{
    dsc_buf path = { 0 };
    if (dsc_store_path(st->dir, id, seq, &path))
        return;
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    dsc_buf_free(&path);
    if (fd >= 0)
        insert(st, id, fd, size);
}

void dsc_store_unlink(dsc_store *st, const dsc_chunk_id *id, uint64_t seq)
{
    dsc_buf path = { 0 };
    if (dsc_store_path(st->dir, id, seq, &path) == 0)
        unlink(path.data);
    dsc_buf_free(&path);
}

int dsc_store_walk(dsc_store *st, dsc_store_walk_fn fn, void *arg)
{
    dsc_buf top = { 0 }, path = { 0 };
    if (dsc_buf_printf(&top, "%s/data", st->dir))
        return DSC_ENOMEM;
    DIR *d = opendir(top.data);
    if (!d) {
        int rc = errno == ENOENT ? 0 : dsc_fail(DSC_EIO, "%s: %s", top.data,
                                                strerror(errno));
        dsc_buf_free(&top);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        dsc_buf_reset(&path);
        dsc_buf_printf(&path, "%s/%s", top.data, e->d_name);
        struct stat tsb;
        if (stat(path.data, &tsb) == 0 && S_ISREG(tsb.st_mode)) {
            /* Nothing of ours lives outside the fan-out folders. */
            dsc_chunk_id none = { { 0 } };
            rc = fn(arg, &none, 0, path.data, (uint64_t)tsb.st_size);
            continue;
        }
        DIR *sub = opendir(path.data);
        struct dirent *f;
        while (!rc && sub && (f = readdir(sub))) {
            if (f->d_name[0] == '.')
                continue;
            dsc_buf_reset(&path);
            if (dsc_buf_printf(&path, "%s/%s/%s", top.data, e->d_name, f->d_name)) {
                rc = DSC_ENOMEM;
                break;
            }
            struct stat sb;
            if (stat(path.data, &sb) || !S_ISREG(sb.st_mode))
                continue;
            dsc_chunk_id id = { { 0 } };
            uint64_t seq = 0;
            /* <32 hex>-<16 hex> */
            if (strlen(f->d_name) == 49 && f->d_name[32] == '-' &&
                dsc_hex_decode(f->d_name, id.b, 16) == 0) {
                uint8_t sb8[8];
                if (dsc_hex_decode(f->d_name + 33, sb8, 8) == 0)
                    for (int i = 0; i < 8; i++)
                        seq = (seq << 8) | sb8[i];
            }
            rc = fn(arg, &id, seq, path.data, (uint64_t)sb.st_size);
        }
        if (sub)
            closedir(sub);
    }
    closedir(d);
    dsc_buf_free(&top);
    dsc_buf_free(&path);
    return rc;
}
