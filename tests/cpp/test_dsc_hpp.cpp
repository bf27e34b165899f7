/* bindings/cpp/dsc.hpp against a real s3rver: RAII and move semantics,
 * errors as exceptions with their codes, listing, and the batch Loader
 * (every URL once per epoch with the right bytes, bounded read-ahead,
 * errors reaching the consumer, prompt stop when destroyed mid-epoch).
 *
 * Run through tests/run.sh, which starts s3rver, uploads the fixtures and
 * sets DSC_TEST_ENDPOINT, DSC_TEST_BUCKET, DSC_TEST_FIXTURES and
 * DSC_TEST_STATE. Prints "cpp-dsc-hpp: N passed, M failed". */
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
template <class F> int thrown_code(F &&fn)
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

std::string env(const char *name)
{
    const char *v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr, "%s is not set: run through tests/run.sh\n", name);
        std::exit(1);
    }
    return v;
}

std::vector<std::byte> bytes_of(const std::string &s)
{
    const auto *p = reinterpret_cast<const std::byte *>(s.data());
    return std::vector<std::byte>(p, p + s.size());
}

struct Fixture {
    std::string url;
    std::vector<std::byte> data;
};

/* What fixtures.py uploaded, keyed by the key's tail. */
std::map<std::string, Fixture> load_fixtures()
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

std::string url_of(const std::string &key) { return "s3://" + g_bucket + "/" + key; }

dsc::Config config(bool cache = true)
{
    dsc::Config c;
    c.endpoint(g_endpoint);
    if (cache)
        c.cache_dir(g_tmp + "/cache-" + std::to_string(++g_caches));
    else
        c.no_cache();
    return c;
}

std::vector<std::string> many_urls()
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
std::vector<std::byte> many_content(const std::string &url)
{
    return bytes_of(std::to_string(std::stoi(url.substr(url.size() - 5))));
}

template <class Pred> bool eventually(Pred pred, int ms = 10000)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (pred())
            return true;
        usleep(10000);
    }
    return pred();
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- types -------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<dsc::File>);
static_assert(!std::is_copy_assignable_v<dsc::File>);
static_assert(std::is_nothrow_move_constructible_v<dsc::File>);
static_assert(std::is_nothrow_move_assignable_v<dsc::File>);
static_assert(std::is_base_of_v<std::runtime_error, dsc::Error>);
static_assert(!std::is_copy_constructible_v<dsc::Loader>);

// ---- tests ---------------------------------------------------------------

void test_config_reaches_the_library()
{
    dsc::Client c(config().cache_size(3ull << 30).chunk_size(128u << 10)
                      .cache_policy(DSC_POLICY_MINIO));
    dsc_stats st = c.stats();
    CHECK(st.cache_capacity == 3ull << 30);
    CHECK(st.chunk_size == 128u << 10);
    CHECK(st.cache_policy == DSC_POLICY_MINIO);
    CHECK(c.cache_dir().rfind(g_tmp, 0) == 0);
    CHECK(dsc::Client(config(false)).cache_dir().empty());

    dsc_config raw;
    CHECK(dsc_config_init(&raw, DSC_CONFIG_VERSION) == 0);
    raw.endpoint = g_endpoint.c_str();
    raw.cache_dir = "";
    dsc::Client from_raw(raw);
    CHECK(from_raw.read(url_of("one-byte")) == bytes_of("\x7f"));

    // A Config's strings are copied by the library: the Config may go.
    std::optional<dsc::Config> temporary = config(false);
    dsc::Client outlives(*temporary);
    temporary.reset();
    CHECK(outlives.read(url_of("one-byte")) == bytes_of("\x7f"));
}

void test_bad_config_throws()
{
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().chunk_size(1000)));
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().connect_timeout_ms(0)));
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().cache_policy(7)));
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().max_connections(-1)));
    CHECK_THROWS(DSC_EURL, dsc::Client(config().endpoint("ftp://nowhere")));
    CHECK_THROWS(DSC_ECREDS, dsc::Client(config().profile("no-such-profile")));
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().region(std::string("us\0east", 7))));
    try {
        dsc::Client c(config().chunk_size(1000));
        CHECK(false);
    } catch (const std::runtime_error &e) {
        CHECK(std::string(e.what()).rfind("invalid argument: ", 0) == 0);
        CHECK(std::string(e.what()).find("chunk_size") != std::string::npos);
    }
}

void test_every_fixture_reads_back()
{
    dsc::Client c(config());
    for (const auto &[key, fx] : g_fx) {
        dsc::File f = c.open(fx.url);
        CHECK(f.is_open() && f.url() == fx.url);
        CHECK(f.size() == fx.data.size());
        CHECK(f.etag().size() > 2 && f.etag().front() == '"');
        CHECK(f.read_all() == fx.data);
        CHECK(c.read(fx.url) == fx.data);
    }
    const auto &big = g_fx.at("five-mib-plus-one").data;
    dsc::File f = c.open(url_of("five-mib-plus-one"));
    // Sequential reads in growing, odd sizes.
    std::vector<std::byte> got, buf(1 << 20);
    for (size_t step = 1;; step = std::min<size_t>(step * 3 + 1, buf.size())) {
        size_t n = f.read(buf.data(), step);
        if (n == 0)
            break;
        got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
    CHECK(got == big);
    CHECK(f.tell() == static_cast<int64_t>(big.size()));
    CHECK(f.seek(-3, SEEK_END) == static_cast<int64_t>(big.size()) - 3);
    CHECK(f.read(buf.data(), 100) == 3);
    CHECK(std::equal(buf.begin(), buf.begin() + 3, big.end() - 3));
    CHECK(f.seek(4 << 20) == 4 << 20);
    CHECK(f.seek(-10, SEEK_CUR) == (4 << 20) - 10);
    CHECK(f.read(buf.data(), 20) == 20);
    CHECK(std::equal(buf.begin(), buf.begin() + 20, big.begin() + (4 << 20) - 10));
    CHECK(f.seek(1000, SEEK_END) == static_cast<int64_t>(big.size()) + 1000);
    CHECK(f.read(buf.data(), 10) == 0);
    CHECK_THROWS(DSC_EINVAL, f.seek(-1));
    CHECK_THROWS(DSC_EINVAL, f.seek(0, 42));
    // pread: positionless, clamped at the end.
    f.seek(5);
    auto part = f.pread(big.size() - 4, 100);
    CHECK(part.size() == 4 && std::equal(part.begin(), part.end(), big.end() - 4));
    CHECK(f.pread(big.size() + 1, 10).empty());
    CHECK(f.tell() == 5);
    CHECK(c.read(url_of("five-mib-plus-one"), 100, 50) ==
          std::vector<std::byte>(big.begin() + 100, big.begin() + 150));
    CHECK(c.read(url_of("empty")).empty());
}

void test_files_are_move_only_and_keep_the_context()
{
    const auto &one = g_fx.at("one-byte").data;
    const auto &epoch0 = g_fx.at("epoch/obj-00").data;
    dsc::Client c(config());
    dsc::File a = c.open(url_of("one-byte"));
    dsc::File b(std::move(a));
    CHECK(!a.is_open() && !a && b.is_open() && b);
    CHECK(b.read_all() == one);
    CHECK_THROWS(DSC_EINVAL, a.size());
    CHECK_THROWS(DSC_EINVAL, a.read_all());
    CHECK_THROWS(DSC_EINVAL, a.seek(0));
    dsc::File d = c.open(url_of("epoch/obj-00"));
    d = std::move(b);            // d's first file is closed, not leaked
    CHECK(d.read_all() == one && !b.is_open());
    d = c.open(url_of("epoch/obj-00"));
    CHECK(d.read_all() == epoch0);
    d.close();
    d.close();
    CHECK(!d.is_open());
    CHECK_THROWS(DSC_EINVAL, d.read_all());

    // A File outlives the Client object it came from.
    dsc::File kept;
    {
        dsc::Client scoped(config());
        kept = scoped.open(url_of("epoch/obj-00"));
    }
    CHECK(kept.read_all() == epoch0);

    // Copies of a Client share one context (and its counters).
    dsc::Client copy = c;
    copy.read(url_of("one-byte"));
    CHECK(c.stats().hits >= 1 && c.get() == copy.get());
    dsc::Client moved = std::move(copy);
    CHECK(!copy && moved.get() == c.get());
    CHECK_THROWS(DSC_EINVAL, copy.open(url_of("one-byte")));
    CHECK_THROWS(DSC_EINVAL, copy.stats());
}

void test_errors_carry_codes_and_detail()
{
    dsc::Client c(config());
    try {
        c.open(url_of("no/such/key"));
        CHECK(false);
    } catch (const dsc::Error &e) {
        CHECK(e.code() == DSC_ENOTFOUND);
        CHECK(e.detail().find("no/such/key") != std::string::npos);
        CHECK(std::string(e.what()).rfind("no such key or bucket: ", 0) == 0);
    }
    CHECK_THROWS(DSC_ENOTFOUND, c.open("s3://no-such-bucket-dsc/x"));
    for (const char *bad : {"http://x/y", "s3://", "", "s3://Bad_Bucket!/k"})
        CHECK_THROWS(DSC_EURL, c.open(bad));
    CHECK_THROWS(DSC_EURL, c.open(url_of("")));
    CHECK_THROWS(DSC_EURL, c.open(url_of("one-byte") + std::string("\0x", 2)));
    CHECK_THROWS(DSC_EURL, c.list("gs://b/x"));
    dsc::Client stranger(config().access_key_id("AKIAUNKNOWN00000000").secret_access_key("x"));
    CHECK_THROWS(DSC_EACCESS, stranger.open(url_of("one-byte")));
    try {
        stranger.list(url_of("many/"));
        CHECK(false);
    } catch (const dsc::Error &e) {
        CHECK(e.code() == DSC_EACCESS);
        CHECK(e.detail().find("InvalidAccessKeyId") != std::string::npos);
    }
}

void test_list()
{
    dsc::Client c(config());
    auto objs = c.list(url_of("many/"));
    CHECK(objs.size() == 1203);
    bool all_right = objs.size() == 1203;
    for (size_t i = 0; all_right && i < objs.size(); i++) {
        char key[64];
        std::snprintf(key, sizeof key, "many/obj-%05zu", i);
        all_right = objs[i].key == key && objs[i].url == url_of(key) &&
                    objs[i].size == std::to_string(i).size() &&
                    objs[i].etag.size() > 2 && !objs[i].last_modified.empty();
    }
    CHECK(all_right);
    CHECK(c.stats().s3_lists == 2);
    CHECK(c.list(url_of("no-such-prefix/")).empty());

    std::vector<std::string> seen;
    CHECK(c.list(url_of("many/"), [&](const dsc::ObjectInfo &o) {
        seen.push_back(o.key);
        return seen.size() < 10;
    }) == 10);
    CHECK(seen.size() == 10 && seen.back() == "many/obj-00009");

    struct Stop {};
    uint64_t lists = c.stats().s3_lists;
    int calls = 0;
    bool caught = false;
    try {
        c.list(url_of("many/"), [&](const dsc::ObjectInfo &) -> bool {
            if (++calls == 3)
                throw Stop{};
            return true;
        });
    } catch (const Stop &) {
        caught = true;
    }
    CHECK(caught && calls == 3);
    CHECK(c.stats().s3_lists - lists == 1);   // stopped within page one
    CHECK_THROWS(DSC_ENOTFOUND, c.list("s3://no-such-bucket-dsc/"));
}

void test_snapshot()
{
    std::string prefix = url_of("epoch/");
    dsc::Client lister(config());
    auto listed = lister.list(prefix);
    dsc::Snapshot snap = dsc::Snapshot::list(lister, prefix);
    CHECK(snap.size() == 48 && listed.size() == 48);
    bool same = true;
    for (size_t i = 0; same && i < snap.size(); i++)
        same = snap[i].key == listed[i].key && snap[i].size == listed[i].size &&
               snap.at(i).etag == listed[i].etag;
    CHECK(same);
    CHECK(snap.urls().front() == url_of("epoch/obj-00"));
    CHECK(snap.find("epoch/obj-05") == std::optional<size_t>(5));
    CHECK(!snap.find("epoch/nope"));
    CHECK(std::string(snap.summary().prefix) == "epoch/");
    CHECK(snap.summary().bytes == 48u * 65536);
    CHECK_THROWS(DSC_EINVAL, snap.at(48));

    std::string path = g_tmp + "/epoch.dsnap";
    snap.save(path);
    dsc::Snapshot back = dsc::Snapshot::load(path);
    dsc::SnapshotDiff d = snap.diff(back);
    CHECK(d.summary() == "0 changed, 0 deleted, 0 new" && d.same == 48);
    dsc::Snapshot other = dsc::Snapshot::list(lister, url_of("flight/"));
    d = snap.diff(other);
    CHECK(d.deleted.size() == 48 && d.added.size() == 6 && d.changed.empty());
    CHECK(d.added.front() == "flight/obj-0");

    /* Reads through the snapshot: no HEAD, no LIST, the right bytes. */
    dsc::Client c(config().meta_ttl_ms(0));
    c.use_snapshot(back);
    for (int i = 0; i < 48; i += 7) {
        char key[32];
        std::snprintf(key, sizeof key, "epoch/obj-%02d", i);
        CHECK(c.read(url_of(key)) == g_fx.at(key).data);
    }
    CHECK(c.stats().s3_heads == 0 && c.stats().s3_lists == 0);
    CHECK_THROWS(DSC_ENOTFOUND, c.open(url_of("epoch/obj-99")));
    c.no_snapshot();
    c.read(url_of("epoch/obj-01"));
    CHECK(c.stats().s3_heads == 1);

    /* From the config, and a bad file. */
    dsc::Client cfg(config().meta_ttl_ms(0).snapshot(path));
    CHECK(cfg.read(url_of("epoch/obj-02")) == g_fx.at("epoch/obj-02").data);
    CHECK(cfg.stats().s3_heads == 0);
    {
        std::ofstream bad(g_tmp + "/bad.dsnap", std::ios::binary);
        bad << "DSCSNAP";
    }
    CHECK_THROWS(DSC_EINVAL, dsc::Snapshot::load(g_tmp + "/bad.dsnap"));
    CHECK_THROWS(DSC_EINVAL, dsc::Client(config().snapshot(g_tmp + "/bad.dsnap")));
    CHECK_THROWS(DSC_EIO, dsc::Snapshot::load(g_tmp + "/none.dsnap"));
}

void test_read_batch_status_per_item()
{
    dsc::Client c(config());
    std::vector<dsc::Client::BatchRead> reads;
    std::vector<std::string> keys;
    for (int i = 0; i < 20; i++) {
        char key[32];
        std::snprintf(key, sizeof key, "epoch/obj-%02d", i);
        keys.push_back(key);
    }
    keys.push_back("one-byte");
    keys.push_back("empty");
    for (const auto &k : keys)
        reads.push_back({url_of(k), {}, -1, 0, 0});
    reads.push_back({url_of("no/such/key"), {}, -1, 0, 0});
    reads[3].data.resize(100);              /* too small: filled, size says so */
    CHECK(c.read_batch(reads, 4) == 1);
    for (size_t i = 0; i < keys.size(); i++) {
        const auto &want = g_fx.at(keys[i]).data;
        CHECK(reads[i].status == 0);
        CHECK(reads[i].size == (int64_t)want.size());
        if (i == 3)
            CHECK(reads[i].len == 100 &&
                  std::equal(reads[i].data.begin(), reads[i].data.end(), want.begin()));
        else
            CHECK(reads[i].data == want);
    }
    CHECK(reads.back().status == DSC_ENOTFOUND && reads.back().len == 0);
    std::vector<dsc::Client::BatchRead> none;
    CHECK(c.read_batch(none) == 0);
}

void test_second_read_hits_and_prefetch()
{
    dsc::Client c(config().chunk_size(1u << 20));
    const auto &big = g_fx.at("five-mib-plus-one").data;
    CHECK(c.read(url_of("five-mib-plus-one")) == big);
    CHECK(c.read(url_of("five-mib-plus-one")) == big);
    dsc_stats st = c.stats();
    CHECK(st.misses == 6 && st.hits == 6 && st.s3_gets == 6);

    c.prefetch(url_of("sixty-four-mib"));
    CHECK(c.wait(std::chrono::seconds(120)));
    uint64_t gets = c.stats().s3_gets;
    CHECK(c.read(url_of("sixty-four-mib")) == g_fx.at("sixty-four-mib").data);
    CHECK(c.stats().s3_gets == gets);
    dsc::File f = c.open(url_of("sixty-four-mib"));
    CHECK(f.warm() == 0);
    dsc::Client uncached(config(false));
    CHECK_THROWS(DSC_ENOCACHE, uncached.prefetch(url_of("one-byte")));
    CHECK_THROWS(DSC_EURL, c.prefetch("gs://x/y"));
}

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

struct Test {
    const char *name;
    void (*fn)();
};

} // namespace

int main()
{
    g_endpoint = env("DSC_TEST_ENDPOINT");
    g_bucket = env("DSC_TEST_BUCKET");
    std::string tmpl = env("DSC_TEST_STATE") + "/cpp-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        return 1;
    }
    g_tmp = tmpl;
    g_fx = load_fixtures();
    const Test tests[] = {
        {"config_reaches_the_library", test_config_reaches_the_library},
        {"bad_config_throws", test_bad_config_throws},
        {"every_fixture_reads_back", test_every_fixture_reads_back},
        {"files_are_move_only_and_keep_the_context", test_files_are_move_only_and_keep_the_context},
        {"errors_carry_codes_and_detail", test_errors_carry_codes_and_detail},
        {"list", test_list},
        {"snapshot", test_snapshot},
        {"read_batch_status_per_item", test_read_batch_status_per_item},
        {"second_read_hits_and_prefetch", test_second_read_hits_and_prefetch},
        {"loader_delivers_every_url_once_per_epoch", test_loader_delivers_every_url_once_per_epoch},
        {"loader_reads_ahead_by_queue_depth_only", test_loader_reads_ahead_by_queue_depth_only},
        {"loader_errors_reach_the_consumer", test_loader_errors_reach_the_consumer},
        {"loader_bad_options_and_empty_lists", test_loader_bad_options_and_empty_lists},
        {"loader_stops_promptly_when_destroyed", test_loader_stops_promptly_when_destroyed},
    };
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
    std::printf("cpp-dsc-hpp: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
