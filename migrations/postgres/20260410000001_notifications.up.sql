-- Notification groups: one row per (recipient, kind, target) run of unread activity. `target_id`
-- is 0 when there is no target (follows). `recent_actors` keeps the latest actors of the group,
-- newest first, as `event:actor` pairs (at most 3), so a page is one query; `sort_id` is the id
-- of the group's latest activity event and orders the list. Indexes come in their own
-- migrations (CONCURRENTLY).
CREATE TABLE notifications (
    id BIGINT PRIMARY KEY,
    recipient_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    target_id BIGINT NOT NULL DEFAULT 0,
    actor_count BIGINT NOT NULL,
    recent_actors TEXT NOT NULL,
    sort_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    read_at BIGINT
);

-- Every distinct actor of a group (an actor counts once however often they act).
CREATE TABLE notification_actors (
    notification_id BIGINT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (notification_id, actor_id)
);

-- Per-account preferences; no row means the defaults.
CREATE TABLE notification_preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    types TEXT NOT NULL,
    from_whom TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
