/* The harness of the C++ binding's tests: checks that count failures, the
 * fixtures tests/run.sh uploaded to s3rver, a Config for them, and the
 * runner that prints "NAME: N passed, M failed". Include once per test
 * program. */
#ifndef DSC_CPPTEST_H
#define DSC_CPPTEST_H

#include "dsc.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <type_traits>
#include <unistd.h>

namespace {


int failed_checks = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failed_checks++;                                                 \
            std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__,    \
                         __LINE__, #cond);                                   \
        }                                                                    \
    } while (0)

/* The DSC_E* code a call threw as dsc::Error; 0 when it did not throw,
 * INT_MIN when it threw something else. */
template <class F> inline int thrown_code(F &&fn)
{
    try {
        fn();
    } catch (const dsc::Error &e) {
        return e.code();
    } catch (...) {
        return INT_MIN;
    }
    return 0;
}

#define CHECK_THROWS(code, expr) CHECK(thrown_code([&] { (void)(expr); }) == (code))

inline std::string env(const char *name)
{
    const char *v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr, "%s is not set: run through tests/run.sh\n", name);
        std::exit(1);
    }
    return v;
}

inline std::vector<std::byte> bytes_of(const std::string &s)
{
    const auto *p = reinterpret_cast<const std::byte *>(s.data());
    return std::vector<std::byte>(p, p + s.size());
}

struct Fixture {
    std::string url;
    std::vector<std::byte> data;
};

/* What fixtures.py uploaded, keyed by the key's tail. */
inline std::map<std::string, Fixture> load_fixtures()
{
    std::map<std::string, Fixture> out;
    std::ifstream manifest(env("DSC_TEST_FIXTURES") + "/manifest.tsv");
    std::string line;
    std::string head = "s3://" + env("DSC_TEST_BUCKET") + "/";
    while (std::getline(manifest, line)) {
        std::istringstream fields(line);
        std::string url, path, size;
        std::getline(fields, url, '\t');
        std::getline(fields, path, '\t');
        std::getline(fields, size, '\t');
        std::ifstream in(path, std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), {});
        if (data.size() != std::stoull(size)) {
            std::fprintf(stderr, "fixture %s: size differs\n", path.c_str());
            std::exit(1);
        }
        out[url.substr(head.size())] = {url, bytes_of(data)};
    }
    return out;
}

std::string g_endpoint, g_bucket, g_tmp;
std::map<std::string, Fixture> g_fx;
int g_caches = 0;

inline std::string url_of(const std::string &key) { return "s3://" + g_bucket + "/" + key; }

inline dsc::Config config(bool cache = true)
{
    dsc::Config c;
    c.endpoint(g_endpoint);
    if (cache)
        c.cache_dir(g_tmp + "/cache-" + std::to_string(++g_caches));
    else
        c.no_cache();
    return c;
}

inline std::vector<std::string> many_urls()
{
    std::vector<std::string> urls;
    char key[64];
    for (int i = 0; i < 1203; i++) {
        std::snprintf(key, sizeof key, "many/obj-%05d", i);
        urls.push_back(url_of(key));
    }
    return urls;
}

/* "s3://b/many/obj-00042" holds "42". */
inline std::vector<std::byte> many_content(const std::string &url)
{
    return bytes_of(std::to_string(std::stoi(url.substr(url.size() - 5))));
}

template <class Pred> inline bool eventually(Pred pred, int ms = 10000)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (pred())
            return true;
        usleep(10000);
    }
    return pred();
}

inline double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Test {
    const char *name;
    void (*fn)();
};

/* Sets up the fixtures (test_setup), runs each test and prints one line per test and
 * a summary under `suite`; the exit status of the program. */
/* fixtures=false: a child process that reads only many/ (see
 * test_loader.cpp) skips loading every fixture, 64 MiB among them. */
inline void test_setup(bool fixtures = true)
{
    g_endpoint = env("DSC_TEST_ENDPOINT");
    g_bucket = env("DSC_TEST_BUCKET");
    std::string tmpl = env("DSC_TEST_STATE") + "/cpp-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        std::exit(1);
    }
    g_tmp = tmpl;
    if (fixtures)
        g_fx = load_fixtures();
}

template <size_t N> inline int run_tests(const char *suite, const Test (&tests)[N])
{
    test_setup();
    int passed = 0, failed = 0;
    for (const Test &t : tests) {
        int before = failed_checks;
        auto t0 = std::chrono::steady_clock::now();
        try {
            t.fn();
        } catch (const std::exception &e) {
            failed_checks++;
            std::fprintf(stderr, "  unexpected exception: %s\n", e.what());
        }
        bool ok = failed_checks == before;
        (ok ? passed : failed)++;
        std::printf("  %s %s (%.0f ms)\n", ok ? "ok  " : "FAIL", t.name,
                    1000 * seconds_since(t0));
        std::fflush(stdout);
    }
    std::printf("%s: %d passed, %d failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}

} // namespace

#endif
