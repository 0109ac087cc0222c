#!/usr/bin/env bash
# HTTP connection scale on this box: one loadctl holding many idle keep-alive connections to nginx.
#   N connections (default 19000; this box's open-file hard limit is 20000) opened up front, a
#   trickle of 200 requests/s spread over them for 30 s, so almost every connection is idle at any
#   moment. loadctl's peak RSS against a 100-connection run of the same load gives user-space
#   memory per idle keep-alive connection.
# Usage: scripts/bench_conns.sh [connections] [shards]   Needs nginx and /usr/bin/time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conns="${1:-19000}"
shards="${2:-1}"
base=100
cargo build --release --workspace --bins -q
bin=$PWD/target/release
nginx=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/www" "$dir/logs"
printf 'hello from nginx\n' >"$dir/www/index.html"
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    client_body_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$port backlog=20000;
        root $dir/www;
        location = /nginx_status { stub_status; }
    }
}
CONF
"$nginx" -p "$dir" -c "$dir/nginx.conf" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.1
done

run() { # name connections → peak RSS KiB in $dir/name.time, summary on stdout
    /usr/bin/time -f '%M %U %S' -o "$dir/$1.time" \
        "$bin/loadctl" run "http://127.0.0.1:$port/" -c "$2" -t "$shards" -R 200 -d 30s \
        --connect-timeout 20s --output json -q >"$dir/$1.json"
    python3 - "$dir/$1.json" "$dir/$1.time" "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rss, user, sys_s = open(sys.argv[2]).read().split()
errors = sum(r.get("errors", {}).values())
print(f'{sys.argv[3]}: {sys.argv[4]} connections, peak RSS {int(rss)/1024:.1f} MiB, '
      f'CPU {float(user)+float(sys_s):.1f} s, {r["requests"]} requests, '
      f'errors {errors}, p50 {r["latency_us"]["p50"]} µs')
PY
}
rss() { cut -d' ' -f1 "$dir/$1.time"; }

run base "$base"
run many "$conns"
active=$(curl -s "http://127.0.0.1:$port/nginx_status" | head -1)
python3 -c "print(f'user-space memory per idle HTTP keep-alive connection: {($(rss many)-$(rss base))*1024/($conns-$base):.0f} bytes ($conns connections, $shards shard(s))')"
echo "nginx after the runs: $active"
