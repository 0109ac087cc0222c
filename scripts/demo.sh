#!/usr/bin/env bash
# The main job, end to end, on a fresh machine with only the Rust toolchain:
# build, start the built-in sandbox target on a free loopback port, run a closed-model load
# (wrk-style), an open-model load (wrk2-style, coordinated-omission corrected) during which the
# target stalls for one second, and a multi-step user journey with thresholds; stop the sandbox.
#
# For tests (tests/demo.rs), three variables narrow it down:
#   LOADD_DEMO_BIN=DIR    use the loadctl and loadd in DIR and build nothing
#   LOADD_DEMO_URL=URL    use this running sandbox instead of starting one
#   LOADD_DEMO_ONLY=stall run only the open-model stall, and end with one line of figures:
#                         `figures corrected_p99_us=N corrected_max_us=N uncorrected_p99_us=N uncorrected_max_us=N`
set -euo pipefail
cd "$(dirname "$0")/.."

only=${LOADD_DEMO_ONLY:-}
case "$only" in "" | stall) ;; *) echo "demo: LOADD_DEMO_ONLY is \`stall\` or unset" >&2; exit 2 ;; esac
bin=${LOADD_DEMO_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --workspace --bins
  bin=target/release
fi

tmp=$(mktemp -d)
sandbox=
trap '[ -z "$sandbox" ] || kill "$sandbox" 2>/dev/null || true; rm -rf "$tmp"' EXIT
url=${LOADD_DEMO_URL:-}
if [ -z "$url" ]; then
  "$bin/loadd" sandbox --listen 127.0.0.1:0 >"$tmp/sandbox.log" 2>&1 &
  sandbox=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^sandbox listening on //p' "$tmp/sandbox.log")
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "sandbox did not start:"; cat "$tmp/sandbox.log"; exit 1; }
fi
echo "== sandbox target at $url"

# POST /control/stall?ms=$2 after $1 seconds. The answer is read before the socket closes: a
# client that closes at once lets the sandbox drop the request before it acts on it.
stall_after() {
  sleep "$1"
  local host=${url#http://} status=
  exec 3<>"/dev/tcp/${host%:*}/${host##*:}"
  printf 'POST /control/stall?ms=%s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
    "$2" "$host" >&3
  IFS= read -r -t 5 status <&3 || true
  exec 3<&-
  case "$status" in
    "HTTP/1.1 2"*) ;;
    *) echo "demo: the stall request got ${status:-no answer}" >&2; return 1 ;;
  esac
}

# Figure $2 of summary $1 (`latency_us`, `service_time_us`) in the result file $3. The first
# match is the run's own: per-step summaries come later in the file.
figure() {
  local json
  json=$(<"$3")
  json=${json//[[:space:]]/}
  json=${json#*\"$1\":\{}
  json=${json%%\}*}
  json=${json#*\"$2\":}
  echo "${json%%,*}"
}

if [ -z "$only" ]; then
  echo
  echo "== closed model: 32 connections back to back for 5s"
  "$bin/loadctl" run "$url/" -c 32 -d 5s
fi

echo
echo "== open model: 2000 req/s for 6s over 20 connections; the target stalls 1s at t=3s"
echo "   (the stall holds every connection, so sends fall behind the schedule: expect the late-send warning)"
stall_after 3 1000 &
stall=$!
"$bin/loadctl" run "$url/" -c 20 -R 2000 -d 6s --report "$tmp/open.json"
# Only the stall helper: a bare `wait` would also wait for the sandbox, which never exits.
wait "$stall"
c99=$(figure latency_us p99 "$tmp/open.json")
cmax=$(figure latency_us max "$tmp/open.json")
u99=$(figure service_time_us p99 "$tmp/open.json")
umax=$(figure service_time_us max "$tmp/open.json")
ms() { awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }'; }
echo
echo "Corrected p99 $(ms "$c99") (max $(ms "$cmax")) against uncorrected p99 $(ms "$u99"):" \
  "the requests due during the 1 s stall waited for it, and only the corrected latency, counted" \
  "from each request's intended start, shows that wait; timed from the actual send, as a" \
  "generator that stops sending while the target stalls would time it, the stall all but" \
  "vanishes from the tail."
if [ -n "$only" ]; then
  echo "figures corrected_p99_us=$c99 corrected_max_us=$cmax uncorrected_p99_us=$u99 uncorrected_max_us=$umax"
  exit 0
fi

echo
echo "== a user journey across 10 tenants (scenarios/quiz_multitenant.toml) for 5s, with thresholds"
"$bin/loadctl" run scenarios/quiz_multitenant.toml --base-url "$url" -d 5s
