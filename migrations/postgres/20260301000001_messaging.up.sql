-- Direct messages: conversations, their members (with read markers and the activity position
-- "my conversations" is ordered by), messages, and each account's messaging privacy. Indexes
-- come in the following migrations, one each, built CONCURRENTLY.
CREATE TABLE conversations (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('DIRECT', 'GROUP')),
    -- "minId:maxId" of a direct conversation's two members: at most one per pair.
    direct_key TEXT UNIQUE,
    creator_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    last_message_id BIGINT
);

CREATE TABLE conversation_members (
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    joined_at BIGINT NOT NULL,
    -- Messages with a larger id are unread (unless sent by the member or deleted).
    last_read_id BIGINT NOT NULL,
    -- The newest message's id, or the join position before any: the member's list order.
    last_activity_id BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    sender_id BIGINT NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    idempotency_key TEXT,
    -- SHA-256 of what the keyed send asked for, to tell a retry from a reuse.
    request_fingerprint TEXT,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted_at BIGINT
);

CREATE TABLE messaging_settings (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    who_can_message TEXT NOT NULL CHECK (who_can_message IN ('EVERYONE', 'FOLLOWING', 'NOBODY'))
);
