#!/usr/bin/env bash
# loadctl against its peers (wrk at full speed, h2load at a fixed rate) on one pinned nginx:
# installs the peers and nginx if missing, builds release binaries, runs benches/vs_peers.rs.
# Usage: scripts/bench.sh [--quick]   (--quick: one round of 3 s per run, to check it works)
# Full run: 3 rounds × 4 runs × 10 s, about 2.5 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
[ -x /usr/bin/time ] || missing+=(time)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench.sh: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    # policy-rc.d exit 101 keeps the package from starting nginx as a service on port 80.
    policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" </dev/null
    if [ "$added_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
fi

cargo build --release --workspace --bins
cargo bench --bench vs_peers -- "$@"
