//! Post types and the parsers that turn raw client input into them.

use nova_core::{Id, UnixMillis};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use crate::PostError;

/// A post body: NFC-normalised, 1–500 grapheme clusters, at most 8 KiB. Stored and returned as
/// plain text; HTML in it is never interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostBody(String);

impl PostBody {
    pub const MAX_GRAPHEMES: usize = 500;
    /// Bounds pathological graphemes (one base character with thousands of combining marks).
    pub const MAX_BYTES: usize = 8 * 1024;

    pub fn parse(raw: &str) -> Result<Self, PostError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(PostError::invalid(
                "body must be at most 500 characters (8 KiB)",
            ));
        }
        let body: String = raw.nfc().collect();
        if body.trim().is_empty() {
            return Err(PostError::invalid("body must not be empty"));
        }
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(PostError::invalid(
                "body must not contain control characters",
            ));
        }
        if body.graphemes(true).count() > Self::MAX_GRAPHEMES {
            return Err(PostError::invalid("body must be at most 500 characters"));
        }
        Ok(PostBody(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Most mentions one post notifies, so a body full of `@names` cannot fan out without bound.
pub const MAX_MENTIONS: usize = 10;

/// The usernames written as `@name` in a body (lower-cased, each once, in order of first
/// appearance, at most [`MAX_MENTIONS`]). A mention starts at the beginning of the body or after
/// a character that cannot be part of a username (so `me@example.com` mentions no one), and is
/// 3 to 30 of `[a-z0-9_]`. Unresolved: whether the account exists is the consumer's question.
pub fn mentions(body: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && !prev.is_some_and(|p| is_name(p) || p == '@');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &body[i + 1..];
        let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
        let name = rest[..len].to_ascii_lowercase();
        if (3..=30).contains(&len) && !found.contains(&name) {
            found.push(name);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
        while chars.peek().is_some_and(|&(_, c)| is_name(c)) {
            prev = chars.next().map(|(_, c)| c);
        }
    }
    found
}

/// Who may see a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    Public,
    Followers,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Followers => "FOLLOWERS",
        }
    }

    pub fn from_stored(raw: &str) -> Visibility {
        if raw == "FOLLOWERS" {
            Visibility::Followers
        } else {
            Visibility::Public
        }
    }
}

/// A client-chosen key that makes a retried create return the first post instead of a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, PostError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !ok {
            return Err(PostError::invalid(
                "idempotencyKey must be 1-64 characters of A-Z, a-z, 0-9, - _ . :",
            ));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A post as stored (never a deleted one: stores filter those out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub id: Id,
    pub author_id: Id,
    pub body: String,
    pub visibility: Visibility,
    pub reply_to_id: Option<Id>,
    pub created_at: UnixMillis,
    pub edited_at: Option<UnixMillis>,
}

/// Counters of a post and the viewer's own like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostStats {
    pub like_count: i64,
    pub reply_count: i64,
    pub viewer_has_liked: bool,
}

/// An earlier body of an edited post. Version 1 is the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostVersion {
    pub post_id: Id,
    pub version: i64,
    pub body: String,
    pub created_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_mentions_once_lowercased_and_bounded() {
        use super::mentions;
        assert_eq!(
            mentions("@Alice and @bob_1, hi @alice! mail me@example.com @no @x.y"),
            vec!["alice", "bob_1"]
        );
        assert_eq!(mentions("@@carol (@dave)"), vec!["dave"]);
        assert_eq!(mentions(&"@a".repeat(40)), Vec::<String>::new());
        let many: String = (0..30).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentions(&many).len(), super::MAX_MENTIONS);
        assert!(mentions(&format!("@{}", "z".repeat(31))).is_empty());
    }

    use super::*;

    #[test]
    fn post_body_over_500_graphemes_is_rejected() {
        assert!(PostBody::parse(&"a".repeat(500)).is_ok());
        assert!(PostBody::parse(&"a".repeat(501)).is_err());
        // A family emoji is one grapheme of five code points (18 bytes): 300 of them fit in
        // 8 KiB, 500 of them are 500 graphemes but exceed the byte bound.
        assert!(PostBody::parse(&"👨‍👩‍👧".repeat(300)).is_ok());
        assert!(
            PostBody::parse(&"👨‍👩‍👧".repeat(500)).is_err(),
            "too many bytes"
        );
        assert!(PostBody::parse(&"👍".repeat(500)).is_ok());
    }

    #[test]
    fn post_body_is_nfc_normalised_and_not_blank() {
        let body = PostBody::parse("e\u{301}").expect("valid");
        assert_eq!(body.as_str(), "\u{e9}");
        assert!(PostBody::parse("   \n ").is_err());
        assert!(PostBody::parse("a\u{0}b").is_err());
        assert!(PostBody::parse("<script>alert(1)</script>'; DROP TABLE posts;--").is_ok());
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert!(IdempotencyKey::parse("retry-1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
    }
}
