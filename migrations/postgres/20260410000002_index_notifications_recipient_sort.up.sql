-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_recipient_sort ON notifications (recipient_id, sort_id DESC);
