//! The request/response routes: submit, list, status, stop, report, histogram, metrics, health.
//!
//! Handlers copy what they need out of the registry under its lock and render after releasing
//! it. Parsing and planning a scenario (which may resolve a host name) runs on the blocking pool.
//! They refuse a scenario that reads local files (`body_file`): a remote client must not make
//! the daemon send its own files; bundles are future work.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::spec::{self, CountSpec, Source};
use engine::Plan;
use serde::Deserialize;
use serde_json::{json, Value};
use toml::Spanned;

use super::policy::Refusal;
use super::report::{self, MetricsSnapshot};
use super::{ApiError, AppState};
use crate::runner::{Run, StopError, SubmitError};
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
}

fn yes() -> bool {
    true
}

pub async fn submit(
    State(state): State<AppState>,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "scenario is over this daemon's limit of {} bytes",
                state.policy.limits.max_body_bytes
            ))
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the scenario is not UTF-8 text".into()))?;
    // Only a file name: it labels messages and is never opened.
    let name = query
        .name
        .as_deref()
        .and_then(|n| std::path::Path::new(n).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("scenario.toml")
        .to_string();
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
    let scenario = text.clone();
    let overrides = Overrides {
        duration: query.duration.clone(),
        rate_scale: query.rate_scale,
    };
    let planned = tokio::task::spawn_blocking(move || plan_scenario(name, text, overrides))
        .await
        .map_err(|e| ApiError::Internal(format!("planning task: {e}")))??;
    state.policy.check(&planned).map_err(|r| match r {
        Refusal::Target(m) => ApiError::Forbidden(m),
        Refusal::Limit(m) => ApiError::BadRequest(m),
    })?;
    let meta = state
        .runs
        .submit(planned, &scenario, query.queue)
        .map_err(|e| match e {
            SubmitError::Busy => ApiError::Conflict(e.to_string()),
            SubmitError::Store(io) => ApiError::Internal(format!("store: {io}")),
        })?;
    let location = format!("/v1/runs/{}", meta.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({"id": meta.id, "state": meta.state})),
    )
        .into_response())
}

/// Submission-time changes to a scenario, applied to the spec before planning.
struct Overrides {
    duration: Option<String>,
    rate_scale: Option<f64>,
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

fn plan_scenario(name: String, text: String, overrides: Overrides) -> Result<Plan, ApiError> {
    // Files come only from what was submitted (nothing yet), never from the daemon's disk.
    let source = Source::in_memory(name, text, spec::Files::Bundle(Default::default()));
    let mut spec =
        spec::parse(&source).map_err(|e| ApiError::InvalidScenario(vec![e.to_string()]))?;
    if let Some(d) = overrides.duration {
        spec.load.duration = Some(spec::unspanned(d));
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
    if let Some(f) = &spec.request.body_file {
        return Err(ApiError::InvalidScenario(vec![format!(
            "{}: body_file is not supported by loadd yet (files do not travel with the scenario); put the body inline with `body = ...`",
            source.locate(&f.span())
        )]));
    }
    Plan::from_spec(&spec, &source).map_err(|errors| {
        ApiError::InvalidScenario(errors.0.iter().map(|e| e.to_string()).collect())
    })
}

/// A run as listed: its meta, how far it got, and the headline figures of its result.
fn view(run: &Run) -> Value {
    let mut v = serde_json::to_value(&run.meta).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("intervals".into(), run.intervals.len().into());
        o.insert(
            "last_interval".into(),
            run.intervals.last().cloned().unwrap_or(Value::Null),
        );
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
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match state.runs.stop(&id) {
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
    match query.format.as_deref().unwrap_or("json") {
        // A finished run's report is exactly the engine's result (as `loadctl run --output json`).
        "json" => Ok(Json(result.unwrap_or_else(|| {
            json!({"id": meta.id, "state": meta.state, "error": meta.error, "target": meta.target, "intervals": intervals})
        }))
        .into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report::render_csv(&intervals),
        )
            .into_response()),
        "html" => Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report::render_html(&meta, &intervals, result.as_ref()),
        )
            .into_response()),
        other => Err(ApiError::BadRequest(format!(
            "unknown report format `{other}`; use json, csv or html"
        ))),
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
            .map(|r| (r.meta.id.clone(), r.intervals.last().cloned()));
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
