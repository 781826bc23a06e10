//! The framework benchmark on a bare weft `Service` (mio runtime, one worker): the floor under
//! `weft_app`. The same answer with the routing, the path parameter and both "middlewares"
//! written by hand.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use weft_peer_frameworks::{CLIENT_HEADER, Created, NewUser, SEEN_HEADER, listen_address};
use weft_runtime::ServerConfig;
use weft_service::body::Body;

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

async fn handle(request: Request<Body>) -> Response<Body> {
    let _client = request.headers().get(CLIENT_HEADER);
    let id = match request.uri().path().strip_prefix("/users/") {
        Some(id) => match id.parse::<u64>() {
            Ok(id) => id,
            Err(_) => return status(StatusCode::BAD_REQUEST),
        },
        None => return status(StatusCode::NOT_FOUND),
    };
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    // At most 1 MiB, as the App's `Json` extractor by default.
    let body = match request.into_body().collect(1 << 20).await {
        Ok(body) => body,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let user: NewUser = match serde_json::from_slice(&body) {
        Ok(user) => user,
        Err(_) => return status(StatusCode::UNPROCESSABLE_ENTITY),
    };
    let json = serde_json::to_vec(&Created::new(id, user)).expect("serializes");
    let mut response = Response::new(Body::from(Bytes::from(json)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(SEEN_HEADER, HeaderValue::from_static("1"));
    response
}

fn main() {
    let mut config = ServerConfig::new([listen_address()]);
    config.workers = 1;
    config.handle_signals = true;
    let server = weft_runtime::start(config, handle).expect("weft listens");
    println!(
        "weft-service listening on http://{}",
        server.local_addrs()[0]
    );
    server.join().expect("weft serves");
}
