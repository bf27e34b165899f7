#!/usr/bin/env bash
# dsc-stat on a real cache: human and JSON output, --clean, no cache.
set -u
BIN="$DSC_TEST_BIN"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
tmp=$(mktemp -d "$DSC_TEST_STATE/stat-XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export DSC_CACHE_DIR="$tmp/cache" DSC_CACHE_SIZE=100M
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi; }

"$BIN/dsc-cat" "s3://$DSC_TEST_BUCKET/five-mib-plus-one" >/dev/null
"$BIN/dsc-cat" "s3://$DSC_TEST_BUCKET/five-mib-plus-one" >/dev/null
json=$("$BIN/dsc-stat" --json)
check "json parses, two chunks, one hit each" /usr/bin/python3 -c "
import json,sys; d=json.loads(sys.argv[1])
assert d['chunks']==2 and d['used_bytes']==5242881, d
assert d['capacity_bytes']==100<<20, d
assert d['hits']>=2 and d['misses']==2 and 0<d['hit_ratio']<1, d
assert d['cache_dir'].endswith('/cache'), d" "$json"
check "human output" bash -c "'$BIN/dsc-stat' | grep -q '^used  *5.0 MiB of 100.0 MiB'"
touch "$tmp/cache/data/stray"
check "clean removes debris" bash -c "'$BIN/dsc-stat' --clean --json | grep -q '\"stray_files_removed\":1'"
check "debris gone" test ! -e "$tmp/cache/data/stray"
check "chunks kept" bash -c "'$BIN/dsc-stat' --json | grep -q '\"chunks\":2'"
check "no cache: exit 1" bash -c "DSC_CACHE_DIR=off '$BIN/dsc-stat' 2>/dev/null; [ \$? -eq 1 ]"
check "usage: exit 2" bash -c "'$BIN/dsc-stat' --bogus 2>/dev/null; [ \$? -eq 2 ]"
check "cache dir is 0700" bash -c "[ \$(stat -c %a '$tmp/cache/index') = 700 ] && [ \$(stat -c %a '$tmp/cache/data') = 700 ]"
check "chunk files are 0600" bash -c "find '$tmp/cache/data' -type f -printf '%m\n' | sort -u | grep -qx 600"
echo "dsc-stat: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
