#!/usr/bin/env bash
# Daemon soak: N submissions back to back to one `loadd serve` (default 100), each a short run
# against `loadd sandbox` that `loadctl submit` follows to its result, with loadd's RSS and open file descriptors read before the first, at the middle and after the
# last. A daemon that leaks per run (a run's threads, sockets, buffers or stored copies) grows
# here; a healthy one stays flat once warm (a stored run's small summary is all it keeps).
# Usage: scripts/soak_daemon.sh [submissions, default 100]; SOAK_PROFILE=debug uses debug builds;
# SOAK_KEEP_RUNS=N passes --keep-runs N (older runs deleted, so what loadd holds stays bounded).
# Exit: 0 when every run finished, 1 otherwise (the growth figures are printed, not judged).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n=${1:-100}
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "soak_daemon.sh: submissions must be a whole number of at least 1, got '$n'" >&2
    exit 2
fi
profile=${SOAK_PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release --workspace --bins -q
else
    cargo build --workspace --bins -q
fi
bin="${CARGO_TARGET_DIR:-target}/$profile"

tmp=$(mktemp -d)
loadd_pid="" sandbox_pid=""
cleanup() {
    for pid in "$loadd_pid" "$sandbox_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sandbox_port=$(free_port)
api_port=$(free_port)
"$bin/loadd" sandbox --listen "127.0.0.1:$sandbox_port" 2>"$tmp/sandbox.log" &
sandbox_pid=$!
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
chmod 600 "$tmp/token"
"$bin/loadd" serve --listen "127.0.0.1:$api_port" --state-dir "$tmp/state" \
    --token-file "$tmp/token" ${SOAK_KEEP_RUNS:+--keep-runs "$SOAK_KEEP_RUNS"} 2>"$tmp/loadd.log" &
loadd_pid=$!
export LOADD_URL="http://127.0.0.1:$api_port" LOADD_TOKEN
LOADD_TOKEN=$(cat "$tmp/token")
for _ in $(seq 100); do
    if curl -fs "$LOADD_URL/v1/health" >/dev/null 2>&1; then break; fi
    sleep 0.05
done

cat >"$tmp/run.toml" <<EOF2
[target]
url = "http://127.0.0.1:$sandbox_port/"

[load]
model = "open"
rate = 500
duration = "1s"
connections = 8

[[steps]]
name = "get"
path = "/"
EOF2

sample() {
    local rss fds
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$loadd_pid/status")
    fds=$(find "/proc/$loadd_pid/fd" -mindepth 1 | wc -l)
    printf '%s\t%s\t%s\n' "$1" "$rss" "$fds"
}

printf 'after\trss_kib\tfds\n'
sample 0
failed=0
for i in $(seq "$n"); do
    if ! "$bin/loadctl" submit "$tmp/run.toml" >"$tmp/last.out" 2>"$tmp/last.err"; then
        failed=$((failed + 1))
        echo "soak_daemon.sh: submission $i: $(tail -1 "$tmp/last.err")" >&2
    fi
    if [ "$i" -eq $((n / 2)) ] || [ "$i" -eq "$n" ]; then
        sample "$i"
    fi
done
listed=$("$bin/loadctl" list | tail -n +2 | wc -l)
echo "soak_daemon.sh: $n submissions, $failed failed, $listed runs listed" >&2
[ "$failed" -eq 0 ]
