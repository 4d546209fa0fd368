//! GraphQL over WebSocket, both protocols (`graphql-transport-ws`, and the legacy `graphql-ws`
//! of subscriptions-transport-ws), as async-graphql speaks them: the same messages, close codes
//! and order. Each socket is one stream, polled by the actix worker that owns the connection:
//! it reads the client's frames, runs what they ask through [`Operations`], and writes each
//! answer into the response body as a frame. An answer arrives already encoded as JSON (once
//! for all identical subscriptions, see `graphql::shared`), so a delivery costs a frame around
//! shared bytes and a socket write; no actor, channel or per-socket encoding sits in between
//! (BENCHMARKS.md, c).
//!
//! The server pings every [`HEARTBEAT`] and drops a client it has not heard from for
//! [`CLIENT_TIMEOUT`]. As graphql-transport-ws asks, a socket with no accepted
//! `connection_init` after [`INIT_TIMEOUT`] is closed with 4408, and one that starts an id
//! already running with 4409 (the legacy protocol replaces that operation). A socket runs at
//! most [`MAX_OPERATIONS`] operations at once; one more is answered `BAD_USER_INPUT` and
//! completed, and the socket goes on.

mod messages;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError, hash_key, verify_handshake};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::{ClientMessage, WebSocketProtocols};
use async_graphql::{Data, Request};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream};
use futures_util::{FutureExt, StreamExt};
use tokio::time::{Instant, Sleep};

/// How often the server pings.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A client silent for this long is gone; its socket is dropped.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a socket may stay open without an accepted `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame, and the largest message assembled from fragments, a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// Answers written to the body before it is handed to the connection.
const FLUSH_AT: usize = 64 * 1024;
/// Answers taken from one operation in a row before the others get a turn.
const ANSWERS_IN_A_ROW: usize = 32;
/// Operations one socket may run at once: a dashboard needs a handful, and each one holds
/// memory for as long as it runs.
pub const MAX_OPERATIONS: usize = 100;

/// What a socket's messages run against.
pub trait Operations: 'static {
    /// Accepts a `connection_init` payload with the session's data, or refuses it with the
    /// message the client is given.
    fn init(&self, payload: serde_json::Value) -> BoxFuture<'static, Result<Data, String>>;

    /// The answers to one operation of a session, each the JSON of one GraphQL response.
    fn answers(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Bytes>;
}

/// Upgrades `request` to a GraphQL socket served by `operations`; a request naming neither
/// protocol, or not a WebSocket handshake, is answered 400.
pub fn start(
    request: &HttpRequest,
    payload: web::Payload,
    operations: impl Operations,
) -> actix_web::Result<HttpResponse> {
    let protocol = request
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols.split(',').find_map(|protocol| WebSocketProtocols::from_str(protocol.trim()).ok())
        })
        .ok_or_else(|| {
            actix_web::error::ErrorBadRequest(
                "name a GraphQL WebSocket protocol in Sec-WebSocket-Protocol: graphql-transport-ws or graphql-ws",
            )
        })?;
    verify_handshake(request.head()).map_err(actix_web::error::ErrorBadRequest)?;
    let key = request.headers().get(header::SEC_WEBSOCKET_KEY).map(|key| hash_key(key.as_bytes()));
    let accept = key
        .and_then(|key| HeaderValue::from_bytes(&key).ok())
        .ok_or_else(|| actix_web::error::ErrorBadRequest("the WebSocket handshake has no key"))?;
    Ok(HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS)
        .upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, accept))
        .insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol.sec_websocket_protocol()))
        .streaming(Session::new(payload, operations, protocol)))
}

/// Where the session's `connection_init` stands.
enum Init {
    Waiting,
    Checking(BoxFuture<'static, Result<Data, String>>),
    Accepted(Arc<Data>),
}

/// One socket: the client's frames in, the response body's frames out.
struct Session<O> {
    operations: O,
    protocol: WebSocketProtocols,
    incoming: web::Payload,
    codec: Codec,
    /// Bytes read and not yet decoded into frames.
    unread: BytesMut,
    /// A message arriving in fragments.
    fragments: Option<Vec<u8>>,
    init: Init,
    /// The operations under way, by the client's id.
    running: HashMap<String, BoxStream<'static, Bytes>>,
    /// Frames written and not yet handed to the connection.
    outgoing: BytesMut,
    scratch: Vec<u8>,
    heartbeat: Pin<Box<Sleep>>,
    last_heard: Instant,
    /// Until the `connection_init` is accepted.
    init_deadline: Option<Pin<Box<Sleep>>>,
    /// Nothing more is read, run or pinged; what is written still goes out, then the body ends.
    closing: bool,
}

impl<O: Operations> Session<O> {
    fn new(incoming: web::Payload, operations: O, protocol: WebSocketProtocols) -> Self {
        Session {
            operations,
            protocol,
            incoming,
            codec: Codec::new().max_size(MAX_MESSAGE),
            unread: BytesMut::new(),
            fragments: None,
            init: Init::Waiting,
            running: HashMap::new(),
            outgoing: BytesMut::new(),
            scratch: Vec::new(),
            heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
            last_heard: Instant::now(),
            init_deadline: Some(Box::pin(tokio::time::sleep(INIT_TIMEOUT))),
            closing: false,
        }
    }

    /// Pings when it is time, and gives up on a client silent for too long or one that never
    /// completed its `connection_init`.
    fn keep_alive(&mut self, cx: &mut Context<'_>) {
        if self.init_deadline.as_mut().is_some_and(|deadline| deadline.poll_unpin(cx).is_ready()) {
            self.init_deadline = None;
            return self.close(4408, "Connection initialisation timeout");
        }
        while self.heartbeat.poll_unpin(cx).is_ready() {
            if self.last_heard.elapsed() > CLIENT_TIMEOUT {
                tracing::debug!("a WebSocket client stopped answering pings; its socket is closed");
                self.end();
                return;
            }
            messages::ping(&mut self.outgoing);
            self.heartbeat.as_mut().reset(Instant::now() + HEARTBEAT);
        }
    }

    /// Handles the next frame the client sent, if one has arrived. Nothing is read while a
    /// `connection_init` is being checked: what follows it waits for the answer.
    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.closing || matches!(self.init, Init::Checking(_)) {
            return false;
        }
        loop {
            match self.codec.decode(&mut self.unread) {
                Ok(Some(frame)) => {
                    self.last_heard = Instant::now();
                    self.on_frame(frame);
                    return true;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "a WebSocket client sent a malformed frame; its socket is closed");
                    // Told why, as a message too big in fragments is (RFC 6455 §7.4.1).
                    match err {
                        ProtocolError::Overflow => self.close(1009, "the message is too big"),
                        _ => self.close(1002, "a malformed WebSocket frame"),
                    }
                    return true;
                }
            }
            match self.incoming.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.unread.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(_)) | None) => {
                    self.end();
                    return true;
                }
                Poll::Pending => return false,
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Text(message) | Frame::Binary(message) => self.on_message(&message),
            Frame::Continuation(Item::FirstText(part) | Item::FirstBinary(part)) => {
                self.fragments = Some(part.to_vec());
            }
            Frame::Continuation(Item::Continue(part)) => self.add_fragment(&part),
            Frame::Continuation(Item::Last(part)) => {
                self.add_fragment(&part);
                if let Some(message) = self.fragments.take() {
                    self.on_message(&message);
                }
            }
            Frame::Ping(payload) => messages::pong(&mut self.outgoing, &payload),
            Frame::Pong(_) => {}
            Frame::Close(_) => {
                messages::close(&mut self.outgoing, 1000, "");
                self.end();
            }
        }
    }

    fn add_fragment(&mut self, part: &[u8]) {
        match self.fragments.as_mut() {
            Some(message) if message.len() + part.len() <= MAX_MESSAGE => message.extend_from_slice(part),
            Some(_) => self.close(1009, "the message is too big"),
            None => self.close(1002, "a continuation frame without a first frame"),
        }
    }

    fn on_message(&mut self, message: &[u8]) {
        let message = match ClientMessage::from_bytes(message) {
            Ok(message) => message,
            Err(err) => return self.close(1002, &err.to_string()),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => match self.init {
                Init::Waiting => {
                    self.init = Init::Checking(self.operations.init(payload.unwrap_or_default()));
                }
                Init::Checking(_) | Init::Accepted(_) => {
                    self.refuse_init("Too many initialisation requests.", 4429);
                }
            },
            ClientMessage::Start { id, .. }
                if self.protocol == WebSocketProtocols::GraphQLWS && self.running.contains_key(&id) =>
            {
                self.close(4409, &format!("Subscriber for {id} already exists"));
            }
            ClientMessage::Start { id, payload } => match &self.init {
                // The legacy protocol may restart a running id: that replaces, it does not add.
                Init::Accepted(_)
                    if self.running.len() >= MAX_OPERATIONS && !self.running.contains_key(&id) =>
                {
                    let refusal = messages::too_many_operations(MAX_OPERATIONS);
                    messages::answer(
                        &mut self.outgoing,
                        &mut self.scratch,
                        self.protocol,
                        &id,
                        refusal.as_bytes(),
                    );
                    messages::text(&mut self.outgoing, &messages::complete(&id));
                }
                Init::Accepted(session) => {
                    let answers = self.operations.answers(payload, session.clone());
                    self.running.insert(id, answers);
                }
                Init::Waiting | Init::Checking(_) => self.close(1011, "The handshake is not completed."),
            },
            ClientMessage::Stop { id } => {
                if self.running.remove(&id).is_some() {
                    messages::text(&mut self.outgoing, &messages::complete(&id));
                }
            }
            ClientMessage::ConnectionTerminate => self.end(),
            ClientMessage::Ping { .. } => messages::text(&mut self.outgoing, messages::PONG),
            ClientMessage::Pong { .. } => {}
        }
    }

    /// Answers the `connection_init` once it has been checked.
    fn poll_init(&mut self, cx: &mut Context<'_>) -> bool {
        let Init::Checking(check) = &mut self.init else {
            return false;
        };
        let Poll::Ready(checked) = check.poll_unpin(cx) else {
            return false;
        };
        match checked {
            Ok(session) => {
                self.init = Init::Accepted(Arc::new(session));
                self.init_deadline = None;
                messages::text(&mut self.outgoing, messages::ACK);
            }
            Err(message) => {
                self.init = Init::Waiting;
                self.refuse_init(&message, 1002);
            }
        }
        true
    }

    /// The legacy protocol says so in a message; the current one closes with `code`.
    fn refuse_init(&mut self, message: &str, code: u16) {
        match self.protocol {
            WebSocketProtocols::SubscriptionsTransportWS => {
                messages::text(&mut self.outgoing, &messages::connection_error(message));
                self.end();
            }
            WebSocketProtocols::GraphQLWS => self.close(code, message),
        }
    }

    /// Writes every answer that is ready, and `complete` for each operation that ended.
    fn poll_answers(&mut self, cx: &mut Context<'_>) -> bool {
        if self.closing {
            return false;
        }
        let Session { running, outgoing, scratch, protocol, .. } = self;
        let mut wrote = false;
        let mut finished = Vec::new();
        for (id, answers) in running.iter_mut() {
            for _ in 0..ANSWERS_IN_A_ROW {
                match answers.poll_next_unpin(cx) {
                    Poll::Ready(Some(answer)) => {
                        messages::answer(outgoing, scratch, *protocol, id, &answer);
                        wrote = true;
                    }
                    Poll::Ready(None) => {
                        finished.push(id.clone());
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        for id in finished {
            running.remove(&id);
            messages::text(outgoing, &messages::complete(&id));
            wrote = true;
        }
        wrote
    }

    /// Closes the socket with `code`: the close frame goes out, then the connection ends.
    fn close(&mut self, code: u16, reason: &str) {
        messages::close(&mut self.outgoing, code, reason);
        self.end();
    }

    /// Stops reading and running; the body ends once what was written has gone out.
    fn end(&mut self) {
        self.closing = true;
        self.running.clear();
    }
}

impl<O: Operations> Stream for Session<O> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let session = &mut *self;
        if !session.closing {
            session.keep_alive(cx);
        }
        while session.outgoing.len() < FLUSH_AT {
            let read = session.read(cx);
            let checked = session.poll_init(cx);
            let answered = session.poll_answers(cx);
            if !(read || checked || answered) {
                break;
            }
        }
        if !session.outgoing.is_empty() {
            return Poll::Ready(Some(Ok(session.outgoing.split().freeze())));
        }
        if session.closing { Poll::Ready(None) } else { Poll::Pending }
    }
}

impl<O> Unpin for Session<O> {}
