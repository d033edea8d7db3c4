-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS conversation_members_user_id_last_activity_id;
