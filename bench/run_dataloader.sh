#!/usr/bin/env bash
# The PyTorch DataLoader benchmark (bench/bench_dataloader.py): start a
# private s3rver on 127.0.0.1, lay out the dataset (local copy + upload with
# boto3), run both figures, print the summary, stop s3rver by PID.
#
#   1. warm epoch (2+): DataLoader over dsc.MapDataset vs local files (>= 0.9x)
#   2. cold epoch 1:    DataLoader over dsc.MapDataset + prefetch vs boto3 (>= 5x)
#
# Knobs (environment): BUILD (build; its bin/dsc-stat reports node cache
# counters), BENCH_DL_SAMPLES (2000), BENCH_DL_MIN_KIB / BENCH_DL_MAX_KIB
# (100 / 200), BENCH_DL_RUNS (3 cold rounds), BENCH_DL_WARM_RUNS (7 warm
# rounds), BENCH_DL_EXTRA=0 (skip the rows that are no goal),
# BENCH_DL_DEFAULT_MALLOC=1 (leave glibc's malloc thresholds alone in the
# DataLoader workers), BENCH_DL_KEEP=1 (keep the state directory).
# State (data, caches, s3rver) lives in .run/dataloader-PID, removed at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
PY=/usr/bin/python3                 # Debian's torch and boto3 live there
BUCKET=dsc-dataloader
STATE="$ROOT/.run/dataloader-$$"

cleanup() {
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    if [ "${BENCH_DL_KEEP:-0}" = 1 ]; then
        echo "bench: state kept in $STATE" >&2
    else
        rm -rf "$STATE"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -e lib/libdsc.so.0 ] || { echo "bench: lib/libdsc.so.0 missing: run make" >&2; exit 1; }
$PY -c 'import torch, numpy, boto3' 2>/dev/null ||
    { echo "bench: $PY cannot import torch, numpy and boto3 (scripts/setup.sh installs them)" >&2; exit 1; }

# Only the settings below reach libdsc and boto3.
for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+'); do unset "$v"; done
mkdir -p "$STATE"
EP=$(scripts/s3rver.sh start "$STATE/s3rver" "$BUCKET")
export AWS_ENDPOINT_URL="$EP" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
export AWS_REGION=us-east-1 DSC_LOG=error
export S3RVER_PID="$(cat "$STATE/s3rver/pid")" S3RVER_LOG="$STATE/s3rver/log"
echo "bench: s3rver at $EP (pid $S3RVER_PID); $(nproc) cores," \
     "$(free -g | awk '/Mem/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"

MALLOC=()
if [ "${BENCH_DL_DEFAULT_MALLOC:-0}" = 1 ]; then MALLOC=(--default-malloc); fi
$PY bench/bench_dataloader.py prepare "$EP" "$BUCKET" train/ "$STATE/local" \
    --count "${BENCH_DL_SAMPLES:-2000}" --min-kib "${BENCH_DL_MIN_KIB:-100}" \
    --max-kib "${BENCH_DL_MAX_KIB:-200}"
$PY bench/bench_dataloader.py run "$EP" "$BUCKET" train/ "$STATE/local" "$STATE" \
    --runs "${BENCH_DL_RUNS:-3}" --warm-runs "${BENCH_DL_WARM_RUNS:-7}" \
    --extra "${BENCH_DL_EXTRA:-1}" --dsc-stat "$BUILD/bin/dsc-stat" "${MALLOC[@]}"
echo "bench: done in $SECONDS s"
