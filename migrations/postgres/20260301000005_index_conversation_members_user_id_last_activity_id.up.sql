-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_members_user_id_last_activity_id ON conversation_members (user_id, last_activity_id DESC);
