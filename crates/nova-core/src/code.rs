//! The stable error codes clients see in `extensions.code`, with their HTTP status.
//!
//! Invariant: codes are only ever added, never renamed; clients switch on these strings.

/// Every expected failure is sorted into exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    /// The `extensions.code` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidInput => "INVALID_INPUT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::RateLimited => "RATE_LIMITED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }

    /// The HTTP status used when a failure with this code fails the whole request.
    pub const fn http_status(self) -> u16 {
        match self {
            Code::InvalidInput => 400,
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::Conflict => 409,
            Code::RateLimited => 429,
            Code::Unavailable => 503,
            Code::Internal => 500,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every domain error so that the API boundary can sort it without knowing it.
pub trait Coded {
    fn code(&self) -> Code;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_screaming_snake_and_unique() {
        let all = [
            Code::InvalidInput,
            Code::Unauthenticated,
            Code::Forbidden,
            Code::NotFound,
            Code::Conflict,
            Code::RateLimited,
            Code::Unavailable,
            Code::Internal,
        ];
        let mut seen = std::collections::HashSet::new();
        for code in all {
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!(seen.insert(code.as_str()));
        }
        assert_eq!(Code::Unavailable.http_status(), 503);
    }
}

/// Put in an error chain by an adapter when a failure means "overloaded or a dependency is down,
/// retry later" rather than a bug: the boundary reports it as UNAVAILABLE (503 + Retry-After).
#[derive(Debug, thiserror::Error)]
#[error("service unavailable: {0}")]
pub struct Unavailable(pub &'static str);
