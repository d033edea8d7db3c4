//! The event envelope and the catalogue of domain events (documented in `docs/events.md`).
//!
//! Wire format: one JSON object per event,
//! `{"id":"…","type":"post.liked","version":1,"occurredAt":…,"key":"…","data":{…}}`.
//! Ids are decimal strings (JavaScript consumers cannot hold 64-bit integers). The `id` is the
//! event's idempotency key: a consumer that has seen it already must not apply it again.

use nova_core::{Id, UnixMillis};
use serde::{Deserialize, Serialize};

/// The version every event is written with today. A consumer refuses other versions (they go
/// to the dead-letter path) rather than guessing at their meaning.
pub const CURRENT_VERSION: u16 = 1;

/// Where an event is published. Each topic is ordered per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    /// Posts, likes and follows; keyed by the acting account.
    #[serde(rename = "feed.events")]
    Feed,
    /// Conversations and messages; keyed by the conversation.
    #[serde(rename = "messaging.events")]
    Messaging,
    /// Notifications and notification preferences; keyed by the recipient.
    #[serde(rename = "notification.events")]
    Notification,
}

impl Topic {
    pub const ALL: [Topic; 3] = [Topic::Feed, Topic::Messaging, Topic::Notification];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Feed => "feed.events",
            Topic::Messaging => "messaging.events",
            Topic::Notification => "notification.events",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Serialises ids as decimal strings.
mod id_str {
    use nova_core::Id;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Id, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::parse(&raw).ok_or_else(|| serde::de::Error::custom("invalid id"))
    }

    pub mod opt {
        use nova_core::Id;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(id: &Option<Id>, s: S) -> Result<S::Ok, S::Error> {
            match id {
                Some(id) => s.collect_str(id),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
            let raw = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            raw.map(|r| Id::parse(&r).ok_or_else(|| serde::de::Error::custom("invalid id")))
                .transpose()
        }
    }

    pub mod vec {
        use nova_core::Id;
        use serde::ser::SerializeSeq as _;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(ids: &[Id], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(ids.len()))?;
            for id in ids {
                seq.serialize_element(&id.to_string())?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Id>, D::Error> {
            let raw = <Vec<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            raw.iter()
                .map(|r| Id::parse(r).ok_or_else(|| serde::de::Error::custom("invalid id")))
                .collect()
        }
    }
}

/// Everything Nova announces. Adding a variant is backwards compatible for consumers that
/// ignore what they do not handle; changing a variant's meaning needs a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum DomainEvent {
    /// A post or reply was created. `mentions` are the lower-cased usernames written as
    /// `@name` in the body (at most 10), unresolved.
    #[serde(rename = "post.created")]
    PostCreated {
        #[serde(with = "id_str")]
        post_id: Id,
        #[serde(with = "id_str")]
        author_id: Id,
        #[serde(with = "id_str::opt", default)]
        reply_to_id: Option<Id>,
        #[serde(with = "id_str::opt", default)]
        reply_to_author_id: Option<Id>,
        /// `PUBLIC` or `FOLLOWERS`.
        visibility: String,
        #[serde(default)]
        mentions: Vec<String>,
    },
    /// A like was added (not sent again for a like that already existed).
    #[serde(rename = "post.liked")]
    PostLiked {
        #[serde(with = "id_str")]
        post_id: Id,
        #[serde(with = "id_str")]
        post_author_id: Id,
        #[serde(with = "id_str")]
        liker_id: Id,
    },
    /// A follow was added (not sent again for a follow that already existed).
    #[serde(rename = "user.followed")]
    UserFollowed {
        #[serde(with = "id_str")]
        follower_id: Id,
        #[serde(with = "id_str")]
        followee_id: Id,
    },
    /// A message was sent. `recipient_ids` are the members other than the sender at the time.
    #[serde(rename = "message.sent")]
    MessageSent {
        #[serde(with = "id_str")]
        conversation_id: Id,
        #[serde(with = "id_str")]
        message_id: Id,
        #[serde(with = "id_str")]
        sender_id: Id,
        #[serde(with = "id_str::vec")]
        recipient_ids: Vec<Id>,
    },
    /// A message's body was replaced or the message was deleted (`deleted`).
    #[serde(rename = "message.changed")]
    MessageChanged {
        #[serde(with = "id_str")]
        conversation_id: Id,
        #[serde(with = "id_str")]
        message_id: Id,
        #[serde(with = "id_str")]
        sender_id: Id,
        #[serde(with = "id_str::vec")]
        member_ids: Vec<Id>,
        deleted: bool,
    },
    /// A member moved their read marker up to `message_id`.
    #[serde(rename = "conversation.read")]
    ConversationRead {
        #[serde(with = "id_str")]
        conversation_id: Id,
        #[serde(with = "id_str")]
        user_id: Id,
        #[serde(with = "id_str")]
        message_id: Id,
        #[serde(with = "id_str::vec")]
        member_ids: Vec<Id>,
    },
    /// Members joined (`added_ids`, added by `actor_id`) or one left (`left_id`).
    #[serde(rename = "conversation.members_changed")]
    MembersChanged {
        #[serde(with = "id_str")]
        conversation_id: Id,
        #[serde(with = "id_str")]
        actor_id: Id,
        #[serde(with = "id_str::vec")]
        added_ids: Vec<Id>,
        #[serde(with = "id_str::opt", default)]
        left_id: Option<Id>,
    },
    /// A notification was created, or grew (another actor joined its group).
    #[serde(rename = "notification.upserted")]
    NotificationUpserted {
        #[serde(with = "id_str")]
        recipient_id: Id,
        #[serde(with = "id_str")]
        notification_id: Id,
    },
    /// An account changed its notification preferences: caches of them must be dropped.
    #[serde(rename = "notification.preferences_changed")]
    NotificationPreferencesChanged {
        #[serde(with = "id_str")]
        user_id: Id,
    },
}

impl DomainEvent {
    pub fn topic(&self) -> Topic {
        match self {
            DomainEvent::PostCreated { .. }
            | DomainEvent::PostLiked { .. }
            | DomainEvent::UserFollowed { .. } => Topic::Feed,
            DomainEvent::MessageSent { .. }
            | DomainEvent::MessageChanged { .. }
            | DomainEvent::ConversationRead { .. }
            | DomainEvent::MembersChanged { .. } => Topic::Messaging,
            DomainEvent::NotificationUpserted { .. }
            | DomainEvent::NotificationPreferencesChanged { .. } => Topic::Notification,
        }
    }

    /// The ordering key: the acting account for feed events, the conversation for messaging
    /// events, the recipient for notification events.
    pub fn key(&self) -> Id {
        match self {
            DomainEvent::PostCreated { author_id, .. } => *author_id,
            DomainEvent::PostLiked { liker_id, .. } => *liker_id,
            DomainEvent::UserFollowed { follower_id, .. } => *follower_id,
            DomainEvent::MessageSent {
                conversation_id, ..
            }
            | DomainEvent::MessageChanged {
                conversation_id, ..
            }
            | DomainEvent::ConversationRead {
                conversation_id, ..
            }
            | DomainEvent::MembersChanged {
                conversation_id, ..
            } => *conversation_id,
            DomainEvent::NotificationUpserted { recipient_id, .. } => *recipient_id,
            DomainEvent::NotificationPreferencesChanged { user_id } => *user_id,
        }
    }

    /// The wire name (`post.liked`, ...), for logs and metrics labels.
    pub fn type_name(&self) -> &'static str {
        match self {
            DomainEvent::PostCreated { .. } => "post.created",
            DomainEvent::PostLiked { .. } => "post.liked",
            DomainEvent::UserFollowed { .. } => "user.followed",
            DomainEvent::MessageSent { .. } => "message.sent",
            DomainEvent::MessageChanged { .. } => "message.changed",
            DomainEvent::ConversationRead { .. } => "conversation.read",
            DomainEvent::MembersChanged { .. } => "conversation.members_changed",
            DomainEvent::NotificationUpserted { .. } => "notification.upserted",
            DomainEvent::NotificationPreferencesChanged { .. } => {
                "notification.preferences_changed"
            }
        }
    }
}

/// One event with its identity and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique, time-ordered; the idempotency key consumers deduplicate on.
    #[serde(with = "id_str")]
    pub id: Id,
    pub version: u16,
    pub occurred_at: UnixMillis,
    #[serde(with = "id_str")]
    pub key: Id,
    #[serde(flatten)]
    pub event: DomainEvent,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("undecodable event: {0}")]
    Malformed(String),
    #[error("unsupported event version {0}")]
    UnknownVersion(u16),
}

/// Just enough of an envelope to check its version before trusting the rest.
#[derive(Deserialize)]
struct VersionProbe {
    version: u16,
}

impl Envelope {
    pub fn new(id: Id, occurred_at: UnixMillis, event: DomainEvent) -> Self {
        Envelope {
            id,
            version: CURRENT_VERSION,
            occurred_at,
            key: event.key(),
            event,
        }
    }

    pub fn topic(&self) -> Topic {
        self.event.topic()
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising a tree of strings, integers and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a published event. Unknown versions and types are errors, never guesses.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let probe: VersionProbe =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if probe.version != CURRENT_VERSION {
            return Err(DecodeError::UnknownVersion(probe.version));
        }
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The outbox row for this event.
    pub fn record(&self) -> EventRecord {
        EventRecord {
            id: self.id,
            topic: self.topic(),
            key: self.key,
            payload: self.encode(),
            created_at: self.occurred_at,
        }
    }
}

/// An outbox row: an encoded event waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: Id,
    pub topic: Topic,
    pub key: Id,
    pub payload: Vec<u8>,
    pub created_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn liked() -> Envelope {
        Envelope::new(
            Id(42),
            1_700_000_000_000,
            DomainEvent::PostLiked {
                post_id: Id(7),
                post_author_id: Id(8),
                liker_id: Id(9),
            },
        )
    }

    #[test]
    fn round_trips_with_string_ids_and_type_tag() {
        let env = liked();
        let bytes = env.encode();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["id"], "42");
        assert_eq!(json["type"], "post.liked");
        assert_eq!(json["version"], 1);
        assert_eq!(json["key"], "9");
        assert_eq!(json["data"]["postAuthorId"], "8");
        assert_eq!(Envelope::decode(&bytes).expect("decode"), env);
        assert_eq!(env.record().topic, Topic::Feed);
        assert_eq!(env.record().key, Id(9));
    }

    #[test]
    fn refuses_unknown_versions_types_and_garbage() {
        let mut json: serde_json::Value = serde_json::from_slice(&liked().encode()).expect("json");
        json["version"] = 2.into();
        let v2 = serde_json::to_vec(&json).expect("encode");
        assert!(matches!(
            Envelope::decode(&v2),
            Err(DecodeError::UnknownVersion(2))
        ));
        json["version"] = 1.into();
        json["type"] = "post.exploded".into();
        let unknown = serde_json::to_vec(&json).expect("encode");
        assert!(matches!(
            Envelope::decode(&unknown),
            Err(DecodeError::Malformed(_))
        ));
        assert!(Envelope::decode(b"\xff\x00not json").is_err());
        assert!(Envelope::decode(b"{}").is_err());
    }

    #[test]
    fn topic_names_round_trip() {
        for topic in Topic::ALL {
            assert_eq!(Topic::from_name(topic.name()), Some(topic));
        }
        assert_eq!(Topic::from_name("nope"), None);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Envelope::decode(&bytes);
        }
    }
}
