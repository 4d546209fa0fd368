//! The app catalog as the connection form needs it.

use async_graphql::{ComplexObject, Context, SimpleObject};
use chrono::{DateTime, Utc};

use super::enums::{AppHealthStatus, AuthType};
use crate::{catalog, domain};

#[derive(SimpleObject)]
#[graphql(complex, name = "App")]
pub struct AppObject {
    key: String,
    name: String,
    description: String,
    docs_url: String,
    auth_type: AuthType,
    default_scopes: Vec<String>,
    fields: Vec<AppField>,
    modules: Vec<AppModule>,
    #[graphql(skip)]
    requires_consent: bool,
}

#[ComplexObject]
impl AppObject {
    /// Whether creating a connection sends a person to the provider to grant consent.
    async fn requires_consent(&self) -> bool {
        self.requires_consent
    }

    /// How the app's provider is doing: `DEGRADED` while most checks of many of its connections
    /// fail transiently (they are then checked by a few probes only), `HEALTHY` otherwise.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<AppHealth> {
        let state = crate::graphql::state(ctx)?;
        Ok(crate::scheduler::app_health(state, &self.key).await?.into())
    }
}

/// An app's health, shared by every team.
#[derive(SimpleObject)]
pub struct AppHealth {
    status: AppHealthStatus,
    /// When the status last changed; null for an app that never had an incident.
    since: Option<DateTime<Utc>>,
    /// The last transient failure seen while degraded (or before recovering).
    last_error: Option<String>,
}

impl From<domain::AppHealth> for AppHealth {
    fn from(health: domain::AppHealth) -> Self {
        AppHealth { status: health.status.into(), since: health.since, last_error: health.last_error }
    }
}

/// One input of the connection form. Secret fields are shown as password inputs and are never
/// sent back; they must be entered again on every edit.
#[derive(SimpleObject)]
pub struct AppField {
    key: String,
    label: String,
    help: Option<String>,
    secret: bool,
    required: bool,
    default: Option<String>,
    /// A regular expression the value must match.
    pattern: Option<String>,
    /// The only values allowed, when the field is a choice.
    choices: Vec<String>,
}

/// A flow module of the app and the scopes it needs.
#[derive(SimpleObject)]
pub struct AppModule {
    key: String,
    name: String,
    scopes: Vec<String>,
    /// The requests the module may make through the proxy; empty when it may make any under
    /// the app's API base.
    requests: Vec<ModuleRequest>,
}

/// A kind of request a module makes: a method and a path pattern under the app's API base
/// (`*` one segment, a final `**` any number).
#[derive(SimpleObject)]
pub struct ModuleRequest {
    method: String,
    path: String,
}

impl From<&catalog::App> for AppObject {
    fn from(app: &catalog::App) -> Self {
        AppObject {
            key: app.key().to_owned(),
            name: app.name().to_owned(),
            description: app.description().to_owned(),
            docs_url: app.docs_url().to_string(),
            auth_type: app.auth_type().into(),
            default_scopes: app.default_scopes().to_vec(),
            fields: app
                .fields()
                .iter()
                .map(|f| AppField {
                    key: f.key().to_owned(),
                    label: f.label().to_owned(),
                    help: f.help().map(str::to_owned),
                    secret: f.is_secret(),
                    required: f.is_required(),
                    default: f.default().map(str::to_owned),
                    pattern: f.pattern_source().map(str::to_owned),
                    choices: f.choices().to_vec(),
                })
                .collect(),
            modules: app
                .modules()
                .iter()
                .map(|m| AppModule {
                    key: m.key().to_owned(),
                    name: m.name().to_owned(),
                    scopes: m.scopes().to_vec(),
                    requests: m
                        .requests()
                        .iter()
                        .map(|r| ModuleRequest {
                            method: r.method().to_owned(),
                            path: r.path().as_str().to_owned(),
                        })
                        .collect(),
                })
                .collect(),
            requires_consent: app.auth_type().needs_consent(),
        }
    }
}
