//! The in-memory backend keeps the `QueueStore` contract (see `support/queue_conformance.rs`).

use std::sync::Arc;

use weft::backend::memory::MemoryBackend;

#[path = "support/queue_conformance.rs"]
mod queue_conformance;

#[test]
fn memory_backend_keeps_the_queue_contract() {
    queue_conformance::run_all(&|| Arc::new(MemoryBackend::new()));
}

#[test]
fn memory_backend_answers_inline() {
    use weft::queue::store::QueueStore;
    assert!(QueueStore::runs_inline(&MemoryBackend::new()));
}
