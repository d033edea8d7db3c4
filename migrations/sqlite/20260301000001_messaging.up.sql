-- Direct messages: conversations, their members (with read markers and the activity position
-- "my conversations" is ordered by), messages, and each account's messaging privacy.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('DIRECT', 'GROUP')),
    -- "minId:maxId" of a direct conversation's two members: at most one per pair.
    direct_key TEXT UNIQUE,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    last_message_id INTEGER
) STRICT;

CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    joined_at INTEGER NOT NULL,
    -- Messages with a larger id are unread (unless sent by the member or deleted).
    last_read_id INTEGER NOT NULL,
    -- The newest message's id, or the join position before any: the member's list order.
    last_activity_id INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX conversation_members_user_id_last_activity_id ON conversation_members(user_id, last_activity_id DESC);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    sender_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    idempotency_key TEXT,
    -- SHA-256 of what the keyed send asked for, to tell a retry from a reuse.
    request_fingerprint TEXT,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted_at INTEGER
) STRICT;
CREATE INDEX messages_conversation_id_id ON messages(conversation_id, id DESC);
CREATE INDEX messages_sender_id_created_at ON messages(sender_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX messages_sender_id_idempotency_key ON messages(sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE messaging_settings (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    who_can_message TEXT NOT NULL CHECK (who_can_message IN ('EVERYONE', 'FOLLOWING', 'NOBODY'))
) STRICT;
