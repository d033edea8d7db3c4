-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS likes_user_id;
