/*
 * dsc.hpp - header-only C++17 wrapper of libdsc (include/dsc.h).
 *
 *   dsc::Client client(dsc::Config().endpoint("http://127.0.0.1:9000")
 *                                    .cache_size(20ull << 30));
 *   dsc::File f = client.open("s3://bucket/train/shard-0001.tar");
 *   std::vector<std::byte> head = f.pread(0, 512);
 *
 *   dsc::LoaderOptions opt;
 *   opt.threads = 8;
 *   opt.batch_size = 64;
 *   dsc::Loader loader(client, urls, opt);
 *   while (std::optional<dsc::Batch> batch = loader.next())
 *       train(batch->samples);
 *
 * Failures throw dsc::Error (a std::runtime_error) carrying the DSC_E*
 * code and libdsc's detail message. Build with -std=c++17 -pthread and
 * link -ldsc.
 *
 * Ownership: a Client shares its context with its copies, with every File
 * opened from it and with Loaders; the context is closed when the last of
 * them is gone, so a File may outlive the Client it came from. A File is
 * move-only. Threads: Client and File::pread are thread-safe; File::read,
 * seek and tell share a position and need one thread at a time.
 */
#ifndef DSC_HPP
#define DSC_HPP

#include <dsc.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dsc {

/** A libdsc failure: code() is the DSC_E* code, detail() the library's
 *  message (S3 error code, request id, URL). */
class Error : public std::runtime_error {
public:
    Error(int code, std::string detail)
        : std::runtime_error(compose(code, detail)), code_(code),
          detail_(std::move(detail)) {}
    int code() const noexcept { return code_; }
    const std::string &detail() const noexcept { return detail_; }

private:
    static std::string compose(int code, const std::string &detail)
    {
        std::string s = dsc_strerror(code);
        return detail.empty() ? s : s + ": " + detail;
    }
    int code_;
    std::string detail_;
};

namespace detail {

/* Must run right after the failing call, on its thread: dsc_errmsg() is
 * thread-local and replaced by the next call. */
[[noreturn]] inline void fail(int64_t code)
{
    throw Error(static_cast<int>(code), dsc_errmsg());
}

/* c_str() would silently cut a string at an embedded NUL, naming another
 * object. */
inline const char *c_url(const std::string &url)
{
    if (url.find('\0') != std::string::npos)
        throw Error(DSC_EURL, "URL contains a NUL character");
    return url.c_str();
}

struct CtxCloser {
    void operator()(dsc_ctx *ctx) const noexcept { dsc_ctx_close(ctx); }
};

} // namespace detail

/** Options of a Client: dsc_config with setters. Fields not set keep the
 *  library's defaults (which follow the AWS_* and DSC_* environment). */
class Config {
public:
    Config()
    {
        int rc = dsc_config_init(&cfg_, DSC_CONFIG_VERSION);
        if (rc)
            detail::fail(rc);
    }

    Config &endpoint(std::string v) { endpoint_ = std::move(v); return *this; }
    Config &region(std::string v) { region_ = std::move(v); return *this; }
    Config &access_key_id(std::string v) { access_key_id_ = std::move(v); return *this; }
    Config &secret_access_key(std::string v) { secret_ = std::move(v); return *this; }
    Config &session_token(std::string v) { token_ = std::move(v); return *this; }
    Config &profile(std::string v) { profile_ = std::move(v); return *this; }
    Config &ca_file(std::string v) { ca_file_ = std::move(v); return *this; }
    /** "" or "off": no node cache. */
    Config &cache_dir(std::string v) { cache_dir_ = std::move(v); return *this; }
    Config &no_cache() { return cache_dir(""); }

    Config &anonymous(bool v) { cfg_.anonymous = v; return *this; }
    Config &addressing(int v) { cfg_.addressing = v; return *this; }
    Config &connect_timeout_ms(long v) { cfg_.connect_timeout_ms = v; return *this; }
    Config &request_timeout_ms(long v) { cfg_.request_timeout_ms = v; return *this; }
    Config &max_retries(int v) { cfg_.max_retries = v; return *this; }
    Config &retry_base_ms(long v) { cfg_.retry_base_ms = v; return *this; }
    Config &retry_max_ms(long v) { cfg_.retry_max_ms = v; return *this; }
    Config &max_connections(int v) { cfg_.max_connections = v; return *this; }
    Config &verify_tls(bool v) { cfg_.verify_tls = v; return *this; }
    Config &meta_ttl_ms(long v) { cfg_.meta_ttl_ms = v; return *this; }
    Config &cache_size(uint64_t v) { cfg_.cache_size = v; return *this; }
    Config &chunk_size(uint32_t v) { cfg_.chunk_size = v; return *this; }
    Config &cache_policy(int v) { cfg_.cache_policy = v; return *this; }
    Config &cache_idle_sec(long v) { cfg_.cache_idle_sec = v; return *this; }
    Config &fd_cache(int v) { cfg_.fd_cache = v; return *this; }
    Config &cache_sync(bool v) { cfg_.cache_sync = v; return *this; }
    Config &prefetch_threads(int v) { cfg_.prefetch_threads = v; return *this; }
    Config &prefetch_queue(int v) { cfg_.prefetch_queue = v; return *this; }
    Config &readahead_max(uint64_t v) { cfg_.readahead_max = v; return *this; }
    Config &plan_window(uint64_t v) { cfg_.plan_window = v; return *this; }
    /** A snapshot file (path or s3:// URL) the Client opens objects from;
     *  "" for none (unset: DSC_SNAPSHOT). */
    Config &snapshot(std::string v) { snapshot_ = std::move(v); return *this; }

    /** The dsc_config; its strings point into this Config, so use it
     *  while this Config lives and is not changed. */
    dsc_config raw() const
    {
        dsc_config c = cfg_;
        c.endpoint = ptr(endpoint_);
        c.region = ptr(region_);
        c.access_key_id = ptr(access_key_id_);
        c.secret_access_key = ptr(secret_);
        c.session_token = ptr(token_);
        c.profile = ptr(profile_);
        c.ca_file = ptr(ca_file_);
        c.cache_dir = ptr(cache_dir_);
        c.snapshot = ptr(snapshot_);
        return c;
    }

private:
    static const char *ptr(const std::optional<std::string> &s)
    {
        if (s && s->find('\0') != std::string::npos)
            throw Error(DSC_EINVAL, "config string contains a NUL character");
        return s ? s->c_str() : nullptr;
    }
    dsc_config cfg_;
    std::optional<std::string> endpoint_, region_, access_key_id_, secret_,
        token_, profile_, ca_file_, cache_dir_, snapshot_;
};

/** One object of a listing. */
struct ObjectInfo {
    std::string url;
    std::string key;
    uint64_t size = 0;
    std::string etag;
    std::string last_modified;
};

/** An opened object version (one HEAD fixed its size and ETag). */
class File {
public:
    File() = default;
    File(const File &) = delete;
    File &operator=(const File &) = delete;
    File(File &&other) noexcept
        : ctx_(std::move(other.ctx_)), f_(std::exchange(other.f_, nullptr)),
          url_(std::move(other.url_)) {}
    File &operator=(File &&other) noexcept
    {
        if (this != &other) {
            close();
            ctx_ = std::move(other.ctx_);
            f_ = std::exchange(other.f_, nullptr);
            url_ = std::move(other.url_);
        }
        return *this;
    }
    ~File() { close(); }

    bool is_open() const noexcept { return f_ != nullptr; }
    explicit operator bool() const noexcept { return is_open(); }
    dsc_file *get() const noexcept { return f_; }
    const std::string &url() const noexcept { return url_; }

    uint64_t size() const { return static_cast<uint64_t>(dsc_size(handle())); }
    /** With its quotes, as S3 sent it. */
    std::string etag() const { return dsc_etag(handle()); }

    /** Up to len bytes at off into buf; fewer only at the end of the
     *  object. Thread-safe; does not move the position. */
    size_t pread(void *buf, size_t len, uint64_t off) const
    {
        ssize_t n = dsc_pread(handle(), buf, len, off);
        if (n < 0)
            detail::fail(n);
        return static_cast<size_t>(n);
    }

    std::vector<std::byte> pread(uint64_t off, size_t len) const
    {
        uint64_t sz = size();
        size_t want = off >= sz ? 0 : static_cast<size_t>(std::min<uint64_t>(len, sz - off));
        std::vector<std::byte> out(want);
        out.resize(want ? pread(out.data(), want, off) : 0);
        return out;
    }

    /** The whole object. */
    std::vector<std::byte> read_all() const
    {
        return pread(0, static_cast<size_t>(size()));
    }

    /** Read at the position, which advances. */
    size_t read(void *buf, size_t len)
    {
        ssize_t n = dsc_read(handle(), buf, len);
        if (n < 0)
            detail::fail(n);
        return static_cast<size_t>(n);
    }

    /** As lseek(2): whence SEEK_SET, SEEK_CUR or SEEK_END. */
    int64_t seek(int64_t off, int whence = SEEK_SET)
    {
        int64_t pos = dsc_seek(handle(), off, whence);
        if (pos < 0)
            detail::fail(pos);
        return pos;
    }

    int64_t tell() { return seek(0, SEEK_CUR); }

    /** Queue [off, off+len) (len 0: to the end) for background fetching
     *  into the node cache; returns at once. */
    void prefetch(uint64_t off = 0, uint64_t len = 0)
    {
        int rc = dsc_prefetch(handle(), off, len);
        if (rc)
            detail::fail(rc);
    }

    /** Make sure [off, off+len) is cached; returns bytes fetched from S3. */
    int64_t warm(uint64_t off = 0, uint64_t len = 0)
    {
        int64_t n = dsc_warm(handle(), off, len);
        if (n < 0)
            detail::fail(n);
        return n;
    }

    void close() noexcept
    {
        dsc_close(std::exchange(f_, nullptr));
        ctx_.reset();
    }

private:
    friend class Client;
    File(std::shared_ptr<dsc_ctx> ctx, dsc_file *f, std::string url)
        : ctx_(std::move(ctx)), f_(f), url_(std::move(url)) {}

    dsc_file *handle() const
    {
        if (!f_)
            throw Error(DSC_EINVAL, "dsc::File is closed or moved from");
        return f_;
    }

    std::shared_ptr<dsc_ctx> ctx_;   // the context outlives its files
    dsc_file *f_ = nullptr;
    std::string url_;
};

class Snapshot;

/** A libdsc context: S3 connections, credentials, the node cache. Copies
 *  share the context. */
class Client {
public:
    explicit Client(const Config &config = Config())
    {
        dsc_config raw = config.raw();
        open(raw);
    }
    explicit Client(const dsc_config &raw) { open(raw); }

    dsc_ctx *get() const noexcept { return ctx_.get(); }
    explicit operator bool() const noexcept { return ctx_ != nullptr; }

    File open(const std::string &url) const
    {
        dsc_file *f = nullptr;
        int rc = dsc_open(handle(), detail::c_url(url), &f);
        if (rc)
            detail::fail(rc);
        return File(ctx_, f, url);
    }

    /** One object of read_batch: url and buffer in (data.size() is the
     *  capacity), then size (the object's), len (bytes in data) and
     *  status (0 or a DSC_E* code). */
    struct BatchRead {
        std::string url;
        std::vector<std::byte> data;
        int64_t size = -1;
        size_t len = 0;
        int status = 0;
    };

    /** Read whole objects concurrently into each item's data (dsc_read_batch,
     *  `threads` at once, 0: 16). An item whose data is empty is sized first
     *  (its object's size, one open); data is then cut to len. Returns the
     *  number of failed items (each has its status); throws only for bad
     *  arguments. */
    size_t read_batch(std::vector<BatchRead> &reads, unsigned threads = 0) const
    {
        std::vector<dsc_batch_item> items(reads.size());
        bool unsized = false;
        for (size_t i = 0; i < reads.size(); i++) {
            items[i].url = detail::c_url(reads[i].url);
            unsized |= reads[i].data.empty();
        }
        if (unsized) {
            ssize_t rc = dsc_read_batch(handle(), items.data(), items.size(), threads);
            if (rc < 0)
                detail::fail(rc);
            for (size_t i = 0; i < reads.size(); i++)
                if (reads[i].data.empty() && items[i].size > 0)
                    reads[i].data.resize(static_cast<size_t>(items[i].size));
        }
        for (size_t i = 0; i < reads.size(); i++) {
            items[i].buf = reads[i].data.data();
            items[i].cap = reads[i].data.size();
        }
        ssize_t failed = dsc_read_batch(handle(), items.data(), items.size(), threads);
        if (failed < 0)
            detail::fail(failed);
        for (size_t i = 0; i < reads.size(); i++) {
            reads[i].size = items[i].size;
            reads[i].len = items[i].len;
            reads[i].status = items[i].status;
            reads[i].data.resize(items[i].len);
        }
        return static_cast<size_t>(failed);
    }

    /** Bytes [off, off+len) of an object (len npos: to its end). */
    std::vector<std::byte> read(const std::string &url, uint64_t off = 0,
                                size_t len = std::numeric_limits<size_t>::max()) const
    {
        return open(url).pread(off, len);
    }

    /** Every object under s3://bucket/prefix, in key order. */
    std::vector<ObjectInfo> list(const std::string &prefix) const
    {
        std::vector<ObjectInfo> out;
        list(prefix, [&out](const ObjectInfo &o) {
            out.push_back(o);
            return true;
        });
        return out;
    }

    /** Streams the listing to each(); each returning false stops it early.
     *  An exception from each() stops the listing and is rethrown.
     *  Returns the number of objects passed to each(). */
    int64_t list(const std::string &prefix,
                 const std::function<bool(const ObjectInfo &)> &each) const
    {
        ListState st{&each, nullptr, 0, false};
        int64_t n = dsc_list(handle(), detail::c_url(prefix), &Client::on_object, &st);
        if (st.error)
            std::rethrow_exception(st.error);
        if (n < 0 && !(n == DSC_ECANCELED && st.stopped))
            detail::fail(n);
        return st.seen;
    }

    dsc_stats stats() const
    {
        dsc_stats st{};
        int rc = dsc_stats_get(handle(), &st, sizeof st);
        if (rc)
            detail::fail(rc);
        return st;
    }

    /** The node cache directory; empty when there is none. */
    std::string cache_dir() const
    {
        const char *d = dsc_cache_dir(handle());
        return d ? d : "";
    }

    /** Queue a whole object for background fetching; returns at once. */
    void prefetch(const std::string &url) const
    {
        int rc = dsc_prefetch_url(handle(), detail::c_url(url));
        if (rc)
            detail::fail(rc);
    }

    /** Wait for every queued prefetch; false when timeout passed first
     *  (negative: no limit). */
    bool wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) const
    {
        int rc = dsc_prefetch_wait(handle(), static_cast<long>(timeout.count()));
        if (rc == DSC_ETIMEDOUT)
            return false;
        if (rc)
            detail::fail(rc);
        return true;
    }

    /** Open objects under s's bucket and prefix from it: no HEAD, no LIST,
     *  reads pinned to the listed versions (dsc_ctx_use_snapshot). The
     *  context keeps its own reference. */
    void use_snapshot(const Snapshot &s) const;
    /** Stop using a snapshot. */
    void no_snapshot() const
    {
        int rc = dsc_ctx_use_snapshot(handle(), nullptr);
        if (rc)
            detail::fail(rc);
    }

private:
    void open(const dsc_config &raw)
    {
        dsc_ctx *ctx = nullptr;
        int rc = dsc_ctx_open(&raw, &ctx);
        if (rc)
            detail::fail(rc);
        ctx_.reset(ctx, detail::CtxCloser());
    }

    dsc_ctx *handle() const
    {
        if (!ctx_)
            throw Error(DSC_EINVAL, "dsc::Client is moved from");
        return ctx_.get();
    }

    struct ListState {
        const std::function<bool(const ObjectInfo &)> *each;
        std::exception_ptr error;
        int64_t seen;
        bool stopped;
    };

    // Called from C: exceptions must not cross it, so they are carried.
    static int on_object(void *arg, const dsc_object_info *o) noexcept
    {
        auto *st = static_cast<ListState *>(arg);
        try {
            ObjectInfo info{o->url, o->key, o->size, o->etag ? o->etag : "",
                            o->last_modified ? o->last_modified : ""};
            ++st->seen;
            if (!(*st->each)(info))
                st->stopped = true;
        } catch (...) {
            st->error = std::current_exception();
            st->stopped = true;
        }
        return st->stopped ? 1 : 0;
    }

    std::shared_ptr<dsc_ctx> ctx_;
};

/** One object of a snapshot. */
struct SnapshotEntry {
    std::string key;
    uint64_t size = 0;
    std::string etag;
};

/** Keys that differ between two snapshots, in key order. */
struct SnapshotDiff {
    std::vector<std::string> changed, deleted, added;
    uint64_t same = 0;
    /** "3 changed, 1 deleted, 2 new" */
    std::string summary() const
    {
        return std::to_string(changed.size()) + " changed, " +
               std::to_string(deleted.size()) + " deleted, " +
               std::to_string(added.size()) + " new";
    }
};

/** A dataset's objects listed once (dsc_snapshot): immutable, shared by
 *  its copies, thread-safe. */
class Snapshot {
public:
    /** List s3://bucket/prefix once. */
    static Snapshot list(const Client &client, const std::string &url)
    {
        dsc_snapshot *s = nullptr;
        int rc = dsc_snapshot_list(ctx_of(client), detail::c_url(url), &s);
        if (rc)
            detail::fail(rc);
        return Snapshot(s);
    }

    /** Load a local snapshot file. */
    static Snapshot load(const std::string &path) { return load(nullptr, path); }

    /** Load a snapshot file: a path, or an s3:// URL read through client. */
    static Snapshot load(const Client &client, const std::string &src)
    {
        return load(ctx_of(client), src);
    }

    /** Write atomically (temporary file, fsync, rename). */
    void save(const std::string &path) const
    {
        int rc = dsc_snapshot_save(get(), detail::c_url(path));
        if (rc)
            detail::fail(rc);
    }

    dsc_snapshot_summary summary() const
    {
        dsc_snapshot_summary m{};
        int rc = dsc_snapshot_summarize(get(), &m, sizeof m);
        if (rc)
            detail::fail(rc);
        return m;
    }

    size_t size() const { return dsc_snapshot_count(get()); }

    SnapshotEntry at(size_t i) const
    {
        dsc_object_info o{};
        int rc = dsc_snapshot_get(get(), i, &o);
        if (rc)
            detail::fail(rc);
        return SnapshotEntry{o.key, o.size, o.etag};
    }
    SnapshotEntry operator[](size_t i) const { return at(i); }

    /** The version id entry i was listed at (a versioned bucket), if any. */
    std::optional<std::string> version_id(size_t i) const
    {
        const char *v = dsc_snapshot_version_id(get(), i);
        if (!v)
            return std::nullopt;
        return std::string(v);
    }

    /** Index of key (not a URL), if it is there. */
    std::optional<size_t> find(const std::string &key) const
    {
        int64_t i = dsc_snapshot_find(get(), detail::c_url(key));
        if (i < 0)
            return std::nullopt;
        return static_cast<size_t>(i);
    }

    /** s3:// URLs of the objects, in key order. */
    std::vector<std::string> urls() const
    {
        std::string head = std::string("s3://") + summary().bucket + "/";
        std::vector<std::string> out;
        out.reserve(size());
        for (size_t i = 0; i < size(); i++)
            out.push_back(head + at(i).key);
        return out;
    }

    /** From this (older) snapshot to newer. */
    SnapshotDiff diff(const Snapshot &newer) const
    {
        SnapshotDiff d;
        dsc_snapshot_delta delta{};
        int rc = dsc_snapshot_diff_each(get(), newer.get(), &Snapshot::on_diff,
                                        &d, &delta);
        if (rc)
            detail::fail(rc);
        d.same = delta.same;
        return d;
    }

    const dsc_snapshot *get() const
    {
        if (!s_)
            throw Error(DSC_EINVAL, "dsc::Snapshot is moved from");
        return s_.get();
    }

private:
    explicit Snapshot(dsc_snapshot *s) : s_(s, &dsc_snapshot_free) {}

    static Snapshot load(dsc_ctx *ctx, const std::string &src)
    {
        dsc_snapshot *s = nullptr;
        int rc = dsc_snapshot_load(ctx, detail::c_url(src), &s);
        if (rc)
            detail::fail(rc);
        return Snapshot(s);
    }

    static dsc_ctx *ctx_of(const Client &client)
    {
        if (!client)
            throw Error(DSC_EINVAL, "dsc::Client is moved from");
        return client.get();
    }

    // Called from C: no exception may cross it (push_back may throw).
    static int on_diff(void *arg, int what, const dsc_object_info *a,
                       const dsc_object_info *b) noexcept
    {
        auto *d = static_cast<SnapshotDiff *>(arg);
        try {
            std::string key = b ? b->key : a->key;
            (what == DSC_DIFF_CHANGED ? d->changed
             : what == DSC_DIFF_DELETED ? d->deleted : d->added).push_back(key);
            return 0;
        } catch (...) {
            return 1;
        }
    }

    std::shared_ptr<dsc_snapshot> s_;
};

inline void Client::use_snapshot(const Snapshot &s) const
{
    int rc = dsc_ctx_use_snapshot(handle(), s.get());
    if (rc)
        detail::fail(rc);
}

} // namespace dsc

#include "dsc_loader.hpp"

#endif
