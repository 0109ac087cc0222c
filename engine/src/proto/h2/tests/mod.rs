//! Tests of the HTTP/2 codec: frames alone (`frame`), and a `Connection` driven by a scripted
//! server built from the same frame encoders and a real HPACK encoder (`conn`, `flow`).

mod conn;
mod flow;
mod frame;
mod hpack;

use loona_hpack::Encoder;

use super::frame::{decode_frame, encode_frame, flag, kind, Decoded, Frame};
use super::{
    Connection, Event, Fields, HeaderList, Request, Settings, StreamId, MAX_MAX_FRAME_SIZE, PREFACE,
};

/// An event with its bytes copied out, so runs can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Head(u32, u16, Vec<(String, String)>),
    Data(u32, Vec<u8>),
    Trailers(u32, Vec<(String, String)>),
    End(u32),
    Reset(u32, u32),
    Refused(u32),
    Failed(u32, super::H2Error),
    GoAway(u32, u32),
    PingAck([u8; 8]),
    Settings,
}

fn own_fields(list: &HeaderList, range: core::ops::Range<usize>) -> Vec<(String, String)> {
    list.iter(range)
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Copies the last call's events out.
pub fn seen(conn: &Connection, input: &[u8]) -> Vec<Seen> {
    conn.events()
        .iter()
        .map(|e| match e {
            Event::Head {
                stream,
                status,
                fields,
            } => Seen::Head(stream.0, *status, own_fields(conn.fields(), fields.clone())),
            Event::Data { stream, data } => Seen::Data(stream.0, input[data.clone()].to_vec()),
            Event::Trailers { stream, fields } => {
                Seen::Trailers(stream.0, own_fields(conn.fields(), fields.clone()))
            }
            Event::End { stream } => Seen::End(stream.0),
            Event::Reset { stream, code } => Seen::Reset(stream.0, *code),
            Event::Refused { stream } => Seen::Refused(stream.0),
            Event::Failed { stream, error } => Seen::Failed(stream.0, *error),
            Event::GoAway {
                last_stream_id,
                code,
            } => Seen::GoAway(*last_stream_id, *code),
            Event::PingAck { payload } => Seen::PingAck(*payload),
            Event::Settings => Seen::Settings,
        })
        .collect()
}

/// Feeds `input` like a connection would: whole frames consumed, the rest kept for the next
/// piece. Returns every event (non-Settings) and the error if any.
pub fn feed(
    conn: &mut Connection,
    pieces: &[&[u8]],
    out: &mut Vec<u8>,
) -> (Vec<Seen>, Option<super::H2Error>) {
    let mut buf = Vec::new();
    let mut all = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        let r = conn.receive(&buf, out);
        all.extend(
            seen(conn, &buf)
                .into_iter()
                .filter(|s| *s != Seen::Settings),
        );
        match r {
            Ok(n) => {
                assert!(n <= buf.len());
                buf.drain(..n);
            }
            Err(e) => return (all, Some(e)),
        }
    }
    (all, None)
}

/// The server's side of a test: frames as bytes, with its own HPACK encoder.
pub struct Server {
    pub hpack: Encoder<'static>,
}

impl Server {
    pub fn new() -> Self {
        Server {
            hpack: Encoder::new(),
        }
    }

    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        self.hpack
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// HEADERS with END_HEADERS.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let block = self.block(fields);
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        raw(kind::HEADERS, flags, stream, &block)
    }
}

pub fn raw(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(ty, flags, stream, payload, &mut out);
    out
}

pub fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    super::frame::encode_settings(entries, &mut out);
    out
}

pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    raw(
        kind::DATA,
        if end_stream { flag::END_STREAM } else { 0 },
        stream,
        bytes,
    )
}

/// What the client wrote, as (type, flags, stream, payload), preface skipped.
pub fn frames(out: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut at = if out.starts_with(PREFACE) {
        PREFACE.len()
    } else {
        0
    };
    let mut list = Vec::new();
    while at < out.len() {
        let Ok(Decoded::Complete { frame, len }) = decode_frame(&out[at..], MAX_MAX_FRAME_SIZE)
        else {
            panic!("the client wrote a bad frame at {at}");
        };
        let _: Frame<'_> = frame;
        let h = &out[at..at + 9];
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
        list.push((h[3], h[4], stream, out[at + 9..at + len].to_vec()));
        at += len;
    }
    list
}

pub const GET: Request<'static> = Request {
    method: "GET",
    scheme: "http",
    authority: "example.test",
    path: "/",
    headers: Fields::Pairs(&[]),
};

pub fn post() -> Request<'static> {
    Request {
        method: "POST",
        ..GET
    }
}

/// A connection that has seen the server's (empty) SETTINGS; `out` cleared.
pub fn open(settings_: Settings, server_settings: &[(u16, u32)]) -> (Connection, Vec<u8>) {
    let mut out = Vec::new();
    let mut conn = Connection::new(settings_, &mut out);
    let s = settings(server_settings);
    assert_eq!(conn.receive(&s, &mut out), Ok(s.len()));
    out.clear();
    (conn, out)
}

pub fn id(n: u32) -> StreamId {
    StreamId(n)
}
