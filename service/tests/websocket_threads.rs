//! WebSocket queues across threads: a sender thread against the connection's end, and a reader
//! thread against a connection pushing into a small queue (broadcasts from several threads are
//! tested with the hub, in the framework: `web/tests/websocket_hub.rs`). Lost wake-ups show up as a failure (a bounded wait), never as a hang. These live here
//! rather than next to the code because the core's sources use no threads.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use weft_core::ws::{CloseCode, Message};
use weft_service::websocket::{Outgoing, QueueSizes, WebSocket};

/// A waker that unparks a thread and remembers it was woken.
struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs `future` on this thread. Fails (instead of hanging) when the future stays pending with
/// nobody waking it for a minute: a lost wake-up.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let std_waker = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&std_waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let mut waited = 0;
        while !waker.woken.swap(false, Ordering::SeqCst) {
            assert!(waited < 600, "pending future never woken");
            thread::park_timeout(Duration::from_millis(100));
            waited += 1;
        }
    }
}

fn sizes(receive: usize, send: usize) -> QueueSizes {
    QueueSizes { receive, send }
}

#[test]
fn a_sender_thread_and_a_connection_thread_move_every_message_in_order() {
    const COUNT: usize = 2000;
    let (socket, link) = WebSocket::pair(None, sizes(100, 64));
    let sender = socket.sender();
    let producer = thread::spawn(move || {
        for i in 0..COUNT {
            block_on(sender.send(Message::text(i.to_string()))).unwrap();
            assert!(sender.queued() <= 64);
        }
        sender.close(CloseCode::NORMAL, "end").unwrap();
    });
    let mut received = Vec::new();
    loop {
        let item = block_on(poll_fn(|cx| match link.poll_outgoing(cx) {
            Some(item) => Poll::Ready(item),
            None => Poll::Pending,
        }));
        match item {
            Outgoing::Message(message) => received.push(message),
            Outgoing::Close(code, reason) => {
                assert_eq!((code, reason.as_str()), (CloseCode::NORMAL, "end"));
                break;
            }
            other => panic!("only messages and the Close were sent: {other:?}"),
        }
    }
    producer.join().unwrap();
    let expected: Vec<Message> = (0..COUNT).map(|i| Message::text(i.to_string())).collect();
    assert_eq!(received, expected);
}

#[test]
fn a_reader_thread_gets_every_pushed_message_with_a_small_queue() {
    const COUNT: usize = 2000;
    let (mut socket, link) = WebSocket::pair(None, sizes(8, 100));
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        while let Some(message) = block_on(socket.recv()) {
            received.push(message);
        }
        (received, socket.close_reason())
    });
    for i in 0..COUNT {
        // Wait for room like a connection that stopped reading its peer.
        block_on(poll_fn(|cx| {
            let _ = link.poll_outgoing(cx);
            if link.has_room() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        link.push(Message::binary(i.to_be_bytes().to_vec()));
    }
    link.finish(CloseCode::NO_STATUS, "");
    let (received, reason) = reader.join().unwrap();
    let expected: Vec<Message> = (0..COUNT)
        .map(|i| Message::binary(i.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(received, expected);
    assert_eq!(reason, Some((CloseCode::NO_STATUS, String::new())));
}
