-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_conversation_id_id ON messages (conversation_id, id DESC);
