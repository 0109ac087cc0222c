//! In-process route tests: the router driven with `oneshot`, no sockets, no traffic (scenarios
//! here are refused before a run, or target a port nothing listens on).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::allowlist::AllowRule;
use super::policy::{Limits, Policy};
use super::{app, AppState};
use crate::runner::Runs;
use crate::store::Store;

const TOKEN: &str = "secret-token";

fn test_app(dir: &std::path::Path) -> Router {
    let store = Store::open(dir).unwrap();
    let (stored, _) = store.load_all();
    let runs = Runs::start(store, stored, crate::runner::Retention::default()).unwrap();
    app(AppState {
        runs,
        policy: Arc::new(Policy {
            token: TOKEN.into(),
            named: vec![],
            allow: vec![AllowRule::parse("192.0.2.0/24").unwrap()],
            deny_loopback: false,
            own_api: None,
            limits: Limits {
                max_connections: 100,
                max_rate_per_s: Some(1000.0),
                max_duration: None,
                max_body_bytes: 4096,
                max_threads: 4,
                max_steps: 16,
                max_payload_bytes: 1 << 20,
            },
        }),
        failures: Arc::default(),
        subscribers: Arc::new(tokio::sync::Semaphore::new(8)),
    })
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn call_json(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let (status, text) = call(app, method, uri, token, body).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}: {text}"));
    (status, value)
}

/// `POST /v1/runs` with a multipart bundle of (part name, filename, content).
async fn call_bundle(app: &Router, parts: &[(&str, Option<&str>, &str)]) -> (StatusCode, Value) {
    const BOUNDARY: &str = "test-boundary-7f3a";
    let mut body = String::new();
    for (name, file, content) in parts {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(f) = file {
            body.push_str(&format!("; filename=\"{f}\""));
        }
        body.push_str(&format!("\r\n\r\n{content}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    let req = Request::builder()
        .method("POST")
        .uri("/v1/runs")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

#[tokio::test]
async fn a_bundle_carries_the_files_and_they_are_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let app = test_app(tmp.path());
    let scenario = "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nduration = \"1s\"\n[request]\nmethod = \"POST\"\nbody_file = \"data/body.json\"\n";
    let (s, v) = call_bundle(
        &app,
        &[
            ("scenario", Some("dir/with_file.toml"), scenario),
            ("file", Some("data/body.json"), "{\"a\": 1}"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    let stored = tmp
        .path()
        .join("runs")
        .join(id)
        .join("files")
        .join(hex::encode(b"data/body.json"));
    assert_eq!(std::fs::read(stored).unwrap(), b"{\"a\": 1}");
    let (s, _) = call_json(
        &app,
        "POST",
        &format!("/v1/runs/{id}/stop"),
        Some(TOKEN),
        "",
    )
    .await;
    assert!(
        s == StatusCode::ACCEPTED || s == StatusCode::CONFLICT,
        "{s}"
    );
}

#[tokio::test]
async fn health_is_open_everything_else_needs_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let app = test_app(tmp.path());
    let (s, v) = call_json(&app, "GET", "/v1/health", None, "").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    for token in [None, Some("wrong"), Some("secret-tokeN")] {
        for (m, uri) in [
            ("GET", "/v1/runs"),
            ("POST", "/v1/runs"),
            ("GET", "/metrics"),
            ("GET", "/v1/runs/x"),
        ] {
            let (s, v) = call_json(&app, m, uri, token, "").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {uri} {token:?}");
            assert_eq!(v["error"], "missing or wrong bearer token");
        }
    }
    let (s, v) = call_json(&app, "GET", "/v1/runs", Some(TOKEN), "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["runs"], serde_json::json!([]));
}

#[tokio::test]
async fn refusals_are_stable_json() {
    let tmp = tempfile::tempdir().unwrap();
    let app = test_app(tmp.path());
    let t = Some(TOKEN);
    // Malformed: located like `loadctl validate`.
    let (s, v) = call_json(
        &app,
        "POST",
        "/v1/runs?name=dir/bad.toml",
        t,
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconections = 3\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "invalid scenario");
    let d = v["details"][0].as_str().unwrap();
    assert!(d.starts_with("bad.toml:4:1:"), "{d}");
    // Every plan error at once.
    let (s, v) = call_json(
        &app,
        "POST",
        "/v1/runs",
        t,
        "[target]\nurl = \"ftp://127.0.0.1:1/\"\n[load]\nrate = 0\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["details"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        v["details"][0]
            .as_str()
            .unwrap()
            .starts_with("scenario.toml:2:7:"),
        "{v}"
    );
    // A file the scenario names must travel with it: the daemon never reads its own disk.
    let reads_passwd =
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[request]\nbody_file = \"/etc/passwd\"\n";
    let (s, v) = call_json(&app, "POST", "/v1/runs", t, reads_passwd).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let d = v["details"][0].as_str().unwrap();
    assert!(
        d.starts_with("scenario.toml:4:") && d.contains("was not sent with the scenario"),
        "{v}"
    );
    // The same in a bundle that lacks the file; then bundles that are malformed.
    let (s, v) = call_bundle(&app, &[("scenario", Some("b.toml"), reads_passwd)]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["details"][0].as_str().unwrap().starts_with("b.toml:4:"),
        "{v}"
    );
    let (s, v) = call_bundle(&app, &[("file", Some("x"), "1")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("no `scenario` part"),
        "{v}"
    );
    let (s, v) = call_bundle(&app, &[("extra", None, "1")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("unexpected part"),
        "{v}"
    );
    // The size limit covers the whole bundle, files included.
    let big = "x".repeat(5000);
    let (s, v) = call_bundle(
        &app,
        &[
            ("scenario", None, reads_passwd),
            ("file", Some("/etc/passwd"), &big),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // Not on the allowlist: refused before any traffic.
    let (s, v) = call_json(
        &app,
        "POST",
        "/v1/runs",
        t,
        "[target]\nurl = \"http://10.255.255.1/\"\n",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v["error"].as_str().unwrap().contains("allowlist"), "{v}");
    // Operator limits.
    let (s, v) = call_json(
        &app,
        "POST",
        "/v1/runs",
        t,
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconnections = 101\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("limit of 100"), "{v}");
    let (s, v) = call_json(
        &app,
        "POST",
        "/v1/runs",
        t,
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nrate = \"2k\"\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("limit of 1000/s"),
        "{v}"
    );
    // Overrides apply before the limits are checked.
    let half_limit = "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nrate = 800\n";
    let (s, v) = call_json(&app, "POST", "/v1/runs?rate_scale=2", t, half_limit).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("1600"), "{v}");
    let (s, _) = call_json(&app, "POST", "/v1/runs?rate_scale=0", t, half_limit).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call_json(&app, "POST", "/v1/runs?duration=forever", t, half_limit).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!(
        "# {}\n[target]\nurl = \"http://127.0.0.1:1/\"\n",
        "x".repeat(5000)
    );
    let (s, v) = call_json(&app, "POST", "/v1/runs", t, &big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].as_str().unwrap().contains("4096"), "{v}");
    // Unknown things.
    for uri in [
        "/v1/runs/nope",
        "/v1/runs/nope/report",
        "/v1/runs/nope/histogram",
        "/v1/runs/nope/events",
        "/v2/x",
    ] {
        let (s, v) = call_json(&app, "GET", uri, t, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
        assert!(v["error"].is_string(), "{uri}: {v}");
    }
    let (s, _) = call_json(&app, "POST", "/v1/runs/nope/stop", t, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .next()
        .is_none());
}

#[tokio::test]
async fn second_submit_queues_or_conflicts_and_stop_works() {
    let tmp = tempfile::tempdir().unwrap();
    let app = test_app(tmp.path());
    let t = Some(TOKEN);
    // Nothing listens on port 1: connects fail fast; the run is stopped long before its end.
    let long =
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconnections = 1\nduration = \"60s\"\n";
    let (s, first) = call_json(&app, "POST", "/v1/runs", t, long).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let id1 = first["id"].as_str().unwrap().to_string();
    let (s, v) = call_json(&app, "POST", "/v1/runs?duration=0s", t, long).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call_json(&app, "POST", "/v1/runs?queue=false", t, long).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, second) = call_json(&app, "POST", "/v1/runs", t, long).await;
    assert_eq!(
        (s, second["state"].as_str()),
        (StatusCode::CREATED, Some("queued"))
    );
    let id2 = second["id"].as_str().unwrap().to_string();
    // Stopping the queued one aborts it; stopping it again is a conflict.
    let (s, v) = call_json(&app, "POST", &format!("/v1/runs/{id2}/stop"), t, "").await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::ACCEPTED, Some("aborted"))
    );
    let (s, _) = call_json(&app, "POST", &format!("/v1/runs/{id2}/stop"), t, "").await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Stopping a running run drains it and keeps its result (a queued one would be aborted).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while call_json(&app, "GET", &format!("/v1/runs/{id1}"), t, "")
        .await
        .1["state"]
        == "queued"
    {
        assert!(std::time::Instant::now() < deadline, "run 1 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, _) = call_json(&app, "POST", &format!("/v1/runs/{id1}/stop"), t, "").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let state = loop {
        let (_, v) = call_json(&app, "GET", &format!("/v1/runs/{id1}"), t, "").await;
        let state = v["state"].as_str().unwrap().to_string();
        if state != "running" && state != "queued" || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state, "finished");
    let (_, list) = call_json(&app, "GET", "/v1/runs", t, "").await;
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id2.as_str(), id1.as_str()], "newest first");
    // The finished run serves every report and its histogram, and the stream ends.
    let (s, v) = call_json(&app, "GET", &format!("/v1/runs/{id1}/report"), t, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["requests"].is_u64(), "{v}");
    let (s, csv) = call(
        &app,
        "GET",
        &format!("/v1/runs/{id1}/report?format=csv"),
        t,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.starts_with("interval"), "{csv}");
    let (s, html) = call(
        &app,
        "GET",
        &format!("/v1/runs/{id1}/report?format=html"),
        t,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<h2>Summary</h2>"), "{html}");
    let (s, _) = call(
        &app,
        "GET",
        &format!("/v1/runs/{id1}/report?format=pdf"),
        t,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, h) = call(&app, "GET", &format!("/v1/runs/{id1}/histogram"), t, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.is_empty());
    let (s, events) = call(&app, "GET", &format!("/v1/runs/{id1}/events"), t, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(events.contains("event: finished"), "{events}");
    let (_, events) = call(&app, "GET", &format!("/v1/runs/{id2}/events"), t, "").await;
    assert!(
        events.contains("event: ended") && events.contains("aborted"),
        "{events}"
    );
    let (s, m) = call(&app, "GET", "/metrics", t, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(m.contains("loadd_runs{state=\"finished\"} 1"), "{m}");
    assert!(m.contains("loadd_runs{state=\"aborted\"} 1"), "{m}");

    // A new registry over the same directory sees both runs as they were.
    let again = test_app(tmp.path());
    let (_, list) = call_json(&again, "GET", "/v1/runs", t, "").await;
    let states: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["aborted", "finished"]);
}

#[test]
fn openapi_documents_every_route() {
    let doc = include_str!("../../../docs/openapi.yaml");
    for route in [
        "/v1/health:",
        "/v1/runs:",
        "/v1/runs/{id}:",
        "/v1/runs/{id}/events:",
        "/v1/runs/{id}/stop:",
        "/v1/runs/{id}/report:",
        "/v1/runs/{id}/histogram:",
        "/metrics:",
    ] {
        assert!(
            doc.contains(&format!("\n  {route}\n")),
            "{route} is not in docs/openapi.yaml"
        );
    }
}
