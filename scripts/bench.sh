#!/usr/bin/env bash
# loadctl against its peers on one pinned nginx: wrk and oha at full speed (64 connections), h2load
# and oha at a fixed 10k/s, wrk over 10,000 connections, h2load over h2c (4 connections × 16
# streams, full speed and 10k/s), and loadctl's 1- vs 2-shard scaling.
# Installs the peers and nginx if missing (oha with `cargo install`, once: it is not in Debian),
# builds release binaries, runs benches/vs_peers.rs.
# Usage: scripts/bench.sh [--quick]   (--quick: one round of 3 s per run, to check it works)
# Full run: 3 rounds × 14 runs × 10 s, about 8 minutes (plus oha's first build, ~10 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/apt.sh
source scripts/apt.sh

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
[ -x /usr/bin/time ] || missing+=(time)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
apt_install_missing bench.sh "${missing[@]}"

# oha 1.16.0 needs rustc ≥ 1.88. If it cannot be built, vs_peers runs without it and says so.
OHA_VERSION=1.16.0
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$PATH:$cargo_bin"
if ! command -v oha >/dev/null 2>&1; then
    echo "bench.sh: installing oha $OHA_VERSION into $cargo_bin (cargo install, once)" >&2
    if ! cargo install oha --version "$OHA_VERSION" --locked; then
        echo "bench.sh: oha $OHA_VERSION did not build (see above): the bench skips oha" >&2
    fi
fi

cargo build --release --workspace --bins
cargo bench --bench vs_peers -- "$@"
