-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_sender_id_created_at ON messages (sender_id, created_at DESC) WHERE deleted_at IS NULL;
