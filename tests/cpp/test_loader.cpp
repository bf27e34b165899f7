/* dsc::Loader (bindings/cpp/dsc_loader.hpp) against a real s3rver: every
 * URL once per epoch with the right bytes, bounded read-ahead, errors
 * reaching the consumer, prompt stop when destroyed mid-epoch; the split
 * among ranks and workers, the shuffle shared with Python, and resuming
 * from saved state in new processes, also with another world size.
 *
 * Run through tests/run.sh (see cpptest.h). Prints "cpp-loader: N passed,
 * M failed". */
#include "cpptest.h"

#include <array>
#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

namespace {

static_assert(!std::is_copy_constructible_v<dsc::Loader>);


/* Every URL exactly once per epoch, batches in order, right bytes. */
void check_epochs(dsc::Loader &loader, const std::vector<std::string> &urls,
                  const std::map<std::string, std::vector<std::byte>> &want,
                  unsigned epochs, size_t batch, bool drop_last,
                  std::vector<std::vector<std::string>> *orders)
{
    size_t per_epoch = drop_last ? urls.size() / batch : (urls.size() + batch - 1) / batch;
    CHECK(loader.batches_per_epoch() == per_epoch);
    CHECK(loader.total_batches() == per_epoch * epochs);
    for (unsigned e = 0; e < epochs; e++) {
        std::vector<std::string> order;
        bool bytes_right = true, shape_right = true;
        for (size_t i = 0; i < per_epoch; i++) {
            std::optional<dsc::Batch> b = loader.next();
            if (!b) {
                CHECK(false);
                return;
            }
            size_t len = std::min(batch, urls.size() - i * batch);
            shape_right = shape_right && b->epoch == e && b->index == i &&
                          b->samples.size() == len;
            for (const auto &s : b->samples) {
                order.push_back(s.url);
                auto it = want.find(s.url);
                bytes_right = bytes_right && it != want.end() && it->second == s.data;
            }
        }
        CHECK(shape_right);
        CHECK(bytes_right);
        std::set<std::string> distinct(order.begin(), order.end());
        CHECK(distinct.size() == order.size());
        CHECK(order.size() == (drop_last ? per_epoch * batch : urls.size()));
        if (orders)
            orders->push_back(order);
    }
    CHECK(!loader.next());
    CHECK(!loader.next());
}

void test_loader_delivers_every_url_once_per_epoch()
{
    std::vector<std::string> urls;
    std::map<std::string, std::vector<std::byte>> want;
    for (const auto &[key, fx] : g_fx)
        if (key.rfind("epoch/", 0) == 0) {
            urls.push_back(fx.url);
            want[fx.url] = fx.data;
        }
    CHECK(urls.size() == 48);
    dsc::Client c(config());
    dsc::LoaderOptions opt;
    opt.threads = 4;
    opt.batch_size = 5;
    opt.queue_depth = 3;
    opt.epochs = 3;
    opt.seed = 42;
    std::vector<std::vector<std::string>> orders, again;
    {
        dsc::Loader loader(c, urls, opt);
        check_epochs(loader, urls, want, 3, 5, false, &orders);
    }
    CHECK(orders.size() == 3 && orders[0] != orders[1] && orders[1] != orders[2]);
    CHECK(orders[0] != urls);
    {
        dsc::Loader same_seed(c, urls, opt);
        check_epochs(same_seed, urls, want, 3, 5, false, &again);
    }
    CHECK(again == orders);
    opt.shuffle = false;
    opt.epochs = 1;
    {
        std::vector<std::vector<std::string>> plain;
        dsc::Loader in_order(c, urls, opt);
        check_epochs(in_order, urls, want, 1, 5, false, &plain);
        CHECK(plain.size() == 1 && plain[0] == urls);
    }
    opt.shuffle = true;
    opt.drop_last = true;
    opt.epochs = 2;
    {
        dsc::Loader dropping(c, urls, opt);
        check_epochs(dropping, urls, want, 2, 5, true, nullptr);
    }
    // Many small objects, more threads than batches in flight.
    std::vector<std::string> many = many_urls();
    std::map<std::string, std::vector<std::byte>> many_want;
    for (const auto &u : many)
        many_want[u] = many_content(u);
    opt = dsc::LoaderOptions();
    opt.threads = 8;
    opt.batch_size = 64;
    opt.queue_depth = 2;
    dsc::Loader loader(c, many, opt);
    check_epochs(loader, many, many_want, 1, 64, false, nullptr);
}

void test_loader_reads_ahead_by_queue_depth_only()
{
    // No cache: each object read is exactly one GET, counted by stats.
    dsc::Client c(config(false));
    dsc::LoaderOptions opt;
    opt.threads = 4;
    opt.batch_size = 4;
    opt.queue_depth = 2;
    dsc::Loader loader(c, many_urls(), opt);
    CHECK(eventually([&] { return c.stats().s3_gets >= 8; }));
    usleep(300000);
    CHECK(c.stats().s3_gets == 8);
    auto first = loader.next();
    CHECK(first && first->samples.size() == 4);
    CHECK(eventually([&] { return c.stats().s3_gets >= 12; }));
    usleep(300000);
    CHECK(c.stats().s3_gets == 12);
}

void test_loader_errors_reach_the_consumer()
{
    dsc::Client c(config());
    std::vector<std::string> urls = many_urls();
    urls.resize(20);
    urls.insert(urls.begin() + 13, url_of("no/such/object"));
    dsc::LoaderOptions opt;
    opt.threads = 2;
    opt.batch_size = 4;
    opt.shuffle = false;
    dsc::Loader loader(c, urls, opt);
    int code = 0;
    size_t good_batches = 0;
    try {
        while (loader.next())
            good_batches++;
    } catch (const dsc::Error &e) {
        code = e.code();
        CHECK(e.detail().find("no/such/object") != std::string::npos);
    }
    CHECK(code == DSC_ENOTFOUND);
    CHECK(good_batches <= 3);            // the bad URL is in batch 3
    CHECK_THROWS(DSC_ENOTFOUND, loader.next());   // and it stays failed
}

void test_loader_bad_options_and_empty_lists()
{
    dsc::Client c(config());
    std::vector<std::string> urls = {url_of("one-byte")};
    dsc::LoaderOptions opt;
    opt.threads = 0;
    CHECK_THROWS(DSC_EINVAL, dsc::Loader(c, urls, opt));
    opt = dsc::LoaderOptions();
    opt.batch_size = 0;
    CHECK_THROWS(DSC_EINVAL, dsc::Loader(c, urls, opt));
    opt = dsc::LoaderOptions();
    opt.queue_depth = 0;
    CHECK_THROWS(DSC_EINVAL, dsc::Loader(c, urls, opt));
    dsc::Client gone = std::move(c);
    CHECK_THROWS(DSC_EINVAL, dsc::Loader(c, urls));
    dsc::Loader empty(gone, {});
    CHECK(empty.total_batches() == 0 && !empty.next());
    opt = dsc::LoaderOptions();
    opt.epochs = 0;
    dsc::Loader no_epochs(gone, urls, opt);
    CHECK(!no_epochs.next());
    opt.epochs = 1;
    opt.drop_last = true;                // 1 URL, batches of 32: none
    dsc::Loader dropped(gone, urls, opt);
    CHECK(dropped.total_batches() == 0 && !dropped.next());
}

void test_loader_stops_promptly_when_destroyed()
{
    dsc::Client c(config());
    dsc::LoaderOptions opt;
    opt.threads = 4;
    opt.batch_size = 8;
    opt.queue_depth = 4;
    opt.epochs = 1000;
    auto t0 = std::chrono::steady_clock::now();
    {
        dsc::Loader loader(c, many_urls(), opt);
        CHECK(loader.next() && loader.next());
    }
    {
        dsc::Loader untouched(c, many_urls(), opt);
    }
    {
        // Destroyed while its threads wait for the consumer (its queue of
        // 4 batches of 8 is full).
        dsc::Client uncached(config(false));
        dsc::Loader waiting(uncached, many_urls(), opt);
        CHECK(eventually([&] { return uncached.stats().s3_gets >= 32; }));
    }
    CHECK(seconds_since(t0) < 10);
}

// ---- ranks, workers, the portable shuffle, resume -----------------------

/* The first n objects of many/: their index is their name's number. */
std::vector<std::string> dataset(size_t n)
{
    std::vector<std::string> urls = many_urls();
    urls.resize(n);
    return urls;
}

size_t index_of(const std::string &url) { return std::stoul(url.substr(url.size() - 5)); }

/* What one Loader handed out, per epoch. */
struct Taken {
    std::map<unsigned, std::vector<size_t>> samples;
    std::map<unsigned, size_t> batches;
    bool bytes_right = true;
};

void take(dsc::Loader &loader, Taken &t, size_t max_batches = SIZE_MAX)
{
    for (size_t i = 0; i < max_batches; i++) {
        std::optional<dsc::Batch> b = loader.next();
        if (!b)
            return;
        t.batches[b->epoch]++;
        for (const dsc::Sample &s : b->samples) {
            t.samples[b->epoch].push_back(index_of(s.url));
            t.bytes_right = t.bytes_right && s.data == many_content(s.url);
        }
    }
}

/* An epoch's samples from all parts and phases: every one of 0..n-1 at
 * least once, and no more repeats than padding can make (parts - 1 per
 * phase, each part's share rounded up). */
bool covers_epoch(const std::vector<size_t> &all, size_t n, size_t max_repeats)
{
    std::map<size_t, size_t> count;
    for (size_t i : all)
        count[i]++;
    bool ok = count.size() == n && (n == 0 || count.rbegin()->first == n - 1) &&
              all.size() - n <= max_repeats;
    if (!ok)
        std::fprintf(stderr, "  epoch: %zu samples, %zu distinct of %zu\n", all.size(),
                     count.size(), n);
    return ok;
}

std::string python_output(const std::string &script)
{
    std::string path = g_tmp + "/parity.py";
    std::ofstream(path) << script;
    FILE *p = popen(("/usr/bin/python3 " + path).c_str(), "r");
    if (!p)
        return "";
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    return pclose(p) == 0 ? out : "";
}

std::string joined(const std::vector<size_t> &v)
{
    std::string s;
    for (size_t i = 0; i < v.size(); i++)
        s += (i ? " " : "") + std::to_string(v[i]);
    return s + "\n";
}

dsc::LoaderState state_at(const std::vector<std::string> &urls, uint64_t seed,
                          unsigned epoch, uint64_t consumed)
{
    dsc::LoaderState s;
    s.dataset = dsc::Loader::dataset_id(urls);
    s.num_samples = urls.size();
    s.seed = seed;
    s.epoch = epoch;
    s.consumed = consumed;
    return s;
}

/* dsc::permutation and a Loader's part are what Python's dsc.permutation
 * and dsc.DistributedSampler compute (bindings/python/dsc/sampling.py,
 * loaded on its own): the generator is specified, not borrowed. */
void test_shuffle_and_split_match_python()
{
    const struct {
        size_t n;
        uint64_t seed, epoch;
    } perms[] = {{0, 0, 0}, {1, 3, 0}, {2, 1, 0}, {10, 42, 0}, {10, 42, 1},
                 {1000, 12345, 7}, {1000, UINT64_MAX, 2}, {5000, 0, 3}};
    const struct {
        unsigned world, rank;
        bool drop;
        uint64_t consumed;
    } parts[] = {{2, 0, false, 0}, {2, 1, false, 0}, {3, 2, false, 0}, {3, 1, true, 0},
                 {3, 0, false, 40}, {4, 3, true, 41}, {5, 4, false, 100}};
    std::string py =
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('sampling', "
        "'bindings/python/dsc/sampling.py')\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "def show(v): print(' '.join(map(str, v)))\n";
    std::string want;
    for (const auto &c : perms) {
        py += "show(m.permutation(" + std::to_string(c.n) + ", " + std::to_string(c.seed) +
              ", " + std::to_string(c.epoch) + "))\n";
        want += joined(dsc::permutation(c.n, c.seed, c.epoch));
    }
    // Rejection sampling where half the draws are rejected.
    py += "r = m.Rng(9, 4, 0)\nshow([r.below(2**63 + 1) for _ in range(8)])\n";
    dsc::Rng rng(9, 4);
    std::vector<size_t> draws;
    for (int i = 0; i < 8; i++)
        draws.push_back(rng.below((uint64_t{1} << 63) + 1));
    want += joined(draws);

    dsc::Client c(config());
    std::vector<std::string> urls = dataset(103);
    for (const auto &p : parts) {
        py += "s = m.DistributedSampler(103, num_replicas=" + std::to_string(p.world) +
              ", rank=" + std::to_string(p.rank) + ", seed=5, drop_last=" +
              (p.drop ? "True" : "False") + ", prefetch=False)\n"
              "st = s.state_dict(); st.update(epoch=1, consumed=" +
              std::to_string(p.consumed) + "); s.load_state_dict(st)\n"
              "show(s.rank_order())\n";
        dsc::LoaderOptions opt;
        opt.world_size = p.world;
        opt.rank = p.rank;
        opt.drop_tail = p.drop;
        opt.seed = 5;
        opt.epochs = 2;
        opt.batch_size = 7;
        dsc::Loader loader(c, urls, opt, state_at(urls, 5, 1, p.consumed));
        Taken t;
        take(loader, t);
        CHECK(t.bytes_right && t.samples.size() == 1);
        want += joined(t.samples[1]);
    }
    std::string got = python_output(py);
    CHECK(!got.empty());
    CHECK(got == want);
}

/* World 2 x 2 workers, 103 samples (not a multiple of 4): every part the
 * same batch count; together every sample each epoch, in the epoch's
 * permutation (the same on every part), another one the next epoch. */
void test_ranks_and_workers_split_each_epoch()
{
    dsc::Client c(config());
    std::vector<std::string> urls = dataset(103);
    for (bool drop_tail : {false, true}) {
        std::vector<std::unique_ptr<dsc::Loader>> loaders;
        std::vector<Taken> taken(4);
        for (unsigned part = 0; part < 4; part++) {
            dsc::LoaderOptions opt;
            opt.world_size = 2;
            opt.rank = part % 2;
            opt.num_workers = 2;
            opt.worker = part / 2;
            opt.drop_tail = drop_tail;
            opt.seed = 11;
            opt.epochs = 2;
            opt.batch_size = 5;
            opt.threads = 2;
            loaders.push_back(std::make_unique<dsc::Loader>(c, urls, opt));
        }
        for (unsigned part = 0; part < 4; part++)
            take(*loaders[part], taken[part]);
        size_t share = drop_tail ? 103 / 4 : (103 + 3) / 4;
        for (unsigned e = 0; e < 2; e++) {
            std::vector<size_t> all;
            std::vector<size_t> perm = dsc::permutation(103, 11, e);
            bool in_order = true;
            for (unsigned part = 0; part < 4; part++) {
                const std::vector<size_t> &s = taken[part].samples[e];
                CHECK(taken[part].bytes_right);
                CHECK(s.size() == share);
                CHECK(taken[part].batches[e] == (share + 4) / 5);
                for (size_t j = 0; j < s.size(); j++) {
                    size_t pos = part + 4 * j;     // rank + worker x world
                    if (pos < 103)
                        in_order = in_order && s[j] == perm[pos];
                }
                all.insert(all.end(), s.begin(), s.end());
            }
            CHECK(in_order);
            if (drop_tail) {
                std::set<size_t> distinct(all.begin(), all.end());
                CHECK(all.size() == 100 && distinct.size() == 100);
                for (size_t pos = 100; pos < 103; pos++)
                    CHECK(!distinct.count(perm[pos]));
            } else {
                CHECK(covers_epoch(all, 103, 1));
            }
        }
        CHECK(dsc::permutation(103, 11, 0) != dsc::permutation(103, 11, 1));
    }
}

/* Two ranks stop after k batches; two new ones go on from rank 0's state
 * (through its text): each epoch every sample, none repeated but padding,
 * at every cut including epoch ends and the run's end. */
void test_resume_at_any_cut()
{
    dsc::Client c(config());
    std::vector<std::string> urls = dataset(103);
    auto options = [](unsigned rank) {
        dsc::LoaderOptions opt;
        opt.world_size = 2;
        opt.rank = rank;
        opt.seed = 3;
        opt.epochs = 2;
        opt.batch_size = 4;
        opt.threads = 3;
        return opt;
    };
    // An epoch is 52 samples (26 from padding) a rank: 13 batches.
    for (size_t cut : {0, 1, 5, 12, 13, 14, 25, 26}) {
        std::vector<Taken> taken(2);
        std::string saved[2];
        for (unsigned r = 0; r < 2; r++) {
            dsc::Loader first(c, urls, options(r));
            CHECK(first.total_batches() == 26 && first.batches_per_epoch() == 13);
            take(first, taken[r], cut);
            saved[r] = first.state().to_string();
        }
        CHECK(saved[0] == saved[1]);
        dsc::LoaderState state = dsc::LoaderState::parse(saved[0]);
        CHECK(state.epoch == (cut < 13 ? 0u : cut < 26 ? 1u : 2u));
        for (unsigned r = 0; r < 2; r++) {
            dsc::Loader rest(c, urls, options(r), state);
            CHECK(rest.total_batches() == 26 - cut);
            take(rest, taken[r]);
            CHECK(!rest.next());
            CHECK(rest.state().epoch == 2 && rest.state().consumed == 0);
        }
        for (unsigned e = 0; e < 2; e++) {
            std::vector<size_t> all;
            for (const Taken &t : taken) {
                CHECK(t.bytes_right);
                all.insert(all.end(), t.samples.at(e).begin(), t.samples.at(e).end());
            }
            CHECK(covers_epoch(all, 103, 2));
        }
    }
}

/* Real processes: two ranks (rank and world size from RANK / WORLD_SIZE,
 * as torchrun sets them) are killed mid-epoch after saving state; three
 * ranks go on from it (an elastic restart). Every sample of both epochs
 * reaches training, none twice but padding; the three see equal batch
 * counts. */
pid_t spawn(const std::vector<std::string> &args,
            const std::vector<std::string> &env_extra, const std::string &out)
{
    std::vector<std::string> envs;
    for (char **e = environ; *e; e++)
        envs.push_back(*e);
    envs.insert(envs.end(), env_extra.begin(), env_extra.end());
    std::vector<char *> argv, envp;
    for (const std::string &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string &e : envs)
        envp.push_back(const_cast<char *>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve("/proc/self/exe", argv.data(), envp.data());
        _exit(127);
    }
    return pid;
}

int wait_exit(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const std::string &path)
{
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

dsc::LoaderOptions child_options()
{
    dsc::LoaderOptions opt;     // rank and world size from the environment
    opt.seed = 21;
    opt.epochs = 2;
    opt.batch_size = 4;
    opt.threads = 3;
    return opt;
}

/* --child first K LOG STATE | --child rest STATE LOG | --child env */
int child_main(int argc, char **argv)
{
    test_setup(false);
    std::string mode = argc > 2 ? argv[2] : "";
    try {
        dsc::Client c(config());
        std::vector<std::string> urls = dataset(103);
        if (mode == "env") {
            dsc::Loader loader(c, urls, child_options());
            std::printf("rank %u of %u\n", loader.rank(), loader.world_size());
            return 0;
        }
        bool first = mode == "first";
        if (argc != (first ? 6 : 5))
            return 2;
        std::optional<dsc::Loader> loader;
        if (first)
            loader.emplace(c, urls, child_options());
        else
            loader.emplace(c, urls, child_options(), dsc::LoaderState::parse(slurp(argv[3])));
        std::ofstream log(argv[4]);
        size_t limit = first ? std::stoul(argv[3]) : SIZE_MAX;
        for (size_t i = 0; i < limit; i++) {
            std::optional<dsc::Batch> b = loader->next();
            if (!b)
                break;
            log << "B " << b->epoch << "\n";
            for (const dsc::Sample &s : b->samples)
                log << (s.data == many_content(s.url) ? "S " : "BAD ") << b->epoch << " "
                    << index_of(s.url) << "\n";
        }
        log.flush();
        if (first) {
            std::string tmp = std::string(argv[5]) + ".tmp";
            std::ofstream(tmp) << loader->state().to_string();
            std::rename(tmp.c_str(), argv[5]);
            pause();            // killed here, reads still in flight
        }
        return 0;
    } catch (const dsc::Error &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 3;
    }
}

void test_killed_ranks_resume_elastically_in_new_processes()
{
    std::string dir = g_tmp + "/ranks";
    mkdir(dir.c_str(), 0700);
    std::vector<pid_t> pids;
    for (unsigned r = 0; r < 2; r++) {
        std::string n = std::to_string(r);
        pids.push_back(spawn({"child", "--child", "first", "5", dir + "/first-" + n + ".log",
                              dir + "/state-" + n},
                             {"RANK=" + n, "WORLD_SIZE=2"}, dir + "/first-" + n + ".out"));
    }
    bool saved = eventually([&] {
        return access((dir + "/state-0").c_str(), F_OK) == 0 &&
               access((dir + "/state-1").c_str(), F_OK) == 0;
    }, 60000);
    CHECK(saved);
    for (pid_t pid : pids) {
        kill(pid, SIGKILL);
        CHECK(wait_exit(pid) == 128 + SIGKILL);
    }
    if (!saved)
        return;
    std::string state = slurp(dir + "/state-0");
    CHECK(state == slurp(dir + "/state-1"));
    CHECK(dsc::LoaderState::parse(state).consumed == 2 * 5 * 4);
    pids.clear();
    for (unsigned r = 0; r < 3; r++) {
        std::string n = std::to_string(r);
        pids.push_back(spawn({"child", "--child", "rest", dir + "/state-0",
                              dir + "/rest-" + n + ".log"},
                             {"RANK=" + n, "WORLD_SIZE=3"}, dir + "/rest-" + n + ".out"));
    }
    for (size_t r = 0; r < pids.size(); r++) {
        int rc = wait_exit(pids[r]);
        CHECK(rc == 0);
        if (rc)
            std::fprintf(stderr, "  rank %zu: %s\n", r,
                         slurp(dir + "/rest-" + std::to_string(r) + ".out").c_str());
    }
    std::map<unsigned, std::vector<size_t>> epochs;
    std::map<unsigned, std::set<size_t>> rest_batches;   // epoch: counts
    bool bytes_right = true;
    for (std::string phase : {"first-0", "first-1", "rest-0", "rest-1", "rest-2"}) {
        std::istringstream log(slurp(dir + "/" + phase + ".log"));
        std::string tag;
        unsigned epoch;
        std::map<unsigned, size_t> batches;
        while (log >> tag >> epoch) {
            if (tag == "B") {
                batches[epoch]++;
                continue;
            }
            size_t index;
            log >> index;
            bytes_right = bytes_right && tag == "S";
            epochs[epoch].push_back(index);
        }
        if (phase.rfind("rest", 0) == 0)
            for (auto [e, n] : batches)
                rest_batches[e].insert(n);
    }
    CHECK(bytes_right);
    CHECK(epochs.size() == 2);
    CHECK(covers_epoch(epochs[0], 103, 0));    // 40 by 2 ranks, 63 by 3
    CHECK(covers_epoch(epochs[1], 103, 2));    // 3 x 35
    // Equal counts: epoch 0's rest is 63 samples, 21 a rank; epoch 1 35.
    CHECK(rest_batches[0] == std::set<size_t>{6});
    CHECK(rest_batches[1] == std::set<size_t>{9});
}

void test_bad_states_and_splits_are_refused()
{
    dsc::Client c(config());
    std::vector<std::string> urls = dataset(40);
    dsc::LoaderOptions opt;
    opt.seed = 8;
    opt.epochs = 3;
    dsc::LoaderState good = state_at(urls, 8, 1, 17);
    CHECK(dsc::LoaderState::parse(good.to_string()).to_string() == good.to_string());
    auto refused = [&](const dsc::LoaderState &s, const char *says) {
        try {
            dsc::Loader l(c, urls, opt, s);
        } catch (const dsc::Error &e) {
            bool ok = e.code() == DSC_EINVAL && e.detail().find(says) != std::string::npos;
            if (!ok)
                std::fprintf(stderr, "  said: %s\n", e.what());
            return ok;
        }
        return false;
    };
    std::vector<std::string> other = dataset(41);
    other.pop_back();
    other.back() = url_of("many/obj-01000");
    dsc::LoaderState s = state_at(other, 8, 1, 17);
    CHECK(refused(s, "another dataset"));
    s = state_at(dataset(41), 8, 1, 17);
    CHECK(refused(s, "dataset="));
    s = good;
    s.seed = 9;
    CHECK(refused(s, "seed=9, this loader has seed=8"));
    s = good;
    s.shuffle = false;
    CHECK(refused(s, "shuffle=false"));
    s = good;
    s.epoch = 4;
    CHECK(refused(s, "epoch 4 of a run of 3"));
    s = good;
    s.consumed = 41;
    CHECK(refused(s, "past the end"));
    s = good;
    s.epoch = 3;            // a finished run: nothing left, not an error
    dsc::Loader done(c, urls, opt, s);
    CHECK(done.total_batches() == 0 && !done.next());

    std::string text = good.to_string();
    for (std::string bad : {std::string(""), std::string("{}"), std::string("not json"),
                            text.substr(0, text.size() - 1), text + "x",
                            std::string("[1]"), std::string("{\"kind\": \"dsc.Loader\"}")}) {
        CHECK_THROWS(DSC_EINVAL, dsc::LoaderState::parse(bad));
    }
    auto edited = [&](const std::string &from, const std::string &to) {
        std::string t = text;
        size_t at = t.find(from);
        return at == std::string::npos ? std::string("?") : t.replace(at, from.size(), to);
    };
    for (std::string bad : {edited("\"consumed\": 17", "\"consumed\": -1"),
                            edited("\"consumed\": 17", "\"consumed\": 41"),
                            edited("\"seed\": 8", "\"seed\": 99999999999999999999"),
                            edited("\"version\": 1", "\"version\": 2"),
                            edited("dsc.Loader", "dsc.DistributedSampler"),
                            edited("\"shuffle\": true", "\"shuffle\": 1"),
                            edited("\"epoch\": 1", "\"epoch\": 1, \"extra\": 2"),
                            edited("fnv1a64", "fnv1a64\\\""),
                            edited("\"epoch\": 1", "\"epoch\": 1, \"epoch\": 2")}) {
        CHECK_THROWS(DSC_EINVAL, dsc::LoaderState::parse(bad));
    }
    // Splits that cannot be.
    for (auto [world, rank, workers, worker] :
         {std::array<unsigned, 4>{2, 2, 1, 0}, {0, 0, 1, 0}, {2, 0, 0, 0}, {2, 1, 2, 2}}) {
        dsc::LoaderOptions o;
        o.world_size = world;
        o.rank = rank;
        o.num_workers = workers;
        o.worker = worker;
        CHECK_THROWS(DSC_EINVAL, dsc::Loader(c, urls, o));
    }
    // RANK / WORLD_SIZE: taken when the options leave them unset; refused
    // clearly when not numbers, in a process of their own (setenv races
    // with threads reading the environment).
    std::string dir = g_tmp + "/env";
    mkdir(dir.c_str(), 0700);
    pid_t pid = spawn({"child", "--child", "env"}, {"RANK=1", "WORLD_SIZE=3"}, dir + "/ok");
    CHECK(wait_exit(pid) == 0 && slurp(dir + "/ok") == "rank 1 of 3\n");
    pid = spawn({"child", "--child", "env"}, {"RANK=one", "WORLD_SIZE=3"}, dir + "/bad");
    CHECK(wait_exit(pid) == 3 && slurp(dir + "/bad").find("RANK=one") != std::string::npos);
    pid = spawn({"child", "--child", "env"}, {"WORLD_SIZE=2"}, dir + "/norank");
    CHECK(wait_exit(pid) == 3 && slurp(dir + "/norank").find("no rank") != std::string::npos);
    pid = spawn({"child", "--child", "env"}, {"RANK=3", "WORLD_SIZE=3"}, dir + "/big");
    CHECK(wait_exit(pid) == 3 && slurp(dir + "/big").find("rank 3 of world size 3") !=
                                      std::string::npos);
}

/* Several threads may call next(): each batch goes to one of them, and
 * all of them return once the run is over (none waits forever). */
void test_several_consumer_threads()
{
    dsc::Client c(config());
    for (int round = 0; round < 20; round++) {
        dsc::LoaderOptions opt;
        opt.batch_size = 1;
        opt.threads = 2;
        opt.epochs = 2;
        dsc::Loader loader(c, dataset(5), opt);
        std::mutex mu;
        std::vector<size_t> got;
        std::vector<std::thread> consumers;
        for (int t = 0; t < 3; t++)
            consumers.emplace_back([&] {
                while (auto b = loader.next()) {
                    std::lock_guard<std::mutex> lk(mu);
                    for (const dsc::Sample &s : b->samples)
                        got.push_back(index_of(s.url));
                }
            });
        for (auto &t : consumers)
            t.join();
        std::sort(got.begin(), got.end());
        CHECK((got == std::vector<size_t>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}));
    }
}

} // namespace

int main(int argc, char **argv)
{
    if (argc > 1 && std::strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    const Test tests[] = {
        {"loader_delivers_every_url_once_per_epoch", test_loader_delivers_every_url_once_per_epoch},
        {"loader_reads_ahead_by_queue_depth_only", test_loader_reads_ahead_by_queue_depth_only},
        {"loader_errors_reach_the_consumer", test_loader_errors_reach_the_consumer},
        {"loader_bad_options_and_empty_lists", test_loader_bad_options_and_empty_lists},
        {"loader_stops_promptly_when_destroyed", test_loader_stops_promptly_when_destroyed},
        {"shuffle_and_split_match_python", test_shuffle_and_split_match_python},
        {"ranks_and_workers_split_each_epoch", test_ranks_and_workers_split_each_epoch},
        {"resume_at_any_cut", test_resume_at_any_cut},
        {"killed_ranks_resume_elastically_in_new_processes",
         test_killed_ranks_resume_elastically_in_new_processes},
        {"bad_states_and_splits_are_refused", test_bad_states_and_splits_are_refused},
        {"several_consumer_threads", test_several_consumer_threads},
    };
    return run_tests("cpp-loader", tests);
}
