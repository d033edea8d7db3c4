//! Notifications, their grouping key and the per-account preferences.

use nova_core::{Id, UnixMillis};
use nova_events::{DomainEvent, Envelope, EventRecord};
use nova_posts::Post;

/// How many actors a group remembers by name (newest first); the rest are only counted.
pub const SHOWN_ACTORS: usize = 3;

/// Most ids one `markNotificationsRead` call accepts.
pub const MAX_MARK_READ_IDS: usize = 100;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// Someone followed the recipient. Target: none (all new followers group).
    Follow,
    /// Someone liked the recipient's post. Target: the post.
    Like,
    /// Someone replied to the recipient's post. Target: the reply.
    Reply,
    /// Someone wrote `@recipient` in a post. Target: that post.
    Mention,
    /// Someone sent the recipient a message. Target: the conversation.
    Message,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 5] = [
        NotificationKind::Follow,
        NotificationKind::Like,
        NotificationKind::Reply,
        NotificationKind::Mention,
        NotificationKind::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Follow => "FOLLOW",
            NotificationKind::Like => "LIKE",
            NotificationKind::Reply => "REPLY",
            NotificationKind::Mention => "MENTION",
            NotificationKind::Message => "MESSAGE",
        }
    }

    pub fn from_stored(raw: &str) -> Option<NotificationKind> {
        NotificationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
    }

    /// Whether the target is a post (shown as `post` in the API).
    pub fn targets_post(self) -> bool {
        matches!(
            self,
            NotificationKind::Like | NotificationKind::Reply | NotificationKind::Mention
        )
    }
}

/// From whom an account accepts notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Source {
    #[default]
    Everyone,
    /// Only accounts the recipient follows.
    Following,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Everyone => "EVERYONE",
            Source::Following => "FOLLOWING",
        }
    }

    pub fn from_stored(raw: &str) -> Source {
        if raw == "FOLLOWING" {
            Source::Following
        } else {
            Source::Everyone
        }
    }
}

/// Which notifications an account receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub follow: bool,
    pub like: bool,
    pub reply: bool,
    pub mention: bool,
    /// Off by default: conversations have their own unread counts.
    pub message: bool,
    pub from: Source,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            follow: true,
            like: true,
            reply: true,
            mention: true,
            message: false,
            from: Source::Everyone,
        }
    }
}

impl Preferences {
    pub fn enabled(&self, kind: NotificationKind) -> bool {
        match kind {
            NotificationKind::Follow => self.follow,
            NotificationKind::Like => self.like,
            NotificationKind::Reply => self.reply,
            NotificationKind::Mention => self.mention,
            NotificationKind::Message => self.message,
        }
    }

    /// The enabled types as stored: `FOLLOW,LIKE,...` (empty when all are off).
    pub fn stored_types(&self) -> String {
        NotificationKind::ALL
            .into_iter()
            .filter(|k| self.enabled(*k))
            .map(NotificationKind::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn from_stored(types: &str, from: &str) -> Preferences {
        let on: Vec<NotificationKind> = types
            .split(',')
            .filter_map(NotificationKind::from_stored)
            .collect();
        Preferences {
            follow: on.contains(&NotificationKind::Follow),
            like: on.contains(&NotificationKind::Like),
            reply: on.contains(&NotificationKind::Reply),
            mention: on.contains(&NotificationKind::Mention),
            message: on.contains(&NotificationKind::Message),
            from: Source::from_stored(from),
        }
    }

    pub fn apply(mut self, patch: &PreferencesPatch) -> Preferences {
        let set = |field: &mut bool, value: Option<bool>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut self.follow, patch.follow);
        set(&mut self.like, patch.like);
        set(&mut self.reply, patch.reply);
        set(&mut self.mention, patch.mention);
        set(&mut self.message, patch.message);
        if let Some(from) = patch.from {
            self.from = from;
        }
        self
    }
}

/// A partial update of [`Preferences`]; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferencesPatch {
    pub follow: Option<bool>,
    pub like: Option<bool>,
    pub reply: Option<bool>,
    pub mention: Option<bool>,
    pub message: Option<bool>,
    pub from: Option<Source>,
}

/// One notification group as listed.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: Id,
    pub recipient_id: Id,
    pub kind: NotificationKind,
    /// The liked post, the reply, the mentioning post or the conversation; none for follows.
    pub target_id: Option<Id>,
    /// The latest actors, newest first, at most [`SHOWN_ACTORS`].
    pub actor_ids: Vec<Id>,
    /// Distinct actors in the group.
    pub actor_count: i64,
    pub read: bool,
    /// The id of the latest activity (event) in the group: the list order and cursor.
    pub sort_id: Id,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// The target post when it is a post, still exists and the recipient may see it.
    pub post: Option<Post>,
}

/// The latest actors of a group with the event that brought each, newest first, as stored:
/// `event:actor,event:actor`. Kept in the group row so a page of notifications is one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentActors(pub Vec<(Id, Id)>);

impl RecentActors {
    pub fn decode(raw: &str) -> RecentActors {
        RecentActors(
            raw.split(',')
                .filter_map(|pair| {
                    let (event, actor) = pair.split_once(':')?;
                    Some((Id::parse(event)?, Id::parse(actor)?))
                })
                .collect(),
        )
    }

    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(event, actor)| format!("{event}:{actor}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds an actor's activity: newest event first (events may arrive out of order), each
    /// actor once, at most [`SHOWN_ACTORS`].
    pub fn with(mut self, event: Id, actor: Id) -> RecentActors {
        self.0.retain(|(_, a)| *a != actor);
        self.0.push((event, actor));
        self.0.sort_by_key(|pair| std::cmp::Reverse(pair.0));
        self.0.truncate(SHOWN_ACTORS);
        self
    }

    pub fn actor_ids(&self) -> Vec<Id> {
        self.0.iter().map(|(_, actor)| *actor).collect()
    }
}

/// The `NotificationUpserted` outbox row written with a notification change.
pub fn upserted_event(
    event_id: Id,
    at: UnixMillis,
    recipient_id: Id,
    notification_id: Id,
) -> EventRecord {
    Envelope::new(
        event_id,
        at,
        DomainEvent::NotificationUpserted {
            recipient_id,
            notification_id,
        },
    )
    .record()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_default_and_round_trip() {
        let p = Preferences::default();
        assert!(p.follow && p.like && p.reply && p.mention && !p.message);
        assert_eq!(p.stored_types(), "FOLLOW,LIKE,REPLY,MENTION");
        let q = p.apply(&PreferencesPatch {
            like: Some(false),
            message: Some(true),
            from: Some(Source::Following),
            ..Default::default()
        });
        let stored = Preferences::from_stored(&q.stored_types(), q.from.as_str());
        assert_eq!(stored, q);
        assert!(!stored.like && stored.message && stored.from == Source::Following);
        assert_eq!(Preferences::from_stored("", "EVERYONE").stored_types(), "");
    }

    #[test]
    fn recent_actors_newest_first_once_each_bounded() {
        let r = RecentActors::default()
            .with(Id(10), Id(1))
            .with(Id(20), Id(2))
            .with(Id(15), Id(3))
            .with(Id(30), Id(4))
            .with(Id(40), Id(2));
        assert_eq!(r.actor_ids(), vec![Id(2), Id(4), Id(3)]);
        assert_eq!(RecentActors::decode(&r.encode()), r);
        assert_eq!(RecentActors::decode("garbage,1:x"), RecentActors::default());
    }
}
