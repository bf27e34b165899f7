/* What several unit tests share: a check on the thread's error detail and
 * removal of a temporary directory tree. Include after <cmocka.h>. */
#ifndef DSC_UNITTEST_H
#define DSC_UNITTEST_H

#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dsc.h"

#define assert_errmsg_has(needle)                                          \
    do {                                                                   \
        const char *m_ = dsc_errmsg();                                     \
        if (!strstr(m_, (needle)))                                         \
            fail_msg("dsc_errmsg() is \"%s\"; expected it to contain "     \
                     "\"%s\"", m_, (needle));                              \
    } while (0)

static inline int unittest_rm_entry(const char *path, const struct stat *sb,
                                    int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

/* rm -r dir; 0 or -1. */
static inline int rm_tree(const char *dir)
{
    return nftw(dir, unittest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
