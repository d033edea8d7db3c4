//! Wiring: storage → domain services → GraphQL schema → HTTP router.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_lite::FutureExt as _;
use nova_core::{IdGenerator, Viewer};
use nova_db::{PgStore, PostgresSettings, SqliteSettings, SqliteStore, Synchronous};
use nova_gateway::{AuthFailure, Authenticator, GatewayConfig, GatewayState, Readiness};
use nova_gateway::{QueryLimits, QueryLimitsConfig};
use nova_gateway::{RateLimitConfig, RateLimits};
use nova_graphql::{SchemaLimits, Services};
use nova_messaging::{MessagingLimits, MessagingService, MessagingStore};
use nova_notifications::{NotificationStore, NotificationsService};
use nova_posts::PostStore;
use nova_posts::PostsService;
use nova_users::{Argon2Params, AuthConfig, GraphService, JwtKey, TokenService, UsersService};
use nova_users::{GraphStore, SessionStore, UserStore};
use rand::RngCore as _;

use crate::settings::{DbKind, Profile, Settings, SynchronousSetting};

/// The storage backend chosen by configuration.
#[derive(Clone)]
pub enum Storage {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Storage {
    pub async fn open(settings: &Settings) -> anyhow::Result<Storage> {
        match settings.db_kind() {
            DbKind::Sqlite => Ok(Storage::Sqlite(open_store(settings).await?)),
            DbKind::Postgres => {
                let url = settings
                    .db
                    .url
                    .as_ref()
                    .context("db.url is required for db.kind = \"postgres\"")?;
                if settings.db.create_if_missing {
                    PgStore::create_database_if_missing(url.expose()).await?;
                }
                let store = PgStore::open(&PostgresSettings {
                    url: url.expose().to_owned(),
                    max_connections: settings.db.max_connections,
                    acquire_timeout_ms: settings.db.acquire_timeout_ms,
                    statement_timeout_ms: settings.db.statement_timeout_ms,
                    reject_above_ratio: settings.db.reject_above_ratio,
                    saturation_grace_ms: settings.db.saturation_grace_ms,
                })
                .await?;
                Ok(Storage::Postgres(store))
            }
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Storage::Sqlite(store) => store.migrate().await,
            Storage::Postgres(store) => store.migrate().await,
        }
    }

    pub async fn rollback(&self, steps: usize) -> anyhow::Result<()> {
        match self {
            Storage::Sqlite(store) => store.rollback(steps).await,
            Storage::Postgres(store) => store.rollback(steps).await,
        }
    }

    pub async fn check_ready(&self) -> anyhow::Result<()> {
        match self {
            Storage::Sqlite(store) => store.check_ready().await,
            Storage::Postgres(store) => store.check_ready().await,
        }
    }

    pub async fn close(&self) {
        match self {
            Storage::Sqlite(store) => store.close().await,
            Storage::Postgres(store) => store.close().await,
        }
    }
}

/// Builds the domain services over any adapter that implements every store port.
fn services_over<S>(
    store: S,
    tokens: Arc<TokenService>,
    ids: Arc<IdGenerator>,
    revocation_check_ttl: Duration,
    messaging: MessagingLimits,
) -> Services
where
    S: UserStore
        + SessionStore
        + GraphStore
        + PostStore
        + NotificationStore
        + MessagingStore
        + 'static,
{
    let shared = Arc::new(store);
    let users = Arc::new(
        UsersService::new(
            shared.clone(),
            shared.clone(),
            Arc::clone(&tokens),
            Arc::clone(&ids),
        )
        .with_revocation_check_ttl(revocation_check_ttl),
    );
    let graph = Arc::new(GraphService::new(
        shared.clone(),
        shared.clone(),
        Arc::clone(&ids),
    ));
    let posts = Arc::new(PostsService::new(
        shared.clone(),
        Arc::clone(&graph),
        Arc::clone(&ids),
    ));
    let notifications = Arc::new(NotificationsService::new(
        shared.clone(),
        Arc::clone(&users),
        Arc::clone(&graph),
        Arc::clone(&ids),
    ));
    let messaging = Arc::new(MessagingService::new(
        shared,
        Arc::clone(&graph),
        ids,
        messaging,
    ));
    Services {
        users,
        graph,
        posts,
        notifications,
        messaging,
    }
}

/// A built node, ready to serve.
pub struct App {
    router: axum::Router,
    store: Storage,
    services: Services,
    events: crate::events::EventRuntime,
}

/// Bearer authentication over the accounts service: signature, key id, claims and session
/// revocation. Every attempt gives one `nova::auth` log line (outcome, account id when the
/// token was genuinely ours, key id, duration; never the token) and counts in
/// `nova_auth_outcomes_total{outcome}`.
struct TokenAuthenticator(Arc<UsersService>);

impl TokenAuthenticator {
    async fn verify_and_log(&self, bearer_token: &str) -> Result<Viewer, AuthFailure> {
        let started = std::time::Instant::now();
        let result = self.0.authenticate(bearer_token).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (outcome, account_id) = match &result {
            Ok(verified) => ("ok", Some(verified.user_id)),
            Err(nova_users::AuthFailure::Rejected(rejected)) => {
                (rejected.reason.reason(), rejected.user_id)
            }
            Err(nova_users::AuthFailure::Unavailable(_)) => ("unavailable", None),
        };
        metrics::counter!("nova_auth_outcomes_total", "outcome" => outcome).increment(1);
        let account_id = account_id.map_or_else(|| "-".to_owned(), |id| id.to_string());
        match &result {
            Ok(_) => tracing::debug!(
                target: "nova::auth",
                outcome,
                account_id = %account_id,
                duration_ms,
                "authentication"
            ),
            Err(nova_users::AuthFailure::Rejected(_)) => tracing::info!(
                target: "nova::auth",
                outcome,
                account_id = %account_id,
                duration_ms,
                "authentication"
            ),
            Err(nova_users::AuthFailure::Unavailable(error)) => tracing::warn!(
                target: "nova::auth",
                outcome,
                account_id = %account_id,
                duration_ms,
                error = %format!("{error:#}"),
                "authentication"
            ),
        }
        match result {
            Ok(verified) => Ok(Viewer {
                user_id: verified.user_id,
            }),
            Err(nova_users::AuthFailure::Rejected(_)) => Err(AuthFailure::Rejected),
            Err(nova_users::AuthFailure::Unavailable(_)) => Err(AuthFailure::Unavailable),
        }
    }
}

impl Authenticator for TokenAuthenticator {
    fn verify<'a>(
        &'a self,
        bearer_token: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Viewer, AuthFailure>> {
        Box::pin(self.verify_and_log(bearer_token))
    }

    fn authenticate(&self, bearer_token: &str) -> Option<Viewer> {
        self.0.tokens().verify_access_token(bearer_token).ok()
    }
}

struct StoreReadiness(Storage);

impl Readiness for StoreReadiness {
    fn check(&self) -> futures::future::BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(self.0.check_ready())
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&SqliteSettings {
        path: settings.sqlite_path(),
        max_read_connections: settings.db.max_connections,
        busy_timeout_ms: settings.db.busy_timeout_ms,
        acquire_timeout_ms: settings.db.acquire_timeout_ms,
        reject_above_ratio: settings.db.reject_above_ratio,
        saturation_grace_ms: settings.db.saturation_grace_ms,
        synchronous: match settings.db.synchronous {
            SynchronousSetting::Full => Synchronous::Full,
            SynchronousSetting::Normal => Synchronous::Normal,
        },
    })
    .await
}

/// Applies pending schema migrations (`nova migrate`). Idempotent.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = Storage::open(settings).await?;
    store.migrate().await?;
    store.close().await;
    Ok(())
}

/// Every JWT key and the id of the one that signs. Configured keys (`auth.jwt_secret` as kid
/// `default`, `auth.jwt_keys`) come first; without any, the secret kept in the data directory
/// is the `default` key (generated on first start, never in production). When only
/// `auth.jwt_keys` are configured, an existing data-directory secret still verifies as
/// `default`, so a node moving from the generated secret to configured keys signs no one out.
fn jwt_keys(settings: &Settings) -> anyhow::Result<(String, Vec<JwtKey>)> {
    let auth = &settings.auth;
    // The same checks `config check` runs, so `App::build` is safe with unvalidated settings.
    auth.validate(settings.profile)
        .map_err(anyhow::Error::msg)?;
    let signing_kid = auth.resolved_signing_kid().map_err(anyhow::Error::msg)?;
    let mut keys: Vec<JwtKey> = auth
        .jwt_secret
        .iter()
        .map(|secret| JwtKey {
            kid: nova_users::DEFAULT_KID.to_owned(),
            secret: secret.expose().as_bytes().to_vec(),
        })
        .chain(auth.jwt_keys.iter().map(|key| JwtKey {
            kid: key.kid.clone(),
            secret: key.secret.expose().as_bytes().to_vec(),
        }))
        .collect();
    if !keys.iter().any(|key| key.kid == nova_users::DEFAULT_KID) {
        let path = settings.data_dir.join("jwt-secret");
        let kept = if keys.is_empty() {
            anyhow::ensure!(
                settings.profile != Profile::Production,
                "profile = \"production\" needs a configured JWT secret (auth.jwt_secret or auth.jwt_keys); none is generated in production"
            );
            Some(match read_secret(&path)? {
                Some(bytes) => bytes,
                None => generate_secret(&path)?,
            })
        } else {
            read_secret(&path)?
        };
        if let Some(secret) = kept {
            keys.push(JwtKey {
                kid: nova_users::DEFAULT_KID.to_owned(),
                secret,
            });
        }
    }
    Ok((signing_kid, keys))
}

/// The secret kept in `path`, `None` when there is no such file.
fn read_secret(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            anyhow::ensure!(
                bytes.len() >= 32,
                "{} is shorter than 32 bytes; delete it to generate a new one",
                path.display()
            );
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("read {}", path.display()))),
    }
}

/// Generates a secret and stores it in `path` (mode 0600) without ever exposing a partial file:
/// it is written and synced under a temporary name, then linked into place, and the directory is
/// synced. A crash mid-write leaves no `jwt-secret` behind (the next start generates one), and
/// of two nodes starting together on one data directory the first link wins and the other
/// adopts the winner's secret.
fn generate_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written = (|| -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("create {}", temporary.display()))?;
        file.write_all(secret.as_bytes())
            .context("write jwt secret")?;
        file.sync_all().context("sync jwt secret")?;
        Ok(())
    })();
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: a rename is atomic too, only not exclusive.
        Err(_) => std::fs::rename(&temporary, path)
            .map(|()| true)
            .with_context(|| format!("create {}", path.display())),
    });
    let _ = std::fs::remove_file(&temporary);
    if !linked? {
        return read_secret(path)?
            .with_context(|| format!("{} vanished while starting", path.display()));
    }
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("sync directory {}", dir.display()))?;
    }
    Ok(secret.into_bytes())
}

impl App {
    pub async fn build(settings: &Settings) -> anyhow::Result<App> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("create data directory {}", settings.data_dir.display()))?;
        let (signing_kid, mut keys) = jwt_keys(settings)?;
        let store = Storage::open(settings).await?;
        if settings.db.migrate_on_start {
            store.migrate().await?;
        }
        if let Some(node_id) = settings.node_id {
            anyhow::ensure!(
                node_id <= nova_core::id::MAX_NODE_ID,
                "node_id is {node_id}; it must be between 0 and {}",
                nova_core::id::MAX_NODE_ID
            );
        }
        let node_id = settings
            .node_id
            .unwrap_or_else(|| (rand::rngs::OsRng.next_u32() % 1024) as u16);
        let ids = Arc::new(IdGenerator::new(node_id));
        let auth = &settings.auth;
        let signing = keys
            .iter()
            .position(|key| key.kid == signing_kid)
            .with_context(|| format!("auth.signing_kid {signing_kid:?} names no configured key"))?;
        let signing_secret = keys.swap_remove(signing).secret;
        let revocation_check_ttl = Duration::from_millis(auth.revocation_check_ttl_ms);
        let tokens = Arc::new(TokenService::with_keys(
            AuthConfig {
                jwt_secret: signing_secret,
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
                access_token_ttl_secs: auth.access_token_ttl_secs,
                refresh_token_ttl_secs: auth.refresh_token_ttl_secs,
                leeway_secs: auth.leeway_secs,
                argon2: Argon2Params {
                    memory_kib: auth.argon2_memory_kib,
                    iterations: auth.argon2_iterations,
                    parallelism: auth.argon2_parallelism,
                },
            },
            &signing_kid,
            keys,
        )?);
        let messaging_limits = MessagingLimits {
            max_group_members: settings.messaging.max_group_members,
        };
        let services = match &store {
            Storage::Sqlite(sqlite) => services_over(
                sqlite.clone(),
                Arc::clone(&tokens),
                ids,
                revocation_check_ttl,
                messaging_limits,
            ),
            Storage::Postgres(postgres) => services_over(
                postgres.clone(),
                Arc::clone(&tokens),
                ids,
                revocation_check_ttl,
                messaging_limits,
            ),
        };
        let limits = SchemaLimits {
            max_depth: settings.graphql.max_depth,
            max_complexity: settings.graphql.max_complexity,
            introspection: settings.graphql.introspection,
        };
        let query_limits = QueryLimits::new(query_limits_config(settings));
        let rate_limits = RateLimits::new(rate_limit_config(settings)?)?;
        let live = nova_graphql::LiveHub::new(
            nova_graphql::LiveSettings {
                queue_capacity: settings.events.subscriber_queue_capacity,
                max_per_account: settings.events.max_subscriptions_per_account,
            },
            Arc::clone(&services.graph),
            Arc::clone(&services.posts),
        );
        // No executor extensions: the edge admits each document before it runs (see
        // nova_gateway's admission), so no hook runs per field.
        let schema =
            nova_graphql::build_schema(services.clone(), limits, |b| b.data(Arc::clone(&live)));
        let schema_types = Arc::new(nova_gateway::cost::SchemaTypes::from_sdl(&schema.sdl())?);
        let state = GatewayState {
            schema,
            services: services.clone(),
            authenticator: Arc::new(TokenAuthenticator(Arc::clone(&services.users))),
            readiness: Arc::new(StoreReadiness(store.clone())),
            metrics: nova_gateway::metrics_handle()?,
            config: GatewayConfig {
                max_body_bytes: settings.http.max_body_bytes,
                request_timeout: Duration::from_millis(settings.http.request_timeout_ms),
            },
            rate_limits,
            query_limits,
            schema_types,
        };
        // Consumers of domain events (notifications, live subscriptions) register here.
        let handlers: Vec<Arc<dyn nova_events::EventHandler>> = vec![
            Arc::new(nova_notifications::NotificationsHandler(Arc::clone(
                &services.notifications,
            ))),
            Arc::new(nova_notifications::PreferencesInvalidation(Arc::clone(
                &services.notifications,
            ))),
            live,
        ];
        if matches!(store, Storage::Postgres(_))
            && settings.events.bus == crate::settings::BusKind::InProcess
        {
            // Every node's relay drains the shared outbox into its own process: with several
            // nodes, live subscribers and caches on the others would miss those events.
            tracing::warn!(
                "events.bus = \"in_process\" on Postgres: fine for one node; several nodes need events.bus = \"kafka\""
            );
        }
        let events = crate::events::build(&settings.events, &store, handlers, node_id)?;
        Ok(App {
            router: nova_gateway::router(state),
            store,
            services,
            events,
        })
    }

    /// The domain services, for tests that exercise the rules without HTTP.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and closes storage.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The peer address is what rate limits charge (or the proxy whose headers they read).
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let events = self.events.start();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("http server");
        events.stop(Duration::from_secs(5)).await;
        served?;
        self.store.close().await;
        Ok(())
    }
}

/// The gateway's query limits from `[graphql]`.
fn query_limits_config(settings: &Settings) -> QueryLimitsConfig {
    let g = &settings.graphql;
    QueryLimitsConfig {
        caps: nova_gateway::cost::Caps {
            max_depth: g.max_depth,
            max_fields_per_level: g.max_fields_per_level,
            max_aliases: g.max_aliases,
            max_root_fields: g.max_root_fields,
            max_cost: g.max_cost,
        },
        budget_points: g.cost_budget_per_hour,
        budget_window: Duration::from_secs(g.cost_budget_window_secs.max(1)),
        apq_cache_entries: g.apq_cache_entries,
        max_variables_bytes: g.max_variables_bytes,
        max_header_bytes: g.max_header_bytes,
    }
}

/// The gateway's rate limits from `[rate_limit]`.
fn rate_limit_config(settings: &Settings) -> anyhow::Result<RateLimitConfig> {
    use nova_gateway::rate_limit::{parse_trusted_proxy, Rate, RedisConfig};
    let s = &settings.rate_limit;
    let trusted_proxies = s
        .trusted_proxies
        .iter()
        .map(|entry| parse_trusted_proxy(entry))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("rate_limit.trusted_proxies: {e}"))?;
    Ok(RateLimitConfig {
        enabled: s.enabled,
        trusted_proxies,
        per_ip: Rate::per_second(s.per_ip_per_second, s.per_ip_burst),
        per_account: Rate::per_second(s.per_account_per_second, s.per_account_burst),
        sign_in: Rate::per_minute(s.sign_in_per_minute, s.sign_in_burst),
        register: Rate::per_minute(s.register_per_minute, s.register_burst),
        writes: Rate::per_hour(s.writes_per_hour, s.writes_burst),
        redis: s.redis_url.as_ref().map(|url| RedisConfig {
            url: url.expose().to_owned(),
            key_prefix: s.redis_key_prefix.clone(),
            timeout: Duration::from_millis(s.redis_timeout_ms.max(1)),
        }),
        sweep_interval: Duration::from_secs(s.sweep_interval_secs.max(1)),
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    ctrl_c.or(term).await;
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_generated_secret_is_private_and_a_second_generation_adopts_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt-secret");
        let first = generate_secret(&path).expect("generate");
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A node that lost the race to create the file adopts the one already there.
        let second = generate_secret(&path).expect("adopt");
        assert_eq!(first, second);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["jwt-secret"], "no temporary file is left behind");
    }

    #[test]
    fn the_generated_secret_is_the_default_key_and_keeps_verifying_after_moving_to_jwt_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = crate::testing::TestApp::test_settings(dir.path());
        let (signing, keys) = jwt_keys(&settings).expect("generated");
        assert_eq!(signing, nova_users::DEFAULT_KID);
        assert_eq!(keys.len(), 1);
        let generated = keys[0].secret.clone();

        settings.auth.jwt_keys = vec![crate::settings::JwtKeySettings {
            kid: "2026-11".into(),
            secret: crate::settings::Secret::from("9f2c4e7a1b8d3f6052c9e4a7b1d8f3c6".to_owned()),
        }];
        let (signing, keys) = jwt_keys(&settings).expect("configured");
        assert_eq!(signing, "2026-11");
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["2026-11", nova_users::DEFAULT_KID]);
        assert_eq!(keys[1].secret, generated, "the old secret still verifies");
    }

    #[test]
    fn production_generates_no_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = crate::testing::TestApp::test_settings(dir.path());
        settings.profile = Profile::Production;
        settings.auth.argon2_memory_kib = crate::settings::OWASP_MIN_ARGON2_MEMORY_KIB;
        let error = jwt_keys(&settings).expect_err("refused");
        assert!(error.to_string().contains("production"), "{error}");
        assert!(!dir.path().join("jwt-secret").exists());
    }
}
