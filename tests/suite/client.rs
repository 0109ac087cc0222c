//! What every real client does, against real servers: redirect chains followed as one step
//! (every hop counted by the server, a hop off the target's origin refused and never sent), a
//! cookie jar per virtual user (RFC 6265 paths, a `once` login's session kept across
//! iterations, off with `cookies = false`), compressed bodies decoded for checks (gzip, deflate
//! and br from the sandbox, gzip from nginx over HTTP/1.1 and HTTP/2), and a decompression bomb
//! held to the decoded-size limit. Located refusals of bad values.

use std::time::Duration;

use serde_json::Value;
use testbed::{
    assert_located, run_file, run_json, run_json_peak_rss, scenario_file, serial, step, Nginx,
    NginxConfig, Sandbox, NGINX_GZIP_BODY, NGINX_GZIP_REPEAT,
};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    scenario_file("client", name, text)
}

fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {v}"))
}

/// Runs the file; asserts exit `code` and returns the results.
fn run_expecting(file: &std::path::Path, code: i32) -> Value {
    let (got, v, stderr) = run_file(file, &[]);
    assert_eq!(got, Some(code), "{stderr}\n{v}");
    v
}

#[test]
fn redirect_chains_are_one_step_and_every_hop_reaches_the_server() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let port = sandbox.addr().port();
    let file = write(
        "redirects.toml",
        &format!(
            r#"[target]
url = "{url}"
[load]
connections = 2
requests = 40
[[steps]]
name = "chain"
path = "/redirect/3"
follow_redirects = 5
check = {{ json = {{ "/redirected" = true }} }}
[[steps]]
name = "cut short"
path = "/redirect/3"
follow_redirects = 2
expect_status = [302]
[[steps]]
name = "to a slow page"
path = "/redirect-to?url=/delay/30"
follow_redirects = 1
[[steps]]
name = "off origin"
path = "/redirect-to?url=http://127.0.0.2:{port}/"
follow_redirects = 1
"#,
            url = sandbox.url("/")
        ),
    );
    // The last step fails every iteration (a refused hop): exit 0 all the same, no thresholds.
    let v = run_expecting(&file, 0);
    let n = count(step(&v, "chain"), "/requests");
    assert!(n >= 8, "{v}");
    let chain = step(&v, "chain");
    assert_eq!(count(chain, "/redirects"), 3 * n, "{chain}");
    assert_eq!(count(chain, "/checks_failed"), 0, "{chain}");
    assert_eq!(count(chain, "/status/2xx"), n, "{chain}");
    let short = step(&v, "cut short");
    assert_eq!(count(short, "/requests"), n, "{short}");
    assert_eq!(count(short, "/redirects"), 2 * n, "{short}");
    assert_eq!(count(short, "/status/3xx"), n, "{short}");
    assert_eq!(count(short, "/errors_total"), 0, "{short}");
    // The step's latency covers the whole chain: the second hop alone takes 30 ms.
    let slow = step(&v, "to a slow page");
    assert!(count(slow, "/latency_us/min") >= 30_000, "{slow}");
    let off = step(&v, "off origin");
    assert_eq!(count(off, "/requests"), 0, "{off}");
    assert_eq!(count(off, "/errors/redirect"), n, "{off}");
    assert_eq!(count(&v, "/redirects"), 6 * n, "{v}");
    // Every hop went to the sandbox, and the refused one never left: 4 + 3 + 2 + 1 per iteration.
    assert_eq!(sandbox.requests().expect("stats"), 10 * n);
}

#[test]
fn dash_l_follows_redirects_like_curl() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let url = sandbox.url("/redirect/2");
    let followed = run_json(["run", &url, "-L", "-c", "1", "-n", "10", "--output", "json"]);
    assert_eq!(count(&followed, "/requests"), 10, "{followed}");
    assert_eq!(count(&followed, "/redirects"), 20, "{followed}");
    assert_eq!(count(&followed, "/status/2xx"), 10, "{followed}");
    let capped = run_json([
        "run",
        &url,
        "-L",
        "--max-redirs",
        "1",
        "-c",
        "1",
        "-n",
        "10",
        "--output",
        "json",
    ]);
    assert_eq!(count(&capped, "/redirects"), 10, "{capped}");
    assert_eq!(count(&capped, "/status/3xx"), 10, "{capped}");
    let plain = run_json(["run", &url, "-c", "1", "-n", "10", "--output", "json"]);
    assert_eq!(count(&plain, "/redirects"), 0, "{plain}");
    assert_eq!(count(&plain, "/status/3xx"), 10, "{plain}");
    assert_eq!(sandbox.requests().expect("stats"), 30 + 20 + 10);
}

fn cookie_journey(url: &str, cookies: &str) -> String {
    format!(
        r#"[target]
url = "{url}"
[request]
{cookies}
[load]
connections = 2
requests = 40
[[steps]]
name = "login"
method = "POST"
path = "/cookies/login"
once = true
follow_redirects = 1
check = {{ json_exists = ["/cookies/session"] }}
[[steps]]
name = "scoped"
path = "/cookies/scoped"
check = {{ json = {{ "/cookies/scoped" = "1" }}, json_exists = ["/cookies/session"] }}
[[steps]]
name = "root"
path = "/cookies"
check = {{ json_exists = ["/cookies/session"], json_absent = ["/cookies/scoped"] }}
"#
    )
}

#[test]
fn each_user_keeps_its_cookies_by_path_across_iterations() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let on = run_expecting(
        &write("cookies.toml", &cookie_journey(&sandbox.url("/"), "")),
        0,
    );
    // Logged in once per user (the 303 to /cookies already carries the new session)...
    let login = step(&on, "login");
    assert_eq!(count(login, "/requests"), 2, "{login}");
    assert_eq!(count(login, "/redirects"), 2, "{login}");
    // ...and every later iteration still sends it, with `scoped` only under its path.
    for name in ["login", "scoped", "root"] {
        let s = step(&on, name);
        assert_eq!(count(s, "/checks_failed"), 0, "{name}: {s}");
        assert_eq!(count(s, "/errors_total"), 0, "{name}: {s}");
    }
    assert!(count(step(&on, "root"), "/requests") >= 10, "{on}");

    let off = run_expecting(
        &write(
            "no-cookies.toml",
            &cookie_journey(&sandbox.url("/"), "cookies = false"),
        ),
        0,
    );
    let root = step(&off, "root");
    assert_eq!(
        count(root, "/checks_failed"),
        count(root, "/requests"),
        "without a jar no session comes back: {root}"
    );
}

#[test]
fn compressed_bodies_are_decoded_for_checks_and_counted_both_ways() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let plain = testbed::raw_request(sandbox.addr(), "GET", "/compressed/gzip", &[], b"")
        .expect("GET /compressed/gzip");
    let doc_len = plain.body.len() as u64;
    let mut text = format!(
        "[target]\nurl = \"{}\"\n[load]\nconnections = 2\nrequests = 40\n",
        sandbox.url("/")
    );
    for coding in ["gzip", "deflate", "br"] {
        text.push_str(&format!(
            "[[steps]]\nname = \"{coding}\"\npath = \"/compressed/{coding}\"\ncompressed = true\ncheck = {{ json = {{ \"/ok\" = true }}, header = [\"content-encoding\"] }}\n"
        ));
    }
    // Not asked for: the sandbox answers as is, nothing is decoded.
    text.push_str("[[steps]]\nname = \"identity\"\npath = \"/compressed/gzip\"\ncheck = { json = { \"/ok\" = true } }\n");
    let v = run_expecting(&write("compressed.toml", &text), 0);
    let n = count(step(&v, "gzip"), "/requests");
    for name in ["gzip", "deflate", "br", "identity"] {
        let s = step(&v, name);
        assert_eq!(count(s, "/requests"), n, "{name}: {s}");
        assert_eq!(count(s, "/checks_failed"), 0, "{name}: {s}");
        assert_eq!(count(s, "/errors_total"), 0, "{name}: {s}");
    }
    assert_eq!(count(&v, "/bytes_decoded"), 3 * n * doc_len, "{v}");
    // The compressed three came over the wire smaller than they decoded.
    assert!(count(&v, "/bytes_in") < 4 * n * doc_len, "{v}");
}

#[test]
fn a_decompression_bomb_is_refused_within_bounded_memory() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "bomb.toml",
        &format!(
            r#"[target]
url = "{url}"
[load]
connections = 2
requests = 12
[[steps]]
name = "gzip bomb"
path = "/bomb/gzip"
compressed = true
check = {{ body_contains = "anything" }}
"#,
            url = sandbox.url("/")
        ),
    );
    let path = file.display().to_string();
    let (v, peak_kib) =
        run_json_peak_rss(&["run", &path, "--output", "json"], Duration::from_secs(60));
    let gzip = step(&v, "gzip bomb");
    let n = count(gzip, "/requests");
    assert!(n >= 5, "{v}");
    assert_eq!(count(gzip, "/errors/body_too_large"), n, "{gzip}");
    // Each bomb is 64 MiB decoded; the limit (max_body, 1 MiB) keeps one buffer per shard.
    assert!(
        peak_kib < 160 * 1024,
        "peak RSS {peak_kib} KiB: a bomb was buffered past the limit"
    );
}

#[test]
fn a_brotli_bomb_is_refused_too() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let url = sandbox.url("/");
    let file = write(
        "br-bomb.toml",
        &format!(
            "[target]\nurl = \"{url}\"\n[load]\nconnections = 1\nrequests = 5\n[[steps]]\nname = \"br bomb\"\npath = \"/bomb/br\"\ncompressed = true\ncheck = {{ body_contains = \"x\" }}\n"
        ),
    );
    let v = run_expecting(&file, 0);
    let s = step(&v, "br bomb");
    assert_eq!(count(s, "/requests"), 5, "{s}");
    assert_eq!(count(s, "/errors/body_too_large"), 5, "{s}");
}

/// Cookies, a redirect and gzip against nginx, over HTTP/1.1 and over HTTP/2 (h2c): the same
/// journey passes every check on both, and nginx counts every hop.
#[test]
fn nginx_sets_cookies_redirects_and_gzips_over_both_protocols() {
    let _load = serial();
    for http2 in [false, true] {
        let nginx = Nginx::start_with(NginxConfig {
            h2c: true,
            ..NginxConfig::default()
        })
        .expect("start nginx");
        let (url, version) = if http2 {
            (nginx.h2c_url("/"), "http = \"2\"\n")
        } else {
            (nginx.url("/"), "")
        };
        let file = write(
            &format!("nginx-{http2}.toml"),
            &format!(
                r#"[target]
url = "{url}"
{version}[load]
connections = 2
requests = 30
[[steps]]
name = "set"
path = "/set-cookie"
[[steps]]
name = "moved"
path = "/moved"
follow_redirects = 1
check = {{ body_contains = "ngx=c1" }}
[[steps]]
name = "gzip"
path = "/gzip.txt"
compressed = true
check = {{ body_contains = "compress me, nginx" }}
"#
            ),
        );
        let before = nginx.requests().expect("stub_status");
        let v = run_expecting(&file, 0);
        let n = count(step(&v, "set"), "/requests");
        assert!(n >= 8, "[h2={http2}] {v}");
        for name in ["set", "moved", "gzip"] {
            let s = step(&v, name);
            assert_eq!(count(s, "/requests"), n, "[h2={http2}] {name}: {s}");
            assert_eq!(count(s, "/checks_failed"), 0, "[h2={http2}] {name}: {s}");
            assert_eq!(count(s, "/errors_total"), 0, "[h2={http2}] {name}: {s}");
        }
        assert_eq!(count(&v, "/redirects"), n, "[h2={http2}] {v}");
        let decoded = (NGINX_GZIP_BODY.len() * NGINX_GZIP_REPEAT) as u64;
        assert_eq!(count(&v, "/bytes_decoded"), n * decoded, "[h2={http2}] {v}");
        let served = nginx.requests().expect("stub_status") - before;
        assert_eq!(served, 4 * n, "[h2={http2}] nginx served {served}");
    }
}

#[test]
fn bad_client_settings_are_refused_where_they_are_written() {
    let file = write(
        "bad-client.toml",
        r#"[target]
url = "http://127.0.0.1:9/"
[request]
follow_redirects = 21
[[steps]]
path = "/a"
follow_redirects = 99
"#,
    );
    assert_located(
        &file,
        &[
            (4, "follow_redirects: at most 20 hops"),
            (7, "at most 20 hops"),
        ],
    );
    let typed = write(
        "bad-client-types.toml",
        "[target]\nurl = \"http://127.0.0.1:9/\"\n[[steps]]\npath = \"/a\"\ncompressed = \"yes\"\n",
    );
    assert_located(&typed, &[(5, "invalid type")]);
    let setup = write(
        "bad-client-setup.toml",
        "[target]\nurl = \"http://127.0.0.1:9/\"\n[[setup]]\npath = \"/a\"\nfollow_redirects = 2\n[[steps]]\npath = \"/b\"\n",
    );
    assert_located(&setup, &[(5, "not supported in [[setup]]")]);
}
