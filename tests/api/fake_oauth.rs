//! A provider for the OAuth tests, over real HTTP on the test's local provider server: an
//! authorize endpoint that redirects back with a code (or an error), a token endpoint that
//! rotates refresh tokens, revokes on reuse, can answer `invalid_grant` or 503 and counts its
//! requests, and a `/me` endpoint that accepts only live access tokens.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How long token answers take: slow enough that concurrent refreshes would overlap if they
/// were not single-flight.
const DELAY: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Normal,
    InvalidGrant,
    Unavailable,
}

#[derive(Debug)]
struct Provider {
    mode: TokenMode,
    deny_consent: bool,
    account: String,
    issued: u32,
    codes: HashMap<String, Option<String>>,
    live_access: HashSet<String>,
    live_refresh: HashSet<String>,
    /// Every token request's form, for assertions.
    token_forms: Vec<HashMap<String, String>>,
    expires_in: Option<u64>,
    /// How long a refresh answer takes (the other grants take the default delay).
    refresh_delay: Duration,
    /// Whether refreshes answer `invalid_grant` (other grants still work).
    refresh_fails: bool,
    /// Whether the code exchange issues a refresh token.
    issue_refresh_tokens: bool,
    /// Extra fields of every successful token answer.
    extra_fields: serde_json::Map<String, serde_json::Value>,
    /// How many of the next access tokens are issued already dead (refused by `/me`).
    dead_access_tokens: usize,
    /// How `/me` refuses a token that is not live: 401 without a body unless set.
    refusal: Option<Canned>,
    /// What every refresh is answered, when set, whatever the refresh token.
    refresh_answer: Option<Canned>,
}

/// An answer given as it is: status, content type and body.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Canned {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Canned {
        Canned { status, content_type, body: body.into() }
    }

    fn template(&self) -> ResponseTemplate {
        ResponseTemplate::new(self.status)
            .insert_header("content-type", self.content_type)
            .set_body_string(self.body.clone())
    }
}

#[derive(Clone)]
pub struct FakeOAuth {
    inner: Arc<Mutex<Provider>>,
    token_requests: Arc<AtomicUsize>,
}

impl FakeOAuth {
    pub async fn mount(server: &MockServer) -> FakeOAuth {
        let fake = FakeOAuth {
            inner: Arc::new(Mutex::new(Provider {
                mode: TokenMode::Normal,
                deny_consent: false,
                account: "owner@provider.test".into(),
                issued: 0,
                codes: HashMap::new(),
                live_access: HashSet::new(),
                live_refresh: HashSet::new(),
                token_forms: Vec::new(),
                expires_in: Some(3600),
                refresh_delay: DELAY,
                refresh_fails: false,
                issue_refresh_tokens: true,
                extra_fields: serde_json::Map::new(),
                dead_access_tokens: 0,
                refusal: None,
                refresh_answer: None,
            })),
            token_requests: Arc::new(AtomicUsize::new(0)),
        };
        Mock::given(method("GET"))
            .and(path("/oauth/authorize"))
            .respond_with(Authorize(fake.clone()))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(Token(fake.clone()))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/oauth-api/me"))
            .respond_with(Me(fake.clone()))
            .mount(server)
            .await;
        fake
    }

    pub fn set_mode(&self, mode: TokenMode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn deny_consent(&self, deny: bool) {
        self.inner.lock().unwrap().deny_consent = deny;
    }

    pub fn set_account(&self, account: &str) {
        self.inner.lock().unwrap().account = account.to_owned();
    }

    pub fn set_expires_in(&self, seconds: Option<u64>) {
        self.inner.lock().unwrap().expires_in = seconds;
    }

    /// Refreshes take `delay` to answer.
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().refresh_delay = delay;
    }

    /// Refreshes answer `invalid_grant` (after their delay); codes are still exchanged.
    pub fn fail_refreshes(&self, fail: bool) {
        self.inner.lock().unwrap().refresh_fails = fail;
    }

    /// Whether the code exchange issues refresh tokens (GitHub OAuth apps and Notion do not).
    pub fn issue_refresh_tokens(&self, issue: bool) {
        self.inner.lock().unwrap().issue_refresh_tokens = issue;
    }

    /// Adds `fields` to every successful token answer.
    pub fn set_extra_fields(&self, fields: serde_json::Value) {
        self.inner.lock().unwrap().extra_fields = fields.as_object().cloned().unwrap_or_default();
    }

    /// The next `n` access tokens are refused by `/me` as soon as they are issued.
    pub fn issue_dead_access_tokens(&self, n: usize) {
        self.inner.lock().unwrap().dead_access_tokens = n;
    }

    /// `/me` refuses tokens that are not live with `answer` (Salesforce's userinfo: 403
    /// `Bad_OAuth_Token`).
    pub fn refuse_tokens_with(&self, answer: Canned) {
        self.inner.lock().unwrap().refusal = Some(answer);
    }

    /// Every access token issued so far stops working, refresh tokens still do: a session
    /// that timed out without the expiry having been stated.
    pub fn end_sessions(&self) {
        self.inner.lock().unwrap().live_access.clear();
    }

    /// Refreshes are answered `answer` from now on (`None`: as usual again).
    pub fn answer_refreshes_with(&self, answer: Option<Canned>) {
        self.inner.lock().unwrap().refresh_answer = answer;
    }

    /// Whether `token` is a live access token.
    pub fn is_live_access(&self, token: &str) -> bool {
        self.inner.lock().unwrap().live_access.contains(token)
    }

    pub fn token_requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.inner.lock().unwrap().token_forms.clone()
    }

    /// Revokes every token, as a provider does when a grant is withdrawn.
    pub fn revoke_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.live_access.clear();
        inner.live_refresh.clear();
    }

    pub fn is_live_refresh(&self, token: &str) -> bool {
        self.inner.lock().unwrap().live_refresh.contains(token)
    }
}

fn query(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

struct Authorize(FakeOAuth);

impl Respond for Authorize {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params = query(request);
        let (Some(redirect), Some(state)) = (params.get("redirect_uri"), params.get("state")) else {
            return ResponseTemplate::new(400);
        };
        let mut inner = self.0.inner.lock().unwrap();
        let mut location = url::Url::parse(redirect).unwrap();
        if inner.deny_consent {
            location.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", state);
        } else {
            inner.issued += 1;
            let code = format!("code-{}", inner.issued);
            inner.codes.insert(code.clone(), params.get("code_challenge").cloned());
            location.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
        }
        ResponseTemplate::new(302).insert_header("location", location.as_str())
    }
}

struct Token(FakeOAuth);

impl Respond for Token {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.token_requests.fetch_add(1, Ordering::SeqCst);
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut inner = self.0.inner.lock().unwrap();
        inner.token_forms.push(form.clone());
        let refreshing = form.get("grant_type").map(String::as_str) == Some("refresh_token");
        let delay = if refreshing { inner.refresh_delay } else { DELAY };
        if let Some(answer) = inner.refresh_answer.as_ref().filter(|_| refreshing) {
            return answer.template().set_delay(delay);
        }
        if refreshing && inner.refresh_fails {
            return ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "invalid_grant" }))
                .set_delay(delay);
        }
        match inner.mode {
            TokenMode::Unavailable => return ResponseTemplate::new(503).set_delay(delay),
            TokenMode::InvalidGrant => {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({ "error": "invalid_grant" }))
                    .set_delay(delay);
            }
            TokenMode::Normal => {}
        }
        let valid = match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                form.get("code").is_some_and(|code| inner.codes.remove(code).is_some())
            }
            Some("refresh_token") => {
                // Rotation: a refresh token works once; reuse revokes the whole grant.
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                if inner.live_refresh.remove(&presented) {
                    true
                } else {
                    inner.live_access.clear();
                    inner.live_refresh.clear();
                    false
                }
            }
            Some("client_credentials") => form.get("client_secret").is_some_and(|s| s == "machine-secret"),
            _ => false,
        };
        if !valid {
            return ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "invalid_grant" }))
                .set_delay(delay);
        }
        inner.issued += 1;
        let access = format!("access-token-secret-{}", inner.issued);
        let refresh = format!("refresh-token-secret-{}", inner.issued);
        if inner.dead_access_tokens > 0 {
            inner.dead_access_tokens -= 1;
        } else {
            inner.live_access.insert(access.clone());
        }
        let mut body =
            json!({ "access_token": access, "token_type": "Bearer", "scope": "profile records.read" });
        let grant = form.get("grant_type").map(String::as_str);
        if grant == Some("refresh_token")
            || (grant == Some("authorization_code") && inner.issue_refresh_tokens)
        {
            inner.live_refresh.insert(refresh.clone());
            body["refresh_token"] = json!(refresh);
        }
        for (key, value) in &inner.extra_fields {
            body[key] = value.clone();
        }
        if let Some(expires_in) = inner.expires_in {
            body["expires_in"] = json!(expires_in);
        }
        ResponseTemplate::new(200).set_body_json(body).set_delay(delay)
    }
}

struct Me(FakeOAuth);

impl Respond for Me {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let inner = self.0.inner.lock().unwrap();
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if inner.live_access.contains(token) {
            ResponseTemplate::new(200).set_body_json(json!({ "email": inner.account }))
        } else {
            inner.refusal.as_ref().map_or_else(|| ResponseTemplate::new(401), Canned::template)
        }
    }
}
