//! Choosing a runtime by name or by cargo feature: [`Runtime`], [`start`] and [`start_on`].

use std::fmt;
use std::io;
use std::str::FromStr;

use weft_service::service::Service;

use crate::config::{ServerConfig, ServerHandle};

/// A runtime compiled into this build (one variant per runtime feature).
///
/// Names, as [`FromStr`] takes them and [`Display`](fmt::Display) writes them: `tokio`, `smol`,
/// `mio`, `poll`, `threadpool`, `async-std`.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// let runtime: weft_runtime::Runtime = "smol".parse().unwrap();
/// assert_eq!(runtime.to_string(), "smol");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Runtime {
    /// [`crate::tokio`].
    #[cfg(feature = "tokio")]
    Tokio,
    /// [`crate::smol`].
    #[cfg(feature = "smol")]
    Smol,
    /// [`crate::mio`].
    #[cfg(feature = "mio")]
    Mio,
    /// [`crate::poll`].
    #[cfg(feature = "poll")]
    Poll,
    /// [`crate::threadpool`].
    #[cfg(feature = "threadpool")]
    Threadpool,
    /// [`crate::async_std`] (deprecated upstream).
    #[cfg(feature = "async-std")]
    AsyncStd,
}

/// Every runtime's name, compiled in or not, in [`start`]'s order of preference.
const NAMES: [&str; 6] = ["tokio", "smol", "mio", "poll", "threadpool", "async-std"];

impl Runtime {
    /// The runtimes compiled in, in [`start`]'s order of preference: tokio, smol, mio, poll,
    /// threadpool, async-std.
    pub const ALL: &'static [Runtime] = &[
        #[cfg(feature = "tokio")]
        Runtime::Tokio,
        #[cfg(feature = "smol")]
        Runtime::Smol,
        #[cfg(feature = "mio")]
        Runtime::Mio,
        #[cfg(feature = "poll")]
        Runtime::Poll,
        #[cfg(feature = "threadpool")]
        Runtime::Threadpool,
        #[cfg(feature = "async-std")]
        Runtime::AsyncStd,
    ];

    /// The runtime [`start`] serves on: the first of [`ALL`](Self::ALL), `None` when no runtime
    /// is compiled in.
    pub fn preferred() -> Option<Runtime> {
        Runtime::ALL.first().copied()
    }

    /// The runtime's name (`async-std`, not `async_std`).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio => "tokio",
            #[cfg(feature = "smol")]
            Runtime::Smol => "smol",
            #[cfg(feature = "mio")]
            Runtime::Mio => "mio",
            #[cfg(feature = "poll")]
            Runtime::Poll => "poll",
            #[cfg(feature = "threadpool")]
            Runtime::Threadpool => "threadpool",
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => "async-std",
        }
    }

    /// The names of the runtimes compiled in, in order of preference.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Runtime::ALL.iter().map(|runtime| runtime.name())
    }

    /// Serves `service` on this runtime; see [`start_on`].
    pub fn start<S: Service>(self, config: ServerConfig, service: S) -> io::Result<ServerHandle> {
        // Without a runtime feature `self` cannot exist, and these go unused.
        let _ = (&config, &service);
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio => crate::tokio::start(config, service),
            #[cfg(feature = "smol")]
            Runtime::Smol => crate::smol::start(config, service),
            #[cfg(feature = "mio")]
            Runtime::Mio => crate::mio::start(config, service),
            #[cfg(feature = "poll")]
            Runtime::Poll => crate::poll::start(config, service),
            #[cfg(feature = "threadpool")]
            Runtime::Threadpool => crate::threadpool::start(config, service),
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => crate::async_std::start(config, service),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Runtime {
    type Err = UnknownRuntime;

    /// A runtime by name; `async_std` is taken for `async-std`.
    fn from_str(name: &str) -> Result<Self, UnknownRuntime> {
        let wanted = if name == "async_std" {
            "async-std"
        } else {
            name
        };
        Runtime::ALL
            .iter()
            .copied()
            .find(|runtime| runtime.name() == wanted)
            .ok_or_else(|| UnknownRuntime {
                name: name.to_owned(),
                known: NAMES.contains(&wanted),
            })
    }
}

/// A runtime name that is not compiled into this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRuntime {
    name: String,
    /// A runtime weft has, without its feature in this build.
    known: bool,
}

impl fmt::Display for UnknownRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compiled: Vec<&str> = Runtime::names().collect();
        let compiled = if compiled.is_empty() {
            "none".to_owned()
        } else {
            compiled.join(", ")
        };
        if self.known {
            write!(
                f,
                "runtime `{}` is not compiled in (enable weft-runtime's `{}` feature); \
                 compiled in: {compiled}",
                self.name, self.name
            )
        } else {
            write!(
                f,
                "unknown runtime `{}`; weft has {}; compiled in: {compiled}",
                self.name,
                NAMES.join(", ")
            )
        }
    }
}

impl std::error::Error for UnknownRuntime {}

impl From<UnknownRuntime> for io::Error {
    fn from(error: UnknownRuntime) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, error)
    }
}

/// Serves `service` on the runtime compiled in, until shut down; returns once listening.
///
/// The runtime is chosen by cargo feature alone. When several runtime features are on (a
/// workspace that unifies features, the CLI), the first of this order wins:
/// **tokio > smol > mio > poll > threadpool > async-std** ([`Runtime::ALL`]). tokio first,
/// because the libraries that need its reactor then run natively; async-std last, as it is
/// discontinued upstream. To choose at run time, use [`start_on`].
///
/// # Errors
/// Those of the runtime's `start`, and [`io::ErrorKind::Unsupported`] when no runtime feature
/// is on.
///
/// ```no_run
/// # use weft_service::body::Body;
/// # fn app() -> impl weft_service::service::Service {
/// #     |_: http::Request<Body>| async { http::Response::new(Body::from("hi")) }
/// # }
/// let config = weft_runtime::ServerConfig::new(["127.0.0.1:8080".parse().unwrap()]);
/// let server = weft_runtime::start(config, app())?;
/// server.join()?;
/// # std::io::Result::Ok(())
/// ```
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    match Runtime::preferred() {
        Some(runtime) => runtime.start(config, service),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no runtime compiled in: enable one of weft-runtime's features tokio, smol, mio, \
             poll, threadpool, async-std",
        )),
    }
}

/// Serves `service` on `runtime` until shut down; returns once listening.
///
/// ```no_run
/// # use weft_service::body::Body;
/// # fn app() -> impl weft_service::service::Service {
/// #     |_: http::Request<Body>| async { http::Response::new(Body::from("hi")) }
/// # }
/// let runtime: weft_runtime::Runtime = std::env::var("RUNTIME").as_deref().unwrap_or("smol").parse()?;
/// let config = weft_runtime::ServerConfig::new(["127.0.0.1:8080".parse().unwrap()]);
/// let server = weft_runtime::start_on(runtime, config, app())?;
/// server.join()?;
/// # std::io::Result::Ok(())
/// ```
pub fn start_on<S: Service>(
    runtime: Runtime,
    config: ServerConfig,
    service: S,
) -> io::Result<ServerHandle> {
    runtime.start(config, service)
}

#[cfg(test)]
mod tests {
    use super::{NAMES, Runtime};

    #[test]
    fn names_round_trip_and_unknown_ones_are_explained() {
        for &runtime in Runtime::ALL {
            assert_eq!(runtime.to_string().parse::<Runtime>(), Ok(runtime));
            assert!(NAMES.contains(&runtime.name()));
        }
        let error = "fibers".parse::<Runtime>().unwrap_err().to_string();
        assert!(error.contains("unknown runtime `fibers`"), "{error}");
        for name in NAMES {
            if !Runtime::names().any(|compiled| compiled == name) {
                let error = name.parse::<Runtime>().unwrap_err().to_string();
                assert!(error.contains("is not compiled in"), "{error}");
            }
        }
    }

    #[test]
    fn the_preferred_runtime_follows_the_documented_order() {
        let compiled: Vec<&str> = Runtime::names().collect();
        let ordered: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|name| compiled.contains(name))
            .collect();
        assert_eq!(compiled, ordered);
        assert_eq!(
            Runtime::preferred().map(Runtime::name),
            ordered.first().copied()
        );
    }
}
