-- The relay's two queries read only unsent rows: the claim (`WHERE sent_at IS NULL ORDER BY id
-- LIMIT ?`) walks this index in id order, and the backlog (`COUNT(*), MIN(created_at)`) is
-- answered from the index alone (covering: id, created_at and sent_at are all in it), so an idle
-- node's twice-a-second polls touch no table page. Replaces `outbox_unsent` (id only), which
-- made the backlog read every unsent row.
DROP INDEX IF EXISTS outbox_unsent;
CREATE INDEX outbox_pending ON outbox (id, created_at, sent_at) WHERE sent_at IS NULL;
