//! Bulk loading of a planned dataset into Postgres.
//!
//! Per-row port calls are far too slow for 1M posts and millions of follows and likes, so the
//! rows go in with `COPY … FROM STDIN` (text format) on one connection. The schema is the one
//! the migrations define (`PgStore::migrate` runs first); only the columns the migrations
//! declare are written, and the counter tables (`user_stats`, `post_stats`) are computed from
//! the planned rows exactly as the ports would have maintained them.
//!
//! Loading into indexed tables with foreign keys costs a b-tree insert per index and an FK probe
//! per row, so for the duration of the load the primary keys, unique constraints, secondary
//! indexes and foreign keys of the loaded tables are dropped and then recreated from their own
//! catalog definitions (`pg_get_constraintdef` / `pg_get_indexdef`). The catalog fingerprint
//! before and after is compared, re-adding the constraints re-validates every row (uniqueness,
//! references), and the counters are re-checked with SQL against the rows. Then
//! `VACUUM (ANALYZE)`.
//!
//! A load that fails midway leaves the database without some constraints: re-run with
//! `--reset`, which drops and recreates the database.

use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use nova_db::{PgStore, PostgresSettings};
use serde_json::json;
use sqlx::{Connection as _, PgConnection};

use crate::seed::Plan;

/// Tables the loader writes (and strips of constraints and indexes while it does).
const LOADED: &[&str] = &[
    "users",
    "user_stats",
    "follows",
    "posts",
    "post_stats",
    "likes",
];
/// Every table the migrations create; all must be empty before loading.
const ALL_TABLES: &[&str] = &[
    "users",
    "user_stats",
    "sessions",
    "follows",
    "blocks",
    "mutes",
    "posts",
    "post_stats",
    "post_versions",
    "likes",
];
/// Bytes buffered before each `COPY` data message.
const CHUNK: usize = 1 << 20;

/// A constraint or index as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct SchemaObject {
    table_name: String,
    name: String,
    /// `p`, `u`, `f` for constraints, `i` for a standalone index.
    kind: String,
    definition: String,
}

const CONSTRAINTS_SQL: &str =
    "SELECT c.conrelid::regclass::text AS table_name, c.conname::text AS name, \
       c.contype::text AS kind, pg_get_constraintdef(c.oid) AS definition \
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
     WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f') AND c.conrelid <> 0 \
     ORDER BY 1, 2";
const INDEXES_SQL: &str = "SELECT t.relname::text AS table_name, i.relname::text AS name, \
       'i'::text AS kind, pg_get_indexdef(x.indexrelid) AS definition \
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
       JOIN pg_namespace n ON n.oid = t.relnamespace \
     WHERE n.nspname = 'public' AND NOT EXISTS ( \
       SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x')) \
     ORDER BY 1, 2";

async fn schema(conn: &mut PgConnection) -> anyhow::Result<Vec<SchemaObject>> {
    let mut objects: Vec<SchemaObject> = sqlx::query_as(CONSTRAINTS_SQL)
        .fetch_all(&mut *conn)
        .await
        .context("read constraints")?;
    let indexes: Vec<SchemaObject> = sqlx::query_as(INDEXES_SQL)
        .fetch_all(&mut *conn)
        .await
        .context("read indexes")?;
    objects.extend(indexes);
    Ok(objects)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn exec(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("run `{sql}`"))?;
    Ok(())
}

/// Appends `value` in `COPY` text format.
fn push_text(buf: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

/// Streams `items` into `statement` (a `COPY … FROM STDIN`), one `write_row` per item.
async fn copy_table<T>(
    conn: &mut PgConnection,
    statement: &str,
    items: impl IntoIterator<Item = T>,
    mut write_row: impl FnMut(&mut Vec<u8>, T) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut copy = conn
        .copy_in_raw(statement)
        .await
        .with_context(|| format!("start `{statement}`"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    for item in items {
        write_row(&mut buf, item).context("format row")?;
        if buf.len() >= CHUNK {
            copy.send(std::mem::replace(
                &mut buf,
                Vec::with_capacity(CHUNK + 4096),
            ))
            .await
            .with_context(|| format!("send `{statement}`"))?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf)
            .await
            .with_context(|| format!("send `{statement}`"))?;
    }
    copy.finish()
        .await
        .with_context(|| format!("finish `{statement}`"))
}

fn secs(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 100.0).round() / 100.0
}

/// `url` with any password replaced, for the manifest.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Creates (or, with `reset`, recreates) the database, migrates it and loads `plan`.
/// Returns the `database` object of the manifest.
pub async fn load(
    url: &str,
    reset: bool,
    plan: &Plan,
    password_hash: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut phases = serde_json::Map::new();
    let t = Instant::now();
    if reset {
        PgStore::drop_database(url).await?;
    }
    PgStore::create_database_if_missing(url).await?;
    let store = PgStore::open(&PostgresSettings {
        url: url.to_owned(),
        max_connections: 2,
        acquire_timeout_ms: 60_000,
        statement_timeout_ms: 600_000,
        reject_above_ratio: 1.0,
        saturation_grace_ms: 0,
    })
    .await?;
    store.migrate().await?;
    store.close().await;
    phases.insert("create_and_migrate".into(), json!(secs(t)));

    let mut conn = PgConnection::connect(url)
        .await
        .context("connect to postgres")?;
    // Loading only: a crash means re-seeding.
    exec(
        &mut conn,
        "SET synchronous_commit = off; SET statement_timeout = 0; SET maintenance_work_mem = '1GB'",
    )
    .await?;
    for table in ALL_TABLES {
        let has_rows: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("look into {table}"))?;
        anyhow::ensure!(
            !has_rows,
            "table {table} already holds rows: pass --reset to drop and recreate the database"
        );
    }

    // Strip constraints and indexes: foreign keys everywhere first (some reference the loaded
    // tables' keys), then the loaded tables' keys and indexes.
    let t = Instant::now();
    let before = schema(&mut conn).await?;
    let loaded = |o: &SchemaObject| LOADED.contains(&o.table_name.as_str());
    let foreign: Vec<&SchemaObject> = before.iter().filter(|o| o.kind == "f").collect();
    let keys: Vec<&SchemaObject> = before
        .iter()
        .filter(|o| (o.kind == "p" || o.kind == "u") && loaded(o))
        .collect();
    let indexes: Vec<&SchemaObject> = before
        .iter()
        .filter(|o| o.kind == "i" && loaded(o))
        .collect();
    for o in foreign.iter().chain(&keys) {
        exec(
            &mut conn,
            &format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                quote_ident(&o.table_name),
                quote_ident(&o.name)
            ),
        )
        .await?;
    }
    for o in &indexes {
        exec(&mut conn, &format!("DROP INDEX {}", quote_ident(&o.name))).await?;
    }
    phases.insert("drop_constraints".into(), json!(secs(t)));

    // Counters, as the ports maintain them.
    let n = plan.users.len();
    let mut following = vec![0i64; n];
    let mut followers = vec![0i64; n];
    let mut posts_by = vec![0i64; n];
    for f in &plan.follows {
        following[f.follower] += 1;
        followers[f.followee] += 1;
    }
    for p in &plan.posts {
        posts_by[p.author] += 1;
    }
    let mut like_count = vec![0i64; plan.posts.len()];
    let mut reply_count = vec![0i64; plan.posts.len()];
    for l in &plan.likes {
        like_count[l.post] += 1;
    }
    for p in &plan.posts {
        if let Some(parent) = p.reply_to {
            reply_count[parent] += 1;
        }
    }

    let mut copied = serde_json::Map::new();
    let t = Instant::now();
    let rows = copy_table(
        &mut conn,
        "COPY users (id, username, email, password_hash, created_at, updated_at) FROM STDIN",
        &plan.users,
        |buf, u| {
            write!(buf, "{}\t", u.id.0)?;
            push_text(buf, &u.username);
            buf.push(b'\t');
            push_text(buf, &u.username);
            buf.extend_from_slice(b"@example.test\t");
            push_text(buf, password_hash);
            writeln!(buf, "\t{}\t{}", u.created_at, u.created_at)
        },
    )
    .await?;
    copied.insert("users".into(), json!(rows));
    let rows = copy_table(
        &mut conn,
        "COPY user_stats (user_id, follower_count, following_count, post_count) FROM STDIN",
        plan.users.iter().enumerate(),
        |buf, (i, u)| {
            writeln!(
                buf,
                "{}\t{}\t{}\t{}",
                u.id.0, followers[i], following[i], posts_by[i]
            )
        },
    )
    .await?;
    copied.insert("user_stats".into(), json!(rows));
    phases.insert("copy_users".into(), json!(secs(t)));

    let t = Instant::now();
    let rows = copy_table(
        &mut conn,
        "COPY follows (follower_id, followee_id, id, created_at) FROM STDIN",
        &plan.follows,
        |buf, f| {
            writeln!(
                buf,
                "{}\t{}\t{}\t{}",
                plan.users[f.follower].id.0, plan.users[f.followee].id.0, f.id.0, f.at
            )
        },
    )
    .await?;
    copied.insert("follows".into(), json!(rows));
    phases.insert("copy_follows".into(), json!(secs(t)));

    let t = Instant::now();
    let rows = copy_table(
        &mut conn,
        "COPY posts (id, author_id, body, visibility, reply_to_id, created_at) FROM STDIN",
        &plan.posts,
        |buf, p| {
            write!(buf, "{}\t{}\t", p.id.0, plan.users[p.author].id.0)?;
            push_text(buf, &p.body);
            let visibility = if p.followers_only {
                "FOLLOWERS"
            } else {
                "PUBLIC"
            };
            match p.reply_to {
                Some(parent) => {
                    writeln!(buf, "\t{visibility}\t{}\t{}", plan.posts[parent].id.0, p.at)
                }
                None => writeln!(buf, "\t{visibility}\t\\N\t{}", p.at),
            }
        },
    )
    .await?;
    copied.insert("posts".into(), json!(rows));
    let rows = copy_table(
        &mut conn,
        "COPY post_stats (post_id, like_count, reply_count) FROM STDIN",
        plan.posts.iter().enumerate(),
        |buf, (i, p)| writeln!(buf, "{}\t{}\t{}", p.id.0, like_count[i], reply_count[i]),
    )
    .await?;
    copied.insert("post_stats".into(), json!(rows));
    phases.insert("copy_posts".into(), json!(secs(t)));

    let t = Instant::now();
    let rows = copy_table(
        &mut conn,
        "COPY likes (post_id, user_id, created_at) FROM STDIN",
        &plan.likes,
        |buf, l| {
            writeln!(
                buf,
                "{}\t{}\t{}",
                plan.posts[l.post].id.0, plan.users[l.user].id.0, l.at
            )
        },
    )
    .await?;
    copied.insert("likes".into(), json!(rows));
    phases.insert("copy_likes".into(), json!(secs(t)));

    // Recreate keys, then foreign keys (which need the keys), then indexes, each from its own
    // catalog definition; adding the constraints validates every loaded row.
    let t = Instant::now();
    for o in keys.iter().chain(&foreign) {
        exec(
            &mut conn,
            &format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                quote_ident(&o.table_name),
                quote_ident(&o.name),
                o.definition
            ),
        )
        .await?;
    }
    phases.insert("add_keys_and_foreign_keys".into(), json!(secs(t)));
    let t = Instant::now();
    for o in &indexes {
        exec(&mut conn, &o.definition).await?;
    }
    phases.insert("create_indexes".into(), json!(secs(t)));
    let after = schema(&mut conn).await?;
    anyhow::ensure!(
        after == before,
        "schema after loading differs from the migrated schema:\nbefore: {before:#?}\nafter: {after:#?}"
    );

    // Counters against the rows.
    let t = Instant::now();
    let mut mismatches = serde_json::Map::new();
    for (name, sql) in [
        (
            "follower_count",
            "SELECT count(*) FROM user_stats s LEFT JOIN (SELECT followee_id AS u, count(*) AS c FROM follows GROUP BY 1) x \
             ON x.u = s.user_id WHERE s.follower_count <> COALESCE(x.c, 0)",
        ),
        (
            "following_count",
            "SELECT count(*) FROM user_stats s LEFT JOIN (SELECT follower_id AS u, count(*) AS c FROM follows GROUP BY 1) x \
             ON x.u = s.user_id WHERE s.following_count <> COALESCE(x.c, 0)",
        ),
        (
            "post_count",
            "SELECT count(*) FROM user_stats s LEFT JOIN (SELECT author_id AS u, count(*) AS c FROM posts \
             WHERE deleted_at IS NULL GROUP BY 1) x ON x.u = s.user_id WHERE s.post_count <> COALESCE(x.c, 0)",
        ),
        (
            "like_count",
            "SELECT count(*) FROM post_stats s LEFT JOIN (SELECT post_id AS p, count(*) AS c FROM likes GROUP BY 1) x \
             ON x.p = s.post_id WHERE s.like_count <> COALESCE(x.c, 0)",
        ),
        (
            "reply_count",
            "SELECT count(*) FROM post_stats s LEFT JOIN (SELECT reply_to_id AS p, count(*) AS c FROM posts \
             WHERE reply_to_id IS NOT NULL AND deleted_at IS NULL GROUP BY 1) x ON x.p = s.post_id \
             WHERE s.reply_count <> COALESCE(x.c, 0)",
        ),
        (
            "users_without_stats",
            "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM user_stats s WHERE s.user_id = u.id)",
        ),
        (
            "posts_without_stats",
            "SELECT count(*) FROM posts p WHERE NOT EXISTS (SELECT 1 FROM post_stats s WHERE s.post_id = p.id)",
        ),
    ] {
        let bad: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("check {name}"))?;
        anyhow::ensure!(bad == 0, "{bad} rows with a wrong {name}");
        mismatches.insert(name.into(), json!(bad));
    }
    phases.insert("verify_counters".into(), json!(secs(t)));

    let t = Instant::now();
    exec(&mut conn, "VACUUM (ANALYZE)").await?;
    phases.insert("vacuum_analyze".into(), json!(secs(t)));

    let mut counts = serde_json::Map::new();
    for (name, sql) in [
        ("users", "SELECT COUNT(*) FROM users"),
        ("user_stats", "SELECT COUNT(*) FROM user_stats"),
        ("follows", "SELECT COUNT(*) FROM follows"),
        ("posts", "SELECT COUNT(*) FROM posts"),
        (
            "replies",
            "SELECT COUNT(*) FROM posts WHERE reply_to_id IS NOT NULL",
        ),
        (
            "followers_only_posts",
            "SELECT COUNT(*) FROM posts WHERE visibility = 'FOLLOWERS'",
        ),
        ("post_stats", "SELECT COUNT(*) FROM post_stats"),
        ("likes", "SELECT COUNT(*) FROM likes"),
        ("blocks", "SELECT COUNT(*) FROM blocks"),
        ("mutes", "SELECT COUNT(*) FROM mutes"),
        ("sessions", "SELECT COUNT(*) FROM sessions"),
    ] {
        let count: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("count {name}"))?;
        counts.insert(name.to_owned(), json!(count));
    }
    counts.insert("dm_conversations".to_owned(), json!(0));
    counts.insert("dm_messages".to_owned(), json!(0));
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await
        .context("database size")?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .context("server version")?;
    conn.close().await.context("close connection")?;
    Ok(json!({
        "backend": "postgres",
        "url": redact_url(url),
        "server_version": version,
        "rows": counts,
        "copied": copied,
        "database_bytes": bytes,
        "load": "COPY FROM STDIN (text) on one connection, synchronous_commit=off; keys, unique constraints, \
                 secondary indexes and foreign keys of the loaded tables dropped during COPY and recreated \
                 from their catalog definitions (fingerprint verified identical); then VACUUM (ANALYZE)",
        "counter_mismatches": mismatches,
        "phases_secs": phases,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_is_escaped() {
        let mut buf = Vec::new();
        push_text(&mut buf, "a\tb\\c\nd\re");
        assert_eq!(buf, b"a\\tb\\\\c\\nd\\re");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://me:secret@127.0.0.1:5432/db"),
            "postgres://me:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
    }

    /// Runs when `TEST_DATABASE=postgres` (as the nova-db plan checks): seeds a tiny dataset
    /// into a scratch database, checks rows and counters, and drops it.
    #[tokio::test]
    async fn seeds_a_tiny_dataset_into_postgres() {
        if std::env::var("TEST_DATABASE").ok().as_deref() != Some("postgres") {
            eprintln!("skipping: set TEST_DATABASE=postgres to run it");
            return;
        }
        let base = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let url = format!(
            "{}/nova_bench_test_{}",
            base.trim_end_matches('/'),
            std::process::id()
        );
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        let spec = crate::seed::DatasetSpec {
            users: 60,
            posts: 400,
            mean_following: 8.0,
            likes: 900,
            ..crate::seed::DatasetSpec::s()
        };
        let target = crate::seed::Target::Postgres {
            url: url.clone(),
            reset: true,
        };
        let result = crate::seed::run(&spec, &target, &dir, 3, 3600).await;
        // A second load into the now non-empty database must refuse.
        let again = crate::seed::run(
            &spec,
            &crate::seed::Target::Postgres {
                url: url.clone(),
                reset: false,
            },
            &temp.path().join("again"),
            3,
            3600,
        )
        .await;
        PgStore::drop_database(&url).await.expect("drop database");
        result.expect("seed");
        assert!(again.is_err(), "loading twice must fail");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
                .expect("json");
        assert_eq!(manifest["database"]["rows"]["posts"], 400);
        assert_eq!(manifest["database"]["rows"]["likes"], 900);
        assert_eq!(
            manifest["database"]["rows"]["follows"],
            manifest["planned"]["follows"]
        );
    }
}
