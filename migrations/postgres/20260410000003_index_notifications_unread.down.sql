-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS notifications_unread;
