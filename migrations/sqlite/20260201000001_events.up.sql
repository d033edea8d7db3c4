-- The transactional outbox: every event is written here in the same transaction as the change
-- it announces, then published by the relay (sent_at set once the bus accepted it).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    key INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Durable "consumer applied event" records for effects that must never repeat.
CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
