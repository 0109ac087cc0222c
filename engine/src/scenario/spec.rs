//! The scenario file's shape: one serde type per section, mirroring the TOML exactly, with the
//! byte span of every user value so later errors can point at it.
//!
//! These types check syntax and types only (serde does); they never judge meaning, which is
//! `Plan::from_spec`'s job, and they never read files or the network.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// A scenario file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub target: TargetSpec,
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub request: RequestSpec,
    #[serde(default)]
    pub engine: EngineSpec,
    /// A journey: each iteration runs these steps in order (instead of the single `[request]`).
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Weighted alternatives (Locust's `@task(weight)`): each iteration runs one task's steps.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// "iteration" (default): a task is drawn for every iteration; "vu": each virtual user
    /// draws once and keeps its task — a user-type mix.
    pub task_choice: Option<Spanned<String>>,
    /// CSV data feeders: `[feeders.users] file = "users.csv"`; columns are `{{users.name}}`.
    #[serde(default)]
    pub feeders: std::collections::BTreeMap<String, Spanned<FeederSpec>>,
    /// Values set at the start of each iteration from built-ins: `tenant = "t{{random(1,10)}}"`.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, Spanned<String>>,
    /// Pass/fail criteria such as `"p95 < 200ms"`, `"error_rate < 1%"`, `"step(login).p99 < 1s"`.
    #[serde(default)]
    pub thresholds: Vec<Spanned<ThresholdSpec>>,
    /// Several scenarios side by side, each with its own load model and journey:
    /// `[scenarios.auth.load]`, `[[scenarios.auth.steps]]`. Instead of top-level load and steps.
    #[serde(default)]
    pub scenarios: std::collections::BTreeMap<String, ScenarioSection>,
    /// Capacity search instead of one run: the highest rate that meets the SLOs.
    pub capacity: Option<CapacitySpec>,
    /// For `https://` and `wss://` targets.
    pub tls: Option<TlsSpec>,
    /// For `ws://` and `wss://` targets: what each connection sends and how replies are matched.
    pub websocket: Option<WebSocketSpec>,
    /// Steps run once before any load; what they capture is run-wide: `{{run.NAME}}`.
    #[serde(default)]
    pub setup: Vec<StepSpec>,
    /// Steps run once after the load; they may check `{{run.count(STEP)}}`.
    #[serde(default)]
    pub teardown: Vec<StepSpec>,
}

/// `[websocket]`: every connection (virtual user) holds a WebSocket open for the run and
/// sends messages on a schedule; the round trip of each is measured from its intended time.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// Path and query to upgrade on, templated (default: the URL's): `/ws/rooms/r{{random(1,5)}}`.
    pub path: Option<Spanned<String>>,
    /// Messages per second per connection (default 1; 0: connections only hold).
    pub rate: Option<Spanned<f64>>,
    /// The message, templated; `{{msg_id}}` is a per-message id that replies are matched by.
    pub message: Option<Spanned<String>>,
    /// Send binary frames instead of text.
    #[serde(default)]
    pub binary: bool,
    /// "order": the next message received is the reply (echo); "id": the reply is the first
    /// message containing this message's `{{msg_id}}` (rooms, request/reply).
    pub correlate: Option<Spanned<String>>,
    #[serde(default)]
    pub subprotocols: Vec<Spanned<String>>,
    /// Extra handshake headers, "Name: value".
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    /// Connections start spread over this (default 1s).
    pub ramp: Option<Spanned<String>>,
    /// Reconnect after a drop (default true), after `backoff` (default "1s").
    pub reconnect: Option<bool>,
    pub backoff: Option<Spanned<String>>,
}

/// `[tls]`: how `https://` targets are verified and connected to.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM bundle of trusted CAs (relative to the scenario); default: the system's store.
    pub ca_file: Option<Spanned<String>>,
    /// PEM client certificate and key, for servers that require one (mTLS).
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    /// Accept any server certificate. Printed in the run summary.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Resume TLS sessions on reconnect (default true); false forces full handshakes.
    pub resumption: Option<bool>,
    /// SNI and certificate name instead of the URL's host.
    pub server_name: Option<Spanned<String>>,
}

/// `[capacity]`: step the arrival rate up, then bisect, judging each level on the SLOs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// Threshold expressions every level must meet: `["p99 < 500ms", "error_rate < 1%"]`.
    pub slo: Spanned<Vec<Spanned<String>>>,
    pub start_rate: Spanned<CountSpec>,
    pub max_rate: Spanned<CountSpec>,
    /// Step-up multiplier until a level fails (default 2).
    pub factor: Option<Spanned<f64>>,
    /// How long each level runs (default "30s").
    pub hold: Option<Spanned<String>>,
    /// The start of each level that is not judged (default a fifth of `hold`, at most 5s).
    pub warmup: Option<Spanned<String>>,
    /// Stop bisecting when the failing and passing rates are this close (default "5%").
    pub precision: Option<Spanned<String>>,
}

/// One of several scenarios in a file. Target, `[request]` defaults, feeders and engine
/// settings are shared; everything else is its own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSection {
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    pub task_choice: Option<Spanned<String>>,
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, Spanned<String>>,
    /// Judged on this scenario's requests only.
    #[serde(default)]
    pub thresholds: Vec<Spanned<ThresholdSpec>>,
    /// Free-form labels, copied to the scenario's results.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// A threshold: its expression, or a table that can also stop the run early.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Table {
        expr: String,
        /// Stop the run as soon as this threshold fails (after `delay`).
        #[serde(default)]
        abort_on_fail: bool,
        /// Do not judge before this much of the run has passed (default 10s).
        delay: Option<String>,
    },
}

/// A CSV file whose rows feed iterations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeederSpec {
    /// Relative to the scenario file; the first line names the columns.
    pub file: String,
    /// "sequential" (default: rows in order, wrapping), "random", or "unique" (each row used
    /// once across all shards; the run ends when they run out).
    pub mode: Option<String>,
}

/// A weighted group of steps.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: Spanned<String>,
    /// Relative weight (default 1).
    pub weight: Option<Spanned<u64>>,
    pub steps: Vec<StepSpec>,
}

/// One request of a journey.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Groups results: `/sessions/{{id}}` aggregates under one name.
    pub name: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    /// Path (and query) on the target, templated: `/api/t/{{tenant}}/login`. Empty (and
    /// spanning nothing) in a WebSocket step.
    #[serde(default = "no_path")]
    pub path: Spanned<String>,
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    /// Body as text, templated.
    pub body: Option<Spanned<String>>,
    /// Body as the bytes of a file (relative to the scenario file), sent as they are.
    pub body_file: Option<Spanned<String>>,
    /// Body as JSON written as a TOML table; string values are templated.
    pub json: Option<Spanned<toml::Value>>,
    /// Body as an HTML form (`application/x-www-form-urlencoded`): `form = { q = "{{term}}" }`.
    pub form: Option<Spanned<std::collections::BTreeMap<String, toml::Value>>>,
    /// Run this step only until it has succeeded once for a virtual user (Locust's
    /// `on_start`): a login whose captured token later iterations reuse.
    #[serde(default)]
    pub once: bool,
    /// A multipart/form-data upload of a generated payload.
    pub upload: Option<Spanned<UploadSpec>>,
    /// Values to keep for later steps: `capture = { token = { json = "/token" } }`.
    #[serde(default)]
    pub capture: std::collections::BTreeMap<String, Spanned<CaptureSpec>>,
    pub check: Option<CheckSpec>,
    /// Statuses this step expects (e.g. `[403]` for a refused cross-tenant read): one of them
    /// is a passed `status` check and not an error; any other is a failed check.
    pub expect_status: Option<Spanned<Vec<u16>>>,
    /// This step's response timeout (e.g. `"250ms"`), instead of `[request] timeout`.
    pub timeout: Option<Spanned<String>>,
    /// Pause after this step: `"1s"`, `{ uniform = ["1s", "3s"] }`, `{ exponential = "2s" }`.
    pub think: Option<Spanned<ThinkSpec>>,
    /// Setup and teardown: run the step this many times (`{{iteration}}` from 0); its
    /// captures become lists.
    pub each: Option<Spanned<u64>>,
    /// Setup and teardown: how many of `each`'s iterations run at once (default 1).
    pub parallel: Option<Spanned<u64>>,
    /// Redirect hops to follow (0 to 20), instead of `[request] follow_redirects`.
    pub follow_redirects: Option<Spanned<u64>>,
    /// Ask for a compressed response (`Accept-Encoding: gzip, deflate, br, zstd`), instead of
    /// `[request] compressed`; checks and captures read the decoded body.
    pub compressed: Option<Spanned<bool>>,
    /// Open a WebSocket on the target (`"/ws/rooms/{{room}}"`, or a `ws://`/`wss://` URL of the
    /// same host): the upgrade is the step's response.
    pub ws_connect: Option<Spanned<String>>,
    /// `ws_connect`: subprotocols to offer.
    pub subprotocols: Option<Spanned<Vec<String>>>,
    /// `ws_connect`: offer permessage-deflate (RFC 7692); compressed messages are inflated
    /// under the message limit.
    pub compression: Option<Spanned<bool>>,
    /// Send one message on the user's open socket.
    pub ws_send: Option<Spanned<crate::scenario::WsSendSpec>>,
    /// Wait for a message that matches.
    pub ws_expect: Option<Spanned<crate::scenario::WsExpectSpec>>,
    /// Close the user's socket (the closing handshake is the step's response).
    pub ws_close: Option<Spanned<crate::scenario::WsCloseSpec>>,
    /// Receive (and maybe send a paced stream) for a while; each message is a response.
    pub ws_listen: Option<Spanned<crate::scenario::WsListenSpec>>,
}

fn no_path() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

impl StepSpec {
    /// Where the step is in the file: its path, or its WebSocket action, or its name.
    pub fn span(&self) -> Range<usize> {
        if !self.path.get_ref().is_empty() || self.path.span() != (0..0) {
            return self.path.span();
        }
        let ws = [
            self.ws_connect.as_ref().map(Spanned::span),
            self.ws_send.as_ref().map(Spanned::span),
            self.ws_expect.as_ref().map(Spanned::span),
            self.ws_close.as_ref().map(Spanned::span),
            self.ws_listen.as_ref().map(Spanned::span),
            self.name.as_ref().map(Spanned::span),
        ];
        ws.into_iter().flatten().next().unwrap_or(0..0)
    }

    /// The step is a WebSocket action rather than an HTTP request.
    pub fn is_ws(&self) -> bool {
        self.ws_connect.is_some()
            || self.ws_send.is_some()
            || self.ws_expect.is_some()
            || self.ws_close.is_some()
            || self.ws_listen.is_some()
    }
}

/// A generated file upload: one size, or a weighted mix of sizes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSpec {
    /// Form field name (default "file").
    pub field: Option<String>,
    /// Templated file name (default "upload.bin").
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// e.g. "200KB"
    pub size: Option<String>,
    /// e.g. [{ size = "50KB", weight = 26 }, { size = "2MB", weight = 5 }]
    pub sizes: Option<Vec<SizeWeight>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeWeight {
    pub size: String,
    pub weight: u64,
}

/// Where a captured value comes from: exactly one of these.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// JSON pointer into the response body (RFC 6901), e.g. "/token" or "/items/0/id".
    pub json: Option<String>,
    /// A response header's value.
    pub header: Option<String>,
    /// A regex on the body; its first group (or the whole match).
    pub regex: Option<String>,
    /// The status code.
    #[serde(default)]
    pub status: bool,
}

/// What a response must satisfy; failures are counted per step and per kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub status: Option<Spanned<Vec<u16>>>,
    pub body_contains: Option<Spanned<String>>,
    /// Text the body must not contain (another tenant's data).
    pub body_not_contains: Option<Spanned<String>>,
    /// JSON pointer → expected value.
    pub json: Option<Spanned<std::collections::BTreeMap<String, toml::Value>>>,
    /// JSON pointers that must exist.
    pub json_exists: Option<Spanned<Vec<String>>>,
    /// JSON pointers that must not exist.
    pub json_absent: Option<Spanned<Vec<String>>>,
    /// Header names that must be present.
    pub header: Option<Spanned<Vec<String>>>,
    /// e.g. "200ms"
    pub latency_under: Option<Spanned<String>>,
}

/// Think time after a step.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ThinkSpec {
    Fixed(String),
    Uniform { uniform: [String; 2] },
    Exponential { exponential: String },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `http://host:port/path?query`
    pub url: Spanned<String>,
    /// "1.1" (default) or "2": HTTP/2 with prior knowledge for `http://` (h2c), by ALPN `h2`
    /// for `https://`.
    #[serde(default)]
    pub http: Option<Spanned<String>>,
    /// HTTP/2: concurrent streams per connection (default 1, like h2load's `-m`).
    #[serde(default)]
    pub streams: Option<Spanned<u64>>,
}

/// How load is applied. `model` picks closed (connections back to back) or open (arrival rate).
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// "closed" (default without a rate) or "open" (default with a rate or stages).
    pub model: Option<Spanned<String>>,
    pub connections: Option<Spanned<u64>>,
    /// e.g. "30s"
    pub duration: Option<Spanned<String>>,
    /// Closed model: stop after this many requests (e.g. "10k" or 10000).
    pub requests: Option<Spanned<CountSpec>>,
    /// Open model: constant arrival rate per second (e.g. "1k" or 1000).
    pub rate: Option<Spanned<CountSpec>>,
    /// Open model: rate at the start of the first stage.
    pub start_rate: Option<Spanned<CountSpec>>,
    /// Open model: ramping arrival rate.
    pub stages: Option<Vec<StageSpec>>,
    /// Closed model with stages: virtual users at the start (stage targets are user counts).
    pub start_vus: Option<Spanned<u64>>,
    /// Open model: arrivals that may wait for a free connection before being dropped.
    pub max_queue: Option<Spanned<u64>>,
    /// k6's executor names, as a stricter alternative to `model`: "constant-vus",
    /// "ramping-vus", "per-vu-iterations", "shared-iterations", "constant-arrival-rate",
    /// "ramping-arrival-rate".
    pub executor: Option<Spanned<String>>,
    /// Closed model: virtual users (the same as `connections`).
    pub vus: Option<Spanned<u64>>,
    /// Open model: most connections (virtual users) arrivals may use (the same as `connections`).
    pub max_vus: Option<Spanned<u64>>,
    /// Closed model: iterations shared by all users; the run ends when they are done.
    pub iterations: Option<Spanned<CountSpec>>,
    /// Closed model: iterations each user runs, then stops.
    pub iterations_per_vu: Option<Spanned<u64>>,
    /// With several scenarios: start this long after the run (e.g. "30s").
    pub start_after: Option<Spanned<String>>,
    /// After the load ends, how long running iterations may take to finish before they are
    /// interrupted (default 30s).
    pub graceful_stop: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Spanned<String>,
    pub target: Spanned<CountSpec>,
}

/// A number written either as a TOML number or as a string with a unit suffix ("10k").
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CountSpec {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Option<Spanned<String>>,
    /// Extra header fields, in order, as "Name: value" strings.
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    pub body: Option<Spanned<String>>,
    /// Path of a file whose bytes are the body (relative to the scenario file).
    pub body_file: Option<Spanned<String>>,
    /// e.g. "5s"
    pub timeout: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    /// Redirect hops every step follows (0 to 20; default 0: a 3xx is the response).
    pub follow_redirects: Option<Spanned<u64>>,
    /// Every step asks for compressed responses (default false).
    pub compressed: Option<Spanned<bool>>,
    /// A cookie jar per virtual user for journeys (default true; false to turn it off).
    pub cookies: Option<Spanned<bool>>,
}

/// Engine placement. Usually set from flags rather than files.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    pub threads: Option<Spanned<u64>>,
    pub cpus: Option<Spanned<Vec<u64>>>,
    /// "auto", "uring" or "legacy"
    pub driver: Option<Spanned<String>>,
    /// Local addresses to connect from, rotated over connections (k6's `--local-ips`):
    /// `"10.0.0.1"`, `"10.0.0.1-10.0.0.9"`, `"10.0.0.0/29"`.
    pub local_ips: Option<Spanned<Vec<String>>>,
    /// What a target may make a connection hold (sizes like `"1MiB"`): a response body kept for
    /// checks or captures, one WebSocket frame, one WebSocket message.
    pub max_body: Option<Spanned<String>>,
    pub max_ws_frame: Option<Spanned<String>>,
    pub max_ws_message: Option<Spanned<String>>,
}

impl LoadSpec {
    /// Where the first field that is set is written, if any.
    pub fn first_span(&self) -> Option<Range<usize>> {
        let count = |v: &Option<Spanned<CountSpec>>| v.as_ref().map(Spanned::span);
        let int = |v: &Option<Spanned<u64>>| v.as_ref().map(Spanned::span);
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
        [
            text(&self.model),
            int(&self.connections),
            text(&self.duration),
            count(&self.requests),
            count(&self.rate),
            count(&self.start_rate),
            self.stages
                .as_ref()
                .and_then(|s| s.first())
                .map(|s| s.duration.span()),
            int(&self.start_vus),
            int(&self.max_queue),
            text(&self.executor),
            int(&self.vus),
            int(&self.max_vus),
            count(&self.iterations),
            int(&self.iterations_per_vu),
            text(&self.start_after),
            text(&self.graceful_stop),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|r| r.start)
    }
}

impl ScenarioSpec {
    /// Every step written in the file: top-level, in tasks, and in every scenario.
    pub fn all_steps(&self) -> impl Iterator<Item = &StepSpec> {
        let top = self
            .steps
            .iter()
            .chain(self.tasks.iter().flat_map(|t| t.steps.iter()));
        let scenarios = self.scenarios.values().flat_map(|s| {
            s.steps
                .iter()
                .chain(s.tasks.iter().flat_map(|t| t.steps.iter()))
        });
        top.chain(scenarios)
    }

    /// A one-request scenario for a URL, as `loadctl run URL` builds it (flags fill the rest).
    pub fn for_url(url: String) -> Self {
        Self {
            target: TargetSpec {
                url: unspanned(url),
                http: None,
                streams: None,
            },
            load: LoadSpec::default(),
            request: RequestSpec::default(),
            engine: EngineSpec::default(),
            steps: Vec::new(),
            tasks: Vec::new(),
            task_choice: None,
            feeders: Default::default(),
            vars: Default::default(),
            thresholds: Vec::new(),
            scenarios: Default::default(),
            capacity: None,
            tls: None,
            websocket: None,
            setup: Vec::new(),
            teardown: Vec::new(),
        }
    }

    /// Relative names of the files this scenario reads (body files today; feeders and upload
    /// payload files as the language grows), so a client can send them with the scenario.
    pub fn referenced_files(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .request
            .body_file
            .iter()
            .map(|f| f.get_ref().clone())
            .chain(self.feeders.values().map(|f| f.get_ref().file.clone()))
            .chain(
                self.all_steps()
                    .filter_map(|s| s.body_file.as_ref())
                    .map(|f| f.get_ref().clone()),
            )
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Wraps a value built from flags (no file position).
pub fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
