-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS likes_user_id ON likes (user_id, post_id);
