//! A tiny broadcast to named rooms, for the room routes of [`super::WsApp`].
//!
//! The framework's hub (`weft::websocket::Hub`) cannot be used here: `weft` depends on
//! `weft-runtime`, so a dev-dependency back on it would be a cycle. This keeps only what the
//! room routes need: members by room, the two slow-consumer policies, the drop count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weft_core::ws::{CloseCode, Message};
use weft_service::websocket::{SocketId, TrySendError, WebSocketSender};

/// What a broadcast does for a member whose send queue is full.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SlowConsumer {
    /// Skip the message for that member (counted in [`Rooms::dropped`]).
    Drop,
    /// Close that member with this code and forget it.
    Disconnect(CloseCode),
}

/// Rooms of sockets; cheap to clone (shared state).
#[derive(Clone)]
pub(crate) struct Rooms {
    shared: Arc<RoomsShared>,
}

struct RoomsShared {
    policy: SlowConsumer,
    dropped: AtomicU64,
    rooms: Mutex<HashMap<String, Vec<WebSocketSender>>>,
}

impl Rooms {
    pub(crate) fn new(policy: SlowConsumer) -> Rooms {
        Rooms {
            shared: Arc::new(RoomsShared {
                policy,
                dropped: AtomicU64::new(0),
                rooms: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Vec<WebSocketSender>>> {
        self.shared
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a socket in `room`.
    pub(crate) fn join(&self, room: &str, member: WebSocketSender) {
        self.rooms()
            .entry(room.to_owned())
            .or_default()
            .push(member);
    }

    /// Takes a socket out of every room.
    pub(crate) fn remove(&self, id: SocketId) {
        let mut rooms = self.rooms();
        for members in rooms.values_mut() {
            members.retain(|member| member.id() != id);
        }
        rooms.retain(|_, members| !members.is_empty());
    }

    /// Members of `room` now.
    pub(crate) fn room_len(&self, room: &str) -> usize {
        self.rooms().get(room).map_or(0, Vec::len)
    }

    /// Messages skipped for slow members so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Queues `message` for every member of `room` but `except`, without waiting.
    pub(crate) fn broadcast_to(&self, room: &str, message: &Message, except: Option<SocketId>) {
        let targets: Vec<WebSocketSender> = self
            .rooms()
            .get(room)
            .into_iter()
            .flatten()
            .filter(|member| Some(member.id()) != except)
            .cloned()
            .collect();
        for target in targets {
            match target.try_send(message.clone()) {
                Ok(()) => {}
                Err(TrySendError::Closed(_)) => self.remove(target.id()),
                Err(TrySendError::Full(_)) => match self.shared.policy {
                    SlowConsumer::Drop => {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    SlowConsumer::Disconnect(code) => {
                        target.close_now(code, "slow consumer");
                        self.remove(target.id());
                    }
                },
            }
        }
    }
}
