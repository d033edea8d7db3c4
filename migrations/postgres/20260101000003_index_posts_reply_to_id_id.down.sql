-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS posts_reply_to_id_id;
