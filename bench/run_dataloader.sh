#!/usr/bin/env bash
# The PyTorch DataLoader benchmark (bench/bench_dataloader.py): lay out the
# dataset once on disk, serve it from two origins on 127.0.0.1 -- s3rver
# (the same bytes uploaded with boto3) and nginx serving the files
# themselves as static files (ETag, ranges, sendfile; bench/run.sh's fast
# origin) -- run the figures, print the summary, stop both servers by PID.
#
#   1. warm epoch (2+): DataLoader over dsc.MapDataset vs local files (>= 0.9x)
#   2. cold epoch 1:    DataLoader over dsc.MapDataset + dsc.PlannedSampler
#                       vs a boto3 Dataset (>= 5x), from each origin
#
# Knobs (environment): BUILD (build; its bin/dsc-stat reports node cache
# counters), BENCH_DL_SAMPLES (2000), BENCH_DL_MIN_KIB / BENCH_DL_MAX_KIB
# (100 / 200), BENCH_DL_RUNS (5 cold rounds per origin),
# BENCH_DL_WARM_RUNS (7 warm rounds; 0 skips figure 1), BENCH_DL_ORIGINS
# ("s3rver nginx nginx-lat"; nginx-lat is nginx behind a proxy adding
# BENCH_DL_LATENCY_MS, default 30, to each answer, as S3's first byte
# takes; BENCH_DL_THREADS_LAT fetchers, default 64), BENCH_DL_COLD (the
# cold sides: the baseline and libdsc
# of the goal, run every round, then sides run once per origin; default
# "boto3 dsc dsc-disk dsc-index dsc-plan dsc-plan-wide dsc-noprefetch
# dsc-t64", all described in bench_dataloader.py), BENCH_DL_THREADS_S3RVER,
# BENCH_DL_THREADS_NGINX (libdsc's prefetch_threads from that origin;
# default 8), BENCH_DL_EXTRA=0 (the 1b row off, and every cold side in
# every round), BENCH_DL_CACHE=disk
# (libdsc's cold caches in the state directory, on disk, instead of
# /dev/shm; the dsc-disk side does that for one side),
# BENCH_DL_TUNED_MALLOC=1 (fixed malloc thresholds in the DataLoader
# workers; default: glibc's, as users run), BENCH_DL_KEEP=1 (keep the
# state directory).
# State (data, caches, servers) lives in .run/dataloader-PID, removed at
# exit. libdsc is copied there first, so a rebuild of lib/ during the run
# does not change the library under test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
PY=/usr/bin/python3                 # Debian's torch and boto3 live there
BUCKET=dsc-dataloader
STATE="$ROOT/.run/dataloader-$$"
ORIGINS="${BENCH_DL_ORIGINS:-s3rver nginx nginx-lat}"
NGINX_PID=""

stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill "$NGINX_PID" 2>/dev/null || true   # TERM: fast shutdown
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
    fi
}
cleanup() {
    if [ -s "$STATE/latproxy.pid" ]; then kill "$(cat "$STATE/latproxy.pid")" 2>/dev/null || true; fi
    stop_nginx
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    rm -rf "/dev/shm/dsc-dataloader-$$"
    bench_drop_state "${BENCH_DL_KEEP:-0}"
}
. bench/bench_env.sh
bench_on_exit cleanup
bench_need_python_lib
case " $ORIGINS " in *" nginx "*)
    command -v nginx >/dev/null || { echo "bench: nginx missing (apt-get install nginx)" >&2; exit 1; } ;;
esac

# Only the settings below reach libdsc and boto3.
bench_isolate
bench_s3rver "$BUCKET"
export AWS_ENDPOINT_URL="$EP" DSC_LOG=error

# The local copy is also what nginx serves: WWW/BUCKET/KEY.
WWW="$STATE/www"
$PY bench/bench_dataloader.py prepare "$EP" "$BUCKET" train/ "$WWW/$BUCKET" \
    --count "${BENCH_DL_SAMPLES:-2000}" --min-kib "${BENCH_DL_MIN_KIB:-100}" \
    --max-kib "${BENCH_DL_MAX_KIB:-200}"

ARGS=()
case " $ORIGINS " in *" s3rver "*)
    ARGS+=(--origin "s3rver,$EP,$S3RVER_PID,$STATE/s3rver/log${BENCH_DL_THREADS_S3RVER:+,threads=$BENCH_DL_THREADS_S3RVER}") ;;
esac
case " $ORIGINS " in *" nginx "*|*" nginx-lat "*)
    # Static files with ETag and ranges, as bench/run.sh's "nginx" origin,
    # on a free port. The access log (method and status of each request)
    # is how its requests are counted.
    chmod -R a+rX "$WWW"; chmod a+x "$ROOT/.run" "$STATE"  # workers run as nobody
    . bench/nginx_user.sh
    NGINX_USER=$(nginx_user "$WWW")
    NPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    N="$STATE/nginx"
    mkdir -p "$N"
    cat >"$N/nginx.conf" <<NGINX
worker_processes 2;
pid $N/nginx.pid;
error_log $N/error.log warn;
$NGINX_USER
events { worker_connections 1024; }
http {
    log_format reqs '\$request_method \$status';
    access_log $N/access.log reqs buffer=64k flush=1s;
    client_body_temp_path $N/tmp-body;
    proxy_temp_path $N/tmp-proxy;
    fastcgi_temp_path $N/tmp-fastcgi;
    uwsgi_temp_path $N/tmp-uwsgi;
    scgi_temp_path $N/tmp-scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    tcp_nodelay on;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$NPORT;
        root $WWW;
        location / { }
    }
}
NGINX
    nginx -q -t -c "$N/nginx.conf" -p "$N" -e "$N/error.log"
    nginx -c "$N/nginx.conf" -p "$N" -e "$N/error.log" -g 'daemon off;' </dev/null >/dev/null 2>&1 &
    NGINX_PID=$!
    ok=0
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$NPORT/$BUCKET/train/sample-00000.bin"; then
            ok=1
            break
        fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "bench: nginx did not start:" >&2; cat "$N/error.log" >&2; exit 1; }
    echo "bench: nginx at http://127.0.0.1:$NPORT (pid $NGINX_PID), serving $WWW"
    case " $ORIGINS " in *" nginx "*)
        ARGS+=(--origin "nginx,http://127.0.0.1:$NPORT,$NGINX_PID,$N/access.log,nolist${BENCH_DL_THREADS_NGINX:+,threads=$BENCH_DL_THREADS_NGINX}") ;;
    esac
    ;;
esac
case " $ORIGINS " in *" nginx-lat "*)
    # nginx behind the latency proxy (bench/bench_env.sh); relaying costs
    # CPU, which counts against both sides alike.
    LAT="${BENCH_DL_LATENCY_MS:-30}"
    bench_latency_proxy "$NPORT" "$LAT"
    echo "bench: nginx + ${LAT} ms per answer at http://127.0.0.1:$LPORT"
    ARGS+=(--origin "nginx-lat$LAT,http://127.0.0.1:$LPORT,$NGINX_PID,$N/access.log,nolist,threads=${BENCH_DL_THREADS_LAT:-64}")
    ;;
esac

# libdsc's cold caches live on tmpfs, as in bench/run.sh: on this VM's
# journal-less ext4, creating files soon after many were deleted costs
# ~1 ms of CPU each (see dsc-disk in bench_dataloader.py).
CACHES="$STATE"
if [ "${BENCH_DL_CACHE:-tmpfs}" = tmpfs ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    CACHES="/dev/shm/dsc-dataloader-$$"
    mkdir -p "$CACHES"
fi
echo "bench: libdsc's cold caches in $CACHES"
MALLOC=()
if [ "${BENCH_DL_TUNED_MALLOC:-0}" = 1 ]; then MALLOC=(--tuned-malloc); fi
read -r -a COLD <<<"${BENCH_DL_COLD:-boto3 dsc dsc-disk dsc-index dsc-plan dsc-plan-wide dsc-noprefetch dsc-t64}"
$PY bench/bench_dataloader.py run "$EP" "$BUCKET" train/ "$WWW/$BUCKET" "$STATE" \
    --cold-caches "$CACHES" "${ARGS[@]}" --cold "${COLD[@]}" \
    --runs "${BENCH_DL_RUNS:-5}" --warm-runs "${BENCH_DL_WARM_RUNS:-7}" \
    --extra "${BENCH_DL_EXTRA:-1}" --dsc-stat "$BUILD/bin/dsc-stat" "${MALLOC[@]}"
echo "bench: done in $SECONDS s"
