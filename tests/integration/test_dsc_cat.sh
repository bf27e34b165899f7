#!/usr/bin/env bash
# dsc-cat as a shell user meets it: bytes on stdout, messages on stderr,
# exit 0 / 1 (could not read) / 2 (usage).
set -u
CAT="$DSC_TEST_BIN/dsc-cat"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
B="$DSC_TEST_BUCKET"
FX="$DSC_TEST_FIXTURES"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() {  # check DESCRIPTION COMMAND...
    local d="$1"; shift
    if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi
}
expect_exit() {  # expect_exit CODE STDERR_PATTERN ARGS...
    local code="$1" pat="$2"; shift 2
    "$CAT" "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
    [ "$got" -eq "$code" ] || { echo "  exit $got, wanted $code for: $*"; return 1; }
    grep -q -- "$pat" "$tmp/err" || { echo "  stderr lacks '$pat': $(cat "$tmp/err")"; return 1; }
    [ "$code" -eq 0 ] || [ ! -s "$tmp/out" ] || { echo "  stdout not empty on error"; return 1; }
}
fixture() { awk -F'\t' -v k="$1" '$1 ~ k"$" {print $2}' "$FX/manifest.tsv"; }

big=$(fixture five-mib-plus-one)
check "whole object" bash -c "'$CAT' s3://$B/five-mib-plus-one | cmp - '$big'"
check "range" bash -c "'$CAT' --offset 4194300 --length 10 s3://$B/five-mib-plus-one | cmp - <(tail -c +4194301 '$big' | head -c 10)"
check "range past end is short" bash -c "[ \$('$CAT' --offset 5242870 --length 100 s3://$B/five-mib-plus-one | wc -c) -eq 11 ]"
check "empty object" bash -c "[ \$('$CAT' s3://$B/empty | wc -c) -eq 0 ]"
check "unicode key" bash -c "'$CAT' 's3://$B/awkward/ünïcødé/日本語/😀.txt' | cmp - '$(fixture '😀.txt')'"
check "key with + % = & ? #" bash -c "'$CAT' 's3://$B/awkward/a b+c%d=e&f?g#h.bin' | cmp - '$(fixture 'h.bin')'"
check "missing key" expect_exit 1 "no such key" "s3://$B/does/not/exist"
check "missing bucket" expect_exit 1 "no such key or bucket" "s3://no-such-bucket-x/k"
check "malformed url" expect_exit 2 "malformed URL" "s3:/$B/k"
check "bucket only" expect_exit 2 "names a bucket" "s3://$B/"
check "bad offset" expect_exit 2 "bad --offset" --offset -5 "s3://$B/one-byte"
check "no args" expect_exit 2 "usage" 
check "help" bash -c "'$CAT' --help | grep -q usage"
check "unknown key id" env AWS_ACCESS_KEY_ID=AKIAUNKNOWN0000 bash -c "'$CAT' s3://$B/one-byte 2>&1 >/dev/null | grep -q 'access denied'"
check "bad endpoint" env AWS_ENDPOINT_URL=ftp://x bash -c "'$CAT' s3://$B/one-byte 2>&1 | grep -q 'http:// or https://'"
check "profile credentials" bash -c "printf '[p1]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' > '$tmp/creds'; env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE='$tmp/creds' AWS_PROFILE=p1 '$CAT' s3://$B/one-byte | cmp - '$(fixture one-byte)'"
check "missing profile" bash -c "env -u AWS_ACCESS_KEY_ID AWS_PROFILE=nope '$CAT' s3://$B/one-byte 2>&1 | grep -q \"profile 'nope' not found\""
echo "dsc-cat: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
