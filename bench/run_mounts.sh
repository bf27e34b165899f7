#!/usr/bin/env bash
# The mounts benchmark (bench/bench_mounts.py, issue 17): the same PyTorch
# DataLoader over local files, libdsc (default settings), rclone mount
# (--vfs-cache-mode full), s3fs-fuse (use_cache) and boto3, all from one
# s3rver behind tests/integration/faultproxy.py adding a fixed latency to
# every answer; map-style samples and tar shards; cold and warm; samples/s,
# requests per epoch, workers' peak RSS; and the origin's ceiling (many
# parallel plain GETs through the same proxy). A FUSE row is skipped, with
# its reason, where FUSE or the tool is unavailable.
#
# Knobs (environment): BENCH_MOUNTS_SAMPLES (2000), BENCH_MOUNTS_MIN_KIB /
# BENCH_MOUNTS_MAX_KIB (100 / 200), BENCH_MOUNTS_SHARDS (8),
# BENCH_MOUNTS_ROUNDS (3 map rounds), BENCH_MOUNTS_TAR_ROUNDS (3),
# BENCH_MOUNTS_FUSE_ROUNDS (2: the FUSE sides take part in the first 2
# rounds of each workload only; their epochs take minutes),
# BENCH_MOUNTS_WARM_EPOCHS (3 warm epochs of local and libdsc a round,
# their median the round's warm figure),
# BENCH_MOUNTS_AB_EPOCHS (4 warm epochs each of libdsc with and without
# PlannedSampler, ABBA),
# BENCH_MOUNTS_SIDES ("local dsc rclone s3fs boto3"),
# BENCH_MOUNTS_LATENCY_MS (30), BENCH_MOUNTS_CEILING_THREADS (64),
# BENCH_MOUNTS_KEEP=1 (keep the state directory).
# State (data, caches, mounts, servers) lives in .run/mounts-PID; at exit,
# even on failure, mounts are unmounted (fusermount3 -u) and every server
# and mount process is stopped by its PID. libdsc is copied there first, so
# a rebuild of lib/ during the run does not change the library under test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3                 # Debian's torch and boto3 live there
BUCKET=dsc-mounts
STATE="$ROOT/.run/mounts-$$"
LAT="${BENCH_MOUNTS_LATENCY_MS:-30}"

mounts_here() { awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/mounts; }
# Mounts left by an interrupted bench_mounts.py: unmount; stop their
# processes by the PIDs it recorded (TERM, then KILL after 5 s: a FUSE
# daemon stuck on an origin that is gone ignores TERM, and readers blocked
# on its mount wait for it); then unmount what is left, lazily if busy.
stop_mounts() {
    local m f pid
    [ -d "$STATE/mounts" ] || return 0
    mounts_here | while read -r m; do fusermount3 -u "$m" 2>/dev/null || true; done
    for f in "$STATE"/mounts/*.pid; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        grep -qaE '^(rclone|s3fs)' "/proc/$pid/cmdline" 2>/dev/null || continue
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    mounts_here | while read -r m; do
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
    done
}
cleanup() {
    stop_mounts
    if [ -s "$STATE/latproxy.pid" ]; then kill "$(cat "$STATE/latproxy.pid")" 2>/dev/null || true; fi
    scripts/s3rver.sh stop "$STATE/s3rver" >/dev/null 2>&1 || true
    if [ -n "$(mounts_here)" ]; then
        echo "bench: a mount under $STATE is still there; state left in place" >&2
    else
        bench_drop_state "${BENCH_MOUNTS_KEEP:-0}"
    fi
}
. bench/bench_env.sh
bench_on_exit cleanup
bench_need_python_lib

# Only the settings below reach libdsc, boto3 and the mounts (AWS_CA_BUNDLE,
# for one, makes rclone's S3 client fail).
bench_isolate RCLONE
bench_s3rver "$BUCKET"
export DSC_LOG=error

# The data: the samples (bench_dataloader.py prepare: local copy + upload),
# then the same samples packed into tar shards (local + upload), straight
# to s3rver (not through the proxy).
DATA="$STATE/data"
$PY bench/bench_dataloader.py prepare "$EP" "$BUCKET" train/ "$DATA" \
    --count "${BENCH_MOUNTS_SAMPLES:-2000}" --min-kib "${BENCH_MOUNTS_MIN_KIB:-100}" \
    --max-kib "${BENCH_MOUNTS_MAX_KIB:-200}"
$PY bench/bench_mounts.py shards "$EP" "$BUCKET" train/ "$DATA" shards/ \
    --shards "${BENCH_MOUNTS_SHARDS:-8}"

# s3rver behind a proxy that delays every answer by LAT ms (S3's time to
# first byte, which 127.0.0.1 lacks); it also counts the requests.
bench_latency_proxy "$(cat "$STATE/s3rver/port")" "$LAT"
PROXY="http://127.0.0.1:$LPORT"
echo "bench: s3rver + ${LAT} ms per answer at $PROXY (pid $(cat "$STATE/latproxy.pid"))"

read -r -a SIDES <<<"${BENCH_MOUNTS_SIDES:-local dsc rclone s3fs boto3}"
$PY bench/bench_mounts.py run "$PROXY" "$BUCKET" train/ shards/ "$DATA" "$STATE" \
    --s3rver-pid "$S3RVER_PID" --s3rver-log "$STATE/s3rver/log" --latency-ms "$LAT" \
    --rounds "${BENCH_MOUNTS_ROUNDS:-3}" --tar-rounds "${BENCH_MOUNTS_TAR_ROUNDS:-3}" \
    --fuse-rounds "${BENCH_MOUNTS_FUSE_ROUNDS:-2}" --ab-epochs "${BENCH_MOUNTS_AB_EPOCHS:-4}" \
    --warm-epochs "${BENCH_MOUNTS_WARM_EPOCHS:-3}" --sides "${SIDES[@]}" \
    --ceiling-threads "${BENCH_MOUNTS_CEILING_THREADS:-64}"
echo "bench: done in $SECONDS s"
