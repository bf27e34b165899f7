/*
 * dsc_loader.hpp - the C++ batch Loader of dsc.hpp (which includes this
 * file): epochs over a URL list in a shuffled order, split among ranks and
 * workers, read by threads ahead of the consumer, resumable mid-epoch.
 *
 *   dsc::LoaderOptions opt;                // rank, world size: torchrun's
 *   opt.batch_size = 64;                   // RANK / WORLD_SIZE by default
 *   opt.epochs = 10;
 *   dsc::Loader loader(client, urls, opt, saved);   // or without `saved`
 *   while (auto batch = loader.next()) {
 *       train(batch->samples);
 *       if (time_to_checkpoint && rank == 0)
 *           write(loader.state().to_string());
 *   }
 *
 * The shuffle is the portable generator specified in
 * bindings/python/dsc/sampling.py, so dsc::permutation(n, seed, epoch) is
 * the same list as Python's dsc.permutation, and a Loader's part of an
 * epoch is the one dsc.DistributedSampler gives the same rank.
 */
#ifndef DSC_LOADER_HPP
#define DSC_LOADER_HPP

#include "dsc.hpp"

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdlib>
#include <set>
#include <string_view>

namespace dsc {

/** The portable shuffle generator (bindings/python/dsc/sampling.py): a
 *  SplitMix64 stream keyed by (seed, epoch, stream). */
class Rng {
public:
    explicit Rng(uint64_t seed, uint64_t epoch = 0, uint64_t stream = 0) noexcept
        : state_(mix(seed) ^ mix(epoch + kGamma) ^ mix(stream + 2 * kGamma)) {}

    uint64_t next() noexcept
    {
        state_ += kGamma;
        return mix(state_);
    }

    /** Uniform in [0, m), m >= 1: rejection, no modulo bias. */
    uint64_t below(uint64_t m) noexcept
    {
        uint64_t rem = (0 - m) % m;         // 2^64 mod m
        for (;;) {
            uint64_t x = next();
            if (rem == 0 || x < 0 - rem)
                return x % m;
        }
    }

    uint64_t state() const noexcept { return state_; }

private:
    static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;

    static uint64_t mix(uint64_t z) noexcept
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    uint64_t state_;
};

/** The epoch's order of 0..n-1 for (seed, epoch): Fisher-Yates driven by
 *  Rng(seed, epoch), the same list as Python's dsc.permutation. */
inline std::vector<size_t> permutation(size_t n, uint64_t seed, uint64_t epoch = 0)
{
    std::vector<size_t> a(n);
    std::iota(a.begin(), a.end(), size_t{0});
    Rng rng(seed, epoch);
    for (size_t i = n > 0 ? n - 1 : 0; i > 0; i--)
        std::swap(a[i], a[rng.below(i + 1)]);
    return a;
}

/**
 * Where a Loader is in its run: enough to resume it mid-epoch in another
 * process, with the same or another number of ranks and workers.
 *
 * Every part (rank x worker) of an epoch takes every parts-th sample of
 * the epoch's order, so when each part has consumed k samples the parts
 * together consumed a prefix of that order; `consumed` is its length. A
 * state is the same on every rank and worker when all consumed the same
 * count: save rank 0's.
 */
struct LoaderState {
    std::string dataset;          // fingerprint of the URL list
    uint64_t num_samples = 0;
    uint64_t seed = 0;
    bool shuffle = true;
    unsigned epoch = 0;           // the epoch to go on with
    uint64_t consumed = 0;        // of its order, a prefix
    unsigned world_size = 1;      // of the run that saved it, for the record
    unsigned num_workers = 1;

    /** One line of JSON, for a checkpoint file. */
    std::string to_string() const
    {
        auto num = [](uint64_t v) { return std::to_string(v); };
        return std::string("{\"kind\": \"") + kKind + "\", \"version\": 1, \"dataset\": \"" +
               dataset + "\", \"num_samples\": " + num(num_samples) + ", \"seed\": " +
               num(seed) + ", \"shuffle\": " + (shuffle ? "true" : "false") +
               ", \"epoch\": " + num(epoch) + ", \"consumed\": " + num(consumed) +
               ", \"world_size\": " + num(world_size) + ", \"num_workers\": " +
               num(num_workers) + "}";
    }

    /** The state to_string() wrote; anything else throws Error(DSC_EINVAL)
     *  saying what is wrong with it. */
    static LoaderState parse(std::string_view text)
    {
        LoaderState s;
        Reader r{text};
        bool kind = false, version = false;
        unsigned seen = 0;
        std::set<std::string> seen_keys;
        r.expect('{');
        for (bool first = true; !r.peek('}'); first = false) {
            if (!first)
                r.expect(',');
            std::string key = r.string();
            r.expect(':');
            if (!seen_keys.insert(key).second)
                r.fail("key \"" + key + "\" given twice");
            if (key == "kind")
                kind = r.string() == kKind || r.fail("its kind is not \"dsc.Loader\"");
            else if (key == "version")
                version = r.number(1) == 1 || r.fail("version 1 is the one this dsc knows");
            else if (key == "dataset")
                s.dataset = r.string(), seen |= 1;
            else if (key == "num_samples")
                s.num_samples = r.number(UINT64_MAX), seen |= 2;
            else if (key == "seed")
                s.seed = r.number(UINT64_MAX), seen |= 4;
            else if (key == "shuffle")
                s.shuffle = r.boolean(), seen |= 8;
            else if (key == "epoch")
                s.epoch = static_cast<unsigned>(r.number(UINT_MAX)), seen |= 16;
            else if (key == "consumed")
                s.consumed = r.number(UINT64_MAX), seen |= 32;
            else if (key == "world_size")
                s.world_size = static_cast<unsigned>(r.number(UINT_MAX)), seen |= 64;
            else if (key == "num_workers")
                s.num_workers = static_cast<unsigned>(r.number(UINT_MAX)), seen |= 128;
            else
                r.fail("unknown key \"" + key + "\"");
        }
        r.expect('}');
        r.end();
        if (!kind || !version || seen != 255)
            r.fail("a key is missing (kind, version, dataset, num_samples, seed, "
                   "shuffle, epoch, consumed, world_size, num_workers)");
        if (s.consumed > s.num_samples)
            r.fail("consumed is larger than num_samples");
        return s;
    }

private:
    static constexpr const char *kKind = "dsc.Loader";

    /* The flat JSON objects to_string() writes: string values of
     * [A-Za-z0-9:._-], unsigned integers, booleans. */
    struct Reader {
        std::string_view in;
        size_t pos = 0;

        [[noreturn]] bool fail(const std::string &why) const
        {
            throw Error(DSC_EINVAL, "dsc::LoaderState: not a saved Loader state (" +
                                        why + ", at byte " + std::to_string(pos) + ")");
        }
        void blank()
        {
            while (pos < in.size() && (in[pos] == ' ' || in[pos] == '\n' ||
                                       in[pos] == '\t' || in[pos] == '\r'))
                pos++;
        }
        bool peek(char c)
        {
            blank();
            return pos < in.size() && in[pos] == c;
        }
        void expect(char c)
        {
            if (!peek(c))
                fail(std::string("expected '") + c + "'");
            pos++;
        }
        void end()
        {
            blank();
            if (pos != in.size())
                fail("text after the object");
        }
        std::string string()
        {
            expect('"');
            size_t start = pos;
            while (pos < in.size() && in[pos] != '"') {
                char c = in[pos];
                if (!(std::isalnum(static_cast<unsigned char>(c)) || c == ':' ||
                      c == '.' || c == '_' || c == '-'))
                    fail("unexpected character in a string");
                pos++;
            }
            if (pos >= in.size())
                fail("unterminated string");
            return std::string(in.substr(start, pos++ - start));
        }
        uint64_t number(uint64_t max)
        {
            blank();
            uint64_t v = 0;
            size_t start = pos;
            for (; pos < in.size() && in[pos] >= '0' && in[pos] <= '9'; pos++) {
                uint64_t d = static_cast<uint64_t>(in[pos] - '0');
                if (v > (max - d) / 10)
                    fail("number out of range");
                v = v * 10 + d;
            }
            if (pos == start)
                fail("expected an unsigned integer");
            return v;
        }
        bool boolean()
        {
            blank();
            for (std::string_view word : {"true", "false"})
                if (in.substr(pos, word.size()) == word) {
                    pos += word.size();
                    return word[0] == 't';
                }
            fail("expected true or false");
        }
    };
};

/** One loaded object. */
struct Sample {
    std::string url;
    std::vector<std::byte> data;
};

/** Consecutive samples of this part's share of an epoch. */
struct Batch {
    unsigned epoch = 0;
    size_t index = 0;              // within the epoch's run here (a resumed
                                   // epoch counts from its resumption)
    std::vector<Sample> samples;
};

struct LoaderOptions {
    unsigned threads = 4;          // objects read at once
    size_t batch_size = 32;
    size_t queue_depth = 4;        // batches loaded or loading ahead of
                                   // the consumer, at most
    uint64_t seed = 0;             // epoch e's order: permutation(n, seed, e)
    unsigned epochs = 1;
    bool shuffle = true;           // false: the order of the url list
    bool drop_last = false;        // drop an epoch's short last batch

    /* The split (rank first, then worker): part p = rank + worker x
     * world_size of parts = world_size x num_workers takes the epoch's
     * samples p, p + parts, p + 2 parts, ... Every part gets the same
     * count, so DDP ranks see the same number of batches: the order's
     * tail is dropped (drop_tail) or filled by repeating samples from its
     * start, as torch's DistributedSampler. */
    std::optional<unsigned> rank;        // default: $RANK (torchrun), else 0
    std::optional<unsigned> world_size;  // default: $WORLD_SIZE, else 1
    unsigned worker = 0;                 // for several loader processes
    unsigned num_workers = 1;            // per rank; one Loader's threads
                                         // share its part already
    bool drop_tail = false;
};

/**
 * Multi-threaded batch loader over a list of URLs: each epoch visits this
 * part's share of the URLs once in the epoch's order, cut into batches
 * that next() hands out in order. Worker threads read ahead of the
 * consumer by at most queue_depth batches, so memory stays bounded by
 * queue_depth x batch_size objects.
 *
 * state() says where the consumer is; a Loader constructed with it goes on
 * with the rest of that epoch (each sample once, also under another world
 * size), then the later epochs up to options.epochs.
 *
 * A read failure is rethrown by next() (and by every later call).
 * Destroying a Loader mid-epoch stops its threads: each finishes the
 * object it is reading, and the destructor returns.
 */
class Loader {
public:
    Loader(Client client, std::vector<std::string> urls, LoaderOptions opt = {})
        : Loader(std::move(client), std::move(urls), opt, nullptr) {}

    Loader(Client client, std::vector<std::string> urls, LoaderOptions opt,
           const LoaderState &resume)
        : Loader(std::move(client), std::move(urls), opt, &resume) {}

    Loader(const Loader &) = delete;
    Loader &operator=(const Loader &) = delete;

    ~Loader() { stop_threads(); }

    /** Batches of a whole epoch here, and of this run (after a resume). */
    size_t batches_per_epoch() const noexcept { return later_.batches; }
    size_t total_batches() const noexcept { return total_; }
    unsigned rank() const noexcept { return rank_; }
    unsigned world_size() const noexcept { return world_; }

    /** The fingerprint a state keeps of a URL list (FNV-1a 64). */
    static std::string dataset_id(const std::vector<std::string> &urls)
    {
        uint64_t h = 0xcbf29ce484222325ull;
        for (const std::string &u : urls)
            for (size_t i = 0; i <= u.size(); i++) {
                h ^= i < u.size() ? static_cast<unsigned char>(u[i]) : '\n';
                h *= 0x100000001b3ull;
            }
        char buf[32];
        std::snprintf(buf, sizeof buf, "fnv1a64:%016" PRIx64, h);
        return buf;
    }

    /** The next batch, waiting for it; nullopt after the last epoch. */
    std::optional<Batch> next()
    {
        std::unique_lock<std::mutex> lk(mu_);
        if (error_)
            std::rethrow_exception(error_);
        if (consumed_ >= total_)
            return std::nullopt;
        // Another consumer thread may take the last batch meanwhile.
        ready_.wait(lk, [this] {
            auto it = pending_.find(consumed_);
            return error_ || consumed_ >= total_ ||
                   (it != pending_.end() && it->second.remaining == 0);
        });
        if (error_)
            std::rethrow_exception(error_);
        if (consumed_ >= total_)
            return std::nullopt;
        auto node = pending_.extract(consumed_);
        consumed_++;
        lk.unlock();
        work_.notify_all();
        ready_.notify_all();       // waiting consumers: the next, or none
        return std::move(node.mapped().batch);
    }

    /** Where the consumer is: the batches next() handed out count as
     *  consumed. After the last batch, the state of a finished run. */
    LoaderState state() const
    {
        LoaderState s;
        s.dataset = id_;
        s.num_samples = urls_.size();
        s.seed = opt_.seed;
        s.shuffle = opt_.shuffle;
        s.world_size = world_;
        s.num_workers = opt_.num_workers;
        std::lock_guard<std::mutex> lk(mu_);
        if (consumed_ >= total_) {
            s.epoch = std::max(opt_.epochs, first_.epoch);
            return s;
        }
        Where w = locate(consumed_);
        s.epoch = w.epoch;
        uint64_t taken = uint64_t{w.index} * opt_.batch_size * parts_;
        s.consumed = std::min<uint64_t>(urls_.size(), w.run->start + taken);
        return s;
    }

private:
    /* One epoch's run in this part: where in the epoch's order it starts
     * (past a resumed prefix) and how much of it is ours. */
    struct Run {
        unsigned epoch = 0;
        uint64_t start = 0;
        size_t count = 0;          // this part's samples
        size_t batches = 0;
    };
    struct Where {
        unsigned epoch;
        size_t index;              // batch within the run
        const Run *run;
    };
    struct Slot {
        Batch batch;
        size_t remaining = 0;
    };

    Loader(Client client, std::vector<std::string> urls, LoaderOptions opt,
           const LoaderState *resume)
        : client_(std::move(client)), urls_(std::move(urls)), opt_(opt),
          id_(dataset_id(urls_))
    {
        if (!client_)
            throw Error(DSC_EINVAL, "dsc::Loader: client is moved from");
        if (opt_.threads == 0 || opt_.batch_size == 0 || opt_.queue_depth == 0)
            throw Error(DSC_EINVAL, "dsc::Loader: threads, batch_size and "
                                    "queue_depth must be positive");
        world_ = opt_.world_size ? *opt_.world_size : from_env("WORLD_SIZE", 1);
        rank_ = opt_.rank ? *opt_.rank : from_env("RANK", 0);
        if (!opt_.rank && world_ > 1 && !std::getenv("RANK"))
            // Every process would be rank 0 and read the same part.
            throw Error(DSC_EINVAL, "dsc::Loader: world size " + std::to_string(world_) +
                                        " but no rank (LoaderOptions::rank or RANK)");
        if (world_ == 0 || rank_ >= world_ || opt_.num_workers == 0 ||
            opt_.worker >= opt_.num_workers)
            throw Error(DSC_EINVAL, "dsc::Loader: rank " + std::to_string(rank_) +
                                        " of world size " + std::to_string(world_) +
                                        ", worker " + std::to_string(opt_.worker) +
                                        " of " + std::to_string(opt_.num_workers) +
                                        ": need rank < world size, worker < workers");
        parts_ = uint64_t{world_} * opt_.num_workers;
        part_ = rank_ + uint64_t{opt_.worker} * world_;
        if (resume)
            check(*resume);
        first_ = plan(resume ? resume->epoch : 0, resume ? resume->consumed : 0);
        later_ = plan(first_.epoch + 1, 0);
        total_ = 0;
        if (first_.epoch < opt_.epochs)
            total_ = first_.batches + later_.batches * (opt_.epochs - first_.epoch - 1);
        threads_.reserve(opt_.threads);
        try {
            for (unsigned i = 0; i < opt_.threads; i++)
                threads_.emplace_back(&Loader::work, this);
        } catch (...) {
            stop_threads();
            throw;
        }
    }

    static unsigned from_env(const char *name, unsigned unset)
    {
        const char *v = std::getenv(name);
        if (!v || !*v)
            return unset;
        char *end;
        errno = 0;
        unsigned long long n = std::strtoull(v, &end, 10);
        if (*end || errno || n > UINT_MAX || !std::isdigit(static_cast<unsigned char>(*v)))
            throw Error(DSC_EINVAL, std::string("dsc::Loader: ") + name + "=" + v +
                                        " is not a rank number");
        return static_cast<unsigned>(n);
    }

    void check(const LoaderState &s) const
    {
        auto differs = [](const char *what, const std::string &theirs,
                          const std::string &ours) {
            throw Error(DSC_EINVAL, std::string("dsc::Loader: the state is for ") +
                                        what + "=" + theirs + ", this loader has " +
                                        what + "=" + ours +
                                        ": it belongs to another dataset or run");
        };
        if (s.dataset != id_)
            differs("dataset", s.dataset, id_);
        if (s.num_samples != urls_.size())
            differs("num_samples", std::to_string(s.num_samples),
                    std::to_string(urls_.size()));
        if (s.seed != opt_.seed)
            differs("seed", std::to_string(s.seed), std::to_string(opt_.seed));
        if (s.shuffle != opt_.shuffle)
            differs("shuffle", s.shuffle ? "true" : "false",
                    opt_.shuffle ? "true" : "false");
        if (s.consumed > urls_.size())
            throw Error(DSC_EINVAL, "dsc::Loader: the state's consumed is past "
                                    "the end of the epoch");
        if (s.epoch > opt_.epochs)
            throw Error(DSC_EINVAL, "dsc::Loader: the state is at epoch " +
                                        std::to_string(s.epoch) + " of a run of " +
                                        std::to_string(opt_.epochs) + " epochs");
    }

    Run plan(unsigned epoch, uint64_t start) const
    {
        Run r;
        r.epoch = epoch;
        r.start = start;
        uint64_t rest = urls_.size() - start;
        r.count = opt_.drop_tail ? rest / parts_ : (rest + parts_ - 1) / parts_;
        r.batches = opt_.drop_last ? r.count / opt_.batch_size
                                   : (r.count + opt_.batch_size - 1) / opt_.batch_size;
        return r;
    }

    Where locate(size_t batch) const
    {
        if (batch < first_.batches)
            return {first_.epoch, batch, &first_};
        size_t later = batch - first_.batches;
        return {static_cast<unsigned>(first_.epoch + 1 + later / later_.batches),
                later % later_.batches, &later_};
    }

    /* This part's samples of an epoch's run: every parts-th of the order
     * from the run's start; past the end (padding), the run's own samples
     * again from its start, as dsc.sampling.split. */
    void make_order(const Where &w)
    {
        std::vector<size_t> order = opt_.shuffle ? permutation(urls_.size(), opt_.seed, w.epoch)
                                                 : std::vector<size_t>(urls_.size());
        if (!opt_.shuffle)
            std::iota(order.begin(), order.end(), size_t{0});
        uint64_t rest = urls_.size() - w.run->start;
        order_.resize(w.run->count);
        for (size_t j = 0; j < w.run->count; j++) {
            uint64_t p = part_ + j * parts_;
            order_[j] = order[w.run->start + (p < rest ? p : (p - rest) % rest)];
        }
        order_epoch_ = w.epoch;
    }

    size_t batch_len(const Where &w) const
    {
        return std::min(opt_.batch_size, w.run->count - w.index * opt_.batch_size);
    }

    /* Claims the next sample, or returns false when there is nothing more
     * to do. Called with mu_ held. */
    bool claim(std::unique_lock<std::mutex> &lk, size_t &batch, size_t &slot,
               size_t &url)
    {
        work_.wait(lk, [this] {
            return stop_ || error_ || claim_batch_ >= total_ ||
                   claim_batch_ < consumed_ + opt_.queue_depth;
        });
        if (stop_ || error_ || claim_batch_ >= total_)
            return false;
        batch = claim_batch_;
        slot = claim_slot_;
        Where w = locate(batch);
        if (!order_epoch_ || *order_epoch_ != w.epoch)
            make_order(w);
        size_t len = batch_len(w);
        if (slot == 0) {
            Slot &s = pending_[batch];
            s.batch.epoch = w.epoch;
            s.batch.index = w.index;
            s.batch.samples.resize(len);
            s.remaining = len;
        }
        url = order_[w.index * opt_.batch_size + slot];
        if (++claim_slot_ == len) {
            claim_batch_++;
            claim_slot_ = 0;
        }
        return true;
    }

    void work()
    {
        for (;;) {
            size_t batch, slot, url;
            {
                std::unique_lock<std::mutex> lk(mu_);
                try {
                    if (!claim(lk, batch, slot, url))
                        return;
                } catch (...) {
                    // Out of memory making an epoch's order or a batch:
                    // the consumer gets it, the process is not ended.
                    if (!error_)
                        error_ = std::current_exception();
                    ready_.notify_all();
                    work_.notify_all();
                    return;
                }
            }
            Sample sample;
            try {
                sample.url = urls_[url];
                sample.data = client_.open(sample.url).read_all();
            } catch (...) {
                std::lock_guard<std::mutex> lk(mu_);
                if (!error_)
                    error_ = std::current_exception();
                ready_.notify_all();
                work_.notify_all();
                return;
            }
            std::lock_guard<std::mutex> lk(mu_);
            Slot &s = pending_[batch];
            s.batch.samples[slot] = std::move(sample);
            if (--s.remaining == 0)
                ready_.notify_all();
        }
    }

    void stop_threads() noexcept
    {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        work_.notify_all();
        for (auto &t : threads_)
            if (t.joinable())
                t.join();
    }

    /* Set by the constructor, read-only after. */
    Client client_;
    const std::vector<std::string> urls_;
    const LoaderOptions opt_;
    const std::string id_;
    unsigned rank_ = 0, world_ = 1;
    uint64_t parts_ = 1, part_ = 0;
    Run first_, later_;            // the run's first epoch, and the others
    size_t total_ = 0;

    /* Guarded by mu_. */
    mutable std::mutex mu_;
    std::condition_variable work_, ready_;
    size_t claim_batch_ = 0, claim_slot_ = 0;  // next sample to claim
    size_t consumed_ = 0;                      // batches handed out
    std::map<size_t, Slot> pending_;           // claimed, not handed out
    std::vector<size_t> order_;                // this part's, of *order_epoch_
    std::optional<unsigned> order_epoch_;
    bool stop_ = false;
    std::exception_ptr error_;

    std::vector<std::thread> threads_;
};

} // namespace dsc

#endif
