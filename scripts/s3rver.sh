#!/usr/bin/env bash
# Start or stop a local s3rver on 127.0.0.1 for tests and the demo.
#   scripts/s3rver.sh start STATE_DIR BUCKET [BUCKET...]
#       prints the endpoint URL; STATE_DIR holds data, pid, port and log
#   scripts/s3rver.sh stop STATE_DIR
# The server is stopped by the PID it was started with, never by name.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
S3RVER="$ROOT/.deps/s3rver/node_modules/.bin/s3rver"

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [BUCKET...]" >&2; exit 2; }

case "$cmd" in
start)
    shift 2
    [ -x "$S3RVER" ] || { echo "s3rver missing: run scripts/setup.sh" >&2; exit 1; }
    mkdir -p "$dir/data"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "http://127.0.0.1:$(cat "$dir/port")"
        exit 0
    fi
    buckets=()
    for b in "$@"; do buckets+=(--configure-bucket "$b"); done
    for attempt in 1 2 3; do
        port=$(free_port)
        # s3rver's continuation tokens use DES, which OpenSSL 3 keeps in
        # its legacy provider: without it every paginated listing fails.
        NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$dir/data" -a 127.0.0.1 -p "$port" \
            --service-endpoint localhost "${buckets[@]}" >"$dir/log" 2>&1 &
        echo $! >"$dir/pid"
        echo "$port" >"$dir/port"
        for _ in $(seq 1 100); do
            if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
                echo "http://127.0.0.1:$port"
                exit 0
            fi
            kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
            sleep 0.1
        done
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        rm -f "$dir/pid"
    done
    echo "s3rver did not start; log:" >&2; cat "$dir/log" >&2; exit 1
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/pid"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR [BUCKET...]" >&2; exit 2 ;;
esac
