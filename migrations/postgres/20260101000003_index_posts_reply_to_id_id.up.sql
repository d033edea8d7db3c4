-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_reply_to_id_id ON posts (reply_to_id, id) WHERE reply_to_id IS NOT NULL AND deleted_at IS NULL;
