/* Ownership and symlink checks of the cache tree (see trust.h). */
#include <errno.h>
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

int dsc_trust_open_root(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dsc_fail(DSC_EIO, "cache directory %s: %s", dir, strerror(errno));
    int rc = dsc_trust_check_fd(fd, 1, dir);
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
