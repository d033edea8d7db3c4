//! Schema migrations of both adapters: `migrate` is idempotent, `rollback` runs the down
//! scripts, and migrating again after a rollback restores the schema.

use std::path::Path;
use std::str::FromStr as _;

use nova_db::{SqliteSettings, SqliteStore, Synchronous};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection as _;

const TABLES: &[&str] = &[
    "blocks",
    "conversation_members",
    "conversations",
    "follows",
    "likes",
    "messages",
    "messaging_settings",
    "mutes",
    "notification_actors",
    "notification_preferences",
    "notifications",
    "outbox",
    "post_stats",
    "post_versions",
    "posts",
    "processed_events",
    "sessions",
    "user_stats",
    "users",
];

/// The number of SQLite up migrations shipped.
fn up_migrations() -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".up.sql"))
        })
        .count()
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&SqliteSettings {
        path: path.to_path_buf(),
        max_read_connections: 2,
        busy_timeout_ms: 5_000,
        acquire_timeout_ms: 5_000,
        synchronous: Synchronous::Normal,
        reject_above_ratio: 0.85,
        saturation_grace_ms: 100,
    })
    .await
    .expect("open store")
}

/// The application tables in the file, read through a separate connection.
async fn tables(path: &Path) -> Vec<String> {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .expect("options")
        .filename(path)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("connect");
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    conn.close().await.expect("close");
    names
}

#[tokio::test]
async fn migrate_is_idempotent_and_rollback_then_migrate_restores_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nova.db");
    let store = open(&path).await;
    assert!(
        store.check_ready().await.is_err(),
        "a fresh file is not ready"
    );

    store.migrate().await.expect("first migrate");
    store.migrate().await.expect("second migrate is a no-op");
    store.check_ready().await.expect("ready after migrate");
    assert_eq!(tables(&path).await, TABLES);

    store.rollback(1).await.expect("rollback one step");
    assert!(
        store.check_ready().await.is_err(),
        "not ready with a migration reverted"
    );
    if up_migrations() == 1 {
        assert_eq!(
            tables(&path).await,
            Vec::<String>::new(),
            "the only migration's down script drops every table"
        );
    }
    store.rollback(up_migrations()).await.expect("rollback all");
    assert_eq!(tables(&path).await, Vec::<String>::new());

    store.migrate().await.expect("migrate after rollback");
    store.check_ready().await.expect("ready again");
    assert_eq!(tables(&path).await, TABLES);
    store.close().await;

    // A new process (a new store on the same file) finds nothing left to do.
    let store = open(&path).await;
    store.migrate().await.expect("migrate on reopen");
    store.check_ready().await.expect("ready on reopen");
    assert_eq!(tables(&path).await, TABLES);
    store.close().await;
}

#[tokio::test]
async fn rollback_on_an_unmigrated_database_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nova.db");
    let store = open(&path).await;
    store.rollback(3).await.expect("nothing to revert");
    assert_eq!(tables(&path).await, Vec::<String>::new());
    store.migrate().await.expect("migrate");
    assert_eq!(tables(&path).await, TABLES);
    store.close().await;
}

/// Tables and indexes of the `public` schema of a Postgres database.
async fn pg_relations(store: &nova_db::PgStore) -> (Vec<String>, Vec<String>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("list tables");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes i WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("list indexes");
    (tables, indexes)
}

#[tokio::test]
async fn postgres_migrations_roll_back_one_by_one_and_apply_again() {
    let Some(url) = nova_db::postgres::test_database_url("migrations") else {
        eprintln!("skipping: set TEST_DATABASE=postgres to check the Postgres migrations");
        return;
    };
    nova_db::PgStore::create_database_if_missing(&url)
        .await
        .expect("create database");
    let store = nova_db::PgStore::open(&nova_db::PostgresSettings {
        url: url.clone(),
        max_connections: 2,
        acquire_timeout_ms: 5_000,
        statement_timeout_ms: 30_000,
        reject_above_ratio: 1.0,
        saturation_grace_ms: 0,
    })
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrate again is a no-op");
    store.check_ready().await.expect("ready");
    let (tables, indexes) = pg_relations(&store).await;
    assert_eq!(tables, TABLES.to_vec());
    assert!(
        indexes.contains(&"posts_author_id_id".to_owned()),
        "{indexes:?}"
    );

    let ups =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres"))
            .expect("migrations directory")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".up.sql"))
            })
            .count();
    // Each migration's rollback removes what it created (an index, or tables with theirs).
    let mut remaining = tables.len() + indexes.len();
    for step in 1..=ups {
        store.rollback(1).await.expect("rollback one step");
        let (t, i) = pg_relations(&store).await;
        assert!(
            t.len() + i.len() < remaining,
            "step {step} removed nothing: {t:?} {i:?}"
        );
        remaining = t.len() + i.len();
        assert!(
            store.check_ready().await.is_err(),
            "not ready with migrations missing"
        );
    }
    assert_eq!(pg_relations(&store).await, (Vec::new(), Vec::new()));
    store.migrate().await.expect("migrate after rollback");
    assert_eq!(pg_relations(&store).await, (tables, indexes));
    store.close().await;
    nova_db::PgStore::drop_database(&url)
        .await
        .expect("drop database");
}
