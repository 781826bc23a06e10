//! The async-std runtime, on async-std's global executor.
//!
//! **Deprecated**: async-std is discontinued upstream (its authors point to smol). It is kept
//! for applications that already run on it; new ones should choose `smol` or `tokio`. Its
//! executor is global, so `ServerConfig::workers` does not apply: async-std sizes its own pool
//! (`ASYNC_STD_THREAD_COUNT`).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use weft_adapters::futures_io::{Sleep, Timer};
use weft_service::runtime::BoxFuture;
use weft_service::service::{Service, erase};

use crate::async_server::{self, AsyncRuntime};
use crate::config::{ServerConfig, ServerHandle};
use crate::services::{CompatServices, Spawner};
use crate::shutdown::Shutdown;

/// Serves `service` on async-std until shut down; returns once listening.
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    async_server::start::<AsyncStdRuntime>(config, erase(service))
}

pub(crate) struct AsyncStdRuntime;

/// async-std's timer.
#[derive(Clone, Copy)]
pub(crate) struct AsyncStdTimer;

impl Timer for AsyncStdTimer {
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(async move {
            async_std::task::sleep(deadline.saturating_duration_since(Instant::now())).await;
        })
    }
}

/// Applications' tasks on async-std's global executor (ended when the server stops, as the
/// executor lives on).
pub(crate) struct AsyncStdSpawner;

impl Spawner for AsyncStdSpawner {
    fn spawn(&self, task: BoxFuture<()>) {
        async_std::task::spawn(task);
    }
}

impl AsyncRuntime for AsyncStdRuntime {
    type Listener = async_std::net::TcpListener;
    type Stream = async_std::net::TcpStream;
    type Timer = AsyncStdTimer;
    type Services = CompatServices<AsyncStdSpawner>;

    fn start(_workers: usize) -> io::Result<Self> {
        Ok(AsyncStdRuntime)
    }

    fn listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        Ok(async_std::net::TcpListener::from(listener))
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        async_std::task::spawn(task);
    }

    fn timer(&self) -> AsyncStdTimer {
        AsyncStdTimer
    }

    fn services(&self, stopped: Shutdown) -> io::Result<Self::Services> {
        CompatServices::new("async-std", AsyncStdSpawner, stopped)
    }

    fn stop(self) {}
}
