-- no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS messages_sender_id_idempotency_key ON messages (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
