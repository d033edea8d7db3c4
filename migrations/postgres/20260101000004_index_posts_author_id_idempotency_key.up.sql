-- no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS posts_author_id_idempotency_key ON posts (author_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
