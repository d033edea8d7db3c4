//! Schema migrations of the SQLite adapter: `migrate` is idempotent, `rollback` runs the down
//! scripts, and migrating again after a rollback restores the schema.

use std::path::Path;
use std::str::FromStr as _;

use nova_db::{SqliteSettings, SqliteStore, Synchronous};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection as _;

const TABLES: [&str; 10] = [
    "blocks",
    "follows",
    "likes",
    "mutes",
    "post_stats",
    "post_versions",
    "posts",
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
