//! The tokio runtime: a multi-threaded tokio runtime with `workers` threads.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use weft_adapters::futures_io::{Sleep, Timer};
use weft_service::service::{Service, erase};

use crate::async_server::{self, AsyncRuntime};
use crate::config::{ServerConfig, ServerHandle};

/// Serves `service` on tokio until shut down; returns once listening.
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    async_server::start::<TokioRuntime>(config, erase(service))
}

pub(crate) struct TokioRuntime {
    runtime: tokio::runtime::Runtime,
}

/// tokio's timer.
#[derive(Clone, Copy)]
pub(crate) struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

impl AsyncRuntime for TokioRuntime {
    type Listener = tokio::net::TcpListener;
    type Stream = Compat<tokio::net::TcpStream>;
    type Timer = TokioTimer;

    fn start(workers: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("weft-tokio")
            .enable_all()
            .build()?;
        Ok(TokioRuntime { runtime })
    }

    fn listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        let _entered = self.runtime.enter();
        tokio::net::TcpListener::from_std(listener)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream.compat(), peer))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(task);
    }

    fn timer(&self) -> TokioTimer {
        TokioTimer
    }

    fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}
