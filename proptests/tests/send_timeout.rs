//! `Limits::send_timeout` under any schedule of sends, reads and waits: output that waited
//! untaken for the send timeout always ends the connection, and the connection never ends so
//! earlier. The core reads no clock: output waits from the latest time it was told when the
//! output was queued (here, as in a driver, by `poll_transmit` and `handle_timeout`). For
//! HTTP/1.1 (a streamed response) and WebSocket (messages), the two shapes of output.

use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use proptest::collection::vec;
use proptest::prelude::*;
use weft_core::h1::{BodySize, H1Error, ServerConnection, ServerEvent};
use weft_core::ws::{Connection, Event, ProtocolError, Role};
use weft_core::{Limits, WsLimits};

const TIMEOUT: Duration = Duration::from_millis(1000);

/// What happens next between the application, the peer and the clock.
#[derive(Debug, Clone)]
enum Op {
    /// The application sends this many bytes.
    Send(usize),
    /// The peer reads everything queued.
    Read,
    /// Time passes (ms), then the timer is served as a driver would.
    Wait(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec(
        prop_oneof![
            2 => (1usize..3000).prop_map(Op::Send),
            1 => Just(Op::Read),
            3 => (0u64..1500).prop_map(Op::Wait),
        ],
        0..60,
    )
}

/// One connection seen through what the property needs.
trait Subject {
    fn send(&mut self, len: usize);
    fn read(&mut self, now: Instant);
    fn pending_output(&self) -> usize;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    /// Events taken since the last call: whether one reported the send timeout.
    fn saw_send_timeout(&mut self) -> bool;
    fn send_timed_out(&self) -> bool;
    fn is_closed(&self) -> bool;
}

/// Runs `ops` against `subject` from `t0`, checking the property after every step.
fn check(mut subject: impl Subject, t0: Instant, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = t0;
    // The latest time the connection was told.
    let mut told = t0;
    let mut waiting_since = (subject.pending_output() > 0).then_some(t0);
    for op in ops {
        if subject.send_timed_out() {
            break;
        }
        match op {
            Op::Send(len) => subject.send(*len),
            Op::Read => {
                subject.read(now);
                told = now;
            }
            Op::Wait(ms) => {
                now += Duration::from_millis(*ms);
                if subject.poll_timeout().is_some_and(|at| at <= now) {
                    subject.handle_timeout(now);
                    told = now;
                }
            }
        }
        // Only serving the timer ends the connection, as a driver does once it is due.
        let overdue =
            matches!(op, Op::Wait(_)) && waiting_since.is_some_and(|since| since + TIMEOUT <= now);
        let reported = subject.saw_send_timeout();
        prop_assert_eq!(
            subject.send_timed_out(),
            overdue,
            "{:?} at {:?}",
            op,
            now - t0
        );
        prop_assert_eq!(reported, overdue);
        if overdue {
            prop_assert!(subject.is_closed());
            prop_assert_eq!(subject.pending_output(), 0);
            prop_assert_eq!(subject.poll_timeout(), None);
        }
        if subject.pending_output() == 0 {
            waiting_since = None;
        } else {
            waiting_since.get_or_insert(told);
        }
    }
    Ok(())
}

/// An HTTP/1.1 connection answering one GET with a streamed body.
struct H1 {
    conn: ServerConnection,
}

impl H1 {
    fn new(t0: Instant) -> H1 {
        let mut limits = Limits::default();
        limits.send_timeout = TIMEOUT;
        limits.max_buffered_output = 8 * 1024;
        let mut conn = ServerConnection::new(limits, t0);
        conn.receive(t0, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        while conn.poll_event().is_some() {}
        conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
            .unwrap();
        H1 { conn }
    }
}

impl Subject for H1 {
    fn send(&mut self, len: usize) {
        let _ = self.conn.send_data(&vec![b'x'; len]);
    }
    fn read(&mut self, now: Instant) {
        while self.conn.poll_transmit(now).is_some() {}
    }
    fn pending_output(&self) -> usize {
        self.conn.pending_output()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }
    fn saw_send_timeout(&mut self) -> bool {
        let mut seen = false;
        while let Some(event) = self.conn.poll_event() {
            seen |= matches!(event, ServerEvent::Error(H1Error::SendTimeout));
        }
        seen
    }
    fn send_timed_out(&self) -> bool {
        self.conn.send_timed_out()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

/// A server WebSocket sending binary messages.
struct Ws {
    conn: Connection,
}

impl Subject for Ws {
    fn send(&mut self, len: usize) {
        let _ = self.conn.send_binary(&vec![b'x'; len]);
    }
    fn read(&mut self, now: Instant) {
        while self.conn.poll_transmit(now).is_some() {}
    }
    fn pending_output(&self) -> usize {
        self.conn.pending_output()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }
    fn saw_send_timeout(&mut self) -> bool {
        let mut seen = false;
        while let Some(event) = self.conn.poll_event() {
            seen |= event == Event::Error(ProtocolError::SendTimeout);
        }
        seen
    }
    fn send_timed_out(&self) -> bool {
        self.conn.send_timed_out()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

proptest! {
    #[test]
    fn h1_output_untaken_for_send_timeout_ends_the_connection_and_nothing_earlier(ops in ops()) {
        let t0 = Instant::now();
        check(H1::new(t0), t0, &ops)?;
    }

    #[test]
    fn ws_output_untaken_for_send_timeout_ends_the_connection_and_nothing_earlier(ops in ops()) {
        let t0 = Instant::now();
        let mut limits = WsLimits::default();
        limits.send_timeout = TIMEOUT;
        limits.max_buffered_output = 8 * 1024;
        check(Ws { conn: Connection::new(Role::Server, limits, t0) }, t0, &ops)?;
    }
}
