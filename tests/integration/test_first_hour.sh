#!/usr/bin/env bash
# tsan: runs (it only drives our programs)
# Issue 18, a new user's first hour: each step does what the user did and
# asserts what they should see (bad settings named, a total deadline,
# listing failures reported, no cache made by a typo, the capacity a
# property of the cache, a full disk that evicts, the README's demo block).
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$DSC_TEST_BIN"
B="$DSC_TEST_BUCKET"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
tmp=$(mktemp -d "$DSC_TEST_STATE/first-XXXXXX")
pids=(); mnt=""
cleanup() {
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; done
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    DSC_DEMO_STATE="$tmp/demo" "$ROOT/scripts/demo.sh" down >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
export DSC_CACHE_DIR="$tmp/cache"
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
has() { grep -qE -- "$2" <<<"$1"; }     # has TEXT REGEX
url="s3://$B/five-mib-plus-one"

# 5. Invalid settings: exit 1 and a message naming variable and value.
while IFS='|' read -r var val; do
    out=$(env "$var=$val" "$BIN/dsc-cat" --length 10 "$url" 2>&1 >/dev/null); rc=$?
    check "$var='$val': exit 1" test "$rc" -eq 1
    check "$var='$val': named with its value" grep -qF "$var='$val' is not valid" <<<"$out"
done <<'EOF'
DSC_CACHE_SIZE|abc
DSC_CACHE_SIZE|-5
DSC_CACHE_SIZE|1e99
DSC_CHUNK_SIZE|abc
DSC_CACHE_POLICY|foo
DSC_MAX_RETRIES|-1
DSC_LOG|loud
EOF
check "DSC_CACHE_SIZE='10 G' is 10 GiB" bash -c \
    "DSC_CACHE_SIZE='10 G' '$BIN/dsc-stat' --create --cache-dir '$tmp/tengig' --json | grep -q '\"capacity_set_bytes\":10737418240'"
# A script file, not -c: under ASan use_library_under_test re-runs it
# with the sanitizer runtime preloaded.
cat >"$tmp/bad_policy.py" <<PYEOF
import sys
sys.path[:0] = ["$ROOT/tests/integration", "$ROOT/bindings/python"]
from test_python_client import use_library_under_test
use_library_under_test()
import dsc
dsc.Client()
PYEOF
# (Not under TSan: its runtime cannot be loaded into CPython.)
[[ "${OUT:-}" == *tsan* ]] || check "Python refuses the same bad value, named" bash -c \
    "DSC_CACHE_POLICY=foo /usr/bin/python3 '$tmp/bad_policy.py' 2>&1 | grep -qF \"DSC_CACHE_POLICY='foo'\""

# 4. An endpoint that accepts and never answers: a total deadline (here
# 3 x a 1 s request timeout), a message with attempts and time, retries
# logged at info.
port_file="$tmp/silent.port"
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(600)' "$port_file" &
pids+=($!)
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
t0=$(date +%s%N)
out=$(AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$port_file")" DSC_REQUEST_TIMEOUT_MS=1000 \
      DSC_LOG=info DSC_CACHE_DIR=off "$BIN/dsc-cat" --length 10 "$url" 2>&1 >/dev/null)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "    silent endpoint: failed after $ms ms"
check "deadline: 3 x request timeout, not 6 x" test "$ms" -lt 4500
check "message gives attempts and total time" \
    grep -qE -- 'no answer after [23] attempts in [0-9.]+ s \(request timeout 1.0 s, the operation.s deadline \(3.0 s\)\)' <<<"$out"
check "retries logged at info" grep -q 'retrying (attempt 2 of 6)' <<<"$out"
check "DSC_OP_TIMEOUT_MS sets the deadline" bash -c \
    "AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$port_file") DSC_REQUEST_TIMEOUT_MS=1000 DSC_OP_TIMEOUT_MS=1500 \
     DSC_CACHE_DIR=off '$BIN/dsc-cat' --length 10 '$url' 2>&1 | grep -q 'deadline (1.5 s)'"

# 7. dsc-prefetch: a listing failure is in --json; an empty match fails.
json=$("$BIN/dsc-prefetch" --json --quiet "s3://no-such-bucket-dsc/" 2>/dev/null); rc=$?
check "missing bucket: exit 1" test "$rc" -eq 1
check "missing bucket: in --json failures" /usr/bin/python3 -c "
import json, sys; d = json.loads(sys.argv[1])
f = d['failures']; assert d['failed'] == 1 and len(f) == 1 and f[0]['listing'], d
assert f[0]['url'] == 's3://no-such-bucket-dsc/' and f[0]['error'], d" "$json"
out=$("$BIN/dsc-prefetch" --quiet "s3://$B/no-such-prefix/" 2>&1); rc=$?
check "empty match: exit 1" test "$rc" -eq 1
check "empty match: says why" has "$out" 'matches no object'
check "--allow-empty accepts it" "$BIN/dsc-prefetch" --quiet --allow-empty "s3://$B/no-such-prefix/"

# 8. dsc-stat looks, it does not create.
out=$("$BIN/dsc-stat" --cache-dir "$tmp/typo" 2>&1); rc=$?
check "dsc-stat on a typo: exit 1" test "$rc" -eq 1
check "dsc-stat on a typo: says so" has "$out" 'no cache at .*--create makes one'
check "... and creates nothing" test ! -e "$tmp/typo"
check "--create makes one" bash -c "'$BIN/dsc-stat' --create --cache-dir '$tmp/typo' >/dev/null && test -e '$tmp/typo/index/data.mdb'"

# 9. The capacity is the cache's: set when made, shown, changed only
# explicitly (a later DSC_CACHE_SIZE is logged, not applied).
export DSC_CACHE_DIR="$tmp/cap"
DSC_CACHE_SIZE=100M "$BIN/dsc-cat" "$url" >/dev/null
out=$(DSC_CACHE_SIZE=1G "$BIN/dsc-cat" "$url" 2>&1 >/dev/null)
check "a different DSC_CACHE_SIZE is reported" has "$out" 'is not applied.*dsc-stat --set-capacity'
check "capacity stays the cache's" bash -c "'$BIN/dsc-stat' --json | grep -q '\"capacity_bytes\":104857600'"
check "dsc-stat shows it" bash -c "'$BIN/dsc-stat' | grep -q '^capacity  *100.0 MiB'"
check "--set-capacity lowers it and evicts" bash -c \
    "'$BIN/dsc-stat' --set-capacity 5M --json | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
assert d[\"capacity_bytes\"] == 5 << 20 and d[\"used_bytes\"] <= 5 << 20 and d[\"evictions\"] >= 1, d'"

# 6. A full filesystem: the cache evicts, keeps what the disk holds, and
# dsc-stat says so.
mnt="$tmp/small"; mkdir -p "$mnt"
if mount -t tmpfs -o size=2m,mode=0700 tmpfs "$mnt" 2>/dev/null; then
    for k in sixty-four-mib five-mib-plus-one; do
        DSC_CACHE_DIR="$mnt" DSC_CHUNK_SIZE=256K "$BIN/dsc-cat" "s3://$B/$k" >/dev/null 2>"$tmp/full.err" || true
    done
    stat_out=$(DSC_CACHE_DIR="$mnt" "$BIN/dsc-stat")
    echo "$stat_out" | sed 's/^/    /'
    # A later process may find the disk full again (the index file grew
    # into the slack) and lower the limit once more: that warning is the
    # cache adapting. A write that fails and is read around is not.
    warn=$(DSC_CACHE_DIR="$mnt" DSC_CHUNK_SIZE=256K "$BIN/dsc-cat" "$url" 2>&1 >/dev/null | grep warning || true)
    check "full disk: no write failures later ($warn)" \
        bash -c "! grep -q 'without caching' <<<\"\$1\"" _ "$warn"
    check "full disk: dsc-stat shows the limit" has "$stat_out" 'limited to .*the filesystem filled'
    check "full disk: evictions counted" has "$stat_out" '^evictions +[1-9]'
    # Prefetches stream chunks into their files only where the disk has
    # room to spare; on this full one they go through buffers, and make
    # room, as reads do. 8 fetchers' or 16 loop GETs of 256 KiB are as
    # much as this disk or twice it: they race for the room made, and a
    # chunk that finds none is not cached (counted). The prefetch
    # succeeds either way.
    for loop in 0 1; do
        DSC_CACHE_DIR="$mnt" DSC_CHUNK_SIZE=256K DSC_PREFETCH_LOOP=$loop \
            "$BIN/dsc-prefetch" --quiet "s3://$B/sixty-four-mib" >/dev/null 2>&1; pf_rc=$?
        check "full disk: prefetch (loop $loop) succeeds (rc $pf_rc)" test "$pf_rc" = 0
    done
    umount "$mnt"; mnt=""
else
    echo "    (full-disk step skipped: mounting a tmpfs is not permitted here)"
fi

# 2. The README's "try it against the demo's S3" block, pasted as is.
awk '/^```sh$/ { if (want) inb = 1; next } /^```/ { if (inb) exit; next }
     /^### Try it against the demo.s S3/ { want = 1 } inb { print }' "$ROOT/README.md" >"$tmp/demo-block.sh"
check "README has the demo block" test -s "$tmp/demo-block.sh"
out=$(cd "$ROOT" && env -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
      -u DSC_CACHE_DIR DSC_DEMO_STATE="$tmp/demo" BUILD="${BUILD:-build}" bash -e "$tmp/demo-block.sh" 2>&1); rc=$?
echo "$out" | tail -5 | sed 's/^/    /'
check "README demo block runs as pasted" test "$rc" -eq 0
echo "first hour: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
