//! Typed events: a POST handler emits `UserCreated` on the app's emitter; a sync listener
//! keeps the user directory, an async one "sends the welcome mail" on the runtime, and a
//! failing one (the CRM is down) is isolated: the others still run, the request still
//! succeeds, and the failure is logged and reported as a `ListenerFailed` event.
//!
//! ```text
//! cargo run -p weft --example events -- 127.0.0.1:8080
//! curl -X POST -H 'content-type: application/json' -d '{"name":"ada"}' http://127.0.0.1:8080/users
//! curl http://127.0.0.1:8080/users
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft::ServerConfig;
use weft::events::{Events, ListenerFailed};
use weft::logging::Logging;
use weft::prelude::*;
use weft::services::Inject;

/// The event: its type is its name.
#[derive(Debug)]
struct UserCreated {
    name: String,
}

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
}

/// The users created so far, kept by a sync listener.
#[derive(Clone, Default)]
struct Directory(Arc<Mutex<Vec<String>>>);

/// The CRM's client; always down in this example.
#[derive(Debug)]
struct CrmDown;

impl std::fmt::Display for CrmDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the CRM is unreachable")
    }
}

async fn create(events: Inject<Events>, Json(user): Json<NewUser>) -> StatusCode {
    // Sync listeners run here, before `emit` returns; the async one is only started.
    events.emit(UserCreated { name: user.name });
    StatusCode::CREATED
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Listener failures are logged through `tracing`.
    let _logs = Logging::new().init()?;
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let directory = Directory::default();
    let kept = directory.clone();
    let mut app = App::new()
        // Sync: quick, in place.
        .on(move |user: &UserCreated| kept.0.lock().unwrap().push(user.name.clone()))
        // Async: a task on the server's runtime, the request does not wait for it.
        .on_async(|user: Arc<UserCreated>| async move {
            weft_service::runtime::sleep(Duration::from_millis(200)).await;
            println!("welcome mail sent to {}", user.name);
        })
        // Failing: isolated from the others, logged, reported.
        .on(|user: &UserCreated| -> Result<(), CrmDown> {
            println!("adding {} to the CRM...", user.name);
            Err(CrmDown)
        })
        .on(|failed: &ListenerFailed| println!("reported: {failed}"))
        .post("/users", create)
        .get("/users", move || {
            let names = directory.0.lock().unwrap().join(", ");
            async move { format!("users: {names}\n") }
        });
    // Options: an audit line before every other listener, for the first user only.
    app.events()
        .listener()
        .priority(100)
        .once()
        .on(|user: &UserCreated| println!("audit: first user is {}", user.name));

    let mut config = ServerConfig::new(std::net::ToSocketAddrs::to_socket_addrs(&address)?);
    config.handle_signals = true;
    let server = app.listen(config)?;
    println!("listening on {:?}", server.local_addrs());
    server.join()?;
    Ok(())
}
