# libdsc - see README.md. `make` builds; `make test` sets up and tests.
CC       ?= cc
CXX      ?= c++
PKG_CONFIG ?= pkg-config
PREFIX   ?= /usr/local
DESTDIR  ?=
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BINDIR   ?= $(PREFIX)/bin

# Build variants live apart so a sanitizer build never mixes objects with a
# normal one: `make BUILD=build/asan SAN=asan`.
BUILD    ?= build
OUT      ?= lib
SAN      ?=

# The version is written once, in include/dsc.h.
SOVER    := $(shell sed -n 's/^\#define DSC_VERSION_STRING "\(.*\)"/\1/p' include/dsc.h)
SOMAJOR  := $(firstword $(subst ., ,$(SOVER)))
DEPS     := libcurl openssl expat lmdb libxxhash

OPT      ?= -O2
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
SAN_asan := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_tsan := -fsanitize=thread
SANFLAGS := $(SAN_$(SAN))
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS) 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEPS) 2>/dev/null) -lresolv -lpthread
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -Ilib $(DEP_CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)

# One folder a layer (lib/README.md); the daemon lives in dscd/, outside
# the library, so libdsc does not depend on libmicrohttpd.
LIB_SRC  := $(wildcard lib/*/*.c)
LIB_HDR  := $(wildcard lib/*/*.h)
LIB_OBJ  := $(patsubst lib/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
SHLIB    := $(OUT)/libdsc.so
STLIB    := $(OUT)/libdsc.a
TOOLS    := dsc-cat dsc-epoch dsc-stat dsc-prefetch dsc-snapshot
TOOL_BIN := $(addprefix $(BUILD)/bin/,$(TOOLS))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_SRC := $(wildcard tests/integration/*.c)
ITEST_BIN := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))
TTOOL_SRC := $(wildcard tests/tools/*.c)
TTOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TTOOL_SRC))

.PHONY: all lib tools tests setup test test-unit test-integration test-asan test-tsan \
        demo bench bench-mounts bench-snapshot bench-batch bench-scale bench-discovery install uninstall clean check-exports fuzz soak

all: lib tools

lib: $(SHLIB) $(STLIB)

$(BUILD)/obj/%.o: lib/%.c $(LIB_HDR) include/dsc.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(SHLIB): $(LIB_OBJ) lib/libdsc.map
	@mkdir -p $(OUT)
	$(CC) -shared -Wl,-soname,libdsc.so.$(SOMAJOR) -Wl,--version-script=lib/libdsc.map \
	    -Wl,--no-undefined -o $(OUT)/libdsc.so.$(SOVER) $(LIB_OBJ) $(ALL_LDFLAGS) $(DEP_LIBS)
	ln -sf libdsc.so.$(SOVER) $(OUT)/libdsc.so.$(SOMAJOR)
	ln -sf libdsc.so.$(SOMAJOR) $@

$(STLIB): $(LIB_OBJ)
	@mkdir -p $(OUT)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

tools: $(TOOL_BIN) $(BUILD)/bin/dscd

MHD_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS   := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null)

DSCD_SRC   := $(wildcard dscd/*.c)
DSCD_OBJ   := $(patsubst dscd/%.c,$(BUILD)/obj/dscd/%.o,$(DSCD_SRC))

$(BUILD)/obj/dscd/%.o: dscd/%.c $(wildcard dscd/*.h) $(LIB_HDR) include/dsc.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I. $(MHD_CFLAGS) -c $< -o $@

# dscd uses the cache and peer layers, so it links the static library.
$(BUILD)/bin/dscd: $(DSCD_OBJ) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DSCD_OBJ) -o $@ $(STLIB) \
	    $(ALL_LDFLAGS) $(MHD_LIBS) $(DEP_LIBS)

$(BUILD)/bin/%: examples/%.c $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ -L$(OUT) -ldsc -Wl,-rpath,$(abspath $(OUT)) $(ALL_LDFLAGS)

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/fuzz_replay_%,$(FUZZ_SRC))

tests: $(UNIT_BIN) $(ITEST_BIN) $(TTOOL_BIN) $(REPLAY_BIN)

# The fuzz targets without libFuzzer: make test replays their corpora.
$(BUILD)/tests/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(STLIB) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< tests/fuzz/replay.c -o $@ $(STLIB) $(ALL_LDFLAGS) $(DEP_LIBS)

# Test tools (signers, fault proxies) may use internal functions.
$(BUILD)/tests/tools/%: tests/tools/%.c $(STLIB) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(ALL_LDFLAGS) $(DEP_LIBS)

# Unit tests link the static library so they can reach internal functions.
$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/unittest.h $(STLIB) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(ALL_LDFLAGS) $(DEP_LIBS) -lcmocka

# Integration tests use only the public API of the shared library.
$(BUILD)/tests/%: tests/integration/%.c $(wildcard tests/integration/*.h) $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ -L$(OUT) -ldsc -Wl,-rpath,$(abspath $(OUT)) $(ALL_LDFLAGS) \
	    $(shell $(PKG_CONFIG) --libs libmicrohttpd) -lpthread -lcmocka

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

# bench_snapshot writes its synthetic files itself, checksum included.
$(BUILD)/bench/bench_snapshot: BENCH_LIBS := -lxxhash

$(BUILD)/bench/%: bench/%.c $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ -L$(OUT) -ldsc -Wl,-rpath,$(abspath $(OUT)) $(ALL_LDFLAGS) $(BENCH_LIBS)

# Snapshot load/save/open costs for 10^6 and 10^7 objects; no server.
bench-snapshot: lib $(BUILD)/bench/bench_snapshot
	@$(BUILD)/bench/bench_snapshot

# Batch reads vs a loop of open+read, 30 ms origin (issue 15): ~4 min.
bench-batch: setup lib
	@/usr/bin/python3 bench/bench_batch.py

# The node cache as its index grows to 10^7 chunk records (BENCH_SCALE_MAX
# to stop earlier, e.g. 1e5): hit, lookup and open latencies, bytes per
# record, context open, RSS. No server. It inserts synthetic records with
# internal calls, so it links the static library and lives in bench/scale/
# (outside BENCH_BIN and the layer check of bench/*.c).
$(BUILD)/bench/bench_scale: bench/scale/bench_scale.c $(STLIB) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(ALL_LDFLAGS) $(DEP_LIBS)

bench-scale: $(BUILD)/bench/bench_scale
	@$(BUILD)/bench/bench_scale

# Reads with DNS-discovered peers vs a static list (root: a network
# namespace with its own dnsmasq).
bench-discovery: setup
	@$(MAKE) --no-print-directory all tools
	@BUILD=$(BUILD) /usr/bin/python3 bench/bench_discovery.py

bench: setup
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) bench/run.sh

# The DataLoader over local files, libdsc, rclone mount, s3fs and boto3
# (bench/run_mounts.sh; also part of `make bench`, BENCH_MOUNTS=0 skips it).
bench-mounts: setup lib
	@bench/run_mounts.sh

# C++ binding (header-only): its test and example link the shared library.
CXXFLAGS ?= $(OPT) -g
ALL_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror $(CXXFLAGS) $(SANFLAGS) -pthread \
                -Iinclude -Ibindings/cpp
CPP_TEST_SRC := $(wildcard tests/cpp/test_*.cpp)
CPP_TEST_BIN := $(patsubst tests/cpp/%.cpp,$(BUILD)/tests/cpp_%,$(CPP_TEST_SRC))
CPP_EXAMPLE_BIN := $(BUILD)/bin/cpp_loader

tools: $(CPP_EXAMPLE_BIN)
tests: $(CPP_TEST_BIN)

$(BUILD)/tests/cpp_%: tests/cpp/%.cpp tests/cpp/cpptest.h $(wildcard bindings/cpp/*.hpp) include/dsc.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $< -o $@ -L$(OUT) -ldsc -Wl,-rpath,$(abspath $(OUT)) $(ALL_LDFLAGS)

$(BUILD)/bin/cpp_loader: examples/cpp_loader.cpp $(wildcard bindings/cpp/*.hpp) include/dsc.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $< -o $@ -L$(OUT) -ldsc -Wl,-rpath,$(abspath $(OUT)) $(ALL_LDFLAGS)

# libFuzzer targets, each run for FUZZ_SECONDS on its seed corpus; any crash
# fails the target and leaves the input in build/fuzz/ (keep it as a test).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRC := $(wildcard lib/core/*.c) lib/net/url.c lib/net/sigv4.c lib/s3/ini.c \
                lib/s3/xml.c lib/peer/proto.c lib/api/snapfile.c

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined $< $(FUZZ_LIB_SRC) -o $@ -lexpat -lcrypto -lxxhash -lpthread

fuzz: setup $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    name=$${t#fuzz_}; mkdir -p build/fuzz/corpus-$$name; \
	    echo "== $$t ($(FUZZ_SECONDS) s)"; \
	    (cd build/fuzz && ./$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	        corpus-$$name ../../tests/fuzz/corpus/$$name 2>&1 | tail -3) || exit 1; \
	    ls build/fuzz/crash-* >/dev/null 2>&1 && { echo "crash found: build/fuzz/crash-*"; exit 1; }; \
	done; echo "fuzz: all targets ran clean"

setup:
	@scripts/setup.sh

test: setup
	@$(MAKE) --no-print-directory all tests
	@BUILD=$(BUILD) OUT=$(OUT) tests/run.sh

test-asan: setup
	@$(MAKE) --no-print-directory BUILD=build/asan OUT=build/asan SAN=asan OPT=-O1 all tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    BUILD=build/asan OUT=build/asan tests/run.sh

test-tsan: setup
	@$(MAKE) --no-print-directory BUILD=build/tsan OUT=build/tsan SAN=tsan OPT=-O1 all tests
	@TSAN_OPTIONS=halt_on_error=1 BUILD=build/tsan OUT=build/tsan tests/run.sh

# The soak test alone, longer than in `make test` (40 s there).
SOAK_SECONDS ?= 240
soak: setup
	@$(MAKE) --no-print-directory all tests
	@SOAK_SECONDS=$(SOAK_SECONDS) DSC_TEST_ONLY=test_soak BUILD=$(BUILD) OUT=$(OUT) tests/run.sh

check-exports: $(SHLIB) $(STLIB)
	@tests/check_exports.sh $(OUT)

demo: setup
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) OUT=$(OUT) scripts/demo.sh

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/dsc.h bindings/cpp/dsc.hpp bindings/cpp/dsc_loader.hpp $(DESTDIR)$(INCDIR)/
	install -m 755 $(OUT)/libdsc.so.$(SOVER) $(DESTDIR)$(LIBDIR)/
	ln -sf libdsc.so.$(SOVER) $(DESTDIR)$(LIBDIR)/libdsc.so.$(SOMAJOR)
	ln -sf libdsc.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libdsc.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	for t in $(TOOLS); do $(CC) $(ALL_CFLAGS) examples/$$t.c -o $(DESTDIR)$(BINDIR)/$$t \
	    -L$(OUT) -ldsc -Wl,-rpath,$(LIBDIR) $(ALL_LDFLAGS) || exit 1; done
	install -m 755 $(BUILD)/bin/dscd $(DESTDIR)$(BINDIR)/dscd
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(SOVER)|g' pkgconfig/libdsc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libdsc.pc
	@$(MAKE) --no-print-directory ldconfig-note

# Programs linked with -ldsc find libdsc.so.0 through the dynamic linker's
# cache: refresh it after a real install (not a DESTDIR stage, which is a
# packager's), and say what to do when LIBDIR is not a directory it reads.
.PHONY: ldconfig-note
ldconfig-note:
	@if [ -z "$(DESTDIR)" ]; then \
	    if [ "$$(id -u)" = 0 ]; then ldconfig; fi; \
	    if /sbin/ldconfig -p 2>/dev/null | grep -q "libdsc.so.$(SOMAJOR) .*=> $(LIBDIR)/libdsc.so.$(SOMAJOR)$$"; then \
	        echo "install: $(LIBDIR)/libdsc.so.$(SOMAJOR) is in the dynamic linker's cache"; \
	    elif [ "$$(id -u)" != 0 ]; then \
	        echo "install: run 'sudo ldconfig' so programs find libdsc.so.$(SOMAJOR) (or see below)"; \
	    else \
	        echo "install: $(LIBDIR) is not a directory the dynamic linker searches: run programs"; \
	        echo "  with LD_LIBRARY_PATH=$(LIBDIR), link them with -Wl,-rpath,$(LIBDIR), or add"; \
	        echo "  $(LIBDIR) to /etc/ld.so.conf.d/libdsc.conf and run ldconfig"; \
	    fi; \
	fi

# The demo's local S3, left running to try the tools and examples by hand
# (README: "Try it against the demo's S3").
.PHONY: demo-up demo-down
demo-up: setup
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh up
demo-down:
	@scripts/demo.sh down

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/dsc.h $(DESTDIR)$(INCDIR)/dsc.hpp $(DESTDIR)$(INCDIR)/dsc_loader.hpp $(DESTDIR)$(LIBDIR)/libdsc.* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/libdsc.pc
	for t in $(TOOLS) dscd; do rm -f $(DESTDIR)$(BINDIR)/$$t; done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

clean:
	rm -rf build lib/libdsc.so* lib/libdsc.a
