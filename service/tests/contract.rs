//! The shape of the contract: what an application can rely on at compile time and at run time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use weft_service::body::Body;
use weft_service::service::{DynService, Service, erase};

fn assert_send_sync<T: Send + Sync>(_: &T) {}

/// Runs a future that needs no waking from elsewhere to completion, within a bound.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the future did not finish in 1000 polls");
}

/// A future that is pending once (wakes itself), like any `.await` on I/O.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A body that is `Send` but not `Sync` (a `Cell` inside), with a known length.
struct SendOnlyBody {
    data: Option<Bytes>,
    _not_sync: std::cell::Cell<u8>,
}

impl http_body::Body for SendOnlyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// The handler keeps `&Request<Body>` across an `.await`: its future is `Send` only because
/// `Body` is `Sync`, and it must still be a `Service`.
fn borrowing_handler() -> impl Service {
    |request: Request<Body>| async move {
        let borrowed = &request;
        YieldOnce(false).await;
        Response::new(Body::from(borrowed.uri().path().to_owned()))
    }
}

#[test]
fn a_handler_may_hold_a_request_reference_across_an_await() {
    let service = borrowing_handler();
    let request = Request::get("/held").body(Body::empty()).unwrap();
    let response = run(service.call(request));
    let body = run(response.into_body().collect(64)).unwrap();
    assert_eq!(body, "/held");
}

#[test]
fn every_kind_of_body_is_send_and_sync() {
    let wrapped = Body::new(SendOnlyBody {
        data: Some(Bytes::from_static(b"abc")),
        _not_sync: std::cell::Cell::new(0),
    });
    assert_send_sync(&wrapped);
    assert_send_sync(&Body::channel(8).1);
    assert_send_sync(&Body::from("full"));
}

#[test]
fn a_wrapped_body_reports_its_size_and_end_as_the_inner_body_does() {
    let mut body = Body::new(SendOnlyBody {
        data: Some(Bytes::from_static(b"abc")),
        _not_sync: std::cell::Cell::new(0),
    });
    assert_eq!(body.size_hint().exact(), Some(3));
    assert!(!body.is_end_stream());
    let mut cx = Context::from_waker(Waker::noop());
    let frame = Pin::new(&mut body).poll_frame(&mut cx);
    assert!(matches!(frame, Poll::Ready(Some(Ok(_)))));
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(body.is_end_stream());
}

#[test]
fn a_channel_of_known_length_counts_down_as_it_is_read() {
    let (mut sender, mut body) = Body::channel_with_length(64, Some(10));
    assert_eq!(body.size_hint().exact(), Some(10));
    assert!(sender.send_data(Bytes::from_static(b"0123")));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut body).poll_frame(&mut cx),
        Poll::Ready(Some(Ok(_)))
    ));
    assert_eq!(body.size_hint().exact(), Some(6));
    let (_sender, unknown) = Body::channel(64);
    assert_eq!(unknown.size_hint().exact(), None);
}

#[test]
fn a_shared_service_answers_as_the_service_does() {
    let shared = Arc::new(borrowing_handler());
    let request = Request::get("/arc").body(Body::empty()).unwrap();
    let response = run(Service::call(&shared, request));
    assert_eq!(run(response.into_body().collect(64)).unwrap(), "/arc");
}

#[test]
fn erasing_an_erased_service_keeps_the_same_object() {
    let erased: Arc<dyn DynService> = erase(borrowing_handler());
    let again = erase(Arc::clone(&erased));
    assert!(Arc::ptr_eq(&erased, &again), "no second indirection");
    let request = Request::get("/dyn").body(Body::empty()).unwrap();
    let response = run(again.call_dyn(request));
    assert_eq!(run(response.into_body().collect(64)).unwrap(), "/dyn");
}

/// A service whose futures are boxed already hands its box over: one allocation per request.
struct PreBoxed;

impl Service for PreBoxed {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        self.call_boxed(request)
    }

    fn call_boxed(&self, _request: Request<Body>) -> weft_service::service::ResponseFuture {
        Box::pin(async { Response::new(Body::from("boxed once")) })
    }
}

#[test]
fn a_service_may_hand_over_its_own_box() {
    let erased = erase(PreBoxed);
    let response = run(erased.call_dyn(Request::new(Body::empty())));
    assert_eq!(run(response.into_body().collect(64)).unwrap(), "boxed once");
}
