-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS follows_follower_id ON follows (follower_id, id);
