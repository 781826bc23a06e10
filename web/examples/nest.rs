//! NestJS-style layers: middleware, guards (roles), interceptors (timing, envelope, cache,
//! timeout), pipes and exception filters, at app, group and route level.
//!
//! ```text
//! cargo run -p weft --example nest -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/items/7            # envelope, timing header
//! curl -i http://127.0.0.1:8080/items/x            # pipe: 400 problem+json listing `id`
//! curl -i http://127.0.0.1:8080/admin/stats        # guard: 401
//! curl -i -H 'x-role: admin' http://127.0.0.1:8080/admin/stats
//! curl -i http://127.0.0.1:8080/items/0/buy        # filter: 409 from OutOfStock
//! ```

use std::time::Duration;

use weft::filter::{self, ErrorContext};
use weft::guard::{self, Roles};
use weft::interceptor::{Cache, Envelope, Timeout, Timing};
use weft::middleware::{self, Next};
use weft::pipe::{Input, ParseInt};
use weft::prelude::*;

/// A stand-in for authentication: roles from a header.
async fn authenticate(mut request: Request, next: Next) -> Response {
    if let Some(role) = request
        .headers()
        .get("x-role")
        .and_then(|v| v.to_str().ok())
    {
        let roles = Roles::new([role.to_owned()]);
        request.extensions_mut().insert(roles);
    }
    next.run(request).await
}

#[derive(Debug)]
struct OutOfStock(u64);

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {} is out of stock", self.0)
    }
}

impl std::error::Error for OutOfStock {}

async fn item(Path(id): Path<u64>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": format!("item {id}") }))
}

async fn buy(Path(id): Path<u64>) -> Result<&'static str, OutOfStock> {
    Err(OutOfStock(id))
}

fn app() -> App {
    App::new()
        .middleware(middleware::from_fn(authenticate))
        .interceptor(Timing)
        .filter(filter::on(|error: &OutOfStock, _: &ErrorContext| {
            (StatusCode::CONFLICT, error.to_string())
        }))
        .group("/items", |items| {
            items
                .pipe(Input::path("id"), ParseInt)
                .interceptor(Envelope::default())
                .add_route(
                    Route::get("/{id}", item).interceptor(Cache::new(Duration::from_secs(10))),
                )
                .post("/{id}/buy", buy)
                .get("/{id}/buy", buy)
        })
        .group("/admin", |admin| {
            admin
                .guard(guard::roles(["admin"]))
                .interceptor(Timeout::new(Duration::from_secs(2)))
                .get("/stats", || async { "all good" })
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    app().serve(address)?;
    Ok(())
}
