//! The smol runtime: one smol executor run by `workers` threads.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use weft_adapters::futures_io::{Sleep, Timer};
use weft_service::runtime::BoxFuture;
use weft_service::service::{Service, erase};

use crate::async_server::{self, AsyncRuntime};
use crate::config::{ServerConfig, ServerHandle};
use crate::services::{CompatServices, Spawner};
use crate::shutdown::Shutdown;

/// Serves `service` on smol until shut down; returns once listening.
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    async_server::start::<SmolRuntime>(config, erase(service))
}

pub(crate) struct SmolRuntime {
    executor: Arc<smol::Executor<'static>>,
    stop: Shutdown,
    threads: Vec<JoinHandle<()>>,
}

/// smol's timer (async-io's).
#[derive(Clone, Copy)]
pub(crate) struct SmolTimer;

impl Timer for SmolTimer {
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }
}

/// Applications' tasks on the server's executor.
pub(crate) struct SmolSpawner {
    /// Weak: the executor holds the tasks, which hold this.
    executor: Weak<smol::Executor<'static>>,
}

impl Spawner for SmolSpawner {
    fn spawn(&self, task: BoxFuture<()>) {
        if let Some(executor) = self.executor.upgrade() {
            executor.spawn(task).detach();
        }
    }
}

impl AsyncRuntime for SmolRuntime {
    type Listener = smol::net::TcpListener;
    type Stream = smol::net::TcpStream;
    type Timer = SmolTimer;
    type Services = CompatServices<SmolSpawner>;

    fn start(workers: usize) -> io::Result<Self> {
        let executor = Arc::new(smol::Executor::new());
        let stop = Shutdown::new();
        let threads = (0..workers.max(1))
            .map(|i| {
                let (executor, stop) = (Arc::clone(&executor), stop.clone());
                std::thread::Builder::new()
                    .name(format!("weft-smol-{i}"))
                    .spawn(move || smol::block_on(executor.run(stop.wait())))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(SmolRuntime {
            executor,
            stop,
            threads,
        })
    }

    fn listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        smol::net::TcpListener::try_from(listener)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.executor.spawn(task).detach();
    }

    fn timer(&self) -> SmolTimer {
        SmolTimer
    }

    fn services(&self, stopped: Shutdown) -> io::Result<Self::Services> {
        let executor = Arc::downgrade(&self.executor);
        CompatServices::new("smol", SmolSpawner { executor }, stopped)
    }

    fn stop(self) {
        self.stop.trigger();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
