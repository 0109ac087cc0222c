//! One request's stream as the client sees it, and the fixed-capacity table of open ones.
//!
//! A stream is two small state machines, one per direction: what is left of the request body to
//! send (and the window it may use), and how far the response has come. The table is allocated
//! once, at `Settings::max_streams` slots, and never grows: a full table is the caller's "no free
//! stream slot", not an allocation. Lookups are linear over the slots in use, which for the few
//! dozen streams a connection carries beats hashing.

/// A client stream id: odd, 31-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// How far the response has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// No final head yet (1xx heads are skipped).
    AwaitingHead,
    /// The final head arrived; DATA and trailers may follow. `content_length` is what the head
    /// announced (checked at the end unless the request was HEAD), `seen` what arrived.
    Body {
        content_length: Option<u64>,
        seen: u64,
    },
}

/// One open stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    pub id: u32,
    pub recv: Recv,
    /// Request body bytes not yet sent (0 once END_STREAM went out).
    pub body_left: u64,
    /// Request body bytes already sent.
    pub body_sent: u64,
    /// Whether we still owe END_STREAM (an empty body ends with the HEADERS frame).
    pub send_open: bool,
    /// What we may still send on this stream; may go negative when the peer shrinks
    /// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2).
    pub send_window: i64,
    /// What the peer may still send us on this stream.
    pub recv_window: i64,
    /// Bytes received and not yet returned to the peer by WINDOW_UPDATE.
    pub recv_unacked: u32,
    /// A HEAD request: its response's content-length describes no body.
    pub head_request: bool,
}

impl Stream {
    pub fn new(id: u32, body_len: u64, send_window: i64, recv_window: i64, head: bool) -> Self {
        Stream {
            id,
            recv: Recv::AwaitingHead,
            body_left: body_len,
            body_sent: 0,
            send_open: body_len > 0,
            send_window,
            recv_window,
            recv_unacked: 0,
            head_request: head,
        }
    }
}

/// The open streams, in slots allocated once.
pub struct StreamTable {
    slots: Vec<Option<Stream>>,
    open: usize,
}

impl StreamTable {
    /// Allocates `capacity` slots: the only allocation the table makes.
    pub fn new(capacity: usize) -> Self {
        StreamTable {
            slots: vec![None; capacity],
            open: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Puts `stream` in a free slot; `None` when every slot is taken.
    pub fn insert(&mut self, stream: Stream) -> Option<usize> {
        let slot = self.slots.iter().position(Option::is_none)?;
        self.slots[slot] = Some(stream);
        self.open += 1;
        Some(slot)
    }

    /// The slot of stream `id`, if it is open.
    pub fn find(&self, id: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Stream> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, slot: usize) -> Option<Stream> {
        let s = self.slots.get_mut(slot)?.take();
        if s.is_some() {
            self.open -= 1;
        }
        s
    }

    /// Every open stream.
    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.slots.iter().flatten()
    }

    /// Every open stream, by slot.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Stream)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (i, s)))
    }
}
