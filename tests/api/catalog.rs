use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

#[tokio::test]
async fn the_catalog_lists_every_required_app_and_searches_it() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let all = app.ok(&member.token, "{ apps { key authType } }", json!({})).await;
    let keys: Vec<&str> =
        all["apps"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    for required in [
        "dropbox",
        "slack",
        "google",
        "microsoft-365",
        "github",
        "gitlab",
        "bitbucket",
        "jira-cloud",
        "confluence",
        "notion",
        "airtable",
        "asana",
        "trello",
        "monday",
        "clickup",
        "linear",
        "hubspot",
        "salesforce",
        "pipedrive",
        "zendesk",
        "freshdesk",
        "intercom",
        "shopify",
        "stripe",
        "xero",
        "quickbooks",
        "mailchimp",
        "sendgrid",
        "twilio",
        "zoom",
        "box",
        "discord",
        "typeform",
        "calendly",
        "openai",
        "anthropic",
        "http-oauth2",
        "http-oauth2-client-credentials",
        "http-api-key",
        "http-basic",
    ] {
        assert!(keys.contains(&required), "{required} is missing from the catalog");
    }
    let real = keys.iter().filter(|k| !k.starts_with("http-") && **k != "test-crm").count();
    assert!(real >= 40, "{real} real apps");

    let search = |q: &'static str| {
        let app = &app;
        let token = member.token.clone();
        async move {
            let data =
                app.ok(&token, "query($q: String) { apps(search: $q) { key } }", json!({ "q": q })).await;
            data["apps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["key"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(search("jira").await.contains(&"jira-cloud".to_owned()), "by name");
    assert!(search("JIRA-CLOUD").await.contains(&"jira-cloud".to_owned()), "by key, any case");
    assert!(search("embeddings").await.contains(&"openai".to_owned()), "by description");
    assert!(search("no app is called this").await.is_empty());

    let form = app
        .ok(
            &member.token,
            r#"{ app(key: "jira-cloud") { authType fields { key secret required } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(form["app"]["authType"], "BASIC");
    let secret: Vec<&str> = form["app"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["secret"] == true)
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(secret, ["api_token"]);
}
