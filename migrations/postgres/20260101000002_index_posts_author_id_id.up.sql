-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_author_id_id ON posts (author_id, id DESC) WHERE deleted_at IS NULL;
