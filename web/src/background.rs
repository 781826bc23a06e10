//! Work an app runs beside its requests (the [scheduler](crate::schedule), queue
//! [workers](crate::queue)): started once the server listens, stopped when it drains.
//!
//! [`App::background`](crate::App::background) registers a [`Background`]. When the app is
//! served ([`AppService::listen`](crate::AppService::listen)), each one's
//! [`start`](Background::start) runs once the server listens, on its runtime (so it can
//! spawn tasks and use timers, on every runtime). When the server begins to drain, every
//! component is told to stop ([`begin_stop`](Background::begin_stop)), then the drain waits
//! for their running work ([`wait_stopped`](Background::wait_stopped)) up to the server's
//! drain deadline, beside the requests in flight.

use std::sync::Arc;
use std::time::Instant;

use weft_service::runtime::RuntimeHandle;

use crate::error::Error;

/// A component that runs work in the background of a served app.
pub trait Background: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &str;

    /// Starts: spawns its tasks on `runtime`. Called once, with the runtime entered.
    fn start(&self, runtime: &RuntimeHandle) -> Result<(), Error>;

    /// Stops taking new work (no new tick, no new job); running work goes on.
    fn begin_stop(&self);

    /// Blocks until the running work has ended or `deadline` has passed; `true` if it ended.
    /// Work still running at the deadline is abandoned (a queue job's lease then runs out and
    /// it runs again elsewhere).
    fn wait_stopped(&self, deadline: Instant) -> bool;
}

/// The background components of an app, started and stopped together.
#[derive(Clone, Default)]
pub(crate) struct BackgroundSet {
    components: Vec<Arc<dyn Background>>,
}

impl BackgroundSet {
    pub(crate) fn push(&mut self, component: Arc<dyn Background>) {
        self.components.push(component);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// Starts every component on `runtime`; one that fails is logged, the others start.
    pub(crate) fn start(&self, runtime: &RuntimeHandle) {
        for component in &self.components {
            if let Err(error) = component.start(runtime) {
                tracing::error!(component = component.name(), %error, "background work failed to start");
            }
        }
    }

    /// Tells every component to stop, then waits for them all up to `deadline`.
    pub(crate) fn stop(&self, deadline: Instant) {
        for component in &self.components {
            component.begin_stop();
        }
        for component in &self.components {
            if !component.wait_stopped(deadline) {
                tracing::warn!(
                    component = component.name(),
                    "drain deadline passed with background work still running"
                );
            }
        }
    }
}

impl std::fmt::Debug for BackgroundSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.components.iter().map(|c| c.name()))
            .finish()
    }
}
