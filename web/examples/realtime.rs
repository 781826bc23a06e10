//! Real time: Server-Sent Events (a ticking counter, ended by the server's shutdown) and a
//! WebSocket chat room through the `Hub`.
//!
//! ```text
//! cargo run -p weft --example realtime -- 127.0.0.1:8080
//! curl -N http://127.0.0.1:8080/ticks                       # an event per second
//! python3 -m websockets ws://127.0.0.1:8080/chat            # type lines; others see them
//! ```

use std::time::Duration;

use weft::prelude::*;
use weft::services::Inject;
use weft::sse::{Event, Sse};
use weft::websocket::{CloseCode, Hub, Message, SlowConsumer, WebSocketUpgrade};

/// One event per second, numbered; the server's shutdown ends the stream.
async fn ticks() -> impl IntoResponse {
    let stream = futures_lite::stream::unfold(0u64, |n| async move {
        if n > 0 {
            weft_service::runtime::sleep(Duration::from_secs(1)).await;
        }
        Some((
            Event::new()
                .event("tick")
                .id(n.to_string())
                .data(format!("tick {n}")),
            n + 1,
        ))
    });
    Sse::new(stream).keep_alive(Duration::from_secs(15))
}

/// Every message a member sends goes to the others in the room; a member is told once it
/// has joined.
async fn chat(upgrade: WebSocketUpgrade, hub: Inject<Hub>) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        hub.join("lobby", socket.sender());
        if socket.send(Message::text("joined lobby")).await.is_err() {
            return hub.remove(socket.id());
        }
        while let Some(message) = socket.recv().await {
            hub.broadcast_to("lobby", &message, Some(socket.id()));
        }
        hub.remove(socket.id());
    })
}

fn app() -> App {
    App::new()
        // A member that cannot keep up is disconnected rather than slowing the others.
        .state(Hub::new(SlowConsumer::Disconnect(
            CloseCode::TRY_AGAIN_LATER,
        )))
        .get("/ticks", ticks)
        .get("/chat", chat)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    app().serve(address)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use weft::test::TestClient;

    #[test]
    fn events_stream_and_the_chat_relays() {
        let client = TestClient::new(super::app().build().unwrap());
        let mut ticks = client.get("/ticks").send_streaming();
        assert_eq!(ticks.header("content-type"), Some("text/event-stream"));
        let first = ticks.next_text().expect("a first event");
        assert!(first.contains("data: tick 0"), "{first}");

        let mut alice = client.websocket("/chat");
        let mut bob = client.websocket("/chat");
        // Each is told once it is in the room.
        assert_eq!(alice.recv_text(), "joined lobby");
        assert_eq!(bob.recv_text(), "joined lobby");
        alice.send_text("hello bob");
        assert_eq!(bob.recv_text(), "hello bob");
    }
}
