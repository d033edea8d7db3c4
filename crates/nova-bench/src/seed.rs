//! The deterministic dataset generator.
//!
//! Everything is planned first from one seeded ChaCha8 stream ([`plan`], pure and testable), then
//! written through the `SqliteStore` port methods (`insert_user`, `put_follow`, `insert_post`,
//! `put_like`) so the rows, counters and invariants are exactly those the application would have
//! written — or, for Postgres, bulk-loaded with `COPY` by [`crate::pg`] (same rows, counters
//! computed as the ports maintain them). Every kind of row is generated in time order and gets its id from its own
//! `IdGenerator::next_at(created_at)`, so ids stay time-ordered as in production.
//!
//! Shape (dataset S; M differs in sizes and in its Pareto follow degrees, see [`DatasetSpec::m`]): users are created over the 30 days before the window; posts are spread
//! uniformly over the 365-day window ending at [`WINDOW_END_MILLIS`] (a fixed instant, so the
//! same seed gives the same ids); follows per user are log-normal (mean 30) and followees are
//! picked Zipf-skewed by popularity, so a few accounts are followed by most users; post authors
//! are Zipf-skewed by activity; likes favour recent posts of popular authors.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Instant;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use nova_core::{Id, IdGenerator, UnixMillis};
use nova_db::{SqliteSettings, SqliteStore, Synchronous};
use nova_events::{DomainEvent, Envelope};
use nova_posts::{NewPost, PostBody, PostStore as _, Visibility};
use nova_users::store::{InsertUserOutcome, NewUser, UserStore as _};
use nova_users::{Argon2Params, AuthConfig, Email, GraphStore as _, TokenService, Username};
use rand::seq::SliceRandom as _;
use rand::{Rng, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::dist::{self, WeightedIndex};

/// The password of every generated account (one argon2id hash shared by all).
pub const PASSWORD: &str = "nova-bench-password";
/// End of the 365-day window: 2026-11-01T00:00:00Z.
pub const WINDOW_END_MILLIS: i64 = 1_793_491_200_000;
const DAY_MILLIS: i64 = 24 * 3600 * 1000;
/// Writes in flight at once; the store funnels them through its single writer connection.
const WRITE_CONCURRENCY: usize = 16;
/// Page size of the benchmarked home-feed query.
const FEED_PAGE: u64 = 20;

/// How many accounts each user follows, and how followees are picked.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum FollowModel {
    /// Log-normal out-degree (`mean_following`, `following_sigma`); followees drawn without
    /// replacement over all users, weighted by popularity (Efraimidis–Spirakis keys).
    /// O(users²): dataset S only.
    LogNormalExact,
    /// Pareto (power-law) out-degree `P(d > x) = (min / x)^alpha`, capped at `cap`; followees
    /// drawn from the popularity distribution, repeats rejected. O(follows): dataset M.
    Pareto { alpha: f64, min: f64, cap: usize },
}

/// The sizes and shape parameters of a dataset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub users: usize,
    pub posts: usize,
    pub follow_model: FollowModel,
    /// Factor follows and likes were scaled down by (1.0 = the dataset as specified).
    pub graph_scale: f64,
    /// Mean number of accounts a user follows (log-normal; nominal for `Pareto`).
    pub mean_following: f64,
    /// Shape of the log-normal out-degree.
    pub following_sigma: f64,
    /// Zipf exponent of followee popularity.
    pub popularity_zipf_s: f64,
    /// Zipf exponent of author activity.
    pub activity_zipf_s: f64,
    pub likes: usize,
    /// Share of posts that reply to an earlier post.
    pub reply_fraction: f64,
    /// Share of posts visible to followers only.
    pub followers_only_fraction: f64,
    /// Days the posts are spread over.
    pub days: i64,
    /// Likes favour posts younger than this many days (exponential decay).
    pub like_recency_days: f64,
}

impl DatasetSpec {
    /// Dataset S of `/work/shared/benchmarks.md`: 1k users, 10k posts, mean 30 follows, 50k likes.
    pub fn s() -> Self {
        DatasetSpec {
            name: "S",
            users: 1_000,
            posts: 10_000,
            follow_model: FollowModel::LogNormalExact,
            graph_scale: 1.0,
            mean_following: 30.0,
            following_sigma: 1.0,
            popularity_zipf_s: 1.1,
            activity_zipf_s: 0.8,
            likes: 50_000,
            reply_fraction: 0.10,
            followers_only_fraction: 0.10,
            days: 365,
            like_recency_days: 60.0,
        }
    }

    /// Dataset M of `/work/shared/benchmarks.md`: 100k users, 1M posts, power-law follows with
    /// mean ~150 capped at 5,000 followees, 5M likes. Pareto alpha 1.5 with minimum 56 gives a
    /// capped mean of ~150 and ~0.1 % of users at the cap; Zipf s = 1.1 popularity puts ~0.1 %
    /// of users above 10k followers.
    pub fn m() -> Self {
        DatasetSpec {
            name: "M",
            users: 100_000,
            posts: 1_000_000,
            follow_model: FollowModel::Pareto {
                alpha: 1.5,
                min: 56.0,
                cap: 5_000,
            },
            mean_following: 150.0,
            following_sigma: 0.0,
            likes: 5_000_000,
            ..DatasetSpec::s()
        }
    }

    /// This spec with follows and likes scaled by `factor` (0 < factor <= 1), for machines where
    /// the full graph would take too long to load. Users and posts are kept.
    pub fn scaled_graph(mut self, factor: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            factor > 0.0 && factor <= 1.0,
            "graph scale must be in (0, 1], got {factor}"
        );
        if factor < 1.0 {
            self.graph_scale = factor;
            self.mean_following *= factor;
            if let FollowModel::Pareto { min, .. } = &mut self.follow_model {
                *min *= factor;
            }
            self.likes = ((self.likes as f64) * factor).round() as usize;
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedUser {
    pub id: Id,
    pub username: String,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFollow {
    pub id: Id,
    pub follower: usize,
    pub followee: usize,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPost {
    pub id: Id,
    pub author: usize,
    pub at: UnixMillis,
    pub body: String,
    pub followers_only: bool,
    pub reply_to: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLike {
    pub post: usize,
    pub user: usize,
    pub at: UnixMillis,
}

/// Every row of a dataset, in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub users: Vec<PlannedUser>,
    pub follows: Vec<PlannedFollow>,
    pub posts: Vec<PlannedPost>,
    pub likes: Vec<PlannedLike>,
}

const WORDS: &[&str] = &[
    "nova", "graph", "coffee", "morning", "build", "ship", "release", "rust", "feed", "timeline",
    "sunny", "rain", "train", "late", "again", "today", "tomorrow", "weekend", "music", "bike",
    "city", "river", "cat", "dog", "garden", "book", "read", "write", "code", "review", "merge",
    "deploy", "latency", "cache", "index", "query", "small", "big", "quiet", "loud", "happy",
    "tired", "new", "old", "friends", "lunch", "dinner", "walk", "run", "photo", "night", "star",
    "moon", "tea", "bread", "market", "idea", "plan", "notes", "thanks",
];

fn body<R: Rng>(rng: &mut R, reply: bool) -> String {
    let n = rng.gen_range(4..=40);
    let mut text = String::with_capacity(n * 7);
    if reply {
        text.push_str("re: ");
    }
    for i in 0..n {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
    }
    text
}

/// A random permutation of `0..n`: entry `i` is the rank of user `i` (0 = most popular).
fn ranks<R: Rng>(rng: &mut R, n: usize) -> Vec<usize> {
    let mut ranks: Vec<usize> = (0..n).collect();
    ranks.shuffle(rng);
    ranks
}

/// Plans a whole dataset from `seed`. Pure: the same spec and seed give the same plan.
pub fn plan(spec: &DatasetSpec, seed: u64) -> anyhow::Result<Plan> {
    anyhow::ensure!(spec.users >= 2, "a dataset needs at least two users");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let window_end = WINDOW_END_MILLIS;
    let window_start = window_end - spec.days * DAY_MILLIS;
    let n = spec.users;

    // Users, created over the 30 days before the window.
    let user_ids = IdGenerator::new(1);
    let mut created: Vec<UnixMillis> = (0..n)
        .map(|_| rng.gen_range(window_start - 30 * DAY_MILLIS..window_start))
        .collect();
    created.sort_unstable();
    let users: Vec<PlannedUser> = created
        .iter()
        .enumerate()
        .map(|(i, &at)| PlannedUser {
            id: user_ids.next_at(at),
            username: format!("user{i:04}"),
            created_at: at,
        })
        .collect();

    // Follows: log-normal out-degree; followees drawn without replacement, weighted by a
    // Zipf popularity (Efraimidis–Spirakis keys). O(users²): fine for S, not for M.
    let popularity = dist::zipf_weights(&ranks(&mut rng, n), spec.popularity_zipf_s);
    let mut follows: Vec<PlannedFollow> = Vec::new();
    let mut push_follows = |rng: &mut ChaCha8Rng, follower: usize, chosen: &[usize]| {
        for &followee in chosen {
            let earliest = created[follower].max(created[followee]);
            follows.push(PlannedFollow {
                id: Id(0),
                follower,
                followee,
                at: rng.gen_range(earliest..window_end),
            });
        }
    };
    match spec.follow_model {
        FollowModel::LogNormalExact => {
            let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(n);
            for follower in 0..n {
                let degree =
                    dist::lognormal_with_mean(&mut rng, spec.mean_following, spec.following_sigma)
                        .round()
                        .clamp(1.0, (n - 1) as f64) as usize;
                keyed.clear();
                for (candidate, &weight) in popularity.iter().enumerate() {
                    if candidate != follower {
                        let u: f64 = 1.0 - rng.gen::<f64>();
                        keyed.push((u.ln() / weight, candidate));
                    }
                }
                keyed.select_nth_unstable_by(degree - 1, |a, b| b.0.total_cmp(&a.0));
                let mut chosen: Vec<usize> = keyed[..degree].iter().map(|&(_, c)| c).collect();
                chosen.sort_unstable();
                push_follows(&mut rng, follower, &chosen);
            }
        }
        FollowModel::Pareto { alpha, min, cap } => {
            anyhow::ensure!(alpha > 0.0 && min > 0.0, "invalid Pareto parameters");
            let popular = WeightedIndex::new(&popularity)?;
            let cap = cap.clamp(1, (n - 1).max(1));
            let mut picked: HashSet<usize> = HashSet::new();
            let mut chosen: Vec<usize> = Vec::new();
            for follower in 0..n {
                let u: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
                let degree = (min * u.powf(-1.0 / alpha)).round().clamp(1.0, cap as f64) as usize;
                picked.clear();
                let mut attempts = 0usize;
                while picked.len() < degree {
                    attempts += 1;
                    anyhow::ensure!(
                        attempts <= degree * 1_000,
                        "could not pick {degree} distinct followees"
                    );
                    let candidate = popular.sample(&mut rng);
                    if candidate != follower {
                        picked.insert(candidate);
                    }
                }
                // HashSet order is not deterministic: sort before drawing the times.
                chosen.clear();
                chosen.extend(picked.iter().copied());
                chosen.sort_unstable();
                push_follows(&mut rng, follower, &chosen);
            }
        }
    }
    follows.sort_by_key(|f| (f.at, f.follower, f.followee));
    let follow_ids = IdGenerator::new(2);
    for follow in &mut follows {
        follow.id = follow_ids.next_at(follow.at);
    }

    // Posts: uniform over the window, authors Zipf-skewed by activity; replies point at a
    // recent earlier post.
    let activity = WeightedIndex::new(&dist::zipf_weights(
        &ranks(&mut rng, n),
        spec.activity_zipf_s,
    ))?;
    let mut times: Vec<UnixMillis> = (0..spec.posts)
        .map(|_| rng.gen_range(window_start..window_end))
        .collect();
    times.sort_unstable();
    let post_ids = IdGenerator::new(3);
    let mut posts: Vec<PlannedPost> = Vec::with_capacity(spec.posts);
    for (i, &at) in times.iter().enumerate() {
        let reply_to = if i >= 10 && rng.gen::<f64>() < spec.reply_fraction {
            let back = dist::exponential(&mut rng, 30.0) as usize;
            Some(i - 1 - back.min(i - 1))
        } else {
            None
        };
        posts.push(PlannedPost {
            id: post_ids.next_at(at),
            author: activity.sample(&mut rng),
            at,
            body: body(&mut rng, reply_to.is_some()),
            followers_only: rng.gen::<f64>() < spec.followers_only_fraction,
            reply_to,
        });
    }

    // Likes: posts weighted by author reach and recency; likers uniform; no duplicates.
    let mut followers = vec![0u64; n];
    for follow in &follows {
        followers[follow.followee] += 1;
    }
    let mean_followers = (follows.len() as f64 / n as f64).max(1.0);
    let tau = spec.like_recency_days * DAY_MILLIS as f64;
    let post_weights: Vec<f64> = posts
        .iter()
        .map(|p| {
            let reach = 0.2 + followers[p.author] as f64 / mean_followers;
            reach * (-((window_end - p.at) as f64) / tau).exp()
        })
        .collect();
    let liked = WeightedIndex::new(&post_weights)?;
    let mut seen: HashSet<(usize, usize)> = HashSet::with_capacity(spec.likes);
    let mut likes: Vec<PlannedLike> = Vec::with_capacity(spec.likes);
    let mut attempts = 0usize;
    while likes.len() < spec.likes {
        attempts += 1;
        anyhow::ensure!(
            attempts <= spec.likes * 50,
            "could not place {} distinct likes",
            spec.likes
        );
        let post = liked.sample(&mut rng);
        let user = rng.gen_range(0..n);
        if !seen.insert((post, user)) {
            continue;
        }
        let delay = dist::exponential(&mut rng, DAY_MILLIS as f64) as i64;
        let at = (posts[post].at + delay).min(window_end);
        likes.push(PlannedLike { post, user, at });
    }
    likes.sort_by_key(|l| (l.at, l.post, l.user));

    Ok(Plan {
        users,
        follows,
        posts,
        likes,
    })
}

/// Reads `path` if it holds a usable secret, else writes a new random one (mode 0600).
fn ensure_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::read(path) {
        Ok(bytes) => {
            anyhow::ensure!(
                bytes.len() >= 32,
                "{} is shorter than 32 bytes",
                path.display()
            );
            return Ok(bytes);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("read {}", path.display()))),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(secret.as_bytes())
        .context("write jwt secret")?;
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("write {}", path.display()))
}

fn iso(millis: UnixMillis) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

/// Writes the plan through the store ports.
async fn write(store: &SqliteStore, plan: &Plan, password_hash: &str) -> anyhow::Result<()> {
    for user in &plan.users {
        let username = Username::parse(&user.username).map_err(|e| anyhow::anyhow!("{e}"))?;
        let email = Email::parse(&format!("{}@example.test", user.username))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let outcome = store
            .insert_user(&NewUser {
                id: user.id,
                username,
                email,
                password_hash: password_hash.to_owned(),
                created_at: user.created_at,
            })
            .await?;
        anyhow::ensure!(
            outcome == InsertUserOutcome::Inserted,
            "user {} not inserted: {outcome:?}",
            user.username
        );
    }
    // The stores write each change's event to the outbox, as the application does; the
    // events get ids of their own from a generator no application node uses (node 1023).
    let event_ids = IdGenerator::new(1023);
    let event = |at: UnixMillis, event: DomainEvent| {
        Envelope::new(event_ids.next_at(at), at, event).record()
    };
    let inserted: Vec<bool> = futures::stream::iter(&plan.follows)
        .map(|f| {
            let (follower_id, followee_id) = (plan.users[f.follower].id, plan.users[f.followee].id);
            let record = event(
                f.at,
                DomainEvent::UserFollowed {
                    follower_id,
                    followee_id,
                },
            );
            async move {
                store
                    .put_follow(f.id, follower_id, followee_id, f.at, &record)
                    .await
            }
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await?;
    anyhow::ensure!(inserted.iter().all(|&b| b), "a follow was not inserted");
    // Sequential: a reply's parent must be committed first.
    for post in &plan.posts {
        let new = NewPost {
            id: post.id,
            author_id: plan.users[post.author].id,
            body: PostBody::parse(&post.body).map_err(|e| anyhow::anyhow!("{e}"))?,
            visibility: if post.followers_only {
                Visibility::Followers
            } else {
                Visibility::Public
            },
            reply_to_id: post.reply_to.map(|i| plan.posts[i].id),
            idempotency_key: None,
            created_at: post.at,
        };
        let record = event(
            post.at,
            DomainEvent::PostCreated {
                post_id: new.id,
                author_id: new.author_id,
                reply_to_id: new.reply_to_id,
                reply_to_author_id: post.reply_to.map(|i| plan.users[plan.posts[i].author].id),
                visibility: new.visibility.as_str().to_owned(),
                mentions: Vec::new(),
            },
        );
        store.insert_post(&new, &record).await?;
    }
    let inserted: Vec<bool> = futures::stream::iter(&plan.likes)
        .map(|l| {
            let (post_id, liker_id) = (plan.posts[l.post].id, plan.users[l.user].id);
            let post_author_id = plan.users[plan.posts[l.post].author].id;
            let record = event(
                l.at,
                DomainEvent::PostLiked {
                    post_id,
                    post_author_id,
                    liker_id,
                },
            );
            async move { store.put_like(post_id, liker_id, l.at, &record).await }
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await?;
    anyhow::ensure!(inserted.iter().all(|&b| b), "a like was not inserted");
    Ok(())
}

/// `ANALYZE` + `VACUUM` + WAL checkpoint, then the row counts as the database reports them.
async fn finish_database(path: &Path) -> anyhow::Result<serde_json::Value> {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
        .context("sqlite options")?
        .filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .context("reopen database")?;
    for statement in ["ANALYZE", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .with_context(|| format!("run {statement}"))?;
    }
    let mut rows = serde_json::Map::new();
    for (name, sql) in [
        ("users", "SELECT COUNT(*) FROM users"),
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
        ("likes", "SELECT COUNT(*) FROM likes"),
        ("blocks", "SELECT COUNT(*) FROM blocks"),
        ("mutes", "SELECT COUNT(*) FROM mutes"),
        ("sessions", "SELECT COUNT(*) FROM sessions"),
    ] {
        let count: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("count {name}"))?;
        rows.insert(name.to_owned(), json!(count));
    }
    rows.insert("dm_conversations".to_owned(), json!(0));
    rows.insert("dm_messages".to_owned(), json!(0));
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    conn.close().await.context("close database")?;
    Ok(json!({ "rows": rows, "database_bytes": bytes }))
}

/// Where the rows go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `DATA_DIR/nova.db`, written through the `SqliteStore` ports.
    Sqlite,
    /// A Postgres database, bulk-loaded with `COPY` (see [`crate::pg`]). `reset` drops and
    /// recreates the database first.
    Postgres { url: String, reset: bool },
}

/// Seeds `data_dir` with `spec` and writes the manifest and token files.
pub async fn run(
    spec: &DatasetSpec,
    target: &Target,
    data_dir: &Path,
    seed: u64,
    token_ttl_secs: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let db_path = data_dir.join("nova.db");
    if matches!(target, Target::Sqlite) {
        anyhow::ensure!(
            !db_path.exists(),
            "{} already exists: seed into an empty data directory",
            db_path.display()
        );
    }
    // A manifest left from an earlier seed must not describe this one if it fails midway.
    match std::fs::remove_file(data_dir.join("manifest.json")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e).context("remove old manifest.json")),
    }
    let secret = ensure_secret(&data_dir.join("jwt-secret"))?;
    // The server's defaults (issuer/audience "nova", OWASP argon2id parameters), so its
    // TokenService accepts these tokens and its password check accepts PASSWORD.
    let argon2 = Argon2Params {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    let tokens = TokenService::new(AuthConfig {
        jwt_secret: secret,
        issuer: "nova".into(),
        audience: "nova".into(),
        access_token_ttl_secs: token_ttl_secs,
        refresh_token_ttl_secs: token_ttl_secs,
        leeway_secs: 30,
        argon2,
    })?;
    let password_hash = tokens.hash_password(PASSWORD)?;

    let plan = plan(spec, seed)?;
    let planned_secs = started.elapsed().as_secs_f64();

    let (database, written_secs) = match target {
        Target::Sqlite => {
            let store = SqliteStore::open(&SqliteSettings {
                path: db_path.clone(),
                max_read_connections: 1,
                busy_timeout_ms: 5_000,
                acquire_timeout_ms: 600_000,
                // Loading only: a crash means re-seeding, so skip the per-commit fsync.
                synchronous: Synchronous::Normal,
                reject_above_ratio: 1.0,
                saturation_grace_ms: 0,
            })
            .await?;
            store.migrate().await?;
            write(&store, &plan, &password_hash).await?;
            store.close().await;
            let written_secs = started.elapsed().as_secs_f64();
            (finish_database(&db_path).await?, written_secs)
        }
        Target::Postgres { url, reset } => {
            let database = crate::pg::load(url, *reset, &plan, &password_hash).await?;
            (database, started.elapsed().as_secs_f64())
        }
    };

    // Per-user statistics for the manifest and the load script.
    let n = plan.users.len();
    let mut following = vec![0u64; n];
    let mut followers = vec![0u64; n];
    let mut followees: Vec<Vec<usize>> = vec![Vec::new(); n];
    for f in &plan.follows {
        following[f.follower] += 1;
        followers[f.followee] += 1;
        followees[f.follower].push(f.followee);
    }
    let mut posts_by = vec![0u64; n];
    for p in &plan.posts {
        posts_by[p.author] += 1;
    }
    let mut likes_per_post = vec![0u64; plan.posts.len()];
    for l in &plan.likes {
        likes_per_post[l.post] += 1;
    }
    // No blocks or mutes exist, and the viewer follows every author in its feed, so the feed is
    // every post of the viewer and its followees.
    let feed_size: Vec<u64> = (0..n)
        .map(|u| posts_by[u] + followees[u].iter().map(|&f| posts_by[f]).sum::<u64>())
        .collect();

    let issued_at = nova_core::now_millis();
    let sessions = IdGenerator::new(4);
    let mut token_entries = Vec::with_capacity(n);
    let mut token_lines = String::new();
    let mut expires_at = 0;
    for (i, user) in plan.users.iter().enumerate() {
        let (token, expires) =
            tokens.issue_access_token(user.id, sessions.next_at(issued_at), issued_at)?;
        expires_at = expires;
        token_lines.push_str(&token);
        token_lines.push('\n');
        token_entries.push(json!({
            "id": user.id.to_string(),
            "username": user.username,
            "token": token,
            "following": following[i],
            "followers": followers[i],
            "feed_size": feed_size[i],
            "expected_first_page": feed_size[i].min(FEED_PAGE),
            "expected_second_page": feed_size[i].saturating_sub(FEED_PAGE).min(FEED_PAGE),
        }));
    }
    let tokens_json = json!({
        "issued_at": iso(issued_at),
        "expires_at": iso(expires_at),
        "users": token_entries,
    });
    write_private(
        &data_dir.join("tokens.json"),
        serde_json::to_string(&tokens_json)
            .context("encode tokens")?
            .as_bytes(),
    )?;
    write_private(&data_dir.join("tokens.txt"), token_lines.as_bytes())?;

    let window_start = WINDOW_END_MILLIS - spec.days * DAY_MILLIS;
    let full_first_page = feed_size.iter().filter(|&&s| s >= FEED_PAGE).count();
    let probe = |i: usize| {
        json!({
            "index": i,
            "id": plan.users[i].id.to_string(),
            "username": plan.users[i].username,
            "following": following[i],
            "followers": followers[i],
            "feed_size": feed_size[i],
        })
    };
    // Probe users for EXPLAIN: the user with the median following count, and the one following most.
    let mut by_following: Vec<usize> = (0..n).collect();
    by_following.sort_by_key(|&i| (following[i], i));
    let median_user = by_following[n / 2];
    let max_user = by_following[n - 1];
    // What the k6 driver sees: it picks users Zipf-skewed (s = 1.1) over the file order.
    let zipf = dist::zipf_weights(&(0..n).collect::<Vec<_>>(), 1.1);
    let zipf_total: f64 = zipf.iter().sum();
    let weighted = |values: &[u64]| -> f64 {
        let mean = zipf
            .iter()
            .zip(values)
            .map(|(w, &v)| w * v as f64)
            .sum::<f64>()
            / zipf_total;
        (mean * 10.0).round() / 10.0
    };
    let heavy_share = zipf
        .iter()
        .zip(&following)
        .filter(|(_, &f)| f >= 1_000)
        .map(|(w, _)| w)
        .sum::<f64>()
        / zipf_total;
    let hottest: Vec<serde_json::Value> = (0..n.min(5))
        .map(|i| {
            json!({
                "index": i,
                "share": ((zipf[i] / zipf_total) * 10_000.0).round() / 10_000.0,
                "following": following[i],
                "feed_size": feed_size[i],
            })
        })
        .collect();
    let manifest = json!({
        "dataset": spec.name,
        "graph_scale": spec.graph_scale,
        "generator": format!("nova-bench {} seed", env!("CARGO_PKG_VERSION")),
        "seed": seed,
        "rng": "rand_chacha 0.3 ChaCha8Rng::seed_from_u64(seed)",
        "spec": spec,
        "time_range": {
            "users_created": [iso(window_start - 30 * DAY_MILLIS), iso(window_start)],
            "posts": [iso(window_start), iso(WINDOW_END_MILLIS)],
        },
        "database": database,
        "planned": {
            "users": plan.users.len(),
            "follows": plan.follows.len(),
            "posts": plan.posts.len(),
            "likes": plan.likes.len(),
        },
        "following_per_user": dist::percentiles(&mut following.clone()),
        "followers_per_user": dist::percentiles(&mut followers.clone()),
        "posts_per_user": dist::percentiles(&mut posts_by.clone()),
        "likes_per_post": dist::percentiles(&mut likes_per_post.clone()),
        "home_feed_size": dist::percentiles(&mut feed_size.clone()),
        "users_with_a_full_first_page": full_first_page,
        "users_with_10k_followers_or_more": followers.iter().filter(|&&f| f >= 10_000).count(),
        "users_following_1k_or_more": following.iter().filter(|&&f| f >= 1_000).count(),
        "users_following_5k_or_more": following.iter().filter(|&&f| f >= 5_000).count(),
        "probe_users": {
            "median_following": probe(median_user),
            "max_following": probe(max_user),
        },
        "load_zipf_1_1_over_file_order": {
            "mean_following": weighted(&following),
            "mean_feed_size": weighted(&feed_size),
            "share_of_requests_from_users_following_1k_or_more": (heavy_share * 10_000.0).round() / 10_000.0,
            "hottest_users": hottest,
        },
        "not_generated": {
            "dms": "DMs do not exist in Nova yet: 0 conversations, 0 messages (benchmarks.md asks 10k for S)",
            "notifications": "notifications do not exist in Nova yet",
            "blocks_and_mutes": "none generated",
        },
        "auth": {
            "password": PASSWORD,
            "password_hash": "one argon2id hash (m=19456 KiB, t=2, p=1, random salt) shared by all users",
            "tokens": "tokens.json (per user: id, username, token, following, followers, feed_size, expected_first_page, expected_second_page) and tokens.txt (one token per line, user order)",
            "jwt_secret": "jwt-secret (mode 0600), read by `nova serve --data-dir`",
            "token_ttl_secs": token_ttl_secs,
            "issued_at": iso(issued_at),
        },
        "deterministic": "same seed => same rows and ids; the password-hash salt, JWT secret and tokens are random",
        "elapsed_secs": {
            "plan": (planned_secs * 100.0).round() / 100.0,
            "write": ((written_secs - planned_secs) * 100.0).round() / 100.0,
            "total": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        },
    });
    let text = serde_json::to_string_pretty(&manifest).context("encode manifest")?;
    std::fs::write(data_dir.join("manifest.json"), format!("{text}\n"))
        .context("write manifest.json")?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> DatasetSpec {
        DatasetSpec {
            users: 60,
            posts: 400,
            mean_following: 8.0,
            likes: 900,
            ..DatasetSpec::s()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let a = plan(&tiny(), 7).expect("plan");
        let b = plan(&tiny(), 7).expect("plan");
        let c = plan(&tiny(), 8).expect("plan");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ids_follow_time_and_rows_are_consistent() {
        let p = plan(&tiny(), 1).expect("plan");
        assert_eq!(p.users.len(), 60);
        assert_eq!(p.posts.len(), 400);
        assert_eq!(p.likes.len(), 900);
        assert!(p
            .posts
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at));
        assert!(p.follows.windows(2).all(|w| w[0].id < w[1].id));
        for post in &p.posts {
            assert_eq!(post.id.created_at_millis(), post.at);
            if let Some(parent) = post.reply_to {
                assert!(p.posts[parent].at <= post.at);
            }
        }
        let pairs: HashSet<(usize, usize)> =
            p.follows.iter().map(|f| (f.follower, f.followee)).collect();
        assert_eq!(pairs.len(), p.follows.len());
        assert!(p.follows.iter().all(|f| f.follower != f.followee));
        let likes: HashSet<(usize, usize)> = p.likes.iter().map(|l| (l.post, l.user)).collect();
        assert_eq!(likes.len(), p.likes.len());
    }

    #[tokio::test]
    async fn seeds_a_tiny_dataset_end_to_end() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        run(&tiny(), &Target::Sqlite, &dir, 3, 3600)
            .await
            .expect("seed");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
                .expect("json");
        assert_eq!(manifest["database"]["rows"]["posts"], 400);
        assert_eq!(manifest["database"]["rows"]["likes"], 900);
        let tokens = std::fs::read_to_string(dir.join("tokens.txt")).expect("tokens");
        assert_eq!(tokens.lines().count(), 60);
    }
}
