//! Members CRUD with search and pagination (the read-heavy / write-heavy / mixed journeys).
//!
//! Search is a linear scan with a case-insensitive substring match on name or email, over members in
//! id order: honest O(n) work a load test can see grow. It refuses indexes, sorting options and
//! cursors; `page` and `per_page` are the whole interface.

use std::collections::{BTreeMap, HashMap};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::caller::{lock, Caller};
use super::api::error::ApiError;
use super::api::input::{check_text, Id, JsonBody};

const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;

#[derive(Default)]
pub(super) struct Members {
    by_id: BTreeMap<u64, Member>,
    next_id: u64,
}

#[derive(Clone, Serialize)]
pub(super) struct Member {
    id: u64,
    name: String,
    email: String,
    /// Lowercased `name` and `email`, kept so a search allocates nothing per member.
    #[serde(skip)]
    folded: String,
}

impl Member {
    fn new(id: u64, name: String, email: String) -> Self {
        let folded = format!("{}\n{}", name.to_lowercase(), email.to_lowercase());
        Member {
            id,
            name,
            email,
            folded,
        }
    }
}

impl Members {
    fn create(&mut self, name: String, email: String) -> Member {
        self.next_id += 1;
        let member = Member::new(self.next_id, name, email);
        self.by_id.insert(member.id, member.clone());
        member
    }

    /// One page of the members matching `query` (lowercase; empty matches all), and their total.
    fn search(&self, query: &str, page: usize, per_page: usize) -> (Vec<Member>, usize) {
        let skip = (page - 1).saturating_mul(per_page);
        let mut items = Vec::new();
        let mut total = 0;
        for member in (self.by_id.values()).filter(|m| m.folded.contains(query)) {
            if total >= skip && items.len() < per_page {
                items.push(member.clone());
            }
            total += 1;
        }
        (items, total)
    }
}

#[derive(Deserialize)]
pub(super) struct NewMember {
    name: String,
    email: String,
}

/// `PUT` body: fields left out keep their value.
#[derive(Deserialize)]
pub(super) struct MemberUpdate {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Page {
    items: Vec<Member>,
    page: usize,
    per_page: usize,
    total: usize,
}

/// `?q=&page=&per_page=`, parsed by hand so that bad numbers get the API's 400.
fn page_params(params: &HashMap<String, String>) -> Result<(String, usize, usize), ApiError> {
    let number = |key: &str, default: usize, max: usize| match params.get(key) {
        None => Ok(default),
        Some(value) => match value.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("`{key}` must be 1 to {max}"))),
        },
    };
    let query = params
        .get("q")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let page = number("page", 1, usize::MAX)?;
    let per_page = number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    Ok((query, page, per_page))
}

pub(super) async fn create(
    caller: Caller,
    JsonBody(new): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    check_text("name", &new.name)?;
    check_text("email", &new.email)?;
    let member = lock(&caller.tenant.members).create(new.name, new.email);
    Ok((StatusCode::CREATED, Json(member)))
}

pub(super) async fn search(
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
    let (query, page, per_page) = page_params(&params)?;
    let (items, total) = lock(&caller.tenant.members).search(&query, page, per_page);
    Ok(Json(Page {
        items,
        page,
        per_page,
        total,
    }))
}

pub(super) async fn read(caller: Caller, Id(id): Id) -> Result<Json<Member>, ApiError> {
    let members = lock(&caller.tenant.members);
    let member = members.by_id.get(&id).ok_or(NO_SUCH_MEMBER)?;
    Ok(Json(member.clone()))
}

pub(super) async fn update(
    caller: Caller,
    Id(id): Id,
    JsonBody(update): JsonBody<MemberUpdate>,
) -> Result<Json<Member>, ApiError> {
    let name = update.name.as_deref();
    let email = update.email.as_deref();
    name.map_or(Ok(()), |name| check_text("name", name))?;
    email.map_or(Ok(()), |email| check_text("email", email))?;
    let mut members = lock(&caller.tenant.members);
    let member = members.by_id.get_mut(&id).ok_or(NO_SUCH_MEMBER)?;
    let name = update.name.unwrap_or_else(|| member.name.clone());
    let email = update.email.unwrap_or_else(|| member.email.clone());
    *member = Member::new(id, name, email);
    Ok(Json(member.clone()))
}

pub(super) async fn delete(caller: Caller, Id(id): Id) -> Result<StatusCode, ApiError> {
    let removed = lock(&caller.tenant.members).by_id.remove(&id);
    removed
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or(NO_SUCH_MEMBER)
}

const NO_SUCH_MEMBER: ApiError = ApiError::NotFound("no such member");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_pages_through_case_insensitive_matches() {
        let mut members = Members::default();
        for i in 1..=25 {
            let domain = if i % 5 == 0 {
                "Example.ORG"
            } else {
                "test.net"
            };
            members.create(format!("User {i}"), format!("u{i}@{domain}"));
        }
        let (items, total) = members.search("example.org", 1, 2);
        assert_eq!(total, 5);
        let ids: Vec<u64> = items.iter().map(|m| m.id).collect();
        assert_eq!(ids, [5, 10]);
        let (items, total) = members.search("example.org", 3, 2);
        assert_eq!((items.len(), total), (1, 5));
        assert_eq!(members.search("", 2, 20).0.len(), 5);
        let (items, total) = members.search("", 9, 20);
        assert!(items.is_empty());
        assert_eq!(total, 25);
    }

    #[test]
    fn page_params_default_and_bound() {
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (query, page, per_page) = page_params(&params(&[("q", "AbC")])).expect("valid");
        assert_eq!(
            (query.as_str(), page, per_page),
            ("abc", 1, DEFAULT_PER_PAGE)
        );
        assert!(page_params(&params(&[("per_page", "100")])).is_ok());
        assert!(page_params(&params(&[("per_page", "101")])).is_err());
        assert!(page_params(&params(&[("page", "0")])).is_err());
        assert!(page_params(&params(&[("page", "x")])).is_err());
    }
}
