-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS messages_sender_id_created_at;
