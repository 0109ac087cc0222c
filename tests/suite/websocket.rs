//! WebSocket load end to end: against the sandbox (echo, rooms, a stall) and an independent
//! peer (Python `websockets`: fragmented messages, pings from the server, server-initiated
//! closes, wss://). Counts are checked exactly where the protocol makes them exact.

use std::time::Duration;

use serde_json::Value;
use testbed::{Pki, Sandbox, WsPeer};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("ws", name, text)
}

fn run(file: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    testbed::run_file(file, &[])
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn scenario(url: &str, vus: u32, rate: f64, extra: &str) -> String {
    format!(
        "[target]\nurl = \"{url}\"\n[load]\nvus = {vus}\nduration = \"2s\"\n[websocket]\nrate = {rate}\nramp = \"200ms\"\n{extra}"
    )
}

#[test]
fn echo_round_trips_are_counted_exactly() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let url = sandbox.url("/ws/echo").replacen("http://", "ws://", 1);
    let file = write("echo.toml", &scenario(&url, 20, 20.0, ""));
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    let ws = &r["websocket"];
    assert_eq!(n(&ws["connections"]), 20, "{ws}");
    assert_eq!(n(&ws["connect_errors"]), 0);
    let sent = n(&ws["messages_sent"]);
    // 20 users × 20/s for ~1.9 s after a 0.2 s ramp.
    assert!((600..=820).contains(&sent), "{ws}");
    assert_eq!(n(&ws["replies"]), sent, "every echo matched: {ws}");
    assert_eq!(n(&ws["messages_received"]), sent);
    assert_eq!(n(&ws["drops"]), 0);
    assert_eq!(n(&ws["closed_cleanly"]), 20, "closing handshakes: {ws}");
    assert!(n(&ws["rtt_us"]["p50"]) > 0);
}

#[test]
fn room_broadcasts_are_matched_by_message_id() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let url = sandbox
        .url("/ws/rooms/lobby")
        .replacen("http://", "ws://", 1);
    let file = write(
        "room.toml",
        &scenario(
            &url,
            8,
            5.0,
            "correlate = \"id\"\nmessage = '{\"from\":{{vu}},\"id\":\"{{msg_id}}\"}'\n",
        ),
    );
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    let ws = &r["websocket"];
    let sent = n(&ws["messages_sent"]);
    assert!(sent >= 40, "{ws}");
    assert_eq!(
        n(&ws["replies"]),
        sent,
        "each user found its own message: {ws}"
    );
    // Every member receives every message of the room (its own included) while it is in it;
    // the last messages may still be in flight to others when the run ends.
    let received = n(&ws["messages_received"]);
    assert!(received > sent * 4, "fan-out: {ws}");
    assert!(received <= sent * 8, "{ws}");
}

#[test]
fn a_stalled_server_shows_in_the_corrected_round_trips() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let url = sandbox.url("/ws/echo").replacen("http://", "ws://", 1);
    let file = write(
        "stall.toml",
        &format!(
            "[target]\nurl = \"{url}\"\n[load]\nvus = 4\nduration = \"3s\"\n[websocket]\nrate = 50\nramp = \"100ms\"\n"
        ),
    );
    let args = [
        "run".to_string(),
        file.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    let run = testbed::LoadctlRun::start(&args);
    std::thread::sleep(Duration::from_millis(1000));
    sandbox.stall(800).expect("stall");
    let r = run.json(Duration::from_secs(30));
    let ws = &r["websocket"];
    assert_eq!(n(&ws["drops"]), 0, "{ws}");
    let corrected_max = n(&ws["rtt_us"]["max"]);
    assert!(
        corrected_max >= 700_000,
        "the stall is in the percentiles: {ws}"
    );
    // Messages due during the stall waited: corrected p90 is far above the service time's.
    let corrected_p90 = n(&ws["rtt_us"]["p90"]);
    let service_p90 = n(&ws["rtt_service_us"]["p90"]);
    assert!(
        corrected_p90 > 2 * service_p90 && corrected_p90 > 100_000,
        "coordinated omission corrected: {ws}"
    );
}

#[test]
fn an_independent_peer_fragments_pings_and_closes() {
    let _guard = testbed::serial();
    let peer = WsPeer::start(None).expect("python websockets peer");
    // Fragmented replies are reassembled; pings are answered (the peer would close otherwise).
    for path in ["/fragmented", "/ping"] {
        let file = write(
            "peer.toml",
            &scenario(
                &peer.url(false, path),
                4,
                10.0,
                "message = \"hello {{msg_id}} from a load generator\"\n",
            ),
        );
        let (code, r, stderr) = run(&file);
        assert_eq!(code, Some(0), "{path}: {stderr}\n{r}");
        let ws = &r["websocket"];
        let sent = n(&ws["messages_sent"]);
        assert!(sent >= 40, "{path}: {ws}");
        assert_eq!(n(&ws["replies"]), sent, "{path}: {ws}");
        assert_eq!(n(&ws["drops"]), 0, "{path}: {ws}");
    }
    // The server closes after 5 messages: a counted drop, then a reconnect.
    let file = write(
        "close.toml",
        &scenario(
            &peer.url(false, "/close-after/5"),
            2,
            20.0,
            "backoff = \"50ms\"\n",
        ),
    );
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    let ws = &r["websocket"];
    assert!(n(&ws["reconnects"]) >= 2, "{ws}");
    assert!(n(&ws["drops"]) >= 2, "{ws}");
    assert_eq!(
        n(&r["errors"]["ws_closed"]),
        n(&ws["drops"]),
        "drops are ws_closed errors: {}",
        r["errors"]
    );
    assert_eq!(n(&ws["connections"]), n(&ws["reconnects"]) + 2);
}

#[test]
fn wss_through_tls_to_the_independent_peer() {
    let _guard = testbed::serial();
    let pki = Pki::generate().expect("certificates");
    let peer =
        WsPeer::start(Some((&pki.server_cert, &pki.server_key))).expect("python websockets peer");
    let file = write(
        "wss.toml",
        &format!(
            "{}[tls]\nca_file = \"{}\"\n",
            scenario(&peer.url(true, "/echo"), 4, 10.0, ""),
            pki.ca.display()
        ),
    );
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    let ws = &r["websocket"];
    assert_eq!(n(&ws["connections"]), 4, "{ws}");
    assert_eq!(n(&ws["replies"]), n(&ws["messages_sent"]));
    assert_eq!(n(&r["tls"]["handshakes"]), 4, "{}", r["tls"]);
}

#[test]
fn websocket_mistakes_are_located() {
    let file = write(
        "bad_ws.toml",
        r#"[target]
url = "ws://127.0.0.1:9/ws"
[load]
rate = 10
[websocket]
correlate = "id"
message = "no id here"
[[steps]]
path = "/x"
"#,
    );
    testbed::assert_located(
        &file,
        &[
            (4, "messages are scheduled by [websocket] rate"),
            (6, "needs {{msg_id}}"),
            (9, "do not apply to a ws:// target"),
        ],
    );
}

#[test]
fn a_paced_ws_run_is_judged_against_its_requested_message_rate() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let url = sandbox.url("/ws/echo").replacen("http://", "ws://", 1);
    let flags = |u: &str| {
        testbed::run_json([
            "run", u, "-c", "10", "-R", "100", "-d", "2s", "--output", "json",
        ])
    };
    let r = flags(&url);
    assert_eq!(r["model"]["kind"], "open", "{}", r["model"]);
    assert_eq!(r["model"]["rate_per_s"], 100.0, "{}", r["model"]);
    assert_eq!(r["latency_basis"], "intended");
    // 10 sockets started over a 1 s ramp, 10 messages/s each, for 2 s: what was planned.
    let requested = r["requested_rate_per_s"].as_f64().expect("requested rate");
    assert!((70.0..=80.0).contains(&requested), "{requested}");
    let planned = (requested * 2.0).round() as u64;
    let ws = &r["websocket"];
    let offered = n(&ws["messages_sent"]) + n(&r["dropped"]);
    assert!(
        offered.abs_diff(planned) <= 10,
        "{offered} of {planned}: {ws}"
    );
    assert_eq!(r["trustworthy"], true, "{}", r["warnings"]);

    // Echoes that take 300 ms hold each socket's next message: sends fall behind, and what
    // was never sent by the end is dropped. The run says it did not offer the rate.
    let slow = flags(&format!("{url}?delay_ms=300"));
    assert!(n(&slow["dropped"]) > 0, "{}", slow["websocket"]);
    assert!(n(&slow["late"]) > 0);
    assert_eq!(slow["trustworthy"], false);
    assert!(
        slow["warnings"].to_string().contains("never sent"),
        "{}",
        slow["warnings"]
    );
}
