//! The `weft` command.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weft_runtime::{Runtime, ServerConfig, ServerHandle};

#[derive(Parser)]
#[command(name = "weft", version, about = "weft: a Rust web server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The protocol echo server that conformance, load and soak tests aim at.
    #[command(after_help = runtimes_help())]
    Echo(EchoArgs),
}

#[derive(clap::Args)]
struct EchoArgs {
    /// The runtime to serve on.
    #[arg(long, default_value = "smol", value_parser = clap::builder::PossibleValuesParser::new(Runtime::names()))]
    runtime: String,
    /// Address to listen on (repeat for several); port 0 picks a free port.
    #[arg(long = "listen", default_value = "127.0.0.1:8080")]
    listen: Vec<SocketAddr>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Most connections served at once (at least 1); more wait in the kernel's backlog.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn runtimes_help() -> String {
    format!(
        "Compiled-in runtimes: {}",
        Runtime::names().collect::<Vec<_>>().join(", ")
    )
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo(args) => echo(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft: {error}");
            ExitCode::FAILURE
        }
    }
}

fn echo(args: EchoArgs) -> std::io::Result<()> {
    let mut config = ServerConfig::new(args.listen);
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    config.max_connections = args.max_connections;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(weft_runtime::TlsFiles { cert, key });
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    config.handle_signals = true;
    // The echo server streams large bodies through: a limit fit for load and soak tests.
    config.dispatch.limits.max_body_size = 16 * 1024 * 1024 * 1024;
    let service = weft_cli::echo::echo_service();
    let server = start(&args.runtime, config, service)?;
    for address in server.local_addrs() {
        // Tests read this line to find the port.
        println!(
            "weft echo listening on {scheme}://{address} ({})",
            args.runtime
        );
    }
    server.join()
}

fn start(
    runtime: &str,
    config: ServerConfig,
    service: weft_cli::echo::Echo,
) -> std::io::Result<ServerHandle> {
    let runtime: Runtime = runtime.parse()?;
    weft_runtime::start_on(runtime, config, service)
}
