//! What lies under a connection: TLS over monoio sockets and source-address binding.
//! No protocol and no pacing here.

pub mod source;
pub mod tls;
