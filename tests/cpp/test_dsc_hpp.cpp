/* bindings/cpp/dsc.hpp against a real s3rver: RAII and move semantics,
 * errors as exceptions with their codes, listing, snapshots, batch reads
 * and the cache (the Loader: test_loader.cpp).
 *
 * Run through tests/run.sh, which starts s3rver, uploads the fixtures and
 * sets DSC_TEST_ENDPOINT, DSC_TEST_BUCKET, DSC_TEST_FIXTURES and
 * DSC_TEST_STATE. Prints "cpp-dsc-hpp: N passed, M failed". */
#include "cpptest.h"

namespace {

// ---- types -------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<dsc::File>);
static_assert(!std::is_copy_assignable_v<dsc::File>);
static_assert(std::is_nothrow_move_constructible_v<dsc::File>);
static_assert(std::is_nothrow_move_assignable_v<dsc::File>);
static_assert(std::is_base_of_v<std::runtime_error, dsc::Error>);

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

} // namespace

int main()
{
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
    };
    return run_tests("cpp-dsc-hpp", tests);
}
