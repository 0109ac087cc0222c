//! Generated response bodies: slices of one shared filler buffer, so no request allocates its body.
//!
//! `FillerBody` yields `n` bytes either with a known length (hyper sends `Content-Length`) or with an
//! unknown one (hyper sends `Transfer-Encoding: chunked`, one chunk per frame). It does not decide
//! which endpoint uses which framing; `routes` does.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};

/// Length of the shared filler buffer; longer bodies repeat it.
pub(super) const FILLER_LEN: usize = 1 << 20;

/// Built once per process; every body and the huge header are slices of it.
pub(super) fn filler() -> &'static Bytes {
    static FILLER: OnceLock<Bytes> = OnceLock::new();
    FILLER.get_or_init(|| Bytes::from(vec![b'x'; FILLER_LEN]))
}

/// How the body's end is announced on the wire.
#[derive(Clone, Copy, Debug)]
pub(super) enum Framing {
    Length,
    Chunked,
}

pub(super) struct FillerBody {
    remaining: usize,
    frame_len: usize,
    framing: Framing,
}

impl FillerBody {
    /// `len` bytes in frames of at most `frame_len` (clamped to `1..=FILLER_LEN`).
    pub(super) fn new(len: usize, frame_len: usize, framing: Framing) -> Self {
        FillerBody {
            remaining: len,
            frame_len: frame_len.clamp(1, FILLER_LEN),
            framing,
        }
    }
}

impl Body for FillerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.frame_len);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(filler().slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length => SizeHint::with_exact(self.remaining as u64),
            Framing::Chunked => SizeHint::default(),
        }
    }
}
