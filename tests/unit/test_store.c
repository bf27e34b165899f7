/* Chunk data files: layout and modes, publish, verified reads, damage
 * detection, the per-store cache of open files, and the sweep of
 * temporary files left by dead processes.
 *
 * Each test gets a fresh directory under /tmp with a store opened on it
 * (fd_cache 8); both are released and removed afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "unittest.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <xxhash.h>
#include "core/common.h"
#include "cache/store.h"

/* ---- fixture ----------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    dsc_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dsc-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (dsc_store_open(f->dir, 8, &f->st)) {
        print_error("dsc_store_open(%s): %s\n", f->dir, dsc_errmsg());
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dsc_store_free(f->st);
    int rc = rm_tree(f->dir);
    free(f);
    return rc;
}

static dsc_chunk_id mkid(unsigned n)
{
    dsc_chunk_id id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(n * 37u + (unsigned)i * 11u);
    id.b[15] = (uint8_t)n;
    id.b[14] = (uint8_t)(n >> 8);
    return id;
}

/* Deterministic bytes that differ per chunk n and per offset. */
static uint8_t *mkdata(unsigned n, size_t len)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    uint32_t x = 2463534242u ^ (n * 2654435761u);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* Write and publish chunk n as seq; fill *rec to read it back. */
static void put_chunk(dsc_store *st, unsigned n, const uint8_t *data,
                      size_t len, uint64_t seq, dsc_chunk_rec *rec)
{
    dsc_store_tmp tmp;
    int rc = dsc_store_write_tmp(st, data, len, &tmp);
    if (rc)
        fail_msg("dsc_store_write_tmp: %d (%s)", rc, dsc_errmsg());
    dsc_chunk_id id = mkid(n);
    rc = dsc_store_publish(st, &tmp, &id, seq, XXH3_64bits(data, len));
    if (rc)
        fail_msg("dsc_store_publish: %d (%s)", rc, dsc_errmsg());
    memset(rec, 0, sizeof *rec);
    rec->size = len;
    rec->xxh = XXH3_64bits(data, len);
    rec->seq = seq;
}

static void chunk_path(const char *dir, unsigned n, uint64_t seq, char *out,
                       size_t cap)
{
    dsc_buf p = { 0 };
    dsc_chunk_id id = mkid(n);
    assert_int_equal(dsc_store_path(dir, &id, seq, &p), 0);
    assert_true(p.len < cap);
    memcpy(out, p.data, p.len + 1);
    dsc_buf_free(&p);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- layout ------------------------------------------------------------ */

static void test_open_creates_private_dirs(void **state)
{
    fixture *f = *state;
    const char *subs[] = { "data", "tmp" };
    for (size_t i = 0; i < DSC_ARRAY_LEN(subs); i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", f->dir, subs[i]);
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0700);
    }
    /* Opening again on the same directory is fine. */
    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 1, &st2), 0);
    dsc_store_free(st2);
}

static void test_open_missing_dir_fails(void **state)
{
    fixture *f = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/not/here", f->dir);
    dsc_store *st = NULL;
    dsc_clear_error();
    assert_int_equal(dsc_store_open(missing, 4, &st), DSC_EIO);
    assert_null(st);
    assert_errmsg_has(missing);
}

static void test_publish_places_private_file(void **state)
{
    fixture *f = *state;
    const size_t len = 5000;
    uint8_t *data = mkdata(1, len);
    dsc_store_tmp tmp;
    assert_int_equal(dsc_store_write_tmp(f->st, data, len, &tmp), 0);
    char tmppath[256];
    snprintf(tmppath, sizeof tmppath, "%s/tmp/%s", f->dir, tmp.name);
    struct stat sb;
    assert_int_equal(stat(tmppath, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)len);

    dsc_chunk_id id = mkid(1);
    assert_int_equal(dsc_store_publish(f->st, &tmp, &id, 0xabcdef, 1), 0);
    assert_int_equal(tmp.fd, -1);
    assert_int_equal(stat(tmppath, &sb), -1);        /* moved, not copied */
    assert_int_equal(errno, ENOENT);

    char path[256];
    chunk_path(f->dir, 1, 0xabcdef, path, sizeof path);
    char datadir[128];
    snprintf(datadir, sizeof datadir, "%s/data/", f->dir);
    assert_memory_equal(path, datadir, strlen(datadir));
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_size, (off_t)len);
    /* The bytes on disk are the bytes written. */
    uint8_t *back = malloc(len);
    assert_non_null(back);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, len), (ssize_t)len);
    close(fd);
    assert_memory_equal(back, data, len);

    /* Another seq of the same id is another file, in the same fan-out
     * directory (which then already exists). */
    dsc_chunk_rec rec;
    put_chunk(f->st, 1, data, len, 0xabcdf0, &rec);
    char path2[256];
    chunk_path(f->dir, 1, 0xabcdf0, path2, sizeof path2);
    assert_string_not_equal(path, path2);
    assert_int_equal(stat(path2, &sb), 0);
    assert_int_equal(stat(path, &sb), 0);

    dsc_store_unlink(f->st, &id, 0xabcdef);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(stat(path2, &sb), 0);

    free(back);
    free(data);
}

static void test_publish_missing_tmp_fails(void **state)
{
    fixture *f = *state;
    dsc_store_tmp bogus = { .name = "never-written", .fd = -1 };
    dsc_chunk_id id = mkid(3);
    dsc_clear_error();
    assert_int_equal(dsc_store_publish(f->st, &bogus, &id, 5, 1), DSC_EIO);
    char path[256];
    chunk_path(f->dir, 3, 5, path, sizeof path);
    assert_errmsg_has(path);
}

/* ---- reads ------------------------------------------------------------- */

static void test_read_whole_and_part(void **state)
{
    fixture *f = *state;
    const size_t len = 70000;
    uint8_t *data = mkdata(2, len);
    dsc_chunk_rec rec;
    put_chunk(f->st, 2, data, len, 77, &rec);
    dsc_chunk_id id = mkid(2);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);

    /* Whole chunk, first read: verified in the destination buffer. */
    memset(buf, 0, len);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len), 0);
    assert_memory_equal(buf, data, len);

    /* A part, from the open file. */
    memset(buf, 0, len);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 1234, 5000),
                     0);
    assert_memory_equal(buf, data + 1234, 5000);

    /* A part as the first read of another store: verified streaming. */
    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    memset(buf, 0, len);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, len - 100, 100), 0);
    assert_memory_equal(buf, data + len - 100, 100);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, 1), 0);
    assert_int_equal(buf[0], data[0]);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, len), 0);
    assert_memory_equal(buf, data, len);

    /* Asking beyond the recorded size is refused, not read. */
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, len - 10, 11), DSC_CORRUPT);

    dsc_store_free(st2);
    free(buf);
    free(data);
}

static void test_changed_bytes_corrupt(void **state)
{
    fixture *f = *state;
    const size_t len = 4096;
    uint8_t *data = mkdata(4, len);
    dsc_chunk_rec rec;
    put_chunk(f->st, 4, data, len, 9, &rec);
    char path[256];
    chunk_path(f->dir, 4, 9, path, sizeof path);
    /* Flip one bit in the middle, keeping the size. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = data[2000] ^ 0x10;
    assert_int_equal(pwrite(fd, &b, 1, 2000), 1);
    close(fd);

    dsc_chunk_id id = mkid(4);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, len),
                     DSC_CORRUPT);
    /* A part far from the damage is refused as well: the whole chunk is
     * checked, and a bad file is never kept open as good. */
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, 10),
                     DSC_CORRUPT);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, len),
                     DSC_CORRUPT);
    dsc_store_free(st2);
    free(buf);
    free(data);
}

/* A file written this boot and bearing its write mark is read without
 * hashing, only the asked part; any write to it erases the mark, and then
 * the hash catches it even though the caller allows trust. */
static void test_trusting_read(void **state)
{
    fixture *f = *state;
    const size_t len = 600 * 1024 + 7;   /* several verify blocks */
    uint8_t *data = mkdata(11, len);
    dsc_chunk_rec rec;
    put_chunk(f->st, 11, data, len, 21, &rec);
    dsc_chunk_id id = mkid(11);
    char path[256];
    chunk_path(f->dir, 11, 21, path, sizeof path);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);

    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 1, buf, 100, 50), 0);
    assert_memory_equal(buf, data + 100, 50);
    dsc_store_free(st2);
    /* Not trusted: a part is verified streaming. */
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 300000,
                                             700), 0);
    assert_memory_equal(buf, data + 300000, 700);
    dsc_store_free(st2);

    /* Same size, one byte changed, written after the mark. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = data[5000] ^ 0x01;
    assert_int_equal(pwrite(fd, &b, 1, 5000), 1);
    close(fd);
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 1, buf, 0, len), DSC_CORRUPT);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 1, buf, 10, 20), DSC_CORRUPT);
    dsc_store_free(st2);

    /* A mark put back by hand fools the trusting read (it is for files of
     * this boot, written by us); a record from before the boot is still
     * hashed. */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    dsc_chunk_rec old = rec;
    put_chunk(f->st, 12, data, len, 22, &old);
    char path2[256];
    chunk_path(f->dir, 12, 22, path2, sizeof path2);
    struct stat marked;
    assert_int_equal(stat(path2, &marked), 0);
    struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, marked.st_mtim };
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &rec, 0, buf, 0, len), DSC_CORRUPT);
    dsc_store_free(st2);
    free(buf);
    free(data);
}

/* openat2 refused after it once worked (a seccomp filter a sandbox or a
 * worker's init installs later): chunk files still open, the two-step
 * way. In a child, so the filter dies with it. */
static void deny_openat2(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        _exit(3);
}

static void test_openat2_refused_later(void **state)
{
    fixture *f = *state;
    const size_t len = 5000;
    uint8_t *data = mkdata(13, len), *buf = malloc(len);
    assert_non_null(buf);
    dsc_chunk_rec r1, r2;
    put_chunk(f->st, 13, data, len, 31, &r1);
    put_chunk(f->st, 14, data, len, 32, &r2);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dsc_store *st2 = NULL;
        dsc_chunk_id a = mkid(13), b = mkid(14);
        if (dsc_store_open(f->dir, 4, &st2))
            _exit(4);
        int rc = dsc_store_read(st2, &a, &r1, 0, buf, 0, len);
        deny_openat2();
        rc = rc ? rc : dsc_store_read(st2, &b, &r2, 0, buf, 0, len);
        _exit(rc == 0 && memcmp(buf, data, len) == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(buf);
    free(data);
}

static void test_wrong_size_corrupt(void **state)
{
    fixture *f = *state;
    const size_t len = 4096;
    uint8_t *data = mkdata(5, len);
    dsc_chunk_rec rec;
    put_chunk(f->st, 5, data, len, 10, &rec);
    char path[256];
    chunk_path(f->dir, 5, 10, path, sizeof path);
    dsc_chunk_id id = mkid(5);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);

    /* Truncated by one byte (the read wanted is fully before the cut). */
    assert_int_equal(truncate(path, (off_t)len - 1), 0);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len),
                     DSC_CORRUPT);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, 100),
                     DSC_CORRUPT);
    /* Truncated to nothing. */
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len),
                     DSC_CORRUPT);
    /* Longer than recorded, with the right prefix. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len),
                     DSC_CORRUPT);
    /* Restored: good again. */
    assert_int_equal(truncate(path, (off_t)len), 0);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len), 0);
    assert_memory_equal(buf, data, len);
    free(buf);
    free(data);
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    const size_t len = 1000;
    uint8_t *data = mkdata(6, len);
    uint8_t buf[1000];
    dsc_chunk_rec rec = { .size = len, .xxh = XXH3_64bits(data, len),
                          .seq = 1 };
    dsc_chunk_id id = mkid(6);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len),
                     DSC_ABSENT);
    /* Published under another seq: still missing for this record. */
    dsc_chunk_rec real;
    put_chunk(f->st, 6, data, len, 2, &real);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, 10),
                     DSC_ABSENT);
    assert_int_equal(dsc_store_read(f->st, &id, &real, 0, buf, 0, len), 0);
    /* Unlinked (evicted) before any read by a new store. */
    dsc_store_unlink(f->st, &id, 2);
    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_int_equal(dsc_store_read(st2, &id, &real, 0, buf, 0, len),
                     DSC_ABSENT);
    dsc_store_free(st2);
    free(data);
}

/* ---- open-file cache --------------------------------------------------- */

static void test_open_file_cache_serves_second_read(void **state)
{
    fixture *f = *state;
    const size_t len = 8192;
    uint8_t *data = mkdata(7, len);
    dsc_chunk_rec rec;
    put_chunk(f->st, 7, data, len, 3, &rec);
    dsc_chunk_id id = mkid(7);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);

    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len), 0);
    assert_memory_equal(buf, data, len);

    /* Gone from disk, yet the verified open file still serves it. */
    char path[256];
    chunk_path(f->dir, 7, 3, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    memset(buf, 0, len);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len), 0);
    assert_memory_equal(buf, data, len);
    memset(buf, 0, len);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 100, 200),
                     0);
    assert_memory_equal(buf, data + 100, 200);

    /* Forgotten: the store goes back to the (absent) file. */
    dsc_store_forget(f->st, &id);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 0, len),
                     DSC_ABSENT);
    assert_int_equal(dsc_store_read(f->st, &id, &rec, 0, buf, 100, 200),
                     DSC_ABSENT);
    free(buf);
    free(data);
}

static void test_small_fd_cache_bounded_and_correct(void **state)
{
    fixture *f = *state;
    enum { N = 5, LEN = 3000 };
    uint8_t *data[N];
    dsc_chunk_rec rec[N];
    dsc_chunk_id id[N];
    for (unsigned i = 0; i < N; i++) {
        data[i] = mkdata(100 + i, LEN);
        put_chunk(f->st, 100 + i, data[i], LEN, 1000 + i, &rec[i]);
        id[i] = mkid(100 + i);
    }
    uint8_t buf[LEN];
    int before = count_fds();
    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 2, &st2), 0);
    for (int round = 0; round < 4; round++) {
        for (unsigned i = 0; i < N; i++) {
            size_t off = (size_t)(round * 311 + (int)i * 7) % (LEN / 2);
            size_t n = round % 2 ? LEN / 3 : LEN - off;
            if (round == 0) {
                off = 0;
                n = LEN;
            }
            memset(buf, 0, sizeof buf);
            int rc = dsc_store_read(st2, &id[i], &rec[i], 0, buf, off, n);
            if (rc)
                fail_msg("round %d chunk %u: rc %d", round, i, rc);
            assert_memory_equal(buf, data[i] + off, n);
            int now = count_fds();
            /* 2 cached chunk files, and the store's data/ and tmp/ fds. */
            if (now > before + 2 + 2)
                fail_msg("round %d chunk %u: %d fds open, %d before", round,
                         i, now, before);
        }
    }
    /* The chunk read last is kept open: it survives its unlink. */
    char path[256];
    chunk_path(f->dir, 100 + N - 1, 1000 + N - 1, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(dsc_store_read(st2, &id[N - 1], &rec[N - 1], 0, buf, 0, LEN), 0);
    assert_memory_equal(buf, data[N - 1], LEN);
    dsc_store_free(st2);
    assert_int_equal(count_fds(), before);
    for (unsigned i = 0; i < N; i++)
        free(data[i]);
}

/* ---- temporary files --------------------------------------------------- */

/* A file in tmp/ last written two minutes ago (older than the sweep's
 * grace for a writer between create and lock). */
static void touch_file(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/tmp/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        fail_msg("create %s: %s", p, strerror(errno));
    assert_int_equal(write(fd, "junk", 4), 4);
    struct timespec old[2] = { { time(NULL) - 120, 0 }, { time(NULL) - 120, 0 } };
    assert_int_equal(futimens(fd, old), 0);
    close(fd);
}

static int tmp_exists(const char *dir, const char *name)
{
    char p[256];
    struct stat sb;
    snprintf(p, sizeof p, "%s/tmp/%s", dir, name);
    return stat(p, &sb) == 0;
}

/* A temporary file is in use while its writer holds its OFD lock, whatever
 * its name says (pids mean nothing across PID namespaces): unlocked ones
 * are debris and go, locked ones stay, even one named after a dead pid and
 * locked by another process. */
static void test_sweep_unlocked_tmp_files(void **state)
{
    fixture *f = *state;
    long dead = 999999;
    while (kill((pid_t)dead, 0) == 0 || errno != ESRCH)
        dead++;
    char dead_name[64], mine_name[64], init_name[64];
    snprintf(dead_name, sizeof dead_name, "%ld.1f.2a", dead);
    snprintf(mine_name, sizeof mine_name, "%ld.1f.2a", (long)getpid());
    snprintf(init_name, sizeof init_name, "1.3.4");
    touch_file(f->dir, dead_name);
    touch_file(f->dir, mine_name);
    touch_file(f->dir, init_name);
    /* In another process, a writer that holds its file locked. */
    char held_name[64];
    snprintf(held_name, sizeof held_name, "%ld.9.9", dead);
    touch_file(f->dir, held_name);
    int ready[2], done[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[256];
        snprintf(p, sizeof p, "%s/tmp/%s", f->dir, held_name);
        int fd = open(p, O_RDWR);
        struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char c = fd >= 0 && fcntl(fd, F_OFD_SETLK, &l) == 0 ? 'L' : 'E';
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    /* An in-flight write of this process, made by the API itself. */
    dsc_store_tmp live;
    assert_int_equal(dsc_store_write_tmp(f->st, "abc", 3, &live), 0);
    /* A symlink in tmp/ goes; what it points to stays. */
    char victim[256], link[256];
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    snprintf(link, sizeof link, "%s/tmp/777.1.2", f->dir);
    int vfd = open(victim, O_WRONLY | O_CREAT, 0600);
    assert_true(vfd >= 0);
    close(vfd);
    assert_int_equal(symlink(victim, link), 0);
    /* A name we never make is not ours to remove. */
    touch_file(f->dir, "notes.txt");
    /* A young unlocked file may be a writer between create and lock. */
    char young[256];
    snprintf(young, sizeof young, "%s/tmp/888.1.2", f->dir);
    int yfd = open(young, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(yfd >= 0);
    close(yfd);

    dsc_store *st2 = NULL;
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_false(tmp_exists(f->dir, dead_name));
    assert_false(tmp_exists(f->dir, mine_name));
    assert_false(tmp_exists(f->dir, init_name));
    assert_true(tmp_exists(f->dir, held_name));
    assert_true(tmp_exists(f->dir, live.name));
    struct stat sb;
    assert_int_equal(lstat(link, &sb), -1);
    assert_int_equal(stat(victim, &sb), 0);
    assert_true(tmp_exists(f->dir, "notes.txt"));
    assert_true(tmp_exists(f->dir, "888.1.2"));
    dsc_store_free(st2);
    assert_int_equal(write(done[1], "x", 1), 1);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* Its writer gone, the held file is debris for the next sweep. */
    assert_int_equal(dsc_store_open(f->dir, 4, &st2), 0);
    assert_false(tmp_exists(f->dir, held_name));
    assert_true(tmp_exists(f->dir, live.name));   /* still ours */
    dsc_store_free(st2);
    dsc_store_drop_tmp(f->st, &live);
    assert_false(tmp_exists(f->dir, live.name));
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(done[i]);
    }
}

static void test_write_tmp_without_tmp_dir(void **state)
{
    fixture *f = *state;
    char tmpdir[128];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", f->dir);
    assert_int_equal(rmdir(tmpdir), 0);
    dsc_store_tmp tmp;
    dsc_clear_error();
    assert_int_equal(dsc_store_write_tmp(f->st, "data", 4, &tmp), DSC_EIO);
    assert_errmsg_has(tmpdir);
    assert_errmsg_has(strerror(ENOENT));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_creates_private_dirs),
        T(test_open_missing_dir_fails),
        T(test_publish_places_private_file),
        T(test_publish_missing_tmp_fails),
        T(test_read_whole_and_part),
        T(test_changed_bytes_corrupt),
        T(test_trusting_read),
        T(test_openat2_refused_later),
        T(test_wrong_size_corrupt),
        T(test_missing_file),
        T(test_open_file_cache_serves_second_read),
        T(test_small_fd_cache_bounded_and_correct),
        T(test_sweep_unlocked_tmp_files),
        T(test_write_tmp_without_tmp_dir),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
