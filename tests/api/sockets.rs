//! The WebSocket transport, frame by frame: a socket that breaks the protocol is closed with
//! the code that says why, and only that socket pays; pings are answered; a message may come in
//! fragments, but not without bound; an instance, and each caller, holds a bounded number of
//! sockets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use plugboard::domain::TeamRole;

use crate::helpers::{Backend, TestApp};
use crate::ws::{Protocol, Subscriber};

const WAIT: Duration = Duration::from_secs(5);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `graphql-transport-ws` socket with nothing sent on it yet.
async fn open(app: &TestApp) -> Socket {
    open_speaking(app, "graphql-transport-ws").await
}

async fn open_speaking(app: &TestApp, protocol: &str) -> Socket {
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.expect("the WebSocket opens").0
}

/// The next protocol message as JSON, skipping pings.
async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next message or frame that is not a server ping.
async fn next(socket: &mut Socket) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.expect("the server answers in time")? {
            Ok(Message::Ping(_)) => continue,
            Ok(message) => return Some(message),
            Err(_) => return None,
        }
    }
}

/// The code of the close frame the server sends next.
async fn close_code(socket: &mut Socket) -> u16 {
    match next(socket).await {
        Some(Message::Close(Some(frame))) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

async fn acknowledged(socket: &mut Socket) {
    send(socket, json!({ "type": "connection_init" })).await;
    match next(socket).await {
        Some(Message::Text(text)) => assert!(text.contains("connection_ack"), "{text}"),
        other => panic!("expected connection_ack, got {other:?}"),
    }
}

#[tokio::test]
async fn a_socket_that_breaks_the_protocol_is_closed_with_its_code_and_the_others_go_on() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let mut bystander =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    bystander
        .subscribe(
            "c",
            "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }",
            json!({ "t": member.team_id }),
        )
        .await;

    let mut not_json = open(&app).await;
    not_json.send(Message::text("{ this is not json")).await.unwrap();
    assert_eq!(close_code(&mut not_json).await, 1002, "a message that does not parse");

    let mut too_early = open(&app).await;
    send(&mut too_early, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } }))
        .await;
    assert_eq!(close_code(&mut too_early).await, 1011, "an operation before connection_init");

    let mut twice = open(&app).await;
    acknowledged(&mut twice).await;
    send(&mut twice, json!({ "type": "connection_init" })).await;
    assert_eq!(close_code(&mut twice).await, 4429, "a second connection_init");

    let mut reused = open(&app).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", member.token) } });
    send(&mut reused, init).await;
    assert!(matches!(next(&mut reused).await, Some(Message::Text(ack)) if ack.contains("connection_ack")));
    let subscription = "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }";
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription, "variables": { "t": member.team_id } } });
    send(&mut reused, subscribe.clone()).await;
    send(&mut reused, subscribe).await;
    assert_eq!(close_code(&mut reused).await, 4409, "an id that is already running");

    let mut endless = open(&app).await;
    let part = "x".repeat(16 * 1024);
    endless
        .send(Message::Frame(Frame::message(part.clone(), OpCode::Data(Data::Text), false)))
        .await
        .unwrap();
    for _ in 0..4 {
        endless
            .send(Message::Frame(Frame::message(part.clone(), OpCode::Data(Data::Continue), false)))
            .await
            .unwrap();
    }
    assert_eq!(close_code(&mut endless).await, 1009, "a fragmented message past 64 KiB");

    let mut huge = open(&app).await;
    huge.send(Message::text("x".repeat(65 * 1024))).await.unwrap();
    assert_eq!(close_code(&mut huge).await, 1009, "one frame past 64 KiB is told why too");

    // The socket that behaved still works, and new ones are served.
    let created = app.create_api_key_connection(&member, "Acme key", "sk-a").await;
    let event = bystander.next_data(WAIT).await.expect("the well-behaved subscription goes on");
    assert_eq!(event["data"]["connectionEvents"]["kind"], "CREATED", "{event}; {created}");
    Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token)
        .await
        .expect("a new socket is served");
}

#[tokio::test]
async fn pings_are_answered_and_messages_may_come_in_fragments() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut socket = open(&app).await;

    socket.send(Message::Ping("are you there".into())).await.unwrap();
    match next(&mut socket).await {
        Some(Message::Pong(payload)) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong frame, got {other:?}"),
    }

    let init = json!({ "type": "connection_init" }).to_string();
    let (first, rest) = init.split_at(5);
    let (middle, last) = rest.split_at(5);
    socket
        .send(Message::Frame(Frame::message(first.to_owned(), OpCode::Data(Data::Text), false)))
        .await
        .unwrap();
    socket
        .send(Message::Frame(Frame::message(middle.to_owned(), OpCode::Data(Data::Continue), false)))
        .await
        .unwrap();
    socket
        .send(Message::Frame(Frame::message(last.to_owned(), OpCode::Data(Data::Continue), true)))
        .await
        .unwrap();
    match next(&mut socket).await {
        Some(Message::Text(text)) => assert!(text.contains("connection_ack"), "{text}"),
        other => panic!("expected connection_ack, got {other:?}"),
    }

    send(&mut socket, json!({ "type": "ping" })).await;
    match next(&mut socket).await {
        Some(Message::Text(text)) => {
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({ "type": "pong" }))
        }
        other => panic!("expected a protocol pong, got {other:?}"),
    }

    send(&mut socket, json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ __typename }" } }))
        .await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        match next(&mut socket).await {
            Some(Message::Text(text)) => answers.push(serde_json::from_str::<Value>(&text).unwrap()),
            other => panic!("expected an answer, got {other:?}"),
        }
    }
    assert_eq!(
        answers,
        [
            json!({ "id": "q", "type": "next", "payload": { "data": { "__typename": "Query" } } }),
            json!({ "id": "q", "type": "complete" }),
        ]
    );
}

#[tokio::test]
async fn a_socket_runs_a_bounded_number_of_operations_and_goes_on() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let mut socket =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    let query = "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }";
    let team = json!({ "t": member.team_id });
    for n in 0..100 {
        socket.subscribe(&format!("s{n}"), query, team.clone()).await;
    }
    socket.subscribe("one too many", query, team.clone()).await;
    let refused = socket.next_data(WAIT).await.expect("the operation past the limit is answered");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    let complete = socket.next_data(WAIT).await.expect("and completed");
    assert_eq!(complete, json!({ "id": "one too many", "type": "complete" }));

    // The hundred still hear their team.
    app.create_api_key_connection(&member, "Acme key", "sk-a").await;
    let mut heard = std::collections::HashSet::new();
    while heard.len() < 100 {
        let message = tokio::time::timeout(WAIT, socket.next_message())
            .await
            .expect("every running subscription hears the creation")
            .expect("the socket stays open");
        assert_eq!(message["type"], "next", "{message}");
        if message["payload"]["data"]["connectionEvents"]["kind"] == "CREATED" {
            assert!(heard.insert(message["id"].to_string()), "one creation per subscription: {message}");
        }
    }
    assert!(!heard.contains("\"one too many\""));
}

#[tokio::test]
async fn a_socket_that_never_initialises_is_closed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut idle = open(&app).await;
    let started = std::time::Instant::now();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(15), idle.next()).await.expect("closed in time") {
            Some(Ok(Message::Ping(_))) => continue,
            other => break other,
        }
    };
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4408, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(9), "not before the initialisation timeout");
}

#[tokio::test]
async fn the_legacy_protocol_gets_data_messages_and_stops_on_request() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let mut socket = open_speaking(&app, "graphql-ws").await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", member.token) } });
    send(&mut socket, init).await;
    assert_eq!(next_json(&mut socket).await, json!({ "type": "connection_ack" }));
    let query = "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }";
    let start = json!({ "id": "l", "type": "start", "payload": { "query": query, "variables": { "t": member.team_id } } });
    send(&mut socket, start).await;
    crate::helpers::wait_for_subscriber(&app.state, 0).await;

    app.create_api_key_connection(&member, "Acme key", "sk-a").await;
    let data = next_json(&mut socket).await;
    assert_eq!(
        data,
        json!({ "type": "data", "id": "l", "payload": { "data": { "connectionEvents": { "kind": "CREATED" } } } })
    );
    send(&mut socket, json!({ "id": "l", "type": "stop" })).await;
    loop {
        // Events already on their way may come first; `complete` ends the operation.
        let message = next_json(&mut socket).await;
        if message["type"] == "complete" {
            assert_eq!(message, json!({ "type": "complete", "id": "l" }));
            break;
        }
        assert_eq!(message["type"], "data", "{message}");
    }
}

/// A raw TCP client with a small receive window, upgraded to a `graphql-transport-ws` socket by
/// hand, so that the test decides when (and whether) anything the server sends is read.
async fn open_raw(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let handshake = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A masked client ping frame with a payload of 125 bytes, the most a control frame may carry.
fn raw_ping() -> Vec<u8> {
    let mask = [0x5a, 0xa5, 0x3c, 0xc3];
    let mut frame = vec![0x89, 0x80 | 125];
    frame.extend_from_slice(&mask);
    frame.extend((0..125).map(|i| b'p' ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_and_the_others_go_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS", "1")]).await.unwrap();
    let mut reader = open(&app).await;
    acknowledged(&mut reader).await;

    // Every ping is answered with a pong the client never reads: its window fills, then the
    // server's send buffer, and the server stops reading its pings too.
    let mut stalled = open_raw(&app).await;
    let pings = raw_ping().repeat(512);
    let mut sent = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(1), stalled.write_all(&pings)).await {
            Ok(written) => written.unwrap(),
            Err(_) => break,
        }
        sent += pings.len();
        assert!(sent < 64 * 1024 * 1024, "the server kept reading a client that reads nothing");
    }

    // Past the stall timeout (and the kernel's zero-window probes that measure it), the server
    // has dropped the connection.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // A client that reads stays, however long it has been idle past the stall timeout. Asked
    // now, before the drain below, so that its own silence stays well inside the heartbeat's
    // 10 s however slow the machine.
    reader.send(Message::Ping("still there".into())).await.unwrap();
    match next(&mut reader).await {
        Some(Message::Pong(payload)) => assert_eq!(&payload[..], b"still there"),
        other => panic!("expected a pong frame, got {other:?}"),
    }

    // Once the stalled client reads what it had been sent and reopens its window, the server's
    // end, gone, answers with a reset.
    let mut buffer = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match stalled.read(&mut buffer).await {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(err) => return Err(err.kind()),
            }
        }
    })
    .await;
    assert_eq!(
        drained,
        Ok(Err(std::io::ErrorKind::ConnectionReset)),
        "the stalled connection should have been cut by the server"
    );
}

/// A socket of `token` past `connection_init`, or the message it was refused with.
async fn initialised(app: &TestApp, token: &str) -> Result<Subscriber, Value> {
    Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, token).await
}

/// Opens a socket of `token` until one is accepted, as a client retrying would.
async fn initialised_once_freed(app: &TestApp, token: &str) -> Subscriber {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match initialised(app, token).await {
            Ok(socket) => return socket,
            Err(refusal) if tokio::time::Instant::now() < deadline => {
                assert_eq!(refusal["type"], "closed", "{refusal}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(refusal) => panic!("no socket came free: {refusal}"),
        }
    }
}

#[tokio::test]
async fn one_caller_holds_a_bounded_number_of_sockets_and_the_others_still_get_in() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_MAX_SOCKETS_PER_CALLER", "2")]).await.unwrap();
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let bob = app.member("Acme", "bob@acme.test", TeamRole::Member).await;

    let first = initialised(&app, &ana.token).await.expect("ana's first socket");
    let mut second = initialised(&app, &ana.token).await.expect("ana's second socket");
    let refusal = initialised(&app, &ana.token).await.err().expect("ana's third socket is refused");
    assert_eq!(refusal["type"], "closed", "{refusal}");
    let reason = refusal["reason"].as_str().unwrap();
    assert!(reason.starts_with("RATE_LIMITED"), "{reason}");
    assert!(reason.contains("PLUGBOARD_MAX_SOCKETS_PER_CALLER"), "the reason says which limit: {reason}");
    assert!(reason.ends_with("close one or share one"), "the whole reason arrives: {reason}");
    assert!(!reason.contains(&ana.token), "no token in a close reason");

    // Another member's sockets are counted apart, and ana's open ones go on.
    let _bob = initialised(&app, &bob.token).await.expect("bob is not held to ana's count");
    let query = "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }";
    let before = app.state.events.subscribers();
    second.subscribe("s", query, json!({ "t": ana.team_id })).await;
    crate::helpers::wait_for_subscriber(&app.state, before).await;
    app.create_api_key_connection(&ana, "Acme key", "sk-a").await;
    let heard = second.next_data(WAIT).await.expect("a socket under the limit hears its team");
    assert_eq!(heard["data"]["connectionEvents"]["kind"], "CREATED", "{heard}");

    // A closed socket gives its place back.
    first.close().await;
    initialised_once_freed(&app, &ana.token).await;
}

#[tokio::test]
async fn sockets_without_a_token_are_counted_by_the_address_they_come_from() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_MAX_SOCKETS_PER_CALLER", "2")]).await.unwrap();
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let mut anonymous = Vec::new();
    for _ in 0..2 {
        let mut socket = open(&app).await;
        acknowledged(&mut socket).await;
        anonymous.push(socket);
    }
    let mut third = open(&app).await;
    send(&mut third, json!({ "type": "connection_init" })).await;
    match next(&mut third).await {
        Some(Message::Close(Some(frame))) => assert!(frame.reason.starts_with("RATE_LIMITED"), "{frame:?}"),
        other => panic!("expected the third anonymous socket to be refused, got {other:?}"),
    }
    // From the same address, a token is a caller of its own.
    initialised(&app, &ana.token).await.expect("a token is not held to the address's count");
}

#[tokio::test]
async fn past_the_instance_socket_limit_an_upgrade_is_answered_503_and_requests_go_on() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_MAX_SOCKETS", "2")]).await.unwrap();
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let first = initialised(&app, &ana.token).await.expect("the first socket");
    // Not even initialised: an open socket holds its place from the upgrade.
    let _second = open(&app).await;

    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let refused = match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response,
        other => panic!("expected the upgrade to be refused, got {:?}", other.map(|(_, response)| response)),
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = serde_json::from_slice(refused.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 5, "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("sockets"), "{body}");

    let metrics =
        app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"plugboard_sockets_refused_total{limit="instance"}"#), "{metrics}");

    // Plain requests are still served, and a closed socket makes room for the next.
    let answer = app.ok(&ana.token, "{ __typename }", json!({})).await;
    assert_eq!(answer["__typename"], "Query", "{answer}");
    first.close().await;
    initialised_once_freed(&app, &ana.token).await;
}

#[tokio::test]
async fn a_low_open_file_limit_is_raised_then_shared_and_the_database_still_answers() {
    // This process holds the client end of every socket.
    plugboard::http::raise_open_files_limit();
    // Started with 256 descriptors, which the service raises to the hard limit, 512: a quarter
    // kept for its own use; of the other 384, a quarter for the provider's end of proxied
    // calls, and of the 288 left, all but a tenth for sockets (at 256 it would be 130).
    let service = crate::process::ServiceProcess::start_with_open_files(256, 512, &[]);
    let url = format!("{}/graphql/ws", service.base_url.replace("http://", "ws://"));
    let mut sockets = Vec::new();
    let refused = loop {
        let mut request = url.as_str().into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let upgrade = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("every upgrade is answered, none left waiting for a descriptor");
        match upgrade {
            Ok((socket, _)) => sockets.push(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => break response,
            Err(other) => panic!("the upgrade failed after {} sockets: {other}", sockets.len()),
        }
        assert!(sockets.len() <= 260, "no more sockets than the limit leaves them");
    };
    assert_eq!(sockets.len(), 260);
    assert_eq!(refused.status(), 503);

    // The descriptors kept back still reach the database.
    let answer = service.graphql("{ teams { name } }").await;
    assert_eq!(answer["data"]["teams"][0]["name"], "Demo", "{answer}");
    drop(sockets);
    let (_, logs) = service.terminate();
    assert!(logs.contains("allows fewer GraphQL sockets or proxied calls"), "{logs}");
    assert!(
        logs.contains("WebSocket clients were refused for a socket limit"),
        "the refusal is logged: {logs}"
    );
}
