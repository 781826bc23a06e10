//! The `weft` command.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use weft_runtime::{Runtime, ServerConfig, ServerHandle};

mod build_assets;

#[derive(Parser)]
#[command(name = "weft", version, about = "weft: a Rust web server", after_help = LOG_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The protocol echo server that conformance, load and soak tests aim at.
    #[command(after_help = runtimes_help())]
    Echo(ServeArgs),
    /// A demo site on the weft framework, with its production features on.
    #[command(after_help = runtimes_help())]
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Development mode: a 500 page shows the panic, its backtrace and the request.
        #[arg(long)]
        development: bool,
        /// A reverse proxy's address or network (CIDR) whose `X-Forwarded-For` / `Forwarded`
        /// headers name the client (repeatable); others' are ignored.
        #[arg(long = "trusted-proxy")]
        trusted_proxies: Vec<weft::client_ip::Cidr>,
    },
    /// Serves the files of a folder: conditional requests, ranges, precompressed siblings,
    /// compression, one access line per request. Without --listen, the PORT variable, if set,
    /// picks the port (on 127.0.0.1).
    #[command(after_help = runtimes_help())]
    Serve {
        /// The folder to serve.
        #[arg(default_value = ".")]
        dir: std::path::PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
        /// Lets cleartext clients speak HTTP/2 (h2c: prior knowledge and `Upgrade: h2c`).
        /// With TLS, HTTP/2 is offered by ALPN whatever this says.
        #[arg(long)]
        h2c: bool,
        /// A folder without index.html answers with a listing of its entries.
        #[arg(long)]
        list_dirs: bool,
        /// A single-page app: a path naming no file answers with /index.html, not 404.
        #[arg(long)]
        spa: bool,
    },
    /// Copies every file of DIR to a content-hashed name (`app.js` → `app.3f9a2c1b.js`) and
    /// writes `manifest.json` (logical name → hashed name) for cache-busting URLs.
    BuildAssets {
        /// The asset directory (dotfiles and already-hashed names are skipped).
        dir: std::path::PathBuf,
        /// Where the hashed copies and `manifest.json` go (default: next to the originals).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// Where and how a subcommand serves.
#[derive(clap::Args)]
struct ServeArgs {
    /// The runtime to serve on [default: smol; mio for `serve`].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Runtime::names()))]
    runtime: Option<String>,
    /// Address to listen on, HOST:PORT (repeat for several): an IP address (`[::1]:8080` for
    /// IPv6) or a host name, which is listened on at every address it resolves to
    /// (`localhost:8080`); port 0 picks a free port.
    #[arg(long = "listen", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    listen: Vec<Listen>,
    /// Worker threads, at least 1 (default: one per CPU).
    #[arg(long, value_parser = at_least_one)]
    workers: Option<usize>,
    /// Most connections served at once (at least 1); more wait in the kernel's backlog.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
    max_connections: usize,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// The addresses one `--listen` resolved to.
#[derive(Clone, Debug)]
struct Listen(Vec<SocketAddr>);

/// `--listen HOST:PORT`, resolved at once (so a name that does not resolve is a usage error):
/// every address the name resolves to, in the resolver's order, without repeats.
fn parse_listen(value: &str) -> Result<Listen, String> {
    let resolved = value.to_socket_addrs().map_err(|error| {
        format!(
            "{error} (expected HOST:PORT, such as 127.0.0.1:8080, [::1]:8080 or localhost:8080)"
        )
    })?;
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for address in resolved {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err(format!("{value} resolves to no address"));
    }
    Ok(Listen(addresses))
}

/// A count that must be at least 1 (`--workers`, `--max-connections`).
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(error) => Err(error.to_string()),
    }
}

/// The log filter variables, the first one set winning.
const LOG_VARIABLES: [&str; 2] = ["WEFT_LOG", "RUST_LOG"];

const LOG_HELP: &str = "Logging (to stderr): the filter is WEFT_LOG, else RUST_LOG (WEFT_LOG wins \
when both are set), else `info`, in tracing's EnvFilter syntax: `debug`, `warn`, \
`info,weft_runtime=trace`, `off`.";

fn runtimes_help() -> String {
    format!(
        "Compiled-in runtimes: {}\n\n{LOG_HELP}",
        Runtime::names().collect::<Vec<_>>().join(", ")
    )
}

/// Logs to stderr with the filter of [`LOG_HELP`]. A filter that does not parse is reported,
/// and `info` used instead.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let chosen = LOG_VARIABLES.iter().find_map(|name| {
        let value = std::env::var(name).ok()?;
        (!value.trim().is_empty()).then_some((*name, value))
    });
    let (source, filter, problem) = match chosen {
        None => ("the default", EnvFilter::new("info"), None),
        Some((name, value)) => match EnvFilter::try_new(&value) {
            Ok(filter) => (name, filter, None),
            Err(error) => (
                "the default",
                EnvFilter::new("info"),
                Some(format!(
                    "{name}={value:?} is not a log filter ({error}): using info"
                )),
            ),
        },
    };
    let shown = filter.to_string();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    tracing::debug!("log filter {shown:?} from {source}");
}

fn main() -> ExitCode {
    init_logging();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Command::Echo(args) => echo(args),
        Command::Demo {
            serve,
            development,
            trusted_proxies,
        } => demo(
            serve,
            weft_cli::demo::Options {
                development,
                trusted_proxies,
            },
        ),
        Command::Serve {
            dir,
            serve,
            h2c,
            list_dirs,
            spa,
        } => {
            let listen_given = matches
                .subcommand_matches("serve")
                .and_then(|serve| serve.value_source("listen"))
                .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue);
            serve_files(serve, &dir, listen_given, h2c, list_dirs, spa)
        }
        Command::BuildAssets { dir, out } => {
            build_assets::run(&dir, out.as_deref()).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime of `echo` and `demo` when `--runtime` is not given.
const DEFAULT_RUNTIME: &str = "smol";

/// The runtime of `weft serve` when `--runtime` is not given: an event loop that sends files
/// with `sendfile(2)` on cleartext HTTP/1.1 (smol polls them in 64 KiB reads on the blocking
/// pool: about 4x the CPU per 1 MiB file in `benches/static.sh`).
const SERVE_RUNTIME: &str = if cfg!(feature = "mio") {
    "mio"
} else {
    DEFAULT_RUNTIME
};

impl ServeArgs {
    /// The runtime asked for with `--runtime`, else `default`.
    fn runtime_name<'a>(&'a self, default: &'a str) -> &'a str {
        self.runtime.as_deref().unwrap_or(default)
    }

    /// The server's configuration: addresses, workers, connections, TLS, signals.
    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig::new(self.listen.iter().flat_map(|listen| listen.0.clone()));
        if let Some(workers) = self.workers {
            config.workers = workers;
        }
        config.max_connections = self.max_connections;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(weft_runtime::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        config.handle_signals = true;
        config
    }

    /// Says where `command` listens, one line per address: tests read it to find the port.
    fn announce(&self, command: &str, config: &ServerConfig, addresses: &[SocketAddr]) {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        for address in addresses {
            println!(
                "weft {command} listening on {scheme}://{address} ({})",
                self.runtime_name(DEFAULT_RUNTIME)
            );
        }
    }
}

fn echo(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = args.config();
    // The echo server streams large bodies through: a limit fit for load and soak tests.
    config.dispatch.limits.max_body_size = 16 * 1024 * 1024 * 1024;
    let runtime: Runtime = args.runtime_name(DEFAULT_RUNTIME).parse()?;
    let announced = config.clone();
    let server: ServerHandle =
        weft_runtime::start_on(runtime, config, weft_cli::echo::echo_service())?;
    args.announce("echo", &announced, server.local_addrs());
    Ok(server.join()?)
}

fn demo(
    args: ServeArgs,
    options: weft_cli::demo::Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.config();
    let runtime: Runtime = args.runtime_name(DEFAULT_RUNTIME).parse()?;
    let announced = config.clone();
    let app = weft_cli::demo::app_with(&options).build()?;
    let server = app.listen_on(runtime, config)?;
    args.announce("demo", &announced, server.local_addrs());
    Ok(server.join()?)
}

/// `weft serve`: `PORT` moves the default address; the folder is checked before listening.
fn serve_files(
    mut args: ServeArgs,
    dir: &std::path::Path,
    listen_given: bool,
    h2c: bool,
    list_dirs: bool,
    spa: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use weft_cli::serve;
    if !listen_given {
        let port = std::env::var(serve::PORT_VARIABLE).ok();
        if let Some(address) = serve::port_address(port.as_deref())? {
            args.listen = vec![Listen(vec![address])];
        }
    }
    let root = serve::root(dir)?;
    let mut config = args.config();
    config.dispatch.h2c = h2c;
    let runtime: Runtime = args.runtime_name(SERVE_RUNTIME).parse()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let options = serve::Options {
        root,
        list_dirs,
        spa,
    };
    let server = serve::app(&options).build()?.listen_on(runtime, config)?;
    for address in server.local_addrs() {
        println!("{}", serve::announcement(&options.root, scheme, *address));
    }
    Ok(server.join()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_addresses_and_resolves_host_names() {
        let Listen(addresses) = parse_listen("127.0.0.1:8080").unwrap();
        assert_eq!(addresses, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        let Listen(addresses) = parse_listen("[::1]:0").unwrap();
        assert_eq!(addresses, ["[::1]:0".parse::<SocketAddr>().unwrap()]);
        let Listen(addresses) = parse_listen("localhost:8080").unwrap();
        assert!(!addresses.is_empty());
        assert!(
            addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addresses:?}"
        );
    }

    #[test]
    fn listen_refuses_what_is_not_host_and_port() {
        for bad in ["8080", "localhost", "127.0.0.1:http", ""] {
            let error = parse_listen(bad).unwrap_err();
            assert!(error.contains("HOST:PORT"), "{bad}: {error}");
        }
    }

    #[test]
    fn counts_must_be_at_least_one() {
        assert_eq!(at_least_one("1"), Ok(1));
        assert_eq!(at_least_one("64"), Ok(64));
        assert_eq!(at_least_one("0"), Err("must be at least 1".to_owned()));
        assert!(at_least_one("-1").is_err());
        assert!(at_least_one("many").is_err());
    }

    #[test]
    fn zero_workers_is_a_usage_error_naming_the_flag() {
        for flag in ["--workers", "--max-connections"] {
            let error = Cli::try_parse_from(["weft", "echo", flag, "0"])
                .err()
                .expect("refused");
            let text = error.to_string();
            assert!(text.contains(flag), "{text}");
            assert!(text.contains("at least 1"), "{text}");
        }
    }
}
