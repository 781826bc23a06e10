//! Taking over an HTTP/1.1 connection after an upgrade (`101 Switching Protocols`) or a
//! tunnel (`2xx` to CONNECT) that is not a WebSocket, like hyper's `upgrade::on`.
//!
//! The server puts an [`OnUpgrade`] in the extensions of every HTTP/1.1 request that asks to
//! switch protocols (`Connection: upgrade` with `Upgrade`) or to open a tunnel (CONNECT). A
//! handler that means to accept takes it with [`OnUpgrade::from_request`], answers `101` (or
//! `2xx` to CONNECT), and awaits the [`OnUpgrade`] (typically in a spawned task) for the
//! [`Upgraded`] connection: the raw bytes both ways, starting with any the client sent right
//! after its request.
//!
//! A handler that answers `101` or `2xx` to CONNECT *without* having taken the handle (nor
//! accepted a WebSocket) has nothing to speak the new protocol: the server answers `500`
//! instead, before anything was switched. WebSocket handshakes get an `OnUpgrade` too, but
//! [`WebSocketUpgrade`](crate::websocket::WebSocketUpgrade) is the way to accept them.
//!
//! Over HTTP/2, which has no `Upgrade` (RFC 9113 §8.6), a plain CONNECT carries an
//! `OnUpgrade` too, for a tunnel over its stream (RFC 9113 §8.5): the handler takes it the
//! same way and answers `2xx`, and the [`Upgraded`] connection reads the stream's DATA and
//! writes DATA back; closing it ends the stream. The request's own body is then empty: the
//! stream's bytes are the tunnel's. The extended CONNECT (RFC 8441) serves WebSockets only.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use weft_service::body::Body;
//! use weft_service::upgrade::OnUpgrade;
//!
//! async fn handle(mut request: Request<Body>) -> Response<Body> {
//!     let Some(on_upgrade) = OnUpgrade::from_request(&mut request) else {
//!         let mut refused = Response::new(Body::from("upgrade required\n"));
//!         *refused.status_mut() = StatusCode::UPGRADE_REQUIRED;
//!         return refused;
//!     };
//!     // Run the new protocol once the 101 is out (spawn this on the runtime in use).
//!     let _echo = async move {
//!         let Ok(mut io) = on_upgrade.await else { return };
//!         while let Some(bytes) = io.read().await {
//!             if io.write(bytes).await.is_err() {
//!                 break;
//!             }
//!         }
//!         io.close();
//!     };
//!     let mut response = Response::new(Body::empty());
//!     *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
//!     response.headers_mut().insert("upgrade", "echo".parse().unwrap());
//!     response.headers_mut().insert("connection", "upgrade".parse().unwrap());
//!     response
//! }
//! # let _ = handle;
//! ```
//!
//! # Why a bytes channel rather than `AsyncRead + AsyncWrite`
//!
//! Those traits differ between runtimes (futures-io, tokio) and this crate names none. The
//! [`Upgraded`] API is two bounded byte queues, the ones request bodies already use: the
//! server stops reading the socket while the application has not taken what was read
//! (backpressure), and [`Upgraded::write`] waits while what the application wrote has not
//! been taken by the connection. An adapter to either trait is a few lines over
//! [`Upgraded::poll_read`] and [`Upgraded::poll_write_ready`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::Request;

use crate::body::{Body, BodySender};

/// The promise of the connection a request asked to switch (or tunnel) once it is answered:
/// take it from the request with [`from_request`](Self::from_request), answer `101` (or `2xx`
/// to CONNECT), then await it.
///
/// Resolves to [`Upgraded`] once the response is written, or to [`UpgradeError`] when the
/// connection did not switch (another status was sent, or the connection closed first).
#[derive(Clone)]
pub struct OnUpgrade {
    shared: Arc<Mutex<Slot>>,
}

/// What an [`OnUpgrade`] and the server's [`PendingUpgrade`] share.
struct Slot {
    /// The handler took the handle: it means to speak the new protocol.
    claimed: bool,
    outcome: Option<Result<Upgraded, UpgradeError>>,
    waker: Option<Waker>,
}

/// Why an [`OnUpgrade`] resolved without a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The response did not switch protocols, or the connection ended before it did.
    NotUpgraded,
    /// The connection was handed over already (an `OnUpgrade` clone awaited it first).
    AlreadyTaken,
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotUpgraded => "the connection did not switch protocols",
            UpgradeError::AlreadyTaken => "the upgraded connection was already taken",
        })
    }
}

impl std::error::Error for UpgradeError {}

impl fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnUpgrade")
            .field("claimed", &self.lock().claimed)
            .finish()
    }
}

impl OnUpgrade {
    /// Takes the upgrade handle out of `request`, telling the server that this handler will
    /// speak the new protocol if it answers `101` (or `2xx` to CONNECT). `None` when the
    /// request asked for no upgrade or tunnel, or arrived over HTTP/2.
    pub fn from_request<B>(request: &mut Request<B>) -> Option<OnUpgrade> {
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>()?;
        on_upgrade.lock().claimed = true;
        Some(on_upgrade)
    }

    /// Whether `request` carries an upgrade handle (it asked to switch protocols or to open a
    /// tunnel: an HTTP/1.1 upgrade or CONNECT, or a plain HTTP/2 CONNECT).
    pub fn is_requested<B>(request: &Request<B>) -> bool {
        request.extensions().get::<OnUpgrade>().is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.lock();
        match slot.outcome.take() {
            Some(outcome) => {
                // Later polls (of this handle or a clone) find the connection gone.
                slot.outcome = Some(Err(UpgradeError::AlreadyTaken));
                Poll::Ready(outcome)
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The server's end of an [`OnUpgrade`]: made with it for each request that asks to switch,
/// kept by the connection while the handler runs. Dropping it without
/// [`complete`](Self::complete) resolves the handle to [`UpgradeError::NotUpgraded`].
pub struct PendingUpgrade {
    shared: Arc<Mutex<Slot>>,
}

impl fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("claimed", &self.is_claimed())
            .finish()
    }
}

/// The server's end of an [`Upgraded`] connection: what it reads from the socket goes into
/// `incoming`, and what the application writes comes out of `outgoing` (an ordinary body,
/// which ends when the application closes its side).
#[derive(Debug)]
#[non_exhaustive]
pub struct UpgradedLink {
    /// Bytes from the peer, for [`Upgraded::read`]; finish it when the peer closes.
    pub incoming: BodySender,
    /// Bytes from [`Upgraded::write`]; it ends (or fails, when the application dropped the
    /// connection without closing it) when the application is done writing.
    pub outgoing: Body,
}

impl PendingUpgrade {
    /// A new pair: the [`OnUpgrade`] goes into the request's extensions, the
    /// `PendingUpgrade` stays with the connection.
    pub fn new() -> (PendingUpgrade, OnUpgrade) {
        let shared = Arc::new(Mutex::new(Slot {
            claimed: false,
            outcome: None,
            waker: None,
        }));
        (
            PendingUpgrade {
                shared: Arc::clone(&shared),
            },
            OnUpgrade { shared },
        )
    }

    /// Whether the handler took the handle with [`OnUpgrade::from_request`].
    pub fn is_claimed(&self) -> bool {
        self.lock().claimed
    }

    /// The connection switched: hands the application its [`Upgraded`] end, whose queues
    /// hold about `capacity` bytes each way and whose first bytes are `leftover` (what the
    /// client sent after its request), and returns the server's end.
    pub fn complete(self, leftover: Bytes, capacity: usize) -> UpgradedLink {
        let (mut incoming, incoming_body) = Body::channel(capacity);
        if !leftover.is_empty() {
            incoming.send_data(leftover);
        }
        let (outgoing_sender, outgoing) = Body::channel(capacity);
        let upgraded = Upgraded {
            incoming: incoming_body,
            outgoing: Some(outgoing_sender),
        };
        self.resolve(Ok(upgraded));
        UpgradedLink { incoming, outgoing }
    }

    /// An HTTP/2 CONNECT stream became a tunnel: hands the application its [`Upgraded`] end,
    /// which reads `incoming` (the stream's DATA, as a request body would carry it) and
    /// writes into the returned body (the response's, about `capacity` bytes queued), which
    /// ends when the application closes its side.
    pub fn complete_stream(self, incoming: Body, capacity: usize) -> Body {
        let (outgoing_sender, outgoing) = Body::channel(capacity);
        self.resolve(Ok(Upgraded {
            incoming,
            outgoing: Some(outgoing_sender),
        }));
        outgoing
    }

    fn resolve(&self, outcome: Result<Upgraded, UpgradeError>) {
        let mut slot = self.lock();
        if slot.outcome.is_none() {
            slot.outcome = Some(outcome);
        }
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for PendingUpgrade {
    fn drop(&mut self) {
        // After `complete` the outcome is set already and this changes nothing.
        self.resolve(Err(UpgradeError::NotUpgraded));
    }
}

/// A connection handed over after an accepted upgrade or CONNECT: the raw bytes both ways.
///
/// [`read`](Self::read) gives what the peer sends (first whatever it sent right after its
/// request), [`write`](Self::write) queues bytes for it, and [`close`](Self::close) ends the
/// connection once what was written is sent. Dropping an `Upgraded` without closing it
/// closes the connection at once (what was written but not sent yet may be lost).
pub struct Upgraded {
    incoming: Body,
    outgoing: Option<BodySender>,
}

/// The connection is closed: nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradedClosed;

impl fmt::Display for UpgradedClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the upgraded connection is closed")
    }
}

impl std::error::Error for UpgradedClosed {}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("closed", &self.outgoing.is_none())
            .finish()
    }
}

impl Upgraded {
    /// The next bytes from the peer; `None` once it closed its side (or the connection ended).
    pub async fn read(&mut self) -> Option<Bytes> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// [`read`](Self::read) as a poll function.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let polled = http_body::Body::poll_frame(Pin::new(&mut self.incoming), cx);
            return match polled {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => Poll::Ready(Some(data)),
                    _ => continue,
                },
                // A connection that ended without the peer's EOF reads as ended too.
                Poll::Ready(Some(Err(_)) | None) => Poll::Ready(None),
            };
        }
    }

    /// Queues `data` for the peer, first waiting while the connection has not taken what was
    /// written before (backpressure). `Err` once the connection is closed.
    pub async fn write(&mut self, data: Bytes) -> Result<(), UpgradedClosed> {
        std::future::poll_fn(|cx| self.poll_write_ready(cx)).await?;
        let sender = self.outgoing.as_mut().ok_or(UpgradedClosed)?;
        if sender.send_data(data) {
            Ok(())
        } else {
            Err(UpgradedClosed)
        }
    }

    /// Ready once [`write`](Self::write) would queue without waiting; `Err` once the
    /// connection is closed.
    pub fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), UpgradedClosed>> {
        let Some(sender) = &self.outgoing else {
            return Poll::Ready(Err(UpgradedClosed));
        };
        match sender.poll_capacity(cx) {
            Poll::Ready(()) if sender.is_closed() => Poll::Ready(Err(UpgradedClosed)),
            Poll::Ready(()) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ends our side: the server writes what was queued, then closes the connection. Reading
    /// what the peer already sent remains possible.
    pub fn close(&mut self) {
        if let Some(sender) = self.outgoing.take() {
            sender.finish();
        }
    }
}
