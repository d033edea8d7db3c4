-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
