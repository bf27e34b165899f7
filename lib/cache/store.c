/* Chunk files and the per-context cache of open, verified chunk files.
 *
 * A chunk file is never modified after rename(): a reader holding its fd
 * keeps reading the right bytes even after the chunk is evicted and
 * unlinked, so readers need no lock against writers or evictors.
 *
 * Every name is resolved from directory fds opened once (root, data/,
 * tmp/) with openat/renameat/unlinkat and O_NOFOLLOW: nothing inside the
 * cache is ever followed through a symlink (cache/trust.h). A temporary
 * file is proved in use by the OFD lock its writer holds until it is
 * published or dropped, not by a pid (pids mean nothing across PID
 * namespaces, as in containers sharing a cache). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "cache/store.h"
#include "cache/trust.h"
#include "core/atomic.h"

typedef struct open_chunk {
    dsc_chunk_id id;
    int fd;             /* -1: slot free */
    int refs;           /* readers using fd right now */
    int doomed;         /* close when refs drops to 0 */
    int referenced;     /* clock bit */
    uint64_t size;
    int64_t touched_ms; /* dsc_now_ms() of this process's last counted
                           access (its opening counts) */
} open_chunk;

struct dsc_store {
    char *dir;
    int data_fd, tmp_fd;          /* dir/data, dir/tmp: checked, ours */
    uid_t owner;                  /* our euid when the tree was checked */
    pthread_mutex_t lock;
    open_chunk *slots;
    int nslots, hand;
    int lock_made;
    uint64_t tmp_seq;
};

/* A chunk file's place: its fan-out folder under data/ and its name. */
typedef struct chunk_name {
    char sub[3];
    char file[50];                /* <32 hex id>-<16 hex seq> */
} chunk_name;

static void name_of(const dsc_chunk_id *id, uint64_t seq, chunk_name *n)
{
    char h[33];
    dsc_hex_encode(id->b, 16, h);
    memcpy(n->sub, h, 2);
    n->sub[2] = '\0';
    snprintf(n->file, sizeof n->file, "%s-%016llx", h, (unsigned long long)seq);
}

/* The fan-out folder of n, never through a symlink; made when missing and
 * create is set (only then: a mkdir per published chunk cost a path walk
 * and a directory lookup each). */
static int open_sub(dsc_store *st, const chunk_name *n, int create)
{
    int fd = openat(st->data_fd, n->sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                    O_CLOEXEC);
    if (fd >= 0 || !create || errno != ENOENT)
        return fd;
    if (mkdirat(st->data_fd, n->sub, 0700) && errno != EEXIST)
        return -1;
    return openat(st->data_fd, n->sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                  O_CLOEXEC);
}

/* openat2 resolves "XX/name" beneath data/ refusing every symlink on the
 * way in one call: a warm read's open costs one path walk, not two opens
 * and a close. 0: not known yet, 1: works, -1: refused (old kernel,
 * seccomp). */
static int openat2_state;

static int open_beneath(int dir_fd, const chunk_name *n)
{
    int state = dsc_atomic_get(&openat2_state);
    if (state < 0)
        return -2;
    char rel[sizeof n->sub + sizeof n->file];
    snprintf(rel, sizeof rel, "%s/%s", n->sub, n->file);
    struct open_how how = {
        .flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, dir_fd, rel, &how, sizeof how);
    /* Refused as a call (no kernel support, or a seccomp filter, maybe
     * installed after it once worked): the two-step open from now on. */
    if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) {
        dsc_atomic_set(&openat2_state, -1);
        return -2;
    }
    if (fd >= 0 && state == 0)
        dsc_atomic_set(&openat2_state, 1);
    return fd;
}

/* Open chunk file (id, seq) for reading, never through a symlink. */
static int open_chunk_file(dsc_store *st, const dsc_chunk_id *id, uint64_t seq)
{
    chunk_name n;
    name_of(id, seq, &n);
    int fd = open_beneath(st->data_fd, &n);
    if (fd != -2)
        return fd;
    int sub = open_sub(st, &n, 0);
    if (sub < 0)
        return -1;
    fd = openat(sub, n.file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(sub);
    errno = e;
    return fd;
}

int dsc_store_path(const char *dir, const dsc_chunk_id *id, uint64_t seq,
                   dsc_buf *out)
{
    char h[33];
    dsc_hex_encode(id->b, 16, h);
    return dsc_buf_printf(out, "%s/data/%.2s/%s-%016llx", dir, h, h,
                          (unsigned long long)seq) ? DSC_ENOMEM : 0;
}

/* A new fd of the same directory to list: a dup would share its offset,
 * and the next listing would start where the last one ended. */
static int reopen_dir(int dir_fd)
{
    return openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* An OFD lock on the whole file: held by a tmp file's writer. */
static int ofd_lock(int fd, short type)
{
    struct flock l = { .l_type = type, .l_whence = SEEK_SET };
    return fcntl(fd, F_OFD_SETLK, &l);
}

#define TMP_GRACE_S 60

/* Our temporary names: <pid>.<hex>.<hex>. */
static int is_tmp_name(const char *name)
{
    const char *p = name;
    int fields = 0;
    while (*p) {
        const char *start = p;
        while (*p && *p != '.' && (fields == 0 ? dsc_isdigit(*p)
                                                : (dsc_isdigit(*p) ||
                                                   (*p >= 'a' && *p <= 'f'))))
            p++;
        if (p == start || (*p && *p != '.'))
            return 0;
        fields++;
        if (*p)
            p++;
    }
    return fields == 3;
}

/* Temporary files nobody holds locked are debris of a crash (their writer
 * died before publishing): they go. Anything else in tmp/ that is not a
 * regular file goes too; unlinkat removes a symlink itself, never its
 * target. */
static void sweep_tmp(dsc_store *st)
{
    int dfd = reopen_dir(st->tmp_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        struct stat sb;
        if (!is_tmp_name(e->d_name) ||
            fstatat(st->tmp_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW))
            continue;   /* not a name we make: not ours to remove */
        if (S_ISDIR(sb.st_mode))
            continue;
        /* A writer creates its file, then locks it: a file that young
         * may be in that gap. Debris is older. */
        if (S_ISREG(sb.st_mode) && time(NULL) - sb.st_mtime < TMP_GRACE_S)
            continue;
        int gone = !S_ISREG(sb.st_mode);
        if (!gone) {
            int fd = openat(st->tmp_fd, e->d_name,
                            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            gone = fd >= 0 && ofd_lock(fd, F_RDLCK) == 0;
            if (fd >= 0)
                close(fd);   /* drops our probe lock */
        }
        if (gone)
            unlinkat(st->tmp_fd, e->d_name, 0);
    }
    closedir(d);
}

int dsc_store_open(const char *dir, int fd_cache, dsc_store **out)
{
    int root = dsc_trust_open_root(dir);
    if (root < 0)
        return root;
    dsc_store *st = calloc(1, sizeof *st);
    dsc_buf shown = { 0 };
    int rc = st ? 0 : DSC_ENOMEM;
    if (st) {
        st->data_fd = st->tmp_fd = -1;
        st->owner = geteuid();
        dsc_buf_printf(&shown, "%s/data", dir);
        st->data_fd = dsc_buf_oom(&shown) ? DSC_ENOMEM
                      : dsc_trust_open_dir(root, "data", 1, shown.data);
        rc = st->data_fd < 0 ? st->data_fd : 0;
    }
    if (!rc) {
        dsc_buf_reset(&shown);
        dsc_buf_printf(&shown, "%s/tmp", dir);
        st->tmp_fd = dsc_buf_oom(&shown) ? DSC_ENOMEM
                     : dsc_trust_open_dir(root, "tmp", 1, shown.data);
        rc = st->tmp_fd < 0 ? st->tmp_fd : 0;
    }
    dsc_buf_free(&shown);
    close(root);
    if (!rc) {
        st->dir = dsc_strdup(dir);
        st->nslots = fd_cache > 0 ? fd_cache : 1;
        st->slots = calloc((size_t)st->nslots, sizeof *st->slots);
        if (!st->dir || !st->slots)
            rc = DSC_ENOMEM;
    }
    if (rc) {
        dsc_store_free(st);
        return rc;
    }
    for (int i = 0; i < st->nslots; i++)
        st->slots[i].fd = -1;
    pthread_mutex_init(&st->lock, NULL);
    st->lock_made = 1;
    sweep_tmp(st);
    *out = st;
    return 0;
}

void dsc_store_free(dsc_store *st)
{
    if (!st)
        return;
    for (int i = 0; st->slots && i < st->nslots; i++)
        if (st->slots[i].fd >= 0)
            close(st->slots[i].fd);
    if (st->data_fd >= 0)
        close(st->data_fd);
    if (st->tmp_fd >= 0)
        close(st->tmp_fd);
    if (st->lock_made)
        pthread_mutex_destroy(&st->lock);
    free(st->slots);
    free(st->dir);
    free(st);
}

/* id's open file, or NULL. Linear probing from the id's home slot keeps
 * lookups short without a separate hash table. Under st->lock. */
static open_chunk *find_open(dsc_store *st, const dsc_chunk_id *id)
{
    unsigned home = (unsigned)(id->b[2] | (id->b[3] << 8)) % (unsigned)st->nslots;
    for (int i = 0; i < st->nslots; i++) {
        open_chunk *oc = &st->slots[(home + (unsigned)i) % (unsigned)st->nslots];
        if (oc->fd >= 0 && !oc->doomed && memcmp(oc->id.b, id->b, 16) == 0)
            return oc;
        if (i >= 8)
            break;   /* insert() keeps entries within 8 of home */
    }
    return NULL;
}

/* Find id among the open files and take a reference. */
static open_chunk *acquire(dsc_store *st, const dsc_chunk_id *id,
                           int64_t every_ms, int *touch_due)
{
    pthread_mutex_lock(&st->lock);
    open_chunk *oc = find_open(st, id);
    if (oc) {
        oc->refs++;
        oc->referenced = 1;
        if (touch_due) {
            int64_t now = dsc_now_ms();
            *touch_due = now - oc->touched_ms >= every_ms;
            if (*touch_due)
                oc->touched_ms = now;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return oc;
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
    victim->touched_ms = dsc_now_ms();
    pthread_mutex_unlock(&st->lock);
}

void dsc_store_note_touch(dsc_store *st, const dsc_chunk_id *id,
                          int64_t ago_ms)
{
    pthread_mutex_lock(&st->lock);
    open_chunk *oc = find_open(st, id);
    if (oc)
        oc->touched_ms = dsc_now_ms() - ago_ms;
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
                        size_t off, size_t len, int64_t every_ms,
                        int *touch_due)
{
    open_chunk *oc = acquire(st, id, every_ms, touch_due);
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
    open_chunk *oc = acquire(st, id, 0, NULL);
    if (!oc)
        return -1;
    int fd = fcntl(oc->fd, F_DUPFD_CLOEXEC, 0);
    *size = oc->size;
    release(st, oc);
    return fd;
}

/* The modification time a published chunk file carries, drawn from its
 * hash: any later write or truncation sets the real time instead, so a
 * file still bearing its mark holds the bytes its writer hashed. */
static struct timespec write_mark(uint64_t xxh)
{
    struct timespec ts = {
        .tv_sec = (time_t)(946684800 + (xxh >> 40)),   /* 2000 + ~194 days */
        .tv_nsec = (long)((xxh & 0xffffffffu) % 1000000000u),
    };
    return ts;
}

static int has_write_mark(const struct stat *sb, uint64_t xxh)
{
    struct timespec m = write_mark(xxh);
    return sb->st_mtim.tv_sec == m.tv_sec && sb->st_mtim.tv_nsec == m.tv_nsec;
}

/* Read [off, off+len) of a chunk file into dst while checking the whole
 * file's XXH3, the rest streamed through a small buffer: verifying a 4 MiB
 * chunk for a 100 KiB read holds 256 KiB, not 4 MiB, per reading thread. */
#define VERIFY_BLOCK (256 * 1024)

static int hash_span(int fd, XXH3_state_t *h, char *block, uint64_t from,
                     uint64_t to)
{
    while (from < to) {
        size_t n = to - from < VERIFY_BLOCK ? (size_t)(to - from) : VERIFY_BLOCK;
        int rc = read_full(fd, block, n, from);
        if (rc)
            return rc;
        XXH3_64bits_update(h, block, n);
        from += n;
    }
    return 0;
}

static int verify_part(int fd, const dsc_chunk_rec *rec, void *dst,
                       size_t off, size_t len)
{
    XXH3_state_t *h = XXH3_createState();
    char *block = malloc(VERIFY_BLOCK);
    int rc = h && block ? 0 : DSC_ENOMEM;
    if (!rc)
        XXH3_64bits_reset(h);
    if (!rc)
        rc = hash_span(fd, h, block, 0, off);
    if (!rc)
        rc = read_full(fd, dst, len, off);
    if (!rc)
        XXH3_64bits_update(h, dst, len);
    if (!rc)
        rc = hash_span(fd, h, block, off + len, rec->size);
    if (!rc && XXH3_64bits_digest(h) != rec->xxh)
        rc = DSC_CORRUPT;
    free(block);
    XXH3_freeState(h);
    return rc;
}

int dsc_store_read(dsc_store *st, const dsc_chunk_id *id,
                   const dsc_chunk_rec *rec, int written_since_boot,
                   void *dst, size_t off, size_t len)
{
    if (off + len > rec->size)
        return DSC_CORRUPT;
    open_chunk *oc = acquire(st, id, 0, NULL);
    if (oc) {
        int rc = oc->size == rec->size ? read_full(oc->fd, dst, len, off)
                                       : DSC_CORRUPT;
        release(st, oc);
        if (rc == 0)
            return 0;
        /* Truncated under us (or another version): re-verify from disk. */
        dsc_store_forget(st, id);
    }
    int fd = open_chunk_file(st, id, rec->seq);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return DSC_ABSENT;
        if (e == ELOOP)
            return DSC_CORRUPT;   /* a symlink where a chunk belongs */
        return dsc_fail(DSC_EIO, "open cached chunk: %s", strerror(e));
    }
    struct stat sb;
    /* Ours and writable by no one else, or not to be trusted: a checksum
     * is no defence against whoever could replace the file. */
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_uid != st->owner ||
        (sb.st_mode & (S_IWGRP | S_IWOTH)) || (uint64_t)sb.st_size != rec->size) {
        close(fd);
        return DSC_CORRUPT;
    }
    /* Verify the whole chunk once, then trust the open file; a file
     * written this boot and unchanged since needs no verifying. */
    int rc;
    if (written_since_boot && has_write_mark(&sb, rec->xxh)) {
        rc = read_full(fd, dst, len, off);
    } else if (off == 0 && len == rec->size) {
        rc = read_full(fd, dst, len, 0);
        if (rc == 0 && XXH3_64bits(dst, len) != rec->xxh)
            rc = DSC_CORRUPT;
    } else {
        rc = verify_part(fd, rec, dst, off, len);
    }
    if (rc) {
        close(fd);
        if (rc == DSC_CORRUPT || rc == DSC_ENOMEM)
            return rc;
        return dsc_fail(DSC_EIO, "read cached chunk: %s", strerror(-rc));
    }
    insert(st, id, fd, rec->size);
    return 0;
}

static int tmp_failed(dsc_store *st, dsc_store_tmp *tmp, int err)
{
    tmp->err = err;
    dsc_store_drop_tmp(st, tmp);
    return dsc_fail(DSC_EIO, "cache write %s/tmp/%s: %s", st->dir, tmp->name,
                    strerror(err));
}

int dsc_store_open_tmp(dsc_store *st, size_t len, dsc_store_tmp *tmp)
{
    uint64_t n = dsc_atomic_next(&st->tmp_seq);
    tmp->fd = -1;
    tmp->err = 0;
    snprintf(tmp->name, sizeof tmp->name, "%ld.%llx.%llx", (long)getpid(),
             (unsigned long long)n, (unsigned long long)dsc_rand_below(UINT64_MAX));
    tmp->fd = openat(st->tmp_fd, tmp->name,
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (tmp->fd < 0)
        return tmp_failed(st, tmp, errno);
    /* Held until published or dropped: the sweep's proof it is in use. */
    if (ofd_lock(tmp->fd, F_WRLCK))
        return tmp_failed(st, tmp, errno);
    /* A full disk shows now, before any byte is fetched for nothing.
     * Filesystems without fallocate find out at the write instead. */
    if (len && fallocate(tmp->fd, 0, 0, (off_t)len) &&
        (errno == ENOSPC || errno == EDQUOT))
        return tmp_failed(st, tmp, errno);
    return 0;
}

int dsc_store_write_at(dsc_store *st, dsc_store_tmp *tmp, const void *data,
                       size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(tmp->fd, (const char *)data + done, len - done,
                           (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return tmp_failed(st, tmp, w < 0 ? errno : EIO);
        done += (size_t)w;
    }
    return 0;
}

int dsc_store_write_tmp(dsc_store *st, const void *data, size_t len,
                        dsc_store_tmp *tmp)
{
    int rc = dsc_store_open_tmp(st, 0, tmp);
    return rc ? rc : dsc_store_write_at(st, tmp, data, len, 0);
}

void dsc_store_drop_tmp(dsc_store *st, dsc_store_tmp *tmp)
{
    if (tmp->fd < 0)
        return;
    unlinkat(st->tmp_fd, tmp->name, 0);
    close(tmp->fd);
    tmp->fd = -1;
}

int dsc_store_publish(dsc_store *st, dsc_store_tmp *tmp, const dsc_chunk_id *id,
                      uint64_t seq, uint64_t xxh)
{
    chunk_name n;
    name_of(id, seq, &n);
    /* Best effort: a file system that cannot keep the mark only costs
     * its readers a hash. */
    struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, write_mark(xxh) };
    futimens(tmp->fd, times);
    int sub = open_sub(st, &n, 1);
    int rc = sub >= 0 && renameat(st->tmp_fd, tmp->name, sub, n.file) == 0 ? 0 : -1;
    int e = errno;
    if (sub >= 0)
        close(sub);
    if (rc) {
        rc = dsc_fail(DSC_EIO, "cache publish %s/data/%s/%s: %s", st->dir,
                      n.sub, n.file, strerror(e));
        dsc_store_drop_tmp(st, tmp);
        return rc;
    }
    close(tmp->fd);   /* the lock goes: the file is no longer temporary */
    tmp->fd = -1;
    return 0;
}

void dsc_store_adopt(dsc_store *st, const dsc_chunk_id *id, uint64_t seq,
                     uint64_t size)
{
    int fd = open_chunk_file(st, id, seq);
    if (fd >= 0)
        insert(st, id, fd, size);
}

void dsc_store_unlink(dsc_store *st, const dsc_chunk_id *id, uint64_t seq)
{
    chunk_name n;
    name_of(id, seq, &n);
    int sub = open_sub(st, &n, 0);
    if (sub >= 0) {
        unlinkat(sub, n.file, 0);
        close(sub);
    }
}

/* One fan-out folder: every regular file, name parsed into id and seq. */
static int walk_sub(int sub, dsc_store_walk_fn fn, void *arg)
{
    int dfd = reopen_dir(sub);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    int rc = 0;
    struct dirent *f;
    while (!rc && (f = readdir(d))) {
        struct stat sb;
        if (f->d_name[0] == '.' ||
            fstatat(sub, f->d_name, &sb, AT_SYMLINK_NOFOLLOW) || S_ISDIR(sb.st_mode))
            continue;
        dsc_chunk_id id = { { 0 } };
        uint64_t seq = 0;
        /* <32 hex>-<16 hex>; anything else (a symlink too) is reported
         * with seq 0, as debris. */
        if (S_ISREG(sb.st_mode) && strlen(f->d_name) == 49 &&
            f->d_name[32] == '-' && dsc_hex_decode(f->d_name, id.b, 16) == 0) {
            uint8_t sb8[8];
            if (dsc_hex_decode(f->d_name + 33, sb8, 8) == 0)
                for (int i = 0; i < 8; i++)
                    seq = (seq << 8) | sb8[i];
        }
        rc = fn(arg, &id, seq, sub, f->d_name, (uint64_t)sb.st_size);
    }
    closedir(d);
    return rc;
}

int dsc_store_walk(dsc_store *st, dsc_store_walk_fn fn, void *arg)
{
    int dfd = reopen_dir(st->data_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return dsc_fail(DSC_EIO, "%s/data: %s", st->dir, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        struct stat sb;
        if (fstatat(st->data_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW))
            continue;
        if (!S_ISDIR(sb.st_mode)) {
            /* Nothing of ours lives outside the fan-out folders. */
            dsc_chunk_id none = { { 0 } };
            rc = fn(arg, &none, 0, st->data_fd, e->d_name, (uint64_t)sb.st_size);
            continue;
        }
        int sub = openat(st->data_fd, e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        rc = walk_sub(sub, fn, arg);
        close(sub);
    }
    closedir(d);
    return rc;
}
