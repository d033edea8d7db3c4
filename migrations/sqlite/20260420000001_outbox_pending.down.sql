DROP INDEX IF EXISTS outbox_pending;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
