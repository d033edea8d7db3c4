//! Wiring: storage → domain services → GraphQL schema → HTTP router.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_lite::FutureExt as _;
use nova_core::{IdGenerator, Viewer};
use nova_db::{PgStore, PostgresSettings, SqliteSettings, SqliteStore, Synchronous};
use nova_gateway::{Authenticator, GatewayConfig, GatewayState, OperationTracker, Readiness};
use nova_graphql::{SchemaLimits, Services};
use nova_posts::PostStore;
use nova_posts::PostsService;
use nova_users::{Argon2Params, AuthConfig, GraphService, TokenService, UsersService};
use nova_users::{GraphStore, SessionStore, UserStore};
use rand::RngCore as _;

use crate::settings::{DbKind, Settings, SynchronousSetting};

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
fn services_over<S>(store: S, tokens: Arc<TokenService>, ids: Arc<IdGenerator>) -> Services
where
    S: UserStore + SessionStore + GraphStore + PostStore + 'static,
{
    let shared = Arc::new(store);
    let users = Arc::new(UsersService::new(
        shared.clone(),
        shared.clone(),
        Arc::clone(&tokens),
        Arc::clone(&ids),
    ));
    let graph = Arc::new(GraphService::new(
        shared.clone(),
        shared.clone(),
        Arc::clone(&ids),
    ));
    let posts = Arc::new(PostsService::new(shared, Arc::clone(&graph), ids));
    Services {
        users,
        graph,
        posts,
    }
}

/// A built node, ready to serve.
pub struct App {
    router: axum::Router,
    store: Storage,
    services: Services,
}

struct TokenAuthenticator(Arc<TokenService>);

impl Authenticator for TokenAuthenticator {
    fn authenticate(&self, bearer_token: &str) -> Option<Viewer> {
        self.0.verify_access_token(bearer_token).ok()
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

/// The configured JWT secret, or the one kept in the data directory (generated on first start).
fn jwt_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &settings.auth.jwt_secret {
        let len = secret.expose().len();
        anyhow::ensure!(
            len >= 32,
            "auth.jwt_secret is {len} bytes long; it must be at least 32 bytes (or leave it unset to have one generated)"
        );
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let path = settings.data_dir.join("jwt-secret");
    match read_secret(&path)? {
        Some(bytes) => Ok(bytes),
        None => generate_secret(&path),
    }
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
        let secret = jwt_secret(settings)?;
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
        let tokens = Arc::new(TokenService::new(AuthConfig {
            jwt_secret: secret,
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
        })?);
        let services = match &store {
            Storage::Sqlite(sqlite) => services_over(sqlite.clone(), Arc::clone(&tokens), ids),
            Storage::Postgres(postgres) => {
                services_over(postgres.clone(), Arc::clone(&tokens), ids)
            }
        };
        let limits = SchemaLimits {
            max_depth: settings.graphql.max_depth,
            max_complexity: settings.graphql.max_complexity,
        };
        let schema =
            nova_graphql::build_schema(services.clone(), limits, |b| b.extension(OperationTracker));
        let state = GatewayState {
            schema,
            services: services.clone(),
            authenticator: Arc::new(TokenAuthenticator(tokens)),
            readiness: Arc::new(StoreReadiness(store.clone())),
            metrics: nova_gateway::metrics_handle()?,
            config: GatewayConfig {
                max_body_bytes: settings.http.max_body_bytes,
                request_timeout: Duration::from_millis(settings.http.request_timeout_ms),
            },
        };
        Ok(App {
            router: nova_gateway::router(state),
            store,
            services,
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
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("http server")?;
        self.store.close().await;
        Ok(())
    }
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
}
