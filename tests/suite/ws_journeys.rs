//! WebSocket steps inside HTTP journeys: an HTTP login whose token opens a socket, messages
//! sent and expected, captures from messages, closes; against the sandbox (token-checked
//! rooms) and an independent peer (Python `websockets`: pings, server closes). Counts are
//! checked on both sides where the protocol makes them exact.

use serde_json::Value;
use testbed::{assert_located, step, Sandbox, WsPeer};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("wsj", name, text)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Register once over HTTP, then per iteration: join the tenant's room with the token, wait
/// for the join's acknowledgement, send a message and find it coming back through the room.
const ROOM_JOURNEY: &str = r#"
[[steps]]
name = "register"
once = true
method = "POST"
path = "/api/t/chat/register"
json = { username = "u-{{vu}}-{{uuid}}", password = "pw" }
capture = { token = { json = "/token" } }
check = { status = [201] }

[[steps]]
name = "join"
ws_connect = "/ws/t/chat/rooms/lobby"
headers = ["Authorization: Bearer {{token}}"]

[[steps]]
name = "joined"
ws_expect = { json = { "/type" = "joined" }, timeout = "2s" }
capture = { me = { json = "/user" } }
check = { body_contains = "lobby" }

[[steps]]
name = "say"
ws_send = { json = { from = "{{me}}", id = "{{msg_id}}" } }

[[steps]]
name = "heard"
ws_expect = { text_contains = "{{msg_id}}", timeout = "2s" }
think = "20ms"

[[steps]]
name = "leave"
ws_close = { code = 1000 }
"#;

fn sandbox_stats(sandbox: &Sandbox) -> Value {
    let r = testbed::raw_request(sandbox.addr(), "GET", "/control/stats", &[], b"").expect("stats");
    serde_json::from_slice(&r.body).expect("stats json")
}

#[test]
fn login_then_room_journey_with_ramping_users_counts_exactly() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let file = write(
        "room.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nstart_vus = 2\nstages = [{{ duration = \"1s\", target = 8 }}, {{ duration = \"1s\", target = 8 }}]\n{ROOM_JOURNEY}",
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(n(&r["errors_total"]), 0, "{}", r["errors"]);
    let iterations = n(&r["iterations"]);
    assert!(iterations >= 40, "8 users for ~2 s at ~25 ms each: {r}");
    assert_eq!(n(&r["iterations_failed"]), 0);
    // Every user registered once; every iteration did each socket step exactly once.
    assert_eq!(n(&step(&r, "register")["requests"]), 8, "ramped to 8 users");
    for name in ["join", "joined", "say", "heard", "leave"] {
        assert_eq!(
            n(&step(&r, name)["requests"]),
            iterations,
            "{name}: {}",
            step(&r, name)
        );
    }
    // The capture from the acknowledgement fed the message, and the check read the message.
    assert_eq!(n(&step(&r, "joined")["checks_passed"]), iterations);
    let m = &r["ws_messages"];
    assert_eq!(n(&m["sent"]), iterations, "{m}");
    assert_eq!(n(&m["closed_cleanly"]), iterations, "{m}");
    // Each member hears at least its acknowledgement and its own message.
    assert!(n(&m["received"]) >= 2 * iterations, "{m}");
    // The server's side: every message sent arrived, and nobody is left in the room.
    let stats = sandbox_stats(&sandbox);
    assert_eq!(n(&stats["ws_messages_in"]), iterations, "{stats}");
    assert_eq!(n(&stats["ws_connections"]), 0, "{stats}");
    assert_eq!(stats["rooms"], serde_json::json!({}), "{stats}");
    // The heard step is timed from the send: a real, positive round trip.
    assert!(n(&step(&r, "heard")["latency_us"]["max"]) > 0);
}

#[test]
fn open_arrivals_of_socket_journeys_and_a_refused_token() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    // Open model: 40 journeys/s for 1 s; one task in four joins without a token (refused
    // before the upgrade: 401, counted as ws_handshake while the run goes on).
    let text = format!(
        r#"[target]
url = "{}"
[load]
model = "open"
rate = 40
duration = "1s"
connections = 20

[[steps]]
name = "register"
once = true
method = "POST"
path = "/api/t/chat/register"
json = {{ username = "o-{{{{vu}}}}-{{{{uuid}}}}", password = "pw" }}
capture = {{ token = {{ json = "/token" }} }}

[[tasks]]
name = "member"
weight = 3
[[tasks.steps]]
name = "join"
ws_connect = "/ws/t/chat/rooms/open"
headers = ["Authorization: Bearer {{{{token}}}}"]
[[tasks.steps]]
name = "joined"
ws_expect = {{ json = {{ "/type" = "joined" }} }}

[[tasks]]
name = "intruder"
weight = 1
[[tasks.steps]]
name = "sneak in"
ws_connect = "/ws/t/chat/rooms/open"
"#,
        sandbox.url("")
    );
    let file = write("open.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(r["model"]["kind"], "open", "{}", r["model"]);
    let joined = n(&step(&r, "joined")["requests"]);
    let refused = n(&step(&r, "sneak in")["errors"]["ws_handshake"]);
    assert_eq!(n(&step(&r, "join")["requests"]), joined);
    assert_eq!(n(&step(&r, "sneak in")["requests"]), 0);
    assert!(
        refused > 0 && joined > refused,
        "3:1 mix: {joined} / {refused}"
    );
    assert_eq!(joined + refused, n(&r["iterations"]), "every arrival ran");
    assert_eq!(n(&r["errors_total"]), refused, "{}", r["errors"]);
    assert_eq!(n(&r["ws_messages"]["closed_cleanly"]), joined);
}

#[test]
fn an_independent_peer_pings_and_closes_under_a_journey() {
    let peer = WsPeer::start(None).expect("python websockets peer");
    let http = peer.url(false, "").replacen("ws://", "http://", 1);
    // Against /ping the server pings every 100 ms while we wait (answered, or it would not
    // matter to the peer, but a pong it did not ask for would be a protocol error); against
    // /close-after/1 the second expect finds the socket closed: ws_closed, and the run goes on.
    let text = format!(
        r#"[target]
url = "{http}"
[load]
model = "closed"
connections = 2
iterations = 6

[[steps]]
name = "open"
ws_connect = "/ping"
[[steps]]
name = "send 1"
ws_send = {{ text = "one {{{{msg_id}}}}" }}
[[steps]]
name = "echo 1"
ws_expect = {{ text_contains = "one {{{{msg_id}}}}" }}
capture = {{ word = {{ regex = "^(\\w+) " }} }}
think = "250ms"
[[steps]]
name = "send 2"
ws_send = {{ binary = "{{{{word}}}} again" }}
[[steps]]
name = "echo 2"
ws_expect = {{ regex = "^one again$" }}
[[steps]]
name = "short"
ws_connect = "ws://{authority}/close-after/1"
[[steps]]
name = "send 3"
ws_send = {{ text = "x" }}
[[steps]]
name = "echo 3"
ws_expect = {{ text_contains = "x" }}
[[steps]]
name = "send 4"
ws_send = {{ text = "y" }}
[[steps]]
name = "echo 4"
ws_expect = {{ text_contains = "y", timeout = "2s" }}
"#,
        authority = http.trim_start_matches("http://").trim_end_matches('/'),
    );
    let file = write("peer.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(n(&r["iterations"]), 6, "{r}");
    for name in [
        "open", "send 1", "echo 1", "send 2", "echo 2", "short", "echo 3",
    ] {
        assert_eq!(
            n(&step(&r, name)["requests"]),
            6,
            "{name}: {}",
            step(&r, name)
        );
        assert_eq!(n(&step(&r, name)["errors_total"]), 0, "{name}");
    }
    // The peer closed after one echo: the wait for the second ends in a counted close (or,
    // if the close came before the send, the send fails on the closed socket).
    let closed = n(&step(&r, "echo 4")["errors"]["ws_closed"])
        + n(&step(&r, "send 4")["errors"]["ws_closed"])
        + n(&step(&r, "send 4")["errors"]["write"]);
    assert_eq!(closed, 6, "{}\n{}", step(&r, "send 4"), step(&r, "echo 4"));
    // The peer's closes are counted by their code (1000, "enough").
    assert_eq!(
        n(&r["ws_messages"]["server_closes"]["1000"]),
        n(&step(&r, "echo 4")["errors"]["ws_closed"]),
        "{}",
        r["ws_messages"]
    );
    assert_eq!(n(&step(&r, "echo 4")["requests"]), 0);
    assert_eq!(n(&r["iterations_failed"]), 6);
    assert_eq!(
        n(&r["ws_messages"]["sent"]),
        6 * 4 - n(&step(&r, "send 4")["errors_total"])
    );
}

#[test]
fn an_expect_that_never_matches_times_out_and_the_run_goes_on() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let text = format!(
        r#"[target]
url = "{}"
[load]
model = "closed"
connections = 3
iterations = 9

[[steps]]
name = "open"
ws_connect = "/ws/echo"
[[steps]]
name = "send"
ws_send = {{ text = "hello" }}
[[steps]]
name = "never"
ws_expect = {{ json = {{ "/type" = "nope" }}, timeout = "150ms" }}
[[steps]]
name = "after"
path = "/"
"#,
        sandbox.url("")
    );
    let file = write("never.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(
        n(&step(&r, "never")["errors"]["timeout"]),
        9,
        "{}",
        step(&r, "never")
    );
    assert_eq!(
        n(&step(&r, "after")["requests"]),
        0,
        "the iteration stopped"
    );
    assert_eq!(n(&r["iterations_failed"]), 9);
    // The echo came back and did not match: received, not an error.
    assert_eq!(n(&r["ws_messages"]["received"]), 9);
    // Each timed out after about its timeout, not the run's.
    let p50 = n(&r["iteration_us"]["p50"]);
    assert!((150_000..1_000_000).contains(&p50), "{}", r["iteration_us"]);
}

#[test]
fn websocket_step_mistakes_are_located() {
    let file = write(
        "bad.toml",
        r#"[target]
url = "http://127.0.0.1:9"

[[steps]]
ws_send = { text = "before any socket" }

[[steps]]
ws_connect = "/ws"
ws_send = { text = "two actions" }

[[steps]]
ws_connect = "ws://127.0.0.2:9/ws"

[[steps]]
ws_connect = "/ws"
method = "POST"

[[steps]]
ws_expect = { count = 0 }

[[steps]]
ws_send = { text = "x", json = { a = 1 } }

[[steps]]
ws_expect = { regex = "(" }

[[steps]]
ws_connect = "/ws"
headers = ["Sec-WebSocket-Key: mine"]

[[steps]]
ws_close = { code = 1005 }

[[steps]]
name = "empty"
"#,
    );
    assert_located(
        &file,
        &[
            (5, "no socket is open here"),
            (9, "one WebSocket action"),
            (12, "another origin is not supported"),
            (16, "`method` is for HTTP steps"),
            (19, "count must be 1 to"),
            (22, "exactly one of text, binary or json"),
            (25, "regex"),
            (29, "set by loadd"),
            (32, "ws_close"),
            (35, "needs a `path`"),
        ],
    );
    let h2 = write(
        "h2.toml",
        "[target]\nurl = \"http://127.0.0.1:9\"\nhttp = \"2\"\n\n[[steps]]\nws_connect = \"/ws\"\n",
    );
    assert_located(&h2, &[(6, "need HTTP/1.1")]);
    let setup = write(
        "setup.toml",
        "[target]\nurl = \"http://127.0.0.1:9\"\n\n[[setup]]\nws_connect = \"/ws\"\n\n[[steps]]\npath = \"/\"\n",
    );
    assert_located(&setup, &[(5, "not to setup or teardown")]);
    let listen = write(
        "listen_bad.toml",
        r#"[target]
url = "http://127.0.0.1:9"

[[steps]]
ws_connect = "/ws"

[[steps]]
ws_send = { text = "x", every = "1s" }

[[steps]]
ws_listen = { for = "0s" }

[[steps]]
ws_listen = { for = "1s", latency_from = { json = "/ts", unit = "minutes" } }

[[steps]]
ws_listen = { for = "1s", send = { text = "x" } }

[[steps]]
ws_listen = { for = "1s", reconnect = { after = "100ms", jitter = "1s" } }
"#,
    );
    assert_located(
        &listen,
        &[
            (8, "a paced stream goes in ws_listen"),
            (11, "more than zero"),
            (14, "unit `minutes`"),
            (17, "give `every` (e.g. every = \"12s\") or `rate`"),
            (20, "more than `jitter`"),
        ],
    );
}

/// Log in, open the tenant's push stream with the token, subscribe, then only listen.
fn push_journey(url: &str, users: u32, rate: u32, listen: &str) -> String {
    format!(
        r#"{}
[[steps]]
name = "connect"
ws_connect = "/ws/t/metrics/push?rate={rate}"
headers = ["Authorization: Bearer {{{{token}}}}"]

[[steps]]
name = "subscribe"
ws_send = {{ json = {{ type = "subscribe" }} }}

[[steps]]
name = "subscribed"
ws_expect = {{ json = {{ "/type" = "subscribed" }} }}

[[steps]]
name = "stream"
ws_listen = {{ for = "{listen}", latency_from = {{ json = "/ts_us", unit = "us" }} }}
"#,
        one_pass_with_login(url, users, "metrics")
    )
}

/// Each of `users` runs the journey once, after registering with tenant `tenant` (the token
/// is `{{token}}`).
fn one_pass_with_login(url: &str, users: u32, tenant: &str) -> String {
    format!(
        r#"[target]
url = "{url}"
[load]
model = "closed"
connections = {users}
iterations_per_vu = 1

[[steps]]
name = "login"
method = "POST"
path = "/api/t/{tenant}/register"
json = {{ username = "u-{{{{vu}}}}-{{{{uuid}}}}", password = "pw" }}
capture = {{ token = {{ json = "/token" }} }}
"#
    )
}

#[test]
fn a_listen_only_stream_times_pushes_and_shows_a_server_stall() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let file = write(
        "push.toml",
        &push_journey(&sandbox.url(""), 4, 200, "2500ms"),
    );
    let args = [
        "run".to_string(),
        file.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    let run = testbed::LoadctlRun::start(&args);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    sandbox.stall(500).expect("stall");
    let r = run.json(std::time::Duration::from_secs(30));
    assert_eq!(n(&r["errors_total"]), 0, "{}", r["errors"]);
    let stream = step(&r, "stream");
    // 4 sockets × 200/s × ~2.5 s; the ticks held by the stall arrive late, not lost.
    let pushes = n(&stream["requests"]);
    assert!((1600..=2100).contains(&pushes), "{stream}");
    assert_eq!(
        n(&stream["checks_failed"]),
        0,
        "every push carried its timestamp"
    );
    // Push latency counts from the server's stamp: the stall is in it, the rest is fast.
    assert!(n(&stream["latency_us"]["max"]) >= 350_000, "{stream}");
    assert!(n(&stream["latency_us"]["p50"]) < 50_000, "{stream}");
    // Both sides agree on every message: all the server pushed (and the subscribed
    // acknowledgements) arrived, and each subscribe arrived at the server.
    let stats = sandbox_stats(&sandbox);
    assert_eq!(
        n(&stats["ws_messages_out"]),
        n(&r["ws_messages"]["received"]),
        "{stats}"
    );
    assert_eq!(n(&stats["ws_messages_in"]), 4, "{stats}");
    assert_eq!(n(&stats["ws_connections"]), 0, "{stats}");
}

#[test]
fn a_room_broadcast_is_timed_for_every_member_that_receives_it() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let text = format!(
        r#"{}
[[steps]]
name = "join"
ws_connect = "/ws/t/rtc/rooms/standup"
headers = ["Authorization: Bearer {{{{token}}}}"]

[[steps]]
name = "joined"
ws_expect = {{ json = {{ "/type" = "joined" }} }}

[[steps]]
name = "room"
ws_listen = {{ for = "1500ms", latency_from = {{ json = "/sent_us", unit = "us" }}, send = {{ json = {{ from = "{{{{vu}}}}", sent_us = "{{{{now_us}}}}" }}, every = "100ms" }} }}
"#,
        one_pass_with_login(&sandbox.url(""), 6, "rtc")
    );
    let file = write("fanout.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(n(&r["errors_total"]), 0, "{}", r["errors"]);
    let sent = n(&r["ws_messages"]["sent"]);
    // 6 members × 15 paced posts (at 0, 100, …, 1400 ms).
    assert_eq!(sent, 90, "{}", r["ws_messages"]);
    // One send, up to six receipts: every member in the room when it was sent is timed.
    let room = step(&r, "room");
    let timed = n(&room["requests"]);
    assert!(
        timed > sent * 4 && timed <= sent * 6,
        "{timed} of {sent}: {room}"
    );
    assert_eq!(n(&room["checks_failed"]), 0);
    assert!(n(&room["latency_us"]["p50"]) < 50_000, "{room}");
    // The paced posts went out on their schedule, through a listen that lasted its time.
    assert!(
        n(&r["schedule_lag_us"]["p50"]) < 5_000,
        "{}",
        r["schedule_lag_us"]
    );
    assert!(
        n(&r["iteration_us"]["p50"]) >= 1_500_000,
        "{}",
        r["iteration_us"]
    );
    let stats = sandbox_stats(&sandbox);
    assert_eq!(n(&stats["ws_messages_in"]), sent, "{stats}");
    assert_eq!(
        n(&stats["ws_messages_out"]),
        n(&r["ws_messages"]["received"]),
        "{stats}"
    );
}

#[test]
fn a_wss_listen_keeps_the_tls_stream_whole_across_its_wakeups() {
    let pki = testbed::Pki::generate().expect("certificates");
    let peer = WsPeer::start(Some((&pki.server_cert, &pki.server_key))).expect("python peer");
    let https = peer.url(true, "").replacen("wss://", "https://", 1);
    // The listen wakes for every paced send and every 50 ms to look at the stop flag, each
    // time cancelling a TLS read; the peer pings every 100 ms meanwhile. A byte lost to a
    // cancel would break the TLS records or the frames: the expect after it would fail.
    let text = format!(
        r#"[target]
url = "{https}"
[tls]
ca_file = "{ca}"
[load]
model = "closed"
connections = 2
iterations = 4

[[steps]]
name = "open"
ws_connect = "/ping"
[[steps]]
name = "listen"
ws_listen = {{ for = "600ms", send = {{ text = "tick {{{{iteration}}}}", rate = 10 }} }}
[[steps]]
name = "after"
ws_send = {{ text = "last {{{{msg_id}}}}" }}
[[steps]]
name = "echo"
ws_expect = {{ text_contains = "last {{{{msg_id}}}}" }}
"#,
        ca = pki.ca.display()
    );
    let file = write("wss_listen.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(n(&r["errors_total"]), 0, "{}", r["errors"]);
    assert_eq!(n(&step(&r, "echo")["requests"]), 4, "{}", step(&r, "echo"));
    // Six paced sends per listen, each echoed during it (gaps recorded per message).
    assert_eq!(n(&r["ws_messages"]["sent"]), 4 * 7, "{}", r["ws_messages"]);
    let heard = n(&step(&r, "listen")["requests"]);
    assert!((4 * 5..=4 * 6).contains(&heard), "{}", step(&r, "listen"));
    assert_eq!(n(&r["tls"]["handshakes"]), 4, "{}", r["tls"]);
}

#[test]
fn a_hostile_server_costs_bounded_memory_and_counted_errors() {
    let _guard = testbed::serial();
    let peer = WsPeer::start_hostile().expect("hostile peer");
    let http = peer.url(false, "").replacen("ws://", "http://", 1);
    // (path, the one error kind it must produce)
    for (path, kind) in [
        ("/big", "body_too_large"), // a 100 MiB frame announced: refused at its header
        ("/fragments", "body_too_large"), // a message that never ends: refused at 1 MiB
        ("/big-message", "body_too_large"), // 4 MiB in 64 KiB fragments: over the 1 MiB default
        ("/pings", "timeout"),      // answered, but no message ever comes
        ("/slowloris", "timeout"),  // a frame trickled a byte at a time
    ] {
        assert_hostile(&http, path, kind, false);
    }
}

/// Four users against the hostile server's `path` for 2 s, each iteration a connect and a wait
/// for a message that never comes: every iteration ends in exactly one error of `kind`, the run
/// goes on, and peak RSS stays far below what was thrown at it (at most a 1 MiB message each).
fn assert_hostile(http: &str, path: &str, kind: &str, compression: bool) {
    let file = write(
        &format!("hostile{}.toml", path.replace('/', "_")),
        &format!(
            r#"[target]
url = "{http}"
[load]
model = "closed"
connections = 4
duration = "2s"

[[steps]]
name = "open"
ws_connect = "{path}"
compression = {compression}
[[steps]]
name = "wait"
ws_expect = {{ text_contains = "never comes", timeout = "500ms" }}
"#
        ),
    );
    let args = ["run", file.to_str().expect("path"), "--output", "json"];
    let (r, peak_kib) = testbed::run_json_peak_rss(&args, std::time::Duration::from_secs(30));
    let wait = step(&r, "wait");
    let iterations = n(&r["iterations"]);
    assert!(iterations >= 4, "{path}: the run went on: {r}");
    assert_eq!(n(&r["iterations_failed"]), iterations, "{path}");
    assert_eq!(
        n(&wait["errors"][kind]),
        iterations,
        "{path}: {}",
        wait["errors"]
    );
    assert_eq!(n(&r["errors_total"]), iterations, "{path}: {}", r["errors"]);
    assert_eq!(n(&step(&r, "open")["requests"]), iterations, "{path}");
    assert!(peak_kib < 160 * 1024, "{path}: peak RSS {peak_kib} KiB");
}

#[test]
fn a_listen_reconnects_on_purpose_and_times_each_reconnect() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let text = format!(
        r#"[target]
url = "{}"
[load]
model = "closed"
connections = 3
iterations_per_vu = 1

[[steps]]
name = "connect"
ws_connect = "/ws/push?rate=100&start=connect"
[[steps]]
name = "stream"
ws_listen = {{ for = "2s", latency_from = {{ json = "/ts_us", unit = "us" }}, reconnect = {{ after = "400ms", jitter = "100ms" }} }}
"#,
        sandbox.url("")
    );
    let file = write("reconnect.toml", &text);
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(n(&r["errors_total"]), 0, "{}", r["errors"]);
    let reconnects = n(&r["ws_messages"]["reconnects"]);
    // Every 300–500 ms of a 2 s listen: 3 to 6 each.
    assert!((9..=18).contains(&reconnects), "{}", r["ws_messages"]);
    // Each reconnect is one more upgrade in the connect step's row, timed.
    let connect = step(&r, "connect");
    assert_eq!(n(&connect["requests"]), 3 + reconnects, "{connect}");
    assert!(n(&connect["latency_us"]["max"]) > 0);
    // Each socket closed cleanly before the next opened, and the pushes kept coming.
    assert_eq!(n(&r["ws_messages"]["closed_cleanly"]), 3 + reconnects);
    assert!(
        n(&step(&r, "stream")["requests"]) > 3 * 100,
        "{}",
        step(&r, "stream")
    );
    let stats = sandbox_stats(&sandbox);
    assert_eq!(n(&stats["ws_connections"]), 0, "{stats}");
    assert_eq!(
        n(&stats["ws_messages_out"]),
        n(&r["ws_messages"]["received"]),
        "{stats}"
    );
}

#[test]
fn permessage_deflate_with_an_independent_peer_and_against_bombs() {
    let peer = WsPeer::start_deflate().expect("python websockets with deflate");
    let http = peer.url(false, "").replacen("ws://", "http://", 1);
    // A 20 KB repetitive message echoed ten times: compressed by the server when agreed.
    let journey = |compression: bool| {
        format!(
            r#"[target]
url = "{http}"
[load]
model = "closed"
connections = 2
iterations = 10

[[steps]]
name = "open"
ws_connect = "/echo"
compression = {compression}
[[steps]]
name = "send"
ws_send = {{ text = "{filler}{{{{msg_id}}}}" }}
[[steps]]
name = "echo"
ws_expect = {{ text_contains = "tock {{{{msg_id}}}}" }}
"#,
            filler = "tick tock ".repeat(2000)
        )
    };
    let mut wire_in = Vec::new();
    for compression in [true, false] {
        let file = write(
            &format!("deflate_{compression}.toml"),
            &journey(compression),
        );
        let (code, r, stderr) = testbed::run_file(&file, &[]);
        assert_eq!(code, Some(0), "{stderr}\n{r}");
        assert_eq!(n(&r["errors_total"]), 0, "{compression}: {}", r["errors"]);
        assert_eq!(n(&step(&r, "echo")["requests"]), 10, "{compression}");
        wire_in.push((n(&r["bytes_in"]), n(&r["bytes_out"])));
    }
    let ((deflated_in, out), (plain_in, _)) = (wire_in[0], wire_in[1]);
    // Our sends go uncompressed (20 KB each); the echoes came back deflated, and matched.
    assert!(out > 10 * 20_000, "{out}");
    assert!(
        deflated_in * 10 < plain_in,
        "{deflated_in} vs {plain_in} on the wire"
    );

    let hostile = WsPeer::start_hostile().expect("hostile peer");
    let http = hostile.url(false, "").replacen("ws://", "http://", 1);
    for (path, kind) in [
        ("/deflate-bomb", "body_too_large"), // 64 MiB of zeros in one compressed message
        ("/deflate-garbage", "decompress"),
    ] {
        assert_hostile(&http, path, kind, true);
    }
}
