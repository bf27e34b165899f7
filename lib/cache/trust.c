/* Ownership and symlink checks of the cache tree (see trust.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "cache/trust.h"
#include "core/common.h"

static int judge(const struct stat *sb, int want_dir, const char *shown)
{
    if (S_ISLNK(sb->st_mode))
        return dsc_fail(DSC_EACCESS, "cache %s is a symlink: refusing to "
                        "follow it", shown);
    if (want_dir ? !S_ISDIR(sb->st_mode) : !S_ISREG(sb->st_mode))
        return dsc_fail(DSC_EIO, "cache %s is not a %s", shown,
                        want_dir ? "directory" : "regular file");
    if (sb->st_uid != geteuid())
        return dsc_fail(DSC_EACCESS, "cache %s belongs to uid %u, not to this "
                        "process's uid %u: refusing it (one cache directory "
                        "per user, or one service user for the node)", shown,
                        (unsigned)sb->st_uid, (unsigned)geteuid());
    if (sb->st_mode & (S_IWGRP | S_IWOTH))
        return dsc_fail(DSC_EACCESS, "cache %s is writable by %s (mode %03o): "
                        "refusing it; chmod go-w it", shown,
                        (sb->st_mode & S_IWOTH) ? "others" : "its group",
                        (unsigned)(sb->st_mode & 0777));
    return 0;
}

int dsc_trust_check_fd(int fd, int want_dir, const char *shown)
{
    struct stat sb;
    if (fstat(fd, &sb))
        return dsc_fail(DSC_EIO, "cache %s: %s", shown, strerror(errno));
    return judge(&sb, want_dir, shown);
}

int dsc_trust_check_at(int parent, const char *name, int want_dir,
                       const char *shown)
{
    struct stat sb;
    if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW))
        return errno == ENOENT ? 0 : dsc_fail(DSC_EIO, "cache %s: %s", shown,
                                               strerror(errno));
    return judge(&sb, want_dir, shown);
}

/* A directory above the cache: only root or this uid may change it (or
 * it is sticky, as /tmp), else whoever can could swap the cache's path
 * for a link to any directory of ours (as ssh's StrictModes). */
static int check_ancestor(const char *path)
{
    struct stat sb;
    if (stat(path, &sb))
        return dsc_fail(DSC_EIO, "cache directory: %s: %s", path, strerror(errno));
    if (sb.st_uid != 0 && sb.st_uid != geteuid())
        return dsc_fail(DSC_EACCESS, "cache directory lies under %s, which "
                        "belongs to uid %u: refusing it (someone else could "
                        "swap the cache's path)", path, (unsigned)sb.st_uid);
    if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX))
        return dsc_fail(DSC_EACCESS, "cache directory lies under %s, which is "
                        "writable by %s (mode %03o) and not sticky: refusing it",
                        path, (sb.st_mode & S_IWOTH) ? "others" : "its group",
                        (unsigned)(sb.st_mode & 0777));
    return 0;
}

/* Every directory above dir, as written and as resolved. */
static int check_ancestors(const char *dir)
{
    char real[PATH_MAX], lex[2 * PATH_MAX + 2];
    const char *paths[2] = { lex, real };
    if (!realpath(dir, real))
        return dsc_fail(DSC_EIO, "cache directory %s: %s", dir, strerror(errno));
    if (dir[0] == '/') {
        snprintf(lex, sizeof lex, "%s", dir);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return dsc_fail(DSC_EIO, "getcwd: %s", strerror(errno));
        if ((size_t)snprintf(lex, sizeof lex, "%s/%s", cwd, dir) >= sizeof lex)
            return dsc_fail(DSC_EINVAL, "cache directory path too long");
    }
    for (int k = 0; k < 2; k++) {
        char p[sizeof lex];
        snprintf(p, sizeof p, "%s", paths[k]);
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
            p[--n] = '\0';
        /* Each proper prefix ending before a '/', then "/". */
        for (char *s = strrchr(p, '/'); s; s = strrchr(p, '/')) {
            if (s == p) {
                int rc = check_ancestor("/");
                if (rc)
                    return rc;
                break;
            }
            *s = '\0';
            int rc = check_ancestor(p);
            if (rc)
                return rc;
        }
    }
    return 0;
}

#define MARKER ".dsc-cache"

/* Is root a libdsc cache? It has our marker; or it is empty (new: the
 * marker is written); or it has an index of an older libdsc (the marker
 * is written). Anything else is someone's directory: sweeping it would
 * delete their files. */
static int check_marker(int root, const char *dir)
{
    int rc = dsc_trust_check_at(root, MARKER, 0, MARKER);
    if (rc)
        return rc;
    struct stat sb;
    if (fstatat(root, MARKER, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    int dfd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    int empty = 1;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    if (d)
        closedir(d);
    else if (dfd >= 0)
        close(dfd);
    int legacy = fstatat(root, "index/data.mdb", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISREG(sb.st_mode);
    /* Another process making the same new cache may have written the
     * marker since we looked (it is the first thing any of us writes). */
    if (!empty && !legacy && fstatat(root, MARKER, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        return dsc_trust_check_at(root, MARKER, 0, MARKER);
    if (!empty && !legacy)
        return dsc_fail(DSC_EACCESS, "%s is not a libdsc cache directory (no %s, "
                        "not empty): refusing to use it, its sweeps would "
                        "delete files; use a new or empty directory", dir, MARKER);
    int fd = openat(root, MARKER, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                    O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
        return dsc_fail(DSC_EIO, "cache %s/%s: %s", dir, MARKER, strerror(errno));
    if (fd >= 0)
        close(fd);
    return 0;
}

int dsc_trust_open_root(const char *dir)
{
    int rc = check_ancestors(dir);
    if (rc)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dsc_fail(DSC_EIO, "cache directory %s: %s", dir, strerror(errno));
    rc = dsc_trust_check_fd(fd, 1, dir);
    if (!rc)
        rc = check_marker(fd, dir);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

int dsc_trust_open_dir(int parent, const char *name, int create,
                       const char *shown)
{
    if (create && mkdirat(parent, name, 0700) && errno != EEXIST)
        return dsc_fail(DSC_EIO, "cannot create cache %s: %s", shown,
                        strerror(errno));
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        /* ELOOP / ENOTDIR: a symlink or a file where a directory belongs. */
        if (e == ELOOP || e == ENOTDIR) {
            int rc = dsc_trust_check_at(parent, name, 1, shown);
            return rc ? rc : dsc_fail(DSC_EIO, "cache %s is not a directory", shown);
        }
        return dsc_fail(DSC_EIO, "cache %s: %s", shown,
                        strerror(e));
    }
    int rc = dsc_trust_check_fd(fd, 1, shown);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}
