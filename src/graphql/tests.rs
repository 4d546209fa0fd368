//! The panic guard of subscriptions through a real WebSocket: a subscription whose resolver
//! panics answers `INTERNAL` and ends, while its socket, the socket's actix worker and the
//! server go on. The schema is a small one with a resolver that panics on demand (the service's
//! own has none); the guard and the transport are the service's.

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::{Data, EmptyMutation, Executor, Object, Request, Response, Schema, Subscription};
use async_graphql_actix_web::GraphQLSubscription;
use futures_util::stream::{self, BoxStream, Stream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Query;

#[Object]
impl Query {
    async fn alive(&self) -> bool {
        true
    }
}

struct Ticks;

#[Subscription]
impl Ticks {
    /// Ticks 1 to `to`; resolving the value of tick `panic_at` panics.
    async fn ticks(&self, to: i32, panic_at: Option<i32>) -> impl Stream<Item = Tick> {
        stream::iter(1..=to).map(move |n| Tick { n, panics: panic_at == Some(n) })
    }
}

struct Tick {
    n: i32,
    panics: bool,
}

#[Object]
impl Tick {
    async fn value(&self) -> i32 {
        if self.panics {
            panic!("a resolver bug, with detail the client must not see");
        }
        self.n
    }
}

/// Runs subscriptions as `AppSchema` does.
#[derive(Clone)]
struct Guarded(Schema<Query, EmptyMutation, Ticks>);

impl Executor for Guarded {
    async fn execute(&self, request: Request) -> Response {
        self.0.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        super::subscription_responses(
            self.0.execute_stream_with_session_data(request, session_data.unwrap_or_default()),
        )
    }
}

async fn websocket(
    request: HttpRequest,
    payload: web::Payload,
    executor: web::Data<Guarded>,
) -> actix_web::Result<HttpResponse> {
    GraphQLSubscription::new(executor.get_ref().clone()).start(&request, payload)
}

#[actix_web::test]
async fn a_panicking_subscription_answers_internal_and_its_socket_goes_on() {
    let executor = Guarded(Schema::new(Query, EmptyMutation, Ticks));
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(executor.clone())).route("/ws", web::get().to(websocket))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let mut socket = connect(&format!("ws://{address}/ws")).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");

    let query = "subscription($panicAt: Int) { ticks(to: 3, panicAt: $panicAt) { value } }";
    let subscribe = |id: &str, panic_at: Option<i32>| json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": { "panicAt": panic_at } } });
    send(&mut socket, subscribe("1", Some(2))).await;
    let first = receive(&mut socket).await;
    assert_eq!(first["payload"]["data"]["ticks"]["value"], 1, "{first}");
    let panicked = receive(&mut socket).await;
    assert_eq!(panicked["type"], "next", "{panicked}");
    assert_eq!(panicked["payload"]["errors"][0]["extensions"]["code"], "INTERNAL", "{panicked}");
    assert!(!panicked.to_string().contains("resolver bug"), "{panicked}");
    assert_eq!(receive(&mut socket).await, json!({ "id": "1", "type": "complete" }));

    // The same socket, and so the same actor on the same worker, serves the next subscription.
    send(&mut socket, subscribe("2", None)).await;
    for n in 1..=3 {
        assert_eq!(receive(&mut socket).await["payload"]["data"]["ticks"]["value"], n);
    }
    assert_eq!(receive(&mut socket).await, json!({ "id": "2", "type": "complete" }));

    handle.stop(false).await;
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.expect("the WebSocket opens").0
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next text message, skipping pings.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await.expect("the socket stays open").expect("a message") {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if message["type"] != "ping" {
                    return message;
                }
            }
            Message::Close(frame) => panic!("the socket closed: {frame:?}"),
            _ => continue,
        }
    }
}
