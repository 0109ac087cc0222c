//! The target and what every scenario shares about reaching it: the URL (parsed and resolved
//! once, so no shard ever does DNS), the `[request]` defaults (headers, method, timeouts) and
//! `[tls]` (its files read and its client config built once, to check it).
//!
//! It checks and resolves; it never connects, and it leaves each scenario's requests to
//! `scenarios` and `journey`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use toml::Spanned;

use crate::net::tls;
use crate::plan::checker::Checker;
use crate::proto::http1;
use crate::scenario::{Files, ScenarioSpec, Source};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolved target.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL as the user gave it, normalized.
    pub url: String,
    pub addrs: Vec<SocketAddr>,
    /// `https://` or `wss://`
    pub tls: bool,
    /// `ws://` or `wss://`: scenarios hold WebSockets instead of sending requests.
    pub websocket: bool,
    /// The host as written (a name or an address), for SNI.
    pub host: String,
}

/// TLS for an `https://` target, validated (the config was built once to check it).
#[derive(Clone, Debug)]
pub struct TlsPlan {
    pub options: tls::TlsOptions,
    pub server_name: tls::ServerName<'static>,
}

/// A resolved target with what requests to it are built from.
pub(crate) struct CheckedTarget {
    pub target: Target,
    /// The URL's path and query (`/` at least).
    pub path_and_query: String,
    /// `host[:port]` as the `Host` header says it.
    pub host_header: String,
}

/// The `[request]` settings every scenario shares.
pub(crate) struct RequestDefaults {
    /// Extra headers, validated, in order.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// `[request]`: headers, the method's spelling, timeouts.
pub(crate) fn check_request(c: &mut Checker<'_>, spec: &ScenarioSpec) -> RequestDefaults {
    let headers = check_headers(c, &spec.request.headers);
    if let Some(m) = &spec.request.method {
        if http1::validate_header(&m.get_ref().to_ascii_uppercase(), "").is_err() {
            c.error(
                &m.span(),
                format!("`{}` is not a valid method", m.get_ref()),
            );
        }
    }
    let timeout = spec
        .request
        .timeout
        .as_ref()
        .and_then(|t| c.duration(t, "timeout"))
        .unwrap_or(DEFAULT_TIMEOUT);
    let connect_timeout = spec
        .request
        .connect_timeout
        .as_ref()
        .and_then(|t| c.duration(t, "connect_timeout"))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    RequestDefaults {
        headers,
        timeout,
        connect_timeout,
    }
}

/// The target URL, parsed and resolved.
pub(crate) fn check_target(c: &mut Checker<'_>, url: &Spanned<String>) -> Option<CheckedTarget> {
    let span = url.span();
    let text = url.get_ref().trim();
    let parsed = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            c.error(
                &span,
                format!("`{text}` is not a valid URL ({e}); use http://host:port/path"),
            );
            return None;
        }
    };
    match parsed.scheme() {
        "http" => {}
        "https" | "ws" | "wss" => {}
        other => {
            c.error(
                &span,
                format!("unsupported scheme `{other}://`; use http://, https://, ws:// or wss://"),
            );
            return None;
        }
    }
    let Some(host) = parsed.host_str() else {
        c.error(&span, format!("`{text}` has no host"));
        return None;
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    // Resolve here, once: shards connect to addresses and never block on DNS.
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match (lookup_host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            c.error(&span, format!("cannot resolve host `{host}`: {e}"));
            return None;
        }
    };
    if addrs.is_empty() {
        c.error(&span, format!("host `{host}` resolved to no address"));
        return None;
    }
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut path_and_query = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Some(CheckedTarget {
        target: Target {
            url: parsed.to_string(),
            addrs,
            tls: matches!(parsed.scheme(), "https" | "wss"),
            websocket: matches!(parsed.scheme(), "ws" | "wss"),
            host: lookup_host.to_string(),
        },
        path_and_query,
        host_header,
    })
}

fn check_headers(c: &mut Checker<'_>, headers: &[Spanned<String>]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let Some((name, value)) = h.get_ref().split_once(':') else {
            c.error(
                &h.span(),
                format!("header `{}` must be written \"Name: value\"", h.get_ref()),
            );
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        match http1::validate_header(name, value) {
            Ok(()) => out.push((name.to_string(), value.to_string())),
            Err(why) => c.error(&h.span(), format!("header `{name}`: {why}")),
        }
    }
    out
}

/// `[tls]` for an `https://` target: files found and parsed, the config built once.
pub(crate) fn check_tls(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    source: &Source,
    target: &Target,
) -> Option<TlsPlan> {
    let given = spec.tls.clone().unwrap_or_default();
    let first_span = [
        &given.ca_file,
        &given.client_cert,
        &given.client_key,
        &given.server_name,
    ]
    .into_iter()
    .flatten()
    .map(Spanned::span)
    .next();
    if !target.tls {
        if let Some(span) = first_span {
            c.error(&span, "[tls] applies to https:// targets");
        }
        return None;
    }
    let mut path = |f: &Option<Spanned<String>>| -> Option<std::path::PathBuf> {
        let f = f.as_ref()?;
        if let Files::Bundle(_) = source.files {
            c.error(
                &f.span(),
                "TLS files are read from the local disk: use loadctl run (submitting them to a daemon is not supported yet)",
            );
            return None;
        }
        Some(source.base_dir.join(f.get_ref()))
    };
    let options = tls::TlsOptions {
        ca_file: path(&given.ca_file),
        client_cert: path(&given.client_cert),
        client_key: path(&given.client_key),
        insecure_skip_verify: given.insecure_skip_verify,
        resumption: given.resumption.unwrap_or(true),
        server_name: given.server_name.as_ref().map(|s| s.get_ref().clone()),
        alpn: tls::Alpn::Http11,
    };
    let span = first_span.unwrap_or_else(|| spec.target.url.span());
    if let Err(e) = tls::client_config(&options) {
        c.error(&span, format!("tls: {e}"));
        return None;
    }
    match tls::server_name(&options, &target.host) {
        Ok(server_name) => Some(TlsPlan {
            options,
            server_name,
        }),
        Err(e) => {
            c.error(&span, format!("tls: {e}"));
            None
        }
    }
}

/// Most streams per HTTP/2 connection a run may ask for: each is a virtual user with its own
/// buffers, and servers rarely allow more (nginx: 128, h2o: 100).
pub(crate) const MAX_STREAMS: u64 = 1024;

/// `[target] http` and `streams`: `Some(streams)` for HTTP/2, `None` for HTTP/1.1.
pub(crate) fn check_http(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    target: Option<&Target>,
) -> Option<u32> {
    let http2 = match &spec.target.http {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "1.1" | "1" => false,
            "2" => true,
            "auto" => {
                c.error(
                    &v.span(),
                    "http = \"auto\" (ALPN choosing per connection) is not supported yet; say \"2\" or \"1.1\"",
                );
                false
            }
            other => {
                c.error(
                    &v.span(),
                    format!("http must be \"1.1\" or \"2\", not `{other}`"),
                );
                false
            }
        },
    };
    let streams = match &spec.target.streams {
        None => 1,
        Some(s) if !http2 => {
            c.error(
                &s.span(),
                "streams applies to HTTP/2: add http = \"2\" to [target] (or --http2)",
            );
            1
        }
        Some(s) if !(1..=MAX_STREAMS).contains(s.get_ref()) => {
            c.error(
                &s.span(),
                format!("streams must be between 1 and {MAX_STREAMS}"),
            );
            1
        }
        Some(s) => *s.get_ref() as u32,
    };
    if !http2 {
        return None;
    }
    let span = spec.target.http.as_ref().map(Spanned::span);
    match target {
        Some(t) if t.websocket => {
            if let Some(span) = span {
                c.error(
                    &span,
                    "http = \"2\" applies to http:// and https:// targets, not WebSockets",
                );
            }
            None
        }
        _ => Some(streams),
    }
}
