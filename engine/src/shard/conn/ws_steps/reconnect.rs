//! Deliberate churn inside a `ws_listen` (`reconnect = { after, jitter }`): the socket is
//! closed cleanly and opened again with the upgrade its `ws_connect` sent (a fresh key), and
//! the time that takes is one more response of that connect step, so reconnect times have a
//! row of their own. What the server pushed while the socket was away is not received.

use crate::metrics::ErrorKind;
use crate::proto::ws;
use crate::shard::conn::deadline::Slot;
use crate::shard::state::ShardState;

use super::{Socket, CLOSE_WAIT_NS};

/// The upgrade to send again.
pub(crate) struct Again {
    pub request: Vec<u8>,
    /// Where the 24-byte `Sec-WebSocket-Key` value is in `request`.
    pub key_at: usize,
    /// The `ws_connect` step whose row reconnects are recorded in.
    pub step: usize,
    pub subprotocols: Vec<String>,
    /// permessage-deflate was offered.
    pub deflate: bool,
}

impl Socket {
    /// Closes and reopens the socket; counted in the connect step and `ws_messages.reconnects`.
    pub(super) async fn reconnect(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        rng: &mut fastrand::Rng,
    ) -> Result<(), ErrorKind> {
        let Some(again) = self.again.take() else {
            return Err(ErrorKind::WsClosed);
        };
        let closing = shard.now_ns() + CLOSE_WAIT_NS.min(shard.timeout_ns);
        let _ = self
            .closing_handshake(shard, slot, closing, 1000, "", rng)
            .await;
        self.drop_stream(shard);
        let key = ws::Key::generate(rng);
        self.out.clear();
        self.out.extend_from_slice(&again.request);
        if let Some(k) = self.out.get_mut(again.key_at..again.key_at + 24) {
            k.copy_from_slice(key.as_str().as_bytes());
        }
        self.offered_deflate = again.deflate;
        let began = shard.now_ns();
        let opened = self
            .open(
                shard,
                slot,
                key.as_str(),
                &again.subprotocols,
                began + shard.plan().connect_timeout.as_nanos() as u64 + shard.timeout_ns,
            )
            .await;
        let step = again.step;
        self.again = Some(again);
        opened?;
        shard.step(step).record_reply(None, began, shard.now_ns());
        shard.stats().ws.reconnects += 1;
        Ok(())
    }
}
