#!/usr/bin/env bash
# The main job, end to end, on a fresh machine with only the Rust toolchain:
# build, start the built-in sandbox target on a free loopback port, run a closed-model load
# (wrk-style), an open-model load (wrk2-style, coordinated-omission corrected) during which the
# target stalls for one second, and a multi-step user journey with thresholds; stop the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins
bin=target/release

log=$(mktemp)
"$bin/loadd" sandbox --listen 127.0.0.1:0 >"$log" 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  url=$(sed -n 's/^sandbox listening on //p' "$log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "${url:-}" ] || { echo "sandbox did not start:"; cat "$log"; exit 1; }
echo "== sandbox target at $url"

echo
echo "== closed model: 32 connections back to back for 5s"
"$bin/loadctl" run "$url/" -c 32 -d 5s

echo
echo "== open model: 2000 req/s for 6s over 20 connections; the target stalls 1s at t=3s"
( sleep 3; host=${url#http://}; exec 3<>"/dev/tcp/${host%:*}/${host##*:}" 2>/dev/null && \
  printf 'POST /control/stall?ms=1000 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' >&3 ) &
stall=$!
"$bin/loadctl" run "$url/" -c 20 -R 2000 -d 6s
# Only the stall helper: a bare `wait` would also wait for the sandbox, which never exits.
wait "$stall" || true

echo
echo "== a user journey across 10 tenants (scenarios/quiz_multitenant.toml) for 5s, with thresholds"
"$bin/loadctl" run scenarios/quiz_multitenant.toml --base-url "$url" -d 5s
