#!/usr/bin/env bash
# Smoke test of the mounts benchmark's pieces (bench/run_mounts.sh,
# bench/bench_mounts.py) without FUSE: a tiny run of the local, libdsc and
# boto3 sides (data, tar shards, latency proxy, checked samples, ceiling,
# table, goals) must finish, print its table, and leave no state behind.
# The figures of so small a run mean nothing; only that it runs.
set -u
cd "$(dirname "$0")/../.."
# The bench runs lib/libdsc.so.0 (the plain build) in CPython: nothing a
# sanitizer build would check.
case "${OUT:-}" in *asan*|*tsan*)
    echo "test_bench_mounts: skipped under a sanitizer build (the bench uses lib/libdsc.so.0)"
    exit 0 ;;
esac
out=$(mktemp); trap 'rm -f "$out"' EXIT
pass=0; fail=0
check() {  # check DESCRIPTION COMMAND...
    local d="$1"; shift
    if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "  FAIL: $d"; fi
}
before=$(ls -d .run/mounts-* 2>/dev/null | wc -l)
BENCH_MOUNTS_SAMPLES=48 BENCH_MOUNTS_SHARDS=4 BENCH_MOUNTS_SIDES="local dsc boto3" \
    BENCH_MOUNTS_ROUNDS=1 BENCH_MOUNTS_TAR_ROUNDS=1 BENCH_MOUNTS_AB_EPOCHS=1 \
    BENCH_MOUNTS_LATENCY_MS=5 BENCH_MOUNTS_CEILING_THREADS=8 \
    timeout 120 bench/run_mounts.sh >"$out" 2>&1
rc=$?
check "run_mounts.sh exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "every side of the map table" bash -c "grep -Eq '^ +map +local ' '$out' && grep -Eq '^ +map +dsc ' '$out' && grep -Eq '^ +map +boto3 ' '$out'"
check "tar rows" bash -c "grep -Eq '^ +tar +dsc ' '$out' && grep -Eq '^ +tar +local ' '$out'"
check "libdsc fetched every sample once, cold (48 requests)" \
    bash -c "grep -Eq '^ +map +dsc +1 +[0-9]+ +[0-9]+ +- +- +48 +0 ' '$out'"
check "ceiling measured" grep -q "origin ceiling: " "$out"
check "goals printed" grep -q "libdsc cold / origin ceiling" "$out"
check "no FUSE side asked, none run" bash -c "! grep -Eq 'rclone|s3fs' <(grep -E '^ +(map|tar) ' '$out')"
after=$(ls -d .run/mounts-* 2>/dev/null | wc -l)
check "state directory removed" [ "$after" -le "$before" ]
[ "$fail" -eq 0 ] || tail -40 "$out"
echo "test_bench_mounts: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
