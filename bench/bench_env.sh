# Shared by bench/run_dataloader.sh and bench/run_mounts.sh (sourced; they
# set ROOT, PY and STATE and cd to ROOT first).

# The library and Debian's torch/numpy/boto3 are there, or a clear error.
bench_need_python_lib() {
    [ -e lib/libdsc.so.0 ] || { echo "bench: lib/libdsc.so.0 missing: run make" >&2; exit 1; }
    $PY -c 'import torch, numpy, boto3' 2>/dev/null ||
        { echo "bench: $PY cannot import torch, numpy and boto3 (scripts/setup.sh installs them)" >&2; exit 1; }
}

# Only the settings the script exports afterwards reach libdsc and the
# clients: every AWS_* and DSC_* variable (and those of the extra prefixes
# given, e.g. RCLONE) is unset. libdsc is copied into STATE/lib, so a
# rebuild of lib/ during the run does not change the library under test.
bench_isolate() {
    local prefixes="AWS|DSC" p v
    for p in "$@"; do prefixes="$prefixes|$p"; done
    for v in $(env | grep -oE "^($prefixes)_[A-Z0-9_]+"); do unset "$v"; done
    mkdir -p "$STATE/lib"
    cp -L lib/libdsc.so.0 "$STATE/lib/libdsc.so.0"
    export DSC_LIBRARY="$STATE/lib/libdsc.so.0"
}

# tests/integration/faultproxy.py in front of 127.0.0.1:UPSTREAM_PORT,
# delaying every answer by LATENCY_MS (S3's time to first byte, which
# 127.0.0.1 lacks; the delay costs no CPU, relaying does). Its PID goes to
# STATE/latproxy.pid (the caller's cleanup kills it), its port to LPORT.
bench_latency_proxy() {
    local upstream_port="$1" latency_ms="$2"
    $PY tests/integration/faultproxy.py --upstream "127.0.0.1:$upstream_port" \
        --port-file "$STATE/latproxy.port" --pid-file "$STATE/latproxy.pid" \
        --rules "[{\"fault\": \"latency\", \"latency_ms\": $latency_ms}]" \
        --exit-with-parent >"$STATE/latproxy.log" 2>&1 &
    for _ in $(seq 100); do [ -s "$STATE/latproxy.port" ] && break; sleep 0.1; done
    [ -s "$STATE/latproxy.port" ] ||
        { echo "bench: latency proxy did not start:" >&2; cat "$STATE/latproxy.log" >&2; exit 1; }
    LPORT=$(cat "$STATE/latproxy.port")
}

# FUNCTION at exit, on INT and TERM too (it then exits 130 / 143).
bench_on_exit() {
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Remove STATE, or keep it (and say where) when $1 is 1.
bench_drop_state() {
    if [ "${1:-0}" = 1 ]; then
        echo "bench: state kept in $STATE" >&2
    else
        rm -rf "$STATE"
    fi
}

# s3rver (scripts/s3rver.sh, state in STATE/s3rver) with BUCKET: sets EP and
# S3RVER_PID, exports the credentials and region, says where it runs.
bench_s3rver() {
    EP=$(scripts/s3rver.sh start "$STATE/s3rver" "$1")
    S3RVER_PID="$(cat "$STATE/s3rver/pid")"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
    echo "bench: s3rver at $EP (pid $S3RVER_PID); $(nproc) cores," \
         "$(free -g | awk '/Mem/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
}
