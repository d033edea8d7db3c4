-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS follows_followee_id ON follows (followee_id, id);
