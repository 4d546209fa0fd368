//! Subscriptions through a real WebSocket, as the service runs them: a subscription whose
//! resolver panics answers `INTERNAL` and ends, while its socket and the server go on; identical
//! subscriptions share one execution, which stops with its last subscriber. The schema is a
//! small one with a resolver that panics on demand and a stream the test drives (the service's
//! own has neither); the sharing, the guard and the transport are the service's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::{Context, Data, EmptyMutation, Object, Request, Schema, Subscription};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, Stream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::Operations;
use crate::events::Subscribers;
use crate::graphql::shared::{Listening, SharedSubscriptions};

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

    /// The drum's beats, each answered with `tag`.
    async fn beats(&self, ctx: &Context<'_>, tag: String) -> impl Stream<Item = String> + use<> {
        let drum = ctx.data_unchecked::<Drum>();
        drum.started.fetch_add(1, Ordering::SeqCst);
        let playing = Playing::new(drum.playing.clone());
        let beats = drum.beats.subscribe();
        if let Some(listening) = ctx.data_opt::<Listening>() {
            listening.started();
        }
        stream::unfold((beats, playing), move |(mut beats, playing)| {
            let tag = tag.clone();
            async move {
                let beat = beats.recv().await.ok()?;
                Some((format!("{tag} {beat}"), (beats, playing)))
            }
        })
    }
}

/// What the test drives `beats` with, and how many of its executions started and still run.
#[derive(Clone)]
struct Drum {
    beats: tokio::sync::broadcast::Sender<u32>,
    started: Arc<AtomicUsize>,
    playing: Arc<AtomicUsize>,
}

/// One running execution of `beats`, counted while it lives.
struct Playing(Arc<AtomicUsize>);

impl Playing {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Playing(count)
    }
}

impl Drop for Playing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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

/// Runs subscriptions as `AppSchema` does: shared, on the GraphQL runtime, behind the guard.
#[derive(Clone)]
struct Shared(Schema<Query, EmptyMutation, Ticks>, Arc<SharedSubscriptions>);

impl Shared {
    fn new(schema: Schema<Query, EmptyMutation, Ticks>, subscribers: Subscribers) -> Self {
        Shared(schema, Arc::new(SharedSubscriptions::new(subscribers)))
    }
}

impl Operations for Shared {
    fn init(&self, _payload: Value) -> BoxFuture<'static, Result<Data, String>> {
        std::future::ready(Ok(Data::default())).boxed()
    }

    fn answers(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Bytes> {
        let schema = self.0.clone();
        self.1.subscribe(request, session, move |request, session| {
            schema.execute_stream_with_session_data(request, session)
        })
    }
}

async fn websocket(
    request: HttpRequest,
    payload: web::Payload,
    operations: web::Data<Shared>,
) -> actix_web::Result<HttpResponse> {
    super::start(&request, payload, operations.get_ref().clone())
}

#[actix_web::test]
async fn a_panicking_subscription_answers_internal_and_its_socket_goes_on() {
    let (address, handle) = serve(Schema::new(Query, EmptyMutation, Ticks), Subscribers::default());

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

#[actix_web::test]
async fn identical_subscriptions_share_one_execution_until_the_last_leaves() {
    let drum = Drum {
        beats: tokio::sync::broadcast::channel(16).0,
        started: Arc::default(),
        playing: Arc::default(),
    };
    let subscribers = Subscribers::default();
    let schema = Schema::build(Query, EmptyMutation, Ticks).data(drum.clone()).finish();
    let (address, handle) = serve(schema, subscribers.clone());
    let query = "subscription($tag: String!) { beats(tag: $tag) }";
    let subscribe = |id: &str, tag: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": { "tag": tag } } });
    let mut sockets = Vec::new();
    for (id, tag) in [("1", "x"), ("9", "x"), ("1", "y")] {
        let mut socket = connect(&format!("ws://{address}/ws")).await;
        send(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, subscribe(id, tag)).await;
        sockets.push(socket);
    }
    settle(|| subscribers.count() == 3).await;
    assert_eq!(drum.started.load(Ordering::SeqCst), 2, "the two identical subscriptions share one execution");

    drum.beats.send(1).unwrap();
    let answers = [("1", "x 1"), ("9", "x 1"), ("1", "y 1")];
    for (socket, (id, answer)) in sockets.iter_mut().zip(answers) {
        let message = receive(socket).await;
        assert_eq!(message["id"], id, "{message}");
        assert_eq!(message["payload"]["data"]["beats"], answer, "{message}");
    }

    // One of the two leaves: the other still hears every beat from the same execution.
    send(&mut sockets[0], json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(receive(&mut sockets[0]).await, json!({ "id": "1", "type": "complete" }));
    settle(|| subscribers.count() == 2).await;
    drum.beats.send(2).unwrap();
    assert_eq!(receive(&mut sockets[1]).await["payload"]["data"]["beats"], "x 2");
    assert_eq!(receive(&mut sockets[2]).await["payload"]["data"]["beats"], "y 2");
    assert_eq!(drum.playing.load(Ordering::SeqCst), 2);

    // The last one leaves: its execution stops, and the next identical subscription starts anew.
    send(&mut sockets[1], json!({ "id": "9", "type": "complete" })).await;
    settle(|| drum.playing.load(Ordering::SeqCst) == 1 && subscribers.count() == 1).await;
    send(&mut sockets[0], subscribe("2", "x")).await;
    settle(|| subscribers.count() == 2).await;
    assert_eq!(drum.started.load(Ordering::SeqCst), 3);
    drum.beats.send(3).unwrap();
    assert_eq!(receive(&mut sockets[0]).await["payload"]["data"]["beats"], "x 3");

    handle.stop(false).await;
}

/// Serves `schema` over WebSocket at `/ws` on a port of its own, as the service does.
fn serve(
    schema: Schema<Query, EmptyMutation, Ticks>,
    subscribers: Subscribers,
) -> (std::net::SocketAddr, actix_web::dev::ServerHandle) {
    let operations = Shared::new(schema, subscribers);
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(operations.clone())).route("/ws", web::get().to(websocket))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (address, handle)
}

/// Waits up to five seconds for `done`.
async fn settle(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "the server did not settle");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
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
