//! Settings, read once from the environment and validated before anything starts.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `DATABASE_URL` | `sqlite://{data dir}/plugboard.db?mode=rwc` | SQLite file or `postgres://...` |
//! | `PLUGBOARD_DATA_DIR` | `./data` | where the default database and dev key file live |
//! | `PLUGBOARD_LISTEN` | `127.0.0.1:8080` | address the HTTP server binds |
//! | `PLUGBOARD_PUBLIC_URL` | `http://{listen}` | base URL users reach; OAuth redirect is `{this}/oauth/callback` |
//! | `PLUGBOARD_MASTER_KEYS` | a generated `{data dir}/master.key` | `kid:base64key,...`; the first seals, all open |
//! | `PLUGBOARD_EGRESS_ALLOW_PRIVATE` | `false` | let user-supplied URLs reach loopback and private networks |
//! | `PLUGBOARD_PROVIDERS_DIR` | none | extra `*.toml` app files; one named like a built-in app replaces it |
//! | `PLUGBOARD_HTTP_CONNECT_TIMEOUT_SECS` | `5` | connecting to a provider |
//! | `PLUGBOARD_HTTP_TIMEOUT_SECS` | `15` | a whole request to a provider |
//! | `PLUGBOARD_VERIFICATION_HISTORY` | `20` | checks kept per connection |
//! | `PLUGBOARD_CHECK_CRON` | `0 * * * * *` | the scheduler's tick (with seconds: every minute) |
//! | `PLUGBOARD_CHECK_INTERVAL_SECS` | `86400` | between two checks of a healthy connection |
//! | `PLUGBOARD_CHECK_CONCURRENCY` | `32` | checks running at once per instance |
//! | `PLUGBOARD_CHECK_BATCH` | `500` | connections claimed at a time |
//! | `PLUGBOARD_CHECK_LEASE_SECS` | `300` | how long a batch's lease holds before another instance may take it |
//! | `PLUGBOARD_APP_RATE_LIMIT` | `20` | scheduled checks per second per app and instance |
//! | `PLUGBOARD_APP_<KEY>_CLIENT_ID`, `..._CLIENT_SECRET` | none | the operator's OAuth client for an app (key upper-cased, `-` as `_`) |
//! | `PLUGBOARD_TOKEN_REFRESH_SKEW_SECS` | `300` | refresh an access token this long before it expires |
//! | `PLUGBOARD_ASSUMED_TOKEN_LIFETIME_SECS` | `3600` | accepted for compatibility and ignored: a token the provider gave no expiry does not expire |
//! | `PLUGBOARD_TEAM_PROVIDER_CONCURRENCY` | `8` | calls to providers (token endpoints, checks) one team may have in flight per instance |
//! | `PLUGBOARD_LOG_FORMAT` | `text` | `text` or `json` |
//! | `PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS` | `30` | a client connection that accepts nothing the service sends (its receive window stays full, or the data goes unacknowledged) for this long is cut |
//! | `PLUGBOARD_MAX_SOCKETS` | `10000` | GraphQL WebSockets open at once on this instance (fewer when the open-file limit is lower: see `http::open_files`) |
//! | `PLUGBOARD_MAX_SOCKETS_PER_CALLER` | `100` | of those, open under one token (one user for an identity provider's JWT; one address for sockets without a token) |
//! | `PLUGBOARD_MAX_BODY_BYTES` | `262144` | largest GraphQL request body accepted |
//! | `PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS` | `30` | longest a GraphQL request body may take to arrive (answered `408`) |
//! | `PLUGBOARD_MAX_QUERY_DEPTH` | `12` | deepest GraphQL selection accepted |
//! | `PLUGBOARD_MAX_QUERY_COMPLEXITY` | `5000` | complexity budget of one request (a batch shares it); a list field weighs its page size |
//! | `PLUGBOARD_MAX_QUERY_NESTING` | `32` | deepest nesting of brackets in a document, and of lists and objects in its variables |
//! | `PLUGBOARD_MAX_QUERY_TOKENS` | `10000` | most tokens in one GraphQL document |
//! | `PLUGBOARD_MAX_BATCH` | `10` | most operations in one JSON batch |
//! | `PLUGBOARD_PROVIDER_CALLS_PER_REQUEST` | `5` | provider-reaching mutations (verify, reauthorize, create, edit) in one request |
//! | `PLUGBOARD_PROVIDER_CALLS_PER_MINUTE` | `60` | the same, per token and minute (a burst of this many after a quiet minute) |
//! | `PLUGBOARD_METRICS_TOKEN` | none | when set, `/metrics` asks for `Authorization: Bearer <this>` |
//! | `PLUGBOARD_CORS_ORIGINS` | none | comma-separated exact origins (`https://app.example.com`) allowed to call from a browser; also where the OAuth callback page may post its result |
//! | `PLUGBOARD_OIDC_ISSUER` | none | an OpenID Connect issuer whose JWTs are accepted as bearer tokens |
//! | `PLUGBOARD_OIDC_AUDIENCE` | none | the `aud` those JWTs must carry (required with the issuer) |
//! | `PLUGBOARD_OIDC_TEAMS_CLAIM` | none | a claim listing team names; when set, memberships follow it |
//! | `PLUGBOARD_PROXY_MAX_REQUEST_BYTES` | `52428800` | largest request body a runner may send through `/proxy` |
//! | `PLUGBOARD_PROXY_MAX_RESPONSE_BYTES` | `104857600` | largest answer passed back through `/proxy` |
//! | `PLUGBOARD_PROXY_TIMEOUT_SECS` | `120` | a whole proxied call, body included |
//! | `PLUGBOARD_PROXY_MAX_IN_FLIGHT` | `4096` | proxied calls passed on at once (fewer under a low open-file limit); one more waits up to `PLUGBOARD_PROXY_QUEUE_MS`, then `503` |
//! | `PLUGBOARD_PROXY_QUEUE_MS` | `1000` | longest a proxied call waits for an app's rate limit before `429` |
//! | `PLUGBOARD_API_CALL_RETENTION_DAYS` | `30` | how long proxied calls stay in `Connection.apiCalls` |
//! | `PLUGBOARD_WEBHOOK_RETENTION_DAYS` | `30` | how long finished deliveries stay in `Webhook.deliveries` |
//! | `RUST_LOG` | `info` | log filter |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A setting that cannot be used, named so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// The `PLUGBOARD_APP_*` variables. Client secrets among them, so `Debug` prints names only.
#[derive(Clone, Default)]
pub struct AppVariables(std::collections::BTreeMap<String, secrecy::SecretString>);

impl AppVariables {
    pub const PREFIX: &'static str = "PLUGBOARD_APP_";

    pub fn get(&self, name: &str) -> Option<String> {
        use secrecy::ExposeSecret;
        self.0.get(name).map(|value| value.expose_secret().to_owned())
    }

    /// The variables set, by name (never their values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for AppVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the master keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The value of `PLUGBOARD_MASTER_KEYS`; parsed by `crypto` at start.
    Environment(secrecy::SecretString),
    /// A development key file, generated when missing.
    DevKeyFile(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub public_url: url::Url,
    /// Whether `public_url` was derived from the listen address (then it follows the bound port).
    pub public_url_derived: bool,
    pub master_keys: KeySource,
    pub egress_allow_private: bool,
    pub providers_dir: Option<PathBuf>,
    pub http_connect_timeout: Duration,
    pub http_timeout: Duration,
    pub verification_history: u64,
    /// `PLUGBOARD_WEBHOOK_RETENTION_DAYS`: how long a finished webhook delivery (delivered, or
    /// given up) stays in `Webhook.deliveries`.
    pub webhook_retention: Duration,
    pub check_cron: String,
    pub check_interval: Duration,
    pub check_concurrency: usize,
    pub check_batch: u64,
    pub check_lease: Duration,
    pub app_rate_limit: u32,
    /// `PLUGBOARD_APP_*` variables: the operator's OAuth clients, read once the catalog is known.
    pub app_variables: AppVariables,
    pub token_refresh_skew: Duration,
    /// Accepted for compatibility and ignored: a token without an expiry does not expire.
    pub assumed_token_lifetime: Duration,
    /// Provider calls one team may have in flight at once on this instance.
    pub team_provider_concurrency: usize,
    pub log_format: LogFormat,
    /// `PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS`: how long a client connection may take nothing the
    /// service sends before the kernel cuts it (`TCP_USER_TIMEOUT`). A subscriber that stops
    /// reading would otherwise hold its socket and the kernel's send buffer for good: once the
    /// buffer is full the socket's stream is no longer polled, so its heartbeat cannot notice.
    pub client_stall_timeout: Duration,
    /// `PLUGBOARD_MAX_SOCKETS`: GraphQL sockets open at once (`http::socket_slots`).
    pub max_sockets: usize,
    /// `PLUGBOARD_MAX_SOCKETS_PER_CALLER`: of those, held by one token, user or address.
    pub max_sockets_per_caller: usize,
    pub max_body_bytes: usize,
    /// `PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS`: how long a GraphQL request's body may take to
    /// arrive. actix bounds the wait for a request's head, not for its body: without this, a
    /// client trickling a byte now and then holds its connection for good.
    pub request_body_timeout: Duration,
    pub max_query_depth: usize,
    pub max_query_complexity: usize,
    pub max_query_nesting: usize,
    pub max_query_tokens: usize,
    pub max_batch: usize,
    pub provider_calls_per_request: usize,
    pub provider_calls_per_minute: u32,
    /// Protects `/metrics` when set; a secret, so it never prints.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Create the `Demo` team, a user and a token when the database is empty.
    pub seed_demo: bool,
    /// Browser origins allowed to call the API (`PLUGBOARD_CORS_ORIGINS`).
    pub cors_origins: CorsOrigins,
    /// The identity provider whose JWTs are trusted, if any (`PLUGBOARD_OIDC_*`).
    pub oidc: Option<OidcSettings>,
    /// The `/proxy` route's limits.
    pub proxy: ProxySettings,
}

/// Limits of the authenticated proxy (`/proxy/{path}`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `PLUGBOARD_PROXY_MAX_REQUEST_BYTES`: largest request body forwarded.
    pub max_request_bytes: u64,
    /// `PLUGBOARD_PROXY_MAX_RESPONSE_BYTES`: largest answer passed back.
    pub max_response_bytes: u64,
    /// `PLUGBOARD_PROXY_TIMEOUT_SECS`: a whole call, from connecting to the answer's last byte.
    pub timeout: Duration,
    /// `PLUGBOARD_PROXY_QUEUE_MS`: longest a call waits for a rate limit before it is refused.
    pub queue: Duration,
    /// `PLUGBOARD_API_CALL_RETENTION_DAYS`: how long call records are kept.
    pub retention: Duration,
    /// `PLUGBOARD_PROXY_MAX_IN_FLIGHT`: calls passed on at once; lowered to what the open-file
    /// limit allows (`http::open_files`).
    pub max_in_flight: usize,
}

impl ProxySettings {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let days: u64 =
            positive("PLUGBOARD_API_CALL_RETENTION_DAYS", get("PLUGBOARD_API_CALL_RETENTION_DAYS"), "30")?;
        let queue_ms: u64 = parse("PLUGBOARD_PROXY_QUEUE_MS", get("PLUGBOARD_PROXY_QUEUE_MS"), "1000")?;
        Ok(ProxySettings {
            max_request_bytes: positive(
                "PLUGBOARD_PROXY_MAX_REQUEST_BYTES",
                get("PLUGBOARD_PROXY_MAX_REQUEST_BYTES"),
                "52428800",
            )?,
            max_response_bytes: positive(
                "PLUGBOARD_PROXY_MAX_RESPONSE_BYTES",
                get("PLUGBOARD_PROXY_MAX_RESPONSE_BYTES"),
                "104857600",
            )?,
            timeout: seconds("PLUGBOARD_PROXY_TIMEOUT_SECS", get("PLUGBOARD_PROXY_TIMEOUT_SECS"), "120")?,
            queue: Duration::from_millis(queue_ms),
            retention: Duration::from_secs(days.saturating_mul(86_400)),
            max_in_flight: positive(
                "PLUGBOARD_PROXY_MAX_IN_FLIGHT",
                get("PLUGBOARD_PROXY_MAX_IN_FLIGHT"),
                "4096",
            )?,
        })
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `vars`, so tests can supply their own environment.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let mut config = Self::from_lookup(|name| vars.get(name).cloned())?;
        config.app_variables = AppVariables(
            vars.iter()
                .filter(|(name, _)| name.starts_with(AppVariables::PREFIX))
                .map(|(name, value)| (name.clone(), secrecy::SecretString::from(value.clone())))
                .collect(),
        );
        Ok(config)
    }

    /// Reads settings through `lookup` (without the per-app variables, which need a listing).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("PLUGBOARD_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = match get("DATABASE_URL") {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://") =>
            {
                url
            }
            Some(_) => {
                return Err(ConfigError {
                    variable: "DATABASE_URL",
                    problem: "must start with sqlite: or postgres://".into(),
                });
            }
            None => format!("sqlite://{}/plugboard.db?mode=rwc", data_dir.display()),
        };
        let listen: SocketAddr = parse("PLUGBOARD_LISTEN", get("PLUGBOARD_LISTEN"), "127.0.0.1:8080")?;
        let public_url = match get("PLUGBOARD_PUBLIC_URL") {
            // Port 0 is for listening (any free port), never for being reached.
            Some(raw) if url::Url::parse(&raw).is_ok_and(|url| url.port() == Some(0)) => {
                return Err(ConfigError {
                    variable: "PLUGBOARD_PUBLIC_URL",
                    problem: "names port 0, where nothing can be reached".into(),
                });
            }
            Some(raw) => parse_public_url(&raw)?,
            None => parse_public_url(&format!("http://{listen}"))?,
        };
        let master_keys = match lookup("PLUGBOARD_MASTER_KEYS") {
            // Set but blank is a deployment whose secret did not render: falling back to a
            // generated key would seal new secrets with it and open none of the old ones.
            Some(value) if value.trim().is_empty() => {
                return Err(ConfigError {
                    variable: "PLUGBOARD_MASTER_KEYS",
                    problem:
                        "is set but empty: set it to `kid:base64key,...`, or unset it to use a development \
                              key file under PLUGBOARD_DATA_DIR"
                            .into(),
                });
            }
            Some(value) => KeySource::Environment(value.into()),
            None => KeySource::DevKeyFile(data_dir.join("master.key")),
        };
        let egress_allow_private =
            parse_bool("PLUGBOARD_EGRESS_ALLOW_PRIVATE", get("PLUGBOARD_EGRESS_ALLOW_PRIVATE"))?;
        let log_format = match get("PLUGBOARD_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PLUGBOARD_LOG_FORMAT",
                    problem: format!("{other:?} is not `text` or `json`"),
                });
            }
        };
        Ok(Config {
            database_url,
            data_dir,
            listen,
            public_url_derived: get("PLUGBOARD_PUBLIC_URL").is_none(),
            public_url,
            master_keys,
            egress_allow_private,
            providers_dir: get("PLUGBOARD_PROVIDERS_DIR").map(PathBuf::from),
            http_connect_timeout: seconds(
                "PLUGBOARD_HTTP_CONNECT_TIMEOUT_SECS",
                get("PLUGBOARD_HTTP_CONNECT_TIMEOUT_SECS"),
                "5",
            )?,
            http_timeout: seconds("PLUGBOARD_HTTP_TIMEOUT_SECS", get("PLUGBOARD_HTTP_TIMEOUT_SECS"), "15")?,
            verification_history: parse(
                "PLUGBOARD_VERIFICATION_HISTORY",
                get("PLUGBOARD_VERIFICATION_HISTORY"),
                "20",
            )?,
            webhook_retention: Duration::from_secs(
                positive::<u64>(
                    "PLUGBOARD_WEBHOOK_RETENTION_DAYS",
                    get("PLUGBOARD_WEBHOOK_RETENTION_DAYS"),
                    "30",
                )?
                .saturating_mul(86_400),
            ),
            check_cron: cron("PLUGBOARD_CHECK_CRON", get("PLUGBOARD_CHECK_CRON"))?,
            check_interval: seconds(
                "PLUGBOARD_CHECK_INTERVAL_SECS",
                get("PLUGBOARD_CHECK_INTERVAL_SECS"),
                "86400",
            )?,
            check_concurrency: positive(
                "PLUGBOARD_CHECK_CONCURRENCY",
                get("PLUGBOARD_CHECK_CONCURRENCY"),
                "32",
            )?,
            check_batch: positive("PLUGBOARD_CHECK_BATCH", get("PLUGBOARD_CHECK_BATCH"), "500")?,
            check_lease: seconds("PLUGBOARD_CHECK_LEASE_SECS", get("PLUGBOARD_CHECK_LEASE_SECS"), "300")?,
            app_rate_limit: positive("PLUGBOARD_APP_RATE_LIMIT", get("PLUGBOARD_APP_RATE_LIMIT"), "20")?,
            app_variables: AppVariables::default(),
            token_refresh_skew: seconds(
                "PLUGBOARD_TOKEN_REFRESH_SKEW_SECS",
                get("PLUGBOARD_TOKEN_REFRESH_SKEW_SECS"),
                "300",
            )?,
            assumed_token_lifetime: seconds(
                "PLUGBOARD_ASSUMED_TOKEN_LIFETIME_SECS",
                get("PLUGBOARD_ASSUMED_TOKEN_LIFETIME_SECS"),
                "3600",
            )?,
            team_provider_concurrency: positive(
                "PLUGBOARD_TEAM_PROVIDER_CONCURRENCY",
                get("PLUGBOARD_TEAM_PROVIDER_CONCURRENCY"),
                "8",
            )?,
            log_format,
            client_stall_timeout: seconds(
                "PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS",
                get("PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS"),
                "30",
            )?,
            max_sockets: positive("PLUGBOARD_MAX_SOCKETS", get("PLUGBOARD_MAX_SOCKETS"), "10000")?,
            max_sockets_per_caller: positive(
                "PLUGBOARD_MAX_SOCKETS_PER_CALLER",
                get("PLUGBOARD_MAX_SOCKETS_PER_CALLER"),
                "100",
            )?,
            max_body_bytes: positive("PLUGBOARD_MAX_BODY_BYTES", get("PLUGBOARD_MAX_BODY_BYTES"), "262144")?,
            request_body_timeout: seconds(
                "PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS",
                get("PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS"),
                "30",
            )?,
            max_query_depth: positive("PLUGBOARD_MAX_QUERY_DEPTH", get("PLUGBOARD_MAX_QUERY_DEPTH"), "12")?,
            max_query_complexity: positive(
                "PLUGBOARD_MAX_QUERY_COMPLEXITY",
                get("PLUGBOARD_MAX_QUERY_COMPLEXITY"),
                "5000",
            )?,
            max_query_nesting: positive(
                "PLUGBOARD_MAX_QUERY_NESTING",
                get("PLUGBOARD_MAX_QUERY_NESTING"),
                "32",
            )?,
            max_query_tokens: positive(
                "PLUGBOARD_MAX_QUERY_TOKENS",
                get("PLUGBOARD_MAX_QUERY_TOKENS"),
                "10000",
            )?,
            max_batch: at_most(MAX_BATCH, positive("PLUGBOARD_MAX_BATCH", get("PLUGBOARD_MAX_BATCH"), "10")?)
                .map_err(|problem| ConfigError { variable: "PLUGBOARD_MAX_BATCH", problem })?,
            provider_calls_per_request: positive(
                "PLUGBOARD_PROVIDER_CALLS_PER_REQUEST",
                get("PLUGBOARD_PROVIDER_CALLS_PER_REQUEST"),
                "5",
            )?,
            provider_calls_per_minute: positive(
                "PLUGBOARD_PROVIDER_CALLS_PER_MINUTE",
                get("PLUGBOARD_PROVIDER_CALLS_PER_MINUTE"),
                "60",
            )?,
            metrics_token: get("PLUGBOARD_METRICS_TOKEN").map(secrecy::SecretString::from),
            seed_demo: true,
            cors_origins: CorsOrigins::parse(get("PLUGBOARD_CORS_ORIGINS").as_deref().unwrap_or(""))
                .map_err(|problem| ConfigError { variable: "PLUGBOARD_CORS_ORIGINS", problem })?,
            oidc: OidcSettings::from_lookup(&get)?,
            proxy: ProxySettings::from_lookup(get)?,
        })
    }

    /// When the scheduler checks connections.
    pub fn schedule(&self) -> crate::domain::SchedulePolicy {
        crate::domain::SchedulePolicy { interval: self.check_interval, ..Default::default() }
    }

    /// The URL of the GraphQL endpoint (and GraphiQL, in a browser).
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.public_url.as_str().trim_end_matches('/'))
    }
}

/// Exact browser origins (`scheme://host[:port]`), as the `Origin` header spells them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    /// A comma-separated list; empty means none. `*`, `null`, paths and non-http schemes are
    /// refused: the list is what a bearer token may be used from, so it must be exact.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let url = url::Url::parse(item).map_err(|err| format!("{item:?} is not an origin: {err}"))?;
            let origin = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https") || origin != item.trim_end_matches('/') {
                return Err(format!(
                    "{item:?} is not an exact origin; write scheme://host[:port] without a path, e.g. https://app.example.com"
                ));
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(CorsOrigins(origins))
    }

    pub fn contains(&self, origin: &str) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The OpenID Connect issuer Plugboard trusts for bearer JWTs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Exactly as the tokens' `iss` spells it; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub audience: String,
    /// A claim holding the names of the teams the user belongs to, for platforms that manage
    /// membership centrally.
    pub teams_claim: Option<String>,
}

impl OidcSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some(issuer) = get("PLUGBOARD_OIDC_ISSUER") else {
            for variable in ["PLUGBOARD_OIDC_AUDIENCE", "PLUGBOARD_OIDC_TEAMS_CLAIM"] {
                if get(variable).is_some() {
                    return Err(ConfigError { variable, problem: "needs PLUGBOARD_OIDC_ISSUER".into() });
                }
            }
            return Ok(None);
        };
        let problem = |problem: String| ConfigError { variable: "PLUGBOARD_OIDC_ISSUER", problem };
        let url =
            url::Url::parse(&issuer).map_err(|err| problem(format!("{issuer:?} is not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || url.query().is_some() {
            return Err(problem(format!("{issuer:?} must be an http(s) URL with a host and no query")));
        }
        let audience = get("PLUGBOARD_OIDC_AUDIENCE").ok_or_else(|| ConfigError {
            variable: "PLUGBOARD_OIDC_AUDIENCE",
            problem: "must be set with PLUGBOARD_OIDC_ISSUER: the `aud` Plugboard's tokens carry".into(),
        })?;
        Ok(Some(OidcSettings { issuer, audience, teams_claim: get("PLUGBOARD_OIDC_TEAMS_CLAIM") }))
    }
}

fn parse<T: FromStr>(variable: &'static str, value: Option<String>, default: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = value.unwrap_or_else(|| default.to_owned());
    raw.parse().map_err(|err| ConfigError { variable, problem: format!("{raw:?} is not valid: {err}") })
}

/// The largest count any setting takes: far past what a machine serves, and well within what
/// semaphores, allocations and arithmetic on it can hold.
const MAX_COUNT: u32 = 1_000_000_000;
/// The longest duration any setting takes: ten years.
const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Operations in one batch: the schema keeps an execution budget per batch size.
const MAX_BATCH: usize = 1000;

/// A whole number, from one to `MAX_COUNT`.
fn positive<T>(variable: &'static str, value: Option<String>, default: &str) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + From<u8> + TryFrom<u32>,
    T::Err: std::fmt::Display,
{
    let number: T = parse(variable, value, default)?;
    if number < T::from(1) {
        return Err(ConfigError { variable, problem: "must be at least 1".into() });
    }
    if T::try_from(MAX_COUNT).is_ok_and(|max| number > max) {
        return Err(ConfigError { variable, problem: format!("must be at most {MAX_COUNT}") });
    }
    Ok(number)
}

fn at_most(max: usize, value: usize) -> Result<usize, String> {
    if value > max {
        return Err(format!("must be at most {max}"));
    }
    Ok(value)
}

/// A cron expression with a seconds field (six or seven fields), as tokio-cron-scheduler reads it.
fn cron(variable: &'static str, value: Option<String>) -> Result<String, ConfigError> {
    let expression = value.unwrap_or_else(|| "0 * * * * *".to_owned());
    let fields = expression.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(ConfigError {
            variable,
            problem: format!(
                "{expression:?} has {fields} fields; give six, seconds first (e.g. `0 * * * * *`)"
            ),
        });
    }
    tokio_cron_scheduler::Job::new_async(expression.as_str(), |_, _| Box::pin(async {})).map_err(|err| {
        ConfigError { variable, problem: format!("{expression:?} is not a cron expression: {err}") }
    })?;
    Ok(expression)
}

/// A whole number of seconds, from one to ten years.
fn seconds(variable: &'static str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let secs: u64 = parse(variable, value, default)?;
    if secs == 0 {
        return Err(ConfigError { variable, problem: "must be at least 1 second".into() });
    }
    if secs > MAX_SECONDS {
        return Err(ConfigError {
            variable,
            problem: format!("must be at most {MAX_SECONDS} seconds (ten years)"),
        });
    }
    Ok(Duration::from_secs(secs))
}

fn parse_bool(variable: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(ConfigError { variable, problem: format!("{other:?} is not `true` or `false`") }),
    }
}

fn parse_public_url(raw: &str) -> Result<url::Url, ConfigError> {
    let problem = |p: String| ConfigError { variable: "PLUGBOARD_PUBLIC_URL", problem: p };
    let url = url::Url::parse(raw).map_err(|err| problem(format!("{raw:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(problem(format!("{raw:?} must be an http(s) URL with a host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem(format!("{raw:?} must not have a query or fragment")));
    }
    // Never echoed: it would print the password it carries.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(problem(
            "must not carry a user name or password: it is printed at start and sent in every OAuth redirect URI"
                .into(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_use_sqlite_and_a_dev_key_file_under_data() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, "sqlite://./data/plugboard.db?mode=rwc");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.graphql_url(), "http://127.0.0.1:8080/graphql");
        assert!(matches!(config.master_keys, KeySource::DevKeyFile(ref p) if p.ends_with("master.key")));
        assert!(!config.egress_allow_private);
    }

    #[test]
    fn app_variables_are_kept_and_never_printed() {
        let config = Config::from_vars([
            ("PLUGBOARD_APP_SLACK_CLIENT_ID".to_owned(), "id-1".to_owned()),
            ("PLUGBOARD_APP_SLACK_CLIENT_SECRET".to_owned(), "very-secret".to_owned()),
        ])
        .unwrap();
        assert_eq!(
            config.app_variables.get("PLUGBOARD_APP_SLACK_CLIENT_SECRET").as_deref(),
            Some("very-secret")
        );
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("PLUGBOARD_LISTEN", "nowhere"),
            ("PLUGBOARD_PUBLIC_URL", "ftp://x"),
            ("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "maybe"),
            ("PLUGBOARD_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("PLUGBOARD_MAX_BODY_BYTES", "-1"),
            ("PLUGBOARD_HTTP_TIMEOUT_SECS", "0"),
            ("PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS", "0"),
            ("PLUGBOARD_CLIENT_STALL_TIMEOUT_SECS", "never"),
            ("PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS", "0"),
            ("PLUGBOARD_MAX_SOCKETS", "0"),
            ("PLUGBOARD_MAX_SOCKETS_PER_CALLER", "unlimited"),
            ("PLUGBOARD_VERIFICATION_HISTORY", "many"),
            ("PLUGBOARD_CHECK_CRON", "every minute"),
            ("PLUGBOARD_CHECK_CRON", "* * * * *"),
            ("PLUGBOARD_CHECK_CONCURRENCY", "0"),
            ("PLUGBOARD_CORS_ORIGINS", "*"),
            ("PLUGBOARD_CORS_ORIGINS", "https://app.example.com/path"),
            ("PLUGBOARD_CORS_ORIGINS", "null"),
            ("PLUGBOARD_OIDC_ISSUER", "not a url"),
            ("PLUGBOARD_OIDC_AUDIENCE", "plugboard"),
            ("PLUGBOARD_PROXY_MAX_REQUEST_BYTES", "0"),
            ("PLUGBOARD_PROXY_TIMEOUT_SECS", "soon"),
            ("PLUGBOARD_PROXY_MAX_IN_FLIGHT", "0"),
            ("PLUGBOARD_API_CALL_RETENTION_DAYS", "0"),
            ("PLUGBOARD_WEBHOOK_RETENTION_DAYS", "0"),
            ("PLUGBOARD_WEBHOOK_RETENTION_DAYS", "a month"),
            // Set but blank: a secret that did not render must not become a generated key.
            ("PLUGBOARD_MASTER_KEYS", "  "),
            // Zero would refuse every request; past the bounds, arithmetic and allocations on
            // them fail later, in background tasks.
            ("PLUGBOARD_MAX_QUERY_DEPTH", "0"),
            ("PLUGBOARD_MAX_QUERY_COMPLEXITY", "0"),
            ("PLUGBOARD_MAX_BODY_BYTES", "0"),
            ("PLUGBOARD_MAX_BATCH", "1000000000"),
            ("PLUGBOARD_TEAM_PROVIDER_CONCURRENCY", "18446744073709551615"),
            ("PLUGBOARD_CHECK_BATCH", "18446744073709551615"),
            ("PLUGBOARD_CHECK_INTERVAL_SECS", "18446744073709551615"),
            ("PLUGBOARD_HTTP_TIMEOUT_SECS", "315360001"),
            ("PLUGBOARD_PUBLIC_URL", "https://admin:pw@plugboard.example"),
            ("PLUGBOARD_PUBLIC_URL", "http://plugboard.example:0"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(err.to_string().starts_with(var), "{err}");
            assert!(!err.to_string().contains(":pw@"), "never echoes a password: {err}");
        }
    }

    #[test]
    fn cors_origins_are_exact_and_deduplicated() {
        let origins =
            CorsOrigins::parse(" https://app.example.com, http://localhost:5173,https://app.example.com ")
                .unwrap();
        assert_eq!(origins.as_slice(), ["https://app.example.com", "http://localhost:5173"]);
        assert!(origins.contains("http://localhost:5173"));
        assert!(!origins.contains("http://localhost:5174"));
        assert_eq!(CorsOrigins::parse("").unwrap(), CorsOrigins::default());
    }

    #[test]
    fn the_oidc_issuer_needs_an_audience() {
        let err = config(&[("PLUGBOARD_OIDC_ISSUER", "https://id.example.com")]).unwrap_err();
        assert_eq!(err.variable, "PLUGBOARD_OIDC_AUDIENCE");
        let config = config(&[
            ("PLUGBOARD_OIDC_ISSUER", "https://id.example.com"),
            ("PLUGBOARD_OIDC_AUDIENCE", "plugboard"),
        ])
        .unwrap();
        assert_eq!(config.oidc.unwrap().audience, "plugboard");
    }
}
