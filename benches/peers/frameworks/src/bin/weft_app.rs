//! The framework benchmark on weft's `App` (mio runtime, one worker): a handler of extractors
//! (`Path`, `Json`) and two `weft::middleware` layers.

use http::HeaderValue;
use weft::middleware::{from_fn, map_response};
use weft::prelude::*;
use weft_peer_frameworks::{CLIENT_HEADER, Created, NewUser, SEEN_HEADER, listen_address};
use weft_runtime::ServerConfig;

async fn create(Path(id): Path<u64>, Json(user): Json<NewUser>) -> Json<Created> {
    Json(Created::new(id, user))
}

fn main() {
    let app = App::new()
        .middleware(map_response(|mut response: Response| {
            response
                .headers_mut()
                .insert(SEEN_HEADER, HeaderValue::from_static("1"));
            response
        }))
        .middleware(from_fn(|request: Request, next: Next| {
            let _client = request.headers().get(CLIENT_HEADER);
            next.run(request)
        }))
        .post("/users/{id}", create);
    let mut config = ServerConfig::new([listen_address()]);
    config.workers = 1;
    config.handle_signals = true;
    let server = app.listen(config).expect("weft listens");
    println!("weft-app listening on http://{}", server.local_addrs()[0]);
    server.join().expect("weft serves");
}
