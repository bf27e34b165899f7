#!/usr/bin/env bash
# make install into a prefix and into a DESTDIR stage; then the README's C,
# C++ and Python examples, extracted as written, build against the
# installed tree with pkg-config alone and read a real object.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
B="$DSC_TEST_BUCKET"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
tmp=$(mktemp -d "$DSC_TEST_STATE/install-XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export DSC_CACHE_DIR="$tmp/cache"
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
url="s3://$B/five-mib-plus-one"

# The README's fenced blocks of one language, in order; $2 picks one.
block() { awk -v lang="$1" -v want="$2" '
    /^```/ { if (inb) { inb = 0; next } if ($0 == "```" lang) { n++; inb = (n == want); next } }
    inb { print }' README.md; }

prefix="$tmp/prefix"
# A build of its own: the suite may be running a sanitizer build, whose
# objects must not end up in an installed library.
ibuild="$tmp/build"
check "make install PREFIX" make -s install PREFIX="$prefix" BUILD="$ibuild" OUT="$ibuild/lib" >/dev/null
for f in include/dsc.h include/dsc.hpp include/dsc_loader.hpp lib/libdsc.so lib/libdsc.so.0 lib/libdsc.a \
         lib/pkgconfig/libdsc.pc bin/dsc-cat bin/dsc-prefetch bin/dsc-stat bin/dsc-snapshot; do
    check "installed $f" test -e "$prefix/$f"
done
check "installed tool runs" bash -c "'$prefix/bin/dsc-cat' --length 10 $url | wc -c | grep -qx 10"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# The version is written once (dsc.h); everything else reads it there.
ver=$(sed -n 's/^#define DSC_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/dsc.h")
check "dsc.h names a version" test -n "$ver"
check "pkg-config version is dsc.h's" bash -c "[ \"\$(pkg-config --modversion libdsc)\" = '$ver' ]"
check "installed library file carries dsc.h's version" test -e "$prefix/lib/libdsc.so.$ver"
check "Python package version is dsc.h's" bash -c \
    "[ \"\$(PYTHONPATH='$ROOT/bindings/python' DSC_LIBRARY='$prefix/lib/libdsc.so.0' /usr/bin/python3 -c 'import dsc; print(dsc.__version__)')\" = '$ver' ]"
check "setup.py version is dsc.h's" bash -c \
    "cd '$ROOT/bindings/python' && [ \"\$(/usr/bin/python3 setup.py --version 2>/dev/null | tail -1)\" = '$ver' ]"
block c 1 >"$tmp/app.c"
check "README C example builds with pkg-config only" \
    bash -c "cc -Wall -Werror '$tmp/app.c' -o '$tmp/app' \$(pkg-config --cflags --libs libdsc)"
check "README C example runs" bash -c \
    "LD_LIBRARY_PATH='$prefix/lib' '$tmp/app' $url | grep -q '^read 4096 of 5242881 bytes, etag \"'"
check "README C example reports errors" bash -c \
    "LD_LIBRARY_PATH='$prefix/lib' '$tmp/app' s3://$B/nope 2>&1 | grep -q 'no such key'"
block cpp 1 >"$tmp/app.cpp"
check "README C++ example builds with pkg-config only" \
    bash -c "c++ -std=c++17 -Wall -Werror '$tmp/app.cpp' -o '$tmp/appxx' \$(pkg-config --cflags --libs libdsc)"
check "README C++ example runs" bash -c \
    "LD_LIBRARY_PATH='$prefix/lib' '$tmp/appxx' $url | grep -qx 'read 4096 of 5242881 bytes'"
block python 1 >"$tmp/app.py"
check "README Python example runs" bash -c \
    "PYTHONPATH='$ROOT/bindings/python' DSC_LIBRARY='$prefix/lib/libdsc.so.0' /usr/bin/python3 '$tmp/app.py' $url | grep -q '^read 4096 of 5242881 bytes'"

# The Python package outside the checkout (as pip installs it) finds the
# library by itself: through the prefix pkg-config knows, else it says
# what to do.
mkdir -p "$tmp/site" && cp -r "$ROOT/bindings/python/dsc" "$tmp/site/"
check "Python package finds the installed library (pkg-config prefix)" bash -c \
    "cd '$tmp' && env -u DSC_LIBRARY PYTHONPATH='$tmp/site' /usr/bin/python3 '$tmp/app.py' $url | grep -q '^read 4096 of 5242881 bytes'"
check "custom prefix: make install says how programs find the library" bash -c \
    "make -s install PREFIX='$prefix' BUILD='$ibuild' OUT='$ibuild/lib' 2>&1 | grep -q 'LD_LIBRARY_PATH=$prefix/lib'"

# The README's way on a fresh machine: sudo make install to /usr/local,
# then the example runs with no LD_LIBRARY_PATH (make install ran
# ldconfig). Only as root, only where no libdsc is installed already, one
# suite at a time on this machine, and uninstalled after.
(
    flock 9
    if [ "$(id -u)" != 0 ]; then
        echo "  (system install skipped: not root)"
    elif ls /usr/local/lib/libdsc.so* >/dev/null 2>&1 || [ -e /usr/local/include/dsc.h ]; then
        echo "  (system install skipped: a libdsc is already installed in /usr/local)"
    else
        trap 'make -s uninstall PREFIX=/usr/local >/dev/null 2>&1' EXIT
        check "sudo make install (PREFIX=/usr/local)" bash -c \
            "make -s install BUILD='$ibuild' OUT='$ibuild/lib' 2>&1 | grep -q \"in the dynamic linker's cache\""
        check "README C example builds and runs with no LD_LIBRARY_PATH" bash -c \
            "env -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH bash -c \"cc '$tmp/app.c' -o '$tmp/app-sys' \\\$(pkg-config --cflags --libs libdsc) && '$tmp/app-sys' $url\" | grep -q '^read 4096 of 5242881 bytes'"
        check "Python package finds it with no hint" bash -c \
            "cd '$tmp' && env -u DSC_LIBRARY -u PKG_CONFIG_PATH PYTHONPATH='$tmp/site' /usr/bin/python3 '$tmp/app.py' $url | grep -q '^read 4096'"
        make -s uninstall PREFIX=/usr/local >/dev/null 2>&1; trap - EXIT
        check "make uninstall leaves the linker cache clean" bash -c "! /sbin/ldconfig -p | grep -q 'libdsc.so.0 .*/usr/local/lib'"
    fi
    echo "$pass $fail" >"$tmp/counts"
) 9>/tmp/dsc-system-install.lock
read -r pass fail <"$tmp/counts"
check "Python package without a library says what to do" bash -c \
    "cd '$tmp' && env -u DSC_LIBRARY PKG_CONFIG_PATH=/nonexistent PYTHONPATH='$tmp/site' /usr/bin/python3 -c 'import dsc; dsc.Client()' 2>&1 | grep -q 'make install' || \
     ls /usr/local/lib/libdsc.so.0 >/dev/null 2>&1"

# A staged install (packagers): files under DESTDIR, paths for PREFIX.
stage="$tmp/stage"
check "make install DESTDIR" make -s install DESTDIR="$stage" PREFIX=/opt/dsc BUILD="$ibuild" OUT="$ibuild/lib" >/dev/null
check "staged pc names the final prefix" grep -qx 'prefix=/opt/dsc' "$stage/opt/dsc/lib/pkgconfig/libdsc.pc"
check "staged tree builds via sysroot" bash -c "PKG_CONFIG_PATH='$stage/opt/dsc/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$stage' \
    cc '$tmp/app.c' -o '$tmp/app2' \$(PKG_CONFIG_PATH='$stage/opt/dsc/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$stage' pkg-config --cflags --libs libdsc)"
check "make uninstall" bash -c "make -s uninstall DESTDIR='$stage' PREFIX=/opt/dsc >/dev/null && [ ! -e '$stage/opt/dsc/include/dsc.h' ] && [ ! -e '$stage/opt/dsc/lib/libdsc.so' ]"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
