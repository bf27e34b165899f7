#!/usr/bin/env bash
# `make bench`: start s3rver (and nginx) on 127.0.0.1, lay out the bench
# data, run each benchmark, print a summary, stop everything by PID.
# Figures are ratios against baselines measured in the same run.
#
#   bench/bench_cache.c     hot-cache reads and epoch hit ratios (s3rver)
#   bench/bench_fetch.c     cold fetches: one big object, many small ones,
#                           a plan-driven epoch (libdsc)
#   bench/fetch_baselines.py  the same fetches by the AWS CRT S3 client and
#                           boto3 (curl for one stream), and the summary
#
# Cold fetches run against two origins, each in turn on 127.0.0.1:80 (the
# CRT client of python3-awscrt 0.16 only connects to port 80):
#   s3rver  nginx as a reverse proxy in front of s3rver (every client goes
#           through the same proxy, so all see the same origin)
#   nginx   nginx serving the same bytes as static files (sendfile on)
# Without root, or with port 80 taken, nginx listens on a free port and the
# CRT rows are skipped.
#
# Knobs (environment):
#   BENCH_RUNS_BIG (5), BENCH_RUNS_BIG_S3RVER (3), BENCH_RUNS_MANY (3),
#   BENCH_RUNS_EPOCH (3)   runs per measurement (medians are reported)
#   BENCH_STEP_US          the epoch's training step per sample (default:
#                          twice libdsc's cold per-object time, >= 1 ms)
#   BENCH_EPOCH_OBJECTS    samples per epoch (default: ~2 s of steps)
#   BENCH_FETCH_CACHE=disk libdsc's cache on disk, not tmpfs
#   BENCH_DISK_ROWS=0      skip the libdsc-disk rows
#   BENCH_LIBDSC_BIG, BENCH_LIBDSC_MANY  extra bench_fetch options, e.g.
#                          "--threads 4 --chunk 8388608"
#   BENCH_FETCH=0 / BENCH_CACHE=0  skip the cold-fetch / node-cache part
#   BENCH_PEERS=0 / BENCH_DATALOADER=0  skip the peer / DataLoader part
#   BENCH_MOUNTS=0         skip the DataLoader vs rclone/s3fs mounts part
#                          (bench/run_mounts.sh, its knobs BENCH_MOUNTS_*)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
PY=/usr/bin/python3
RUNS_BIG="${BENCH_RUNS_BIG:-5}"
RUNS_BIG_S3RVER="${BENCH_RUNS_BIG_S3RVER:-3}"   # s3rver is slow: fewer
RUNS_MANY="${BENCH_RUNS_MANY:-3}"
RUNS_EPOCH="${BENCH_RUNS_EPOCH:-3}"
NSMALL=2000
STATE="$ROOT/.run/bench-$$"
mkdir -p "$STATE/nginx"
NGINX_PID=""

stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill "$NGINX_PID" 2>/dev/null || true   # TERM: fast shutdown
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
    fi
}
cleanup() {
    stop_nginx
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    rm -rf "$STATE" "/dev/shm/dsc-bench-$$"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for v in $(env | grep -oE '^(AWS|DSC)_[A-Z0-9_]+'); do unset "$v"; done
EP=$(scripts/s3rver.sh start "$STATE/s3rver" bench)
S3PORT=$(cat "$STATE/s3rver/port")
export AWS_ENDPOINT_URL="$EP" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export DSC_CACHE_DIR="$STATE/cache" DSC_LOG=error
echo "bench: s3rver at $EP; machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"

# The data, once on disk as nginx serves it (WWW/bucket/key) and uploaded
# from there to s3rver: both origins hold the same bytes.
WWW="$STATE/www"
mkdir -p "$WWW/bench/small"
$PY - "$EP" "$WWW" "$NSMALL" <<'PY'
import os, sys, concurrent.futures, boto3
from botocore.config import Config
ep, www, nsmall = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
big = os.path.join(www, "bench", "big.bin")
with open(big, "wb") as f:
    for _ in range(512):
        f.write(os.urandom(1 << 20))
with open(big, "rb") as f:      # one PUT: s3rver joins multipart uploads slowly
    s3.put_object(Bucket="bench", Key="big.bin", Body=f)
    f.seek(0)                   # bench_cache's object: the first 256 MiB
    half = f.read(256 << 20)
with open(os.path.join(www, "..", "half.bin"), "wb") as f:
    f.write(half)
s3.put_object(Bucket="bench", Key="half.bin", Body=half)
def put_small(i):
    key = "small/obj-%04d" % i
    data = os.urandom(128 << 10)
    with open(os.path.join(www, "bench", key), "wb") as f:
        f.write(data)
    s3.put_object(Bucket="bench", Key=key, Body=data)
def put_epoch(i):               # for bench_cache: s3rver only (it lists)
    s3.put_object(Bucket="bench", Key="epoch/obj-%04d" % i, Body=os.urandom(65536))
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(put_small, range(nsmall)))
    list(ex.map(put_epoch, range(400)))
PY
chmod -R a+rX "$WWW"; chmod a+x "$ROOT/.run" "$STATE"   # nginx workers run as nobody
echo "bench: data laid out and uploaded in $SECONDS s"

if [ "${BENCH_CACHE:-1}" != 0 ]; then
    echo
    echo "== node cache (bench/bench_cache.c)"
    "$BUILD/bench/bench_cache" "$STATE/half.bin" s3://bench/half.bin s3://bench/epoch/ "$STATE/cache"
    rm -rf "$STATE/cache"
    echo "bench: at $SECONDS s"
fi
[ "${BENCH_FETCH:-1}" != 0 ] || exit 0

# ---- cold fetch: libdsc vs the CRT client, boto3 and curl ----
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
CRT=1
if [ "$(id -u)" = 0 ] && port_free 80; then
    NGINX_PORT=80
else
    NGINX_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    CRT=0
    echo "bench: port 80 is not ours to take (not root, or in use): nginx on" \
         "$NGINX_PORT, CRT client rows skipped"
fi
command -v nginx >/dev/null || { echo "bench: nginx missing (apt-get install nginx)" >&2; exit 1; }

. bench/nginx_user.sh
NGINX_USER=$(nginx_user "$WWW")

# One nginx config per role, own pid file and temp dirs in the state dir.
nginx_conf() {   # ROLE
    local n="$STATE/nginx"
    cat <<EOF
worker_processes 2;
pid $n/$1.pid;
error_log $n/$1.err warn;
$NGINX_USER
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $n/tmp-body;
    proxy_temp_path $n/tmp-proxy;
    fastcgi_temp_path $n/tmp-fastcgi;
    uwsgi_temp_path $n/tmp-uwsgi;
    scgi_temp_path $n/tmp-scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    tcp_nodelay on;
EOF
    if [ "$1" = static ]; then
        cat <<EOF
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WWW;
        location / { }
    }
}
EOF
    else
        # Range, If-Match and the signature headers pass through untouched;
        # no buffering to temp files, keep-alive to s3rver.
        cat <<EOF
    upstream s3rver { server 127.0.0.1:$S3PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        client_max_body_size 0;
        location / {
            proxy_pass http://s3rver;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 256k;
        }
    }
}
EOF
    fi
}

start_nginx() {   # ROLE
    local conf="$STATE/nginx/$1.conf"
    nginx_conf "$1" >"$conf"
    nginx -q -t -c "$conf" -p "$STATE/nginx" -e "$STATE/nginx/$1.err"
    nginx -c "$conf" -p "$STATE/nginx" -e "$STATE/nginx/$1.err" -g 'daemon off;' \
        </dev/null >/dev/null 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/bench/small/obj-0000"; then
            [ "$(cat "$STATE/nginx/$1.pid" 2>/dev/null)" = "$NGINX_PID" ] && return 0
        fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: nginx ($1) did not start:" >&2
    cat "$STATE/nginx/$1.err" >&2
    exit 1
}

# libdsc's cache for the cold fetches lives on tmpfs when there is one: the
# bench measures libdsc's fetch path, not this machine's disk. (On this
# VM's journal-less ext4, creating files right after others were deleted
# is slow: ext4 skips recently deleted inodes one by one.) The
# "libdsc-disk" rows put the cache in the state dir on disk instead.
DCACHE="$STATE/fetch-cache"
FCACHE="$DCACHE"
if [ "${BENCH_FETCH_CACHE:-tmpfs}" = tmpfs ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    FCACHE="/dev/shm/dsc-bench-$$/fetch-cache"
    mkdir -p "$(dirname "$FCACHE")"
fi
# libdsc settings for the cold fetches (defaults: 4 MiB chunks, 8 fetchers).
read -r -a LIBDSC_BIG <<<"${BENCH_LIBDSC_BIG:-}"
read -r -a LIBDSC_MANY <<<"${BENCH_LIBDSC_MANY:-}"

RES="$STATE/results"
: >"$RES"
NEP="http://127.0.0.1:$NGINX_PORT"
S3PID=$(cat "$STATE/s3rver/pid")
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
measure() {   # ORIGIN TEST CLIENT command...: append "ORIGIN TEST CLIENT k=v..."
    local o=$1 t=$2 c=$3 line a b
    shift 3
    a=$(cpu_ticks "$S3PID")
    line=$("$@") || { echo "bench: $o $t $c failed: $*" >&2; exit 1; }
    b=$(cpu_ticks "$S3PID")
    if [ "$o" = s3rver ]; then   # CPU time s3rver (one node process) spent
        line="$line srv_cpu=$(awk -v a="$a" -v b="$b" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
    fi
    echo "$o $t $c $line" >>"$RES"
}
curl_big() {
    local out
    out=$(curl -sf -o /dev/null -w 'secs=%{time_total} bytes=%{size_download}' "$NEP/bench/big.bin")
    [ "${out#*bytes=}" = $((512 << 20)) ] || { echo "curl: $out" >&2; return 1; }
    echo "$out"
}

fetch_suite() {   # ORIGIN BIG_RUNS DISK_ROWS(0|1) LIST_ROWS(0|1)
    local o=$1 nbig=$2 disk=$3 list=$4 r v t0=$SECONDS
    echo "   $o: one 512 MiB object x $nbig, $NSMALL objects x $RUNS_MANY, epoch x $RUNS_EPOCH" \
         "(load $(cut -d' ' -f1 /proc/loadavg))"
    # Clients alternate run by run, so drift in machine load hits all alike.
    for r in $(seq 1 "$nbig"); do
        v=(); if [ "$r" = 1 ]; then v=(--verify "$WWW"); fi
        measure "$o" big libdsc "$BUILD/bench/bench_fetch" big "$NEP" s3://bench/big.bin \
            "$FCACHE" "${v[@]}" "${LIBDSC_BIG[@]}"
        if [ "$CRT" = 1 ]; then
            measure "$o" big crt $PY bench/fetch_baselines.py crt-big 127.0.0.1 /bench/big.bin \
                --expect $((512 << 20))
        fi
        measure "$o" big curl curl_big
        if [ "$disk" = 1 ] && [ "$r" -le 3 ]; then
            measure "$o" big libdsc-disk "$BUILD/bench/bench_fetch" big "$NEP" s3://bench/big.bin \
                "$DCACHE" "${LIBDSC_BIG[@]}"
        fi
    done
    for r in $(seq 1 "$RUNS_MANY"); do
        v=(); if [ "$r" = 1 ]; then v=(--verify "$WWW"); fi
        measure "$o" many libdsc "$BUILD/bench/bench_fetch" many "$NEP" s3://bench/small/obj- \
            "$NSMALL" "$FCACHE" "${v[@]}" "${LIBDSC_MANY[@]}"
        measure "$o" many boto3 $PY bench/fetch_baselines.py boto3-many "$NEP" bench small/obj- \
            "$NSMALL" --threads 16 --expect $((NSMALL << 17))
        if [ "$CRT" = 1 ]; then
            measure "$o" many crt $PY bench/fetch_baselines.py crt-many 127.0.0.1 \
                /bench/small/obj- "$NSMALL" --expect $((NSMALL << 17))
        fi
        if [ "$list" = 1 ]; then
            measure "$o" many libdsc-list "$BUILD/bench/bench_fetch" many "$NEP" \
                s3://bench/small/obj- "$NSMALL" "$FCACHE" --mode list "${LIBDSC_MANY[@]}"
        fi
        if [ "$disk" = 1 ]; then
            measure "$o" many libdsc-disk "$BUILD/bench/bench_fetch" many "$NEP" \
                s3://bench/small/obj- "$NSMALL" "$DCACHE" "${LIBDSC_MANY[@]}"
        fi
    done
    # The training step is chosen so that fetching can hide behind it: twice
    # the per-object time libdsc's cold prefetch just showed from this
    # origin (the fetchers need half the step), at least 1 ms; as many
    # samples as make about 2 s of steps (200 to 2000), so that start-up
    # is a small part.
    local step nep
    step=$($PY bench/fetch_baselines.py median "$RES" "$o" many libdsc secs)
    step=$($PY -c "print(max(1000, round(2e6 * $step / $NSMALL)))")
    step="${BENCH_STEP_US:-$step}"
    nep=$($PY -c "print(min($NSMALL, max(200, round(2e6 / $step))))")
    nep="${BENCH_EPOCH_OBJECTS:-$nep}"
    for r in $(seq 1 "$RUNS_EPOCH"); do
        measure "$o" epoch libdsc "$BUILD/bench/bench_fetch" epoch "$NEP" s3://bench/small/obj- \
            "$nep" "$FCACHE" --step-us "$step" --seed "$r"
    done
    echo "   $o: done in $((SECONDS - t0)) s"
}

echo
echo "== cold fetch (bench/bench_fetch.c, bench/fetch_baselines.py)"
start_nginx proxy
fetch_suite s3rver "$RUNS_BIG_S3RVER" 0 1
stop_nginx
start_nginx static
fetch_suite nginx "$RUNS_BIG" "${BENCH_DISK_ROWS:-1}" 0
stop_nginx
$PY bench/fetch_baselines.py report "$RES"
echo
echo "bench: done in $SECONDS s"

# The PyTorch DataLoader figures run on a private s3rver of their own.
if [ "${BENCH_PEERS:-1}" != 0 ]; then
    echo
    echo "== peers (bench/bench_peers.py)"
    BUILD="$BUILD" bench/run_peers.sh
    echo
    echo "== peer discovery by DNS (bench/bench_discovery.py)"
    BUILD="$BUILD" $PY bench/bench_discovery.py
fi

if [ "${BENCH_DATALOADER:-1}" != 0 ]; then
    echo
    echo "== PyTorch DataLoader (bench/bench_dataloader.py)"
    BUILD="$BUILD" bench/run_dataloader.sh
fi

if [ "${BENCH_MOUNTS:-1}" != 0 ]; then
    echo
    echo "== DataLoader: local files, libdsc, rclone mount, s3fs, boto3 (bench/bench_mounts.py)"
    bench/run_mounts.sh
fi
