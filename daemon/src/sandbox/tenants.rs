//! Tenants and their users: `POST /api/t/{t}/register` and `POST /api/t/{t}/login`.
//!
//! A `Tenant` holds one lock per area of state, so tenants never contend with each other and areas
//! of one tenant rarely do. Passwords are kept as sent: this is a loopback test target, and it
//! refuses to pretend otherwise (no hashing, no lockout, no token expiry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::caller::{lock, Api, Caller};
use super::api::error::ApiError;
use super::api::input::{check_text, JsonBody};
use super::events::Events;
use super::members::Members;
use super::quiz::Quiz;
use super::uploads::Uploads;
use super::webhooks::Webhooks;

/// Longest tenant name, in bytes.
const MAX_TENANT_NAME_LEN: usize = 32;

/// One tenant's state, one lock per area.
pub(super) struct Tenant {
    name: String,
    users: Mutex<Users>,
    pub(super) quiz: Mutex<Quiz>,
    pub(super) members: Mutex<Members>,
    pub(super) uploads: Mutex<Uploads>,
    pub(super) events: Mutex<Events>,
    pub(super) webhooks: Mutex<Webhooks>,
}

impl Tenant {
    pub(super) fn new(name: &str) -> Self {
        Tenant {
            name: name.to_owned(),
            users: Mutex::default(),
            quiz: Mutex::default(),
            members: Mutex::default(),
            uploads: Mutex::default(),
            events: Mutex::default(),
            webhooks: Mutex::default(),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// `[a-z0-9-]{1,32}`.
pub(super) fn is_valid_name(name: &str) -> bool {
    (1..=MAX_TENANT_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Default)]
struct Users {
    by_name: HashMap<Arc<str>, User>,
    next_id: u64,
}

struct User {
    id: u64,
    password: String,
}

impl Users {
    /// The new user's id, or 409 if the name is taken.
    fn register(&mut self, username: &str, password: &str) -> Result<(u64, Arc<str>), ApiError> {
        if self.by_name.contains_key(username) {
            return Err(ApiError::Conflict("username already registered"));
        }
        self.next_id += 1;
        let id = self.next_id;
        let username: Arc<str> = username.into();
        let password = password.to_owned();
        self.by_name
            .insert(Arc::clone(&username), User { id, password });
        Ok((id, username))
    }

    /// The user's id and name if the password matches.
    fn login(&self, username: &str, password: &str) -> Option<(u64, Arc<str>)> {
        let (name, user) = self.by_name.get_key_value(username)?;
        (user.password == password).then(|| (user.id, Arc::clone(name)))
    }
}

#[derive(Deserialize)]
pub(super) struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    fn check(&self) -> Result<(), ApiError> {
        check_text("username", &self.username)?;
        check_text("password", &self.password)
    }
}

#[derive(Serialize)]
pub(super) struct Registered {
    user_id: u64,
    token: String,
}

pub(super) async fn register(
    State(api): State<Arc<Api>>,
    Path(tenant): Path<String>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    credentials.check()?;
    let tenant = api.tenant_or_create(&tenant)?;
    let (user_id, username) =
        lock(&tenant.users).register(&credentials.username, &credentials.password)?;
    let token = api.issue_token(Caller {
        tenant,
        user_id,
        username,
    })?;
    Ok((StatusCode::CREATED, Json(Registered { user_id, token })))
}

/// `login` answers with the same shape as `register`, with a fresh token each time.
pub(super) async fn login(
    State(api): State<Arc<Api>>,
    Path(tenant): Path<String>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<Registered>, ApiError> {
    credentials.check()?;
    // An unknown tenant has no users, so it is a wrong login, not a missing resource.
    let tenant = api.tenant(&tenant).ok_or(ApiError::WrongLogin)?;
    let (user_id, username) = lock(&tenant.users)
        .login(&credentials.username, &credentials.password)
        .ok_or(ApiError::WrongLogin)?;
    let token = api.issue_token(Caller {
        tenant,
        user_id,
        username,
    })?;
    Ok(Json(Registered { user_id, token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_short_lowercase_words() {
        assert!(is_valid_name("acme-1"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name("Acme"));
        assert!(!is_valid_name("a_b"));
    }

    #[test]
    fn users_register_once_and_log_in_with_their_password() {
        let mut users = Users::default();
        let (ann, _) = users.register("ann", "pw").expect("new user");
        let (bob, _) = users.register("bob", "pw").expect("new user");
        assert_ne!(ann, bob);
        assert!(matches!(
            users.register("ann", "other"),
            Err(ApiError::Conflict(_))
        ));
        assert_eq!(users.login("ann", "pw").map(|(id, _)| id), Some(ann));
        assert!(users.login("ann", "wrong").is_none());
        assert!(users.login("nobody", "pw").is_none());
    }
}
