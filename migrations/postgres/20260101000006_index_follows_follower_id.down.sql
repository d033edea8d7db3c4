-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS follows_follower_id;
