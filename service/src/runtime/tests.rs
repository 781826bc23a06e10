//! The handle and the free functions over a runtime made of plain threads.

use std::any::Any;
use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::{
    BlockingWork, BoxFuture, Elapsed, RuntimeHandle, RuntimeServices, ShutdownSignal,
    ShutdownSource,
};

/// Polls `future` on this thread until it completes.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// A value another thread sets once.
struct Slot<T> {
    value: Mutex<(Option<T>, Option<Waker>)>,
}

impl<T: Send + 'static> Slot<T> {
    fn new() -> Arc<Self> {
        Arc::new(Slot {
            value: Mutex::new((None, None)),
        })
    }

    fn set(&self, value: T) {
        let mut slot = self.value.lock().unwrap();
        slot.0 = Some(value);
        if let Some(waker) = slot.1.take() {
            waker.wake();
        }
    }

    fn take(self: Arc<Self>) -> impl Future<Output = T> + Send {
        std::future::poll_fn(move |cx| {
            let mut slot = self.value.lock().unwrap();
            match slot.0.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// Every task and timer on a thread of its own.
struct Threads;

impl RuntimeServices for Threads {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn spawn(&self, task: BoxFuture<()>) {
        thread::spawn(move || block_on(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let slot = Slot::new();
        let setter = Arc::clone(&slot);
        thread::spawn(move || {
            thread::sleep(deadline.saturating_duration_since(Instant::now()));
            setter.set(());
        });
        Box::pin(slot.take())
    }

    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn Any + Send>> {
        let slot = Slot::new();
        let setter = Arc::clone(&slot);
        thread::spawn(move || setter.set(work()));
        Box::pin(slot.take())
    }
}

struct Switch(AtomicBool);

impl ShutdownSource for Arc<Switch> {
    fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn wait(&self) -> BoxFuture<()> {
        let switch = Arc::clone(self);
        Box::pin(async move {
            while !switch.0.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        })
    }
}

fn handle() -> RuntimeHandle {
    RuntimeHandle::new(Threads, ShutdownSignal::never())
}

#[test]
fn outside_a_server_there_is_no_current_handle() {
    assert!(RuntimeHandle::try_current().is_none());
    let panic = std::panic::catch_unwind(|| super::spawn(async {})).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("outside a weft server"), "{message}");
    assert!(std::panic::catch_unwind(|| super::sleep(Duration::ZERO)).is_err());
}

#[test]
fn entering_sets_and_restores_the_current_handle() {
    let (outer, inner) = (handle(), handle());
    outer.enter(|| {
        assert!(RuntimeHandle::current().same(&outer));
        inner.enter(|| assert!(RuntimeHandle::current().same(&inner)));
        assert!(RuntimeHandle::current().same(&outer));
        // Even when unwinding.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.enter(|| panic!("deliberate"))
        }));
        assert!(RuntimeHandle::current().same(&outer));
    });
    assert!(RuntimeHandle::try_current().is_none());
}

#[test]
fn free_functions_use_the_entered_handle() {
    let handle = handle();
    let (sender, received) = mpsc::channel();
    let outcome = handle.enter(|| {
        // A spawned task sees the handle too: it sleeps on it.
        super::spawn(async move {
            super::sleep(Duration::from_millis(1)).await;
            sender.send(RuntimeHandle::current().name()).unwrap();
        });
        let blocking = super::spawn_blocking(|| RuntimeHandle::current().name());
        let slow = super::timeout(Duration::from_millis(5), std::future::pending::<()>());
        let quick = super::timeout(Duration::from_secs(60), async { 7 });
        block_on(async { (blocking.await, slow.await, quick.await) })
    });
    assert_eq!(outcome, ("threads", Err(Elapsed), Ok(7)));
    assert_eq!(
        received.recv_timeout(Duration::from_secs(10)),
        Ok("threads")
    );
}

#[test]
fn a_panicking_task_ends_alone() {
    let handle = handle();
    let (sender, received) = mpsc::channel::<()>();
    handle.spawn(async move {
        let _sender = sender;
        panic!("deliberate panic in a spawned task");
    });
    // The task's sender is dropped when it ends.
    assert_eq!(
        received.recv_timeout(Duration::from_secs(10)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn the_shutdown_signal_fires_once_triggered() {
    let switch = Arc::new(Switch(AtomicBool::new(false)));
    let signal = ShutdownSignal::new(Arc::clone(&switch));
    assert!(!signal.is_triggered());
    let waiter = {
        let signal = signal.clone();
        thread::spawn(move || block_on(signal.into_future()))
    };
    switch.0.store(true, Ordering::SeqCst);
    waiter.join().unwrap();
    assert!(signal.is_triggered());
    assert!(!ShutdownSignal::never().is_triggered());
}
