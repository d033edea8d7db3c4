-- no-transaction
-- Serves the unread count and finding the unread group a new actor joins.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_unread ON notifications (recipient_id, kind, target_id, sort_id) WHERE read_at IS NULL;
