//! Who is calling: the registry of tenants and of the tokens issued to their users, and the
//! `Caller` extractor that authenticates a request by its bearer token. It refuses token
//! expiry and revocation: this is a loopback test target, and tokens live as long as it does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::error::ApiError;
use crate::sandbox::tenants::{self, Tenant};

/// Random bytes in a token (rendered as twice as many hex digits).
const TOKEN_LEN: usize = 16;

/// Every tenant, and every token issued to any of them.
#[derive(Default)]
pub(in crate::sandbox) struct Api {
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    tokens: RwLock<HashMap<String, Caller>>,
}

impl Api {
    /// The tenant named `name`, created on first use; 400 if the name is not `[a-z0-9-]{1,32}`.
    pub(in crate::sandbox) fn tenant_or_create(&self, name: &str) -> Result<Arc<Tenant>, ApiError> {
        if !tenants::is_valid_name(name) {
            return Err(ApiError::BadRequest(
                "tenant names are 1 to 32 of [a-z0-9-]".into(),
            ));
        }
        if let Some(tenant) = self.tenant(name) {
            return Ok(tenant);
        }
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let tenant = tenants
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Tenant::new(name)));
        Ok(Arc::clone(tenant))
    }

    pub(in crate::sandbox) fn tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.get(name).cloned()
    }

    /// A new random token bound to `caller`'s tenant and user.
    pub(in crate::sandbox) fn issue_token(&self, caller: Caller) -> Result<String, ApiError> {
        let mut random = [0u8; TOKEN_LEN];
        getrandom::fill(&mut random)
            .map_err(|_| ApiError::Internal("no randomness for a token"))?;
        let token = hex::encode(random);
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(token.clone(), caller);
        Ok(token)
    }

    fn caller(&self, token: &str) -> Option<Caller> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens.get(token).cloned()
    }
}

/// Who a bearer token speaks for. As an extractor it is the authentication: 401 without a known
/// token, 403 when the token belongs to a tenant other than the path's `{t}`.
#[derive(Clone)]
pub(in crate::sandbox) struct Caller {
    pub(in crate::sandbox) tenant: Arc<Tenant>,
    pub(in crate::sandbox) user_id: u64,
    pub(in crate::sandbox) username: Arc<str>,
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let caller = api.caller(token).ok_or(ApiError::Unauthorized)?;
        let params = RawPathParams::from_request_parts(parts, api)
            .await
            .map_err(|_| ApiError::Forbidden)?;
        let tenant = params.iter().find(|(key, _)| *key == "t").map(|(_, t)| t);
        if tenant != Some(caller.tenant.name()) {
            return Err(ApiError::Forbidden);
        }
        Ok(caller)
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Locks a tenant's state; a handler that panicked mid-update cannot leave it worse than torn.
pub(in crate::sandbox) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_needs_the_scheme_and_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("value"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "bearer  abc ".parse().expect("value"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("value"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().expect("value"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn tokens_are_random_and_bound_to_their_caller() {
        let api = Api::default();
        let tenant = api.tenant_or_create("acme").expect("valid name");
        let caller = Caller {
            tenant,
            user_id: 7,
            username: "ann".into(),
        };
        let first = api.issue_token(caller.clone()).expect("token");
        let second = api.issue_token(caller).expect("token");
        assert_ne!(first, second);
        assert_eq!(first.len(), 2 * TOKEN_LEN);
        let bound = api.caller(&first).expect("known token");
        assert_eq!((bound.tenant.name(), bound.user_id), ("acme", 7));
        assert!(api.caller("nope").is_none());
        assert!(api.tenant_or_create("Not_Valid").is_err());
    }
}
