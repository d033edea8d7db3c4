-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS notifications_recipient_sort;
