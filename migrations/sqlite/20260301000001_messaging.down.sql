DROP TABLE messaging_settings;
DROP TABLE messages;
DROP TABLE conversation_members;
DROP TABLE conversations;
