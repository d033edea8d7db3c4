-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS blocks_blocked_id ON blocks (blocked_id, blocker_id);
