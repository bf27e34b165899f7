/* LMDB chunk index. Six databases in one environment:
 *   chunks:   chunk id (16 B)               -> dsc_chunk_rec
 *   lru:      be64 atime_ms ‖ chunk id      -> (empty)   eviction order
 *   meta:     xxh128(origin) ‖ bucket \0 key -> size, fetched_ms, etag
 *   meta_age: be64 fetched_ms ‖ xxh64(meta key) -> meta key (oldest first)
 *   info:     "info"                        -> dsc_index_info
 *             "counters"                    -> dsc_node_counters
 *   prefixes: bucket \0 prefix              -> bytes by source (index_stats.c)
 * LMDB gives one writer at a time across all processes, so the byte total
 * and the cap are exact however many processes insert at once. The map
 * starts at a size derived from the cap and doubles when full; every
 * process follows (MDB_MAP_RESIZED). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cache/index_db.h"
#include "cache/trust.h"
#include "core/atomic.h"
#include "core/fork.h"
#include "core/log.h"

/* The map grows by doubling up to this (unless told less); past it the
 * index is full. */
#define MAP_MAX ((size_t)1 << 40)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static dsc_index *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* A parent thread may have held the registry lock at fork(); the child's
 * entries of the parent's generation are skipped, never touched. */
static void registry_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    registry_lock = fresh;
}

static void registry_init(void)
{
    pthread_atfork(NULL, NULL, registry_after_fork);
}

uint64_t dsc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int dsc_ix_fail(int rc, const char *what, const char *path)
{
    int code = rc == ENOMEM ? DSC_ENOMEM : DSC_EIO;
    return dsc_fail(code, "cache index %s (%s): %s", what, path,
                    mdb_strerror(rc));
}

static size_t map_size(dsc_index *ix)
{
    MDB_envinfo info;
    mdb_env_info(ix->env, &info);
    return info.me_mapsize;
}

/* A remap unmaps first: when the new map cannot be made (an address-space
 * limit, RLIMIT_AS) the environment is left with none and must never be
 * touched again. Under the resize lock, held exclusively. */
static void remap_failed(dsc_index *ix, int rc)
{
    dsc_atomic_set(&ix->dead, 1);
    dsc_log(DSC_LOG_WARN, "cache index %s: cannot map it (%s); reading from S3 "
            "without the cache", ix->path, mdb_strerror(rc));
}

/* Another process grew the map: take its size (no transaction open). */
static void follow_map(dsc_index *ix)
{
    pthread_rwlock_wrlock(&ix->resize);
    int rc = dsc_atomic_get(&ix->dead) ? 0 : mdb_env_set_mapsize(ix->env, 0);
    if (rc)
        remap_failed(ix, rc);
    pthread_rwlock_unlock(&ix->resize);
}

static int refuse_dead(dsc_index *ix, const char *what)
{
    return dsc_fail(DSC_EIO, "cache index %s (%s): unusable since a remap "
                    "failed", what, ix->path);
}

int dsc_ix_begin(dsc_index *ix, unsigned flags, MDB_txn **txn, const char *what)
{
    int rc;
    for (;;) {
        pthread_rwlock_rdlock(&ix->resize);
        if (dsc_atomic_get(&ix->dead)) {
            pthread_rwlock_unlock(&ix->resize);
            return refuse_dead(ix, what);
        }
        rc = mdb_txn_begin(ix->env, NULL, flags, txn);
        if (rc != MDB_MAP_RESIZED)
            break;
        pthread_rwlock_unlock(&ix->resize);
        follow_map(ix);
    }
    if (rc == EAGAIN || rc == EACCES)
        /* LMDB keys reader slots by pid, locking the pid's byte of the
         * lock file: a process of the same pid in another PID namespace
         * (another container) holds ours. Without this line the cache
         * would silently never hit. */
        dsc_log_once(&ix->warned_pid, DSC_LOG_WARN, "cache index %s: no "
                     "reader slot (%s): a process with this pid in another "
                     "PID namespace uses the cache; every process sharing a "
                     "cache must share one PID namespace (Kubernetes: "
                     "hostPID: true); reading from S3 without the cache",
                     ix->path, mdb_strerror(rc));
    if (rc) {
        pthread_rwlock_unlock(&ix->resize);
        return dsc_ix_fail(rc, what, ix->path);
    }
    return 0;
}

void dsc_ix_abort(dsc_index *ix, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&ix->resize);
}

/* The oldest half of the metadata goes: a last resort when the map cannot
 * grow, since metadata only saves a HEAD. 1 when some went. */
static int shed_metadata(dsc_index *ix)
{
    MDB_txn *txn;
    MDB_stat st;
    uint64_t dropped = 0;
    if (dsc_ix_begin(ix, 0, &txn, "write"))
        return 0;
    int rc = mdb_stat(txn, ix->meta, &st);
    if (!rc)
        rc = dsc_ix_meta_trim(txn, ix, (st.ms_entries + 1) / 2, &dropped);
    if (rc) {
        dsc_ix_abort(ix, txn);
        return 0;
    }
    rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&ix->resize);
    if (rc == 0)
        dsc_counter_add(&ix->writes, 1);
    return rc == 0 && dropped > 0;
}

/* Whether a remap from seen to want bytes fits under an address-space
 * limit, with room to spare (the process's other mappings grow too). */
static int may_map(size_t seen, size_t want)
{
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) || as.rlim_cur == RLIM_INFINITY)
        return 1;
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    int ok = f && fscanf(f, "%lu", &pages) == 1;
    if (f)
        fclose(f);
    uint64_t vm = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    return ok && vm - seen + want + ((uint64_t)64 << 20) <= as.rlim_cur;
}

/* The map was full at `seen` bytes: double it (unless another thread did
 * meanwhile), else shed metadata, else fail loudly. DSC_RETRY or an
 * error. */
static int map_full(dsc_index *ix, size_t seen, const char *what)
{
    size_t now;
    int rc = 0;
    pthread_rwlock_wrlock(&ix->resize);
    if (dsc_atomic_get(&ix->dead)) {
        pthread_rwlock_unlock(&ix->resize);
        return refuse_dead(ix, what);
    }
    now = map_size(ix);
    size_t want = seen * 2 < ix->map_max ? seen * 2 : ix->map_max;
    if (now == seen && seen < ix->map_max && may_map(seen, want)) {
        rc = mdb_env_set_mapsize(ix->env, want);
        if (rc)   /* LMDB has unmapped the old map: nothing to go back to */
            remap_failed(ix, rc);
        if (!dsc_atomic_get(&ix->dead))
            now = map_size(ix);
    }
    pthread_rwlock_unlock(&ix->resize);
    if (dsc_atomic_get(&ix->dead))
        return refuse_dead(ix, what);
    if (now > seen) {
        dsc_log(DSC_LOG_INFO, "cache index %s: map grown to %zu MiB",
                ix->path, now >> 20);
        return DSC_RETRY;
    }
    if (shed_metadata(ix)) {
        dsc_log(DSC_LOG_WARN, "cache index %s: full at %zu MiB; dropped the "
                "oldest half of the object metadata", ix->path, now >> 20);
        return DSC_RETRY;
    }
    dsc_counter_add(&ix->full, 1);
    dsc_log_once(&ix->warned_full, DSC_LOG_WARN, "cache index %s is full at "
                 "%zu MiB and cannot grow (%s): new chunks are read from S3 "
                 "without caching", ix->path, now >> 20,
                 rc ? mdb_strerror(rc) : "at its largest");
    return dsc_fail(DSC_EIO, "cache index %s (%s): full at %zu MiB",
                    what, ix->path, now >> 20);
}

uint64_t dsc_index_writes(const dsc_index *ix)
{
    return dsc_counter_get(&ix->writes);
}

int dsc_ix_end(dsc_index *ix, MDB_txn *txn, int rc, const char *what)
{
    size_t seen = map_size(ix);
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&ix->resize);
    if (rc == 0)   /* read transactions end with dsc_ix_abort */
        dsc_counter_add(&ix->writes, 1);
    if (rc == MDB_MAP_FULL)
        return map_full(ix, seen, what);
    if (rc)
        return dsc_is_outcome(rc) ? rc : dsc_ix_fail(rc, what, ix->path);
    return 0;
}

static const char INFO_KEY[] = "info";

int dsc_ix_read_info(MDB_txn *txn, const dsc_index *ix, dsc_index_info *inf)
{
    MDB_val k = { sizeof INFO_KEY - 1, (void *)INFO_KEY }, v;
    int rc = mdb_get(txn, ix->info, &k, &v);
    memset(inf, 0, sizeof *inf);
    if (rc == MDB_NOTFOUND) {
        inf->format = DSC_INDEX_FORMAT;
        return 0;
    }
    if (rc)
        return rc;
    memcpy(inf, v.mv_data, v.mv_size < sizeof *inf ? v.mv_size : sizeof *inf);
    return 0;
}

int dsc_ix_write_info(MDB_txn *txn, const dsc_index *ix,
                      const dsc_index_info *inf)
{
    MDB_val k = { sizeof INFO_KEY - 1, (void *)INFO_KEY };
    MDB_val v = { sizeof *inf, (void *)inf };
    return mdb_put(txn, ix->info, &k, &v, 0);
}

/* An index of an older format names chunks by identities this libdsc no
 * longer makes (format 1 left the S3 endpoint out): reading them could
 * serve another endpoint's bytes, so every entry goes, in the same
 * transaction that writes the new format. */
static int drop_old_format(MDB_txn *txn, dsc_index *ix, dsc_index_info *inf)
{
    unsigned old = inf->format;
    int rc = mdb_drop(txn, ix->chunks, 0);
    if (!rc)
        rc = mdb_drop(txn, ix->lru, 0);
    if (!rc)
        rc = mdb_drop(txn, ix->meta, 0);
    if (!rc)
        rc = mdb_drop(txn, ix->meta_age, 0);
    if (rc)
        return rc;
    memset(inf, 0, sizeof *inf);
    inf->format = DSC_INDEX_FORMAT;
    dsc_log(DSC_LOG_WARN, "cache index %s: format %u of an older libdsc; its "
            "entries are dropped and its data files removed by the next sweep",
            ix->path, old);
    return 0;
}

/* The dropped entries' files are strays now: make the next context that
 * opens the cache sweep them (dir/last-clean is its hourly stamp). */
static void sweep_soon(const dsc_index *ix)
{
    dsc_buf stamp = { 0 };
    const char *slash = strrchr(ix->path, '/');
    if (!slash)
        return;
    dsc_buf_printf(&stamp, "%.*s/last-clean", (int)(slash - ix->path), ix->path);
    if (!dsc_buf_oom(&stamp))
        unlink(stamp.data);
    dsc_buf_free(&stamp);
}

/* Metadata and its age order must match entry for entry (an index made
 * before meta_age existed has none): else both are emptied, which costs
 * only HEADs. */
static int check_meta_age(MDB_txn *txn, dsc_index *ix)
{
    MDB_stat m, a;
    int rc = mdb_stat(txn, ix->meta, &m);
    if (!rc)
        rc = mdb_stat(txn, ix->meta_age, &a);
    if (rc || m.ms_entries == a.ms_entries)
        return rc;
    rc = mdb_drop(txn, ix->meta, 0);
    return rc ? rc : mdb_drop(txn, ix->meta_age, 0);
}

static const char BOOT_KEY[] = "boot";

/* The boot record, or zeros when there is none (or of another size). */
static int boot_get(MDB_txn *txn, const dsc_index *ix, dsc_index_boot *b)
{
    MDB_val k = { sizeof BOOT_KEY - 1, (void *)BOOT_KEY }, v;
    int rc = mdb_get(txn, ix->info, &k, &v);
    memset(b, 0, sizeof *b);
    if (rc == 0 && v.mv_size == sizeof *b)
        memcpy(b, v.mv_data, sizeof *b);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int boot_put(MDB_txn *txn, const dsc_index *ix, const dsc_index_boot *b)
{
    MDB_val k = { sizeof BOOT_KEY - 1, (void *)BOOT_KEY };
    MDB_val v = { sizeof *b, (void *)b };
    return mdb_put(txn, ix->info, &k, &v, 0);
}

/* The first open after a boot starts its trust window past every insert
 * before it, even one stamped by a clock that ran ahead then. Without a
 * boot id nothing is trusted. */
static int note_boot(MDB_txn *txn, dsc_index *ix)
{
    uint8_t boot[16];
    dsc_index_boot b;
    ix->trust_from_ms = UINT64_MAX;
    int rc = boot_get(txn, ix, &b);
    if (rc || dsc_boot_id(boot))
        return rc;
    if (memcmp(boot, b.boot_id, sizeof boot) != 0 || !b.trust_from_ms) {
        uint64_t now = dsc_wall_ms();
        memcpy(b.boot_id, boot, sizeof boot);
        b.trust_from_ms = now > b.newest_insert_ms ? now : b.newest_insert_ms + 1;
        rc = boot_put(txn, ix, &b);
    }
    if (!rc)
        ix->trust_from_ms = b.trust_from_ms;
    return rc;
}

/* Every insert moves newest_insert_ms, the next boot's lower bound. */
static int note_insert(MDB_txn *txn, const dsc_index *ix, uint64_t ctime_ms)
{
    dsc_index_boot b;
    int rc = boot_get(txn, ix, &b);
    if (rc || ctime_ms <= b.newest_insert_ms)
        return rc;
    b.newest_insert_ms = ctime_ms;
    return boot_put(txn, ix, &b);
}

uint64_t dsc_index_trust_from(const dsc_index *ix)
{
    return ix->trust_from_ms;
}

static int open_env(dsc_index *ix, const dsc_index_opts *o)
{
    int rc = mdb_env_create(&ix->env);
    if (rc)
        return dsc_ix_fail(rc, "create", ix->path);
    mdb_env_set_maxdbs(ix->env, 8);
    mdb_env_set_maxreaders(ix->env, o->max_readers ? o->max_readers : 4096);
    /* Address space, not disk: the file grows only as entries are added.
     * A larger size another process already grew to is kept. */
    size_t start = o->map_size ? o->map_size : (size_t)1 << 30;
    mdb_env_set_mapsize(ix->env, start < ix->map_max ? start : ix->map_max);
    /* Without sync a kill -9 still leaves a consistent index (the OS has
     * the pages); only a power loss could hurt it, and then the cache is
     * rebuilt. DSC_CACHE_SYNC=1 buys durability with an fsync per write.
     * MDB_NOTLS: a reader slot belongs to a transaction, not a thread, so
     * a process of many threads uses only as many as read at once. */
    unsigned flags = MDB_NORDAHEAD | MDB_NOTLS |
                     (o->sync ? MDB_NOMETASYNC : MDB_NOSYNC);
    rc = mdb_env_open(ix->env, ix->path, flags, 0600);
    if (rc)
        return dsc_ix_fail(rc, "open", ix->path);
    int dead = 0;
    mdb_reader_check(ix->env, &dead);   /* slots of killed processes */
    MDB_txn *txn;
    rc = dsc_ix_begin(ix, 0, &txn, "begin");
    if (rc)
        return rc;
    rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &ix->chunks);
    if (!rc) rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &ix->lru);
    if (!rc) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta);
    if (!rc) rc = mdb_dbi_open(txn, "meta_age", MDB_CREATE, &ix->meta_age);
    if (!rc) rc = mdb_dbi_open(txn, "info", MDB_CREATE, &ix->info);
    if (!rc) rc = mdb_dbi_open(txn, "prefixes", MDB_CREATE, &ix->prefixes);
    if (!rc) rc = check_meta_age(txn, ix);
    dsc_index_info inf;
    if (!rc)
        rc = dsc_ix_read_info(txn, ix, &inf);
    if (!rc && inf.format > DSC_INDEX_FORMAT) {
        dsc_ix_abort(ix, txn);
        return dsc_fail(DSC_EIO, "cache index %s has format %u, newer than "
                        "this libdsc's %u: use the newer libdsc or another "
                        "cache directory", ix->path, inf.format,
                        DSC_INDEX_FORMAT);
    }
    int dropped = !rc && inf.format < DSC_INDEX_FORMAT;
    if (dropped)
        rc = drop_old_format(txn, ix, &inf);
    if (!rc)
        rc = note_boot(txn, ix);
    if (!rc)
        rc = dsc_ix_write_info(txn, ix, &inf);
    rc = dsc_ix_end(ix, txn, rc, "setup");
    if (!rc && dropped)
        sweep_soon(ix);
    return rc;
}

/* dir and dir/index are ours, and so are LMDB's files when they exist:
 * LMDB opens them by path, which is safe only in a tree no one else can
 * change. */
static int check_tree(const char *dir)
{
    int root = dsc_trust_open_root(dir);
    if (root < 0)
        return root;
    dsc_buf shown = { 0 };
    dsc_buf_printf(&shown, "%s/index", dir);
    if (dsc_buf_oom(&shown)) {
        close(root);
        return DSC_ENOMEM;
    }
    int ixd = dsc_trust_open_dir(root, "index", 1, shown.data);
    close(root);
    int rc = ixd < 0 ? ixd : 0;
    if (!rc) {
        dsc_buf_adds(&shown, "/data.mdb");
        rc = dsc_trust_check_at(ixd, "data.mdb", 0, shown.data);
    }
    if (!rc) {
        shown.len -= strlen("data.mdb");
        dsc_buf_adds(&shown, "lock.mdb");
        rc = dsc_trust_check_at(ixd, "lock.mdb", 0, shown.data);
    }
    if (ixd >= 0)
        close(ixd);
    dsc_buf_free(&shown);
    return rc;
}

int dsc_index_open(const char *dir, int sync, dsc_index **out)
{
    dsc_index_opts o = { .sync = sync };
    return dsc_index_open_opts(dir, &o, out);
}

static void index_free(dsc_index *ix)
{
    if (ix->env)
        mdb_env_close(ix->env);
    dsc_flight_free(ix->flight);
    pthread_rwlock_destroy(&ix->resize);
    free(ix->path);
    free(ix);
}

int dsc_index_open_opts(const char *dir, const dsc_index_opts *o, dsc_index **out)
{
    int rc = check_tree(dir);
    if (rc)
        return rc;
    dsc_buf path = { 0 };
    if (dsc_buf_printf(&path, "%s/index", dir))
        return DSC_ENOMEM;
    char real[PATH_MAX];
    if (!realpath(path.data, real)) {
        int e = errno;
        dsc_buf_free(&path);
        return dsc_fail(DSC_EIO, "%s/index: %s", dir, strerror(e));
    }
    dsc_buf_free(&path);
    unsigned gen = dsc_fork_generation();
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    /* LMDB forbids opening one environment twice in a process (closing
     * one would drop the other's locks), so contexts share it. */
    dsc_index *ix;
    for (ix = registry; ix; ix = ix->next)
        if (ix->fork_gen == gen && strcmp(ix->path, real) == 0)
            break;
    if (ix) {
        ix->refs++;
    } else {
        ix = calloc(1, sizeof *ix);
        if (!ix || !(ix->path = dsc_strdup(real))) {
            free(ix);
            rc = DSC_ENOMEM;
        } else {
            ix->fork_gen = gen;
            ix->refs = 1;
            ix->meta_max = o->meta_max ? o->meta_max : 2000000;
            ix->map_max = o->map_max ? o->map_max : MAP_MAX;
            /* Under an address-space limit (ulimit -v, common on HPC
             * schedulers) a map may take a quarter of it at most: a remap
             * that fails leaves the index unusable. */
            struct rlimit as;
            if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY &&
                ix->map_max > as.rlim_cur / 4)
                ix->map_max = as.rlim_cur / 4;
            /* Writers first: a stream of readers must not starve a grow. */
            pthread_rwlockattr_t ra;
            pthread_rwlockattr_init(&ra);
            pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
            pthread_rwlock_init(&ix->resize, &ra);
            pthread_rwlockattr_destroy(&ra);
            rc = open_env(ix, o);
            if (!rc)
                rc = dsc_flight_new(dir, &ix->flight);
            if (rc) {
                index_free(ix);
            } else {
                ix->next = registry;
                registry = ix;
            }
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (!rc)
        *out = ix;
    return rc;
}

void dsc_index_release(dsc_index *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&registry_lock);
    if (ix->fork_gen != dsc_fork_generation()) {
        /* The parent's environment: not ours to close. */
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    if (--ix->refs == 0) {
        dsc_index **pp = &registry;
        while (*pp && *pp != ix)
            pp = &(*pp)->next;
        if (*pp)
            *pp = ix->next;
        index_free(ix);
    }
    pthread_mutex_unlock(&registry_lock);
}

dsc_flight *dsc_index_flight(dsc_index *ix)
{
    return ix->flight;
}

int dsc_index_get(dsc_index *ix, const dsc_chunk_id *id, dsc_chunk_rec *rec)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, MDB_RDONLY, &txn, "read");
    if (rc)
        return rc;
    MDB_val k = { sizeof *id, (void *)id }, v;
    rc = mdb_get(txn, ix->chunks, &k, &v);
    int ret;
    if (rc == MDB_NOTFOUND) {
        ret = DSC_ABSENT;
    } else if (rc) {
        ret = dsc_ix_fail(rc, "get", ix->path);
    } else if (v.mv_size != sizeof *rec) {
        ret = DSC_ABSENT;   /* not a record we wrote */
    } else {
        memcpy(rec, v.mv_data, sizeof *rec);
        ret = 0;
    }
    dsc_ix_abort(ix, txn);
    return ret;
}

static void lru_key(uint8_t out[24], uint64_t atime, const dsc_chunk_id *id)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(atime >> (56 - 8 * i));
    memcpy(out + 8, id->b, 16);
}

/* Delete one entry (chunk + lru) inside txn, adjusting the totals. */
static int drop_entry(MDB_txn *txn, dsc_index *ix, const dsc_chunk_id *id,
                      const dsc_chunk_rec *rec, dsc_index_info *inf)
{
    uint8_t lk[24];
    lru_key(lk, rec->atime_ms, id);
    MDB_val k = { sizeof *id, (void *)id };
    MDB_val l = { sizeof lk, lk };
    int rc = mdb_del(txn, ix->chunks, &k, NULL);
    if (!rc) {
        rc = mdb_del(txn, ix->lru, &l, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc) {
        inf->bytes -= rec->size <= inf->bytes ? rec->size : inf->bytes;
        inf->chunks -= inf->chunks ? 1 : 0;
    }
    return rc;
}

/* Choose and delete victims, oldest access first, until `need` bytes are
 * free. 0 when enough was freed, DSC_NOT_ADMITTED when the policy says
 * no, else an LMDB error. */
static int evict(MDB_txn *txn, dsc_index *ix, dsc_admit *ad, uint64_t need,
                 dsc_index_info *inf)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, ix->lru, &cur);
    if (rc)
        return rc;
    uint64_t now = dsc_wall_ms();
    uint64_t freed = 0;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    /* Walk the oldest entries first; decide before deleting anything, so
     * a refusal leaves the index untouched. */
    while (freed < need && ad->nvictims < ad->max_victims) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc)
            break;
        if (k.mv_size != 24)
            continue;
        uint64_t atime = 0;
        for (int i = 0; i < 8; i++)
            atime = (atime << 8) | ((uint8_t *)k.mv_data)[i];
        /* minio: the oldest entry is still in use, so keep the set. A
         * time ahead of ours (another host's clock) counts as recent. */
        if (ad->policy == DSC_POLICY_MINIO &&
            (atime > now || now - atime < ad->idle_ms))
            break;
        dsc_victim *vi = &ad->victims[ad->nvictims++];
        memcpy(vi->id.b, (uint8_t *)k.mv_data + 8, 16);
        vi->atime_ms = atime;
        vi->seq = 0;
        MDB_val ck = { sizeof vi->id, &vi->id }, cv;
        if (mdb_get(txn, ix->chunks, &ck, &cv) == 0 &&
            cv.mv_size == sizeof(dsc_chunk_rec)) {
            dsc_chunk_rec rec;
            memcpy(&rec, cv.mv_data, sizeof rec);
            if (rec.atime_ms == atime) {
                vi->seq = rec.seq;
                freed += rec.size;
            }
        }
    }
    mdb_cursor_close(cur);
    if (freed < need && !ad->partial) {
        ad->nvictims = 0;
        return DSC_NOT_ADMITTED;
    }
    for (size_t i = 0; i < ad->nvictims; i++) {
        dsc_victim *vi = &ad->victims[i];
        uint8_t lk[24];
        lru_key(lk, vi->atime_ms, &vi->id);
        MDB_val l = { sizeof lk, lk };
        if (!vi->seq) {
            /* An lru key whose chunk is gone or newer: just tidy it. */
            rc = mdb_del(txn, ix->lru, &l, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
            continue;
        }
        MDB_val ck = { sizeof vi->id, &vi->id }, cv;
        if (mdb_get(txn, ix->chunks, &ck, &cv) == 0) {
            dsc_chunk_rec rec;
            memcpy(&rec, cv.mv_data, sizeof rec);
            rc = drop_entry(txn, ix, &vi->id, &rec, inf);
            if (rc)
                return rc;
            inf->evictions++;
        }
    }
    return 0;
}

/* Put rec and its lru key for id and count it, inside txn. */
static int put_entry(MDB_txn *txn, dsc_index *ix, const dsc_chunk_id *id,
                     const dsc_chunk_rec *rec, dsc_index_info *inf)
{
    MDB_val k = { sizeof *id, (void *)id };
    MDB_val v = { sizeof *rec, (void *)rec };
    int rc = mdb_put(txn, ix->chunks, &k, &v, 0);
    if (rc)
        return rc;
    uint8_t lk[24];
    lru_key(lk, rec->atime_ms, id);
    MDB_val l = { sizeof lk, lk }, e = { 0, NULL };
    rc = mdb_put(txn, ix->lru, &l, &e, 0);
    if (rc)
        return rc;
    inf->bytes += rec->size;
    inf->chunks++;
    inf->inserts++;
    return 0;
}

static int insert_once(dsc_index *ix, const dsc_chunk_id *id,
                       const dsc_chunk_rec *rec, dsc_admit *ad)
{
    ad->nvictims = 0;
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    dsc_index_info inf;
    MDB_val k = { sizeof *id, (void *)id }, v;
    rc = dsc_ix_read_info(txn, ix, &inf);
    /* The cache's own cap, read in the transaction that enforces it:
     * every process keeps to the same one. */
    uint64_t cap = dsc_index_effective_cap(&inf, ad->cap);
    inf.cap = cap;
    if (rc)
        goto done;
    if (mdb_get(txn, ix->chunks, &k, &v) == 0) {
        rc = DSC_EXISTS;
        goto done;
    }
    if (rec->size > cap)
        rc = DSC_NOT_ADMITTED;
    else if (inf.bytes + rec->size > cap)
        rc = evict(txn, ix, ad, inf.bytes + rec->size - cap, &inf);
    if (rc == DSC_NOT_ADMITTED) {
        /* Count it, change nothing else. */
        inf.rejected++;
        inf.misses++;
        rc = dsc_ix_write_info(txn, ix, &inf);
        rc = dsc_ix_end(ix, txn, rc, "commit");
        return rc ? rc : DSC_NOT_ADMITTED;
    }
    if (!rc)
        rc = put_entry(txn, ix, id, rec, &inf);
    if (!rc)
        rc = note_insert(txn, ix, rec->ctime_ms);
    if (!rc) {
        inf.misses++;
        rc = dsc_ix_write_info(txn, ix, &inf);
    }
done:
    rc = dsc_ix_end(ix, txn, rc, "insert");
    if (rc)
        ad->nvictims = 0;   /* nothing was evicted after all */
    return rc;
}

uint64_t dsc_index_effective_cap(const dsc_index_info *inf, uint64_t fallback)
{
    uint64_t cap = inf->capacity ? inf->capacity : fallback;
    return inf->disk_cap && inf->disk_cap < cap ? inf->disk_cap : cap;
}

static int capacity_once(dsc_index *ix, uint64_t want, int force,
                         dsc_index_info *out)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    rc = dsc_ix_read_info(txn, ix, out);
    if (!rc && (force || !out->capacity)) {
        out->capacity = want ? want : out->cap ? out->cap : (uint64_t)10 << 30;
        if (force)
            out->disk_cap = 0;
        rc = dsc_ix_write_info(txn, ix, out);
    }
    return dsc_ix_end(ix, txn, rc, "capacity");
}

int dsc_index_capacity(dsc_index *ix, uint64_t want, int force,
                       dsc_index_info *out)
{
    int rc;
    while ((rc = capacity_once(ix, want, force, out)) == DSC_RETRY)
        ;
    return rc;
}

static int shrink_once(dsc_index *ix, uint64_t disk_cap, dsc_admit *ad,
                       uint64_t *left)
{
    ad->nvictims = 0;
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    dsc_index_info inf;
    rc = dsc_ix_read_info(txn, ix, &inf);
    if (!rc && disk_cap != UINT64_MAX)
        inf.disk_cap = disk_cap;
    uint64_t cap = dsc_index_effective_cap(&inf, ad->cap);
    if (!rc && inf.bytes > cap) {
        /* Room is needed whatever the policy says: oldest first. */
        dsc_admit lru = *ad;
        lru.policy = DSC_POLICY_LRU;
        lru.partial = 1;
        rc = evict(txn, ix, &lru, inf.bytes - cap, &inf);
        ad->nvictims = lru.nvictims;
    }
    if (!rc) {
        inf.cap = cap;
        rc = dsc_ix_write_info(txn, ix, &inf);
    }
    *left = inf.bytes > cap ? inf.bytes - cap : 0;
    rc = dsc_ix_end(ix, txn, rc, "shrink");
    if (rc)
        ad->nvictims = 0;
    return rc;
}

int dsc_index_shrink(dsc_index *ix, uint64_t disk_cap, dsc_admit *ad,
                     uint64_t *left)
{
    int rc;
    while ((rc = shrink_once(ix, disk_cap, ad, left)) == DSC_RETRY)
        ;
    return rc;
}

static int remove_once(dsc_index *ix, const dsc_chunk_id *id, uint64_t seq,
                       int corrupt)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    MDB_val k = { sizeof *id, (void *)id }, v;
    dsc_index_info inf;
    rc = dsc_ix_read_info(txn, ix, &inf);
    if (!rc && mdb_get(txn, ix->chunks, &k, &v) == 0 &&
        v.mv_size == sizeof(dsc_chunk_rec)) {
        dsc_chunk_rec rec;
        memcpy(&rec, v.mv_data, sizeof rec);
        if (rec.seq == seq) {
            rc = drop_entry(txn, ix, id, &rec, &inf);
            if (!rc && corrupt)
                inf.corrupt++;
            if (!rc)
                rc = dsc_ix_write_info(txn, ix, &inf);
        }
    }
    return dsc_ix_end(ix, txn, rc, "remove");
}

static int flush_once(dsc_index *ix, const dsc_flush *f)
{
    const dsc_chunk_id *ids = f->ids;
    size_t n = f->nids;
    uint64_t now_ms = f->now_ms;
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, 0, &txn, "write");
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        MDB_val k = { sizeof ids[i], (void *)&ids[i] }, v;
        if (mdb_get(txn, ix->chunks, &k, &v) || v.mv_size != sizeof(dsc_chunk_rec))
            continue;
        dsc_chunk_rec rec;
        memcpy(&rec, v.mv_data, sizeof rec);
        if (rec.atime_ms >= now_ms)
            continue;
        uint8_t lk[24];
        lru_key(lk, rec.atime_ms, &ids[i]);
        MDB_val l = { sizeof lk, lk };
        rc = mdb_del(txn, ix->lru, &l, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc)
            break;
        rec.atime_ms = now_ms;
        lru_key(lk, rec.atime_ms, &ids[i]);
        MDB_val e = { 0, NULL };
        v.mv_size = sizeof rec;
        v.mv_data = &rec;
        rc = mdb_put(txn, ix->chunks, &k, &v, 0);
        if (!rc)
            rc = mdb_put(txn, ix->lru, &l, &e, 0);
    }
    dsc_index_info inf;
    if (!rc && (f->hits || f->misses)) {
        rc = dsc_ix_read_info(txn, ix, &inf);
        inf.hits += f->hits;
        inf.misses += f->misses;
        if (!rc)
            rc = dsc_ix_write_info(txn, ix, &inf);
    }
    if (!rc)
        rc = dsc_ix_counters_add(txn, ix, f);
    return dsc_ix_end(ix, txn, rc, "touch");
}

/* Writes run again after the map grew (DSC_RETRY): a bounded loop, since
 * the map only grows to map_max and metadata only sheds what it has. */
int dsc_index_insert(dsc_index *ix, const dsc_chunk_id *id,
                     const dsc_chunk_rec *rec, dsc_admit *ad)
{
    int rc;
    while ((rc = insert_once(ix, id, rec, ad)) == DSC_RETRY)
        ;
    return rc;
}

int dsc_index_remove(dsc_index *ix, const dsc_chunk_id *id, uint64_t seq,
                     int corrupt)
{
    int rc;
    while ((rc = remove_once(ix, id, seq, corrupt)) == DSC_RETRY)
        ;
    return rc;
}

int dsc_index_flush(dsc_index *ix, const dsc_flush *f)
{
    int rc;
    while ((rc = flush_once(ix, f)) == DSC_RETRY)
        ;
    return rc;
}

int dsc_index_touch(dsc_index *ix, const dsc_chunk_id *ids, size_t n,
                    uint64_t now_ms, uint64_t hits, uint64_t misses)
{
    dsc_flush f = { .ids = ids, .nids = n, .now_ms = now_ms, .hits = hits,
                    .misses = misses };
    return dsc_index_flush(ix, &f);
}

int dsc_index_map_info(dsc_index *ix, uint64_t *map_bytes, uint64_t *used_bytes,
                       uint64_t *full)
{
    MDB_envinfo info;
    MDB_stat st;
    pthread_rwlock_rdlock(&ix->resize);
    if (dsc_atomic_get(&ix->dead)) {
        pthread_rwlock_unlock(&ix->resize);
        return refuse_dead(ix, "info");
    }
    int rc = mdb_env_info(ix->env, &info);
    if (!rc)
        rc = mdb_env_stat(ix->env, &st);
    pthread_rwlock_unlock(&ix->resize);
    if (rc)
        return dsc_ix_fail(rc, "info", ix->path);
    *full = dsc_counter_get(&ix->full);
    *map_bytes = info.me_mapsize;
    *used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    return 0;
}

int dsc_index_info_get(dsc_index *ix, dsc_index_info *out)
{
    MDB_txn *txn;
    int rc = dsc_ix_begin(ix, MDB_RDONLY, &txn, "read");
    if (rc)
        return rc;
    rc = dsc_ix_read_info(txn, ix, out);
    dsc_ix_abort(ix, txn);
    return rc ? dsc_ix_fail(rc, "info", ix->path) : 0;
}

