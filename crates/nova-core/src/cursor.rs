//! Opaque pagination cursors. A cursor encodes the keyset position (the id of the last item seen)
//! together with the kind of list it belongs to, so a cursor from one list is refused by another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::Id;

/// A keyset position within a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub id: Id,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid cursor")]
pub struct CursorError;

impl Cursor {
    pub fn new(id: Id) -> Self {
        Cursor { id }
    }

    /// Encodes for a list named `kind` (for example `"feed"`).
    pub fn encode(&self, kind: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{kind}:{}", self.id.0))
    }

    /// Decodes a client-supplied cursor; anything tampered, oversized or from another list fails.
    pub fn decode(kind: &str, raw: &str) -> Result<Cursor, CursorError> {
        if raw.len() > 128 {
            return Err(CursorError);
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError)?;
        let rest = text
            .strip_prefix("v1:")
            .and_then(|r| r.strip_prefix(kind))
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(CursorError)?;
        Id::parse(rest).map(Cursor::new).ok_or(CursorError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_refuses_other_lists() {
        let cursor = Cursor::new(Id(987654321));
        let raw = cursor.encode("feed");
        assert_eq!(Cursor::decode("feed", &raw), Ok(cursor));
        assert_eq!(Cursor::decode("followers", &raw), Err(CursorError));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_input_never_panics(raw in ".{0,200}") {
            let _ = Cursor::decode("feed", &raw);
        }
    }
}
