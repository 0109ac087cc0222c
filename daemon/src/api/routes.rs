//! The request/response routes: submit, list, status, stop, report, histogram, metrics, health.
//!
//! Handlers copy what they need out of the registry under its lock and render after releasing
//! it. Parsing and planning a scenario (which may resolve a host name) runs on the blocking pool.
//! A submission is the scenario TOML as the body, or a `multipart/form-data` bundle: a
//! `scenario` part and one `file` part per file the scenario reads, its `filename` being the
//! relative name the scenario uses. The daemon reads those files only from the bundle, never
//! from its own disk: a file the scenario names but the bundle lacks is a located 400.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use engine::scenario::{self, CountSpec, Source};
use engine::Plan;
use serde::Deserialize;
use serde_json::{json, Value};
use toml::Spanned;

use super::auth::{audit, Caller};
use super::policy::Refusal;
use super::report::{self, CurrentRun, MetricsSnapshot};
use super::spec_limits::{self, SpecLimits};
use super::{ApiError, AppState};
use crate::cap::RuntimeCap;
use crate::runner::{DeleteError, Run, RunOptions, StopError, SubmitError};
use crate::store::RunState;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Deserialize)]
pub struct SubmitQuery {
    /// Queue behind a pending run (default) or refuse with 409.
    #[serde(default = "yes")]
    queue: bool,
    /// The file name shown in error locations.
    name: Option<String>,
    /// Overrides the scenario's duration, as `loadctl run -d` does (e.g. `30s`).
    duration: Option<String>,
    /// Multiplies every open-model rate (rate, start_rate, stage targets), e.g. 0.5.
    rate_scale: Option<f64>,
    /// Sends to this origin instead of the scenario's, keeping its paths (`loadctl run --base-url`).
    base_url: Option<String>,
    /// Runs only these weighted tasks, comma-separated (`loadctl submit --task`).
    tasks: Option<String>,
    /// Starts the run at this wall-clock instant (Unix ms), so daemons given the same instant
    /// start together; at most a few seconds past, at most ten minutes ahead.
    start_at: Option<u64>,
    /// Streams each interval's full measurements (`stats`) and a `stats` event with the totals
    /// before `finished`, for clients that merge several daemons' runs exactly.
    #[serde(default)]
    stats: bool,
}

/// What a client sent: the scenario text, the name it came with, and its files.
struct Submission {
    text: String,
    name: Option<String>,
    files: BTreeMap<String, Vec<u8>>,
    /// What `env()` reads: the values loadctl read in the submitter's shell.
    env: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let submitted = submit_run(&state, &caller, query, request).await;
    if let Err(e) = &submitted {
        audit(&caller, format_args!("refused submit: {}", e.summary()));
    }
    submitted
}

async fn submit_run(
    state: &AppState,
    caller: &Caller,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let submission = read_submission(state, request).await?;
    let Submission {
        text,
        name,
        files,
        env,
    } = submission;
    // Only a file name: it labels messages and is never opened.
    let name = query
        .name
        .as_deref()
        .or(name.as_deref())
        .and_then(|n| std::path::Path::new(n).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("scenario.toml")
        .to_string();
    check_query(&query)?;
    let options = RunOptions {
        start_at_unix_ms: query.start_at,
        stats: query.stats,
        cap: RuntimeCap::default(),
    };
    let scenario = text.clone();
    let overrides = Overrides {
        duration: query.duration.clone(),
        rate_scale: query.rate_scale,
        base_url: query.base_url.clone(),
        tasks: query
            .tasks
            .iter()
            .flat_map(|t| t.split(','))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        env,
    };
    let bundle = files.clone();
    let limits = state.policy.limits.spec();
    let planned =
        tokio::task::spawn_blocking(move || plan_scenario(name, text, bundle, overrides, limits))
            .await
            .map_err(|e| ApiError::Internal(format!("planning task: {e}")))??;
    state.policy.check(&planned).map_err(|r| match r {
        Refusal::Target(m) => ApiError::Forbidden(m),
        Refusal::Limit(m) => ApiError::BadRequest(m),
    })?;
    let limits = &state.policy.limits;
    let options = RunOptions {
        cap: RuntimeCap::for_plan(&planned, limits.max_rate_per_s, limits.max_duration),
        ..options
    };
    let what = describe(&planned, &options);
    let meta = state
        .runs
        .submit(planned, &scenario, &files, query.queue, options)
        .map_err(|e| match e {
            SubmitError::Busy | SubmitError::ShuttingDown => ApiError::Conflict(e.to_string()),
            SubmitError::QueueFull(_) => ApiError::TooManyRequests(e.to_string()),
            SubmitError::Store(io) => ApiError::Internal(format!("store: {io}")),
        })?;
    audit(caller, format_args!("submit: run {} {what}", meta.id));
    let location = format!("/v1/runs/{}", meta.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({"id": meta.id, "state": meta.state})),
    )
        .into_response())
}

/// What a submission asks for, for its audit line: target, addresses and the limits it needs.
fn describe(plan: &Plan, options: &RunOptions) -> String {
    let addrs: Vec<String> = plan.target.addrs.iter().map(ToString::to_string).collect();
    let rate = super::policy::peak_rate_per_s(plan)
        .map_or_else(|| "none (closed model)".to_string(), |r| format!("{r}/s"));
    let duration = plan.planned_end().map_or_else(
        || "unbounded".to_string(),
        |d| format!("{}s", d.as_secs_f64()),
    );
    format!(
        "target {} ({}), connections {}, peak rate {rate}, duration {duration}, threads {}, runtime cap: {}",
        plan.target.url,
        addrs.join(" "),
        plan.connections(),
        plan.shards(),
        options.cap
    )
}

/// The scenario and its files, from a multipart bundle or a plain body.
async fn read_submission(state: &AppState, request: Request) -> Result<Submission, ApiError> {
    let limit = state.policy.limits.max_body_bytes;
    let too_large = || {
        ApiError::TooLarge(format!(
            "the submission is over this daemon's limit of {limit} bytes (scenario and files together)"
        ))
    };
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    let submission = if multipart {
        let form = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        read_bundle(form).await.map_err(|e| match e {
            BundleError::Multipart(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            BundleError::Multipart(e) => ApiError::BadRequest(e.body_text()),
            BundleError::Invalid(m) => ApiError::BadRequest(m),
        })?
    } else {
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        Submission {
            text: String::from_utf8(body.to_vec())
                .map_err(|_| ApiError::BadRequest("the scenario is not UTF-8 text".into()))?,
            name: None,
            files: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    };
    Ok(submission)
}

/// The query's overrides, refused before anything is planned.
fn check_query(query: &SubmitQuery) -> Result<(), ApiError> {
    if let Some(d) = &query.duration {
        match engine::units::parse_duration(d) {
            Ok(d) if !d.is_zero() => {}
            Ok(_) => {
                return Err(ApiError::BadRequest(
                    "duration must be greater than zero".into(),
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(format!("duration: {e}"))),
        }
    }
    if let Some(s) = query.rate_scale {
        if !(s.is_finite() && s > 0.0) {
            return Err(ApiError::BadRequest(
                "rate_scale must be a number greater than zero".into(),
            ));
        }
    }
    if let Some(at) = query.start_at {
        crate::runner::check_start_at(at).map_err(ApiError::BadRequest)?;
    }
    Ok(())
}

/// Why a multipart bundle was refused.
enum BundleError {
    Multipart(MultipartError),
    Invalid(String),
}

impl From<MultipartError> for BundleError {
    fn from(e: MultipartError) -> Self {
        BundleError::Multipart(e)
    }
}

/// Reads a bundle: exactly one `scenario` part, any number of `file` parts named by `filename`.
async fn read_bundle(mut form: Multipart) -> Result<Submission, BundleError> {
    let mut text = None;
    let mut name = None;
    let mut files = BTreeMap::new();
    let mut env = None;
    while let Some(field) = form.next_field().await? {
        match field.name() {
            Some("scenario") => {
                if text.is_some() {
                    return Err(BundleError::Invalid("more than one `scenario` part".into()));
                }
                name = field.file_name().map(str::to_string);
                let bytes = field.bytes().await?;
                text =
                    Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        BundleError::Invalid("the scenario is not UTF-8 text".into())
                    })?);
            }
            Some("file") => {
                let Some(file) = field.file_name().map(str::to_string) else {
                    return Err(BundleError::Invalid(
                        "a `file` part needs a filename (the name the scenario uses)".into(),
                    ));
                };
                let bytes = field.bytes().await?;
                if files.insert(file.clone(), bytes.to_vec()).is_some() {
                    return Err(BundleError::Invalid(format!("`{file}` was sent twice")));
                }
            }
            Some("env") => {
                if env.is_some() {
                    return Err(BundleError::Invalid("more than one `env` part".into()));
                }
                let bytes = field.bytes().await?;
                env = Some(serde_json::from_slice(&bytes).map_err(|e| {
                    BundleError::Invalid(format!(
                        "the `env` part must be a JSON object of strings: {e}"
                    ))
                })?);
            }
            other => {
                return Err(BundleError::Invalid(format!(
                    "unexpected part {:?}: a bundle has a `scenario` part, `file` parts and an optional `env` part",
                    other.unwrap_or("")
                )))
            }
        }
    }
    let text =
        text.ok_or_else(|| BundleError::Invalid("the bundle has no `scenario` part".into()))?;
    Ok(Submission {
        text,
        name,
        files,
        env: env.unwrap_or_default(),
    })
}

/// Submission-time changes to a scenario, applied to the spec before planning.
struct Overrides {
    duration: Option<String>,
    rate_scale: Option<f64>,
    base_url: Option<String>,
    tasks: Vec<String>,
    env: BTreeMap<String, String>,
}

/// `rate × scale`, keeping the span so plan errors still point into the file. A value that does
/// not parse is left for the planner to report.
fn scale_count(value: &mut Spanned<CountSpec>, scale: f64) {
    let rate = match value.get_ref() {
        CountSpec::Int(i) => Some(*i as f64),
        CountSpec::Float(f) => Some(*f),
        CountSpec::Text(t) => engine::units::parse_scaled(t).ok(),
    };
    if let Some(r) = rate {
        *value = Spanned::new(value.span(), CountSpec::Float(r * scale));
    }
}

fn plan_scenario(
    name: String,
    text: String,
    files: BTreeMap<String, Vec<u8>>,
    overrides: Overrides,
    limits: SpecLimits,
) -> Result<Plan, ApiError> {
    // Files come only from what was submitted, never from the daemon's disk.
    let mut source = Source::in_memory(name, text, scenario::Files::Bundle(files.clone()));
    // Never the daemon's own environment: it may hold the daemon's secrets.
    source.env = Some(overrides.env);
    let mut spec =
        scenario::parse(&source).map_err(|e| ApiError::InvalidScenario(vec![e.to_string()]))?;
    if let Some(base) = &overrides.base_url {
        spec.target.url = scenario::unspanned(scenario::rebase(spec.target.url.get_ref(), base));
    }
    if let Some(d) = overrides.duration {
        spec.load.duration = Some(scenario::unspanned(d));
    }
    if let Some(scale) = overrides.rate_scale {
        let load = &mut spec.load;
        for v in [load.rate.as_mut(), load.start_rate.as_mut()]
            .into_iter()
            .flatten()
        {
            scale_count(v, scale);
        }
        for stage in load.stages.iter_mut().flatten() {
            scale_count(&mut stage.target, scale);
        }
    }
    // Before planning: planning itself builds what these limits bound.
    spec_limits::check(&spec, &files, &limits).map_err(ApiError::BadRequest)?;
    let mut plan = Plan::from_spec(&spec, &source).map_err(|errors| {
        ApiError::InvalidScenario(errors.0.iter().map(|e| e.to_string()).collect())
    })?;
    if !overrides.tasks.is_empty() {
        plan.select_tasks(&overrides.tasks)
            .map_err(ApiError::BadRequest)?;
    }
    Ok(plan)
}

/// A run as listed: its meta, how far it got, and the headline figures of its result.
fn view(run: &Run) -> Value {
    let mut v = serde_json::to_value(&run.meta).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("intervals".into(), run.intervals.len().into());
        let mut last = run.intervals.last().cloned().unwrap_or(Value::Null);
        // A merging client's histograms are for the event stream, not for listings.
        if let Some(l) = last.as_object_mut() {
            l.remove("stats");
        }
        o.insert("last_interval".into(), last);
        let summary = run.result.as_ref().map(|r| {
            let keys = [
                "requests",
                "rate_per_s",
                "errors_total",
                "latency_basis",
                "latency_us",
                "trustworthy",
                "thresholds_failed",
            ];
            let picked: serde_json::Map<String, Value> = keys
                .iter()
                .filter_map(|k| r.get(*k).map(|x| ((*k).to_string(), x.clone())))
                .collect();
            Value::Object(picked)
        });
        o.insert("summary".into(), summary.unwrap_or(Value::Null));
    }
    v
}

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let runs = state.runs.lock();
    // Newest first.
    let views: Vec<Value> = runs.values().rev().map(view).collect();
    Json(json!({ "runs": views }))
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let runs = state.runs.lock();
    let run = runs.get(&id).ok_or(ApiError::NotFound("no such run"))?;
    Ok(Json(view(run)))
}

pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let stopped = stop_run(&state, &id);
    match &stopped {
        Ok(_) => audit(&caller, format_args!("stop: run {id}")),
        Err(e) => audit(
            &caller,
            format_args!("refused stop of run {id}: {}", e.summary()),
        ),
    }
    stopped
}

fn stop_run(state: &AppState, id: &str) -> Result<(StatusCode, Json<Value>), ApiError> {
    match state.runs.stop(id) {
        Ok(meta) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": meta.id, "state": meta.state})),
        )),
        Err(StopError::NotFound) => Err(ApiError::NotFound("no such run")),
        Err(StopError::AlreadyOver(s)) => Err(ApiError::Conflict(format!(
            "the run is already {}",
            s.name()
        ))),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = match state.runs.delete(&id) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(DeleteError::NotFound) => Err(ApiError::NotFound("no such run")),
        Err(DeleteError::NotOver(s)) => Err(ApiError::Conflict(format!(
            "the run is {}: stop it first",
            s.name()
        ))),
        Err(DeleteError::Store(e)) => Err(ApiError::Internal(format!("run {id}: delete: {e}"))),
    };
    match &deleted {
        Ok(_) => audit(&caller, format_args!("delete: run {id}")),
        Err(e) => audit(
            &caller,
            format_args!("refused delete of run {id}: {}", e.summary()),
        ),
    }
    deleted
}

#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
}

pub async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (meta, intervals, result) = {
        let runs = state.runs.lock();
        let run = runs.get(&id).ok_or(ApiError::NotFound("no such run"))?;
        (run.meta.clone(), run.intervals.clone(), run.result.clone())
    };
    let format = query.format.as_deref().unwrap_or("json");
    let text = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    match format {
        // A finished run's report is exactly the engine's result (as `loadctl run --output json`).
        "json" => Ok(Json(result.unwrap_or_else(|| {
            json!({"id": meta.id, "state": meta.state, "error": meta.error, "target": meta.target, "intervals": intervals})
        }))
        .into_response()),
        "csv" => {
            let body = tokio::task::spawn_blocking(move || report::render_csv(&intervals))
                .await
                .map_err(|e| ApiError::Internal(format!("report task: {e}")))?;
            Ok(text("text/csv; charset=utf-8", body))
        }
        "hlog" => match state.runs.hlog(&id) {
            Ok(Some(log)) => Ok(text("text/plain; charset=utf-8", log)),
            Ok(None) => Err(ApiError::NotFound("the run has no interval log")),
            Err(e) => Err(ApiError::Internal(format!("run {id}: interval log: {e}"))),
        },
        other => match engine::report::Format::from_name(other) {
            Some(engine::report::Format::StepsCsv) if result.is_none() => Err(ApiError::NotFound(
                "the run has no result (it has not finished)",
            )),
            Some(f) => {
                // Rendering a long run's HTML takes a while: not on the API's only thread.
                let body = tokio::task::spawn_blocking(move || {
                    report::render_document(f, &meta, &intervals, result.as_ref())
                })
                .await
                .map_err(|e| ApiError::Internal(format!("report task: {e}")))?;
                Ok(text(f.content_type(), body))
            }
            None => Err(ApiError::BadRequest(format!(
                "unknown report format `{other}`; use json, csv, steps-csv, html, md or hlog"
            ))),
        },
    }
}

pub async fn histogram(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let runs = state.runs.lock();
    let run = runs.get(&id).ok_or(ApiError::NotFound("no such run"))?;
    let bytes = run.histogram_v2.clone().ok_or(ApiError::NotFound(
        "the run has no histogram (it has not finished)",
    ))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = {
        let runs = state.runs.lock();
        let runs_by_state = RunState::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    runs.values().filter(|r| r.meta.state == *s).count() as u64,
                )
            })
            .collect();
        let current = runs
            .values()
            .find(|r| r.meta.state == RunState::Running)
            .map(|r| CurrentRun {
                id: r.meta.id.clone(),
                last: r.intervals.last().cloned(),
                steps: r.meta.steps.clone(),
            });
        MetricsSnapshot {
            runs_by_state,
            current,
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        report::render_metrics(&snapshot),
    )
        .into_response()
}
