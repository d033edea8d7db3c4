-- The transactional outbox: every event is written here in the same transaction as the change
-- it announces, then published by a relay (sent_at set once the bus accepted it). Relays on
-- several nodes claim rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    topic TEXT NOT NULL,
    key BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);

-- Durable "consumer applied event" records for effects that must never repeat.
CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
