//! Building the application: database, master key, tenant, first-run link, and the HTTP server
//! bound to its port (port 0 in tests).

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use sqlx::AnyPool;
use tracing_actix_web::TracingLogger;

use crate::auth::client_ip::TrustedProxies;
use crate::auth::csrf;
use crate::auth::master_key::MasterKey;
use crate::auth::password::PasswordHasher;
use crate::auth::session_store::DbSessionStore;
use crate::auth::vault::{Vault, VaultError};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, Backend};
use crate::service::bootstrap;
use crate::state::AppState;
use crate::telemetry::RequestSpan;
use crate::web as console;

pub mod edge;
mod envelope;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "keyward_session";

/// The database, migrated, with the tenant ID settled. Shared by `serve` and the CLI commands.
pub struct Prepared {
    pub pool: AnyPool,
    pub backend: Backend,
    pub master_key: MasterKey,
    /// Values sealed under the master key, and the key-secret hash key.
    pub vault: Vault,
    pub tenant_id: String,
}

/// Opens and migrates the database, loads (or creates) the master key, opens the vault with it,
/// and settles the tenant ID.
pub async fn prepare(settings: &Settings) -> anyhow::Result<Prepared> {
    let backend = Backend::of_url(&settings.database_url);
    if backend == Backend::Sqlite || settings.master_key.is_none() {
        let sqlite = crate::files::sqlite_path(&settings.database_url);
        crate::files::secure_data_dir(&settings.data_dir, sqlite.as_deref())?;
    }
    let mut master_key =
        MasterKey::load_or_create(settings.master_key.as_ref(), &settings.data_dir)?;
    let pool = db::connect(&settings.database_url).await?;
    db::migrate(&pool, backend).await?;
    let mut conn = pool.acquire().await?;
    let vault = match Vault::open(&mut conn, &master_key).await {
        Ok(vault) => vault,
        Err(VaultError::WrongMasterKey { .. }) if settings.master_key.is_none() => {
            // A rotation that committed but did not get to replace the key file finishes here.
            let (key, vault) =
                crate::auth::vault::finish_rotation(&settings.data_dir, &mut conn).await?;
            master_key = key;
            vault
        }
        Err(e) => return Err(e.into()),
    };
    let tenant_id = bootstrap::tenant_id(&mut conn, settings.tenant_id.as_deref()).await?;
    Ok(Prepared {
        pool,
        backend,
        master_key,
        vault,
        tenant_id,
    })
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    setup_url: Option<String>,
    state: web::Data<AppState>,
    /// The background job: expiry scan, outbox sender, webhook deliveries, housekeeping.
    jobs: crate::jobs::Jobs,
    /// The `KEYWARD_METRICS_BIND` listener's port and server, when set.
    metrics: Option<(u16, Server)>,
}

impl Application {
    /// Builds the application on `settings`, telling time by `clock`.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        if let Some(path) = &settings.github_scanning_keys {
            // Read again for each request; checked here so that a wrong file stops the start.
            crate::auth::scanning_keys::ScanningKeys::load(path)
                .map_err(|e| anyhow::anyhow!("KEYWARD_GITHUB_SCANNING_KEYS: {e}"))?;
        }
        let prepared = prepare(&settings).await?;
        let listener = TcpListener::bind(settings.bind)?;
        let port = listener.local_addr()?.port();
        let metrics_listener = match settings.metrics_bind {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|e| {
                anyhow::anyhow!("cannot listen on KEYWARD_METRICS_BIND {addr}: {e}")
            })?),
            None => None,
        };
        let mut settings = settings;
        if settings.public_url.ends_with(":0") {
            // Bound to an ephemeral port: links must name the real one.
            settings.public_url = format!("{}{port}", settings.public_url.trim_end_matches('0'));
        }

        let mut conn = prepared.pool.acquire().await?;
        crate::service::secret_keys::ensure_bridge(&mut conn, clock.unix()).await?;
        let setup_url = bootstrap::issue_setup_token(&mut conn, clock.unix())
            .await?
            .map(|token| format!("{}/setup?token={token}", settings.public_url));
        drop(conn);
        if let Some(url) = &setup_url {
            tracing::info!(
                "no user exists yet: open {url} within an hour to create the first administrator"
            );
        }

        let mut jobs = crate::jobs::Jobs::from_settings(
            prepared.pool.clone(),
            clock.clone(),
            &prepared.vault,
            &settings,
        )?;
        let hasher =
            PasswordHasher::new(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
        let key_hasher = prepared.vault.secret_hasher();
        let key_checker = crate::service::key_auth::KeyChecker::start(
            prepared.pool.clone(),
            crate::db::Reader::for_url(&settings.database_url),
            crate::service::key_auth::Policy {
                lockout_threshold: settings.lockout_threshold,
                client_failure_limit: settings.client_failure_limit,
                refusal_audit_per_second: settings.refusal_audit_per_second,
            },
            &settings.public_url,
            jobs.waker(),
        );
        jobs.key_changes = Some(key_checker.changes());
        if prepared.backend == Backend::Postgres {
            tokio::spawn(crate::service::key_auth::follow_other_instances(
                settings.database_url.clone(),
                key_checker.changes(),
            ));
        }
        let sender = jobs.waker();
        let state = web::Data::new(AppState {
            key_checker,
            pool: prepared.pool,
            backend: prepared.backend,
            clock,
            settings,
            hasher,
            master_key: prepared.master_key,
            vault: prepared.vault,
            tenant_id: prepared.tenant_id,
            mail_transport: jobs.mailer.transport_label(),
            metrics: crate::metrics::Metrics::new()?,
            key_hasher,
            sender,
        });
        let server = run(listener, state.clone())?;
        let metrics = match metrics_listener {
            Some(listener) => {
                let address = listener.local_addr()?;
                tracing::info!(%address, "metrics are served on their own listener");
                let server = crate::metrics::serve(listener, state.metrics.clone())?;
                Some((address.port(), server))
            }
            None => None,
        };
        Ok(Self {
            port,
            server,
            setup_url,
            state,
            jobs,
            metrics,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the `KEYWARD_METRICS_BIND` listener, when it is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The first-run link, when no user existed at start.
    pub fn setup_url(&self) -> Option<&str> {
        self.setup_url.as_deref()
    }

    /// The shared state (pool, clock, settings).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The background job, for tests and commands that run a pass themselves.
    pub fn jobs(&self) -> crate::jobs::Jobs {
        self.jobs.clone()
    }

    /// Serves until stopped, with the background job and the metrics listener beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = self.jobs.clone().run_forever(
            std::time::Duration::from_secs(self.state.settings.job_interval_secs),
            Some(self.state.metrics.clone()),
        );
        let jobs = tokio::spawn(jobs);
        // Refusal lines held back by the log's budget are told within a second.
        let log_ticker = tokio::spawn(async {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                crate::telemetry::tell_skipped();
            }
        });
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        jobs.abort();
        log_ticker.abort();
        // A clean stop keeps the refusals already answered, the last used addresses and the
        // usage counts since the last flush.
        self.state.key_checker.flush_refusals().await;
        self.state.key_checker.flush_addresses().await;
        self.state.key_checker.flush_usage().await;
        if let Some((task, handle)) = metrics {
            // It ignores signals: it stops when the main server has.
            handle.stop(true).await;
            let _ = task.await;
        }
        result
    }

    /// The main server future, for tests that spawn it; the metrics listener, when set, is
    /// spawned here and runs until the runtime ends.
    pub fn into_server(self) -> Server {
        if let Some((_, metrics)) = self.metrics {
            tokio::spawn(metrics);
        }
        self.server
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let cookie_key = Key::from(state.master_key.derive_64("session-cookie").as_slice());
    let idle =
        actix_web::cookie::time::Duration::minutes(i64::from(state.settings.session_idle_mins));
    let secure = state.settings.secure_cookies();
    let store = DbSessionStore::new(state.pool.clone(), state.clock.clone());
    let metrics = web::Data::new(state.metrics.clone());
    let form_tokens = web::Data::new(csrf::FormTokens::new(
        &state.master_key,
        secure,
        state.clock.clone(),
    ));
    let trusted_proxies = web::Data::new(TrustedProxies(state.settings.trusted_proxies.clone()));
    let metrics_token = state
        .settings
        .metrics_token
        .clone()
        .map(|t| web::Data::new(crate::metrics::MetricsToken(t)));
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(store.clone(), cookie_key.clone())
            .cookie_name(SESSION_COOKIE.to_string())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(idle)
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
            )
            .build();
        // The REST API answers programs: it has no sessions, forms or step-up, so it is routed
        // before the console's scope and pays for none of that middleware.
        let console_scope = web::scope("")
            .wrap(middleware::from_fn(console::step_up::guard))
            .wrap(middleware::from_fn(csrf::guard))
            .wrap(session)
            .wrap(TracingLogger::<RequestSpan>::new())
            .configure(console::routes)
            .default_service(web::to(console::not_found));
        App::new()
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(form_tokens.clone())
            .app_data(trusted_proxies.clone())
            .app_data(console::form_config())
            .app_data(console::query_config())
            .app_data(edge::payload_config())
            .wrap(envelope::Envelope)
            .configure(|cfg| {
                // Without a token the path does not exist here: an ordinary 404 page.
                if let Some(token) = &metrics_token {
                    cfg.app_data(token.clone())
                        .route("/metrics", web::get().to(crate::metrics::endpoint));
                }
            })
            .configure(crate::api::routes)
            // Neither needs a session: served before the console's scope, like the API.
            .configure(console::sessionless_routes)
            .service(console_scope)
    })
    .listen(listener)?
    .run();
    Ok(server)
}
