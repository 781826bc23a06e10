//! The framework benchmark on axum 0.8 (tokio current-thread runtime: one thread, like weft
//! with one worker): `Path` and `Json` extractors, `middleware::from_fn` and
//! `middleware::map_response`.

use axum::extract::{Path, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use weft_peer_frameworks::{CLIENT_HEADER, Created, NewUser, SEEN_HEADER, listen_address};

async fn create(Path(id): Path<u64>, Json(user): Json<NewUser>) -> Json<Created> {
    Json(Created::new(id, user))
}

async fn read_client(request: Request, next: Next) -> Response {
    let _client = request.headers().get(CLIENT_HEADER);
    next.run(request).await
}

async fn mark_seen(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(SEEN_HEADER, HeaderValue::from_static("1"));
    response
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Layers wrap what is below them: mark_seen is outermost, as weft's first middleware.
    let app = Router::new()
        .route("/users/{id}", post(create))
        .layer(middleware::from_fn(read_client))
        .layer(middleware::map_response(mark_seen));
    let listener = tokio::net::TcpListener::bind(listen_address())
        .await
        .expect("axum binds");
    println!(
        "axum listening on http://{}",
        listener.local_addr().expect("bound")
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("axum serves");
}
