-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS messages_conversation_id_id;
