//! Plan checks for the hot Postgres queries: on a database with enough rows that a bad plan would
//! show, every hot query must use an index and never scan `posts` sequentially.
//!
//! Runs when `TEST_DATABASE=postgres` (CI sets it); without it the test says so and checks nothing.

use sqlx::Row as _;

use super::events::{BACKLOG_SQL, CLAIM_SQL, KEY_ORDER_SQL};
use super::posts::{author_posts_sql, home_feed_sql, replies_sql};
use super::{PgStore, PostgresSettings};
use crate::rows::USER_COLUMNS;

const USERS: i64 = 2_000;
const POSTS: i64 = 200_000;

async fn seeded_store() -> Option<(PgStore, String)> {
    let Some(url) = super::test_database_url("plans") else {
        eprintln!("skipping plan checks: set TEST_DATABASE=postgres to run them");
        return None;
    };
    PgStore::create_database_if_missing(&url)
        .await
        .expect("create database");
    let store = PgStore::open(&PostgresSettings {
        url: url.clone(),
        max_connections: 4,
        acquire_timeout_ms: 5_000,
        statement_timeout_ms: 120_000,
        reject_above_ratio: 1.0,
        saturation_grace_ms: 0,
    })
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    // Posts are spread over users with a skew (user id modulo), 10 % of them replies; every user
    // follows 30 others; a few likes, blocks and mutes so the anti-joins have rows to look at.
    let seed = format!(
        "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
           SELECT g, 'user' || g, 'user' || g || '@example.test', 'x', 0, 0 FROM generate_series(1, {USERS}) g; \
         INSERT INTO user_stats (user_id) SELECT id FROM users; \
         INSERT INTO posts (id, author_id, body, visibility, reply_to_id, created_at) \
           SELECT g, 1 + (g * 7919) % {USERS}, 'post ' || g, CASE WHEN g % 5 = 0 THEN 'FOLLOWERS' ELSE 'PUBLIC' END, \
                  CASE WHEN g % 10 = 0 AND g > 1000 THEN g - 1000 END, g FROM generate_series(1, {POSTS}) g; \
         INSERT INTO post_stats (post_id) SELECT id FROM posts; \
         INSERT INTO follows (follower_id, followee_id, id, created_at) \
           SELECT u, 1 + (u + k * 37) % {USERS}, u * 100 + k, 0 FROM generate_series(1, {USERS}) u, generate_series(1, 30) k \
           WHERE 1 + (u + k * 37) % {USERS} <> u ON CONFLICT DO NOTHING; \
         INSERT INTO likes (post_id, user_id, created_at) SELECT g, 1 + g % {USERS}, 0 FROM generate_series(1, 50000) g; \
         INSERT INTO blocks (blocker_id, blocked_id, created_at) SELECT u, 1 + (u + 1) % {USERS}, 0 FROM generate_series(1, {USERS}, 50) u; \
         INSERT INTO mutes (muter_id, muted_id, created_at) SELECT u, 1 + (u + 2) % {USERS}, 0 FROM generate_series(1, {USERS}, 40) u; \
         ANALYZE;"
    );
    sqlx::raw_sql(&seed)
        .execute(store.pool())
        .await
        .expect("seed");
    Some((store, url))
}

async fn plan(
    store: &PgStore,
    sql: &str,
    subject: i64,
    cursor: Option<i64>,
    viewer: Option<i64>,
) -> String {
    let rows = sqlx::query(&format!("EXPLAIN {sql}"))
        .bind(subject)
        .bind(cursor)
        .bind(viewer)
        .bind(21_i64)
        .fetch_all(store.pool())
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn hot_queries_use_indexes_and_never_scan_posts_sequentially() {
    let Some((store, url)) = seeded_store().await else {
        return;
    };
    let followers_sql = format!(
        "SELECT f.id AS edge_id, {USER_COLUMNS} FROM follows f JOIN users u ON u.id = f.follower_id \
         LEFT JOIN user_stats s ON s.user_id = u.id WHERE f.followee_id = $1 AND f.id < COALESCE($2, 9223372036854775807) \
         AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $3 AND b.blocked_id = u.id) \
         OR (b.blocker_id = u.id AND b.blocked_id = $3)) ORDER BY f.id DESC LIMIT $4"
    );
    let cases = [
        ("home feed, first page", home_feed_sql(), 42, None, Some(42)),
        (
            "home feed, deep page",
            home_feed_sql(),
            42,
            Some(POSTS / 3),
            Some(42),
        ),
        (
            "author timeline, anonymous",
            author_posts_sql(),
            7,
            None,
            None,
        ),
        (
            "author timeline, viewer",
            author_posts_sql(),
            7,
            Some(POSTS / 2),
            Some(42),
        ),
        ("replies", replies_sql(), 5_000, None, Some(42)),
        ("followers", followers_sql, 7, None, Some(42)),
    ];
    let mut failures = Vec::new();
    for (name, sql, subject, cursor, viewer) in cases {
        let plan = plan(&store, &sql, subject, cursor, viewer).await;
        println!("-- {name}\n{plan}\n");
        if plan.contains("Seq Scan on posts")
            || plan.contains("Seq Scan on follows")
            || !plan.contains("Index")
        {
            failures.push(format!("{name}:\n{plan}"));
        }
    }
    store.close().await;
    PgStore::drop_database(&url).await.expect("drop database");
    assert!(
        failures.is_empty(),
        "queries without index plans:\n{}",
        failures.join("\n\n")
    );
}

/// The relay's queries run every poll and after every commit, on an outbox whose history only
/// grows until pruned: they must use the partial index `outbox_unsent` (its size is the unsent
/// rows), never scan the table. 200,000 rows of which 300 unsent, as on a node after a drain.
#[tokio::test]
async fn relay_queries_use_the_unsent_index_whatever_the_outbox_history() {
    let Some(url) = super::test_database_url("outboxplans") else {
        eprintln!("skipping plan checks: set TEST_DATABASE=postgres to run them");
        return;
    };
    PgStore::create_database_if_missing(&url)
        .await
        .expect("create database");
    let store = PgStore::open(&PostgresSettings {
        url: url.clone(),
        max_connections: 2,
        acquire_timeout_ms: 5_000,
        statement_timeout_ms: 120_000,
        reject_above_ratio: 1.0,
        saturation_grace_ms: 0,
    })
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    sqlx::raw_sql(
        "INSERT INTO outbox (id, topic, key, payload, created_at, sent_at) \
           SELECT g, 'feed', g % 5000, '\\x00', g, CASE WHEN g <= 199700 THEN g END \
           FROM generate_series(1, 200000) g; \
         ANALYZE;",
    )
    .execute(store.pool())
    .await
    .expect("seed");
    let (claim_sql, key_order_sql, backlog_sql) = (
        format!("EXPLAIN {CLAIM_SQL}"),
        format!("EXPLAIN {KEY_ORDER_SQL}"),
        format!("EXPLAIN {BACKLOG_SQL}"),
    );
    let claim = sqlx::query(&claim_sql).bind(256_i64);
    let key_order = sqlx::query(&key_order_sql)
        .bind(vec![1_i64, 2, 3])
        .bind(199_956_i64);
    let backlog = sqlx::query(&backlog_sql);
    let mut failures = Vec::new();
    for (name, query) in [
        ("claim", claim),
        ("per-key order", key_order),
        ("backlog", backlog),
    ] {
        let plan = query
            .fetch_all(store.pool())
            .await
            .expect("explain")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n");
        println!("-- {name}\n{plan}\n");
        if !plan.contains("outbox_unsent") || plan.contains("Seq Scan") {
            failures.push(format!("{name}:\n{plan}"));
        }
    }
    store.close().await;
    PgStore::drop_database(&url).await.expect("drop database");
    assert!(
        failures.is_empty(),
        "relay queries without the unsent index:\n{}",
        failures.join("\n\n")
    );
}
