//! Conversation and message types and the parsers that turn raw client input into them.

use nova_core::{Id, UnixMillis};
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use crate::MessagingError;

/// A message body: NFC-normalised, not blank, 1–5,000 grapheme clusters, at most 64 KiB, no
/// grapheme cluster over 128 bytes. Stored and returned as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_GRAPHEMES: usize = 5_000;
    /// Bounds pathological graphemes (one base character with thousands of combining marks).
    pub const MAX_BYTES: usize = 64 * 1024;
    /// Bounds one grapheme cluster: the longest emoji ZWJ sequences are about 35 bytes; a base
    /// character with thousands of combining marks ("zalgo" floods) is refused.
    pub const MAX_GRAPHEME_BYTES: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, MessagingError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(MessagingError::invalid(
                "body must be at most 5000 characters (64 KiB)",
            ));
        }
        let body: String = raw.nfc().collect();
        if body.trim().is_empty() {
            return Err(MessagingError::invalid("body must not be empty"));
        }
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(MessagingError::invalid(
                "body must not contain control characters",
            ));
        }
        let mut count = 0;
        for grapheme in body.graphemes(true) {
            count += 1;
            if count > Self::MAX_GRAPHEMES {
                return Err(MessagingError::invalid(
                    "body must be at most 5000 characters",
                ));
            }
            if grapheme.len() > Self::MAX_GRAPHEME_BYTES {
                return Err(MessagingError::invalid(
                    "body must not contain characters with that many combining marks",
                ));
            }
        }
        Ok(MessageBody(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen key that makes a retried send return the first message instead of a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, MessagingError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !ok {
            return Err(MessagingError::invalid(
                "idempotencyKey must be 1-64 characters of A-Z, a-z, 0-9, - _ . :",
            ));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a send with an idempotency key asked for (conversation and original body), as a hex
/// SHA-256, so a retry is recognised even after the message was edited.
pub fn request_fingerprint(conversation_id: Id, body: &MessageBody) -> String {
    let mut hasher = Sha256::new();
    hasher.update(conversation_id.0.to_be_bytes());
    hasher.update(body.as_str().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stable key of the direct conversation between two accounts: `"minId:maxId"`.
pub fn direct_key(a: Id, b: Id) -> String {
    let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    format!("{}:{}", low.0, high.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// Exactly two accounts, one per pair; nobody leaves or joins.
    Direct,
    /// Up to the configured number of members; members may leave and add others.
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "DIRECT",
            ConversationKind::Group => "GROUP",
        }
    }

    pub fn from_stored(raw: &str) -> ConversationKind {
        if raw == "GROUP" {
            ConversationKind::Group
        } else {
            ConversationKind::Direct
        }
    }
}

/// Who may start a conversation with an account or add it to one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MessagingPrivacy {
    #[default]
    Everyone,
    /// Only accounts it follows.
    Following,
    Nobody,
}

impl MessagingPrivacy {
    pub fn as_str(self) -> &'static str {
        match self {
            MessagingPrivacy::Everyone => "EVERYONE",
            MessagingPrivacy::Following => "FOLLOWING",
            MessagingPrivacy::Nobody => "NOBODY",
        }
    }

    pub fn from_stored(raw: &str) -> MessagingPrivacy {
        match raw {
            "FOLLOWING" => MessagingPrivacy::Following,
            "NOBODY" => MessagingPrivacy::Nobody,
            _ => MessagingPrivacy::Everyone,
        }
    }
}

/// Limits of the messaging service, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagingLimits {
    /// Most members a conversation may have, its creator included.
    pub max_group_members: usize,
}

impl Default for MessagingLimits {
    fn default() -> Self {
        MessagingLimits {
            max_group_members: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: Id,
    pub kind: ConversationKind,
    pub creator_id: Id,
    pub created_at: UnixMillis,
}

/// A message as stored. A deleted one keeps its row: `deleted_at` is set and readers must not
/// show `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Id,
    pub conversation_id: Id,
    pub sender_id: Id,
    pub body: String,
    pub created_at: UnixMillis,
    pub edited_at: Option<UnixMillis>,
    pub deleted_at: Option<UnixMillis>,
}

impl Message {
    /// The body unless the message was deleted.
    pub fn visible_body(&self) -> Option<&str> {
        if self.deleted_at.is_some() {
            None
        } else {
            Some(&self.body)
        }
    }
}

/// A conversation as one member sees it: its newest message, the member's unread count and read
/// marker, and the position it holds in the member's list (its last activity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationView {
    pub conversation: Conversation,
    /// Keyset position in "my conversations": the id of the newest message, or of the moment the
    /// member joined when nothing was sent since.
    pub activity_id: Id,
    pub last_read_id: Id,
    pub last_message: Option<Message>,
    pub unread_count: i64,
    pub member_ids: Vec<Id>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_over_5000_graphemes_or_blank_is_rejected() {
        assert!(MessageBody::parse(&"a".repeat(5000)).is_ok());
        assert!(MessageBody::parse(&"a".repeat(5001)).is_err());
        assert!(MessageBody::parse(&"👍".repeat(5000)).is_ok());
        assert!(MessageBody::parse(" \n\t ").is_err());
        assert!(MessageBody::parse("").is_err());
        assert!(MessageBody::parse("a\u{0}b").is_err());
        assert!(MessageBody::parse(&format!("a{}", "\u{301}".repeat(1000))).is_err());
        assert!(MessageBody::parse(&format!("a{}", "\u{301}".repeat(10))).is_ok());
        assert!(
            MessageBody::parse(&"👩🏽\u{200d}❤\u{fe0f}\u{200d}💋\u{200d}👨🏻".repeat(1000)).is_ok()
        );
        assert_eq!(
            MessageBody::parse("e\u{301}").expect("valid").as_str(),
            "\u{e9}"
        );
    }

    #[test]
    fn direct_keys_ignore_order_and_fingerprints_differ_by_content() {
        assert_eq!(direct_key(Id(5), Id(3)), "3:5");
        assert_eq!(direct_key(Id(3), Id(5)), "3:5");
        let a = MessageBody::parse("hi").expect("valid");
        let b = MessageBody::parse("ho").expect("valid");
        assert_eq!(
            request_fingerprint(Id(1), &a),
            request_fingerprint(Id(1), &a)
        );
        assert_ne!(
            request_fingerprint(Id(1), &a),
            request_fingerprint(Id(1), &b)
        );
        assert_ne!(
            request_fingerprint(Id(1), &a),
            request_fingerprint(Id(2), &a)
        );
        assert_eq!(request_fingerprint(Id(1), &a).len(), 64);
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert!(IdempotencyKey::parse("retry-1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
    }
}
