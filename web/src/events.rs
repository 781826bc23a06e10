//! A typed in-process event emitter: the event's type is its name.
