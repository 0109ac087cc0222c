#!/usr/bin/env bash
# Installs what the integration tests need (nginx, chromium), builds the binaries the tests drive
# (loadctl, loadd), then runs the whole workspace's tests. Extra arguments go to `cargo test`.
# Works as root in CI (CI=true, no stdin) and locally (uses sudo when not root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    # policy-rc.d exit 101 keeps the package from starting nginx as a service on port 80:
    # the tests spawn their own nginx on free loopback ports.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null
    if [ "$added_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
}

if [ "${LOADD_SKIP_INSTALL:-0}" != 1 ]; then
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        echo "test.sh: installing nginx" >&2
        apt_install nginx
    fi
    # tests/suite/reports.rs renders the HTML report in headless Chromium.
    if [ ! -x /usr/bin/chromium ]; then
        echo "test.sh: installing chromium" >&2
        apt_install chromium
    fi
    # tests/suite/websocket.rs uses Python `websockets` as an independent WebSocket peer.
    if ! python3 -c "import websockets" >/dev/null 2>&1; then
        echo "test.sh: installing the websockets Python package" >&2
        python3 -m pip install --quiet --disable-pip-version-check "websockets>=13"
    fi
fi

# The tests drive the binaries of their own profile (target/<profile>/loadctl): build the same one.
build_args=()
for arg in "$@"; do
    if [ "$arg" = "--release" ]; then build_args+=(--release); fi
done
cargo build --workspace --bins "${build_args[@]}"
cargo test --workspace "$@"
