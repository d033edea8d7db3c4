-- Notification groups: one row per (recipient, kind, target) run of unread activity. `target_id`
-- is 0 when there is no target (follows). `recent_actors` keeps the latest actors of the group,
-- newest first, as `event:actor` pairs (at most 3), so a page is one query; `sort_id` is the id
-- of the group's latest activity event and orders the list.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    target_id INTEGER NOT NULL DEFAULT 0,
    actor_count INTEGER NOT NULL,
    recent_actors TEXT NOT NULL,
    sort_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    read_at INTEGER
);
CREATE INDEX notifications_recipient_sort ON notifications (recipient_id, sort_id DESC);
-- Serves the unread count and finding the unread group a new actor joins.
CREATE INDEX notifications_unread ON notifications (recipient_id, kind, target_id, sort_id)
    WHERE read_at IS NULL;

-- Every distinct actor of a group (an actor counts once however often they act).
CREATE TABLE notification_actors (
    notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    actor_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (notification_id, actor_id)
) WITHOUT ROWID;

-- Per-account preferences; no row means the defaults.
CREATE TABLE notification_preferences (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    types TEXT NOT NULL,
    from_whom TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
