//! A typed in-process event emitter: the event's type is its name
//! (`events.emit(UserCreated { .. })`).
//!
//! Skeleton: `emit` and synchronous listeners; async and blocking listeners, priorities,
//! once-listeners and failure isolation land next.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::App;

type SyncListener = Arc<dyn Fn(&(dyn Any + Send + Sync)) + Send + Sync>;

/// The emitter: cheap to clone, every clone shares the listeners.
#[derive(Clone, Default)]
pub struct Events {
    listeners: Arc<RwLock<HashMap<TypeId, Vec<SyncListener>>>>,
}

impl Events {
    /// An emitter with no listener.
    pub fn new() -> Self {
        Events::default()
    }

    /// Calls `listener` with every event of type `E` emitted from now on.
    pub fn on<E: Send + Sync + 'static>(&self, listener: impl Fn(&E) + Send + Sync + 'static) {
        let erased: SyncListener = Arc::new(move |event| {
            if let Some(event) = event.downcast_ref::<E>() {
                listener(event);
            }
        });
        self.listeners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(TypeId::of::<E>())
            .or_default()
            .push(erased);
    }

    /// Sends `event` to the listeners of its type.
    pub fn emit<E: Send + Sync + 'static>(&self, event: E) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&TypeId::of::<E>())
            .cloned()
            .unwrap_or_default();
        for listener in listeners {
            listener(&event);
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// The app's emitter, made and registered as a service (`Inject<Events>`) on first use: the
/// scheduler and the queues emit their events through it.
pub(crate) fn app_events(app: &mut App) -> Events {
    app.part(|app| {
        let events = Events::new();
        app.providers
            .push(crate::services::Provider::value(events.clone()));
        events
    })
}

impl App {
    /// Calls `listener` with every event of type `E` the app's [`Events`] emits.
    pub fn on<E: Send + Sync + 'static>(
        mut self,
        listener: impl Fn(&E) + Send + Sync + 'static,
    ) -> Self {
        app_events(&mut self).on(listener);
        self
    }
}
