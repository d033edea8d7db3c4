//! Typed configuration, merged from compiled defaults → `nova.toml` → `NOVA_*` environment
//! variables (`__` separates nesting levels) → command-line flags. Unknown keys are errors.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A secret value: readable by the code, printed as `<redacted>` everywhere.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory holding the SQLite database and the generated JWT secret; created if missing.
    pub data_dir: PathBuf,
    /// Node id (0–1023) embedded in generated ids. Nodes sharing a database need distinct ids;
    /// when unset a random one is chosen at start-up.
    pub node_id: Option<u16>,
    pub http: HttpSettings,
    pub db: DbSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("nova-data"),
            node_id: None,
            http: HttpSettings::default(),
            db: DbSettings::default(),
            auth: AuthSettings::default(),
            graphql: GraphqlSettings::default(),
            log: LogSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest a GraphQL request may execute before it is cancelled.
    pub request_timeout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynchronousSetting {
    Full,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbSettings {
    /// Storage backend: `sqlite` or `postgres`. When unset, a `postgres://` url selects Postgres
    /// and anything else SQLite.
    pub kind: Option<DbKind>,
    /// Postgres connection URL (`postgres://user@host:5432/db`). Redacted when printed.
    pub url: Option<Secret>,
    /// SQLite file; defaults to `<data_dir>/nova.db`.
    pub path: Option<PathBuf>,
    /// Pool size: Postgres connections, or SQLite read connections (SQLite writes go through one).
    pub max_connections: u32,
    /// Postgres server-side statement timeout.
    pub statement_timeout_ms: u64,
    /// Above this fraction of the pool in use, new database work is rejected at once with
    /// UNAVAILABLE (503 + Retry-After) instead of queueing.
    pub reject_above_ratio: f64,
    /// How long the pool may stay above `reject_above_ratio` before rejection starts: a short
    /// burst from one request passes, a database that stays saturated is shed.
    pub saturation_grace_ms: u64,
    /// Longest wait for a free connection.
    pub acquire_timeout_ms: u64,
    /// Longest wait for SQLite's file lock (another process writing).
    pub busy_timeout_ms: u64,
    /// `full` survives power loss; `normal` survives process crashes only.
    pub synchronous: SynchronousSetting,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// Create the Postgres database named in `url` when it does not exist (tests, first start).
    pub create_if_missing: bool,
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            kind: None,
            url: None,
            path: None,
            max_connections: 8,
            statement_timeout_ms: 5_000,
            reject_above_ratio: 0.85,
            saturation_grace_ms: 100,
            acquire_timeout_ms: 2_000,
            busy_timeout_ms: 5_000,
            synchronous: SynchronousSetting::Full,
            migrate_on_start: true,
            create_if_missing: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HS256 signing secret, at least 32 bytes. When unset, one is generated and kept in
    /// `<data_dir>/jwt-secret` (mode 0600).
    pub jwt_secret: Option<Secret>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp` and `nbf`.
    pub leeway_secs: u64,
    /// argon2id memory cost.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: None,
            issuer: "nova".into(),
            audience: "nova".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            leeway_secs: 30,
            // OWASP's recommended argon2id minimum: 19 MiB, 2 passes, 1 lane.
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlSettings {
    /// Deepest selection nesting accepted.
    pub max_depth: usize,
    /// Largest async-graphql complexity accepted.
    pub max_complexity: usize,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        let limits = nova_graphql::SchemaLimits::default();
        GraphqlSettings {
            max_depth: limits.max_depth,
            max_complexity: limits.max_complexity,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `nova=debug,info`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
}

impl Settings {
    /// Merges every source, then [`validate`](Self::validate)s the result. `config_file` is
    /// optional unless `required` is set.
    pub fn load(
        config_file: &Path,
        required: bool,
        overrides: &CliOverrides,
    ) -> Result<Settings, Box<figment::Error>> {
        if required && !config_file.exists() {
            return Err(Box::new(figment::Error::from(format!(
                "config file {} not found",
                config_file.display()
            ))));
        }
        let mut figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("NOVA_").split("__"));
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(("http.listen", listen));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        if let Some(format) = overrides.log_format {
            figment = figment.merge(("log.format", format));
        }
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings
            .validate()
            .map_err(|message| Box::new(figment::Error::from(message)))?;
        Ok(settings)
    }

    /// Rejects values that parse but that `serve` would refuse or silently change, so that
    /// `nova config check` catches them too.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(secret) = &self.auth.jwt_secret {
            let len = secret.expose().len();
            if len < 32 {
                return Err(format!(
                    "auth.jwt_secret is {len} bytes long; it must be at least 32 bytes (or leave it unset to have one generated)"
                ));
            }
        }
        if let Some(node_id) = self.node_id {
            if node_id > nova_core::id::MAX_NODE_ID {
                return Err(format!(
                    "node_id is {node_id}; it must be between 0 and {}",
                    nova_core::id::MAX_NODE_ID
                ));
            }
        }
        Ok(())
    }

    /// The backend in use.
    pub fn db_kind(&self) -> DbKind {
        match (self.db.kind, &self.db.url) {
            (Some(kind), _) => kind,
            (None, Some(url))
                if url.expose().starts_with("postgres://")
                    || url.expose().starts_with("postgresql://") =>
            {
                DbKind::Postgres
            }
            (None, _) => DbKind::Sqlite,
        }
    }

    /// The SQLite file in use.
    pub fn sqlite_path(&self) -> PathBuf {
        self.db
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("nova.db"))
    }

    /// The merged settings as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_and_files_merge_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        std::fs::write(&path, "[http]\nmax_body_bytes = 2048\n").expect("write");
        let settings = Settings::load(&path, true, &CliOverrides::default()).expect("valid");
        assert_eq!(settings.http.max_body_bytes, 2048);
        assert_eq!(settings.http.listen, "127.0.0.1:8080");

        std::fs::write(&path, "[http]\nmax_bodee_bytes = 2048\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("unknown key");
        assert!(error.to_string().contains("max_bodee_bytes"), "{error}");
    }

    #[test]
    fn short_secrets_and_out_of_range_node_ids_are_rejected_when_loading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        std::fs::write(&path, "[auth]\njwt_secret = \"too-short\"\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("short");
        assert!(error.to_string().contains("32 bytes"), "{error}");
        assert!(!error.to_string().contains("too-short"), "{error}");

        std::fs::write(&path, "node_id = 1024\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("node id");
        assert!(error.to_string().contains("node_id"), "{error}");

        std::fs::write(&path, "node_id = 1023\n").expect("write");
        Settings::load(&path, true, &CliOverrides::default()).expect("largest node id");
    }

    #[test]
    fn flags_win_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        std::fs::write(
            &path,
            "[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef-very-secret\"\n",
        )
        .expect("write");
        let overrides = CliOverrides {
            listen: Some("127.0.0.1:9999".into()),
            ..Default::default()
        };
        let settings = Settings::load(&path, true, &overrides).expect("valid");
        assert_eq!(settings.http.listen, "127.0.0.1:9999");
        let shown = settings.to_redacted_toml();
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
