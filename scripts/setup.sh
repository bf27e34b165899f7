#!/usr/bin/env bash
# Installs what libdsc's build, tests and demo need, and nothing that is
# already there. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential pkg-config libcurl4-openssl-dev libssl-dev
          liblmdb-dev lmdb-utils libxxhash-dev libexpat1-dev libcmocka-dev
          libmicrohttpd-dev python3-boto3 python3-botocore awscli
          python3-awscrt clang curl python3-numpy python3-pil python3-torch
          python3-pip python3-cryptography python3-fsspec nginx
          dnsmasq-base iproute2 prometheus)
# Node.js may come from elsewhere (it bundles npm); Debian's only when absent.
command -v npm >/dev/null 2>&1 || APT_PKGS+=(nodejs npm)
# The Kubernetes manifests' test (tests/integration/test_deploy_kubernetes.py).
APT_PKGS+=(yamllint python3-yaml)
# bench/run_mounts.sh's FUSE rows (make bench-mounts): rclone mount and
# s3fs-fuse, unmounted with fusermount3.
APT_PKGS+=(rclone s3fs fuse3)

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Refresh the package lists only when a package cannot be found.
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" >/tmp/dsc-apt.log 2>&1; then
        $SUDO apt-get update -q >/tmp/dsc-apt.log 2>&1
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" >>/tmp/dsc-apt.log 2>&1 \
            || { tail -20 /tmp/dsc-apt.log; echo "setup: apt-get failed" >&2; exit 1; }
    fi
fi

# The bench runs its own nginx (own config, 127.0.0.1 only), and the
# metrics test its own Prometheus (127.0.0.1, a free port): packaged
# services the install may have started would hold port 80, and 9090 on
# every address.
for svc in nginx prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done

# s3rver lives in a git-ignored folder of the project, pinned to 3.7.x.
S3RVER_DIR=.deps/s3rver
if [ ! -x "$S3RVER_DIR/node_modules/.bin/s3rver" ]; then
    echo "setup: installing s3rver 3.7.x into $S3RVER_DIR"
    mkdir -p "$S3RVER_DIR"
    [ -f "$S3RVER_DIR/package.json" ] || echo '{"name":"dsc-test-deps","private":true}' > "$S3RVER_DIR/package.json"
    (cd "$S3RVER_DIR" && npm install --no-audit --no-fund --loglevel=error s3rver@~3.7.1 >/tmp/dsc-npm.log 2>&1) \
        || { tail -20 /tmp/dsc-npm.log; echo "setup: npm install s3rver failed" >&2; exit 1; }
fi
