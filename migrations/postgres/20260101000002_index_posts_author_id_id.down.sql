-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS posts_author_id_id;
