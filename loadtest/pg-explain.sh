#!/usr/bin/env bash
# EXPLAIN (ANALYZE, BUFFERS) of the hot Postgres feed queries on a seeded database.
#
#   PG_URL=postgres://postgres@127.0.0.1:5432/nova_bench_m DATA=target/bench/pg-data-m \
#     loadtest/pg-explain.sh > explain.txt
#
# Viewers come from DATA/manifest.json (`probe_users`: the user with the median following count
# and the one following most; plus the hottest user of the k6 Zipf pick, file index 0). The SQL
# is a copy of crates/nova-db/src/postgres/posts.rs (home_feed_sql, author_posts_sql, with
# POST_COLUMNS from rows.rs) as of this script; keep them in step. Each query is run as a
# prepared statement, as sqlx does: once to warm the cache, then EXPLAIN (ANALYZE, BUFFERS)
# EXECUTE with the default plan_cache_mode (custom plan for these parameters), then once more
# with plan_cache_mode = force_generic_plan (what a pooled connection may switch to after five
# executions). Read-only.
set -euo pipefail

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/nova_bench_m}
DATA=${DATA:-target/bench/pg-data-m}
[[ $PG_URL =~ ^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost)(:[0-9]+)?/[A-Za-z0-9_]+$ ]] \
  || { echo "PG_URL must point at a database on 127.0.0.1, got $PG_URL" >&2; exit 1; }

read -r MEDIAN MEDIAN_F MAXU MAX_F HOT HOT_F < <(python3 - "$DATA/manifest.json" "$DATA/tokens.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
users = json.load(open(sys.argv[2]))["users"]
p = m["probe_users"]
hot = users[0]
print(p["median_following"]["id"], p["median_following"]["following"],
      p["max_following"]["id"], p["max_following"]["following"],
      hot["id"], hot["following"])
PY
)

COLUMNS="p.id, p.author_id, p.body, p.visibility, p.reply_to_id, p.created_at, p.edited_at"
VISIBLE="(p.visibility = 'PUBLIC' OR p.author_id = \$3
       OR EXISTS (SELECT 1 FROM follows vf WHERE vf.follower_id = \$3 AND vf.followee_id = p.author_id))
     AND NOT EXISTS (SELECT 1 FROM blocks vb WHERE (vb.blocker_id = \$3 AND vb.blocked_id = p.author_id)
                                               OR (vb.blocker_id = p.author_id AND vb.blocked_id = \$3))"
HOME_FEED="SELECT $COLUMNS FROM posts p
  WHERE p.author_id IN (SELECT followee_id FROM follows WHERE follower_id = \$1 UNION ALL SELECT \$1)
    AND p.deleted_at IS NULL AND p.id < COALESCE(\$2, 9223372036854775807)
    AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = \$3 AND m.muted_id = p.author_id)
  ORDER BY p.id DESC LIMIT \$4"
AUTHOR_POSTS="SELECT $COLUMNS FROM posts p
  WHERE p.author_id = \$1 AND p.deleted_at IS NULL AND p.id < COALESCE(\$2, 9223372036854775807)
    AND $VISIBLE
  ORDER BY p.id DESC LIMIT \$4"

# The most prolific author and an author with a median number of posts.
read -r TOP_AUTHOR MEDIAN_AUTHOR < <(timeout 120 psql "$PG_URL" -X -tAq -F ' ' -c "
  WITH c AS (SELECT user_id, post_count, row_number() OVER (ORDER BY post_count DESC, user_id) AS r,
                    count(*) OVER () AS n FROM user_stats)
  SELECT (SELECT user_id FROM c WHERE r = 1), (SELECT user_id FROM c WHERE r = n / 2)")

explain() { # title sql params
  local title=$1 sql=$2 params=$3
  echo "-- $title"
  echo "-- EXECUTE q($params)"
  timeout 300 psql "$PG_URL" -X -v ON_ERROR_STOP=1 -q <<SQL
SET statement_timeout = '120s';
PREPARE q(bigint, bigint, bigint, bigint) AS $sql;
\o /dev/null
EXECUTE q($params);
\o
EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($params);
SET plan_cache_mode = force_generic_plan;
\echo '-- same, plan_cache_mode = force_generic_plan'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($params);
SQL
  echo
}

echo "-- $(timeout 30 psql "$PG_URL" -X -tAq -c 'SELECT version()')"
echo "-- database size: $(timeout 30 psql "$PG_URL" -X -tAq -c 'SELECT pg_size_pretty(pg_database_size(current_database()))')"
echo
echo "-- home_feed_sql:"
echo "$HOME_FEED"
echo
explain "home feed, first page, median user (following $MEDIAN_F)" "$HOME_FEED" "$MEDIAN, NULL, $MEDIAN, 21"
explain "home feed, first page, user following the most ($MAX_F)" "$HOME_FEED" "$MAXU, NULL, $MAXU, 21"
explain "home feed, first page, hottest user of the load (file index 0, following $HOT_F)" "$HOME_FEED" "$HOT, NULL, $HOT, 21"
echo "-- author_posts_sql:"
echo "$AUTHOR_POSTS"
echo
explain "author timeline, most prolific author, viewer = median user" "$AUTHOR_POSTS" "$TOP_AUTHOR, NULL, $MEDIAN, 21"
explain "author timeline, median author, viewer = median user" "$AUTHOR_POSTS" "$MEDIAN_AUTHOR, NULL, $MEDIAN, 21"
