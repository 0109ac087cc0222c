//! `loadctl run https://…` end to end against nginx with a certificate made at test time:
//! keep-alive over TLS with handshakes counted apart from request latency and sessions resumed,
//! an untrusted certificate counted as `tls_certificate` errors while the run goes on, `-k`
//! printed in the summary, and mTLS from a scenario's `[tls]` section.

use std::time::Duration;

use testbed::{run_loadctl_timeout, Nginx, NginxConfig, NginxTls, Pki};

fn json_of(args: &[String]) -> (Option<i32>, serde_json::Value, String) {
    let out = run_loadctl_timeout(args, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code(),
        serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scenario(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("https", name, text)
}

#[test]
fn https_runs_count_handshakes_and_resume_sessions() {
    let _guard = testbed::serial();
    let pki = Pki::generate().expect("certificates");
    let nginx = Nginx::start_tls(
        NginxConfig::default(),
        NginxTls::new(&pki.server_cert, &pki.server_key),
    )
    .expect("nginx with TLS");
    let file = scenario(
        "https.toml",
        &format!(
            r#"[target]
url = "{}"
[tls]
ca_file = "{}"
[load]
connections = 4
requests = 400
"#,
            nginx.https_url("/"),
            pki.ca.display()
        ),
    );
    let args = [
        "run".to_string(),
        file.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    let (code, r, stderr) = json_of(&args);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(r["requests"], 400, "{r}");
    assert_eq!(r["errors_total"], 0, "{r}");
    let tls = &r["tls"];
    // nginx keeps these connections alive: one handshake each (a reconnect would add one).
    let handshakes = tls["handshakes"].as_u64().expect("handshakes");
    assert!((4..=8).contains(&handshakes), "{tls}");
    assert!(
        tls["handshake_us"]["p50"].as_u64().expect("p50") > 0,
        "{tls}"
    );
    assert_eq!(tls["insecure_skip_verify"], false);
    assert_eq!(nginx.requests().expect("stub_status"), 400);

    // nginx closes a keep-alive connection every 10 requests here: reconnects resume.
    let nginx = Nginx::start_tls(
        NginxConfig {
            keepalive_requests: 10,
            ..NginxConfig::default()
        },
        NginxTls::new(&pki.server_cert, &pki.server_key),
    )
    .expect("nginx with TLS");
    let file = scenario(
        "https_reconnect.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[tls]\nca_file = \"{}\"\n[load]\nconnections = 2\nrequests = 100\n",
            nginx.https_url("/"),
            pki.ca.display()
        ),
    );
    let args = [
        "run".to_string(),
        file.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    let (code, r, stderr) = json_of(&args);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert_eq!(
        r["errors_total"], 0,
        "a server-side close is not an error: {r}"
    );
    let tls = &r["tls"];
    let handshakes = tls["handshakes"].as_u64().expect("handshakes");
    let resumed = tls["resumed"].as_u64().expect("resumed");
    assert!(handshakes >= 10, "{tls}");
    assert!(resumed >= handshakes - 2, "every reconnect resumes: {tls}");
}

#[test]
fn untrusted_certificates_are_counted_and_k_skips_verification() {
    let _guard = testbed::serial();
    let pki = Pki::generate().expect("certificates");
    let nginx = Nginx::start_tls(
        NginxConfig::default(),
        NginxTls::new(&pki.server_cert, &pki.server_key),
    )
    .expect("nginx with TLS");
    let url = nginx.https_url("/");
    // No CA given: the system store does not know this test CA.
    let args: Vec<String> = ["run", &url, "-c", "2", "-n", "20", "--output", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, r, stderr) = json_of(&args);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    assert!(
        r["errors"]["tls_certificate"].as_u64().expect("count") >= 2,
        "{}",
        r["errors"]
    );
    assert_eq!(r["requests"], 0);

    let mut insecure = args.clone();
    insecure.push("-k".into());
    let (code, r, stderr) = json_of(&insecure);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["requests"], 20, "{r}");
    assert_eq!(r["tls"]["insecure_skip_verify"], true);
    let text = run_loadctl_timeout(["run", &url, "-n", "5", "-k"], Duration::from_secs(30));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CERTIFICATES NOT VERIFIED"),
        "the summary says so"
    );
}

#[test]
fn mtls_client_certificates_come_from_the_scenario() {
    let _guard = testbed::serial();
    let pki = Pki::generate().expect("certificates");
    let mut tls = NginxTls::new(&pki.server_cert, &pki.server_key);
    tls.client_ca = Some(pki.ca.clone());
    let nginx = Nginx::start_tls(NginxConfig::default(), tls).expect("nginx with mTLS");
    let with_cert = scenario(
        "mtls.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[tls]\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n[load]\nconnections = 1\nrequests = 10\n",
            nginx.https_url("/"),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    );
    let (code, r, stderr) = json_of(&[
        "run".into(),
        with_cert.display().to_string(),
        "--output".into(),
        "json".into(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["status"]["2xx"], 10, "{r}");
    // nginx checks client certificates after the handshake and answers 400 without one.
    let without = scenario(
        "no_cert.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[tls]\nca_file = \"{}\"\n[load]\nconnections = 1\nrequests = 10\n",
            nginx.https_url("/"),
            pki.ca.display()
        ),
    );
    let (_, r, stderr) = json_of(&[
        "run".into(),
        without.display().to_string(),
        "--output".into(),
        "json".into(),
    ]);
    assert_eq!(r["errors"]["status_4xx"], 10, "{stderr}\n{r}");
    // A key without its certificate is refused before any traffic, located.
    let bad = scenario(
        "bad_tls.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[tls]\nclient_key = \"{}\"\n",
            nginx.https_url("/"),
            pki.client_key.display()
        ),
    );
    let out = run_loadctl_timeout(
        ["validate".to_string(), bad.display().to_string()],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad_tls.toml:4:"), "{err}");
}
