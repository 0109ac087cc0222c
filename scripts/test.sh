#!/usr/bin/env bash
# Installs what the integration tests need (nginx, chromium), builds the binaries the tests drive
# (loadctl, loadd), then runs the whole workspace's tests. Extra arguments go to `cargo test`.
# Works as root in CI (CI=true, no stdin) and locally (uses sudo when not root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${LOADD_SKIP_INSTALL:-0}" != 1 ]; then
    missing=()
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then missing+=(nginx); fi
    # tests/suite/reports.rs renders the HTML report in headless Chromium.
    if [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
    # shellcheck source=scripts/apt.sh
    source scripts/apt.sh
    # The tests spawn their own nginx on free loopback ports: apt.sh keeps the package's from starting.
    apt_install_missing test.sh "${missing[@]}"
    # tests/suite/websocket.rs uses Python `websockets` as an independent WebSocket peer.
    if ! python3 -c "import websockets" >/dev/null 2>&1; then
        echo "test.sh: installing the websockets Python package" >&2
        python3 -m pip install --quiet --disable-pip-version-check "websockets>=13"
    fi
    # tests/suite/h2_codec.rs uses Python `h2` as an independent HTTP/2 server.
    if ! python3 -c "import h2" >/dev/null 2>&1; then
        echo "test.sh: installing the h2 Python package" >&2
        python3 -m pip install --quiet --disable-pip-version-check "h2>=4"
    fi
fi

# The tests drive the binaries of their own profile (target/<profile>/loadctl): build the same one.
build_args=()
for arg in "$@"; do
    if [ "$arg" = "--release" ]; then build_args+=(--release); fi
done
cargo build --workspace --bins "${build_args[@]}"
cargo test --workspace "$@"
