//! What the server sends, in either protocol, framed for the socket. An answer is written as the
//! JSON it was encoded to, once for every identical subscription (`graphql::shared`): only the
//! envelope around it, with the operation's id, is written per socket.

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use async_graphql::http::WebSocketProtocols;
use bytes::BytesMut;
use serde_json::json;

/// A close frame's reason must fit in 123 bytes.
const MAX_CLOSE_REASON: usize = 123;

pub const ACK: &str = r#"{"type":"connection_ack"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

/// Appends one answer of operation `id` to `out`; `scratch` is reused between answers.
pub fn answer(
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
    protocol: WebSocketProtocols,
    id: &str,
    answer: &[u8],
) {
    scratch.clear();
    scratch.extend_from_slice(match protocol {
        WebSocketProtocols::GraphQLWS => br#"{"type":"next","id":"#,
        WebSocketProtocols::SubscriptionsTransportWS => br#"{"type":"data","id":"#,
    });
    // An id is a string the client chose: written as JSON, escaped.
    if serde_json::to_writer(&mut *scratch, id).is_err() {
        scratch.extend_from_slice(br#""""#);
    }
    scratch.extend_from_slice(br#","payload":"#);
    scratch.extend_from_slice(answer);
    scratch.push(b'}');
    Parser::write_message(out, &scratch[..], OpCode::Text, true, false);
}

/// The end of operation `id`.
pub fn complete(id: &str) -> String {
    json!({ "type": "complete", "id": id }).to_string()
}

/// The answer to an operation past the socket's `limit`.
pub fn too_many_operations(limit: usize) -> String {
    let message = format!("a socket runs at most {limit} operations at once; complete one first");
    json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }] })
        .to_string()
}

/// A refused `connection_init` in the legacy protocol (the current one closes instead).
pub fn connection_error(message: &str) -> String {
    json!({ "type": "connection_error", "payload": { "message": message } }).to_string()
}

pub fn text(out: &mut BytesMut, message: &str) {
    Parser::write_message(out, message, OpCode::Text, true, false);
}

pub fn ping(out: &mut BytesMut) {
    Parser::write_message(out, b"", OpCode::Ping, true, false);
}

pub fn pong(out: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(out, payload, OpCode::Pong, true, false);
}

pub fn close(out: &mut BytesMut, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = CloseReason { code: CloseCode::from(code), description: Some(reason[..end].to_owned()) };
    Parser::write_close(out, Some(reason), false);
}
