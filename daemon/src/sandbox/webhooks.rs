//! A webhook receiver that verifies Stripe-style signatures, so a scenario that signs its
//! requests can be checked end to end: `Webhook-Signature: t=UNIX_SECONDS,v1=HEX` where HEX is
//! HMAC-SHA256, keyed by `SECRET`, of `t` + "." + the raw body.
//!
//! A wrong or missing signature, or a timestamp more than five minutes away, is refused with
//! 401 and counted; `GET` tells how many were accepted and refused. It refuses to keep bodies.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hmac::{KeyInit as _, Mac as _};
use serde::Serialize;

use super::api::caller::{lock, Api};
use super::api::error::ApiError;

/// The signing secret scenarios use (`env("WEBHOOK_SECRET", "whsec_loadd_sandbox")`).
pub(super) const SECRET: &[u8] = b"whsec_loadd_sandbox";
/// Most a signature's timestamp may differ from now (replay protection).
const TOLERANCE_S: u64 = 300;

#[derive(Default)]
pub(super) struct Webhooks {
    received: u64,
    refused: u64,
}

#[derive(Serialize)]
pub(super) struct Counts {
    received: u64,
    refused: u64,
}

pub(super) async fn receive(
    State(api): State<Arc<Api>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Counts>, ApiError> {
    let tenant = api.tenant_or_create(&tenant)?;
    let signature = headers
        .get("webhook-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut hooks = lock(&tenant.webhooks);
    if !verifies(signature, &body, now_s()) {
        hooks.refused += 1;
        return Err(ApiError::BadSignature);
    }
    hooks.received += 1;
    Ok(Json(Counts {
        received: hooks.received,
        refused: hooks.refused,
    }))
}

pub(super) async fn counts(
    State(api): State<Arc<Api>>,
    Path(tenant): Path<String>,
) -> (StatusCode, Json<Counts>) {
    let (received, refused) = api.tenant(&tenant).map_or((0, 0), |t| {
        let hooks = lock(&t.webhooks);
        (hooks.received, hooks.refused)
    });
    (StatusCode::OK, Json(Counts { received, refused }))
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when `header` (`t=…,v1=…`) signs `body` with `SECRET` at a time close to `now`.
fn verifies(header: &str, body: &[u8], now: u64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(at) = t.parse::<u64>() else {
        return false;
    };
    if at.abs_diff(now) > TOLERANCE_S {
        return false;
    }
    let Ok(given) = hex::decode(v1) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant-time, as a real receiver compares.
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(t: u64, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_only_a_fresh_matching_signature() {
        let now = 1_800_000_000;
        assert!(verifies(&sign(now, b"{}"), b"{}", now));
        assert!(verifies(&sign(now - 10, b"{}"), b"{}", now));
        assert!(!verifies(&sign(now, b"{}"), b"{ }", now));
        assert!(!verifies(&sign(now - 301, b"{}"), b"{}", now));
        assert!(!verifies("t=1,v1=zz", b"{}", 1));
        assert!(!verifies("", b"{}", now));
    }
}
