//! A journey: the steps one iteration runs, compiled from `[[steps]]` (or from the single
//! `[request]`) into pre-encoded or pre-compiled requests, captures, checks and think times.
//!
//! Compiling resolves every template variable to a slot (captured by an earlier step), checks
//! regexes, pointers and durations, and reports every problem at its `file:line:col`. It builds
//! nothing per request; `inspect` applies captures and checks at run time.
//!
//! This module holds the compiled types and what runs per request (`StepRequest::encode`,
//! `Think::sample_ns`); `compile` turns steps into them, with `request` (request bytes and
//! templates), `response` (captures and checks) and `feeder` (CSV data).

mod compile;
mod feeder;

mod request;
mod response;
mod scope;
#[cfg(test)]
mod tests;
mod timing;
mod ws;

use std::io::Write as _;
use std::ops::Range;

use crate::plan::template::{RenderContext, RenderError, RunValue, Template};

pub(crate) use compile::{compile, compile_follow_redirects};
pub mod phase;
pub use phase::{PhaseStep, Phases};
pub use scope::{RunName, RunScope};
pub(crate) use ws::pointer::find as find_json;
pub use ws::{WsAction, WsConnect, WsExpect, WsListen};

/// Most body bytes kept for captures and checks; the rest is counted, not kept.
pub const MAX_INSPECTED_BODY: usize = 1 << 20;

/// The compiled steps of one iteration.
#[derive(Clone, Debug)]
pub struct Journey {
    pub steps: Vec<StepPlan>,
    /// Variable names (`[vars]` first, then captures); a name's index is its slot in each
    /// virtual user.
    pub vars: Vec<String>,
    /// `[vars]`: (slot, template) rendered at the start of every iteration.
    pub iteration_vars: Vec<(usize, Template)>,
    /// Weighted alternatives; a journey without `[[tasks]]` has one task of every step.
    pub tasks: Vec<TaskPlan>,
    /// CSV feeders: each iteration takes a row of each into its column slots.
    pub feeders: Vec<Feeder>,
    /// Each virtual user draws its task once (a user-type mix) instead of every iteration.
    pub task_per_vu: bool,
    /// `once` steps that run before any task (beside `[[tasks]]`): `0..k`, or empty.
    pub prelude: Range<usize>,
    /// Run-wide values, indexed as compiled: empty until `[[setup]]` has run.
    pub run: Vec<RunValue>,
    /// Each virtual user keeps a cookie jar (`[request] cookies`, on for `[[steps]]`).
    pub cookies: bool,
    /// The target's origin (`scheme://host:port/`): where cookies and redirects belong.
    pub origin: Option<url::Url>,
}

/// How a feeder's rows are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedMode {
    /// In order, wrapping around; shard i starts at row i and steps by the shard count.
    Sequential,
    Random,
    /// Each row once across all shards; iterations stop when a shard's share runs out.
    Unique,
}

/// A CSV feeder, parsed when the plan is built.
#[derive(Clone, Debug)]
pub struct Feeder {
    pub name: String,
    pub mode: FeedMode,
    /// Variable slot of each column.
    pub slots: Vec<usize>,
    pub rows: Vec<Row>,
}

/// One CSV row: each cell's bytes.
pub type Row = Vec<Vec<u8>>;

/// A weighted group of consecutive steps.
#[derive(Clone, Debug)]
pub struct TaskPlan {
    pub name: String,
    pub weight: u64,
    pub steps: Range<usize>,
}

impl Journey {
    /// A journey of one task holding every step.
    pub fn single(steps: Vec<StepPlan>) -> Journey {
        let n = steps.len();
        Journey {
            steps,
            vars: Vec::new(),
            iteration_vars: Vec::new(),
            feeders: Vec::new(),
            tasks: vec![TaskPlan {
                name: "default".into(),
                weight: 1,
                steps: 0..n,
            }],
            task_per_vu: false,
            prelude: 0..0,
            run: Vec::new(),
            cookies: false,
            origin: None,
        }
    }

    /// The names of its `[[tasks]]` (none for a journey of plain steps).
    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        let named = self.tasks.len() > 1 || self.tasks.first().is_some_and(|t| t.name != "default");
        self.tasks
            .iter()
            .filter(move |_| named)
            .map(|t| t.name.as_str())
    }

    /// Keeps only the tasks `keep` names running: the others get weight 0 (their steps stay, so
    /// step indices and result rows do not move). A kept task of weight 0 gets 1, since it was
    /// asked for. Returns how many tasks are kept.
    pub fn keep_tasks(&mut self, keep: &[String]) -> usize {
        let mut kept = 0;
        for t in &mut self.tasks {
            if keep.contains(&t.name) {
                t.weight = t.weight.max(1);
                kept += 1;
            } else {
                t.weight = 0;
            }
        }
        kept
    }

    /// Draws a task by weight.
    pub fn pick_task(&self, rng: &mut fastrand::Rng) -> usize {
        let total: u64 = self.tasks.iter().map(|t| t.weight).sum();
        if self.tasks.len() <= 1 || total == 0 {
            return 0;
        }
        let mut x = rng.u64(..total);
        for (i, t) in self.tasks.iter().enumerate() {
            if x < t.weight {
                return i;
            }
            x -= t.weight;
        }
        0
    }
}

/// One compiled step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    pub name: String,
    pub head_request: bool,
    pub request: StepRequest,
    pub captures: Vec<Capture>,
    pub checks: Vec<Check>,
    pub think: Think,
    /// Captures or checks read the body / the head: keep them while reading.
    pub needs_body: bool,
    pub needs_head: bool,
    /// Runs until it has succeeded once for a virtual user (a login), then is skipped.
    pub once: bool,
    /// `expect_status`: these statuses are this step's successes, not errors (also a
    /// `Check::Status` in `checks`, so a status outside the list is a failed check).
    pub expect_status: Vec<u16>,
    /// The step's own response timeout, instead of the plan's.
    pub timeout_ns: Option<u64>,
    /// Setup and teardown: `check.json` values rendered from run-wide values.
    pub json_templates: Vec<(String, Template)>,
    /// Redirect hops to follow; the step's response is the chain's last.
    pub follow_redirects: u8,
    /// The step asked for compression (`compressed`, or its own `Accept-Encoding`): a body it
    /// inspects is decoded first (its head is kept for `Content-Encoding`).
    pub decompress: bool,
    /// A WebSocket step: what it does instead of an HTTP request.
    pub ws: Option<Box<WsAction>>,
}

impl StepPlan {
    /// A step that sends the same bytes every time and inspects nothing: the single `[request]`
    /// of a run without steps, or the fixed rows of a WebSocket run.
    pub fn fixed(name: String, head_request: bool, request: Vec<u8>) -> StepPlan {
        StepPlan {
            name,
            head_request,
            request: StepRequest::Static(request),
            captures: Vec::new(),
            checks: Vec::new(),
            think: Think::None,
            needs_body: false,
            needs_head: false,
            once: false,
            expect_status: Vec::new(),
            timeout_ns: None,
            json_templates: Vec::new(),
            follow_redirects: 0,
            decompress: false,
            ws: None,
        }
    }

    /// The response's head is needed: for checks and captures, for `Content-Encoding`, or for
    /// the `Location` of a redirect to follow.
    pub fn keeps_head(&self) -> bool {
        self.needs_head || self.follow_redirects > 0
    }
}

/// How a step's request bytes are made.
#[derive(Clone, Debug)]
pub enum StepRequest {
    /// Encoded once; copied per request.
    Static(Vec<u8>),
    /// Rendered per request from templates.
    Dynamic {
        /// `METHOD ` and the base path.
        start: Vec<u8>,
        path: Template,
        /// ` HTTP/1.1\r\nHost: …\r\n`
        after_path: Vec<u8>,
        /// Whole `Name: value` lines.
        headers: Vec<Template>,
        body: Option<Template>,
        /// Boxed: most steps have none, and it is large.
        upload: Option<Box<Upload>>,
        content_length: bool,
    },
}

/// Multipart boundary; payloads are letters only, so it cannot occur inside one.
const BOUNDARY: &str = "loadd-form-boundary-7f3c91";

/// A multipart/form-data upload of generated bytes, one size or a weighted size mix.
#[derive(Clone, Debug)]
pub struct Upload {
    /// `--BOUNDARY\r\nContent-Disposition: …; filename="` (the name is templated).
    start: Vec<u8>,
    filename: Template,
    /// `"\r\nContent-Type: …\r\n\r\n`
    after_filename: Vec<u8>,
    /// (weight, bytes)
    sizes: Vec<(u64, usize)>,
    /// Generated once, as long as the largest size.
    payload: Vec<u8>,
}

impl Upload {
    fn size(&self, rng: &mut fastrand::Rng) -> usize {
        let total: u64 = self.sizes.iter().map(|(w, _)| w).sum();
        let mut x = if total > 0 { rng.u64(..total) } else { 0 };
        for (w, n) in &self.sizes {
            if x < *w {
                return *n;
            }
            x -= w;
        }
        self.sizes.first().map_or(0, |(_, n)| *n)
    }

    fn render(&self, cx: &mut RenderContext<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
        out.extend_from_slice(&self.start);
        self.filename.render(cx, out)?;
        out.extend_from_slice(&self.after_filename);
        let n = self.size(cx.rng);
        out.extend_from_slice(&self.payload[..n.min(self.payload.len())]);
        let _ = write!(out, "\r\n--{BOUNDARY}--\r\n");
        Ok(())
    }
}

impl StepRequest {
    /// True when the bytes are the same for every request.
    pub fn is_static(&self) -> bool {
        matches!(self, StepRequest::Static(_))
    }

    /// Writes the request into `out` (cleared first); `scratch` holds the body while its length
    /// is unknown (and for `{{body}}` in a header). Neither allocates once both have grown to
    /// the request's size. On an error the request is not to be sent.
    pub fn encode(
        &self,
        cx: &mut RenderContext<'_>,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        out.clear();
        match self {
            StepRequest::Static(bytes) => out.extend_from_slice(bytes),
            StepRequest::Dynamic {
                start,
                path,
                after_path,
                headers,
                body,
                upload,
                content_length,
            } => {
                scratch.clear();
                if let Some(b) = body {
                    b.render(cx, scratch)?;
                }
                if let Some(u) = upload {
                    u.render(cx, scratch)?;
                }
                out.extend_from_slice(start);
                path.render(cx, out)?;
                out.extend_from_slice(after_path);
                let mut with_body = RenderContext {
                    vu: cx.vu,
                    iteration: cx.iteration,
                    vars: cx.vars,
                    rng: &mut *cx.rng,
                    now_ms: cx.now_ms,
                    run: cx.run,
                    body: scratch,
                };
                for h in headers {
                    h.render(&mut with_body, out)?;
                    out.extend_from_slice(b"\r\n");
                }
                if *content_length {
                    let _ = write!(out, "Content-Length: {}\r\n", scratch.len());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(scratch);
            }
        }
        Ok(())
    }
}

/// Where a captured value comes from.
#[derive(Clone, Debug)]
pub enum CaptureSource {
    JsonPointer(String),
    /// Lower-case header name.
    Header(String),
    Regex(regex::bytes::Regex),
    Status,
}

#[derive(Clone, Debug)]
pub struct Capture {
    pub var: usize,
    pub name: String,
    pub source: CaptureSource,
}

#[derive(Clone, Debug)]
pub enum Check {
    Status(Vec<u16>),
    BodyContains(Vec<u8>),
    BodyNotContains(Vec<u8>),
    JsonEquals(String, serde_json::Value),
    JsonExists(String),
    JsonAbsent(String),
    /// Lower-case header name.
    Header(String),
    LatencyUnderNs(u64),
}

/// Pause after a step, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Think {
    None,
    Fixed(u64),
    Uniform(u64, u64),
    Exponential(u64),
}

impl Think {
    /// Draws one pause.
    pub fn sample_ns(self, rng: &mut fastrand::Rng) -> u64 {
        match self {
            Think::None => 0,
            Think::Fixed(ns) => ns,
            Think::Uniform(lo, hi) => rng.u64(lo..=hi),
            // Inverse transform; 1 − u keeps the log's argument in (0, 1].
            Think::Exponential(mean) => (-(mean as f64) * (1.0 - rng.f64()).ln()) as u64,
        }
    }
}

/// What a compiled journey needs from the rest of the plan.
pub struct RequestBase<'a> {
    /// Where the scenario's files come from (feeders).
    pub source: &'a crate::scenario::Source,
    pub base_path: &'a str,
    pub host_header: &'a str,
    /// The target is https:// (its sockets are wss://).
    pub tls: bool,
    pub default_headers: &'a [(String, String)],
    /// Run-wide values `[[setup]]` captures, and the steps `[[teardown]]` counts.
    pub run: &'a RunScope,
    /// `[request]`'s `follow_redirects` and `compressed`, each step's default.
    pub client: ClientDefaults,
}

/// What `[request]` sets for every step of a journey.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientDefaults {
    pub follow_redirects: u8,
    pub compressed: bool,
    /// The target speaks HTTP/2 (WebSocket steps need HTTP/1.1).
    pub http2: bool,
}
