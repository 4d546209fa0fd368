//! Builds the running service from its configuration: database (migrated), sealer, catalog,
//! GraphQL schema and HTTP server. Tests build it the same way, on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::catalog::Catalog;
use crate::config::{Config, KeySource};
use crate::crypto::{self, Sealer};
use crate::events::EventBus;
use crate::graphql;
use crate::graphql::limits::{DocumentLimits, ProviderCallLimits, RequestLimits};
use crate::http::{self, GraphqlLimits};
use crate::oauth::{OAuthClients, SingleFlight};
use crate::outbound::{Outbound, OutboundSettings};
use crate::state::AppState;
use crate::store;

/// Opens the database, applies migrations and loads keys and catalog: everything a command
/// needs before it does its work.
pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
    crate::metrics::install();
    // What the settings alone decide is checked before the database is touched: a typo must
    // not leave a created, migrated database behind.
    let catalog = match &config.providers_dir {
        Some(dir) => Catalog::embedded_with_dir(dir)?,
        None => Catalog::embedded().context("the embedded app catalog is invalid")?,
    };
    let oauth_clients = OAuthClients::from_lookup(
        |name| config.app_variables.get(name),
        catalog.apps().iter().map(|app| app.key()),
    )?;
    warn_of_unknown_app_variables(&config, &catalog);
    let keys = match &config.master_keys {
        KeySource::Environment(value) => Keys::Parsed(crypto::parse_master_keys(value.expose_secret())?),
        KeySource::DevKeyFile(path) => Keys::DevKeyFile(path),
    };
    let db = store::connect(&config.database_url).await?;
    store::migrate(&db).await?;
    let sealer = match keys {
        Keys::Parsed(keys) => Sealer::new(keys)?,
        Keys::DevKeyFile(path) => dev_key_sealer(&db, path).await?,
    };
    let outbound = Outbound::new(&OutboundSettings {
        connect_timeout: config.http_connect_timeout,
        timeout: config.http_timeout,
        allow_private: config.egress_allow_private,
    })?;
    if config.egress_allow_private {
        tracing::warn!(
            "PLUGBOARD_EGRESS_ALLOW_PRIVATE is on: connections may reach loopback and private networks"
        );
    }
    let events = EventBus::start(&db).await?;
    let provider_gate = Arc::new(crate::outbound::ProviderGate::new(config.team_provider_concurrency));
    let oidc = match &config.oidc {
        Some(settings) => {
            Some(Arc::new(crate::oidc::OidcVerifier::new(settings.clone(), config.http_timeout)?))
        }
        None => None,
    };
    let access = crate::access::start_cache(db.clone(), &events);
    Ok(AppState {
        background_writes: crate::store::WriteTurns::for_database(&db),
        access,
        oidc,
        schedule: config.schedule(),
        db,
        sealer: Arc::new(sealer),
        catalog: Arc::new(catalog),
        config: Arc::new(config),
        outbound,
        events,
        oauth_clients: Arc::new(oauth_clients),
        token_flights: Arc::new(SingleFlight::new()),
        provider_gate,
    })
}

/// Names the `PLUGBOARD_APP_*` variables that configure nothing: a typo in an app's key or in
/// `_CLIENT_ID` / `_CLIENT_SECRET` would otherwise leave the operator's client unused in silence.
fn warn_of_unknown_app_variables(config: &Config, catalog: &Catalog) {
    let known: std::collections::HashSet<String> = catalog
        .apps()
        .iter()
        .flat_map(|app| [OAuthClients::id_variable(app.key()), OAuthClients::secret_variable(app.key())])
        .chain(["PLUGBOARD_APP_RATE_LIMIT".to_owned()])
        .collect();
    for name in config.app_variables.names().filter(|name| !known.contains(*name)) {
        tracing::warn!(
            variable = name,
            "this variable configures nothing and is ignored: an app's OAuth client is \
             PLUGBOARD_APP_<KEY>_CLIENT_ID and PLUGBOARD_APP_<KEY>_CLIENT_SECRET, the key upper-cased with `-` \
             as `_` (e.g. PLUGBOARD_APP_MICROSOFT_365_CLIENT_ID)"
        );
    }
}

/// The master keys, as far as they can be had before the database is open.
enum Keys<'a> {
    Parsed(Vec<crypto::MasterKey>),
    DevKeyFile(&'a std::path::Path),
}

/// The sealer of the development key file at `path`, created when missing unless the database
/// already holds secrets sealed with another key (then the file was lost, and a new key would
/// open none of them).
async fn dev_key_sealer(db: &sea_orm::DatabaseConnection, path: &std::path::Path) -> anyhow::Result<Sealer> {
    if !path.exists() && store::holds_sealed_secrets(db).await? {
        anyhow::bail!(
            "the database holds secrets sealed with a master key, but the development key file {} does not \
             exist: restore it, or set PLUGBOARD_MASTER_KEYS to the key(s) that sealed them. A new key would open \
             none of them, so none is generated",
            path.display()
        );
    }
    let (keys, created) = crypto::load_or_create_dev_key_file(path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "GENERATED A DEVELOPMENT MASTER KEY. Secrets are sealed with a key stored next to the data: \
             fine for trying Plugboard, not for production. Set PLUGBOARD_MASTER_KEYS, and back this \
             file up meanwhile: losing it makes every stored secret unreadable"
        );
    } else {
        tracing::warn!(path = %path.display(), "using the development master key file; set PLUGBOARD_MASTER_KEYS in production");
    }
    Ok(Sealer::new(keys)?)
}

/// The HTTP service, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

/// Binds `PLUGBOARD_LISTEN`. When no public URL was configured, it becomes the bound address,
/// so port 0 (tests) still yields a working OAuth redirect URI.
pub fn bind(config: &mut Config) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("could not listen on {} (PLUGBOARD_LISTEN)", config.listen))?;
    if config.public_url_derived {
        let bound = listener.local_addr()?;
        config.public_url = url::Url::parse(&format!("http://{bound}"))?;
    }
    Ok(listener)
}

/// What one GraphQL request may ask, from the settings.
fn graphql_limits(config: &Config) -> RequestLimits {
    RequestLimits {
        document: DocumentLimits {
            max_nesting: config.max_query_nesting,
            max_tokens: config.max_query_tokens,
        },
        max_depth: config.max_query_depth,
        max_complexity: config.max_query_complexity,
        max_batch: config.max_batch,
        provider_calls: ProviderCallLimits {
            per_request: config.provider_calls_per_request,
            per_minute: config.provider_calls_per_minute,
        },
    }
}

/// What clients may hold at once within the open-file limit, raised first to its hard limit
/// (`http::open_files`). Said once at start, with what to do when the limit is what bounds it.
fn client_limits(config: &Config, workers: usize) -> http::ClientLimits {
    let open_files = http::raise_open_files_limit();
    let wanted =
        http::WantedByClients { sockets: config.max_sockets, proxy_calls: config.proxy.max_in_flight };
    let clients = http::ClientLimits::within(open_files, workers, wanted);
    if clients.sockets < wanted.sockets || clients.proxy_calls < wanted.proxy_calls {
        tracing::warn!(
            open_file_limit = open_files,
            sockets = clients.sockets,
            proxy_calls = clients.proxy_calls,
            "the open-file limit allows fewer GraphQL sockets or proxied calls than PLUGBOARD_MAX_SOCKETS or \
             PLUGBOARD_PROXY_MAX_IN_FLIGHT ask for; raise the hard limit (ulimit -Hn, or LimitNOFILE= under \
             systemd) to serve more"
        );
    } else {
        tracing::info!(
            open_file_limit = open_files,
            sockets = clients.sockets,
            sockets_per_caller = config.max_sockets_per_caller,
            proxy_calls = clients.proxy_calls,
            "client connections bounded"
        );
    }
    clients
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        let listener = bind(&mut config)?;
        let state = prepare(config).await?;
        Self::serve(listener, state)
    }

    /// Builds the server on a bound listener around an already prepared state.
    pub fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<Self> {
        let config = state.config.clone();
        let port = listener.local_addr()?.port();
        let schema = graphql::build_schema(state.clone(), graphql_limits(&config));
        let limits = GraphqlLimits {
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.request_body_timeout,
        };
        // Events and webhooks of committed changes leave from here, on every instance, until
        // shutdown closes the bus (what a stopped instance leaves staged, the next one sends).
        tokio::spawn(crate::scheduler::run_dispatcher(state.clone(), state.events.closed_signal()));
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let clients = client_limits(&config, workers);
        let proxy = crate::proxy::ProxyRuntime::start(
            state.db.clone(),
            &config.proxy,
            &state.events,
            clients.proxy_calls,
        );
        let server_state = state.clone();
        let stall_timeout = config.client_stall_timeout;
        let sockets = http::SocketSlots::new(clients.sockets, config.max_sockets_per_caller);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(http::cors_middleware(&server_state.config))
                .wrap(actix_web::middleware::from_fn(http::cors_strip_for_unlisted))
                .wrap(actix_web::middleware::from_fn(http::request_telemetry))
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(server_state.clone()))
                .app_data(web::Data::from(proxy.clone()))
                .app_data(web::Data::new(limits))
                .app_data(web::Data::new(sockets.clone()))
                .configure(http::routes)
        })
        .workers(workers)
        // Events are small writes; without this the first one waits for the client's delayed ACK.
        .tcp_nodelay(true)
        .on_connect(move |connection, _| http::cut_stalled_clients_after(connection, stall_timeout));
        if let Some(per_worker) = clients.connections_per_worker {
            server = server.max_connections(per_worker);
        }
        let server = server
            .listen(listener)?
            .shutdown_timeout(10)
            // The binary handles signals itself, to close subscriptions and the scheduler in order.
            .disable_signals()
            .run();
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (gracefully when `graceful`), from another task.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
