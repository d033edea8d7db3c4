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
    /// `development` (default) or `production`. Production refuses to start without configured
    /// JWT keys (none is generated), with a weak key, or with argon2 memory below OWASP's
    /// minimum (19 MiB).
    pub profile: Profile,
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
    pub rate_limit: RateLimitSettings,
    pub events: EventsSettings,
    pub messaging: MessagingSettings,
    pub runtime: RuntimeSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            profile: Profile::Development,
            data_dir: PathBuf::from("nova-data"),
            node_id: None,
            http: HttpSettings::default(),
            db: DbSettings::default(),
            auth: AuthSettings::default(),
            graphql: GraphqlSettings::default(),
            log: LogSettings::default(),
            rate_limit: RateLimitSettings::default(),
            events: EventsSettings::default(),
            messaging: MessagingSettings::default(),
            runtime: RuntimeSettings::default(),
        }
    }
}

/// The async runtime the process runs on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSettings {
    /// Threads running requests and background tasks; 0 means one per CPU core.
    pub worker_threads: usize,
    /// Most threads kept for blocking work (password hashing, file I/O).
    pub max_blocking_threads: usize,
    /// How long an idle blocking thread is kept before it exits.
    pub blocking_keep_alive_ms: u64,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            worker_threads: 0,
            max_blocking_threads: 64,
            blocking_keep_alive_ms: 10_000,
        }
    }
}

/// Which bus carries events between the outbox relay and the consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// In this process only: the embedded default, for one node.
    InProcess,
    /// Kafka (or a Kafka-compatible broker): required when several nodes run.
    Kafka,
}

/// The event path: outbox relay, bus, consumers and live subscriptions. See docs/events.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    pub bus: BusKind,
    /// Kafka bootstrap servers (`host:port,...`), when `bus = "kafka"`.
    pub kafka_brokers: String,
    /// Prefix of every topic and consumer group name (several deployments on one broker).
    pub kafka_prefix: String,
    /// Outbox rows the relay publishes per batch.
    pub relay_batch_size: usize,
    /// How often the relay looks for rows it was not woken for (other nodes, crash leftovers).
    /// Every commit on this node wakes the relay at once, so this is a safety net only.
    pub relay_poll_ms: u64,
    /// Entries of each consumer's in-memory deduplication window.
    pub dedup_max_entries: u64,
    /// How long an event id stays in that window.
    pub dedup_ttl_secs: u64,
    /// How long sent outbox rows and processed-event records are kept.
    pub retention_secs: u64,
    /// Events one live subscriber may have queued before further events are dropped (and counted).
    pub subscriber_queue_capacity: usize,
    /// Concurrent subscriptions per account, across its sockets on this node.
    pub max_subscriptions_per_account: usize,
    /// Test failpoint (fault F1): abort after publishing a batch, before marking it sent.
    pub crash_after_publish: bool,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            bus: BusKind::InProcess,
            kafka_brokers: "127.0.0.1:9092".into(),
            kafka_prefix: String::new(),
            relay_batch_size: 256,
            relay_poll_ms: 2_000,
            dedup_max_entries: 100_000,
            dedup_ttl_secs: 3600,
            retention_secs: 24 * 3600,
            subscriber_queue_capacity: 10_000,
            max_subscriptions_per_account: 20,
            crash_after_publish: false,
        }
    }
}

impl EventsSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.relay_batch_size == 0 || self.relay_batch_size > 10_000 {
            return Err("events.relay_batch_size must be between 1 and 10000".into());
        }
        if self.dedup_max_entries == 0 || self.dedup_ttl_secs == 0 {
            return Err(
                "events.dedup_max_entries and events.dedup_ttl_secs must be positive".into(),
            );
        }
        if self.subscriber_queue_capacity < 4 || self.max_subscriptions_per_account == 0 {
            return Err("events.subscriber_queue_capacity must be at least 4 and events.max_subscriptions_per_account positive".into());
        }
        Ok(())
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

/// How strict start-up is about secrets and costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Development,
    Production,
}

/// OWASP's minimum argon2id memory cost, enforced in production.
pub const OWASP_MIN_ARGON2_MEMORY_KIB: u32 = 19 * 1024;

/// One JWT key: `{ kid = "2026-11", secret = "..." }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeySettings {
    /// Key id, carried in the `kid` header of the tokens it signs.
    pub kid: String,
    /// HS256 secret, at least 32 bytes. Redacted when printed.
    pub secret: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HS256 signing secret, at least 32 bytes, with key id `default`. When neither it nor
    /// `jwt_keys` is set, one is generated and kept in `<data_dir>/jwt-secret` (mode 0600),
    /// except in production.
    pub jwt_secret: Option<Secret>,
    /// Further keys for rotation; every configured key verifies, `signing_kid` signs.
    pub jwt_keys: Vec<JwtKeySettings>,
    /// The key that signs new tokens. Default: `default` when `jwt_secret` is set or `jwt_keys`
    /// is empty, else the only entry of `jwt_keys`.
    pub signing_kid: Option<String>,
    /// How long a session revocation check is reused in process; a sign-out on another node
    /// takes effect here within this time. 0 checks storage on every request.
    pub revocation_check_ttl_ms: u64,
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

impl AuthSettings {
    /// The key that signs new tokens, as configured or defaulted (see `signing_kid`).
    pub fn resolved_signing_kid(&self) -> Result<String, String> {
        if let Some(kid) = &self.signing_kid {
            return Ok(kid.clone());
        }
        match (&self.jwt_secret, self.jwt_keys.as_slice()) {
            (Some(_), _) | (None, []) => Ok(nova_users::DEFAULT_KID.to_owned()),
            (None, [only]) => Ok(only.kid.clone()),
            (None, _) => Err(
                "auth.signing_kid must name the key that signs when auth.jwt_keys has several"
                    .into(),
            ),
        }
    }

    /// Key ids distinct and well-formed, secrets long enough (and, in production, not
    /// repetitive), the signing key configured, argon2 memory at OWASP's minimum in production.
    pub fn validate(&self, profile: Profile) -> Result<(), String> {
        let production = profile == Profile::Production;
        let mut kids: Vec<&str> = Vec::new();
        let named = self
            .jwt_secret
            .iter()
            .map(|secret| {
                (
                    "auth.jwt_secret".to_owned(),
                    nova_users::DEFAULT_KID,
                    secret,
                )
            })
            .chain(self.jwt_keys.iter().map(|key| {
                (
                    format!("auth.jwt_keys kid {:?}", key.kid),
                    key.kid.as_str(),
                    &key.secret,
                )
            }));
        for (name, kid, secret) in named {
            nova_users::auth::check_kid(kid).map_err(|e| format!("auth.jwt_keys: {e}"))?;
            if kids.contains(&kid) {
                return Err(format!("{name}: key id {kid:?} is configured twice"));
            }
            kids.push(kid);
            let len = secret.expose().len();
            if len < nova_users::auth::MIN_SECRET_BYTES {
                return Err(format!(
                    "{name} is {len} bytes long; it must be at least 32 bytes (or leave it unset to have one generated)"
                ));
            }
            if production {
                if let Some(weakness) =
                    nova_users::auth::secret_weakness(secret.expose().as_bytes())
                {
                    return Err(format!(
                        "{name} is too weak for profile = \"production\": {weakness}"
                    ));
                }
            }
        }
        if production && kids.is_empty() {
            return Err("profile = \"production\" needs a configured JWT secret (auth.jwt_secret or auth.jwt_keys); none is generated in production".into());
        }
        let signing = self.resolved_signing_kid()?;
        if !kids.is_empty() && !kids.contains(&signing.as_str()) {
            return Err(format!(
                "auth.signing_kid {signing:?} names no configured key (configured: {})",
                kids.join(", ")
            ));
        }
        if kids.is_empty() && signing != nova_users::DEFAULT_KID {
            return Err(format!(
                "auth.signing_kid {signing:?} names no configured key (only the generated \"default\" key exists)"
            ));
        }
        if production && self.argon2_memory_kib < OWASP_MIN_ARGON2_MEMORY_KIB {
            return Err(format!(
                "auth.argon2_memory_kib is {}; profile = \"production\" needs at least {OWASP_MIN_ARGON2_MEMORY_KIB} (19 MiB, OWASP's minimum for argon2id)",
                self.argon2_memory_kib
            ));
        }
        Ok(())
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: None,
            jwt_keys: Vec::new(),
            signing_kid: None,
            revocation_check_ttl_ms: 2_000,
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

/// Direct messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingSettings {
    /// Most members a conversation may have, its creator included (2–1000).
    pub max_group_members: usize,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        MessagingSettings {
            max_group_members: 50,
        }
    }
}

impl MessagingSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=1000).contains(&self.max_group_members) {
            return Err(format!(
                "messaging.max_group_members is {}; it must be between 2 and 1000",
                self.max_group_members
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlSettings {
    /// Deepest selection nesting accepted (`{ me { id } }` is 2; introspection is exempt).
    pub max_depth: usize,
    /// Largest async-graphql complexity accepted (a backstop behind `max_cost`).
    pub max_complexity: usize,
    /// Most fields one selection set may select.
    pub max_fields_per_level: usize,
    /// Most aliased fields in one operation (fragments counted as often as they are spread).
    pub max_aliases: usize,
    /// Most root fields in one query (mutations are capped at 10 regardless).
    pub max_root_fields: usize,
    /// Largest estimated cost of one operation (objects 1, mutations 10, lists × page size).
    pub max_cost: u64,
    /// Cost points each account (or client address, for anonymous requests) may spend per
    /// `cost_budget_window_secs`; 0 turns the budget off.
    pub cost_budget_per_hour: u64,
    /// Length of a cost budget window.
    pub cost_budget_window_secs: u64,
    /// Whether `__schema` / `__type` introspection is served.
    pub introspection: bool,
    /// Automatic persisted queries remembered per node.
    pub apq_cache_entries: u64,
    /// Largest `variables` object, in bytes of JSON (413 above).
    pub max_variables_bytes: usize,
    /// Largest total size of a `/graphql` request's headers, names and values (431 above).
    pub max_header_bytes: usize,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        let limits = nova_graphql::SchemaLimits::default();
        let query = nova_gateway::QueryLimitsConfig::default();
        GraphqlSettings {
            max_depth: limits.max_depth,
            max_complexity: limits.max_complexity,
            max_fields_per_level: query.caps.max_fields_per_level,
            max_aliases: query.caps.max_aliases,
            max_root_fields: query.caps.max_root_fields,
            max_cost: query.caps.max_cost,
            cost_budget_per_hour: query.budget_points,
            cost_budget_window_secs: query.budget_window.as_secs(),
            introspection: limits.introspection,
            apq_cache_entries: query.apq_cache_entries,
            max_variables_bytes: query.max_variables_bytes,
            max_header_bytes: query.max_header_bytes,
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

/// Rate limits (GCRA: a steady rate plus a burst a quiet client may spend at once). See
/// docs/operations/limits.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Turns every rate limit on or off.
    pub enabled: bool,
    /// Steady rate of `/graphql` requests per client address (IPv6: per /64).
    pub per_ip_per_second: u32,
    /// Requests a quiet client address may send at once.
    pub per_ip_burst: u32,
    /// Steady rate of `/graphql` requests per authenticated account.
    pub per_account_per_second: u32,
    /// Requests a quiet account may send at once.
    pub per_account_burst: u32,
    /// `signIn` attempts per minute, counted per client address and, separately, per login.
    pub sign_in_per_minute: u32,
    /// `signIn` attempts allowed at once (per address and per login).
    pub sign_in_burst: u32,
    /// `register` attempts per minute, counted per client address and, separately, per username.
    pub register_per_minute: u32,
    /// `register` attempts allowed at once (per address and per username).
    pub register_burst: u32,
    /// Write mutations (createPost, editPost, deletePost, likePost, unlikePost, follow,
    /// unfollow, block, unblock, mute, unmute, updateProfile) per account per hour.
    pub writes_per_hour: u32,
    /// Write mutations an account may run at once.
    pub writes_burst: u32,
    /// Proxies (CIDR blocks or single addresses) whose `Forwarded` / `X-Forwarded-For` headers
    /// name the client. Requests from any other peer are charged to the peer itself.
    pub trusted_proxies: Vec<String>,
    /// `redis://host:port/db`: share the buckets across nodes through Redis. Unset: each node
    /// limits on its own. Redacted when printed.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key; nodes sharing quotas use the same prefix.
    pub redis_key_prefix: String,
    /// Longest wait for Redis before a check falls back to the node's own limiter.
    pub redis_timeout_ms: u64,
    /// How often idle in-process buckets are dropped.
    pub sweep_interval_secs: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            per_ip_per_second: 100,
            per_ip_burst: 10,
            per_account_per_second: 100,
            per_account_burst: 10,
            sign_in_per_minute: 10,
            sign_in_burst: 5,
            register_per_minute: 10,
            register_burst: 5,
            writes_per_hour: 300,
            writes_burst: 50,
            trusted_proxies: Vec::new(),
            redis_url: None,
            redis_key_prefix: "nova:rl".into(),
            redis_timeout_ms: 50,
            sweep_interval_secs: 10,
        }
    }
}

impl RateLimitSettings {
    /// Rejects zero rates and bursts and trusted proxies that are not addresses or CIDR blocks.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("per_ip_per_second", self.per_ip_per_second),
            ("per_ip_burst", self.per_ip_burst),
            ("per_account_per_second", self.per_account_per_second),
            ("per_account_burst", self.per_account_burst),
            ("sign_in_per_minute", self.sign_in_per_minute),
            ("sign_in_burst", self.sign_in_burst),
            ("register_per_minute", self.register_per_minute),
            ("register_burst", self.register_burst),
            ("writes_per_hour", self.writes_per_hour),
            ("writes_burst", self.writes_burst),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!(
                    "rate_limit.{name} is 0; it must be at least 1 (set rate_limit.enabled = false to turn limits off)"
                ));
            }
        }
        for entry in &self.trusted_proxies {
            nova_gateway::rate_limit::parse_trusted_proxy(entry)
                .map_err(|e| format!("rate_limit.trusted_proxies: {e}"))?;
        }
        Ok(())
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
        self.auth.validate(self.profile)?;
        self.rate_limit.validate()?;
        self.events.validate()?;
        self.messaging.validate()?;
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
    fn messaging_group_cap_is_validated_when_loading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        assert_eq!(Settings::default().messaging.max_group_members, 50);
        std::fs::write(&path, "[messaging]\nmax_group_members = 3\n").expect("write");
        let settings = Settings::load(&path, true, &CliOverrides::default()).expect("valid");
        assert_eq!(settings.messaging.max_group_members, 3);
        std::fs::write(&path, "[messaging]\nmax_group_members = 1\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("too small");
        assert!(error.to_string().contains("max_group_members"), "{error}");
    }

    #[test]
    fn rate_limit_settings_are_validated_when_loading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        std::fs::write(
            &path,
            "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\", \"fd00::/8\"]\nsign_in_per_minute = 3\n",
        )
        .expect("write");
        let settings = Settings::load(&path, true, &CliOverrides::default()).expect("valid");
        assert_eq!(settings.rate_limit.sign_in_per_minute, 3);
        assert_eq!(settings.rate_limit.per_ip_per_second, 100);

        std::fs::write(&path, "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]\n")
            .expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("cidr");
        assert!(error.to_string().contains("trusted_proxies"), "{error}");

        std::fs::write(&path, "[rate_limit]\nwrites_burst = 0\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("zero");
        assert!(error.to_string().contains("writes_burst"), "{error}");

        std::fs::write(&path, "[rate_limit]\nper_ip_per_sec = 5\n").expect("write");
        let error = Settings::load(&path, true, &CliOverrides::default()).expect_err("unknown");
        assert!(error.to_string().contains("per_ip_per_sec"), "{error}");
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

    fn load_toml(text: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nova.toml");
        std::fs::write(&path, text).expect("write");
        Settings::load(&path, true, &CliOverrides::default()).map_err(|e| e.to_string())
    }

    const STRONG: &str = "9f2c4e7a1b8d3f6052c9e4a7b1d8f3c6";
    const STRONG_2: &str = "Zq8!rT3#vW6$yB1%nM4^kL7&hJ0*gF2(";

    #[test]
    fn jwt_keys_rotate_under_key_ids_and_are_redacted() {
        let settings = load_toml(&format!(
            "[auth]\nsigning_kid = \"2026-11\"\njwt_keys = [{{ kid = \"2026-10\", secret = \"{STRONG}\" }}, {{ kid = \"2026-11\", secret = \"{STRONG_2}\" }}]\n"
        ))
        .expect("valid");
        assert_eq!(
            settings.auth.resolved_signing_kid().as_deref(),
            Ok("2026-11")
        );
        let shown = settings.to_redacted_toml();
        assert!(
            !shown.contains(STRONG) && !shown.contains(STRONG_2),
            "{shown}"
        );
        assert!(shown.contains("2026-10"), "{shown}");

        // One key signs by default; several need signing_kid, which must name one of them.
        let one = load_toml(&format!(
            "[auth]\njwt_keys = [{{ kid = \"k\", secret = \"{STRONG}\" }}]\n"
        ))
        .expect("valid");
        assert_eq!(one.auth.resolved_signing_kid().as_deref(), Ok("k"));
        let error = load_toml(&format!(
            "[auth]\njwt_keys = [{{ kid = \"a\", secret = \"{STRONG}\" }}, {{ kid = \"b\", secret = \"{STRONG_2}\" }}]\n"
        ))
        .expect_err("ambiguous");
        assert!(error.contains("signing_kid"), "{error}");
        let error = load_toml(&format!(
            "[auth]\nsigning_kid = \"c\"\njwt_keys = [{{ kid = \"a\", secret = \"{STRONG}\" }}]\n"
        ))
        .expect_err("unknown signing kid");
        assert!(error.contains("\"c\""), "{error}");
        // Duplicate ids (the single secret is `default`), short secrets, bad ids.
        let error = load_toml(&format!(
            "[auth]\njwt_secret = \"{STRONG}\"\njwt_keys = [{{ kid = \"default\", secret = \"{STRONG_2}\" }}]\n"
        ))
        .expect_err("duplicate");
        assert!(error.contains("twice"), "{error}");
        let error = load_toml("[auth]\njwt_keys = [{ kid = \"a\", secret = \"short\" }]\n")
            .expect_err("short");
        assert!(
            error.contains("32 bytes") && !error.contains("short\""),
            "{error}"
        );
        let error = load_toml(&format!(
            "[auth]\njwt_keys = [{{ kid = \"a b\", secret = \"{STRONG}\" }}]\n"
        ))
        .expect_err("bad kid");
        assert!(error.contains("key id"), "{error}");
    }

    #[test]
    fn production_refuses_missing_or_weak_secrets_and_cheap_argon2() {
        let error = load_toml("profile = \"production\"\n").expect_err("no secret");
        assert!(
            error.contains("production") && error.contains("jwt_secret"),
            "{error}"
        );
        let weak = "a".repeat(40);
        let error = load_toml(&format!(
            "profile = \"production\"\n[auth]\njwt_secret = \"{weak}\"\n"
        ))
        .expect_err("weak");
        assert!(
            error.contains("too weak") && !error.contains(&weak),
            "{error}"
        );
        let error = load_toml(
            "profile = \"production\"\n[auth]\njwt_keys = [{ kid = \"k\", secret = \"abcabcabcabcabcabcabcabcabcabcabcabc\" }]\n",
        )
        .expect_err("repetitive key");
        assert!(error.contains("distinct"), "{error}");
        let error = load_toml(&format!(
            "profile = \"production\"\n[auth]\njwt_secret = \"{STRONG}\"\nargon2_memory_kib = 4096\n"
        ))
        .expect_err("cheap argon2");
        assert!(error.contains("argon2_memory_kib"), "{error}");
        let fine = load_toml(&format!(
            "profile = \"production\"\n[auth]\njwt_secret = \"{STRONG}\"\n"
        ))
        .expect("strong secret, default argon2");
        assert_eq!(fine.profile, Profile::Production);
        // Development keeps generating a secret and accepts repetitive ones of 32 bytes.
        load_toml("").expect("development without a secret");
        load_toml(&format!("[auth]\njwt_secret = \"{weak}\"\n")).expect("development, weak");
    }
}
