-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS follows_followee_id;
