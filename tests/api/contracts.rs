//! Provider contracts: every real app's recorded answers (`providers/contracts/<key>.toml`,
//! written from the provider's documentation) replayed through the real check, with the app's
//! URLs pointed at a local server. Each answer must give the outcome and account label it
//! records. `PLUGBOARD_TEST_PROVIDERS_DIR` adds an operator's own app files (`<key>.toml` with
//! `contracts/<key>.toml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use plugboard::catalog::contract::{AnswerKind, Contract, RecordedAnswer};
use plugboard::catalog::{App, Catalog, FormMode};
use plugboard::outbound::{Outbound, OutboundSettings};
use plugboard::verify::{self, RequestValues};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCESS_TOKEN: &str = "contract-access-token";

/// The app files to replay: the built-in ones, and an operator's when asked for.
fn provider_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("providers")];
    if let Some(extra) = std::env::var_os("PLUGBOARD_TEST_PROVIDERS_DIR") {
        dirs.push(PathBuf::from(extra));
    }
    dirs
}

/// The scheme and host of a URL template replaced by `base`; the path stays.
fn pointed_at(template: &str, base: &str) -> String {
    let Some((_, rest)) = template.split_once("://") else { return template.to_owned() };
    let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{base}{}", &rest[path_start..])
}

/// The app file with every URL it sends to pointed at `base`.
fn redirected_app(file: &Path, base: &str) -> App {
    let text = std::fs::read_to_string(file).unwrap();
    let mut table: toml::Table = text.parse().unwrap();
    let point = |value: Option<&mut toml::Value>| {
        if let Some(toml::Value::String(url)) = value
            && url.contains("://")
        {
            *url = pointed_at(url, base);
        }
    };
    point(table.get_mut("api_base_url"));
    if let Some(toml::Value::Table(verify)) = table.get_mut("verify") {
        point(verify.get_mut("path"));
    }
    if let Some(toml::Value::Table(oauth)) = table.get_mut("oauth") {
        point(oauth.get_mut("authorize_url"));
        point(oauth.get_mut("token_url"));
        // The host fields no longer reach a host once it is fixed here.
        oauth.remove("host_fields");
    }
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let rewritten = toml::to_string(&table).unwrap();
    let catalog = Catalog::from_sources([(name, rewritten)]).unwrap_or_else(|error| panic!("{error}"));
    catalog.apps()[0].clone()
}

/// The connection's form: the contract's values, and a stand-in for each required secret.
fn form_input(app: &App, contract: &Contract) -> Value {
    let mut fields = Map::new();
    for (key, value) in &contract.form {
        fields.insert(key.clone(), Value::String(value.clone()));
    }
    for field in app.fields().iter().filter(|field| field.is_secret() && field.is_required()) {
        fields.entry(field.key()).or_insert_with(|| Value::String(format!("contract-{}", field.key())));
    }
    Value::Object(fields)
}

fn outbound() -> Outbound {
    Outbound::new(&OutboundSettings {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        allow_private: true,
    })
    .unwrap()
}

fn response(answer: &RecordedAnswer) -> ResponseTemplate {
    let mut template = ResponseTemplate::new(answer.status);
    for (name, value) in &answer.headers {
        template = template.insert_header(name.as_str(), value.as_str());
    }
    if !answer.headers.keys().any(|name| name.eq_ignore_ascii_case("content-type")) && !answer.body.is_empty()
    {
        template = template.insert_header("content-type", "application/json");
    }
    template.set_body_bytes(answer.body.clone().into_bytes())
}

/// Whether the request sent one of `secrets`: in a header (Basic decoded) or the query.
fn carries_credentials(request: &wiremock::Request, secrets: &[String]) -> bool {
    use base64::Engine;
    let mut sent = request.url.to_string();
    for value in request.headers.values().filter_map(|value| value.to_str().ok()) {
        sent.push_str(value);
        if let Some(basic) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(basic).unwrap_or_default();
            sent.push_str(&String::from_utf8_lossy(&decoded));
        }
    }
    let sent = sent.replace("%2D", "-").replace("%5F", "_");
    secrets.iter().any(|secret| sent.contains(secret.as_str()))
}

/// Replays one app's contract; answers what did not hold.
async fn replay(file: &Path, contract_file: &Path) -> Vec<String> {
    let key = file.file_stem().unwrap().to_str().unwrap().to_owned();
    let contract = Contract::parse(&std::fs::read_to_string(contract_file).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", contract_file.display()));
    let server = MockServer::start().await;
    let app = redirected_app(file, &server.uri());
    let form = app
        .check_form(&form_input(&app, &contract), FormMode::Create)
        .unwrap_or_else(|error| panic!("{key}: the contract's form is refused: {error}"));
    let token = SecretString::from(ACCESS_TOKEN);
    let access_token = app.oauth().is_some().then_some(&token);
    let outbound = outbound();
    // The credentials the request must carry, and the check must never show.
    let mut secrets: Vec<String> = form.secrets().values().map(|s| s.expose_secret().to_owned()).collect();
    if access_token.is_some() {
        secrets.push(ACCESS_TOKEN.to_owned());
    }
    let mut failures = Vec::new();
    for answer in &contract.answers {
        server.reset().await;
        Mock::given(wiremock::matchers::any()).respond_with(response(answer)).mount(&server).await;
        let values = RequestValues { app: &app, form: &form, access_token };
        let check = match verify::check(&outbound, &values).await {
            Ok(check) => check,
            Err(error) => {
                failures.push(format!("{key} / {}: no check was made: {error}", answer.name));
                continue;
            }
        };
        let expected = answer.expected_outcome().unwrap();
        let got = check.verification.outcome.as_str();
        let message = check.verification.message.clone().unwrap_or_default();
        if got != expected {
            failures.push(format!("{key} / {}: expected {expected}, got {got} ({message})", answer.name));
        }
        if answer.kind == AnswerKind::Success && check.account_label != answer.account {
            failures.push(format!(
                "{key} / {}: expected the account {:?}, got {:?}",
                answer.name, answer.account, check.account_label
            ));
        }
        for scope in &answer.scopes {
            if !message.contains(scope.as_str()) {
                failures
                    .push(format!("{key} / {}: the message does not name {scope}: {message}", answer.name));
            }
        }
        let requests = server.received_requests().await.unwrap_or_default();
        let method = app.verify().unwrap().method().as_str();
        if requests.len() != 1 || requests[0].method.as_str() != method {
            failures.push(format!("{key} / {}: expected one {method} request to the provider", answer.name));
        } else if !carries_credentials(&requests[0], &secrets) {
            failures.push(format!("{key} / {}: the request carried none of the credentials", answer.name));
        }
        let shown = format!("{message} {:?}", check.account_label);
        if let Some(secret) = secrets.iter().find(|secret| shown.contains(secret.as_str())) {
            failures.push(format!("{key} / {}: what the check shows holds {secret:?}: {shown}", answer.name));
        }
    }
    failures
}

#[tokio::test]
async fn every_apps_recorded_answers_give_their_outcome_and_account() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for dir in provider_dirs() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        for file in files {
            let contract = dir.join("contracts").join(file.file_name().unwrap());
            if contract.exists() {
                replayed += 1;
                failures.extend(replay(&file, &contract).await);
            }
        }
    }
    assert!(failures.is_empty(), "provider contracts do not hold:\n  {}", failures.join("\n  "));
    assert!(replayed >= 45, "only {replayed} apps have contracts");
}

#[tokio::test]
async fn a_wrong_recorded_outcome_fails_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let providers = Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
    std::fs::create_dir(dir.path().join("contracts")).unwrap();
    std::fs::copy(providers.join("slack.toml"), dir.path().join("slack.toml")).unwrap();
    // Slack's "ok": false with HTTP 200 recorded as a success: the check must disagree.
    std::fs::write(
        dir.path().join("contracts/slack.toml"),
        r#"
docs = ["https://docs.slack.dev/reference/methods/auth.test"]
[[answers]]
kind = "success"
name = "revoked token taken for a success"
status = 200
body = '{"ok": false, "error": "token_revoked"}'
account = "jane"
"#,
    )
    .unwrap();
    let failures = replay(&dir.path().join("slack.toml"), &dir.path().join("contracts/slack.toml")).await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("expected OK, got INVALID_CREDENTIALS"), "{failures:?}");
}
