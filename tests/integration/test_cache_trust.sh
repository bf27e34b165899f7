#!/usr/bin/env bash
# Another user on the node attacks a victim through the cache directory;
# the victim's tools must keep the victim's files and return S3's bytes.
# Real separate uids (setpriv), real dsc-cat / dsc-stat, real s3rver.
#
#  A. The cache tree belongs to the attacker, with tmp/ and data/ab
#     symlinked to a directory of the victim: the victim's dsc-stat --clean
#     and dsc-cat must refuse the tree (reads go to S3), delete nothing.
#  B. The victim's cache was left world-writable (chmod 777): refused too.
#  C. The victim's own cache holds symlinks (tmp/x, data/zz, a chunk name)
#     into its home: sweeps remove the links, never what they point to.
#  D. The cache path lies under a directory the attacker owns, which
#     becomes a link to a directory of the victim's files: refused.
#  E. DSC_CACHE_DIR names a directory of the victim's own files (not a
#     cache, not empty): refused, nothing deleted.
# Needs root (to act as two other uids); skipped, and said so, otherwise.
set -u
BIN="$DSC_TEST_BIN"
VICTIM=65532 ATTACKER=65533
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); echo "  ok   $d"; else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
    echo "cache-trust: needs root and setpriv to play two users; 0 passed, 0 failed, 1 skipped"
    exit 0
fi
T=$(mktemp -d "$DSC_TEST_STATE/trust-XXXXXX"); trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
as() { local uid="$1"; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -u DSC_CACHE_DIR HOME="$T" AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT" \
    AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 "$@"; }

key="trust/object.bin"
/usr/bin/python3 "$DSC_TEST_PUT" put "$DSC_TEST_ENDPOINT" "$key" 300000 77
url="s3://$DSC_TEST_BUCKET/$key"
want=$(head -c 300000 /dev/zero | tr '\0' '\115' | sha256sum | cut -d' ' -f1)

# The victim's precious files.
home="$T/victim-home"
mkdir -p "$home" && for i in 1 2 3; do echo "precious $i" > "$home/precious-$i"; done
chown -R "$VICTIM:$VICTIM" "$home"; chmod 700 "$home"
intact() { for i in 1 2 3; do [ "$(cat "$home/precious-$i" 2>/dev/null)" = "precious $i" ] || return 1; done; }

# A: the attacker's tree.
cacheA="$T/shared-cache"
# Writable by all, so an unwary victim could build its index in it.
mkdir -p "$cacheA/data" && chown -R "$ATTACKER:$ATTACKER" "$cacheA" && chmod -R 777 "$cacheA"
as "$ATTACKER" ln -s "$home" "$cacheA/tmp"
as "$ATTACKER" ln -s "$home" "$cacheA/data/ab"
out=$(as "$VICTIM" env DSC_CACHE_DIR="$cacheA" "$BIN/dsc-cat" "$url" 2>"$T/errA" | sha256sum | cut -d' ' -f1)
check "A: victim's dsc-cat gets S3's bytes" test "$out" = "$want"
check "A: and says why the cache was refused" grep -q "belongs to uid $ATTACKER" "$T/errA"
as "$VICTIM" "$BIN/dsc-stat" --clean --cache-dir "$cacheA" >/dev/null 2>"$T/errA2"
check "A: victim's dsc-stat --clean refuses the tree" grep -q "belongs to uid $ATTACKER" "$T/errA2"
check "A: the victim's files are intact" intact
check "A: the attacker's links were not followed into the victim's home" \
    bash -c "[ \$(ls -A '$home' | wc -l) -eq 3 ]"

# The victim's own corner, where it makes its caches.
area="$T/victim-area"
mkdir -p "$area" && chown "$VICTIM:$VICTIM" "$area" && chmod 755 "$area"

# B: the victim's own cache, left writable by others.
cacheB="$area/cache-b"
as "$VICTIM" env DSC_CACHE_DIR="$cacheB" "$BIN/dsc-cat" "$url" >/dev/null 2>&1
check "B: a victim cache is made 0700" test "$(stat -c %a "$cacheB")" = 700
chmod 777 "$cacheB" "$cacheB/data"
out=$(as "$VICTIM" env DSC_CACHE_DIR="$cacheB" "$BIN/dsc-cat" "$url" 2>"$T/errB" | sha256sum | cut -d' ' -f1)
check "B: a world-writable cache is refused" grep -q "writable by others" "$T/errB"
check "B: reads still right (from S3)" test "$out" = "$want"
chmod 700 "$cacheB" "$cacheB/data"
as "$VICTIM" env DSC_CACHE_DIR="$cacheB" "$BIN/dsc-cat" "$url" >/dev/null 2>"$T/errB2"
check "B: once fixed, used again without complaint" test ! -s "$T/errB2"

# C: symlinks inside the victim's own cache (its own mistake or an old bug).
cacheC="$area/cache-c"
as "$VICTIM" env DSC_CACHE_DIR="$cacheC" "$BIN/dsc-cat" "$url" >/dev/null 2>&1
check "C: the victim's cache holds a chunk" bash -c "[ -n \"\$(find '$cacheC/data' -type f)\" ]"
as "$VICTIM" ln -s "$home/precious-1" "$cacheC/tmp/12345.1.2"
as "$VICTIM" ln -s "$home" "$cacheC/data/zz"
sub=$(ls "$cacheC/data" | grep -v zz | head -1)
as "$VICTIM" ln -s "$home/precious-2" "$cacheC/data/$sub/$(printf '%032x' 7)-0000000000000001"
check "C: the links were planted" test -L "$cacheC/data/zz"
as "$VICTIM" "$BIN/dsc-stat" --clean --cache-dir "$cacheC" >/dev/null 2>&1
check "C: sweeps removed the links" bash -c "[ -d '$cacheC/tmp' ] && [ ! -L '$cacheC/tmp/12345.1.2' ] && \
    [ ! -L '$cacheC/data/zz' ] && [ -z \"\$(find '$cacheC' -type l)\" ]"
check "C: and nothing they pointed to" intact
out=$(as "$VICTIM" env DSC_CACHE_DIR="$cacheC" "$BIN/dsc-cat" "$url" 2>/dev/null | sha256sum | cut -d' ' -f1)
check "C: the cache still serves right bytes" test "$out" = "$want"

# D: the victim's cache path lies under a directory the attacker owns,
#    which the attacker turns into a link to a directory of the victim's
#    holding data/ and tmp/ of its own files.
vdir="$T/victim-work"
mkdir -p "$vdir/data/photos" "$vdir/tmp"
for f in data/readme.txt data/photos/a.jpg tmp/notes.txt tmp/4321.1.2; do echo "mine $f" > "$vdir/$f"; done
chown -R "$VICTIM:$VICTIM" "$vdir"; chmod -R go-w "$vdir"
scr="$T/scratch"
mkdir -p "$scr" && chown "$ATTACKER:$ATTACKER" "$scr" && chmod 755 "$scr"
as "$ATTACKER" ln -s "$vdir" "$scr/dsc"
out=$(as "$VICTIM" env DSC_CACHE_DIR="$scr/dsc" "$BIN/dsc-cat" "$url" 2>"$T/errD" | sha256sum | cut -d' ' -f1)
check "D: a cache under the attacker's directory is refused" grep -q "belongs to uid $ATTACKER" "$T/errD"
check "D: reads still right (from S3)" test "$out" = "$want"
check "D: the victim's files behind the link are intact" bash -c "
    for f in data/readme.txt data/photos/a.jpg tmp/notes.txt tmp/4321.1.2; do
        [ \"\$(cat '$vdir/'\$f)\" = \"mine \$f\" ] || exit 1; done
    [ ! -e '$vdir/index' ] && [ ! -e '$vdir/locks' ]"

# E: the victim points DSC_CACHE_DIR at a directory of its own files by
#    mistake (not empty, not a cache): refused, nothing deleted.
out=$(as "$VICTIM" env DSC_CACHE_DIR="$vdir" "$BIN/dsc-cat" "$url" 2>"$T/errE" | sha256sum | cut -d' ' -f1)
check "E: a directory that is not a cache is refused" grep -q "not a libdsc cache" "$T/errE"
check "E: reads still right" test "$out" = "$want"
check "E: and its files are intact" bash -c "
    for f in data/readme.txt data/photos/a.jpg tmp/notes.txt tmp/4321.1.2; do
        [ \"\$(cat '$vdir/'\$f)\" = \"mine \$f\" ] || exit 1; done"

echo "cache-trust: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
