//! Account and graph types, with the parsers that turn raw client input into them.

use nova_core::{Id, UnixMillis};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use crate::UserError;

/// NFKC-normalised, lower-cased, 3–30 characters of `[a-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 30;

    pub fn parse(raw: &str) -> Result<Self, UserError> {
        if raw.len() > 4 * Self::MAX_LEN {
            return Err(UserError::invalid(
                "username must be 3-30 characters of a-z, 0-9 and _",
            ));
        }
        let normalised: String = raw.nfkc().collect::<String>().to_lowercase();
        let len = normalised.chars().count();
        let charset_ok = normalised
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) || !charset_ok {
            return Err(UserError::invalid(
                "username must be 3-30 characters of a-z, 0-9 and _",
            ));
        }
        Ok(Username(normalised))
    }

    /// For values read back from storage, which were validated when written.
    pub fn from_trusted(value: String) -> Self {
        Username(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, syntax-checked, with the domain lower-cased. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, UserError> {
        let trimmed = raw.trim();
        let invalid =
            || UserError::invalid("email must be a valid address of at most 254 characters");
        if trimmed.len() > Self::MAX_LEN || trimmed.chars().any(char::is_control) {
            return Err(invalid());
        }
        if !email_address::EmailAddress::is_valid(trimmed) {
            return Err(invalid());
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn from_trusted(value: String) -> Self {
        Email(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed. 8–128 characters; never stored, never logged.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, UserError> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) || raw.len() > 4 * Self::MAX_CHARS
        {
            return Err(UserError::invalid("password must be 8-128 characters"));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn bounded_text(
    raw: &str,
    field: &str,
    max_graphemes: usize,
    allow_newlines: bool,
) -> Result<String, UserError> {
    if raw.len() > max_graphemes * 16 {
        return Err(UserError::invalid(format!(
            "{field} must be at most {max_graphemes} characters"
        )));
    }
    let text: String = raw.trim().nfc().collect();
    if text
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && c == '\n'))
    {
        return Err(UserError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    if text.graphemes(true).count() > max_graphemes {
        return Err(UserError::invalid(format!(
            "{field} must be at most {max_graphemes} characters"
        )));
    }
    Ok(text)
}

/// Validated profile fields; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    /// `Some(None)` clears the avatar.
    pub avatar_url: Option<Option<String>>,
}

impl ProfilePatch {
    pub const MAX_DISPLAY_NAME: usize = 50;
    pub const MAX_BIO: usize = 160;
    pub const MAX_URL_BYTES: usize = 2048;

    pub fn parse(
        display_name: Option<&str>,
        bio: Option<&str>,
        avatar_url: Option<Option<&str>>,
    ) -> Result<Self, UserError> {
        let display_name = display_name
            .map(|v| bounded_text(v, "displayName", Self::MAX_DISPLAY_NAME, false))
            .transpose()?;
        let bio = bio
            .map(|v| bounded_text(v, "bio", Self::MAX_BIO, true))
            .transpose()?;
        let avatar_url = match avatar_url {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) if raw.trim().is_empty() => Some(None),
            Some(Some(raw)) => Some(Some(Self::parse_url(raw.trim())?)),
        };
        Ok(ProfilePatch {
            display_name,
            bio,
            avatar_url,
        })
    }

    fn parse_url(raw: &str) -> Result<String, UserError> {
        let invalid = || {
            UserError::invalid("avatarUrl must be an absolute http(s) URL of at most 2048 bytes")
        };
        if raw.len() > Self::MAX_URL_BYTES {
            return Err(invalid());
        }
        let url = url::Url::parse(raw).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid());
        }
        Ok(url.to_string())
    }
}

/// An account as stored, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: Username,
    pub email: Email,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub created_at: UnixMillis,
}

/// An account with its counters, as every read shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub user: User,
    pub follower_count: i64,
    pub following_count: i64,
    pub post_count: i64,
}

/// How two accounts relate, seen from `viewer` towards `other`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relationship {
    pub viewer_follows: bool,
    pub follows_viewer: bool,
    pub viewer_blocks: bool,
    pub blocks_viewer: bool,
    pub viewer_mutes: bool,
}

impl Relationship {
    /// Either side blocked the other: the accounts are invisible to each other.
    pub fn blocked_either_way(&self) -> bool {
        self.viewer_blocks || self.blocks_viewer
    }
}

/// One entry of a followers/following list: the edge id is the keyset position.
#[derive(Debug, Clone)]
pub struct FollowEdge {
    pub edge_id: Id,
    pub user: UserView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_nfkc_normalised_and_lower_cased() {
        assert_eq!(
            Username::parse("Alice_01").map(|u| u.0).ok(),
            Some("alice_01".into())
        );
        // Fullwidth letters normalise to ASCII under NFKC.
        assert_eq!(
            Username::parse("ＡＬＩＣＥ").map(|u| u.0).ok(),
            Some("alice".into())
        );
    }

    #[test]
    fn usernames_reject_confusables_zero_width_and_bad_lengths() {
        for bad in [
            "аlice", /* Cyrillic a */
            "al\u{200b}ice",
            "ab",
            &"a".repeat(31),
            "al ice",
            "al-ice",
            "",
            "💥💥💥",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Username::parse(&"a".repeat(30)).is_ok());
    }

    #[test]
    fn email_is_validated_and_domain_lower_cased() {
        assert_eq!(
            Email::parse("Bob@Example.COM").map(|e| e.0).ok(),
            Some("Bob@example.com".into())
        );
        for bad in [
            "",
            "bob",
            "bob@",
            "@x.com",
            "a b@x.com",
            &format!("{}@x.com", "a".repeat(260)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn profile_fields_are_bounded() {
        assert!(ProfilePatch::parse(Some(&"x".repeat(51)), None, None).is_err());
        assert!(ProfilePatch::parse(None, Some(&"é".repeat(161)), None).is_err());
        assert!(ProfilePatch::parse(None, None, Some(Some("javascript:alert(1)"))).is_err());
        let ok = ProfilePatch::parse(
            Some(" Ann "),
            Some("<b>hi</b>"),
            Some(Some("https://x.test/a.png")),
        );
        assert_eq!(ok.ok().and_then(|p| p.display_name), Some("Ann".into()));
    }
}
