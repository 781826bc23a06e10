//! Health probes: liveness (`/health`) and readiness (`/ready`), for load balancers and
//! orchestrators (Kubernetes' `livenessProbe` and `readinessProbe`).
//!
//! - **Liveness** answers `200 {"status":"ok"}` as long as the process serves requests at
//!   all: it runs no check, so a slow database never gets a live process restarted.
//! - **Readiness** says whether this instance should get traffic: `503` while the app is
//!   starting (before [`AppService::start`](crate::AppService::start) finished), while the
//!   server drains (the request's [`ShutdownSignal`] fired, or the app was stopped), or when a
//!   registered check fails or times out; `200` with every check's result otherwise.
//!
//! A `503` is a problem document (`application/problem+json`, RFC 9457) with a `code`
//! (`health.starting`, `health.draining`, `health.check_failed`) and, for failed checks, a
//! `checks` member with every check's result, the shape of the `200` answer's:
//!
//! ```json
//! {"status":"ok","checks":{"db":{"status":"ok","duration_ms":1}}}
//! ```
//!
//! A failing check's error message is shown: readiness endpoints are for operators. Mount
//! them behind a guard (or on an internal listener) if that leaks too much.
//!
//! ```
//! use std::time::Duration;
//! use weft::health::{Health, HealthExt};
//! use weft::prelude::*;
//!
//! let app = App::new().get("/", || async { "home" }).health(
//!     Health::new()
//!         .timeout(Duration::from_secs(2))
//!         .check("config", || Ok::<_, std::io::Error>(()))
//!         .check_async("db", || async { Ok::<_, std::io::Error>(()) }),
//! );
//! # let _ = app.build().unwrap();
//! ```
//!
//! Checks run one after the other, in the order registered, each within the timeout. A sync
//! check runs on the request's task, so keep it quick (a flag, a counter); anything that does
//! I/O belongs in an async check.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value, json};
use weft_service::runtime::{RuntimeHandle, ShutdownSignal};

use crate::app::{App, AppPhase, Group};
use crate::handler::BoxFuture;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::response::{IntoResponse, Json, Response};

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One named readiness check.
struct Check {
    name: String,
    run: CheckFn,
}

/// The liveness and readiness routes, and the readiness checks; see the [module](self).
///
/// Turned into routes by [`Health::group`] (to nest anywhere, with layers of its own) or
/// [`Health::mount`] / [`HealthExt::health`] (at the app's root).
pub struct Health {
    liveness: String,
    readiness: String,
    timeout: Duration,
    checks: Vec<Check>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("liveness", &self.liveness)
            .field("readiness", &self.readiness)
            .field("timeout", &self.timeout)
            .field(
                "checks",
                &self.checks.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Health {
    /// `/health` and `/ready`, no checks, a 5 second timeout per check.
    pub fn new() -> Self {
        Health {
            liveness: "/health".to_owned(),
            readiness: "/ready".to_owned(),
            timeout: Duration::from_secs(5),
            checks: Vec::new(),
        }
    }

    /// The liveness path (`/health` by default; `/livez`, `/healthz` are common too).
    pub fn liveness_path(mut self, path: impl Into<String>) -> Self {
        self.liveness = path.into();
        self
    }

    /// The readiness path (`/ready` by default; `/readyz` is common too).
    pub fn readiness_path(mut self, path: impl Into<String>) -> Self {
        self.readiness = path.into();
        self
    }

    /// How long each check may take before it counts as failed (`"status":"timeout"`). It
    /// needs the weft runtime's timers (every weft server and the test client have them);
    /// without a runtime, checks run without a timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a synchronous check: `Ok(())` when ready, `Err(why)` when not.
    pub fn check<F, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: Display,
    {
        let check = Arc::new(check);
        self.checks.push(Check {
            name: name.into(),
            run: Arc::new(move || {
                let result = check().map_err(|error| error.to_string());
                Box::pin(std::future::ready(result))
            }),
        });
        self
    }

    /// Adds an asynchronous check (a database ping, a downstream call).
    pub fn check_async<F, Fut, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        self.checks.push(Check {
            name: name.into(),
            run: Arc::new(move || {
                let future = check();
                Box::pin(async move { future.await.map_err(|error| error.to_string()) })
            }),
        });
        self
    }

    /// The two routes as a group without a prefix, to nest with layers of its own:
    /// `app.nest(health.group().guard(internal_only))`.
    pub fn group(self) -> Group {
        let liveness = self.liveness.clone();
        let readiness = self.readiness.clone();
        let probe = Arc::new(self);
        Group::new("")
            .get(&liveness, || async { Json(json!({ "status": "ok" })) })
            .endpoint(http::Method::GET, &readiness, Readiness(probe))
    }

    /// Adds the two routes to `app`, at its root.
    pub fn mount(self, app: App) -> App {
        app.nest(self.group())
    }

    /// The readiness answer.
    async fn ready(&self, phase: AppPhase, shutdown: &ShutdownSignal) -> Response {
        match phase {
            AppPhase::Starting => {
                return unavailable("health.starting", "the app is starting", None);
            }
            AppPhase::Stopped => {
                return unavailable("health.draining", "the app is stopping", None);
            }
            AppPhase::Running => {}
        }
        if shutdown.is_triggered() {
            return unavailable("health.draining", "the server is draining", None);
        }
        let mut results = Map::new();
        let mut failed = Vec::new();
        for check in &self.checks {
            let started = Instant::now();
            let future = (check.run)();
            let outcome = match RuntimeHandle::try_current() {
                Some(runtime) => match runtime.timeout(self.timeout, future).await {
                    Ok(result) => result.map_err(|error| ("fail", error)),
                    Err(_) => Err((
                        "timeout",
                        format!("no answer within {} ms", self.timeout.as_millis()),
                    )),
                },
                None => future.await.map_err(|error| ("fail", error)),
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            let result = match outcome {
                Ok(()) => json!({ "status": "ok", "duration_ms": duration_ms }),
                Err((status, error)) => {
                    failed.push(check.name.clone());
                    json!({ "status": status, "error": error, "duration_ms": duration_ms })
                }
            };
            results.insert(check.name.clone(), result);
        }
        if failed.is_empty() {
            Json(json!({ "status": "ok", "checks": results })).into_response()
        } else {
            unavailable(
                "health.check_failed",
                &format!("failing checks: {}", failed.join(", ")),
                Some(results),
            )
        }
    }
}

/// The readiness route: an endpoint, as it reads the app's phase from the request.
struct Readiness(Arc<Health>);

impl crate::handler::Endpoint for Readiness {
    async fn handle(&self, request: crate::Request) -> crate::handler::Outcome {
        let phase = AppPhase::of(request.extensions());
        let shutdown = request
            .extensions()
            .get::<ShutdownSignal>()
            .cloned()
            .unwrap_or_else(ShutdownSignal::never);
        Ok(self.0.ready(phase, &shutdown).await)
    }
}

/// A `503` problem document, with the checks' results when there are some.
fn unavailable(code: &str, detail: &str, checks: Option<Map<String, Value>>) -> Response {
    let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_code(code)
        .with_detail(detail);
    let mut document = serde_json::to_value(&problem).unwrap_or_else(|_| json!({}));
    if let (Some(checks), Value::Object(members)) = (checks, &mut document) {
        members.insert("checks".to_owned(), Value::Object(checks));
    }
    let mut response = Response::new(crate::Body::from(document.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

/// `app.health(Health::new())`: mounts the probes at the app's root ([`Health::mount`]).
pub trait HealthExt {
    /// Adds the liveness and readiness routes of `health`.
    fn health(self, health: Health) -> Self;
}

impl HealthExt for App {
    fn health(self, health: Health) -> Self {
        health.mount(self)
    }
}
