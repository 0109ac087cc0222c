//! Compiling journeys from scenario text: what steps compile to, and where bad input is reported.

use std::collections::BTreeMap;

use super::*;
use crate::plan::checker::Checker;
use crate::scenario::{self, Files, Source};

const TARGET: &str = "[target]\nurl = \"http://127.0.0.1:9/api\"\n";

/// The journey of `steps` (appended to a target), with the errors found; files come from
/// `files` only.
fn compile_with(steps: &str, files: &[(&str, &str)]) -> (Journey, Vec<String>) {
    let files: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect();
    let source = Source::in_memory("t.toml", format!("{TARGET}{steps}"), Files::Bundle(files));
    let spec = scenario::parse(&source).unwrap();
    let default_headers = [("X-Run".to_string(), "t".to_string())];
    let run = RunScope::default();
    let base = RequestBase {
        source: &source,
        base_path: "/api",
        host_header: "127.0.0.1:9",
        tls: false,
        default_headers: &default_headers,
        run: &run,
        client: ClientDefaults::default(),
    };
    let mut c = Checker::new(&source);
    let journey = compile(&mut c, &spec, &base);
    let errors = match c.finish() {
        Ok(()) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    };
    (journey, errors)
}

fn compile_ok(steps: &str) -> Journey {
    let (journey, errors) = compile_with(steps, &[]);
    assert!(errors.is_empty(), "{errors:#?}");
    journey
}

/// The request as vu 3 would send it with these variables.
fn encode(request: &StepRequest, vars: &[Vec<u8>]) -> String {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut cx = RenderContext {
        vu: 3,
        iteration: 0,
        vars,
        rng: &mut rng,
        now_ms: 0,
        run: &[],
        body: &[],
    };
    let (mut out, mut scratch) = (Vec::new(), Vec::new());
    request.encode(&mut cx, &mut out, &mut scratch).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn expected_outcomes_compile() {
    let j = compile_ok(
        r#"
[[steps]]
path = "/other"
expect_status = [403, 404]
timeout = "250ms"
check = { body_not_contains = "secret", json_absent = ["/items", "/a~1b"] }
"#,
    );
    let s = &j.steps[0];
    assert_eq!(s.expect_status, [403, 404]);
    assert_eq!(s.timeout_ns, Some(250_000_000));
    assert!(s.needs_body && !s.needs_head);
    assert!(
        matches!(
            s.checks.as_slice(),
            [
                Check::BodyNotContains(b),
                Check::JsonAbsent(p1),
                Check::JsonAbsent(p2),
                Check::Status(codes),
            ] if b == b"secret" && p1 == "/items" && p2 == "/a~1b" && codes == &[403, 404]
        ),
        "{:?}",
        s.checks
    );
}

#[test]
fn captures_checks_and_think_compile() {
    let j = compile_ok(
        r#"
[[steps]]
name = "login"
method = "post"
path = "/login"
json = { user = "u{{vu}}" }
capture = { token = { json = "/token" }, session = { header = "Set-Cookie" } }
check = { status = [200, 201], body_contains = "ok", latency_under = "250ms" }
think = "1s"

[[steps]]
path = "/items/{{token}}?s={{session}}"
headers = ["Authorization: Bearer {{token}}"]
think = { uniform = ["1s", "2s"] }
"#,
    );
    assert_eq!(j.vars, ["session", "token"]);
    assert_eq!(j.tasks.len(), 1);
    assert_eq!(j.tasks[0].steps, 0..2);
    assert!(!j.task_per_vu);

    let login = &j.steps[0];
    assert_eq!(login.name, "login");
    assert!(!login.head_request && !login.once);
    assert!(login.needs_body && login.needs_head);
    assert_eq!(login.think, Think::Fixed(1_000_000_000));
    let captures: Vec<_> = login
        .captures
        .iter()
        .map(|k| (k.var, k.name.as_str(), &k.source))
        .collect();
    assert!(
        matches!(
            captures.as_slice(),
            [
                (0, "session", CaptureSource::Header(h)),
                (1, "token", CaptureSource::JsonPointer(p)),
            ] if h == "set-cookie" && p == "/token"
        ),
        "{captures:?}"
    );
    assert!(
        matches!(
            login.checks.as_slice(),
            [
                Check::Status(codes),
                Check::BodyContains(body),
                Check::LatencyUnderNs(250_000_000),
            ] if codes == &[200, 201] && body == b"ok"
        ),
        "{:?}",
        login.checks
    );
    assert!(!login.request.is_static(), "{{{{vu}}}} varies");
    assert_eq!(
        encode(&login.request, &[]),
        "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-Run: t\r\n\
         Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"user\":\"u3\"}"
    );

    let items = &j.steps[1];
    assert_eq!(items.name, "GET /items/{{token}}?s={{session}}");
    assert_eq!(items.think, Think::Uniform(1_000_000_000, 2_000_000_000));
    assert!(items.captures.is_empty() && items.checks.is_empty());
    assert!(!items.needs_body && !items.needs_head);
    assert_eq!(
        encode(&items.request, &[b"a b".to_vec(), b"t/1".to_vec()]),
        "GET /api/items/t%2F1?s=a%20b HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-Run: t\r\n\
         Authorization: Bearer t/1\r\n\r\n"
    );
}

#[test]
fn a_step_without_placeholders_is_encoded_once() {
    let j = compile_ok(
        "[[steps]]\nmethod = \"PUT\"\npath = \"/x\"\nbody = \"hi\"\nheaders = [\"Host: other\"]\n",
    );
    let StepRequest::Static(bytes) = &j.steps[0].request else {
        panic!("static: {:?}", j.steps[0].request)
    };
    assert_eq!(
        String::from_utf8_lossy(bytes),
        "PUT /api/x HTTP/1.1\r\nX-Run: t\r\nHost: other\r\nContent-Length: 2\r\n\r\nhi"
    );
}

#[test]
fn forms_encode_keys_and_literals_now_and_values_when_rendered() {
    let j = compile_ok("[[steps]]\npath = \"/f\"\nform = { q = \"a b&{{vu}}\", \"k k\" = 1 }\n");
    let text = encode(&j.steps[0].request, &[]);
    assert!(
        text.contains("Content-Type: application/x-www-form-urlencoded\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Content-Length: 15\r\n\r\nk+k=1&q=a+b%263"),
        "{text}"
    );
}

#[test]
fn feeders_and_vars_are_set_before_steps() {
    let (j, errors) = compile_with(
        r#"
[feeders.users]
file = "users.csv"
mode = "random"

[vars]
tenant = "t{{random(1,1)}}"

[[steps]]
path = "/u/{{users.name}}/{{tenant}}"
"#,
        &[("users.csv", "name,pass\nann,x\nbob,y\n")],
    );
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(j.vars, ["users.name", "users.pass", "tenant"]);
    let feeder = &j.feeders[0];
    assert_eq!(
        (feeder.name.as_str(), feeder.mode),
        ("users", FeedMode::Random)
    );
    assert_eq!(feeder.slots, [0, 1]);
    assert_eq!(
        feeder.rows,
        [
            [b"ann".to_vec(), b"x".to_vec()],
            [b"bob".to_vec(), b"y".to_vec()]
        ]
    );
    assert_eq!(j.iteration_vars.len(), 1);
    assert_eq!(j.iteration_vars[0].0, 2);
    let vars = [b"ann".to_vec(), b"x".to_vec(), b"t1".to_vec()];
    assert!(
        encode(&j.steps[0].request, &vars).starts_with("GET /api/u/ann/t1 HTTP/1.1\r\n"),
        "{}",
        encode(&j.steps[0].request, &vars)
    );
}

#[test]
fn tasks_name_their_steps_and_keep_their_captures() {
    let (j, errors) = compile_with(
        r#"
[[tasks]]
name = "browse"
weight = 3
steps = [{ path = "/list", capture = { id = { json = "/0/id" } } }, { path = "/item/{{id}}" }]

[[tasks]]
name = "buy"
steps = [{ path = "/buy/{{id}}" }, { path = "/list" }]
"#,
        &[],
    );
    let names: Vec<&str> = j.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "browse: GET /list",
            "browse: GET /item/{{id}}",
            "buy: GET /buy/{{id}}",
            "buy: GET /list"
        ]
    );
    let tasks: Vec<_> = j
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.weight, t.steps.clone()))
        .collect();
    assert_eq!(tasks, [("browse", 3, 0..2), ("buy", 1, 2..4)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("t.toml:11:")
            && errors[0].contains("`{{id}}` is captured in another task"),
        "{errors:#?}"
    );
}

#[test]
fn bad_steps_are_reported_where_they_are_written() {
    let (j, errors) = compile_with(
        r#"[[steps]]
path = "/a/{{tokn}}"
capture = { token = { json = "token" } }
[[steps]]
path = "/b/{{later}}"
think = { uniform = ["2s", "1s"] }
[[steps]]
path = "/c"
capture = { later = { regex = "(" } }
[[steps]]
path = "/c"
"#,
        &[],
    );
    // Every step still compiles to something, so later checks can run.
    assert_eq!(j.steps.len(), 4);
    let expected = [
        "t.toml:4:12: `{{tokn}}` is not defined: capture it in an earlier step or use a built-in; did you mean `token`?",
        "t.toml:5:21: capture `token`: JSON pointer `token` must start with `/` (e.g. \"/token\")",
        "t.toml:7:12: `{{later}}` is used in step 2 but only captured in step 3 — capture it in an earlier step",
        "t.toml:8:9: think uniform range must be [low, high] with low ≤ high",
        "t.toml:11:21: capture `later`: bad regex:",
        "t.toml:13:8: step name `GET /c` is used twice: name each step uniquely",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(expected) {
        assert!(got.starts_with(want), "{got}\n  should start with\n{want}");
    }
}

#[test]
fn bodies_exclude_each_other() {
    let (_, errors) = compile_with(
        "[[steps]]\npath = \"/x\"\nbody = \"a\"\njson = { a = 1 }\n\
         [[steps]]\npath = \"x\"\nupload = { size = \"1KB\" }\nbody_file = \"missing.bin\"\n",
        &[],
    );
    let joined = errors.join("\n");
    for needle in [
        "t.toml:5:8: give either body or json, not both",
        "t.toml:8:8: path `x` must start with `/`",
        "t.toml:9:10: give one of body, json or upload",
        "t.toml:10:13: body_file: `missing.bin` was not sent with the scenario",
    ] {
        assert!(joined.contains(needle), "{needle} not in\n{joined}");
    }
}

#[test]
fn once_steps_beside_tasks_run_first_and_every_task_reads_them() {
    let (j, errors) = compile_with(
        r#"[[steps]]
name = "login"
once = true
method = "POST"
path = "/login"
capture = { token = { json = "/token" } }

[[steps]]
name = "not once"
path = "/x"

[[tasks]]
name = "read"
steps = [{ path = "/r", headers = ["Authorization: Bearer {{token}}"] }]

[[tasks]]
name = "write"
steps = [{ path = "/w/{{token}}" }]
"#,
        &[],
    );
    assert_eq!(j.prelude, 0..2);
    let tasks: Vec<_> = j.tasks.iter().map(|t| t.steps.clone()).collect();
    assert_eq!(tasks, [2..3, 3..4]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("t.toml:12:") && errors[0].contains("only `once = true` steps"),
        "{errors:#?}"
    );
}
