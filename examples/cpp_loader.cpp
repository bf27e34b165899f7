/* cpp_loader: load every object under an S3 prefix in shuffled batches with
 * dsc::Loader (bindings/cpp/dsc.hpp) and report throughput per epoch.
 *
 *   cpp_loader [-j THREADS] [-b BATCH] [-q DEPTH] [-e EPOCHS] [-s SEED]
 *              [--cache-dir DIR|off] s3://bucket/prefix
 *
 * Endpoint, credentials and cache settings come from the usual AWS_* and
 * DSC_* variables. Exit 0 on success, 1 when listing or reading fails,
 * 2 for usage errors. */
#include "dsc.hpp"

#include <getopt.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

const char usage[] =
    "usage: cpp_loader [-j THREADS] [-b BATCH] [-q DEPTH] [-e EPOCHS] [-s SEED]\n"
    "                  [--cache-dir DIR|off] s3://bucket/prefix\n";

bool parse_count(const char *text, unsigned long long min, unsigned long long max,
                 unsigned long long &out)
{
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
        return false;
    out = v;
    return true;
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

} // namespace

int main(int argc, char **argv)
{
    static const option longopts[] = {
        {"threads", required_argument, nullptr, 'j'},
        {"batch", required_argument, nullptr, 'b'},
        {"depth", required_argument, nullptr, 'q'},
        {"epochs", required_argument, nullptr, 'e'},
        {"seed", required_argument, nullptr, 's'},
        {"cache-dir", required_argument, nullptr, 'c'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    dsc::LoaderOptions opt;
    opt.threads = 8;
    dsc::Config config;
    int c;
    unsigned long long v = 0;
    while ((c = getopt_long(argc, argv, "j:b:q:e:s:h", longopts, nullptr)) != -1) {
        bool ok = true;
        switch (c) {
        case 'j': ok = parse_count(optarg, 1, 1024, v); opt.threads = unsigned(v); break;
        case 'b': ok = parse_count(optarg, 1, 1 << 20, v); opt.batch_size = v; break;
        case 'q': ok = parse_count(optarg, 1, 1 << 20, v); opt.queue_depth = v; break;
        case 'e': ok = parse_count(optarg, 1, 1 << 20, v); opt.epochs = unsigned(v); break;
        case 's': ok = parse_count(optarg, 0, ~0ull, v); opt.seed = v; break;
        case 'c': config.cache_dir(optarg); break;
        case 'h': std::fputs(usage, stdout); return 0;
        default: ok = false;
        }
        if (!ok) {
            if (c != '?')
                std::fprintf(stderr, "cpp_loader: bad value for -%c: %s\n", c, optarg);
            std::fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        std::fputs(usage, stderr);
        return 2;
    }
    const std::string prefix = argv[optind];
    try {
        dsc::Client client(config);
        std::vector<std::string> urls;
        uint64_t total_bytes = 0;
        for (const dsc::ObjectInfo &o : client.list(prefix)) {
            urls.push_back(o.url);
            total_bytes += o.size;
        }
        std::printf("%zu objects, %.1f MiB under %s\n", urls.size(), mib(total_bytes),
                    prefix.c_str());
        if (urls.empty())
            return 0;
        dsc_stats before = client.stats();
        auto start = std::chrono::steady_clock::now();   // loading starts now
        dsc::Loader loader(client, urls, opt);
        auto epoch_start = start;
        uint64_t bytes = 0, samples = 0, all_bytes = 0;
        unsigned epoch = 0;
        auto report = [&](unsigned e) {
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                     epoch_start).count();
            std::printf("epoch %u: %llu samples, %.1f MiB in %.2f s: %.1f MiB/s, "
                        "%.0f samples/s\n", e + 1, static_cast<unsigned long long>(samples),
                        mib(bytes), s, s > 0 ? mib(bytes) / s : 0.0, s > 0 ? samples / s : 0.0);
            all_bytes += bytes;
            bytes = samples = 0;
            epoch_start = std::chrono::steady_clock::now();
        };
        while (std::optional<dsc::Batch> batch = loader.next()) {
            if (batch->epoch != epoch) {
                report(epoch);
                epoch = batch->epoch;
            }
            for (const dsc::Sample &s : batch->samples)
                bytes += s.data.size();
            samples += batch->samples.size();
        }
        report(epoch);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // Over the whole run: workers read ahead across epoch boundaries.
        dsc_stats after = client.stats();
        uint64_t hits = after.hits - before.hits, misses = after.misses - before.misses;
        std::printf("total: %.1f MiB in %.2f s: %.1f MiB/s, cache hit ratio %.3f "
                    "(%u threads, batch %zu, queue %zu)\n", mib(all_bytes), s,
                    s > 0 ? mib(all_bytes) / s : 0.0,
                    hits + misses ? static_cast<double>(hits) / (hits + misses) : 0.0,
                    opt.threads, opt.batch_size, opt.queue_depth);
    } catch (const dsc::Error &e) {
        std::fprintf(stderr, "cpp_loader: %s\n", e.what());
        return e.code() == DSC_EURL ? 2 : 1;
    }
    return 0;
}
