//! The tokio-tungstenite peer of `benches/ws.sh`: a WebSocket echo server at its fastest
//! single-core setting.
//!
//! `weft-peer-tungstenite [--listen ADDR]` (default `127.0.0.1:0`). Prints
//! `tokio-tungstenite listening on http://ADDR (current)` once bound, as `weft echo` does.
//!
//! - Every path is upgraded (`tokio_tungstenite::accept_async`, tungstenite's default limits:
//!   64 MiB messages, 16 MiB frames); no extension is negotiated (tungstenite has no
//!   permessage-deflate).
//! - Every text and binary message is sent back as it came; pings are answered and the close
//!   handshake is done by tungstenite itself.
//! - Echoes are queued with `start_send` and flushed only when no more input is ready (as
//!   `StreamExt::forward` does), so a burst of messages goes out in one write.
//! - One connection per tokio task, `TCP_NODELAY`, tokio's current-thread runtime: the whole
//!   server is one thread, like `weft echo --workers 1` pinned to one core.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const USAGE: &str = "usage: weft-peer-tungstenite [--listen ADDR]";

fn main() -> std::io::Result<()> {
    let listen = parse_args().unwrap_or_else(|| {
        eprintln!("{USAGE}");
        std::process::exit(2);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(serve(listen))
}

/// The listen address from the command line; `None` when the arguments are not understood.
fn parse_args() -> Option<SocketAddr> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().ok()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value.parse().ok()?,
            _ => return None,
        }
    }
    Some(listen)
}

async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!(
        "tokio-tungstenite listening on http://{} (current)",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // EMFILE and the like: keep serving the connections already open.
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream));
    }
}

/// Upgrades one connection and echoes on it until it ends; its errors end only it.
async fn serve_connection(stream: TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let _ = poll_fn(|cx| poll_echo(Pin::new(&mut socket), cx)).await;
}

/// Echoes every text and binary message: takes input while the sink has room, and flushes
/// when no more input is ready. Ends when the peer's close handshake (or an error) ends the
/// stream.
fn poll_echo(
    mut socket: Pin<&mut WebSocketStream<TcpStream>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), WsError>> {
    loop {
        // Room first, so that a message taken from the stream can always be queued.
        ready!(socket.as_mut().poll_ready(cx))?;
        match socket.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))) => {
                socket.as_mut().start_send(message)?;
            }
            // Pings, pongs and the peer's Close: tungstenite answers them itself.
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Pending => {
                ready!(socket.as_mut().poll_flush(cx))?;
                return Poll::Pending;
            }
        }
    }
}
