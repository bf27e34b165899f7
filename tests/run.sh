#!/usr/bin/env bash
# Runs every test: unit tests, then integration tests against a real s3rver
# started here on 127.0.0.1 and stopped (by PID) on exit.
# Env: BUILD (default build), OUT (default lib), DSC_TEST_ONLY (substring
# filter on test names).
set -uo pipefail
shopt -s nullglob
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
OUT="${OUT:-lib}"
PY=/usr/bin/python3
passed=0; failed=0; failures=()

run() {  # run NAME CMD...: one test program, judged by its exit status
    local name="$1"; shift
    if [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]]; then
        return
    fi
    echo "=== $name"
    local t0=$(date +%s%N)
    if "$@"; then
        passed=$((passed + 1))
        local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "--- ok   $name (${ms} ms)"
    else
        failed=$((failed + 1)); failures+=("$name")
        echo "--- FAIL $name"
    fi
}

ONLY="${DSC_TEST_ONLY:-}"
# Integration tests must never touch the user's real AWS setup.
for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+' ); do unset "$v"; done
export HOME_REAL="$HOME"
# With no credentials the chain would ask IMDS (a 1 s timeout off EC2);
# tests have keys or ask for anonymous, and the ones about IMDS unset it.
export AWS_EC2_METADATA_DISABLED=true
STATE="$ROOT/.run/test-$$"
mkdir -p "$STATE"
export HOME="$STATE/home"; mkdir -p "$HOME"
cleanup() {
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

# --- unit tests (no network) ---
for t in "$BUILD"/tests/test_*; do
    name=$(basename "$t")
    [ -f "tests/unit/$name.c" ] || continue
    run "unit/$name" "$t"
done
run "exports" tests/check_exports.sh "$OUT"
run "layers" tests/check_layers.sh
run "layers-selftest" tests/check_layers_selftest.sh
for t in "$BUILD"/tests/fuzz_replay_*; do
    name=${t##*/fuzz_replay_}
    run "fuzz-corpus/$name" "$t" "tests/fuzz/corpus/$name"
done

# --- integration tests (real s3rver) ---
export DSC_TEST_BUCKET=dsc-test
if ! DSC_TEST_ENDPOINT=$(scripts/s3rver.sh start "$STATE/s3rver" "$DSC_TEST_BUCKET"); then
    echo "could not start s3rver"; exit 1
fi
export DSC_TEST_ENDPOINT
export DSC_TEST_S3RVER_LOG="$STATE/s3rver/log"
export DSC_TEST_STATE="$STATE"
export DSC_TEST_FIXTURES="$STATE/fixtures"
export DSC_TEST_PUT="$ROOT/tests/integration/s3put.py"
export DSC_TEST_BIN="$ROOT/$BUILD/bin"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
echo "s3rver at $DSC_TEST_ENDPOINT"
if ! $PY tests/integration/fixtures.py "$DSC_TEST_ENDPOINT" "$DSC_TEST_BUCKET" "$DSC_TEST_FIXTURES"; then
    echo "could not upload fixtures"; exit 1
fi
for t in "$BUILD"/tests/*; do
    name=$(basename "$t")
    [ -f "tests/integration/$name.c" ] || continue
    run "integration/$name" "$t"
done
for t in "$BUILD"/tests/cpp_test_*; do
    run "integration/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.py; do
    # libtsan cannot be loaded into CPython after start (static TLS): under
    # TSan only the Python tests that merely drive our programs run (they
    # say "tsan: runs" in their first lines).
    if [[ "$OUT" == *tsan* ]] && ! head -5 "$t" | grep -q "tsan: runs"; then
        echo "(not under TSan, it loads libdsc into CPython: $(basename "$t"))"
        continue
    fi
    # A test may say "asan: skip (reason)" in its first lines: for aborts
    # inside CPython or torch under the preloaded ASan runtime, not libdsc.
    if [[ "$OUT" == *asan* ]] && head -5 "$t" | grep -q "asan: skip"; then
        echo "(not under ASan: $(basename "$t"): $(head -5 "$t" | grep -o 'asan: skip.*'))"
        continue
    fi
    run "integration/$(basename "$t")" env BUILD="$BUILD" $PY "$t"
done
for t in tests/integration/test_*.sh; do
    run "integration/$(basename "$t")" env BUILD="$BUILD" bash "$t"
done

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
