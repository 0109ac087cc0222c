//! Sans-io protocol codecs: bytes in, events out. Nothing here imports monoio or sockets.

pub mod h2;
pub mod http1;
pub mod ws;
