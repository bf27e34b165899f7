#!/usr/bin/env bash
# `make demo`: start a local S3 (s3rver on 127.0.0.1), load a sample
# dataset, and run the main job: read it through the node cache for two
# epochs (misses, then hits), prefetch a second split before reading it,
# and show the cache's counters.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
STATE="$ROOT/.run/demo"
BUCKET=demo
trap 'scripts/s3rver.sh stop "$STATE/s3rver"' EXIT INT TERM
scripts/s3rver.sh stop "$STATE/s3rver" 2>/dev/null || true
rm -rf "$STATE"; mkdir -p "$STATE"
ENDPOINT=$(scripts/s3rver.sh start "$STATE/s3rver" "$BUCKET")
echo "demo: s3rver listening on $ENDPOINT (data in $STATE)"
/usr/bin/python3 scripts/demo-data.py "$ENDPOINT" "$BUCKET" train/ "$STATE/train" 64 1024
/usr/bin/python3 scripts/demo-data.py "$ENDPOINT" "$BUCKET" val/ "$STATE/val" 32 1024

for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+'); do unset "$v"; done
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export DSC_CACHE_DIR="$STATE/cache" DSC_CACHE_SIZE=1G

echo
echo "== 1. two shuffled epochs over s3://$BUCKET/train/, 8 threads, through the node cache"
echo "      (epoch 1 fetches from S3 and fills the cache; epoch 2 is served from local disk)"
"$BUILD/bin/dsc-epoch" -j 8 -e 2 --verify "$STATE/train" "s3://$BUCKET/train/"

echo
echo "== 2. warm the cache with s3://$BUCKET/val/ before reading it (dsc-prefetch)"
"$BUILD/bin/dsc-prefetch" -j 16 "s3://$BUCKET/val/"
"$BUILD/bin/dsc-epoch" -j 8 -e 1 --verify "$STATE/val" "s3://$BUCKET/val/"

echo
echo "== 3. the node cache (dsc-stat)"
"$BUILD/bin/dsc-stat"
