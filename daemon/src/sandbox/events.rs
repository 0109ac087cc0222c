//! Events, RSVPs and topic subscriptions (the API mix and the RSVP flash crowd).
//!
//! RSVPs and subscriptions are idempotent per user: the first call creates (201), a repeat changes
//! nothing and says so (200), so a retried request never inflates a count. An event made with a
//! `capacity` refuses new RSVPs past it with 409. It refuses cancellations and notifications.

use std::collections::{BTreeMap, HashSet};

use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::caller::{lock, Caller};
use super::api::error::ApiError;
use super::api::input::{check_text, Id, JsonBody};

pub(super) struct Events {
    by_id: BTreeMap<u64, Event>,
    /// Each user's topics, with the subscription id given on the first subscribe.
    subscriptions: BTreeMap<u64, BTreeMap<String, u64>>,
    next_subscription_id: u64,
}

/// Every tenant starts with event 1, "launch", so a flash crowd has one shared event to RSVP
/// to without a setup step.
impl Default for Events {
    fn default() -> Self {
        let launch = Event {
            name: "launch".into(),
            rsvps: HashSet::new(),
            capacity: None,
        };
        Self {
            by_id: BTreeMap::from([(1, launch)]),
            subscriptions: BTreeMap::new(),
            next_subscription_id: 0,
        }
    }
}

struct Event {
    name: String,
    /// User ids.
    rsvps: HashSet<u64>,
    /// Most RSVPs it takes (none: unlimited).
    capacity: Option<usize>,
}

impl Events {
    fn view(&self, event_id: u64) -> Result<EventView, ApiError> {
        let event = self.by_id.get(&event_id).ok_or(NO_SUCH_EVENT)?;
        Ok(EventView {
            event_id,
            name: event.name.clone(),
            rsvps: event.rsvps.len(),
            capacity: event.capacity,
        })
    }

    /// Whether the user's RSVP is new, and the event's count after it.
    fn rsvp(&mut self, event_id: u64, user_id: u64) -> Result<(bool, usize), ApiError> {
        let event = self.by_id.get_mut(&event_id).ok_or(NO_SUCH_EVENT)?;
        let full = event.capacity.is_some_and(|c| event.rsvps.len() >= c);
        if full && !event.rsvps.contains(&user_id) {
            return Err(ApiError::Conflict("the event is full"));
        }
        let new = event.rsvps.insert(user_id);
        Ok((new, event.rsvps.len()))
    }

    /// Whether the subscription is new, and its id.
    fn subscribe(&mut self, user_id: u64, topic: &str) -> (bool, u64) {
        let topics = self.subscriptions.entry(user_id).or_default();
        if let Some(&id) = topics.get(topic) {
            return (false, id);
        }
        self.next_subscription_id += 1;
        topics.insert(topic.to_owned(), self.next_subscription_id);
        (true, self.next_subscription_id)
    }
}

const NO_SUCH_EVENT: ApiError = ApiError::NotFound("no such event");

/// 201 for what a call created, 200 for what already existed.
fn created_or_ok(new: bool) -> StatusCode {
    if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

#[derive(Deserialize)]
pub(super) struct NewEvent {
    name: String,
    #[serde(default)]
    capacity: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct EventView {
    event_id: u64,
    name: String,
    rsvps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct Rsvped {
    event_id: u64,
    rsvps: usize,
}

#[derive(Deserialize)]
pub(super) struct NewSubscription {
    topic: String,
}

#[derive(Serialize)]
pub(super) struct Subscription {
    subscription_id: u64,
    topic: String,
}

#[derive(Serialize)]
pub(super) struct SubscriptionList {
    subscriptions: Vec<Subscription>,
}

pub(super) async fn create(
    caller: Caller,
    JsonBody(new): JsonBody<NewEvent>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    check_text("name", &new.name)?;
    let mut events = lock(&caller.tenant.events);
    let event_id = events.by_id.len() as u64 + 1;
    let event = Event {
        name: new.name,
        rsvps: HashSet::new(),
        capacity: new.capacity,
    };
    events.by_id.insert(event_id, event);
    Ok((StatusCode::CREATED, Json(events.view(event_id)?)))
}

pub(super) async fn read(caller: Caller, Id(event_id): Id) -> Result<Json<EventView>, ApiError> {
    Ok(Json(lock(&caller.tenant.events).view(event_id)?))
}

pub(super) async fn rsvp(
    caller: Caller,
    Id(event_id): Id,
) -> Result<(StatusCode, Json<Rsvped>), ApiError> {
    let (new, rsvps) = lock(&caller.tenant.events).rsvp(event_id, caller.user_id)?;
    Ok((created_or_ok(new), Json(Rsvped { event_id, rsvps })))
}

pub(super) async fn subscribe(
    caller: Caller,
    JsonBody(new): JsonBody<NewSubscription>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    check_text("topic", &new.topic)?;
    let (new_id, subscription_id) =
        lock(&caller.tenant.events).subscribe(caller.user_id, &new.topic);
    let subscription = Subscription {
        subscription_id,
        topic: new.topic,
    };
    Ok((created_or_ok(new_id), Json(subscription)))
}

/// The caller's own subscriptions, by topic.
pub(super) async fn subscriptions(caller: Caller) -> Json<SubscriptionList> {
    let events = lock(&caller.tenant.events);
    let topics = events.subscriptions.get(&caller.user_id);
    let subscriptions = (topics.into_iter().flatten())
        .map(|(topic, &subscription_id)| Subscription {
            subscription_id,
            topic: topic.clone(),
        })
        .collect();
    Json(SubscriptionList { subscriptions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsvps_and_subscriptions_count_each_user_once() {
        let mut events = Events::default();
        let event = Event {
            name: "launch".into(),
            rsvps: HashSet::new(),
            capacity: None,
        };
        events.by_id.insert(1, event);
        assert_eq!(events.rsvp(1, 10).expect("exists"), (true, 1));
        assert_eq!(events.rsvp(1, 10).expect("exists"), (false, 1));
        assert_eq!(events.rsvp(1, 11).expect("exists"), (true, 2));
        assert!(events.rsvp(2, 10).is_err());
        assert_eq!(events.subscribe(10, "news"), (true, 1));
        assert_eq!(events.subscribe(10, "news"), (false, 1));
        assert_eq!(events.subscribe(11, "news"), (true, 2));
    }

    #[test]
    fn a_full_event_refuses_new_rsvps_but_not_repeats() {
        let mut events = Events::default();
        let event = Event {
            name: "small".into(),
            rsvps: HashSet::new(),
            capacity: Some(2),
        };
        events.by_id.insert(2, event);
        assert_eq!(events.rsvp(2, 1).expect("room"), (true, 1));
        assert_eq!(events.rsvp(2, 2).expect("room"), (true, 2));
        assert!(matches!(events.rsvp(2, 3), Err(ApiError::Conflict(_))));
        assert_eq!(events.rsvp(2, 1).expect("a repeat"), (false, 2));
    }
}
