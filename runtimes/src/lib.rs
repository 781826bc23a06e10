//! weft-runtime: complete weft servers on the runtime of your choice.
//!
//! Each runtime is a cargo feature and a module with the same entry point,
//! `start(config, service) -> ServerHandle`, so the runtime is a one-word choice:
//!
//! | feature | module | model |
//! |---|---|---|
//! | `mio` | `mio` | one event loop per worker thread on mio (epoll, kqueue, IOCP), edge-triggered; handler futures polled on the loop thread; the connections are weft-adapters' readiness driver (`weft_adapters::driver`), which applications embed in their own mio loop |
//! | `smol` | `smol` | a smol executor on `workers` threads |
//! | `async-std` | `async_std` | async-std's global executor (async-std is discontinued upstream: supported, but deprecated) |
//! | `poll` | `poll` | the same event loops on the `polling` crate (epoll, kqueue, IOCP, `poll(2)`): the portable fallback |
//! | `threadpool` | `threadpool` | a pool of `workers` threads over blocking sockets that take turns at waiting on idle connections (leader and followers), which hold no worker |
//! | `tokio` | `tokio` | a multi-threaded tokio runtime with `workers` threads |
//!
//! # Choosing the runtime
//!
//! [`start`] serves on the runtime compiled in, chosen by cargo feature alone; with several
//! runtime features on, the first of **tokio > smol > mio > poll > threadpool > async-std**
//! wins ([`Runtime::ALL`] is that order). [`start_on`] takes a [`Runtime`] chosen at run time
//! (`"mio".parse()`), and [`tokio::start_on_handle`] serves on a tokio runtime the application
//! already runs (inside `#[tokio::main]`).
//!
//! # What applications get
//!
//! Every runtime gives application code [`weft_service::runtime`]'s services, reached without
//! naming the runtime: `spawn` (a detached task), `sleep`/`sleep_until`, `timeout`,
//! `spawn_blocking`, and the server's `ShutdownSignal` (also in every request's extensions,
//! with the `RuntimeHandle`), which fires when the drain begins so that long polls, event
//! streams and WebSockets end cleanly. [`ServerConfig::on_start`] and
//! [`ServerConfig::on_shutdown`] run hooks once when the server listens and when it starts
//! draining. Which threads provide the services on each runtime: see the `services` table in
//! the repository (`runtimes/src/services.rs`); in short, each runtime's own executor and
//! timer where it has them (smol, async-std, tokio), and on mio, poll and threadpool one task
//! thread per server (started by the first `spawn`) and async-io's timer.
//!
//! With the default feature `tokio-compat`, the non-tokio runtimes also enter a background
//! tokio runtime (one thread per process) around application code, so libraries that need
//! tokio's reactor work on every runtime: see [`tokio_compat`].
//!
//! Every runtime binds with `SO_REUSEADDR`, sets `TCP_NODELAY`, stops accepting past
//! [`ServerConfig::max_connections`] until a connection ends, arms the protocol's timeouts on
//! its own timer, answers a panicking handler with `500` and lives on, and shuts down
//! gracefully on [`ServerHandle::shutdown`] or, when asked, on SIGINT/SIGTERM: it stops
//! accepting, closes idle connections, lets requests in flight finish until
//! [`ServerConfig::drain_timeout`], then exits.

// Without a runtime feature there is nothing to run: the shared pieces go unused.
#![cfg_attr(
    not(any(
        feature = "smol",
        feature = "async-std",
        feature = "tokio",
        feature = "mio",
        feature = "poll",
        feature = "threadpool"
    )),
    allow(dead_code)
)]

mod blocking_work;
mod config;
mod gate;
mod listener;
mod select;
mod services;
mod shutdown;
mod tls;
pub mod tokio_compat;

#[cfg(any(feature = "smol", feature = "async-std", feature = "tokio"))]
mod async_server;

#[cfg(any(feature = "mio", feature = "poll"))]
mod event_loop;

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "mio")]
pub mod mio;
#[cfg(feature = "poll")]
pub mod poll;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "threadpool")]
pub mod threadpool;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use blocking_work::spawn_blocking;
pub use config::{ServerConfig, ServerHandle, ShutdownHook, StartHook};
pub use select::{Runtime, UnknownRuntime, start, start_on};
pub use services::background_runtime;
pub use shutdown::Shutdown;
pub use tls::{TlsError, TlsFiles};
