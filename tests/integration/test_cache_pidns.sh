#!/usr/bin/env bash
# tsan: runs (shell; drives our programs)
# Processes sharing a node cache from different PID namespaces (two
# containers, each program pid 1): LMDB keys its reader slots by pid, so
# the second pid 1 gets no slot and every read goes to S3. That must be
# said (once, naming the fix), and the bytes must still be right; in one
# PID namespace the same reads hit. Real namespaces (unshare -p), real
# dscd and dsc-cat, real s3rver. Needs root; skipped, and said so, else.
set -u
BIN="$DSC_TEST_BIN"
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); echo "  ok   $d"; else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
if [ "$(id -u)" -ne 0 ] || ! unshare -p -f true 2>/dev/null; then
    echo "cache-pidns: needs root and PID namespaces; 0 passed, 0 failed, 1 skipped"
    exit 0
fi
T=$(mktemp -d "$DSC_TEST_STATE/pidns-XXXXXX")
dscd_pid=
# SIGKILL: dscd is pid 1 of its namespace, which gets no signal it has
# no handler for, and unshare --kill-child passes the kill on.
cleanup() { [ -n "$dscd_pid" ] && kill -KILL "$dscd_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT" DSC_CACHE_DIR="$T/cache" DSC_LOG=warn
url="s3://$DSC_TEST_BUCKET/five-mib-plus-one"
want=$(awk -F'\t' -v u="$url" '$1 == u { print $2 }' "$DSC_TEST_FIXTURES/manifest.tsv")
"$BIN/dsc-stat" --create >/dev/null

# dscd as pid 1 of its own PID namespace, holding a reader slot.
DSC_PEER_SECRET=pidns-test unshare -p -f --kill-child "$BIN/dscd" --listen 127.0.0.1:0 --port-file "$T/port" \
    >"$T/dscd.log" 2>&1 &
dscd_pid=$!
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.05; done
check "dscd started in its own PID namespace" test -s "$T/port"
[ -s "$T/port" ] || cat "$T/dscd.log"
curl -sf "http://127.0.0.1:$(cat "$T/port")/metrics" >/dev/null
hits() { "$BIN/dsc-stat" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"])'; }

# A reader that is pid 1 in another PID namespace: no slot.
as_pid1() { unshare -p -f "$@"; }
as_pid1 "$BIN/dsc-cat" "$url" >"$T/a" 2>"$T/a.err"
as_pid1 "$BIN/dsc-cat" "$url" >"$T/b" 2>"$T/b.err"
check "pid 1 elsewhere: bytes right both times" cmp -s "$T/a" "$want"
check "  ...second read too" cmp -s "$T/b" "$want"
check "  ...and it says why the cache is not used, and the fix" \
    grep -q "no reader slot.*another PID namespace.*hostPID: true" "$T/b.err"
check "  ...once per process" test "$(grep -c 'no reader slot' "$T/b.err")" -eq 1

# The same reader in the host's PID namespace (not pid 1): it hits.
before=$(hits)
"$BIN/dsc-cat" "$url" >"$T/c" 2>"$T/c.err"
"$BIN/dsc-cat" "$url" >"$T/d" 2>"$T/d.err"
check "one PID namespace: bytes right" cmp -s "$T/d" "$want"
check "  ...no warning" bash -c "! grep -q 'no reader slot' '$T/c.err' '$T/d.err'"
after=$(hits)
check "  ...and the second read hits ($before -> $after node hits)" test "$after" -gt "$before"
echo "cache-pidns: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
