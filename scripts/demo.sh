#!/usr/bin/env bash
# `make demo`: start a local S3 (s3rver on 127.0.0.1), load a sample
# dataset, and run the main job: read it through the node cache for two
# epochs (misses, then hits), prefetch a second split before reading it,
# and show the cache's counters.
#
# To try the tools yourself against the same local S3 (README, "Try it
# against the demo's S3"):
#   scripts/demo.sh up     start s3rver and load s3://demo/train/, val/;
#                          it keeps running (state in DSC_DEMO_STATE,
#                          default .run/demo-up)
#   scripts/demo.sh env    print the exports that point libdsc at it
#   scripts/demo.sh down   stop it (by its PID) and remove its state
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"

case "${1:-}" in
up|env|down)
    UP="${DSC_DEMO_STATE:-$ROOT/.run/demo-up}"
    case "$1" in
    up)
        mkdir -p "$UP"
        endpoint=$(scripts/s3rver.sh start "$UP/s3rver" demo)
        if [ ! -f "$UP/loaded" ]; then
            /usr/bin/python3 scripts/demo-data.py "$endpoint" demo train/ "$UP/train" 16 256 >&2
            /usr/bin/python3 scripts/demo-data.py "$endpoint" demo val/ "$UP/val" 8 256 >&2
            touch "$UP/loaded"
        fi
        echo "demo: s3rver on $endpoint, objects under s3://demo/train/ and s3://demo/val/" >&2
        echo "demo: eval \"\$(scripts/demo.sh env)\" points libdsc at it; scripts/demo.sh down stops it" >&2
        ;;
    env)
        [ -f "$UP/s3rver/port" ] || { echo "demo: not running: scripts/demo.sh up" >&2; exit 1; }
        # s3rver accepts any keys; these are its documented defaults.
        echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$UP/s3rver/port")"
        echo "export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1"
        echo "export DSC_CACHE_DIR='$UP/cache'"
        ;;
    down)
        scripts/s3rver.sh stop "$UP/s3rver"
        rm -rf "$UP"
        ;;
    esac
    exit 0
    ;;
"") ;;
*) echo "usage: $0 [up|env|down]" >&2; exit 2 ;;
esac
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
