#!/usr/bin/env bash
# Soak: one bounded endurance run of loadctl at a steady rate against a private nginx, watching
# the generator itself: its RSS (no growth after warm-up), its one-second intervals (all of them,
# on time) and its own loop latency (schedule lag: intended vs actual send time) minute by minute.
# Usage: scripts/soak.sh [minutes, default 10] [rate per second, default 5000]
# Exit: loadctl's exit code when it failed (the verdicts are informational), else 0.
# SOAK_KEEP=1 keeps the temporary directory (result JSON, interval log, RSS/arrival/stall CSVs).
# See docs/soak.md for how to read the report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

minutes=${1:-10}
rate=${2:-5000}
connections=50
if ! [[ "$minutes" =~ ^[1-9][0-9]*$ ]]; then
    echo "soak.sh: minutes must be a whole number of at least 1, got '$minutes'" >&2
    exit 2
fi

# shellcheck source=scripts/apt.sh
source scripts/apt.sh

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
apt_install_missing soak.sh "${missing[@]}"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --workspace --bins -q
loadctl="${CARGO_TARGET_DIR:-target}/release/loadctl"

# On tmpfs when there is one: the interval log is written on loadctl's main thread, and a disk
# busy with someone else's build would otherwise show up as late intervals.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmp=$(mktemp -d -p /dev/shm); else tmp=$(mktemp -d); fi
# nginx's workers run as nobody when started by root: they must reach the files.
chmod 755 "$tmp"
nginx_pid="" loadctl_pid="" watch_pid=""
cleanup() {
    for pid in "$watch_pid" "$loadctl_pid" "$nginx_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "${SOAK_KEEP:-0}" = 1 ]; then
        echo "soak.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/html" "$tmp/tmp"
printf 'soak target: a small static file\n' >"$tmp/html/index.html"
# keepalive_requests stays at nginx's default (1000): connections are closed and reopened
# throughout the soak, so reconnects are soaked too.
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
worker_rlimit_nofile 4096;
events { worker_connections 2048; }
http {
    default_type text/html;
    access_log off;
    sendfile on;
    keepalive_requests 1000;
    keepalive_timeout 65s;
    client_body_temp_path $tmp/tmp/client_body;
    proxy_temp_path $tmp/tmp/proxy;
    fastcgi_temp_path $tmp/tmp/fastcgi;
    uwsgi_temp_path $tmp/tmp/uwsgi;
    scgi_temp_path $tmp/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $tmp/html;
    }
}
EOF
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" &
nginx_pid=$!
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$nginx_pid" 2>/dev/null; then
        echo "soak.sh: nginx did not start:" >&2
        cat "$tmp/error.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done

# The watcher samples loadctl's RSS (and its major page faults so far, which tell a stall spent
# waiting on the disk from one spent computing) every 5 s and notes when each one-second interval reaches
# the interval log (written unbuffered, line by line, as the run goes). While an interval is
# overdue (> 1.5 s since the last), it snapshots every loadctl thread and nginx worker twice a
# second (state, syscall, CPU ticks), to tell a thread stuck in the kernel from one spinning or
# merely idle. It also bounds the run: SIGINT (graceful stop) two minutes past the planned end,
# SIGKILL a minute later.
cat >"$tmp/watch.py" <<'EOF'
import os, signal, sys, time

pid, nginx_pid, hlog, rss_csv, arrivals_csv, stalls_csv, duration_s = sys.argv[1:8]
pid, nginx_pid, duration_s = int(pid), int(nginx_pid), float(duration_s)
origin = time.monotonic()
next_rss = 0.0
pending = b""
offset = 0
rss_out = open(rss_csv, "w")
rss_out.write("elapsed_s,rss_kib,majflt\n")
arr_out = open(arrivals_csv, "w")
arr_out.write("elapsed_s,start_s,length_s\n")
stall_out = open(stalls_csv, "w")
stall_out.write("elapsed_s,overdue_s,pid,tid,comm,state,syscall,cpu_ticks,last_cpu,steal_ticks\n")
last_arrival = None
next_snapshot = 0.0
snapshots = 0


def status():
    """VmRSS in KiB, or None once loadctl is gone (or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(l.split(":", 1) for l in f if ":" in l)
    except OSError:
        return None
    if fields.get("State", "").strip().startswith("Z") or "VmRSS" not in fields:
        return None
    return int(fields["VmRSS"].split()[0])


def major_faults():
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Fields after the command's closing parenthesis start at field 3; majflt is field 12.
            return int(f.read().rsplit(")", 1)[1].split()[9])
    except (OSError, IndexError, ValueError):
        return -1


def snapshot(now, overdue):
    """One line per thread of loadctl and of nginx's workers, with the machine's steal time."""
    try:
        with open("/proc/stat") as f:
            steal = int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        steal = -1
    try:
        with open(f"/proc/{nginx_pid}/task/{nginx_pid}/children") as f:
            workers = [int(w) for w in f.read().split()]
    except OSError:
        workers = []
    for p in [pid] + workers:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
                with open(f"/proc/{p}/task/{tid}/syscall") as f:
                    call = f.read().split()[0]
            except (OSError, IndexError):
                continue
            comm, fields = head.split("(", 1)[1], rest.split()
            # state is field 3, utime and stime fields 14 and 15, the CPU it last ran on 39.
            ticks = int(fields[11]) + int(fields[12])
            stall_out.write(f"{now:.2f},{overdue:.2f},{p},{tid},{comm},{fields[0]},{call},{ticks},"
                            f"{fields[36]},{steal}\n")
    stall_out.flush()


def read_log(now):
    global pending, offset, last_arrival
    try:
        with open(hlog, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return
    offset += len(chunk)
    pending += chunk
    *lines, pending = pending.split(b"\n")
    for line in lines:
        text = line.decode("ascii", "replace").strip()
        if text.startswith("Tag="):
            text = text.split(",", 1)[1]
        parts = text.split(",")
        # Histogram lines: start,length,max,base64; headers and comments are skipped.
        try:
            start, length = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            continue
        arr_out.write(f"{now:.3f},{start:.3f},{length:.3f}\n")
        last_arrival = now
    arr_out.flush()


signalled = None
while True:
    now = time.monotonic() - origin
    rss = status()
    read_log(now)
    if rss is None:
        break
    overdue = now - last_arrival if last_arrival is not None else 0.0
    if overdue > 1.5 and now >= next_snapshot and snapshots < 400:
        snapshot(now, overdue)
        snapshots += 1
        next_snapshot = now + 0.5
    if now >= next_rss:
        rss_out.write(f"{now:.1f},{rss},{major_faults()}\n")
        rss_out.flush()
        next_rss += 5.0
    if now > duration_s + 120 and signalled is None:
        print("soak.sh: loadctl overran its duration by 2 minutes: stopping it", file=sys.stderr)
        os.kill(pid, signal.SIGINT)
        signalled = now
    elif signalled is not None and now > signalled + 60:
        os.kill(pid, signal.SIGKILL)
        break
    time.sleep(0.02)
EOF

url="http://127.0.0.1:$port/index.html"
echo "soak.sh: ${minutes} min at ${rate} req/s, ${connections} connections, against nginx at $url" >&2
"$loadctl" run "$url" -c "$connections" -R "$rate" -d "${minutes}m" \
    --output json --hlog "$tmp/intervals.hlog" --quiet \
    >"$tmp/result.json" 2>"$tmp/loadctl.stderr" &
loadctl_pid=$!
python3 "$tmp/watch.py" "$loadctl_pid" "$nginx_pid" "$tmp/intervals.hlog" "$tmp/rss.csv" \
    "$tmp/arrivals.csv" "$tmp/stalls.csv" "$((minutes * 60))" &
watch_pid=$!
rc=0
wait "$loadctl_pid" || rc=$?
loadctl_pid=""
wait "$watch_pid" || true
watch_pid=""

if [ -s "$tmp/loadctl.stderr" ]; then
    echo "--- loadctl stderr ---" >&2
    cat "$tmp/loadctl.stderr" >&2
fi
if [ ! -s "$tmp/result.json" ]; then
    echo "soak.sh: loadctl exited with $rc and wrote no result" >&2
    exit $((rc == 0 ? 1 : rc))
fi

python3 - "$tmp/result.json" "$tmp/rss.csv" "$tmp/arrivals.csv" "$tmp/stalls.csv" "$minutes" "$rate" <<'EOF'
import csv, json, statistics, sys

result_path, rss_path, arrivals_path, stalls_path, minutes, rate = sys.argv[1:7]
minutes, rate = int(minutes), float(rate)
r = json.load(open(result_path))
rss_rows = list(csv.DictReader(open(rss_path)))
rss = [(float(row["elapsed_s"]), int(row["rss_kib"])) for row in rss_rows]
arrivals = [(float(row["elapsed_s"]), float(row["length_s"])) for row in csv.DictReader(open(arrivals_path))]
intervals = r["intervals"]
verdicts = []


def ms(us):
    return f"{us / 1000:.2f} ms"


print(f"\n== soak: {minutes} min at {rate:.0f} req/s against {r['target']} "
      f"({r['shards']} shards, driver {r['driver']}) ==")
print(f"requests {r['requests']}  achieved {r['rate_per_s']:.1f} req/s  "
      f"connects {r['connects']}  late {r['late']}  dropped {r['dropped']}  "
      f"trustworthy {r['trustworthy']}")
for w in r["warnings"]:
    print(f"warning: {w}")

# RSS: warm-up is the first minute (half the run when it is shorter than two minutes). Growth
# compares medians of a window right after warm-up and of the last window, so that a transient
# peak (a stall's backlog) is shown but does not pass for a leak.
warmup_s = 60.0 if minutes >= 2 else 30.0 * minutes
window_s = 60.0 if minutes >= 2 else 15.0
print(f"\n-- RSS of loadctl ({len(rss)} samples every 5 s) --")
if not rss:
    print("no RSS sample")
    verdicts.append(("RSS growth after warm-up < 5%", None, "no samples"))
else:
    after = [s for s in rss if s[0] >= warmup_s] or rss[-1:]
    base = statistics.median(k for t, k in after if t < warmup_s + window_s)
    final = statistics.median(k for t, k in rss if t >= rss[-1][0] - window_s + 1)
    peak = max(after, key=lambda s: s[1])
    growth_pct = 100.0 * (final - base) / base
    print(f"first sample {rss[0][1]} KiB at {rss[0][0]:.0f} s;  last {rss[-1][1]} KiB at {rss[-1][0]:.0f} s")
    print(f"median of {warmup_s:.0f}-{warmup_s + window_s:.0f} s: {base:.0f} KiB;  median of the last "
          f"{window_s:.0f} s: {final:.0f} KiB;  growth {final - base:+.0f} KiB ({growth_pct:+.2f}%)")
    print(f"max after warm-up: {peak[1]} KiB at {peak[0]:.0f} s ({100.0 * (peak[1] - base) / base:+.2f}%)")
    faults = [int(row["majflt"]) for row in rss_rows]
    print(f"major page faults: {faults[-1]} by the last sample ({faults[-1] - faults[0]} during the run)")
    verdicts.append(("RSS growth after warm-up < 5%", growth_pct < 5.0, f"{growth_pct:+.2f}%"))

# Intervals: every second present in the result, and each one arrived on time while running.
expected = minutes * 60
seconds = [int(round(iv["t_s"])) for iv in intervals]
missing = sorted(set(range(1, expected + 1)) - set(seconds))
live = [a for a in arrivals if a[1] >= 0.999]
# Intervals tick every second: an arrival more than half a tick late (spacing > 1.5 s) is a gap.
gaps = [(b[0] - a[0], b[0]) for a, b in zip(live, live[1:])]
late_gaps = [g for g in gaps if g[0] > 1.5]
print(f"\n-- intervals --")
print(f"in the result: {len(intervals)} (expected {expected}); missing seconds: "
      f"{missing[:10] if missing else 'none'}{' ...' if len(missing) > 10 else ''}")
if gaps:
    ordered = sorted(g for g, _ in gaps)
    print(f"received live: {len(live)};  time between arrivals: median {statistics.median(ordered):.3f} s, "
          f"max {ordered[-1]:.3f} s;  gaps > 1.5 s: {len(late_gaps)}"
          + (f" ({', '.join(f'{t - g:.1f}-{t:.1f} s' for g, t in late_gaps[:5])})" if late_gaps else ""))
else:
    print(f"received live: {len(live)}")
complete = not missing and len(live) >= expected and not late_gaps
verdicts.append(("intervals complete and on time", complete,
                 f"{len(intervals)}/{expected} in result, {len(live)} live, "
                 f"{len(missing)} missing, {len(late_gaps)} gaps > 1.5 s"))

# Per minute, from the one-second summaries. The worst second's p99 bounds the minute's p99
# from above (no second has more than 1% of its samples above it); the median second is typical.
print(f"\n-- per minute (from one-second intervals; p99 of the worst / median second) --")
print(f"{'min':>3} {'req/s':>9} {'asked/s':>9} {'corr p99 worst':>15} {'corr p99 med':>13} "
      f"{'lag p99 worst':>14} {'lag p99 med':>12} {'errors':>7}")
rows = []
for m in range(1, minutes + 1):
    ivs = [iv for iv in intervals if (m - 1) * 60 < iv["t_s"] <= m * 60]
    if not ivs:
        continue
    asked = [iv["requested_per_s"] for iv in ivs if iv.get("requested_per_s") is not None]
    lat = [iv["latency_p99_us"] for iv in ivs]
    lag = [iv["lag_p99_us"] for iv in ivs]
    row = dict(minute=m, rate=sum(iv["requests"] for iv in ivs) / len(ivs),
               asked=sum(asked) / len(asked) if asked else float("nan"),
               lat_max=max(lat), lat_med=statistics.median(lat),
               lag_max=max(lag), lag_med=statistics.median(lag),
               errors=sum(iv["errors"] for iv in ivs))
    rows.append(row)
    print(f"{m:>3} {row['rate']:>9.1f} {row['asked']:>9.1f} {ms(row['lat_max']):>15} "
          f"{ms(row['lat_med']):>13} {ms(row['lag_max']):>14} {ms(row['lag_med']):>12} {row['errors']:>7}")

worst = sorted(intervals, key=lambda iv: iv["lag_p99_us"], reverse=True)[:3]
print("worst seconds by lag p99: " + ";  ".join(
    f"{iv['t_s']:.0f} s: lag p99 {ms(iv['lag_p99_us'])}, corr p99 {ms(iv['latency_p99_us'])}, "
    f"{iv['requests']} req" for iv in worst))

# The loop's latency is stable when each minute's typical lag p99 (median second) stays under
# 1 ms or within 2x of the first minute's; the worst seconds are shown, not judged (shared CPUs).
if rows:
    base = rows[0]["lag_med"]
    off = [row["minute"] for row in rows if row["lag_med"] >= 1000 and row["lag_med"] > 2 * base]
    verdicts.append(("schedule-lag p99 stable (median second per minute < 1 ms or <= 2x minute 1)",
                     not off, f"minute 1 {ms(base)}, max {ms(max(row['lag_med'] for row in rows))}"
                     + (f"; off in minutes {off}" if off else "")))

errors = {k: v for k, v in r["errors"].items() if v}
status = ", ".join(f"{k}: {v}" for k, v in r["status"].items())
print(f"\n-- errors by kind: {errors if errors else 'none'} (total {r['errors_total']});  status: {status}")
print(f"-- latency (corrected) p50 {ms(r['latency_us']['p50'])}  p99 {ms(r['latency_us']['p99'])}  "
      f"max {ms(r['latency_us']['max'])};  schedule lag p99 {ms(r['schedule_lag_us']['p99'])}  "
      f"max {ms(r['schedule_lag_us']['max'])}")

# Stalls: what each thread was doing while an interval was overdue. Syscall numbers are x86_64.
names = {"0": "read", "1": "write", "7": "poll", "35": "nanosleep", "42": "connect",
         "202": "futex", "230": "clock_nanosleep", "232": "epoll_wait", "281": "epoll_pwait",
         "426": "io_uring_enter", "441": "epoll_pwait2", "running": "running"}
episodes = []
for row in csv.DictReader(open(stalls_path)):
    row["overdue_s"] = float(row["overdue_s"])
    if not episodes or row["overdue_s"] < episodes[-1][-1]["overdue_s"]:
        episodes.append([])
    episodes[-1].append(row)
if episodes:
    print(f"\n-- stalls: {len(episodes)} (threads while an interval was > 1.5 s overdue; "
          f"cpu = ticks of 10 ms used meanwhile) --")
for rows_ in episodes[:5]:
    first, last = rows_[0], rows_[-1]
    print(f"at {float(first['elapsed_s']) - first['overdue_s']:.1f} s, overdue up to {last['overdue_s']:.1f} s "
          f"(machine steal meanwhile: {int(last['steal_ticks']) - int(first['steal_ticks'])} ticks):")
    threads = {}
    for row in rows_:
        threads.setdefault((row["pid"], row["tid"]), []).append(row)
    for (p, tid), seen in threads.items():
        states = "".join(sorted({x["state"] for x in seen}))
        calls = ",".join(sorted({names.get(x["syscall"], x["syscall"]) for x in seen}))
        ticks = int(seen[-1]["cpu_ticks"]) - int(seen[0]["cpu_ticks"])
        on = ",".join(sorted({x["last_cpu"] for x in seen}))
        print(f"    {seen[0]['comm']:<16} pid {p:>7} tid {tid:>7}  state {states:<4} "
              f"syscall {calls:<24} cpu {ticks:<4} on cpu {on}")

try:
    load = open("/proc/loadavg").read().split()[:3]
    print(f"-- machine at the end: load average {' '.join(load)}")
except (OSError, IndexError):
    pass

print("\n-- verdicts (informational) --")
for name, ok, detail in verdicts:
    mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
    print(f"{mark}  {name}: {detail}")
EOF
if [ "$rc" -ne 0 ]; then
    echo "soak.sh: loadctl exited with $rc" >&2
fi
exit "$rc"
