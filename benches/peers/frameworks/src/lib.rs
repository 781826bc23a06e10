//! What every server of the framework benchmark does, so all four do the same work.
//!
//! `POST /users/{id}` with a JSON body `{"name": "...", "tags": [...]}` is deserialized into
//! [`NewUser`] and answered `200` with the JSON of [`Created`]: `{"id": id, "name": name,
//! "count": tags.len()}`, through two middlewares: one reads the request's `x-client` field
//! and does nothing else ([`CLIENT_HEADER`]), one adds `x-request-seen: 1` to the response
//! ([`SEEN_HEADER`]). Each binary takes `[--listen ADDR]` (default `127.0.0.1:0`) and prints
//! `NAME listening on http://ADDR` once bound, as `weft echo` does.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    /// A name, echoed back.
    pub name: String,
    /// Tags, counted.
    pub tags: Vec<String>,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The path parameter.
    pub id: u64,
    /// The request's name.
    pub name: String,
    /// How many tags the request had.
    pub count: usize,
}

impl Created {
    /// The answer to `user` at `id`.
    pub fn new(id: u64, user: NewUser) -> Self {
        Created {
            id,
            count: user.tags.len(),
            name: user.name,
        }
    }
}

/// The request field one middleware reads.
pub const CLIENT_HEADER: &str = "x-client";

/// The response field the other middleware adds, with value `1`.
pub const SEEN_HEADER: &str = "x-request-seen";

/// The address of `--listen ADDR`, or `127.0.0.1:0`.
pub fn listen_address() -> SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut address = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => address = args.next().expect("--listen needs an address"),
            other => panic!("unknown argument {other} (usage: [--listen ADDR])"),
        }
    }
    address.parse().expect("--listen takes HOST:PORT")
}
