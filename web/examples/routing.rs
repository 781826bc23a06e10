//! Routing: params, wildcards, groups with a prefix, method routing, redirects, and route
//! introspection.
//!
//! ```text
//! cargo run -p weft --example routing
//! ```

use weft::prelude::*;

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn file(Path(path): Path<String>) -> String {
    format!("file {path}")
}

fn app() -> App {
    App::new()
        .get("/users/{id}", user)
        .get("/users/me", || async { "the current user" })
        .get("/files/{*path}", file)
        .get("/old", || async {
            Response::permanent_redirect("/users/me")
        })
        .group("/api/v1", |api| {
            api.get("/health", || async { "ok" })
                .post("/echo", |body: String| async move { body })
        })
}

fn main() {
    let app = app().build().expect("a valid app");
    println!("routes:");
    for route in app.routes() {
        let method = route.method.map_or("ANY".to_owned(), |m| m.to_string());
        println!("  {method:7} {:20} {}", route.path, route.handler);
    }
    for shadowed in app.shadowed() {
        println!(
            "note: {} takes some paths of {} (methods then answered 405: {:?})",
            shadowed.by, shadowed.route, shadowed.lost_methods
        );
    }
}
