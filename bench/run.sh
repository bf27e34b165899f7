#!/usr/bin/env bash
# `make bench`: start s3rver on 127.0.0.1, upload the bench data with
# boto3, run each benchmark, stop everything. Figures are ratios against
# baselines measured in the same run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
STATE="$ROOT/.run/bench-$$"
mkdir -p "$STATE"
trap 'scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1; rm -rf "$STATE"' EXIT INT TERM
for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+'); do unset "$v"; done
EP=$(scripts/s3rver.sh start "$STATE/s3rver" bench)
export AWS_ENDPOINT_URL="$EP" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export DSC_CACHE_DIR="$STATE/cache" DSC_LOG=error
echo "bench: s3rver at $EP; machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
/usr/bin/python3 - "$EP" "$STATE" <<'PY'
import os, sys, concurrent.futures, boto3
from botocore.config import Config
ep, state = sys.argv[1:3]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
big = os.path.join(state, "big.bin")
with open(big, "wb") as f:
    f.write(os.urandom(256 << 20))
s3.upload_file(big, "bench", "big.bin")
def put(i):
    s3.put_object(Bucket="bench", Key="epoch/obj-%04d" % i, Body=os.urandom(65536))
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(put, range(400)))
PY
echo
echo "== node cache (bench/bench_cache.c)"
"$BUILD/bench/bench_cache" "$STATE/big.bin" s3://bench/big.bin s3://bench/epoch/ "$STATE/cache"
