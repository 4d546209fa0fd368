//! The real service as the tests build it: `Config::from_vars` with a fresh database (a SQLite
//! file in a temporary folder, or a new PostgreSQL database), a catalog whose apps point at the
//! local provider, and a team with an admin and a token.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use plugboard::bootstrap;
use plugboard::config::Config;
use plugboard::domain::{Email, TeamId, TeamName, TeamRole};
use plugboard::startup::{self, Application};
use plugboard::state::AppState;
use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;

use super::provider::Provider;

/// Master key `k1` (32 bytes of 0x07), what every bench seals with first.
pub const K1: &str = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
/// Master key `k2` (32 bytes of 0x09), the key rotation moves to.
pub const K2: &str = "k2:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// The operator's OAuth client for `bench-oauth`.
const OAUTH_CLIENT: [(&str, &str); 2] = [
    ("PLUGBOARD_APP_BENCH_OAUTH_CLIENT_ID", "bench-client"),
    ("PLUGBOARD_APP_BENCH_OAUTH_CLIENT_SECRET", "bench-client-secret"),
];

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// A server on which each run creates its own database, named by an admin URL.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    /// PostgreSQL when `PLUGBOARD_BENCH_DATABASE_URL` (or the tests' `PLUGBOARD_TEST_DATABASE_URL`)
    /// is set.
    pub fn postgres_from_env() -> Option<Backend> {
        ["PLUGBOARD_BENCH_DATABASE_URL", "PLUGBOARD_TEST_DATABASE_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(|admin_url| Backend::Postgres { admin_url })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// A running (or only prepared) service with one team.
pub struct Instance {
    pub state: AppState,
    pub team_id: TeamId,
    /// A user token of the team's admin.
    pub token: String,
    /// `http://127.0.0.1:<port>` when the HTTP server runs.
    pub address: Option<String>,
    env: HashMap<String, String>,
    postgres_database: Option<(String, String)>,
    _data_dir: tempfile::TempDir,
}

impl Instance {
    /// The whole service, HTTP included (`Application::build` on port 0).
    pub async fn serve(
        backend: &Backend,
        provider: &Provider,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start(backend, provider, extra, true).await
    }

    /// Only what a command needs (`startup::prepare`): for background work called directly.
    pub async fn prepare(
        backend: &Backend,
        provider: &Provider,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start(backend, provider, extra, false).await
    }

    async fn start(
        backend: &Backend,
        provider: &Provider,
        extra: &[(&str, &str)],
        serve: bool,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("a temporary directory")?;
        let providers_dir = data_dir.path().join("providers");
        write_catalog(&providers_dir, &provider.url)?;
        let (database_url, postgres_database) = match backend {
            Backend::Sqlite => {
                (format!("sqlite://{}?mode=rwc", data_dir.path().join("plugboard.db").display()), None)
            }
            Backend::Postgres { admin_url } => {
                let (url, name) = fresh_postgres_database(admin_url).await?;
                (url, Some((admin_url.clone(), name)))
            }
        };
        let env: HashMap<String, String> = [
            ("DATABASE_URL", database_url.as_str()),
            ("PLUGBOARD_LISTEN", "127.0.0.1:0"),
            ("PLUGBOARD_DATA_DIR", &data_dir.path().display().to_string()),
            ("PLUGBOARD_MASTER_KEYS", K1),
            ("PLUGBOARD_PROVIDERS_DIR", &providers_dir.display().to_string()),
            ("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "true"),
        ]
        .into_iter()
        .chain(OAUTH_CLIENT)
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut config = Config::from_vars(env.clone()).context("the bench configuration is invalid")?;
        config.seed_demo = false;
        let (state, address) = if serve {
            let app = Application::build(config).await?;
            let address = format!("http://127.0.0.1:{}", app.port());
            let state = app.state().clone();
            tokio::spawn(app.run_until_stopped());
            (state, Some(address))
        } else {
            (startup::prepare(config).await?, None)
        };
        let team = TeamName::parse("Bench").map_err(anyhow::Error::msg)?;
        let email = Email::parse("bench@plugboard.local").map_err(anyhow::Error::msg)?;
        let member = bootstrap::team_member(&state.db, &team, &email, TeamRole::Admin).await?;
        Ok(Instance {
            state,
            team_id: member.team.id,
            token: member.token.token.expose_secret().to_owned(),
            address,
            env,
            postgres_database,
            _data_dir: data_dir,
        })
    }

    /// Another state on the same database with some settings changed (as after a restart).
    pub async fn reopen(&self, overrides: &[(&str, &str)]) -> anyhow::Result<AppState> {
        let mut env = self.env.clone();
        env.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut config = Config::from_vars(env).context("the bench configuration is invalid")?;
        config.seed_demo = false;
        startup::prepare(config).await
    }

    /// The database the instance uses, as its `DATABASE_URL` names it.
    pub fn database_url(&self) -> &str {
        self.env.get("DATABASE_URL").map_or("", String::as_str)
    }

    pub fn address(&self) -> anyhow::Result<&str> {
        self.address.as_deref().context("this instance serves no HTTP")
    }

    /// Drops the PostgreSQL database this instance created (its connections are cut).
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let Some((admin_url, name)) = &self.postgres_database else { return Ok(()) };
        let admin = sea_orm::Database::connect(admin_url).await?;
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
        admin.close().await.ok();
        Ok(())
    }
}

/// A database of its own on the server `admin_url` names; answers its URL and name.
async fn fresh_postgres_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let name = format!("plugboard_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(admin_url).await.with_context(|| {
        format!("could not reach PostgreSQL at {}", plugboard::store::redact_url(admin_url))
    })?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    admin.close().await.ok();
    let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL is not a URL")?;
    url.set_path(&name);
    Ok((url.to_string(), name))
}

/// The bench catalog: the real `openai` entry pointed at the local provider, and `bench-oauth`,
/// an OAuth app whose token endpoint is the local provider's.
fn write_catalog(dir: &Path, provider: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let openai = include_str!("../../providers/openai.toml")
        .replace("https://api.openai.com/v1", &format!("{provider}/v1"));
    anyhow::ensure!(openai.contains(provider), "the openai entry no longer names api.openai.com/v1");
    std::fs::write(dir.join("openai.toml"), openai)?;
    let oauth = format!(
        r#"
key = "bench-oauth"
name = "Bench OAuth"
description = "An OAuth 2.0 provider that exists only in the benchmarks."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "{provider}/oauth-api"
default_scopes = ["profile"]

[oauth]
authorize_url = "{provider}/oauth/authorize"
token_url = "{provider}/oauth/token"
client_auth = "basic"

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
path = "/me"
account_pointer = "/email"
"#
    );
    std::fs::write(dir.join("bench-oauth.toml"), oauth)?;
    Ok(())
}
