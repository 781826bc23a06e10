//! Services: singletons built in dependency order with lifecycle hooks, shared state, and a
//! per-request scoped service, injected into handlers by type.
//!
//! ```text
//! cargo run -p weft --example services
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use weft::prelude::*;
use weft::services::{Inject, Provider, Scoped, State};

struct Config {
    site: String,
}

/// Needs the config: built after it, whatever the registration order.
struct Counter {
    site: String,
    hits: AtomicU64,
}

/// One per request.
struct RequestLog {
    path: String,
}

async fn index(counter: Inject<Counter>, config: State<Config>, log: Scoped<RequestLog>) -> String {
    let hits = counter.hits.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "{} ({}): visit {hits} of {}",
        config.site, counter.site, log.path
    )
}

fn main() {
    let app = App::new()
        .provide(
            Provider::singleton(|config: Inject<Config>| Counter {
                site: config.site.clone(),
                hits: AtomicU64::new(0),
            })
            .on_start(|_: &Counter| {
                println!("counter started");
                Ok(())
            })
            .on_stop(|counter: &Counter| {
                println!(
                    "counter stopped after {} hits",
                    counter.hits.load(Ordering::Relaxed)
                )
            }),
        )
        .state(Config {
            site: "example".into(),
        })
        .scoped(|parts, _services| {
            Ok(RequestLog {
                path: parts.uri.path().to_owned(),
            })
        })
        .get("/", index);
    let app = app.build().expect("every service is registered");
    app.start().expect("services start");
    app.stop();

    // A handler needing a service nobody registered fails here, naming both.
    let error = App::new()
        .get("/", index)
        .build()
        .expect_err("Counter is not registered");
    println!("as expected: {error}");
}
