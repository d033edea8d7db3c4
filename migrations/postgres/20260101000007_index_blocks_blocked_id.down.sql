-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS blocks_blocked_id;
