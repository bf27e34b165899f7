#!/usr/bin/env bash
# dsc-snapshot as users run it: create, show, refresh after 2 new, 3
# overwritten and 1 deleted objects ("3 changed, 1 deleted, 2 new"), diff,
# --json, usage errors (exit 2), a missing bucket and an empty prefix
# (exit 1 with the reason); then the refreshed file serves reads with no
# HEAD and no LIST.
set -u
BIN="$DSC_TEST_BIN"
B="$DSC_TEST_BUCKET"
export AWS_ENDPOINT_URL="$DSC_TEST_ENDPOINT"
tmp=$(mktemp -d "$DSC_TEST_STATE/snapshot-XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export DSC_CACHE_DIR="$tmp/cache"
pass=0; fail=0
check() { local d="$1"; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi; }
py() { /usr/bin/python3 -c "$@"; }
put() { /usr/bin/python3 "$DSC_TEST_PUT" "$@"; }
P="tool-snap-$$"
for i in 0 1 2 3 4 5; do put put "$DSC_TEST_ENDPOINT" "$P/obj-$i" 1000 "$i" || exit 1; done

"$BIN/dsc-snapshot" "s3://$B/$P/" -o "$tmp/a.dsnap" >"$tmp/out" 2>"$tmp/err"
check "create: exit 0" test $? -eq 0
check "create: one-line summary" grep -q "^dsc-snapshot: wrote s3://$B/$P/: 6 objects, 5.9 KiB, file $tmp/a.dsnap" "$tmp/out"
check "create: nothing on stderr" test ! -s "$tmp/err"
check "no temporary file left" bash -c "[ \$(ls '$tmp' | grep -c tmp) -eq 0 ]"

"$BIN/dsc-snapshot" --show "$tmp/a.dsnap" >"$tmp/show"
check "show: exit 0" test $? -eq 0
check "show: header" grep -q "^  objects  6$" "$tmp/show"
check "show: origin" grep -q "^  origin   $DSC_TEST_ENDPOINT" "$tmp/show"
check "show: entries" bash -c "[ \$(grep -c '$P/obj-' '$tmp/show') -eq 6 ]"
"$BIN/dsc-snapshot" --show --json "$tmp/a.dsnap" >"$tmp/show.json"
check "show --json" py "
import json; d=json.load(open('$tmp/show.json'))
assert d['objects']==6 and d['bytes']==6000 and d['prefix']=='$P/' and d['bucket']=='$B', d
assert [e['key'] for e in d['entries']]==['$P/obj-%d'%i for i in range(6)], d
assert all(e['size']==1000 and e['etag'].startswith('\"') for e in d['entries']), d"

# 2 new, 3 overwritten, 1 deleted.
put put "$DSC_TEST_ENDPOINT" "$P/obj-6" 10 6 && put put "$DSC_TEST_ENDPOINT" "$P/obj-7" 10 7
for i in 0 1 2; do put put "$DSC_TEST_ENDPOINT" "$P/obj-$i" 1000 9; done
put delete "$DSC_TEST_ENDPOINT" "$P/obj-5"
cp "$tmp/a.dsnap" "$tmp/old.dsnap"
"$BIN/dsc-snapshot" --refresh "$tmp/a.dsnap" >"$tmp/refresh" 2>"$tmp/err"
check "refresh: exit 0" test $? -eq 0
check "refresh: the diff, exactly" bash -c "[ \"\$(head -1 '$tmp/refresh')\" = '3 changed, 1 deleted, 2 new' ]"
check "refresh: rewrote the file in place" bash -c "'$BIN/dsc-snapshot' --show '$tmp/a.dsnap' | grep -q '^  objects  7$'"
"$BIN/dsc-snapshot" --refresh "$tmp/old.dsnap" -o "$tmp/new.dsnap" >/dev/null
check "refresh -o: old file kept" bash -c "'$BIN/dsc-snapshot' --show '$tmp/old.dsnap' | grep -q '^  objects  6$'"
"$BIN/dsc-snapshot" --diff "$tmp/old.dsnap" "$tmp/new.dsnap" >"$tmp/diff"
check "diff" bash -c "[ \"\$(cat '$tmp/diff')\" = '3 changed, 1 deleted, 2 new' ]"
"$BIN/dsc-snapshot" --diff --verbose "$tmp/old.dsnap" "$tmp/new.dsnap" >"$tmp/diffv"
check "diff --verbose lists keys" bash -c "grep -q '^changed  $P/obj-0$' '$tmp/diffv' && grep -q '^deleted  $P/obj-5$' '$tmp/diffv' && grep -q '^new      $P/obj-7$' '$tmp/diffv'"
"$BIN/dsc-snapshot" --diff --json "$tmp/old.dsnap" "$tmp/new.dsnap" >"$tmp/diff.json"
check "diff --json" py "
import json; d=json.load(open('$tmp/diff.json'))
assert (d['changed'], d['deleted'], d['added'], d['same']) == (3, 1, 2, 2), d
assert d['keys']['deleted']==['$P/obj-5'] and d['keys']['new']==['$P/obj-6','$P/obj-7'], d"
"$BIN/dsc-snapshot" --refresh --json "$tmp/new.dsnap" >"$tmp/r.json"
check "refresh --json: nothing changed" py "
import json; d=json.load(open('$tmp/r.json'))
assert (d['changed'], d['deleted'], d['added'], d['same'], d['objects']) == (0, 0, 0, 7, 7), d"

# Usage errors: 2.
for args in "" "s3://$B/$P/" "--diff $tmp/a.dsnap" "--show" "--refresh --diff $tmp/a.dsnap" \
            "--bogus" "--show $tmp/a.dsnap -o x" "nota-url -o $tmp/x" "s3:/x/ -o $tmp/x"; do
    "$BIN/dsc-snapshot" $args >/dev/null 2>&1
    check "usage error exits 2: '$args'" test $? -eq 2
done
# Failures: 1, with the reason.
"$BIN/dsc-snapshot" "s3://no-such-bucket-$$/x/" -o "$tmp/x" 2>"$tmp/err"
check "missing bucket: exit 1" test $? -eq 1
check "missing bucket: reason" grep -q "no such key or bucket" "$tmp/err"
"$BIN/dsc-snapshot" "s3://$B/no/such/prefix/" -o "$tmp/x" 2>"$tmp/err"
check "empty prefix refused: exit 1" test $? -eq 1
check "empty prefix: reason" grep -q "holds no objects" "$tmp/err"
check "empty prefix: no file" test ! -e "$tmp/x"
"$BIN/dsc-snapshot" --allow-empty "s3://$B/no/such/prefix/" -o "$tmp/x" >/dev/null
check "--allow-empty writes it" test $? -eq 0 -a -s "$tmp/x"
printf 'not a snapshot at all' >"$tmp/junk"
"$BIN/dsc-snapshot" --show "$tmp/junk" 2>"$tmp/err"
check "bad file: exit 1" test $? -eq 1
check "bad file: reason names it" grep -q "$tmp/junk: truncated" "$tmp/err"
"$BIN/dsc-snapshot" --show "$tmp/nope" 2>"$tmp/err"
check "missing file: exit 1" test $? -eq 1

# The snapshot serves reads: no HEAD, no LIST.
DSC_SNAPSHOT="$tmp/a.dsnap" DSC_META_TTL_MS=0 "$BIN/dsc-cat" "s3://$B/$P/obj-0" >"$tmp/obj" &&
    check "read through the snapshot" py "assert open('$tmp/obj','rb').read()==bytes([9])*1000"
check "s3://: --show of an uploaded snapshot" bash -c "
  /usr/bin/python3 '$DSC_TEST_PUT' putfile '$DSC_TEST_ENDPOINT' '$P.dsnap' '$tmp/a.dsnap' &&
  '$BIN/dsc-snapshot' --show s3://$B/$P.dsnap | grep -q '^  objects  7$'"
echo "dsc-snapshot: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
