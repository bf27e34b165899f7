/*
 * dsc.h - libdsc: cached reading of datasets stored in S3.
 *
 * libdsc lets a dataloader read s3://bucket/key objects with pread-style
 * calls. Objects are addressed by URL, opened once (one HEAD), and read in
 * ranges. This header is the whole public interface; every other header of
 * the project is internal.
 *
 * Conventions
 *   - Every function that can fail returns an int (or a signed size) that is
 *     negative on failure: one of the DSC_E* codes below. dsc_strerror()
 *     names the code; dsc_errmsg() returns a thread-local detail message
 *     (S3 error code and request id, failing URL or path) describing the
 *     most recent failure on the calling thread.
 *   - Handles are opaque. A handle returned through an out-parameter is owned
 *     by the caller and released with its matching close function.
 *   - Strings passed in are copied; the library keeps no pointer to caller
 *     memory after a call returns (except callback arguments during the call).
 *
 * Thread safety
 *   - A dsc_ctx may be shared by any number of threads; it pools connections
 *     for all of them.
 *   - A dsc_file may be used by several threads at once with dsc_pread().
 *     dsc_read() and dsc_seek() share the file's position and must not race
 *     with each other on one handle (as with read(2)/lseek(2) on one fd).
 *
 * Fork
 *   - A context (and its open files) made before fork() keeps working in
 *     the parent and in the children, as PyTorch DataLoader workers need:
 *     on first use in a child, libdsc re-opens the cache index, its
 *     connections, locks and fetcher threads there, leaving the parent's
 *     alone. Do not fork() while another thread of the parent is inside a
 *     libdsc call if the child will use libdsc.
 *   - Access times and hit counters are batched (about a second) and
 *     written by dsc_stats_get() and dsc_ctx_close(): a child that ends
 *     with _exit() should close its contexts first.
 *
 * ABI
 *   - dsc_config, dsc_stats and dsc_snapshot_summary only ever grow at
 *     the end; the version field of dsc_config (and the size passed to
 *     dsc_stats_get and dsc_snapshot_summarize) tells the library how much
 *     of the struct the caller knows.
 */
#ifndef DSC_H
#define DSC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define DSC_API __attribute__((visibility("default")))
#else
#define DSC_API
#endif

/* ---- Version ------------------------------------------------------------ */

#define DSC_VERSION_MAJOR 0
#define DSC_VERSION_MINOR 1
#define DSC_VERSION_PATCH 0
#define DSC_VERSION_NUMBER \
    (DSC_VERSION_MAJOR * 10000 + DSC_VERSION_MINOR * 100 + DSC_VERSION_PATCH)
#define DSC_VERSION_STRING "0.1.0"

/** Version of the library actually linked, as DSC_VERSION_NUMBER. */
DSC_API unsigned dsc_version_number(void);
/** Version of the library actually linked, as "MAJOR.MINOR.PATCH". Static. */
DSC_API const char *dsc_version_string(void);

/* ---- Errors ------------------------------------------------------------- */

#define DSC_OK          0
#define DSC_EINVAL     -1  /**< invalid argument or configuration value */
#define DSC_ENOMEM     -2  /**< out of memory */
#define DSC_EURL       -3  /**< malformed s3:// URL or endpoint URL */
#define DSC_ENOTFOUND  -4  /**< no such key or bucket (S3 404) */
#define DSC_EACCESS    -5  /**< denied: 403, unknown key id, bad signature */
#define DSC_ECREDS     -6  /**< credentials missing or unreadable */
#define DSC_ETIMEDOUT  -7  /**< a configured timeout expired (after retries) */
#define DSC_ENET       -8  /**< connection failed or was reset (after retries) */
#define DSC_ETHROTTLED -9  /**< S3 kept answering SlowDown/429 (after retries) */
#define DSC_ESERVER   -10  /**< S3 kept answering 5xx (after retries) */
#define DSC_EPROTO    -11  /**< malformed answer: short or long body, wrong
                                Content-Range, unparsable XML */
#define DSC_ECHANGED  -12  /**< the object changed since dsc_open (ETag) */
#define DSC_EIO       -13  /**< local I/O error (see dsc_errmsg for path) */
#define DSC_ECANCELED -14  /**< stopped by the caller (callback returned
                                non-zero) */
#define DSC_EHTTP     -15  /**< any other unexpected HTTP status */
#define DSC_EAGAIN    -16  /**< the prefetch queue is full; try later */
#define DSC_ENOCACHE  -17  /**< the call needs a node cache and the
                                context has none */

/**
 * Static English name for a DSC_E* code ("no such key or bucket").
 * Unknown codes give "unknown error". Thread-safe.
 */
DSC_API const char *dsc_strerror(int code);

/**
 * Detail of the last failure on the calling thread, e.g.
 * "GET s3://b/k: 404 NoSuchKey: The specified key does not exist.
 * (request id 4442587FB7D0A2F9)". Never NULL; "" when there is none.
 * Valid until the next libdsc call on the same thread. Thread-local.
 */
DSC_API const char *dsc_errmsg(void);

/* ---- Configuration ------------------------------------------------------ */

/** Current layout version of dsc_config; pass it through dsc_config_init. */
#define DSC_CONFIG_VERSION 6

/** How bucket names go into request URLs. */
#define DSC_ADDRESSING_AUTO    0 /**< path-style for IP/localhost endpoints
                                      and non-DNS bucket names, else vhost */
#define DSC_ADDRESSING_PATH    1 /**< http://endpoint/bucket/key */
#define DSC_ADDRESSING_VHOST   2 /**< http://bucket.endpoint/key */

/**
 * Options of a context. Always initialise with dsc_config_init(), then
 * change fields; fields added in later versions are appended, and the
 * version field tells the library which ones the caller knows.
 *
 * String fields left NULL and numeric fields left at their init value are
 * taken from the environment when the context is opened (see README.md for
 * the table): AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_REGION,
 * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE,
 * AWS_CONFIG_FILE, and the DSC_* variables. The context copies every
 * string; the config may be freed after dsc_ctx_open().
 */
typedef struct dsc_config {
    unsigned version;             /**< DSC_CONFIG_VERSION */

    /* Where S3 is. */
    const char *endpoint;         /**< "http://127.0.0.1:9000"; NULL: env,
                                       else https://s3.REGION.amazonaws.com */
    const char *region;           /**< NULL: env, profile, else "us-east-1" */
    int addressing;               /**< DSC_ADDRESSING_* */

    /* Who we are. Explicit keys win over env, env over the profile files. */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;    /**< for temporary credentials */
    const char *profile;          /**< NULL: AWS_PROFILE, else "default" */
    int anonymous;                /**< non-zero: send unsigned requests
                                       (public buckets); also
                                       DSC_ANONYMOUS=1 */

    /* Network behaviour. */
    long connect_timeout_ms;      /**< per connection attempt; default 3000 */
    long request_timeout_ms;      /**< per request attempt; default 30000 */
    int max_retries;              /**< retries after the first try for 5xx,
                                       SlowDown, resets; default 5; 0: none */
    long retry_base_ms;           /**< first backoff ceiling; default 50 */
    long retry_max_ms;            /**< backoff ceiling; default 5000 */
    int max_connections;          /**< pooled connections; default 64 */
    int verify_tls;               /**< default 1; 0 accepts any certificate */
    const char *ca_file;          /**< extra CA bundle; NULL: system's */

    /* Metadata. */
    long meta_ttl_ms;             /**< how long cached metadata (size, ETag)
                                       is trusted by dsc_open before it is
                                       revalidated; default 60000
                                       (DSC_META_TTL_MS); 0: always ask.
                                       Revalidation moves no cached byte:
                                       objects a listing of this context
                                       taught are listed again (one LIST
                                       per 1,000), others get a HEAD; an
                                       unchanged object's chunks stay
                                       hits. A snapshot (below) pins
                                       versions and skips it. */

    /* The node cache, shared by every process using the same directory. */
    const char *cache_dir;        /**< NULL: DSC_CACHE_DIR, else
                                       $XDG_CACHE_HOME/dsc or ~/.cache/dsc;
                                       "" or "off": no cache (every read
                                       goes to S3) */
    uint64_t cache_size;          /**< byte cap of a cache this context
                                       creates (DSC_CACHE_SIZE, e.g.
                                       "20G"); 0 (default): 10 GiB. An
                                       existing cache keeps the capacity
                                       stored in it (a different value
                                       here is logged, not applied);
                                       dsc_cache_set_capacity changes it */
    uint32_t chunk_size;          /**< bytes per cached chunk; default
                                       4 MiB (DSC_CHUNK_SIZE); 64 KiB to
                                       256 MiB. Part of a chunk's identity,
                                       so contexts with different sizes
                                       share nothing. */
    int cache_policy;             /**< DSC_POLICY_*; default LRU
                                       (DSC_CACHE_POLICY=lru|minio) */
    long cache_idle_sec;          /**< minio: an entry unread this long may
                                       be evicted; default 86400
                                       (DSC_CACHE_IDLE_SEC) */
    int fd_cache;                 /**< verified chunk files kept open per
                                       context; default 256 */
    int cache_sync;               /**< non-zero: fsync the index on each
                                       change (survives power loss); default
                                       0 (DSC_CACHE_SYNC) */

    /* Background fetching (needs a cache: that is where it puts bytes). */
    int prefetch_threads;         /**< background fetchers, i.e. chunk GETs
                                       in flight for prefetch, readahead and
                                       plans; default 8 (DSC_PREFETCH_THREADS).
                                       Each holds at most one chunk buffer
                                       (none when the chunk streams to its
                                       cache file, the usual case), so
                                       memory is bounded by
                                       threads x chunk_size. */
    int prefetch_queue;           /**< queued chunk fetches at most; more
                                       are refused with DSC_EAGAIN; default
                                       65536 */
    uint64_t readahead_max;       /**< largest readahead window of a
                                       sequential reader; default 64 MiB
                                       (DSC_READAHEAD); 0 disables */
    uint64_t plan_window;         /**< bytes a plan keeps fetched ahead of
                                       its reader; default 256 MiB
                                       (DSC_PLAN_WINDOW) */

    /* Peers (version 2). Each chunk has one owner node among the peers, by
     * rendezvous hashing of its id; a miss on a chunk another node owns
     * asks that node's dscd first, so a cluster GETs each chunk from S3
     * once. Needs a node cache. */
    const char *peers;            /**< every node's dscd, "host:port,...",
                                       or DNS records naming them:
                                       "dns:NAME:PORT" (A/AAAA, e.g. a
                                       headless Service) or "srv:NAME";
                                       NULL: DSC_PEERS; "": no peers */
    const char *peer_self;        /**< this node's entry in peers (its
                                       chunks are read locally); NULL:
                                       DSC_SELF */
    const char *peer_secret;      /**< cluster-wide HMAC key signing peer
                                       requests; NULL: DSC_PEER_SECRET, else
                                       the first line of the file named by
                                       DSC_PEER_SECRET_FILE */
    long peer_timeout_ms;         /**< longest wait for a peer's answer,
                                       then S3; default 10000
                                       (DSC_PEER_TIMEOUT_MS) */
    long peer_backoff_ms;         /**< a peer that failed is skipped this
                                       long; default 10000
                                       (DSC_PEER_BACKOFF_MS) */
    int peer_keep_local;          /**< non-zero: also keep a local copy of
                                       chunks other nodes own (faster
                                       re-reads, less total capacity);
                                       default 0 (DSC_PEER_KEEP_LOCAL) */

    /* Snapshots (version 3). */
    const char *snapshot;         /**< a snapshot file (local path or
                                       s3:// URL) loaded at dsc_ctx_open and
                                       used as by dsc_ctx_use_snapshot;
                                       NULL: DSC_SNAPSHOT; "": none */

    /* Version 4. */
    long op_timeout_ms;           /**< total time of one S3 operation,
                                       every attempt and backoff included;
                                       an attempt never runs past it.
                                       0 (default): 3 x request_timeout_ms
                                       (DSC_OP_TIMEOUT_MS) */
    int cache_existing;           /**< non-zero: use only a cache that
                                       already exists; a directory without
                                       one fails dsc_ctx_open with
                                       DSC_ENOCACHE instead of becoming a
                                       new cache (dsc-stat's default) */

    /* Version 5. */
    long peers_refresh_s;         /**< peers given as DNS records
                                       ("dns:NAME:PORT", "srv:NAME") are
                                       re-resolved this often; default 30
                                       (DSC_PEERS_REFRESH_S) */

    /* Version 6: background GETs (prefetch, readahead of chunks this node
     * fetches itself) on an event loop, many in flight without a thread
     * each; how many adapts to what the origin sustains
     * (docs/ARCHITECTURE.md, "Background fetching"). */
    uint64_t prefetch_memory;     /**< bytes background fetches may hold
                                       in flight, counted a chunk each: the
                                       in-flight limit never passes
                                       prefetch_memory / chunk_size (nor
                                       max_connections). Chunks streamed to
                                       their cache files hold disk, not
                                       memory, meanwhile. Default 256 MiB
                                       (DSC_PREFETCH_MEMORY) */
    int prefetch_loop;            /**< 1 (default): background GETs on
                                       the event loop; 0: each on a
                                       blocked fetcher thread,
                                       prefetch_threads in flight at most
                                       (DSC_PREFETCH_LOOP) */
    int cache_verify;             /**< DSC_VERIFY_*: when a process checks a
                                       cached chunk file's XXH3 before its
                                       first read of it; default
                                       DSC_VERIFY_BOOT (DSC_CACHE_VERIFY=
                                       boot|always) */
} dsc_config;

/** cache_verify: hash every chunk file a process reads, except one written
 *  since the machine booted and unchanged since (its writer hashed those
 *  bytes; docs/SECURITY.md). */
#define DSC_VERIFY_BOOT   0
/** cache_verify: hash every chunk file on each process's first read of it
 *  (catches corruption at rest within an uptime too, at a hash per read of
 *  a file not already open). */
#define DSC_VERIFY_ALWAYS 1

/** Eviction policies of the node cache. */
#define DSC_POLICY_LRU   0 /**< least recently used chunk goes first */
#define DSC_POLICY_MINIO 1 /**< for epochs over a dataset larger than the
                                cache: once full, keep what is cached and do
                                not admit more, so shuffled epochs hit about
                                cache/dataset of their reads (the "MinIO"
                                policy of Mohan et al., VLDB'21); entries
                                unread for cache_idle_sec may be replaced */

/**
 * Fill *cfg with the defaults of this library version and set
 * cfg->version = version. Returns DSC_OK, or DSC_EINVAL when version is not
 * one this library knows (a newer header than library). Defaults from
 * DSC_* environment variables are read here; a variable with an invalid
 * value leaves the built-in default in *cfg, and dsc_ctx_open then fails
 * with DSC_EINVAL naming the variable and its value.
 */
DSC_API int dsc_config_init(dsc_config *cfg, unsigned version);

/* ---- Context ------------------------------------------------------------ */

typedef struct dsc_ctx dsc_ctx;
typedef struct dsc_file dsc_file;

/**
 * Open a context: resolve endpoint, region and credentials, and set up the
 * connection pool. cfg may be NULL for all defaults. On success *out owns a
 * context to release with dsc_ctx_close(). No S3 traffic happens here, but
 * resolving credentials may ask STS, the SSO portal, the container endpoint
 * or IMDS, or run a credential_process (README.md, Credentials).
 * Errors: DSC_EINVAL (bad config, an invalid DSC_* variable such as
 * DSC_CACHE_SIZE=abc, a bad snapshot file or one of another
 * endpoint), DSC_EURL (bad endpoint), DSC_ECREDS (no credentials anywhere,
 * naming every source tried; a profile named but missing; unreadable files;
 * a configured source that fails), DSC_EIO (snapshot file unreadable),
 * DSC_ENOMEM. Unsigned requests only when asked: cfg->anonymous or
 * DSC_ANONYMOUS=1. With a snapshot given as an s3:// URL, opening reads it.
 */
DSC_API int dsc_ctx_open(const dsc_config *cfg, dsc_ctx **out);

/**
 * Release a context. All files opened from it must be closed first. NULL is
 * accepted. Not thread-safe with respect to other uses of ctx.
 */
DSC_API void dsc_ctx_close(dsc_ctx *ctx);

/* ---- Objects ------------------------------------------------------------ */

/**
 * Open s3://bucket/key for reading: one HEAD request fixes the object's size
 * and ETag (no request at all for an object under the context's snapshot,
 * which gives them; see Snapshots). Reads of this handle then only return bytes of that version of
 * the object; if it is overwritten, reads fail with DSC_ECHANGED rather than
 * mix versions. The key is taken literally (no percent-decoding): any UTF-8
 * key, including spaces, '+', '%' and '=', is allowed.
 * Errors: DSC_EURL, DSC_ENOTFOUND, DSC_EACCESS, network errors.
 * Thread-safe.
 */
DSC_API int dsc_open(dsc_ctx *ctx, const char *url, dsc_file **out);

/** Size in bytes of the opened object version. */
DSC_API int64_t dsc_size(const dsc_file *f);

/** ETag of the opened object version, with its quotes, as S3 sent it.
 *  Owned by f, valid until dsc_close(f). */
DSC_API const char *dsc_etag(const dsc_file *f);

/**
 * Read up to len bytes at offset off into buf. Returns the number of bytes
 * read: len, fewer only when the object ends first, 0 at or past the end.
 * Negative DSC_E* on failure, in which case buf's contents are unspecified.
 * Never returns bytes of another object version. Thread-safe.
 */
DSC_API ssize_t dsc_pread(dsc_file *f, void *buf, size_t len, uint64_t off);

/**
 * dsc_open + dsc_pread + dsc_close of url in one call, with no handle: up
 * to len bytes at offset off into buf. *size (when size is not NULL) is set
 * to the object's size, or -1 when it could not be opened, so a caller
 * whose buffer was too small learns how much there is. Returns the bytes
 * read, as dsc_pread() does, or a negative DSC_E* code. For many small
 * whole objects, the cheapest read there is. Thread-safe.
 */
DSC_API ssize_t dsc_pread_url(dsc_ctx *ctx, const char *url, void *buf,
                              size_t len, uint64_t off, int64_t *size);

/** Like dsc_pread() at the file position, which then advances. */
DSC_API ssize_t dsc_read(dsc_file *f, void *buf, size_t len);

/**
 * Move the file position as lseek(2) does: whence is SEEK_SET, SEEK_CUR or
 * SEEK_END. Positions past the end are allowed (reads there return 0).
 * Returns the new position, or DSC_EINVAL for a negative result.
 */
DSC_API int64_t dsc_seek(dsc_file *f, int64_t off, int whence);

/** Release a file handle. NULL is accepted. */
DSC_API void dsc_close(dsc_file *f);

/* ---- Prefetch ----------------------------------------------------------- */

/**
 * Queue the chunks of [off, off+len) of f for background fetching into the
 * node cache and return at once (len 0: to the end of the object). Chunks
 * already cached or already queued cost nothing. A later read of a chunk
 * still in flight waits for that fetch instead of fetching again.
 * Errors: DSC_ENOCACHE, DSC_EAGAIN (queue full: some chunks were not
 * queued), DSC_EINVAL. Fetch errors are counted (dsc_stats.prefetch_errors)
 * and leave the chunk to be fetched by the reader. Thread-safe.
 */
DSC_API int dsc_prefetch(dsc_file *f, uint64_t off, uint64_t len);

/**
 * Queue a whole object by URL: its HEAD (or cached metadata) and its chunks
 * are fetched in the background; returns at once. Errors as dsc_prefetch,
 * plus DSC_EURL; an object that does not exist is a prefetch error.
 */
DSC_API int dsc_prefetch_url(dsc_ctx *ctx, const char *url);

/**
 * dsc_prefetch_url for each of n URLs in one call, in order; an object
 * whose every chunk the node cache already holds (its size and ETag known
 * without a request: a snapshot or fresh metadata) is not queued at all,
 * so a planned epoch over a cached dataset costs a lookup per object.
 * Returns how many objects were queued, or the first failure's DSC_E*
 * code (dsc_errmsg names the URL); *taken (when not NULL) counts the URLs
 * dealt with, queued or found cached, before it.
 */
DSC_API ssize_t dsc_prefetch_urls(dsc_ctx *ctx, const char *const *urls,
                                  size_t n, size_t *taken);

/**
 * Wait until every prefetch queued on ctx so far has finished, at most
 * timeout_ms (negative: no limit). Returns 0, or DSC_ETIMEDOUT.
 */
DSC_API int dsc_prefetch_wait(dsc_ctx *ctx, long timeout_ms);

/**
 * Make sure [off, off+len) of f is in the node cache (len 0: to the end),
 * fetching missing chunks in parallel on the background fetchers and the
 * calling thread; returns when done. Returns the number of bytes that were
 * fetched from S3 (0 when all were cached), or a negative DSC_E* code of
 * the first failure. Thread-safe.
 */
DSC_API int64_t dsc_warm(dsc_file *f, uint64_t off, uint64_t len);

/** One read a dataloader will make, in order: url, and a range of it
 *  (len 0: the whole object from off). */
typedef struct dsc_plan_item {
    const char *url;
    uint64_t off;
    uint64_t len;
} dsc_plan_item;

typedef struct dsc_plan dsc_plan;

/**
 * Hand libdsc the exact order of the coming reads (e.g. an epoch's
 * shuffled sample list). It fetches ahead of the reader, in order, keeping
 * at most plan_window bytes fetched-but-unread. The reader's position is
 * learned from its reads: a read of item i's object moves the plan to i.
 * The items are copied. Only one plan per context runs at a time (a new
 * plan replaces the old). Errors: DSC_ENOCACHE, DSC_EINVAL, DSC_EURL
 * (the index of the bad item is in dsc_errmsg()).
 */
DSC_API int dsc_plan_start(dsc_ctx *ctx, const dsc_plan_item *items,
                           size_t n, dsc_plan **out);

/** Items the reader has passed, of the plan's total (for progress). */
DSC_API size_t dsc_plan_position(const dsc_plan *plan);

/** Stop a plan (queued fetches are dropped) and free it. NULL is fine. */
DSC_API void dsc_plan_stop(dsc_plan *plan);

/** One object of a batch read: url and the caller's buffer in, the
 *  object's size, the bytes read and a status out. */
typedef struct dsc_batch_item {
    const char *url;    /**< in: s3://bucket/key */
    void *buf;          /**< in: where the object goes (may be NULL if cap 0) */
    size_t cap;         /**< in: bytes buf holds */
    int64_t size;       /**< out: the object's size (-1 if it was not opened) */
    size_t len;         /**< out: bytes written to buf: min(size, cap) */
    int status;         /**< out: 0, or the DSC_E* code of this item's failure */
} dsc_batch_item;

/**
 * Read n whole objects into the callers' buffers concurrently: `threads`
 * calls of dsc_open + dsc_pread at once (0: 16; at most n), so their
 * HEADs and GETs overlap, each through the node cache. Cached items are
 * read on the calling thread; helpers start once an item waited on the
 * network. The first batch of a size also adapts glibc's malloc to
 * buffers of the batch's total, so freed sample buffers stay in the
 * heap instead of being faulted in again (README.md). An object larger
 * than its buffer fills it (len = cap < size, status 0; as snprintf), so a
 * caller that does not know sizes may pass cap 0 to learn them, then read.
 * Returns the number of items that failed (0: all read), with the first
 * failure's detail (naming its item and URL) in dsc_errmsg(); DSC_EINVAL
 * for bad arguments. Thread-safe.
 */
DSC_API ssize_t dsc_read_batch(dsc_ctx *ctx, dsc_batch_item *items, size_t n,
                               unsigned threads);

/* ---- Statistics --------------------------------------------------------- */

/**
 * Counters of one context (since dsc_ctx_open) and of its node cache (all
 * processes that share the directory, since it was created). Fields are
 * only ever appended; pass sizeof(dsc_stats) so an older caller gets the
 * prefix it knows.
 */
typedef struct dsc_stats {
    /* This context. A "chunk read" is one chunk's part of a dsc_pread. */
    uint64_t hits;              /**< chunk reads served from the cache */
    uint64_t misses;            /**< chunk reads that fetched from S3 */
    uint64_t bytes_from_cache;  /**< bytes returned from the cache */
    uint64_t bytes_from_s3;     /**< GET body bytes received from S3 */
    uint64_t s3_gets;           /**< ranged GETs (a retried GET counts
                                     once; see s3_retries) */
    uint64_t s3_heads;          /**< HEAD operations */
    uint64_t s3_lists;          /**< ListObjectsV2 pages */
    uint64_t s3_retries;        /**< attempts repeated after a failure */
    uint64_t meta_hits;         /**< dsc_open answered from cached HEADs */
    uint64_t evictions;         /**< entries this context evicted */
    uint64_t corrupt_dropped;   /**< cached chunks that failed their
                                     check and were fetched again */
    uint64_t cache_errors;      /**< failed cache writes (disk full, read-
                                     only, ...); reads still succeeded */
    uint64_t not_admitted;      /**< fetched chunks the policy kept out */
    /* The node cache (zero when the context has no cache). */
    uint64_t cache_bytes;       /**< bytes of all cached chunks */
    uint64_t cache_capacity;    /**< the cache's capacity when this
                                     context opened it */
    uint64_t cache_chunks;      /**< cached chunks */
    uint64_t node_hits;         /**< hits of all processes (flushed about
                                     once a second) */
    uint64_t node_misses;
    uint64_t node_evictions;
    uint64_t node_corrupt;
    uint32_t chunk_size;        /**< this context's chunk size */
    int cache_policy;           /**< DSC_POLICY_* */
    uint64_t node_capacity;     /**< the cap every process keeps to: the
                                     cache's capacity, or less when its
                                     filesystem filled first */
    /* Background fetching of this context. */
    uint64_t prefetch_queued;   /**< chunk fetches queued */
    uint64_t prefetch_done;     /**< ...fetched (or found cached) */
    uint64_t prefetch_errors;   /**< ...that failed */
    uint64_t prefetch_dropped;  /**< ...refused (queue full) or cancelled */
    uint64_t readahead_chunks;  /**< chunks queued by readahead */
    /* Peers of this context. */
    uint64_t peer_hits;         /**< chunk reads served by the chunk's
                                     owner node */
    uint64_t peer_bytes;        /**< chunk bytes received from peers */
    uint64_t peer_errors;       /**< peer requests that failed (down, timed
                                     out, refused); the read then went to S3 */
    uint64_t peer_bad_data;     /**< peer answers whose bytes or signature
                                     failed the check (also in peer_errors) */
    uint64_t peers_down;        /**< peers skipped right now (backing off) */
    /* The node index (LMDB). Its map starts at a size derived from the
     * cap and doubles when full, every process following. */
    uint64_t index_map_bytes;   /**< the index's map size now */
    uint64_t index_used_bytes;  /**< of it, in use (the file's extent) */
    uint64_t index_full;        /**< writes this process found the index
                                     full and unable to grow (logged; the
                                     chunk was then not cached) */
    uint64_t node_meta_dropped; /**< object metadata entries dropped to
                                     keep within DSC_META_MAX (oldest
                                     first; each costs a HEAD later) */
    uint64_t meta_expired;      /**< lookups that found metadata past its
                                     TTL, which was then revalidated (a
                                     LIST or HEAD, no body bytes) */
    uint64_t node_capacity_set; /**< the cache's capacity, as set when it
                                     was made or by dsc_cache_set_capacity */
    uint64_t node_capacity_disk;/**< what its filesystem was found to hold
                                     when a write failed for space (0: no
                                     such limit); raised again when a
                                     context opens and finds room */
    uint64_t peers;             /**< peers known now (DNS discovery:
                                     the last answer) */
    uint64_t peer_changes;      /**< membership changes discovery saw */
    uint64_t peer_resolve_errors;/**< resolutions with no answer (the
                                     peers known were kept) */
    /* The node's S3 traffic and reads by source: the counters of every
     * process that used the cache (readers and dscd), flushed as
     * node_hits are. A chunk read served from the node cache (node_hits,
     * node_cache_bytes) saved an S3 GET and its bytes, except the first
     * read of a prefetched chunk, whose GET was only made earlier: saved
     * = node_hits - node_prefetched (dsc_cost). */
    uint64_t node_s3_gets;      /**< GETs sent to S3 (a retried GET once) */
    uint64_t node_s3_heads;     /**< HEADs sent to S3 */
    uint64_t node_s3_lists;     /**< LIST pages asked of S3 */
    uint64_t node_s3_retries;   /**< attempts repeated after a failure */
    uint64_t node_s3_bytes;     /**< GET body bytes received from S3 */
    uint64_t node_cache_bytes;  /**< bytes read from the node cache */
    uint64_t node_peer_hits;    /**< chunk reads served by their owner node
                                     (another node's dscd) */
    uint64_t node_peer_bytes;   /**< chunk bytes received from peers */
    uint64_t node_prefetched;   /**< chunks brought into the cache with no
                                     reader waiting (prefetch, readahead,
                                     plans; from S3 or peers) */
    uint64_t node_prefetched_bytes;
    /* Background GETs of this context in flight (docs/ARCHITECTURE.md,
     * "Background fetching"). */
    uint64_t prefetch_inflight_limit; /**< background fetches allowed in
                                           flight now: adapted to what the
                                           origin sustains */
    uint64_t prefetch_inflight_peak;  /**< the highest that limit reached */
    uint64_t prefetch_throttled;  /**< times the limit was halved: the
                                       origin throttled (503 SlowDown,
                                       429), timed out or refused */
    uint64_t prefetch_on_loop;    /**< background GETs run on the event
                                       loop (many in flight, one thread) */
    uint64_t prefetch_busy;       /**< background chunks skipped: another
                                       thread or process was fetching them */
    uint64_t index_writes;        /**< write transactions this process
                                       committed on the node cache's index
                                       (all its contexts on that cache,
                                       since the first of them opened it):
                                       inserts, evictions, counters and
                                       access times (a chunk's recorded at
                                       most about once a minute) */
} dsc_stats;

/** Who a context signs its requests as (dsc_whoami); never the secret. */
typedef struct dsc_identity {
    char source[32];          /**< where the keys came from: "config",
                                   "env", "profile", "assume-role",
                                   "web-identity", "sso", "process",
                                   "container", "imds", "anonymous" */
    char access_key_id[128];  /**< "" when anonymous */
    int64_t expires;          /**< Unix seconds; 0: the keys do not expire */
    char region[64];
    char region_source[16];   /**< "config", "env", "profile", "imds",
                                   "default" */
    char endpoint[512];       /**< the S3 origin (dsc_snapshot_summary's) */
} dsc_identity;

/**
 * Fill the first `size` bytes of *out (normally sizeof(dsc_identity))
 * with the keys the context signs with now (temporary ones are refreshed
 * first when due). Errors: DSC_EINVAL, DSC_ECREDS (expired, refresh
 * failed).
 */
DSC_API int dsc_whoami(dsc_ctx *ctx, dsc_identity *out, size_t size);

/**
 * Fill the first `size` bytes of *out (normally sizeof(dsc_stats)).
 * Thread-safe. Errors: DSC_EINVAL, DSC_EIO when the index cannot be read
 * (the context's own counters are still filled).
 */
DSC_API int dsc_stats_get(dsc_ctx *ctx, dsc_stats *out, size_t size);

/**
 * Path of the node cache directory of ctx, or NULL when it has none.
 * Owned by ctx.
 */
DSC_API const char *dsc_cache_dir(const dsc_ctx *ctx);

/**
 * Remove chunk files of ctx's cache directory that its index does not
 * know: debris of a process killed between evicting a chunk and deleting
 * its file. Safe while other processes use the cache. Returns the number
 * of files removed (0 without a cache) or a negative DSC_E* code. The
 * index itself is always within the byte cap; only such debris can make
 * the directory larger. Cost: one directory walk.
 */
DSC_API int64_t dsc_cache_clean(dsc_ctx *ctx);

/**
 * Set the node cache's capacity, the byte cap every process using it keeps
 * to (it is stored in the cache), and evict least recently used chunks
 * down to it now. Also forgets a limit learnt from a full filesystem (a
 * later full disk lowers it again). A new cache gets its capacity from
 * the cache_size of the context that makes it (10 GiB by default); a
 * context opening an existing cache with another cache_size logs that and
 * keeps the cache's. Errors: DSC_ENOCACHE, DSC_EINVAL (less than 64 KiB),
 * DSC_EIO. `dsc-stat --set-capacity SIZE` calls it.
 */
DSC_API int dsc_cache_set_capacity(dsc_ctx *ctx, uint64_t bytes);

/* ---- Metrics and cost --------------------------------------------------- */

/**
 * Prices in US dollars for the cost estimates. The defaults are AWS's list
 * prices for S3 Standard in us-east-1 (US East, N. Virginia), taken on
 * 2026-11-29; each can be set in the environment (a plain decimal number,
 * e.g. 0.0004; anything else makes dsc_ctx_open and dsc_prices_get fail
 * with DSC_EINVAL naming the variable). Fields are only ever appended;
 * pass sizeof(dsc_prices).
 */
typedef struct dsc_prices {
    double get_per_1000;    /**< GET and HEAD requests, per 1,000:
                                 DSC_PRICE_GET_PER_1000, default 0.0004 */
    double list_per_1000;   /**< LIST requests, per 1,000:
                                 DSC_PRICE_LIST_PER_1000, default 0.005 */
    double egress_per_gb;   /**< bytes received from S3, per GB of 2^30
                                 bytes: DSC_PRICE_EGRESS_PER_GB, default
                                 0.09 (transfer out to the internet, first
                                 10 TB a month); set 0 for nodes in the
                                 bucket's region, where S3 to EC2 is free */
} dsc_prices;

/** The prices in force: the defaults, overridden by the environment.
 *  Errors: DSC_EINVAL (a variable that is not a price, named). */
DSC_API int dsc_prices_get(dsc_prices *out, size_t size);

/** An estimate of the node's S3 bill so far and of what its cache saved,
 *  in dollars. */
typedef struct dsc_cost {
    double requests_spent;  /**< GETs and HEADs, LISTs the node sent */
    double transfer_spent;  /**< bytes the node received from S3 */
    double requests_saved;  /**< the GETs of gets_saved */
    double transfer_saved;  /**< the bytes of bytes_saved */
    uint64_t gets_saved;    /**< GETs not sent: chunk reads served from the
                                 node cache (its dscd's answers to peers
                                 included, so a cluster's sum counts each
                                 saving once), less the chunks prefetched
                                 into it (0 while prefetching leads) */
    uint64_t bytes_saved;   /**< bytes read from the cache, less the
                                 bytes prefetched (0 while those lead) */
} dsc_cost;

/**
 * The node's cost so far at dsc_prices_get's prices, from the node_*
 * counters of dsc_stats_get: requests_spent = (node_s3_gets +
 * node_s3_heads) x get_per_1000 / 1000 + node_s3_lists x list_per_1000 /
 * 1000, transfer_spent = node_s3_bytes / 2^30 x egress_per_gb; saved:
 * node_hits - node_prefetched GETs and node_cache_bytes -
 * node_prefetched_bytes bytes at the same prices. Fields
 * are only ever appended; pass sizeof(dsc_cost). Errors: DSC_EINVAL (a
 * bad price variable, or arguments).
 */
DSC_API int dsc_cost_get(dsc_ctx *ctx, dsc_cost *out, size_t size);

/** Bytes read under one key prefix of the node cache, by source. */
typedef struct dsc_prefix_stats {
    char bucket[64];        /**< "" for the record of all prefixes past the
                                 first 256 a node saw ("other") */
    char prefix[192];       /**< the key's first directories ("train/"),
                                 DSC_PREFIX_DEPTH of them (default 2); ""
                                 for keys at the top of the bucket */
    uint64_t cache_bytes;   /**< read from the node cache */
    uint64_t s3_bytes;      /**< fetched from S3 (whole chunks) */
    uint64_t peer_bytes;    /**< received from peers */
} dsc_prefix_stats;

/**
 * The node cache's prefixes, most bytes (of all sources) first: up to n
 * records into out, each `size` bytes apart (normally
 * sizeof(dsc_prefix_stats)). Returns how many prefixes the node has
 * recorded in all (at most 257), or a negative DSC_E* code
 * (DSC_ENOCACHE without a cache). Thread-safe.
 */
DSC_API int64_t dsc_top_prefixes(dsc_ctx *ctx, dsc_prefix_stats *out,
                                 size_t n, size_t size);

/**
 * The node's metrics in Prometheus' text exposition format (version
 * 0.0.4): the dsc_* series that `dsc-stat --prometheus` prints and dscd
 * serves at /metrics, with costs at dsc_prices_get's prices. Writes at most
 * cap bytes with the terminating NUL (as snprintf) and returns the length
 * of the whole text: call again with a larger buffer when that is cap or
 * more. Negative DSC_E* codes: DSC_ENOCACHE (no cache), DSC_EINVAL (a bad
 * price variable), DSC_ENOMEM.
 */
DSC_API int64_t dsc_metrics_text(dsc_ctx *ctx, char *buf, size_t cap);

/* ---- Listing ------------------------------------------------------------ */

/** One object of a listing. Pointers are valid during the callback only. */
typedef struct dsc_object_info {
    const char *url;      /**< "s3://bucket/key" */
    const char *key;
    uint64_t size;
    const char *etag;     /**< with quotes, as S3 sent it */
    const char *last_modified; /**< ISO-8601 as S3 sent it */
} dsc_object_info;

/** Listing callback: return 0 to go on, non-zero to stop (dsc_list then
 *  returns DSC_ECANCELED). */
typedef int (*dsc_list_cb)(void *arg, const dsc_object_info *obj);

/**
 * Call cb for every object whose key starts with the prefix of url
 * ("s3://bucket/prefix", "s3://bucket" or "s3://bucket/" for all), in S3's
 * key order, across all pages of ListObjectsV2. Returns the number of
 * objects seen (as a non-negative int64) or a negative DSC_E* code.
 * Thread-safe.
 */
DSC_API int64_t dsc_list(dsc_ctx *ctx, const char *url, dsc_list_cb cb,
                         void *arg);

/* ---- Snapshots ---------------------------------------------------------- */

/**
 * A snapshot is the list of a prefix's objects at one moment: key, size
 * and ETag of each, with the bucket, prefix and S3 endpoint (origin) they
 * came from. A context using one opens those objects with no HEAD and no
 * LIST, and every GET is pinned to the recorded version (If-Match on its
 * ETag): an object overwritten since gives DSC_ECHANGED naming it, never
 * bytes of another version. Cached chunks of the recorded version are
 * served (they are that version's bytes). On a versioned bucket the
 * snapshot records version ids and GETs carry them too: an object
 * overwritten or deleted since reads as it was; only a recorded version
 * that is itself gone gives DSC_ECHANGED.
 *
 * The file (docs/SNAPSHOT.md) is compact (56 bytes per object plus its
 * key), checksummed, and may be shared by every rank of a job: load it
 * from a local path or an s3:// URL. A snapshot is immutable once made,
 * and may be used by any number of threads at once.
 */
typedef struct dsc_snapshot dsc_snapshot;

/**
 * List prefix_url ("s3://bucket/prefix", "s3://bucket" for all) once and
 * make a snapshot of it, recording ctx's S3 origin. Objects are in key
 * order. Costs the listing's LIST pages, nothing else.
 * Errors: those of dsc_list; DSC_EINVAL for an origin or prefix too long.
 */
DSC_API int dsc_snapshot_list(dsc_ctx *ctx, const char *prefix_url,
                              dsc_snapshot **out);

/**
 * Load a snapshot file: src is a local path, or an s3:// URL read through
 * ctx (its node cache and credentials; ctx may be NULL for a path). The
 * whole file is checked: a truncated, corrupt (checksum), unsorted file,
 * one of a newer format version or with counts that do not fit gives
 * DSC_EINVAL with a message naming src and the fault.
 * Errors: DSC_EINVAL, DSC_EIO (unreadable path), read errors of src.
 */
DSC_API int dsc_snapshot_load(dsc_ctx *ctx, const char *src,
                              dsc_snapshot **out);

/**
 * Write s to path atomically: a temporary file in the same directory,
 * fsync, rename over path, fsync of the directory. A reader of path sees
 * the old file or the new one, never a mix. Errors: DSC_EIO, DSC_EINVAL.
 */
DSC_API int dsc_snapshot_save(const dsc_snapshot *s, const char *path);

/** Release the caller's reference. NULL is accepted. Contexts using s
 *  keep their own reference. */
DSC_API void dsc_snapshot_free(dsc_snapshot *s);

/** What a snapshot is of. Only ever appended to; pass sizeof. */
typedef struct dsc_snapshot_summary {
    const char *url;        /**< "s3://bucket/prefix" */
    const char *bucket;
    const char *prefix;     /**< "" for a whole bucket */
    const char *origin;     /**< the S3 endpoint it was listed from */
    int64_t created_ms;     /**< when it was listed, Unix milliseconds */
    uint64_t objects;       /**< entries */
    uint64_t bytes;         /**< sum of the objects' sizes */
    uint64_t file_bytes;    /**< size of its file */
    unsigned format;        /**< file format version */
    int versioned;          /**< listed by versions: entries carry version
                                 ids (dsc_snapshot_version_id) */
} dsc_snapshot_summary;

/** Fill the first `size` bytes of *out. Strings are owned by s. */
DSC_API int dsc_snapshot_summarize(const dsc_snapshot *s,
                                   dsc_snapshot_summary *out, size_t size);

/** Number of objects in s (0 for NULL). */
DSC_API size_t dsc_snapshot_count(const dsc_snapshot *s);

/**
 * Object i (in key order) of s. out->key stays valid while s lives;
 * out->url and out->etag until the next dsc_snapshot_get on the calling
 * thread (the ETag is stored in 16 bytes and written out here);
 * out->last_modified is "" (not recorded). Errors: DSC_EINVAL.
 */
DSC_API int dsc_snapshot_get(const dsc_snapshot *s, size_t i,
                             dsc_object_info *out);

/**
 * The version id object i was listed at, or NULL: s is not of a versioned
 * bucket (see dsc_snapshot_summary.versioned), or i is past the end. GETs
 * through a context using s are pinned to it (`?versionId=`), so the
 * object reads the same after it is overwritten or deleted. Valid while
 * s lives.
 */
DSC_API const char *dsc_snapshot_version_id(const dsc_snapshot *s, size_t i);

/** Index of key (not a URL) in s, or DSC_ENOTFOUND. Binary search. */
DSC_API int64_t dsc_snapshot_find(const dsc_snapshot *s, const char *key);

/** Counts of a comparison of two snapshots, by key. */
typedef struct dsc_snapshot_delta {
    uint64_t changed;       /**< in both, other size or ETag */
    uint64_t deleted;       /**< only in the older */
    uint64_t added;         /**< only in the newer */
    uint64_t same;          /**< in both, same size and ETag */
} dsc_snapshot_delta;

#define DSC_DIFF_CHANGED 1
#define DSC_DIFF_DELETED 2
#define DSC_DIFF_ADDED   3

/** Called for each differing key, in key order, with the entry of each
 *  side (NULL for the side that lacks it). Pointers are valid during the
 *  call. Return 0 to go on, non-zero to stop (DSC_ECANCELED). */
typedef int (*dsc_snapshot_diff_cb)(void *arg, int what,
                                    const dsc_object_info *older,
                                    const dsc_object_info *newer);

/**
 * Compare older with newer: counts into *out, and cb (may be NULL) for
 * every key that differs. Both must be of the same origin and bucket
 * (DSC_EINVAL otherwise). Returns 0 or a DSC_E* code.
 */
DSC_API int dsc_snapshot_diff_each(const dsc_snapshot *older,
                                   const dsc_snapshot *newer,
                                   dsc_snapshot_diff_cb cb, void *arg,
                                   dsc_snapshot_delta *out);

/** dsc_snapshot_diff_each without a callback. */
DSC_API int dsc_snapshot_diff(const dsc_snapshot *older,
                              const dsc_snapshot *newer,
                              dsc_snapshot_delta *out);

/**
 * From now on, objects of ctx under s's bucket and prefix take size and
 * ETag from s: dsc_open, dsc_prefetch_url and plans send no HEAD and no
 * LIST and do not look at the metadata cache, and their GETs are pinned
 * to the recorded ETag. A key under that prefix that s does not list is
 * DSC_ENOTFOUND ("not in the snapshot"). Objects elsewhere are opened as
 * usual. The context takes its own reference: the caller may free s at
 * once. s NULL stops using a snapshot; a new one replaces the old (files
 * already open keep the version they opened). Thread-safe.
 * Errors: DSC_EINVAL when s was listed from another S3 origin than
 * ctx's (two endpoints may have buckets of the same name).
 */
DSC_API int dsc_ctx_use_snapshot(dsc_ctx *ctx, const dsc_snapshot *s);

#ifdef __cplusplus
}
#endif

#endif /* DSC_H */
