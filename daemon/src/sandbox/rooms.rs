//! `/ws/rooms/{room}`: broadcast rooms for chat and quiz scenarios.
//!
//! Every text or binary message a member sends goes to every current member, the sender included
//! (so a client can time its own fan-out). A room is a tokio `broadcast` channel, created on the
//! first join and dropped with its last member. The channel is bounded: a member that falls more
//! than `ROOM_BACKLOG` messages behind is disconnected with close code 1008 (policy violation) and
//! counted, rather than silently missing messages. It refuses history: a member sees only what is
//! sent after it joined.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::api::caller::Caller;
use super::ws::{self, Socket};
use super::SandboxState;
use axum::extract::FromRequestParts as _;

/// Messages a room keeps for its slowest member before that member is disconnected.
const ROOM_BACKLOG: usize = 1024;
/// Rooms open at once; a join beyond it is answered 503.
const MAX_ROOMS: usize = 10_000;
const MAX_ROOM_NAME_LEN: usize = 128;
/// Deliveries written before one flush; also bounds how long a member ignores its own socket.
const MAX_BATCH: usize = 64;

/// The open rooms, by name. Locked on join and leave only, never per message.
#[derive(Default)]
pub(super) struct Rooms {
    rooms: Mutex<HashMap<String, Room>>,
}

struct Room {
    sender: broadcast::Sender<Message>,
    members: usize,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        // The map stays consistent even if a holder panicked: every update is a single step.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Members per room.
    pub(super) fn members(&self) -> BTreeMap<String, usize> {
        let rooms = self.lock();
        rooms
            .iter()
            .map(|(name, room)| (name.clone(), room.members))
            .collect()
    }
}

/// One member's place in a room; leaves it (and drops an emptied room) on drop.
struct Membership {
    state: Arc<SandboxState>,
    room: String,
    sender: broadcast::Sender<Message>,
    receiver: broadcast::Receiver<Message>,
}

impl Membership {
    fn join(state: &Arc<SandboxState>, room: String) -> Option<Membership> {
        let mut rooms = state.rooms.lock();
        if !rooms.contains_key(&room) && rooms.len() >= MAX_ROOMS {
            return None;
        }
        let entry = rooms.entry(room.clone()).or_insert_with(|| Room {
            sender: broadcast::channel(ROOM_BACKLOG).0,
            members: 0,
        });
        entry.members += 1;
        let sender = entry.sender.clone();
        let receiver = sender.subscribe();
        drop(rooms);
        Some(Membership {
            state: Arc::clone(state),
            room,
            sender,
            receiver,
        })
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut rooms = self.state.rooms.lock();
        if let Some(room) = rooms.get_mut(&self.room) {
            room.members -= 1;
            if room.members == 0 {
                rooms.remove(&self.room);
            }
        }
    }
}

pub(super) async fn join(
    State(state): State<Arc<SandboxState>>,
    Path(room): Path<String>,
    request: Request,
) -> Response {
    if room.len() > MAX_ROOM_NAME_LEN {
        let message = format!("room names are at most {MAX_ROOM_NAME_LEN} bytes\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    // Joined before the handshake is answered, so a full house is refused in HTTP.
    let Some(membership) = Membership::join(&state, room) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many rooms\n").into_response();
    };
    ws::accept(request, &state, move |socket| {
        run_member(socket, membership, None)
    })
}

/// `/ws/t/{t}/rooms/{room}`: a room of tenant `t` that only its users join, with the bearer
/// token the API's login gave (401 without a known one, 403 for another tenant's), before the
/// upgrade. The member's first message is `{"type":"joined","room":…,"user":…}`.
pub(super) async fn join_with_token(
    State(state): State<Arc<SandboxState>>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state.api).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let Some(room) = parts.uri.path().rsplit('/').next().map(str::to_owned) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if room.len() > MAX_ROOM_NAME_LEN {
        let message = format!("room names are at most {MAX_ROOM_NAME_LEN} bytes\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let ack = serde_json::json!({"type": "joined", "room": room, "user": &*caller.username});
    let name = format!("{}/{room}", caller.tenant.name());
    let Some(membership) = Membership::join(&state, name) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many rooms\n").into_response();
    };
    let request = Request::from_parts(parts, body);
    ws::accept(request, &state, move |socket| {
        run_member(socket, membership, Some(ack.to_string()))
    })
}

/// Serves a member until it leaves; `ack` is sent to it first.
async fn run_member(mut socket: Socket, mut membership: Membership, ack: Option<String>) {
    let state = Arc::clone(&membership.state);
    if let Some(ack) = ack {
        if socket.send(Message::text(ack)).await.is_err() {
            return;
        }
        state.ws.count_out(1);
    }
    let ending = serve_member(&mut socket, &state, &mut membership).await;
    // Out of the room before the close handshake, which may take a while.
    drop(membership);
    match ending {
        Ending::PeerClosed => ws::finish(&mut socket).await,
        Ending::Lagged => {
            state.ws.count_lagged();
            ws::close(&mut socket, CloseCode::Policy, "lagged").await;
        }
        Ending::Gone => {}
    }
}

/// Why a member's session ended.
enum Ending {
    /// The member sent a close frame.
    PeerClosed,
    /// The member fell more than `ROOM_BACKLOG` messages behind.
    Lagged,
    /// The connection failed or ended without a close handshake.
    Gone,
}

/// Relays the member's messages into the room and the room's messages to the member.
async fn serve_member(
    socket: &mut Socket,
    state: &SandboxState,
    membership: &mut Membership,
) -> Ending {
    loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    state.ws.count_in();
                    // A stall holds messages before they are broadcast, like a stalled server.
                    state.wait_out_stall().await;
                    // Cannot fail: this member's own receiver is subscribed.
                    let _ = membership.sender.send(message);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => return Ending::PeerClosed,
                None | Some(Err(_)) => return Ending::Gone,
            },
            received = membership.receiver.recv() => match received {
                Ok(message) => match deliver(socket, &mut membership.receiver, message).await {
                    Ok(delivered) => state.ws.count_out(delivered),
                    Err(ending) => return ending,
                },
                Err(RecvError::Lagged(_)) => return Ending::Lagged,
                Err(RecvError::Closed) => return Ending::Gone,
            },
        }
    }
}

/// Writes `first` and whatever else is already waiting (up to a batch) with one flush, so a busy
/// room costs one write per batch, not per message. Returns how many messages were delivered.
async fn deliver(
    socket: &mut Socket,
    receiver: &mut broadcast::Receiver<Message>,
    first: Message,
) -> Result<u64, Ending> {
    socket.feed(first).await.map_err(|_| Ending::Gone)?;
    let mut delivered = 1;
    while delivered < MAX_BATCH as u64 {
        match receiver.try_recv() {
            Ok(message) => {
                socket.feed(message).await.map_err(|_| Ending::Gone)?;
                delivered += 1;
            }
            Err(TryRecvError::Lagged(_)) => return Err(Ending::Lagged),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    socket.flush().await.map_err(|_| Ending::Gone)?;
    Ok(delivered)
}
