//! [`Logging`]: one builder that installs a `tracing` subscriber for an app (and the `weft`
//! binary): the filter, the output format, timestamps, and where lines go (stderr, stdout, or
//! files rotated daily or hourly).
//!
//! weft and its crates log through `tracing` and never install a subscriber themselves:
//! nothing is printed until the application installs one. This is the short way to do it;
//! apps with needs of their own build a `tracing_subscriber` stack directly.
//!
//! ```no_run
//! use weft::logging::{Logging, Rotation};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // `WEFT_LOG` (or else `RUST_LOG`) if set, `info` otherwise; JSON lines into
//!     // ./logs/app.YYYY-MM-DD.log.
//!     let _guard = Logging::new().json().file("logs", "app", Rotation::Daily).init()?;
//!     tracing::info!("started");
//!     Ok(())
//!     // dropping the guard flushes what the file writer still holds
//! }
//! ```
//!
//! # The filter
//! The first of the environment variables ([`Logging::env_vars`]; `WEFT_LOG`, then `RUST_LOG`)
//! that is set and not empty gives the filter, in `EnvFilter` syntax (`info`,
//! `warn,weft::access=info`, `debug,weft_core=off`); otherwise the default ([`Logging::level`],
//! `info`). A variable that does not parse does not stop the app: the default is used, and
//! the guard says why ([`LogGuard::filter_warning`]; [`Logging::init`] logs it at `warn`).
//! [`Logging::filter`] sets a filter that ignores the environment.

use std::path::PathBuf;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// One short line per event: level, target, message, fields (the default).
    #[default]
    Compact,
    /// The `tracing_subscriber` default: one line with the enclosing spans' fields.
    Full,
    /// Several lines per event, for a developer's terminal.
    Pretty,
    /// One JSON object per line, the event's fields at the top level, for log shippers.
    Json,
}

/// When a log file is closed and a new one started ([`Logging::file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// A file per hour: `prefix.YYYY-MM-DD-HH.log`.
    Hourly,
    /// A file per day: `prefix.YYYY-MM-DD.log`.
    Daily,
    /// One file, `prefix.log`, growing (rotated by an outside tool, if at all).
    Never,
}

/// Where lines go.
enum Output {
    Stderr,
    Stdout,
    File {
        directory: PathBuf,
        prefix: String,
        rotation: Rotation,
    },
    Writer(BoxMakeWriter),
}

/// Why logging could not be installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoggingError {
    /// The log directory could not be created or the file opened.
    File(String),
    /// A global subscriber is installed already (`init` ran twice, or another library
    /// installed one).
    AlreadyInstalled,
    /// [`Logging::filter`] was given a filter that does not parse.
    Filter(String),
}

impl std::fmt::Display for LoggingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoggingError::File(error) => write!(f, "cannot open the log file: {error}"),
            LoggingError::AlreadyInstalled => {
                f.write_str("a global tracing subscriber is installed already")
            }
            LoggingError::Filter(error) => write!(f, "not a log filter: {error}"),
        }
    }
}

impl std::error::Error for LoggingError {}

/// Keeps file logging alive: dropping it flushes the lines the background writer still holds
/// and stops it. Keep it in `main` for the program's life (`let _guard = ...`; not `let _ =`,
/// which drops it at once).
#[must_use = "dropping the guard stops file logging; keep it in main"]
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
    filter: String,
    warning: Option<String>,
}

impl LogGuard {
    /// The filter in force, as `EnvFilter` syntax.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Why an environment variable's filter was ignored, if one was.
    pub fn filter_warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("filter", &self.filter)
            .field("file", &self._worker.is_some())
            .finish()
    }
}

/// Builds and installs a `tracing` subscriber; see the [module](self).
pub struct Logging {
    level: String,
    filter: Option<String>,
    env_vars: Vec<String>,
    format: LogFormat,
    timestamps: bool,
    ansi: Option<bool>,
    output: Output,
}

impl Default for Logging {
    fn default() -> Self {
        Logging::new()
    }
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging")
            .field("level", &self.level)
            .field("filter", &self.filter)
            .field("env_vars", &self.env_vars)
            .field("format", &self.format)
            .field("timestamps", &self.timestamps)
            .finish_non_exhaustive()
    }
}

impl Logging {
    /// Compact lines with timestamps on stderr, the filter from `WEFT_LOG` or `RUST_LOG`,
    /// `info` by default.
    pub fn new() -> Self {
        Logging {
            level: "info".to_owned(),
            filter: None,
            env_vars: vec!["WEFT_LOG".to_owned(), "RUST_LOG".to_owned()],
            format: LogFormat::Compact,
            timestamps: true,
            ansi: None,
            output: Output::Stderr,
        }
    }

    /// The default filter, used when no environment variable gives one: a level (`debug`) or
    /// any `EnvFilter` directive list (`info,weft_core=warn`).
    pub fn level(mut self, level: impl Into<String>) -> Self {
        self.level = level.into();
        self
    }

    /// A filter that the environment cannot override (an invalid one fails `init`/`build`).
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// The environment variables read for the filter, first set (and not empty) wins;
    /// none to ignore the environment.
    pub fn env_vars<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env_vars = names.into_iter().map(Into::into).collect();
        self
    }

    /// The line format.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// JSON lines ([`LogFormat::Json`]).
    pub fn json(self) -> Self {
        self.format(LogFormat::Json)
    }

    /// Multi-line output for a terminal ([`LogFormat::Pretty`]).
    pub fn pretty(self) -> Self {
        self.format(LogFormat::Pretty)
    }

    /// Whether lines start with a timestamp (on by default; off when the service manager
    /// stamps lines itself, as journald does).
    pub fn timestamps(mut self, on: bool) -> Self {
        self.timestamps = on;
        self
    }

    /// Whether to colour the output (by default: on a terminal stderr/stdout, never in
    /// files or custom writers).
    pub fn ansi(mut self, on: bool) -> Self {
        self.ansi = Some(on);
        self
    }

    /// Lines to stderr (the default).
    pub fn stderr(mut self) -> Self {
        self.output = Output::Stderr;
        self
    }

    /// Lines to stdout.
    pub fn stdout(mut self) -> Self {
        self.output = Output::Stdout;
        self
    }

    /// Lines into files in `directory` (created if missing), named from `prefix` and
    /// `rotation` (`app.2026-12-07.log`). Writing happens on a background thread, so a slow
    /// disk does not stall requests; lines beyond its buffer (128 000 lines) are dropped
    /// rather than block. Keep the [`LogGuard`] until exit so that the last lines are flushed.
    pub fn file(
        mut self,
        directory: impl Into<PathBuf>,
        prefix: impl Into<String>,
        rotation: Rotation,
    ) -> Self {
        self.output = Output::File {
            directory: directory.into(),
            prefix: prefix.into(),
            rotation,
        };
        self
    }

    /// Lines to any `tracing_subscriber` writer (a test's buffer, a socket).
    pub fn writer<W>(mut self, writer: W) -> Self
    where
        W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
    {
        self.output = Output::Writer(BoxMakeWriter::new(writer));
        self
    }

    /// Installs the subscriber for the whole process, and logs the filter warning if there is
    /// one. Fails if a global subscriber is installed already.
    pub fn init(self) -> Result<LogGuard, LoggingError> {
        let (dispatch, guard) = self.build()?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| LoggingError::AlreadyInstalled)?;
        if let Some(warning) = guard.filter_warning() {
            tracing::warn!("{warning}");
        }
        tracing::debug!(filter = guard.filter(), "logging installed");
        Ok(guard)
    }

    /// Builds the subscriber without installing it: for `tracing::dispatcher::with_default`
    /// (tests, one thread's scope) or a caller that installs it itself.
    pub fn build(self) -> Result<(tracing::Dispatch, LogGuard), LoggingError> {
        let (filter, shown, warning) = self.resolve_filter()?;
        let mut worker = None;
        let (writer, terminal) = match self.output {
            Output::Stderr => (
                BoxMakeWriter::new(std::io::stderr),
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            ),
            Output::Stdout => (
                BoxMakeWriter::new(std::io::stdout),
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
            ),
            Output::File {
                directory,
                prefix,
                rotation,
            } => {
                let rotation = match rotation {
                    Rotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
                    Rotation::Daily => tracing_appender::rolling::Rotation::DAILY,
                    Rotation::Never => tracing_appender::rolling::Rotation::NEVER,
                };
                let appender = tracing_appender::rolling::RollingFileAppender::builder()
                    .rotation(rotation)
                    .filename_prefix(prefix)
                    .filename_suffix("log")
                    .build(&directory)
                    .map_err(|error| {
                        LoggingError::File(format!("{}: {error}", directory.display()))
                    })?;
                let (writer, guard) = tracing_appender::non_blocking(appender);
                worker = Some(guard);
                (BoxMakeWriter::new(writer), false)
            }
            Output::Writer(writer) => (writer, false),
        };
        let ansi = self.ansi.unwrap_or(terminal);
        let layer = fmt_layer(self.format, self.timestamps, ansi, writer).with_filter(filter);
        let subscriber = tracing_subscriber::registry().with(layer);
        Ok((
            tracing::Dispatch::new(subscriber),
            LogGuard {
                _worker: worker,
                filter: shown,
                warning,
            },
        ))
    }

    /// The filter, how it reads, and why the environment's was ignored (if it was).
    fn resolve_filter(&self) -> Result<(EnvFilter, String, Option<String>), LoggingError> {
        if let Some(filter) = &self.filter {
            let parsed = EnvFilter::try_new(filter)
                .map_err(|error| LoggingError::Filter(format!("{filter:?}: {error}")))?;
            return Ok((parsed, filter.clone(), None));
        }
        let default = || EnvFilter::try_new(&self.level).unwrap_or_else(|_| EnvFilter::new("info"));
        let chosen = self.env_vars.iter().find_map(|name| {
            let value = std::env::var(name).ok()?;
            (!value.trim().is_empty()).then_some((name, value))
        });
        Ok(match chosen {
            None => {
                let filter = default();
                let shown = filter.to_string();
                (filter, shown, None)
            }
            Some((name, value)) => match EnvFilter::try_new(&value) {
                Ok(filter) => (filter, value, None),
                Err(error) => {
                    let filter = default();
                    let shown = filter.to_string();
                    let warning =
                        format!("{name}={value:?} is not a log filter ({error}): using {shown:?}");
                    (filter, shown, Some(warning))
                }
            },
        })
    }
}

type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The `fmt` layer for a format, with or without timestamps (each a different type).
fn fmt_layer(format: LogFormat, timestamps: bool, ansi: bool, writer: BoxMakeWriter) -> BoxedLayer {
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    macro_rules! timed {
        ($layer:expr) => {
            if timestamps {
                Box::new($layer) as BoxedLayer
            } else {
                Box::new($layer.without_time()) as BoxedLayer
            }
        };
    }
    match format {
        LogFormat::Compact => timed!(base.compact()),
        LogFormat::Full => timed!(base),
        LogFormat::Pretty => timed!(base.pretty()),
        LogFormat::Json => timed!(base.json().flatten_event(true).with_current_span(false)),
    }
}
