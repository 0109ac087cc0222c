//! What every real HTTP client does beside the protocol, for both HTTP/1.1 and HTTP/2: decode
//! compressed bodies (`decode`), keep a cookie jar per virtual user (`cookies`) and follow
//! redirects (`redirect`).
//!
//! Each works on bytes (a response head, a body, a request rendered as HTTP/1.1) and knows
//! nothing of sockets or shards; `shard::conn` calls them around an exchange.

pub mod cookies;
pub mod decode;
pub mod redirect;
