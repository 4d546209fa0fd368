//! SIGTERM: subscriptions are told, the scheduler stops, HTTP finishes, the process exits 0.

use std::time::Duration;

use serde_json::json;

use crate::process::ServiceProcess;
use crate::ws::{Protocol, Subscriber};

#[tokio::test]
async fn sigterm_completes_subscriptions_and_exits_cleanly() {
    let service = ServiceProcess::start(&[]);
    let teams = service.graphql("{ viewer { teams { id } } }").await;
    let team = teams["data"]["viewer"]["teams"][0]["id"].clone();
    let mut subscriber =
        Subscriber::connect(&service.base_url, "/graphql/ws", Protocol::TransportWs, &service.token)
            .await
            .unwrap();
    subscriber
        .subscribe(
            "s",
            "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }",
            json!({ "t": team }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = tokio::task::spawn_blocking(move || service.terminate());
    let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next_message())
        .await
        .expect("the subscriber hears about the shutdown")
        .expect("a message, not a dropped socket");
    assert_eq!(message["type"], "complete", "the subscription is completed: {message}");
    assert_eq!(message["id"], "s");
    drop(subscriber);

    let (status, logs) = stopping.await.unwrap();
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    for line in ["shutting down", "scheduler stopped", "stopped"] {
        assert!(logs.contains(line), "{line} missing from:\n{logs}");
    }
}
