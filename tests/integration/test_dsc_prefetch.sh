#!/usr/bin/env bash
# dsc-prefetch as users run it: a prefix, a list file, stdin; progress,
# summary, --json; failures listed and reflected in the exit status; the
# warmed cache then serves reads without S3.
set -u
BIN="$DSC_TEST_BIN"
B="$DSC_TEST_BUCKET"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
tmp=$(mktemp -d "$DSC_TEST_STATE/prefetch-XXXXXX"); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
py() { /usr/bin/python3 -c "$@"; }

export DSC_CACHE_DIR="$tmp/c1"
"$BIN/dsc-prefetch" -j 8 --json "s3://$B/epoch/" >"$tmp/out.json" 2>"$tmp/err"
check "prefix: exit 0" test $? -eq 0
check "prefix: json summary" py "
import json; d=json.load(open('$tmp/out.json'))
assert d['objects']==48 and d['ok']==48 and d['failed']==0, d
assert d['bytes']==48*65536 and d['bytes_fetched']==48*65536, d
assert d['objects_fetched_alone']==0, d     # all in bulk, on the event loop
assert d['failures']==[], d"
check "plain progress lines when not a terminal" grep -q '^dsc-prefetch: 100% ' "$tmp/err"
misses() { "$BIN/dsc-stat" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["misses"])'; }
before=$(misses)
"$BIN/dsc-cat" "s3://$B/epoch/obj-07" >/dev/null
check "warmed: reads come from the cache" test "$(misses)" = "$before"
# Listed objects went to the event loop in bulk: no thread each.
check "warmed in bulk on the event loop" py "
import json, subprocess
d = json.loads(subprocess.run(['$BIN/dsc-stat', '--json'], capture_output=True, text=True).stdout)
assert d['prefetched_chunks'] == 48 and d['prefetched_bytes'] == 48*65536, d"
"$BIN/dsc-prefetch" --json "s3://$B/epoch/" >"$tmp/again.json" 2>/dev/null
check "second run fetches nothing" py "
import json; d=json.load(open('$tmp/again.json'))
assert d['ok']==48 and d['bytes_fetched']==0 and d['bytes_already_cached']==48*65536, d"

export DSC_CACHE_DIR="$tmp/c2"
printf 's3://%s/one-byte\n# a comment\n\ns3://%s/no/such/key\ns3://%s/five-mib-plus-one\n' "$B" "$B" "$B" >"$tmp/list"
"$BIN/dsc-prefetch" --list "$tmp/list" >"$tmp/out" 2>"$tmp/err"
check "a failed object: exit 1" test $? -eq 1
check "failure listed on stderr" grep -q "FAILED s3://$B/no/such/key: no such key" "$tmp/err"
check "summary counts" grep -q "2 of 3 objects ready" "$tmp/out"
DSC_CACHE_DIR="$tmp/c4" "$BIN/dsc-prefetch" --json --list "$tmp/list" >"$tmp/list.json" 2>/dev/null
check "single URLs (sizes unknown) fetched one by one" py "
import json; d=json.load(open('$tmp/list.json'))
assert d['ok']==2 and d['objects_fetched_alone']==2, d"
check "stdin list" bash -c "echo s3://$B/one-byte | '$BIN/dsc-prefetch' --quiet --list - | grep -q '1 of 1 objects ready'"
check "usage: no source" bash -c "'$BIN/dsc-prefetch' 2>/dev/null; [ \$? -eq 2 ]"
check "usage: bad -j" bash -c "'$BIN/dsc-prefetch' -j 0 s3://$B/ 2>/dev/null; [ \$? -eq 2 ]"
check "bad prefix URL" bash -c "'$BIN/dsc-prefetch' s3:/x/ 2>/dev/null; [ \$? -eq 2 ]"
check "missing list file" bash -c "'$BIN/dsc-prefetch' --list '$tmp/nope' 2>&1 | grep -q 'No such file'"
check "no cache: exit 1" bash -c "DSC_CACHE_DIR=off '$BIN/dsc-prefetch' s3://$B/one-byte 2>&1 | grep -q 'no usable cache'"
# The progress bar on a terminal (script gives the tool a pty).
if command -v script >/dev/null; then
    DSC_CACHE_DIR="$tmp/c3" script -qec "'$BIN/dsc-prefetch' -j 4 s3://$B/flight/" /dev/null >"$tmp/tty" 2>&1
    check "terminal progress bar" grep -q '\[==============================\] 100%' "$tmp/tty"
fi
echo "dsc-prefetch: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
