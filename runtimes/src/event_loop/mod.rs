//! The event-loop server shared by the [`mio`](crate::mio) and [`poll`](crate::poll) runtimes.
//! The two differ only in their reactor, behind [`Reactor`].
//!
//! # Shape
//!
//! One loop per worker thread ([`ServerConfig::workers`]). A loop owns a reactor, a readiness
//! [`Driver`] (weft-adapters' `driver`: its connections, their deadlines, their wake-ups and
//! TLS) and a [`Mailbox`] through which other threads reach it. What is a runtime's business
//! stays here: listeners and accepting, the hand-off between loops, the connection gate (each
//! connection carries its [`Permit`] as the driver's ticket) and shutdown. Handler futures and
//! bodies are polled on the thread of the loop that owns their connection; their wakers queue
//! the connection in the driver's mailbox and wake the reactor. Nothing here sleeps or spins: a
//! loop blocks only in its reactor's wait, bounded by its nearest deadline.
//!
//! # Accepting
//!
//! Loop 0 owns every listener, accepts, and hands each connection round-robin to a loop (itself
//! included: those it registers at once) through the loop's mailbox. This was chosen over every
//! loop accepting from one shared listener because
//! - a mio source belongs to one `Poll` only (on Windows mio enforces it), and a listener shared
//!   by several epoll sets wakes every loop for each new connection (a thundering herd: mio
//!   offers no `EPOLLEXCLUSIVE`);
//! - the connection gate is global: with one acceptor, one thread consults it, stops accepting
//!   when it is full (it leaves the listeners' readiness unanswered, so new clients wait in the
//!   kernel's backlog) and resumes when a connection ends on any loop (the gate wakes it through
//!   its mailbox).
//!
//! The cost is a mutex and at most one reactor notification per connection handed to another
//! loop, small next to the accept itself. Distribution is by count, not load: a fair share for
//! the many-similar-connections case a web server mostly sees.
//!
//! # One turn of a loop
//!
//! wait (until the nearest deadline, or not at all when work is left) → one clock read →
//! readiness events → commands → connections handed over → wake-ups → accept (loop 0) → due
//! timers. The clock is read once per turn, after the wait; the next turn's timeout is computed
//! from that reading, so a deadline is handled late by at most the time the turn's own work took
//! (microseconds, next to the millisecond the timeout is rounded up to) and a deadline set
//! during the turn counts from its start. Every step is bounded: events by the
//! reactor's batch, accepts by [`ACCEPTS_PER_TURN`] per listener, each connection by its round
//! budget (one with work left queues itself for the next turn), timers by
//! [`TIMERS_PER_TURN`](weft_adapters::driver::TIMERS_PER_TURN).
//!
//! # Shutdown
//!
//! The thread behind [`ServerHandle`] waits for the [`Shutdown`] switch, then tells every loop
//! to drain: loop 0 closes its listeners, and every loop shuts each connection down gracefully
//! (idle ones close at once, requests in flight are answered with `connection: close`). A
//! draining loop ends once it has no connection left. At [`ServerConfig::drain_timeout`] the
//! thread tells the loops to stop, which closes what is left, and joins them.
//!
//! # Panics
//!
//! A handler that panics is answered with `500` by the [`Dispatcher`]. Anything else panicking
//! while a connection is moved (`Service::call` itself, a body's `Drop`) is caught around that
//! connection's work: the connection is dropped and the loop goes on. A panic of the loop's own
//! code (a bug) ends that loop and starts the server's shutdown, and `join` reports it.
//!
//! # TLS
//!
//! rustls's `ServerConnection` sits directly on the non-blocking socket, in the driver.

mod mailbox;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weft_adapters::driver::{Driver, Mailbox as Wakeups, Notify, Ready, Registry};
use weft_service::service::DynService;

use self::mailbox::{Command, GateWaker, Mailbox};
use crate::config::{ServerConfig, ServerHandle};
use crate::gate::{ConnectionGate, Permit};
use crate::listener::{Prepared, prepare};
use crate::services::{Lifecycle, PoolServices};
use crate::shutdown::Shutdown;

/// Connections one listener accepts per turn of the loop.
const ACCEPTS_PER_TURN: usize = 64;

/// How long accepting pauses after an error such as running out of file descriptors, rather
/// than spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The reactor key of the loop's own wake-ups (mio needs a token for its `Waker`).
pub(crate) const WAKE_KEY: usize = usize::MAX - 1;

/// The reactor key of listener 0; listener `i` has `FIRST_LISTENER_KEY - i`. Connections have
/// their slab index, far below.
const FIRST_LISTENER_KEY: usize = usize::MAX - 2;

/// What distinguishes the event-loop runtimes: how sockets are registered (the driver's
/// [`Registry`], whose `Stream`, an accepted stream not yet registered, may travel to another
/// loop) and waited on.
pub(crate) trait Reactor: Registry<Stream: Send + 'static> + Send + Sized + 'static {
    /// The runtime's name, for threads and logs.
    const NAME: &'static str;

    /// A registered listener.
    type Listener: Send;

    /// A reactor with nothing registered.
    fn new() -> io::Result<Self>;
    /// What wakes this reactor's wait from another thread (called once).
    fn notifier(&mut self) -> io::Result<Box<dyn Notify>>;
    /// Registers a bound, non-blocking listener for readability under `key`.
    fn add_listener(&mut self, listener: TcpListener, key: usize) -> io::Result<Self::Listener>;
    /// Arms a one-shot listener again after it answered `WouldBlock`.
    fn rearm_listener(&mut self, listener: &Self::Listener, key: usize) -> io::Result<()>;
    /// Deregisters and closes a listener.
    fn remove_listener(&mut self, listener: Self::Listener);
    /// Accepts a connection, non-blocking and with `TCP_NODELAY`.
    fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)>;
    /// Blocks until readiness, a notification or `timeout`; appends what is ready to `ready`
    /// (an interrupted wait returns with nothing).
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut Vec<Ready>) -> io::Result<()>;
}

/// What every loop of a server shares beyond its driver's settings.
struct Server {
    gate: Arc<ConnectionGate>,
    shutdown: Shutdown,
}

/// A connection on its way from the accepting loop to the loop that will serve it.
pub(crate) struct Accepted<St> {
    stream: St,
    peer: SocketAddr,
    local: SocketAddr,
    permit: Permit,
}

type LoopMailbox<R> = Mailbox<Accepted<<R as Registry>::Stream>>;

/// Binds, starts `config.workers` loops on reactor `R` and serves `service` until shut down;
/// returns once listening.
pub(crate) fn start<R: Reactor>(
    mut config: ServerConfig,
    service: Arc<dyn DynService>,
) -> io::Result<ServerHandle> {
    let Prepared {
        listeners,
        local_addrs,
        tls,
    } = prepare(&config)?;
    let shutdown = Shutdown::new();
    let stopped = Shutdown::new();
    let (services, tasks) = PoolServices::with_pool(R::NAME, stopped.clone())?;
    let lifecycle = Lifecycle::new(&mut config, &shutdown, stopped, services, Some(tasks));
    let gate = ConnectionGate::new(config.max_connections);
    let server = Arc::new(Server {
        gate: Arc::clone(&gate),
        shutdown: shutdown.clone(),
    });

    let mut reactors = (0..config.workers.max(1))
        .map(|_| R::new())
        .collect::<io::Result<Vec<_>>>()?;
    let mailboxes = reactors
        .iter_mut()
        .map(|reactor| {
            let wakeups = Arc::new(Wakeups::new(reactor.notifier()?));
            Ok(Arc::new(Mailbox::new(wakeups)))
        })
        .collect::<io::Result<Vec<Arc<LoopMailbox<R>>>>>()?;
    let acceptor = Acceptor::new(&mut reactors[0], listeners, &local_addrs, &mailboxes)?;
    let mut acceptor = Some(acceptor);

    let mut threads = Vec::with_capacity(reactors.len());
    for (id, reactor) in reactors.into_iter().enumerate() {
        let driver = Driver::new(
            Arc::clone(&service),
            config.dispatch.clone(),
            tls.clone(),
            Arc::clone(mailboxes[id].wakeups()),
        );
        let worker = Worker {
            id,
            reactor,
            server: Arc::clone(&server),
            mailbox: Arc::clone(&mailboxes[id]),
            driver,
            ready: Vec::new(),
            handed: VecDeque::new(),
            acceptor: acceptor.take(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("weft-{}-{id}", R::NAME))
            .spawn(move || worker.run_guarded());
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                for mailbox in &mailboxes {
                    mailbox.command(Command::Stop);
                }
                join_all(threads)?;
                return Err(error);
            }
        }
    }
    if config.handle_signals {
        shutdown.on_signals()?;
    }

    let drain_timeout = config.drain_timeout;
    let lifecycle = Arc::new(lifecycle);
    let started = Arc::clone(&lifecycle);
    let coordinator = {
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name(format!("weft-{}", R::NAME))
            .spawn(move || {
                shutdown.wait_blocking_until(None);
                let deadline = Instant::now() + drain_timeout;
                for mailbox in &mailboxes {
                    mailbox.command(Command::Drain);
                }
                lifecycle.draining();
                let drained = gate.wait_idle_until(deadline);
                if !drained {
                    tracing::warn!(
                        left = gate.active(),
                        "drain deadline passed; closing the rest"
                    );
                    for mailbox in &mailboxes {
                        mailbox.command(Command::Stop);
                    }
                }
                let joined = join_all(threads);
                lifecycle.stopped();
                joined
            })
    };
    let coordinator = match coordinator {
        Ok(thread) => thread,
        Err(error) => {
            // The loops run and nobody would stop them: stop them now.
            shutdown.trigger();
            return Err(error);
        }
    };
    started.started(&local_addrs);
    Ok(ServerHandle {
        local_addrs,
        shutdown,
        thread: Some(coordinator),
    })
}

/// Joins the loops; the first error wins.
fn join_all(threads: Vec<JoinHandle<io::Result<()>>>) -> io::Result<()> {
    let mut result = Ok(());
    for thread in threads {
        let outcome = thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("event loop thread panicked")));
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

/// Loop 0's listeners and the hand-off to the other loops.
struct Acceptor<R: Reactor> {
    listeners: Vec<ListenerSlot<R::Listener>>,
    /// Every loop's mailbox, by loop id.
    loops: Vec<Arc<LoopMailbox<R>>>,
    /// The loop the next connection goes to.
    next: usize,
    /// The gate is full: accepting waits for it to wake us.
    paused: bool,
    /// Accepting failed (out of descriptors, say): retry then.
    backoff_until: Option<Instant>,
    /// A permit taken for an accept that found no connection, kept for the next one.
    spare: Option<Permit>,
    gate_waker: Waker,
}

struct ListenerSlot<L> {
    listener: L,
    local: SocketAddr,
    /// No accept has answered `WouldBlock` since its last readiness event.
    ready: bool,
}

impl<R: Reactor> Acceptor<R> {
    fn new(
        reactor: &mut R,
        listeners: Vec<TcpListener>,
        local_addrs: &[SocketAddr],
        loops: &[Arc<LoopMailbox<R>>],
    ) -> io::Result<Self> {
        let listeners = listeners
            .into_iter()
            .zip(local_addrs)
            .enumerate()
            .map(|(i, (listener, &local))| {
                Ok(ListenerSlot {
                    listener: reactor.add_listener(listener, FIRST_LISTENER_KEY - i)?,
                    local,
                    // Clients may be waiting already.
                    ready: true,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Acceptor {
            listeners,
            loops: loops.to_vec(),
            next: 0,
            paused: false,
            backoff_until: None,
            spare: None,
            gate_waker: Waker::from(Arc::new(GateWaker(Arc::clone(&loops[0])))),
        })
    }

    /// Whether accepting has work for this very turn.
    fn has_work(&self) -> bool {
        !self.paused && self.backoff_until.is_none() && self.listeners.iter().any(|l| l.ready)
    }
}

/// What a reactor key stands for.
enum Source {
    Wake,
    Listener(usize),
    Connection,
}

impl Source {
    fn of(key: usize) -> Source {
        match key {
            WAKE_KEY => Source::Wake,
            key if key > usize::MAX / 2 => Source::Listener(FIRST_LISTENER_KEY - key),
            _ => Source::Connection,
        }
    }
}

/// One event loop, run by one thread.
struct Worker<R: Reactor> {
    id: usize,
    reactor: R,
    server: Arc<Server>,
    mailbox: Arc<LoopMailbox<R>>,
    /// The connections, each holding its permit.
    driver: Driver<R::Socket, Permit>,
    /// Buffers kept across turns, to reuse their allocations.
    ready: Vec<Ready>,
    handed: VecDeque<Accepted<R::Stream>>,
    /// Loop 0's, until shutdown.
    acceptor: Option<Acceptor<R>>,
}

impl<R: Reactor> Worker<R> {
    /// Runs the loop; a failure or panic of the loop itself starts the server's shutdown.
    fn run_guarded(self) -> io::Result<()> {
        let (mailbox, shutdown, id) = (
            Arc::clone(&self.mailbox),
            self.server.shutdown.clone(),
            self.id,
        );
        let result = catch_unwind(AssertUnwindSafe(|| self.run()))
            .unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
        // Whatever is handed over from now on is closed by the acceptor.
        let late = mailbox.close();
        if !late.is_empty() {
            tracing::debug!(
                count = late.len(),
                "closing connections handed over during shutdown"
            );
        }
        if let Err(error) = &result {
            tracing::error!(loop_id = id, %error, "event loop failed; shutting the server down");
            shutdown.trigger();
        }
        result
    }

    fn run(mut self) -> io::Result<()> {
        let mut command = Command::Run;
        // The one clock read of each turn, after its wait; the next turn's timeout is computed
        // from it (late by at most the turn's own work: harmless for protocol timeouts).
        let mut now = Instant::now();
        loop {
            let timeout = self.wait_timeout(now);
            let timeout = if timeout == Some(Duration::ZERO) || !self.mailbox.prepare_sleep(command)
            {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            self.ready.clear();
            let waited = self.reactor.wait(timeout, &mut self.ready);
            self.mailbox.awake();
            waited?;
            now = Instant::now();

            self.handle_ready(now);
            let latest = self.mailbox.current_command();
            if latest != command {
                command = latest;
                match command {
                    Command::Run => {}
                    Command::Drain => self.drain(now),
                    Command::Stop => {
                        self.stop();
                        return Ok(());
                    }
                }
            }
            self.adopt_handed(now);
            self.driver.handle_woken(&mut self.reactor, now);
            self.accept(now);
            self.driver.handle_timers(&mut self.reactor, now);
            if command != Command::Run && self.driver.is_empty() {
                return Ok(());
            }
        }
    }

    /// How long the reactor may wait: not at all with accepting to do, else until the nearest
    /// deadline (rounded up to the millisecond most reactors count in, so as not to wake just
    /// before it and spin).
    fn wait_timeout(&self, now: Instant) -> Option<Duration> {
        let backoff = match &self.acceptor {
            Some(acceptor) if acceptor.has_work() => return Some(Duration::ZERO),
            Some(acceptor) => acceptor.backoff_until,
            None => None,
        };
        let deadline = match (self.driver.next_deadline(), backoff) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        deadline.map(|deadline| {
            let left = deadline.saturating_duration_since(now);
            Duration::from_millis(left.as_nanos().div_ceil(1_000_000) as u64)
        })
    }

    fn handle_ready(&mut self, now: Instant) {
        let ready = std::mem::take(&mut self.ready);
        for event in &ready {
            match Source::of(event.key) {
                // The notification only ends the wait; the mailbox says what for.
                Source::Wake => {}
                Source::Listener(index) => {
                    if let Some(slot) = self
                        .acceptor
                        .as_mut()
                        .and_then(|a| a.listeners.get_mut(index))
                    {
                        slot.ready = true;
                    }
                }
                Source::Connection => self.driver.handle_ready(&mut self.reactor, *event, now),
            }
        }
        self.ready = ready;
    }

    /// Registers the connections other loops handed over (or this one accepted).
    fn adopt_handed(&mut self, now: Instant) {
        self.mailbox.take_handed(&mut self.handed);
        while let Some(accepted) = self.handed.pop_front() {
            self.adopt(accepted, now);
        }
    }

    fn adopt(&mut self, accepted: Accepted<R::Stream>, now: Instant) {
        let Accepted {
            stream,
            peer,
            local,
            permit,
        } = accepted;
        let added = self
            .driver
            .add(&mut self.reactor, stream, peer, local, permit, now);
        if let Err(error) = added {
            tracing::warn!(%peer, %error, "cannot start serving a connection; closing it");
        }
    }

    /// Accepts on loop 0's ready listeners while the gate has room, handing connections out.
    fn accept(&mut self, now: Instant) {
        let Some(mut acceptor) = self.acceptor.take() else {
            return;
        };
        if self.mailbox.take_gate_open() {
            acceptor.paused = false;
        }
        if acceptor.backoff_until.is_some_and(|until| now < until) {
            self.acceptor = Some(acceptor);
            return;
        }
        acceptor.backoff_until = None;
        'listeners: for index in 0..acceptor.listeners.len() {
            for _ in 0..ACCEPTS_PER_TURN {
                if acceptor.paused || !acceptor.listeners[index].ready {
                    break;
                }
                let permit = match acceptor.spare.take() {
                    Some(permit) => permit,
                    None => {
                        let mut cx = Context::from_waker(&acceptor.gate_waker);
                        match self.server.gate.poll_acquire(&mut cx) {
                            Poll::Ready(permit) => permit,
                            Poll::Pending => {
                                tracing::debug!("connection limit reached; accepting paused");
                                acceptor.paused = true;
                                break 'listeners;
                            }
                        }
                    }
                };
                let slot = &mut acceptor.listeners[index];
                match R::accept(&slot.listener) {
                    Ok((stream, peer)) => {
                        let accepted = Accepted {
                            stream,
                            peer,
                            local: slot.local,
                            permit,
                        };
                        let target = acceptor.next;
                        acceptor.next = (acceptor.next + 1) % acceptor.loops.len();
                        if target == self.id {
                            self.adopt(accepted, now);
                        } else if acceptor.loops[target].hand_over(accepted).is_err() {
                            tracing::debug!(%peer, "the loop chosen has ended; connection closed");
                        }
                    }
                    Err(error) => {
                        acceptor.spare = Some(permit);
                        match error.kind() {
                            io::ErrorKind::WouldBlock => {
                                slot.ready = false;
                                if R::ONESHOT {
                                    let key = FIRST_LISTENER_KEY - index;
                                    if let Err(error) =
                                        self.reactor.rearm_listener(&slot.listener, key)
                                    {
                                        tracing::error!(%error, local = %slot.local, "cannot re-arm a listener; it accepts no more");
                                    }
                                }
                            }
                            // The client gave up before we accepted: the next one may be there.
                            io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted => {}
                            _ => {
                                tracing::warn!(%error, local = %slot.local, "accept failed; retrying shortly");
                                acceptor.backoff_until = Some(now + ACCEPT_BACKOFF);
                                break 'listeners;
                            }
                        }
                    }
                }
            }
        }
        self.acceptor = Some(acceptor);
    }

    /// Starts the graceful shutdown of this loop.
    fn drain(&mut self, now: Instant) {
        if let Some(acceptor) = self.acceptor.take() {
            for slot in acceptor.listeners {
                self.reactor.remove_listener(slot.listener);
            }
            tracing::info!("stopped accepting; draining connections");
        }
        tracing::debug!(
            loop_id = self.id,
            connections = self.driver.len(),
            "draining"
        );
        self.driver.drain(&mut self.reactor, now);
    }

    /// Closes every connection at once (the drain deadline passed).
    fn stop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            for slot in acceptor.listeners {
                self.reactor.remove_listener(slot.listener);
            }
        }
        self.driver.close_all(&mut self.reactor);
    }
}
