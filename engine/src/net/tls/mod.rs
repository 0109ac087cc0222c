//! TLS for the engine's connections: rustls 0.23 with `ring` chosen explicitly, driven through
//! its unbuffered API over monoio sockets.
//!
//! `TlsOptions` (plain data in the plan) → `client_config` once per shard (the resumption
//! store lives there) → `connect` per connection → a `TlsStream`, or a `Stream` that is plain
//! or TLS, read and written through monoio's rent traits like a `TcpStream`. Failures carry a
//! class (`TlsError::kind_name`) for the connection code's counters.
//!
//! It refuses server-side TLS, 0-RTT early data and renegotiation: a load generator's client
//! needs none of them.

mod config;
mod error;
mod socket;
mod split;
mod stream;
mod write_buf;

pub use config::{client_config, server_name, Alpn, TlsConfigError, TlsOptions};
pub use error::{tls_error, TlsError};
pub use socket::Stream;
pub use split::{split, TlsReader, TlsWriter};
pub use stream::{connect, is_cancelled, TlsStream};
// The rustls this module is built on, for its types (`ProtocolVersion`, `AlertDescription`).
pub use rustls;
pub use rustls::pki_types::ServerName;
pub use rustls::ClientConfig;
