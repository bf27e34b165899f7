/* The cache directory is one trust domain: it belongs to this process's
 * effective uid and nobody else can write in it. Every part of the tree
 * is checked when opened, and opened without following a symlink, so a
 * tree someone else owns or can write to is refused (reads then go to S3)
 * and nothing inside is ever taken for a path elsewhere. */
#ifndef DSC_CACHE_TRUST_H
#define DSC_CACHE_TRUST_H

/* Open the cache root dir (following a symlink given as the root itself:
 * the operator's choice) and check it is ours. An O_DIRECTORY fd, or a
 * negative DSC_E* code with the reason. */
int dsc_trust_open_root(const char *dir);

/* Open (creating with 0700 when create is set) directory name under
 * parent, never through a symlink, and check it is ours. `shown` names it
 * in messages. An fd or a negative DSC_E* code. */
int dsc_trust_open_dir(int parent, const char *name, int create,
                       const char *shown);

/* Check an open fd: of the kind wanted (1: directory, 0: regular file),
 * owned by the effective uid, not writable by group or others. 0 or
 * DSC_EACCESS naming `shown`. */
int dsc_trust_check_fd(int fd, int want_dir, const char *shown);

/* Check name under parent without following it, when it exists: 0 when
 * absent or ours; DSC_EACCESS otherwise (a symlink, someone else's, or
 * writable by others). */
int dsc_trust_check_at(int parent, const char *name, int want_dir,
                       const char *shown);

#endif
