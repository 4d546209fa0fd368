//! A minimal GraphQL-over-WebSocket client for the tests, speaking either protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// `graphql-transport-ws`, the current one.
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    Legacy,
}

pub struct Subscriber {
    socket: Socket,
    protocol: Protocol,
}

impl Subscriber {
    /// Connects to `path` and completes `connection_init` with `token`. Answers the socket's
    /// first message after init when it is not an ack.
    pub async fn connect(
        address: &str,
        path: &str,
        protocol: Protocol,
        token: &str,
    ) -> Result<Subscriber, Value> {
        let url = format!("{}{path}", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        let name = match protocol {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        };
        request.headers_mut().insert("sec-websocket-protocol", name.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("the WebSocket opens");
        let mut subscriber = Subscriber { socket, protocol };
        subscriber
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let first = subscriber.next_message().await;
        match first.as_ref().and_then(|m| m["type"].as_str()) {
            Some("connection_ack") => Ok(subscriber),
            _ => Err(first.unwrap_or(Value::Null)),
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::Legacy => "start",
        };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// Closes the socket as a client leaving does, and waits for the server's close.
    pub async fn close(mut self) {
        self.socket.close(None).await.expect("the close frame goes out");
        while let Some(Ok(_)) = self.socket.next().await {}
    }

    async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("send");
    }

    /// The next protocol message, skipping keep-alives; `None` when the socket closed.
    pub async fn next_message(&mut self) -> Option<Value> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if matches!(message["type"].as_str(), Some("ka" | "ping" | "pong")) {
                        continue;
                    }
                    return Some(message);
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(frame) => (Some(u16::from(frame.code)), frame.reason.to_string()),
                        None => (None, String::new()),
                    };
                    return Some(json!({ "type": "closed", "code": code, "reason": reason }));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The next data payload (`next`/`data`), waiting at most `within`.
    pub async fn next_data(&mut self, within: Duration) -> Option<Value> {
        let message = tokio::time::timeout(within, self.next_message()).await.ok()??;
        match message["type"].as_str() {
            Some("next" | "data") => Some(message["payload"].clone()),
            _ => Some(message),
        }
    }
}
