#!/usr/bin/env bash
# The peer benchmark (bench/bench_peers.py) on a private s3rver on
# 127.0.0.1, stopped by PID at exit:
#   1. peer-hit throughput: a node reading chunks another node's dscd has
#      cached, vs reading the same objects from the origin (and from a
#      warm local cache, for reference);
#   2. S3 GETs per epoch: 1 node, 3 nodes with separate caches, 3 nodes
#      with peers (epoch 1 and 2).
# Knobs: BUILD (build), BENCH_PEER_RUNS (5), BENCH_PEER_MIB (192).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
STATE="$ROOT/.run/peers-$$"
cleanup() {
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+'); do unset "$v"; done
mkdir -p "$STATE"
EP=$(scripts/s3rver.sh start "$STATE/s3rver" peerbench)
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export DSC_TEST_ENDPOINT="$EP" DSC_TEST_BUCKET=peerbench DSC_TEST_STATE="$STATE" \
       DSC_TEST_S3RVER_LOG="$STATE/s3rver/log" BUILD="$BUILD"
/usr/bin/python3 bench/bench_peers.py
