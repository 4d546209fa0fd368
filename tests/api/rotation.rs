//! `plugboard rotate-keys` re-seals every sealed table (connections, webhook secrets, consents
//! in progress), reports rows it cannot open without stopping, and `--check` says whether an
//! old key may be removed.

use plugboard::crypto::{Binding, Sealer, parse_master_keys};
use plugboard::domain::TeamRole;
use plugboard::store::entities::{oauth_state, webhook};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::{NEW_KEY, plugboard};
use crate::helpers::{CREATE_CONNECTION, TEST_MASTER_KEYS, TestApp};
use crate::on_every_database;

on_every_database!(rotation_covers_webhooks_and_pending_consents_and_check_says_when_a_key_may_go);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn rotation_covers_webhooks_and_pending_consents_and_check_says_when_a_key_may_go(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Key", "sk-rotate").await;
    for i in 0..2 {
        app.ok(
            &member.token,
            "mutation($t: ID!, $url: String!) { createWebhook(teamId: $t, url: $url, secret: \"a-signing-secret-of-length\") { id } }",
            json!({ "t": member.team_id, "url": format!("{}/hooks/{i}", app.provider.uri()) }),
        )
        .await;
    }
    let pending = app
        .ok(
            &member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": member.team_id, "app": "test-oauth", "name": "Pending", "fields": { "client_id": "own", "client_secret": "own-secret" } } }),
        )
        .await;
    assert!(pending["createConnection"]["authorizationUrl"].is_string());
    let both = format!("{NEW_KEY},{TEST_MASTER_KEYS}");

    let check = plugboard(&app.database_url, &both, &["rotate-keys", "--check"]);
    assert!(!check.status.success(), "old rows remain: {}", stdout(&check));
    let listed = stdout(&check);
    assert!(listed.contains("webhooks: 2 row(s)") && listed.contains("oauth_states: 1 row(s)"), "{listed}");
    assert!(listed.contains("connections: 2 row(s)"), "{listed}");

    // One webhook's secret is damaged: it is reported by id, and everything else still moves.
    let hooks = webhook::Entity::find().all(&app.state.db).await.unwrap();
    let damaged = hooks[0].id;
    let mut broken = hooks[0].sealed_secret.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0xff;
    webhook::Entity::update_many()
        .col_expr(webhook::Column::SealedSecret, Expr::value(broken))
        .filter(webhook::Column::Id.eq(damaged))
        .exec(&app.state.db)
        .await
        .unwrap();
    let out = plugboard(&app.database_url, &both, &["rotate-keys", "--batch-size", "1"]);
    assert!(!out.status.success(), "a row left under the old key fails the run");
    assert!(stderr(&out).contains(&damaged.to_string()), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("connections: re-sealed 2"), "{report}");
    assert!(
        report.contains("webhooks: re-sealed 1, 0 changed meanwhile, 1 cannot be opened, 1 still"),
        "{report}"
    );
    assert!(report.contains("oauth_states: re-sealed 1"), "{report}");

    // The new key alone opens what was moved.
    let new_only = Sealer::new(parse_master_keys(NEW_KEY).unwrap()).unwrap();
    let good = webhook::Entity::find_by_id(hooks[1].id).one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(good.secret_key_id, "k2");
    let binding = Binding::new("webhook", good.team_id.as_uuid(), good.id);
    assert_eq!(
        new_only.open(&good.sealed_secret, &binding).unwrap().expose_secret().as_slice(),
        b"a-signing-secret-of-length"
    );
    let state = oauth_state::Entity::find().one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(state.payload_key_id, "k2");
    new_only
        .open(&state.sealed_payload, &Binding::new("oauth_state", state.team_id.as_uuid(), state.id))
        .unwrap();

    // Once the damaged endpoint is gone, the check answers that the old key may go.
    webhook::Entity::delete_by_id(damaged).exec(&app.state.db).await.unwrap();
    let check = plugboard(&app.database_url, &both, &["rotate-keys", "--check"]);
    assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
    assert!(stdout(&check).contains("may be removed"), "{}", stdout(&check));
    let again = plugboard(&app.database_url, &both, &["rotate-keys"]);
    assert!(again.status.success(), "{}", stderr(&again));
}
