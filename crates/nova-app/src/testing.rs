//! `TestApp::spawn()`: a real node on 127.0.0.1:0 with its own temporary data directory, for
//! tests that talk HTTP to it.

use std::net::SocketAddr;

use tokio::sync::oneshot;

use crate::{App, Settings};

pub struct TestApp {
    pub addr: SocketAddr,
    pub settings: Settings,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Settings for tests: a fresh data directory and cheap password hashing. With
    /// `TEST_DATABASE=postgres` the storage is a fresh Postgres database of its own (on
    /// `TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432`), created on first use, so
    /// the same tests run against both backends without seeing each other's rows.
    pub fn test_settings(data_dir: &std::path::Path) -> Settings {
        let mut settings = Settings {
            data_dir: data_dir.to_path_buf(),
            ..Settings::default()
        };
        if std::env::var("TEST_DATABASE").is_ok_and(|v| v == "postgres") {
            let base = std::env::var("TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("nova_test_{:016x}", rand::random::<u64>());
            let url = format!("{}/{name}", base.trim_end_matches('/'));
            settings.db.kind = Some(crate::settings::DbKind::Postgres);
            settings.db.url = Some(crate::settings::Secret::from(url));
            settings.db.create_if_missing = true;
            // Suites fire bursts of concurrent requests while the relay and the event
            // consumers use connections of their own: a pool a little larger than the default
            // keeps the pool gate (tested on its own) out of tests about something else.
            settings.db.max_connections = 16;
        }
        settings.http.listen = "127.0.0.1:0".into();
        settings.auth.argon2_memory_kib = 1024;
        settings.auth.argon2_iterations = 1;
        settings.db.synchronous = crate::settings::SynchronousSetting::Normal;
        // Limits stay on (the code path runs in every suite) but are out of reach of suites that
        // fire hundreds of requests from 127.0.0.1; rate-limit tests set tight ones explicitly.
        let generous = 1_000_000;
        let limits = &mut settings.rate_limit;
        limits.per_ip_per_second = generous;
        limits.per_ip_burst = generous;
        limits.per_account_per_second = generous;
        limits.per_account_burst = generous;
        limits.sign_in_per_minute = generous;
        limits.sign_in_burst = generous;
        limits.register_per_minute = generous;
        limits.register_burst = generous;
        limits.writes_per_hour = generous;
        limits.writes_burst = generous;
        // The same for the per-caller query cost budget; query-limit tests set a small one.
        settings.graphql.cost_budget_per_hour = 1_000_000_000;
        settings
    }

    pub async fn spawn() -> anyhow::Result<TestApp> {
        let dir = tempfile::tempdir()?;
        let settings = Self::test_settings(dir.path());
        let mut app = Self::spawn_with(settings).await?;
        app._dir = Some(dir);
        Ok(app)
    }

    pub async fn spawn_with(settings: Settings) -> anyhow::Result<TestApp> {
        let app = App::build(&settings).await?;
        let listener = tokio::net::TcpListener::bind(&settings.http.listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(TestApp {
            addr,
            settings,
            _dir: None,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and waits until storage is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        if let (crate::settings::DbKind::Postgres, true, Some(url)) = (
            self.settings.db_kind(),
            self.settings.db.create_if_missing,
            &self.settings.db.url,
        ) {
            nova_db::PgStore::drop_database(url.expose()).await?;
        }
        Ok(())
    }
}
