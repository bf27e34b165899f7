#!/usr/bin/env bash
# `make demo`: start a local S3 (s3rver on 127.0.0.1), load a sample
# dataset, and read it through libdsc as a training job would.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
STATE="$ROOT/.run/demo"
BUCKET=demo
PREFIX=train/
trap 'scripts/s3rver.sh stop "$STATE/s3rver"' EXIT INT TERM
rm -rf "$STATE"; mkdir -p "$STATE"
ENDPOINT=$(scripts/s3rver.sh start "$STATE/s3rver" "$BUCKET")
echo "demo: s3rver listening on $ENDPOINT (data in $STATE)"
/usr/bin/python3 scripts/demo-data.py "$ENDPOINT" "$BUCKET" "$PREFIX" "$STATE/local" 64 1024

export AWS_ENDPOINT_URL="$ENDPOINT" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export DSC_CACHE_DIR="$STATE/cache" DSC_CACHE_SIZE=1G
echo
echo "demo: one object through dsc-cat:"
"$BUILD/bin/dsc-cat" --length 32 "s3://$BUCKET/${PREFIX}shard-00000.bin" | od -An -tx1
echo
echo "demo: two shuffled epochs over s3://$BUCKET/$PREFIX with 8 threads"
echo "      through the node cache in $STATE/cache: epoch 1 fetches, epoch 2 hits"
"$BUILD/bin/dsc-epoch" -j 8 -e 2 --verify "$STATE/local" "s3://$BUCKET/$PREFIX"
