//! Broadcast to many WebSockets: to every member of a hub, or to the members of a named room.
//!
//! Each member is a [`WebSocketSender`], whose send queue is bounded; a broadcast never waits
//! for a slow member. What happens to a member whose queue is full is the hub's
//! [`SlowConsumer`] policy, chosen when the hub is made: drop the message for that member, or
//! disconnect it. Either way memory stays bounded by the members' queue sizes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weft_core::ws::{CloseCode, Message};
use weft_service::websocket::{SocketId, TrySendError, WebSocketSender};

/// The reason sent with a [`SlowConsumer::Disconnect`] close.
const SLOW_CONSUMER_REASON: &str = "slow consumer";

/// What a broadcast does for a member whose send queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Skip this message for that member (it misses it, and stays connected). Counted in
    /// [`Hub::dropped`].
    Drop,
    /// Close that member at once with this code (`1008` policy violation or `1013` try again
    /// later are the usual ones), dropping what was queued for it, and remove it from the hub.
    Disconnect(CloseCode),
}

/// A set of WebSockets with named rooms; cheap to clone (shared state), usable from any task.
///
/// The lock is held only to read or change membership: a broadcast copies out the handles it
/// sends to, queues the message on each without the lock, then takes the lock again to forget
/// members that closed or were disconnected.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<HubShared>,
}

/// What every clone of a [`Hub`] shares.
struct HubShared {
    policy: SlowConsumer,
    dropped: AtomicU64,
    members: Mutex<Members>,
}

/// Who is in the hub, and in which rooms.
#[derive(Default)]
struct Members {
    sockets: HashMap<SocketId, Member>,
    rooms: HashMap<String, HashSet<SocketId>>,
}

/// One socket of the hub.
struct Member {
    sender: WebSocketSender,
    /// The rooms it is in, so that removing it touches only those.
    rooms: HashSet<String>,
}

impl Members {
    fn add(&mut self, sender: WebSocketSender) {
        self.sockets.entry(sender.id()).or_insert_with(|| Member {
            sender,
            rooms: HashSet::new(),
        });
    }

    fn remove(&mut self, id: SocketId) {
        let Some(member) = self.sockets.remove(&id) else {
            return;
        };
        for room in member.rooms {
            self.leave_room(&room, id);
        }
    }

    /// Takes `id` out of the room's set, forgetting the room once empty.
    fn leave_room(&mut self, room: &str, id: SocketId) {
        if let Some(ids) = self.rooms.get_mut(room) {
            ids.remove(&id);
            if ids.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Handles of every member.
    fn all(&self) -> Vec<WebSocketSender> {
        self.sockets
            .values()
            .map(|member| member.sender.clone())
            .collect()
    }

    /// Handles of the members of `room` but `except`.
    fn in_room(&self, room: &str, except: Option<SocketId>) -> Vec<WebSocketSender> {
        let Some(ids) = self.rooms.get(room) else {
            return Vec::new();
        };
        ids.iter()
            .filter(|id| Some(**id) != except)
            .filter_map(|id| self.sockets.get(id))
            .map(|member| member.sender.clone())
            .collect()
    }
}

/// What one broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Members the message was queued for.
    pub queued: usize,
    /// Members that missed it under [`SlowConsumer::Drop`].
    pub dropped: usize,
    /// Members disconnected under [`SlowConsumer::Disconnect`].
    pub disconnected: usize,
}

impl Hub {
    /// An empty hub with the given slow-consumer policy.
    pub fn new(policy: SlowConsumer) -> Hub {
        Hub {
            shared: Arc::new(HubShared {
                policy,
                dropped: AtomicU64::new(0),
                members: Mutex::new(Members::default()),
            }),
        }
    }

    /// The membership; every change is a few map operations that leave it consistent, so a
    /// lock poisoned by a panic elsewhere is used as is.
    fn members(&self) -> MutexGuard<'_, Members> {
        self.shared
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a socket to the hub (no room). Members whose socket closed are forgotten at the
    /// next broadcast that reaches them.
    pub fn add(&self, member: WebSocketSender) {
        self.members().add(member);
    }

    /// Removes a socket from the hub and from every room.
    pub fn remove(&self, id: SocketId) {
        self.members().remove(id);
    }

    /// Puts a socket in `room` (adding it to the hub if needed).
    pub fn join(&self, room: &str, member: WebSocketSender) {
        let id = member.id();
        let mut members = self.members();
        members.add(member);
        if let Some(joined) = members.sockets.get_mut(&id) {
            joined.rooms.insert(room.to_owned());
        }
        members.rooms.entry(room.to_owned()).or_default().insert(id);
    }

    /// Takes a socket out of `room`; an empty room is forgotten.
    pub fn leave(&self, room: &str, id: SocketId) {
        let mut members = self.members();
        if let Some(member) = members.sockets.get_mut(&id) {
            member.rooms.remove(room);
        }
        members.leave_room(room, id);
    }

    /// Sends `message` to every member.
    pub fn broadcast(&self, message: &Message) -> Delivery {
        let targets = self.members().all();
        self.deliver(targets, message)
    }

    /// Sends `message` to the members of `room`, except `except` (typically the sender).
    pub fn broadcast_to(
        &self,
        room: &str,
        message: &Message,
        except: Option<SocketId>,
    ) -> Delivery {
        let targets = self.members().in_room(room, except);
        self.deliver(targets, message)
    }

    /// Queues `message` for each of `targets` without waiting, applies the slow-consumer
    /// policy to those that are full, and forgets those that are gone.
    fn deliver(&self, targets: Vec<WebSocketSender>, message: &Message) -> Delivery {
        let mut delivery = Delivery::default();
        let mut gone = Vec::new();
        for target in targets {
            match target.try_send(message.clone()) {
                Ok(()) => delivery.queued = delivery.queued.saturating_add(1),
                Err(TrySendError::Closed(_)) => gone.push(target.id()),
                Err(TrySendError::Full(_)) => match self.shared.policy {
                    SlowConsumer::Drop => delivery.dropped = delivery.dropped.saturating_add(1),
                    SlowConsumer::Disconnect(code) => {
                        target.close_now(code, SLOW_CONSUMER_REASON);
                        delivery.disconnected = delivery.disconnected.saturating_add(1);
                        gone.push(target.id());
                    }
                },
            }
        }
        if delivery.dropped > 0 {
            let dropped = u64::try_from(delivery.dropped).unwrap_or(u64::MAX);
            self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if !gone.is_empty() {
            let mut members = self.members();
            for id in gone {
                members.remove(id);
            }
        }
        delivery
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.members().sockets.len()
    }

    /// Whether the hub has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members of `room` now.
    pub fn room_len(&self, room: &str) -> usize {
        self.members().rooms.get(room).map_or(0, HashSet::len)
    }

    /// Messages skipped for slow members since the hub was made.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("policy", &self.shared.policy)
            .field("members", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use super::*;
    use weft_service::websocket::{Outgoing, QueueSizes, SocketLink, WebSocket};

    /// A member: the handler's socket (kept alive) and the connection's end.
    struct Peer {
        socket: WebSocket,
        link: SocketLink,
    }

    impl Peer {
        fn new(send_queue: usize) -> Peer {
            let sizes = QueueSizes {
                receive: 1024,
                send: send_queue,
            };
            let (socket, link) = WebSocket::pair(None, sizes);
            Peer { socket, link }
        }

        fn sender(&self) -> WebSocketSender {
            self.socket.sender()
        }

        fn id(&self) -> SocketId {
            self.socket.id()
        }

        /// Everything the connection would send now.
        fn take_all(&self) -> Vec<Outgoing> {
            let mut cx = Context::from_waker(Waker::noop());
            std::iter::from_fn(|| self.link.poll_outgoing(&mut cx)).collect()
        }
    }

    fn text(s: &str) -> Message {
        Message::text(s)
    }

    fn messages(texts: &[&str]) -> Vec<Outgoing> {
        texts.iter().map(|t| Outgoing::Message(text(t))).collect()
    }

    #[test]
    fn hub_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Hub>();
    }

    #[test]
    fn broadcast_reaches_every_member() {
        let hub = Hub::new(SlowConsumer::Drop);
        let peers: Vec<Peer> = (0..3).map(|_| Peer::new(1024)).collect();
        for peer in &peers {
            hub.add(peer.sender());
        }
        hub.add(peers[0].sender());
        assert_eq!(hub.len(), 3);
        let delivery = hub.broadcast(&text("hello"));
        assert_eq!(
            delivery,
            Delivery {
                queued: 3,
                ..Delivery::default()
            }
        );
        for peer in &peers {
            assert_eq!(peer.take_all(), messages(&["hello"]));
        }
    }

    #[test]
    fn an_empty_hub_delivers_to_nobody() {
        let hub = Hub::new(SlowConsumer::Drop);
        assert!(hub.is_empty());
        assert_eq!(hub.broadcast(&text("x")), Delivery::default());
        assert_eq!(
            hub.broadcast_to("nowhere", &text("x"), None),
            Delivery::default()
        );
        hub.remove(SocketId(u64::MAX));
        hub.leave("nowhere", SocketId(u64::MAX));
        assert!(hub.is_empty());
    }

    #[test]
    fn broadcast_to_a_room_reaches_its_members_except_one() {
        let hub = Hub::new(SlowConsumer::Drop);
        let [a, b, c] = [Peer::new(1024), Peer::new(1024), Peer::new(1024)];
        hub.join("red", a.sender());
        hub.join("red", b.sender());
        hub.join("blue", c.sender());
        hub.join("blue", a.sender());
        assert_eq!(hub.len(), 3, "joining adds to the hub once");
        assert_eq!((hub.room_len("red"), hub.room_len("blue")), (2, 2));

        let delivery = hub.broadcast_to("red", &text("to red"), Some(a.id()));
        assert_eq!(delivery.queued, 1);
        assert_eq!(hub.broadcast_to("blue", &text("to blue"), None).queued, 2);
        assert_eq!(a.take_all(), messages(&["to blue"]));
        assert_eq!(b.take_all(), messages(&["to red"]));
        assert_eq!(c.take_all(), messages(&["to blue"]));

        hub.leave("red", b.id());
        assert_eq!(hub.room_len("red"), 1);
        hub.leave("red", a.id());
        assert_eq!(hub.room_len("red"), 0);
        assert!(
            !hub.members().rooms.contains_key("red"),
            "empty room forgotten"
        );
        assert_eq!(hub.len(), 3, "leaving a room stays in the hub");
        assert_eq!(
            hub.broadcast_to("red", &text("x"), None),
            Delivery::default()
        );

        hub.remove(a.id());
        assert_eq!(hub.len(), 2);
        assert_eq!(hub.room_len("blue"), 1);
        assert_eq!(hub.broadcast_to("blue", &text("again"), None).queued, 1);
        assert_eq!(a.take_all(), vec![]);
        assert_eq!(c.take_all(), messages(&["again"]));
    }

    #[test]
    fn adding_a_member_again_keeps_its_rooms() {
        let hub = Hub::new(SlowConsumer::Drop);
        let a = Peer::new(1024);
        hub.join("room", a.sender());
        hub.add(a.sender());
        assert_eq!(hub.room_len("room"), 1);
        assert_eq!(hub.broadcast_to("room", &text("x"), None).queued, 1);
    }

    #[test]
    fn a_slow_member_misses_messages_under_drop_while_others_get_all() {
        let hub = Hub::new(SlowConsumer::Drop);
        let slow = Peer::new(8);
        let fast = Peer::new(8);
        hub.join("room", slow.sender());
        hub.join("room", fast.sender());
        let mut fast_got = Vec::new();
        let mut deliveries = Vec::new();
        for i in 0..5 {
            deliveries.push(hub.broadcast_to("room", &text(&format!("m{i}:")), None));
            fast_got.extend(fast.take_all());
        }
        assert_eq!(fast_got, messages(&["m0:", "m1:", "m2:", "m3:", "m4:"]));
        assert_eq!(slow.take_all(), messages(&["m0:", "m1:"]));
        let dropped: Vec<usize> = deliveries.iter().map(|d| d.dropped).collect();
        assert_eq!(dropped, [0, 0, 1, 1, 1]);
        assert_eq!(hub.dropped(), 3);
        assert_eq!(hub.len(), 2, "a slow member stays under Drop");
        assert!(deliveries.iter().all(|d| d.disconnected == 0));
        assert_eq!(deliveries[2].queued, 1);
    }

    #[test]
    fn a_slow_member_is_closed_at_once_and_removed_under_disconnect() {
        let hub = Hub::new(SlowConsumer::Disconnect(CloseCode::TRY_AGAIN_LATER));
        let slow = Peer::new(8);
        let fast = Peer::new(8);
        hub.join("room", slow.sender());
        hub.join("room", fast.sender());
        for i in 0..2 {
            hub.broadcast(&text(&format!("m{i}:")));
            fast.take_all();
        }
        let delivery = hub.broadcast(&text("m2:"));
        assert_eq!(
            delivery,
            Delivery {
                queued: 1,
                dropped: 0,
                disconnected: 1,
            }
        );
        assert_eq!(
            slow.take_all(),
            vec![Outgoing::Close(
                CloseCode::TRY_AGAIN_LATER,
                SLOW_CONSUMER_REASON.to_owned()
            )]
        );
        assert!(slow.sender().is_closed());
        assert_eq!(hub.len(), 1);
        assert_eq!(hub.room_len("room"), 1);
        assert_eq!(hub.dropped(), 0);
        assert_eq!(hub.broadcast(&text("m3:")).queued, 1);
        assert_eq!(fast.take_all(), messages(&["m2:", "m3:"]));
        assert_eq!(slow.take_all(), vec![]);
    }

    #[test]
    fn closed_members_are_forgotten_at_the_next_broadcast() {
        let hub = Hub::new(SlowConsumer::Drop);
        let [closed, finished, open] = [Peer::new(64), Peer::new(64), Peer::new(64)];
        for peer in [&closed, &finished, &open] {
            hub.join("room", peer.sender());
        }
        closed.socket.close(CloseCode::NORMAL, "bye").unwrap();
        finished.link.finish(CloseCode::ABNORMAL, "");
        assert_eq!(hub.len(), 3);
        let delivery = hub.broadcast_to("room", &text("x"), None);
        assert_eq!(
            delivery,
            Delivery {
                queued: 1,
                ..Delivery::default()
            }
        );
        assert_eq!(hub.len(), 1);
        assert_eq!(hub.room_len("room"), 1);
        assert_eq!(
            closed.take_all(),
            vec![Outgoing::Close(CloseCode::NORMAL, "bye".to_owned())]
        );
    }

    #[test]
    fn many_members_in_rooms_with_one_slow() {
        const MEMBERS: usize = 200;
        let hub = Hub::new(SlowConsumer::Disconnect(CloseCode::POLICY));
        // Member 0 never reads, and its queue holds 10 three-byte messages.
        let peers: Vec<Peer> = (0..MEMBERS)
            .map(|i| Peer::new(if i == 0 { 30 } else { 64 }))
            .collect();
        for (i, peer) in peers.iter().enumerate() {
            hub.join(if i % 2 == 0 { "even" } else { "odd" }, peer.sender());
        }
        assert_eq!(
            (hub.len(), hub.room_len("even"), hub.room_len("odd")),
            (200, 100, 100)
        );
        let slow = &peers[0];
        let mut got = vec![0usize; MEMBERS];
        for round in 0..20 {
            let all = hub.broadcast(&text("all"));
            let odd = hub.broadcast_to("odd", &text("odd"), Some(peers[1].id()));
            if round == 0 {
                assert_eq!(all.queued, MEMBERS);
                assert_eq!(odd.queued, MEMBERS / 2 - 1);
            }
            for (i, peer) in peers.iter().enumerate().skip(1) {
                got[i] += peer.take_all().len();
            }
        }
        for (i, count) in got.iter().enumerate().skip(1) {
            let expected = if i % 2 == 1 && i != 1 { 40 } else { 20 };
            assert_eq!(*count, expected, "member {i}");
        }
        // Cut off on the 11th message, what was queued dropped.
        let slow_got = slow.take_all();
        assert_eq!(
            slow_got,
            vec![Outgoing::Close(
                CloseCode::POLICY,
                SLOW_CONSUMER_REASON.to_owned()
            )]
        );
        assert_eq!(
            (hub.len(), hub.room_len("even")),
            (MEMBERS - 1, MEMBERS / 2 - 1)
        );
    }
}
