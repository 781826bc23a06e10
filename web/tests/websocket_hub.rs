//! A chat room through the public API only: sockets made by `WebSocket::pair`, a `Hub` with
//! rooms, and the server's end (`SocketLink`) read the way a connection driver reads it.

use std::task::{Context, Poll, Waker};
use std::thread;

use weft::websocket::{
    Delivery, Hub, Outgoing, QueueSizes, SlowConsumer, SocketLink, WebSocket, WebSocketSender,
};
use weft_core::ws::{CloseCode, Message};

/// The texts the connection would send now; a Close is reported as `close:<code>`.
fn drain(link: &SocketLink) -> Vec<String> {
    let mut cx = Context::from_waker(Waker::noop());
    std::iter::from_fn(|| link.poll_outgoing(&mut cx))
        .map(|item| match item {
            Outgoing::Message(message) => message.as_text().unwrap_or("<binary>").to_owned(),
            Outgoing::Close(code, _) => format!("close:{code}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_chat_room_relays_to_others_and_cuts_off_a_reader_that_stalls() {
    let hub = Hub::new(SlowConsumer::Disconnect(CloseCode::TRY_AGAIN_LATER));
    let sizes = QueueSizes {
        receive: 1024,
        send: 16,
    };
    let mut clients: Vec<(WebSocket, SocketLink)> =
        (0..3).map(|_| WebSocket::pair(None, sizes)).collect();
    for (socket, _) in &clients {
        hub.join("lobby", socket.sender());
    }

    // Client 0 speaks: the others hear it, not client 0.
    let (speaker, speaker_link) = &mut clients[0];
    speaker_link.push(Message::text("hi all"));
    let heard = received(speaker);
    let delivery = hub.broadcast_to("lobby", &heard, Some(speaker.id()));
    assert_eq!(
        delivery,
        Delivery {
            queued: 2,
            ..Delivery::default()
        }
    );
    assert_eq!(drain(speaker_link), Vec::<String>::new());
    assert_eq!(drain(&clients[1].1), ["hi all"]);

    // Client 2 never reads: its 16-byte queue fills, and it is cut off with 1013.
    for _ in 0..3 {
        hub.broadcast(&Message::text("news!"));
        drain(&clients[0].1);
        drain(&clients[1].1);
    }
    assert_eq!(drain(&clients[2].1), ["close:1013"]);
    assert_eq!(hub.len(), 2);
    assert_eq!(hub.room_len("lobby"), 2);
}

/// The message the connection pushed already (so one poll is enough and no executor is
/// needed).
fn received(socket: &mut WebSocket) -> Message {
    match socket.poll_recv(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Some(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// A hub member: the handler's socket (kept alive) and the connection's end.
struct Peer {
    socket: WebSocket,
    link: SocketLink,
}

impl Peer {
    fn new(send_queue: usize) -> Peer {
        let (socket, link) = WebSocket::pair(
            None,
            QueueSizes {
                receive: 1024,
                send: send_queue,
            },
        );
        Peer { socket, link }
    }

    fn sender(&self) -> WebSocketSender {
        self.socket.sender()
    }

    /// Everything the connection would send now.
    fn take_all(&self) -> Vec<Outgoing> {
        let mut cx = Context::from_waker(Waker::noop());
        std::iter::from_fn(|| self.link.poll_outgoing(&mut cx)).collect()
    }
}

#[test]
fn broadcasts_from_several_threads_all_arrive() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let hub = Hub::new(SlowConsumer::Drop);
    let peers: Vec<Peer> = (0..20).map(|_| Peer::new(1 << 20)).collect();
    for peer in &peers {
        hub.join("room", peer.sender());
    }
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let hub = hub.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let delivery =
                        hub.broadcast_to("room", &Message::text(format!("{t}/{i}")), None);
                    assert_eq!(delivery.queued, 20);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    for peer in &peers {
        let got = peer.take_all();
        assert_eq!(got.len(), THREADS * PER_THREAD);
        // Each thread's messages keep their order.
        for t in 0..THREADS {
            let prefix = format!("{t}/");
            let mine: Vec<usize> = got
                .iter()
                .filter_map(|o| match o {
                    Outgoing::Message(m) => m.as_text()?.strip_prefix(&prefix)?.parse().ok(),
                    _ => None,
                })
                .collect();
            assert_eq!(mine, (0..PER_THREAD).collect::<Vec<_>>());
        }
    }
    assert_eq!(hub.dropped(), 0);
}
