//! `loadctl submit --daemons`: real `loadd serve` daemons on loopback sharing one token, one
//! `loadd sandbox` target, the real `loadctl`. An open-model run split three ways must add up on
//! the target's own counter, each daemon running its third and starting with the others, and its
//! merged percentiles and intervals must be those of the daemons' runs put together; a `unique`
//! feeder split two ways must use every row exactly once (the sandbox refuses a second
//! registration of a name). Also: the Kubernetes manifest parses (with a YAML parser, not
//! substrings) into the headless Service and Indexed Job the fleet needs. Every wait is bounded.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testbed::{remote_loadctl, Daemon, Sandbox, ServeOptions, TextOutput};
use yaml_rust2::{Yaml, YamlLoader};

const RUN_TIMEOUT: Duration = Duration::from_secs(40);
const TOKEN: &str = "fleet-test-token-0123456789abcdef";

/// `loadctl ARGS` with the fleet's token; killed (and the test failed) past `RUN_TIMEOUT`.
fn loadctl(args: &[&str]) -> TextOutput {
    remote_loadctl(args, None, Some(TOKEN), RUN_TIMEOUT)
}

fn daemons(dir: &Path, n: usize) -> Vec<Daemon> {
    (0..n)
        .map(|i| {
            // One token for the whole fleet, as a Kubernetes Secret gives every pod.
            let options = ServeOptions {
                token: Some(TOKEN),
                ..ServeOptions::default()
            };
            Daemon::start_with(&dir.join(format!("loadd-{i}")), options).expect("loadd serve")
        })
        .collect()
}

fn fleet_flag(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(Daemon::url)
        .collect::<Vec<_>>()
        .join(",")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the merged result file");
    serde_json::from_str(&text).expect("the merged result is JSON")
}

#[test]
fn open_model_split_three_ways_adds_up_on_the_target() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let fleet = daemons(tmp.path(), 3);
    let scenario = tmp.path().join("open.toml");
    std::fs::write(
        &scenario,
        format!(
            "[target]\nurl = \"{}\"\n[load]\nrate = 200\nduration = \"3s\"\nconnections = 12\n[engine]\nthreads = 1\n",
            sandbox.url("/")
        ),
    )
    .expect("write scenario");
    let result = tmp.path().join("merged.json");
    let out = loadctl(&[
        "submit",
        "--daemons",
        &fleet_flag(&fleet),
        scenario.to_str().expect("utf-8 path"),
        "--result",
        result.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let merged = read_json(&result);
    let served = sandbox.requests().expect("sandbox stats");
    let total = merged["requests"].as_u64().expect("requests");

    // The target saw exactly what the merged result counts: the schedule's 600 arrivals.
    assert_eq!(total, served, "{merged}");
    assert_eq!(total, 600, "{}", out.stdout);
    assert_eq!(merged["errors_total"], 0);
    assert_eq!(merged["dropped"], 0);

    // Each daemon ran its third (arrivals i, i+3, …) and started with the others.
    let parts = merged["fleet"]["daemons"]
        .as_array()
        .expect("fleet.daemons");
    assert_eq!(parts.len(), 3);
    let mut sum = 0;
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for p in parts {
        let n = p["requests"].as_u64().expect("daemon requests");
        assert_eq!(n, 200, "{p}");
        sum += n;
        let lag = p["start_lag_ms"].as_i64().expect("start_lag_ms");
        // Connecting and the engine's 20 ms lead; the clocks are the same one here.
        assert!(
            (0..1000).contains(&lag),
            "started {lag} ms after start_at: {p}"
        );
        p50s.push(p["latency_us"]["p50"].as_u64().expect("p50"));
        p99s.push(p["latency_us"]["p99"].as_u64().expect("p99"));
    }
    assert_eq!(sum, total);

    // Percentiles of the merged histogram lie within the daemons' own.
    let p50 = merged["latency_us"]["p50"].as_u64().expect("merged p50");
    let p99 = merged["latency_us"]["p99"].as_u64().expect("merged p99");
    let within = |v: u64, of: &[u64]| of.iter().min() <= Some(&v) && Some(&v) <= of.iter().max();
    assert!(within(p50, &p50s), "merged p50 {p50} outside {p50s:?}");
    assert!(within(p99, &p99s), "merged p99 {p99} outside {p99s:?}");
    assert_eq!(merged["latency_us"]["count"].as_u64(), Some(total));

    // Interval k of the merge is interval k of every daemon, added.
    let mut by_index: std::collections::BTreeMap<u64, u64> = Default::default();
    for (d, p) in fleet.iter().zip(parts) {
        let id = p["run_id"].as_str().expect("run_id");
        let report = d.json(&format!("/v1/runs/{id}/report"));
        for iv in report["intervals"].as_array().expect("intervals") {
            let k = iv["t_s"].as_f64().expect("t_s") as u64;
            *by_index.entry(k).or_default() += iv["requests"].as_u64().expect("requests");
        }
    }
    let intervals = merged["intervals"].as_array().expect("merged intervals");
    assert!(intervals.len() >= 3, "{intervals:?}");
    for iv in intervals {
        let k = iv["t_s"].as_f64().expect("t_s") as u64;
        assert_eq!(
            iv["requests"].as_u64(),
            by_index.get(&k).copied(),
            "interval {k}: {iv}"
        );
        // Each full second asked for 200 arrivals across the fleet.
        if (1..=3).contains(&k) {
            let asked = iv["requested_per_s"].as_f64().expect("requested_per_s");
            assert!((asked - 200.0).abs() < 1.0, "interval {k}: {iv}");
        }
    }
    // The live tail printed the merged seconds in `loadctl tail`'s format.
    assert!(
        out.stdout.contains(" req/s  p99 "),
        "no live lines:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Daemons    3"),
        "no breakdown:\n{}",
        out.stdout
    );
}

#[test]
fn unique_feeder_rows_are_used_once_across_daemons() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let fleet = daemons(tmp.path(), 2);
    let rows = 41;
    let mut csv = String::from("name\n");
    for i in 0..rows {
        csv.push_str(&format!("user-{i}\n"));
    }
    std::fs::write(tmp.path().join("users.csv"), csv).expect("write users.csv");
    let scenario = tmp.path().join("unique.toml");
    // A name registered twice is a 409 (an error here): every row must go out exactly once.
    std::fs::write(
        &scenario,
        format!(
            "[target]\nurl = \"{}\"\n[load]\nvus = 3\nduration = \"20s\"\n[engine]\nthreads = 1\n[feeders.users]\nfile = \"users.csv\"\nmode = \"unique\"\n[[steps]]\nname = \"register\"\nmethod = \"POST\"\npath = \"/api/t/fleet/register\"\njson = {{ username = \"{{{{users.name}}}}\", password = \"pw\" }}\ncheck = {{ status = [201] }}\n",
            sandbox.url("/")
        ),
    )
    .expect("write scenario");
    let result = tmp.path().join("merged.json");
    let out = loadctl(&[
        "submit",
        "--daemons",
        &fleet_flag(&fleet),
        scenario.to_str().expect("utf-8 path"),
        "--result",
        result.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let merged = read_json(&result);
    assert_eq!(merged["requests"].as_u64(), Some(rows), "{merged}");
    assert_eq!(sandbox.requests().expect("sandbox stats"), rows);
    assert_eq!(merged["errors_total"], 0, "a row was used twice: {merged}");
    assert_eq!(merged["checks_failed"], 0, "{merged}");
    let parts = merged["fleet"]["daemons"]
        .as_array()
        .expect("fleet.daemons");
    let counts: Vec<u64> = parts
        .iter()
        .map(|p| p["requests"].as_u64().expect("requests"))
        .collect();
    assert_eq!(counts, [21, 20], "rows 0,2,4… and 1,3,5…");
    // Each daemon ended because its slice ran out, long before the 20 s.
    assert!(merged["elapsed_s"].as_f64().expect("elapsed_s") < 10.0);
}

#[test]
fn refusals_send_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tmp.path().join("capacity.toml");
    std::fs::write(
        &scenario,
        "[target]\nurl = \"http://127.0.0.1:9/\"\n[capacity]\nslo = [\"p99 < 1s\"]\nstart_rate = 10\nmax_rate = 100\n",
    )
    .expect("write scenario");
    // Nothing listens on these ports: a refusal must come before any connection.
    let out = loadctl(&[
        "submit",
        "--daemons",
        "http://127.0.0.1:9,http://127.0.0.1:10",
        scenario.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("[capacity]"), "{}", out.stderr);
    let out = loadctl(&[
        "submit",
        "--daemons",
        "http://127.0.0.1:9",
        "--daemon",
        "http://127.0.0.1:10",
        scenario.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn kubernetes_manifest_parses() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/loadd.yaml");
    let text = std::fs::read_to_string(&manifest).expect("deploy/k8s/loadd.yaml");
    // The token comes from a Secret the operator creates; a literal one must never ship here.
    assert!(
        !text.contains("kind: Secret"),
        "the manifest must not carry a token"
    );
    let docs: Vec<Yaml> = YamlLoader::load_from_str(&text)
        .expect("deploy/k8s/loadd.yaml is YAML")
        .into_iter()
        .filter(|d| !d.is_null() && !d.is_badvalue())
        .collect();
    let kind_of = |d: &Yaml| {
        d["kind"]
            .as_str()
            .expect("every document has a kind")
            .to_string()
    };
    let mut kinds: Vec<String> = docs.iter().map(kind_of).collect();
    kinds.sort();
    assert_eq!(kinds, ["Job", "Service"]);
    let of_kind = |k: &str| docs.iter().find(|d| kind_of(d) == k).expect("kind present");
    let svc = of_kind("Service");
    assert_eq!(
        svc["spec"]["clusterIP"].as_str(),
        Some("None"),
        "the Service must be headless"
    );
    let spec = &of_kind("Job")["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_i64().expect("completions");
    assert_eq!(
        spec["parallelism"].as_i64(),
        Some(completions),
        "every daemon runs at once"
    );
    let pod = &spec["template"]["spec"];
    let service_name = svc["metadata"]["name"].as_str().expect("Service name");
    assert_eq!(
        pod["subdomain"].as_str(),
        Some(service_name),
        "pods are addressed through the Service"
    );
    let labels = &spec["template"]["metadata"]["labels"];
    let selector = svc["spec"]["selector"].as_hash().expect("Service selector");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            &labels[key.as_str().expect("label name")],
            value,
            "the Service selects the pods"
        );
    }
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("each arg a string"))
        .collect();
    assert_eq!(args.first(), Some(&"serve"), "{args:?}");
    let target_port = svc["spec"]["ports"][0]["targetPort"]
        .as_str()
        .expect("Service targetPort by name");
    let port = container["ports"]
        .as_vec()
        .expect("container ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(target_port))
        .expect("the container port the Service targets");
    let listen = format!(
        "--listen=0.0.0.0:{}",
        port["containerPort"].as_i64().expect("containerPort")
    );
    assert!(args.contains(&listen.as_str()), "{args:?}");
    let token = container["env"]
        .as_vec()
        .expect("container env")
        .iter()
        .find(|e| e["name"].as_str() == Some("LOADD_TOKEN"))
        .expect("LOADD_TOKEN in the container's env");
    assert!(
        token["valueFrom"]["secretKeyRef"].as_hash().is_some(),
        "LOADD_TOKEN comes from a Secret"
    );
}
