#!/usr/bin/env bash
# WebSocket scale on this box: one loadctl holding many sockets against `loadd sandbox`.
#   1. N idle-ish sockets (default 15000), each sending 1 message / 10 s to the echo endpoint:
#      loadctl's peak RSS against a 10-socket run of the same length gives user-space memory
#      per connection.
#   2. Echo throughput: 500 sockets × 100 messages/s (50,000/s asked) for 10 s.
#   3. wss:// memory: 2000 sockets to Python `websockets` with TLS (the sandbox has no TLS).
#   4. Listening journey sockets: N (default 10000) listeners of the sandbox's push stream at
#      1 push/s each (10,000 pushes/s in all), ramped in over 10 s, against a 10-socket run:
#      memory per listening socket, CPU per received push, push latency (server stamp to
#      receipt: the sandbox's send, the kernel and loadctl together).
# Usage: scripts/bench_ws.sh [connections] [listeners]     Needs /usr/bin/time (Debian `time`).
#        BENCH_WS_ONLY=listen scripts/bench_ws.sh runs part 4 only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conns="${1:-15000}"
listeners="${2:-10000}"
cargo build --release --workspace --bins -q
bin=target/release
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n "$(ulimit -Hn)"
"$bin/loadd" sandbox --listen "127.0.0.1:$port" --workers 2 >/dev/null 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; [ -n "${peer:-}" ] && kill $peer 2>/dev/null; true' EXIT
sleep 1
dir=$(mktemp -d)

scenario() { # url vus duration rate ramp [extra]
    printf '[target]\nurl = "%s"\n[load]\nvus = %s\nduration = "%s"\n[websocket]\nrate = %s\nramp = "%s"\n%s\n' "$@"
}
run() { # name file → prints peak RSS KiB and the JSON summary
    /usr/bin/time -f '%M %U %S' -o "$dir/$1.time" "$bin/loadctl" run "$2" --output json -q >"$dir/$1.json"
    python3 - "$dir/$1.json" "$dir/$1.time" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rss, user, sys_s = open(sys.argv[2]).read().split()
w = r["websocket"]
print(f'{sys.argv[3]}: peak RSS {int(rss)/1024:.1f} MiB, CPU {float(user)+float(sys_s):.1f} s; '
      f'{w["connections"]} connections ({w["connect_errors"]} failed), {w["messages_sent"]} sent '
      f'({w["messages_sent_per_s"]:.0f}/s), {w["replies"]} replies, RTT p50 {w["rtt_us"]["p50"]} µs '
      f'p99 {w["rtt_us"]["p99"]} µs, drops {w["drops"]}')
PY
}
rss() { cut -d' ' -f1 "$dir/$1.time"; }

listen_journey() { # users → a journey: connect, subscribe, listen 60 s (the run ends it)
    cat <<TOML
[target]
url = "http://127.0.0.1:$port"
[load]
model = "closed"
start_vus = 0
stages = [{ duration = "10s", target = $1 }, { duration = "20s", target = $1 }]
[[steps]]
name = "connect"
ws_connect = "/ws/push?rate=1"
[[steps]]
name = "subscribe"
ws_send = { text = "subscribe" }
[[steps]]
name = "subscribed"
ws_expect = { json = { "/type" = "subscribed" }, timeout = "10s" }
[[steps]]
name = "stream"
ws_listen = { for = "60s", latency_from = { json = "/ts_us", unit = "us" } }
TOML
}
listen_run() { # name file
    /usr/bin/time -f '%M %U %S' -o "$dir/$1.time" "$bin/loadctl" run "$2" --output json -q >"$dir/$1.json"
    python3 - "$dir/$1.json" "$dir/$1.time" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rss, user, sys_s = open(sys.argv[2]).read().split()
s = {x["name"]: x for x in r["steps"]}
st, c = s["stream"], s["connect"]
print(f'{sys.argv[3]}: peak RSS {int(rss)/1024:.1f} MiB, CPU {float(user)+float(sys_s):.1f} s; '
      f'{c["requests"]} connected ({c["errors_total"]} failed), {r["ws_messages"]["received"]} received, '
      f'push latency p50 {st["latency_us"]["p50"]} µs p99 {st["latency_us"]["p99"]} µs '
      f'max {st["latency_us"]["max"]} µs, errors {r["errors_total"]}')
PY
}
listen_part() {
    listen_journey 10 >"$dir/lbase.toml"
    listen_journey "$listeners" >"$dir/lmany.toml"
    listen_run listen_base "$dir/lbase.toml"
    listen_run listen_many "$dir/lmany.toml"
    python3 - "$dir" "$listeners" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
t = lambda f: [float(x) for x in open(f"{d}/{f}.time").read().split()]
b, m = t("listen_base"), t("listen_many")
rb = json.load(open(f"{d}/listen_base.json"))["ws_messages"]["received"]
rm = json.load(open(f"{d}/listen_many.json"))["ws_messages"]["received"]
print(f"user-space memory per listening socket: {(m[0]-b[0])*1024/(n-10):.0f} bytes ({n} sockets)")
print(f"CPU per received push: {((m[1]+m[2])-(b[1]+b[2]))*1e6/max(rm-rb,1):.1f} µs ({rm} pushes)")
PY
}
if [ "${BENCH_WS_ONLY:-}" = listen ]; then
    listen_part
    exit 0
fi

scenario "ws://127.0.0.1:$port/ws/echo" 10 40s 0.1 10s >"$dir/base.toml"
scenario "ws://127.0.0.1:$port/ws/echo" "$conns" 40s 0.1 10s >"$dir/many.toml"
run base "$dir/base.toml"
run many "$dir/many.toml"
python3 -c "print(f'user-space memory per WebSocket connection: {($(rss many)-$(rss base))*1024/($conns-10):.0f} bytes ({$conns} sockets)')"

scenario "ws://127.0.0.1:$port/ws/echo" 500 10s 100 1s >"$dir/rate.toml"
run throughput "$dir/rate.toml"

if python3 -c "import websockets" 2>/dev/null; then
    python3 - "$dir" <<'PY'
import datetime, subprocess, sys
d = sys.argv[1]
def ssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)
# A CA and a leaf signed by it (webpki refuses a self-signed CA certificate as the server's).
ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
    "-days", "1", "-subj", "/CN=bench CA")
ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/srv.csr",
    "-subj", "/CN=localhost")
open(f"{d}/ext", "w").write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
ssl("x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
    "-CAcreateserial", "-out", f"{d}/cert.pem", "-days", "1", "-extfile", f"{d}/ext")
PY
    wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 tests/support/ws_peer.py "$wport" --cert "$dir/cert.pem" --key "$dir/key.pem" >/dev/null &
    peer=$!
    sleep 2
        tls=$(printf '[tls]\nca_file = "%s"\n' "$dir/ca.pem")
    scenario "wss://127.0.0.1:$wport/echo" 10 30s 0.1 10s "$tls" >"$dir/wbase.toml"
    scenario "wss://127.0.0.1:$wport/echo" 2000 30s 0.1 10s "$tls" >"$dir/wmany.toml"
    run wss_base "$dir/wbase.toml"
    run wss_many "$dir/wmany.toml"
    python3 -c "print(f'user-space memory per wss:// connection: {($(rss wss_many)-$(rss wss_base))*1024/1990:.0f} bytes (2000 sockets)')"
fi

listen_part
