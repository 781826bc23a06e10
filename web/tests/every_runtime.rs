//! The same app served on every runtime compiled in (`--all-features`: all six), asked by
//! curl over HTTP/1.1 and HTTP/2 (prior knowledge): routes, a JSON body, a guard, a
//! problem+json rejection, and the services' hooks around the server's life.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft::guard;
use weft::interceptor::Timing;
use weft::prelude::*;
use weft::services::{Inject, Provider};
use weft::{Runtime, ServerConfig};

struct Greeting(&'static str);

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
}

fn app(stops: Arc<AtomicUsize>) -> App {
    App::new()
        .provide(
            Provider::value(Greeting("hello")).on_stop(move |_: &Greeting| {
                stops.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .interceptor(Timing)
        .get(
            "/hello/{name}",
            |Path(name): Path<String>, greeting: Inject<Greeting>| async move {
                format!("{} {name}", greeting.0.0)
            },
        )
        .post("/users", |Json(user): Json<NewUser>| async move {
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "name": user.name })),
            )
        })
        .add_route(Route::get("/admin", || async { "never" }).guard(guard::roles(["admin"])))
}

use support::curl;

#[test]
fn one_app_on_every_runtime_with_curl_over_http1_and_http2() {
    assert!(!Runtime::ALL.is_empty());
    for &runtime in Runtime::ALL {
        let stops = Arc::new(AtomicUsize::new(0));
        let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
        config.workers = 1;
        let server = app(Arc::clone(&stops))
            .build()
            .unwrap()
            .listen_on(runtime, config)
            .unwrap();
        let base = format!("http://{}", server.local_addrs()[0]);
        for protocol in ["--http1.1", "--http2-prior-knowledge"] {
            let hello = curl(&[protocol, &format!("{base}/hello/ada")]);
            assert_eq!(hello, "hello ada", "{runtime} {protocol}");
            let created = curl(&[
                protocol,
                "-w",
                " %{http_code}",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"name":"bob"}"#,
                &format!("{base}/users"),
            ]);
            assert_eq!(created, r#"{"name":"bob"} 201"#, "{runtime} {protocol}");
            let denied = curl(&[protocol, "-i", &format!("{base}/admin")]);
            assert!(denied.contains(" 401"), "{runtime} {protocol}: {denied}");
            assert!(
                denied.contains("application/problem+json"),
                "{runtime} {protocol}: {denied}"
            );
            assert!(
                denied.contains("\"code\":\"auth.required\""),
                "{runtime} {protocol}: {denied}"
            );
        }
        server.shutdown();
        server.join().unwrap();
        assert_eq!(
            stops.load(Ordering::SeqCst),
            1,
            "{runtime}: the stop hook ran once"
        );
    }
}
