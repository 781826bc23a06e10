//! Queues and workers on an [`App`]: [`App::queue`] makes a queue injectable through the
//! [`Queues`] registry, [`App::worker`] runs a worker in the app's background.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::producer::Queue;
use super::worker::Worker;
use crate::App;

/// The app's queues, by name: a service, so a handler takes `Inject<Queues>` and picks its
/// queue with [`get`](Queues::get).
///
/// ```
/// use std::sync::Arc;
/// use weft::backend::memory::MemoryBackend;
/// use weft::prelude::*;
/// use weft::queue::{Queue, Queues};
/// use weft::services::Inject;
///
/// async fn signup(queues: Inject<Queues>) -> Result<String, weft::queue::QueueError> {
///     let mail = queues.get("mail").expect("registered with App::queue");
///     let id = mail.add("welcome", &"ada@example.com").await?;
///     Ok(id.to_string())
/// }
///
/// let store = Arc::new(MemoryBackend::new());
/// let app = App::new()
///     .queue(Queue::new("mail", store.clone()))
///     .queue(Queue::new("images", store))
///     .post("/signup", signup);
/// # let _ = app.build().unwrap();
/// ```
///
/// One registry for every queue (rather than `Inject<Queue>`) because an app usually has
/// several, and a service is registered once per type.
#[derive(Clone, Default)]
pub struct Queues {
    queues: Arc<RwLock<BTreeMap<String, Queue>>>,
}

impl Queues {
    /// The queue named `name`, if the app registered one.
    pub fn get(&self, name: &str) -> Option<Queue> {
        self.queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The names of the registered queues, in order.
    pub fn names(&self) -> Vec<String> {
        self.queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    fn insert(&self, queue: Queue) {
        self.queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(queue.name().to_owned(), queue);
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl App {
    /// Registers `queue` in the app's [`Queues`] (a service: handlers take
    /// `Inject<Queues>`). A second queue with the same name replaces the first.
    pub fn queue(mut self, queue: Queue) -> Self {
        let queues = self.part(|app| {
            let queues = Queues::default();
            app.providers
                .push(crate::services::Provider::value(queues.clone()));
            queues
        });
        queues.insert(queue);
        self
    }

    /// Runs `worker` in the app's background: started once the server listens, stopped when
    /// it drains (running jobs are waited for up to the drain deadline; see
    /// [`crate::background`]). Its events go through the app's
    /// [`Events`](crate::events::Events) (and so to [`App::on`] listeners) unless its queue
    /// was given an emitter with [`Queue::with_events`].
    pub fn worker(mut self, mut worker: Worker) -> Self {
        worker.default_events(|| crate::events::app_events(&mut self));
        self.background(worker)
    }
}
