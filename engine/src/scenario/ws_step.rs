//! The WebSocket actions a journey step may take instead of an HTTP request (`ws_connect`,
//! `ws_send`, `ws_expect`, `ws_close`), as written.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `ws_send`: exactly one of `text`, `binary` or `json`; each is templated.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSendSpec {
    pub text: Option<String>,
    /// Sent as a binary message: the rendered template's bytes.
    pub binary: Option<String>,
    /// A TOML table sent as JSON text; string values are templated.
    pub json: Option<toml::Value>,
    /// In `ws_listen`'s `send`: one message every this long (`"12s"`), from the step's start.
    pub every: Option<String>,
    /// In `ws_listen`'s `send`: messages per second, instead of `every`.
    pub rate: Option<f64>,
}

/// `ws_listen`: receive for a while, timing each message; optionally send a paced stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsListenSpec {
    /// How long to listen (`"30m"`).
    #[serde(rename = "for")]
    pub duration: String,
    /// A server timestamp in each message: its latency is the receive time minus this.
    pub latency_from: Option<LatencyFromSpec>,
    /// Messages sent `every` so long while listening (a chat member's posts).
    pub send: Option<WsSendSpec>,
    /// Deliberate churn: close and reopen the socket `after` this long (± `jitter`), again
    /// and again while the listen lasts.
    pub reconnect: Option<ReconnectSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSpec {
    pub after: String,
    pub jitter: Option<String>,
}

/// Where a message's timestamp is: a JSON pointer, in `unit` ("ms" by default, "us", "s")
/// since the Unix epoch.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyFromSpec {
    pub json: String,
    pub unit: Option<String>,
}

/// `ws_expect`: what a message must be to match; the others are counted and skipped.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsExpectSpec {
    /// JSON pointer → expected value (`{ "/type" = "joined" }`).
    pub json: Option<BTreeMap<String, toml::Value>>,
    /// Text the message must contain, templated (`"{{msg_id}}"`).
    pub text_contains: Option<String>,
    /// A regex the message must match.
    pub regex: Option<String>,
    /// How long to wait for the matches (default: the step's or the run's timeout).
    pub timeout: Option<String>,
    /// Matching messages to wait for (default 1); each is one response of the step.
    pub count: Option<u64>,
}

/// `ws_close`: the close code (default 1000) and reason to send.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsCloseSpec {
    pub code: Option<u16>,
    pub reason: Option<String>,
}
