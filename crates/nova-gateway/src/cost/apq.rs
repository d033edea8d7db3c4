//! Automatic persisted queries (Apollo's protocol): a request may carry
//! `extensions.persistedQuery = { version: 1, sha256Hash }` and leave out `query` once the
//! server knows the hash. A query sent with a hash that is not its SHA-256 is refused. The
//! cache is bounded: at most `entries` documents of at most [`MAX_CACHED_QUERY_BYTES`] each.

use std::sync::Arc;

use moka::sync::Cache;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest query text kept in the cache (larger ones still run, they are just not remembered).
pub const MAX_CACHED_QUERY_BYTES: usize = 32 * 1024;

/// The message Apollo clients look for to resend the full query.
pub const NOT_FOUND: &str = "PersistedQueryNotFound";
pub const MISMATCH: &str = "provided sha does not match query";

#[derive(Clone)]
pub struct PersistedQueries {
    cache: Cache<String, Arc<str>>,
}

/// The `persistedQuery` extension of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedQuery {
    /// Lower-case hex SHA-256.
    pub hash: String,
}

impl PersistedQuery {
    /// Reads `extensions.persistedQuery`; `Ok(None)` when absent.
    pub fn from_extensions(
        extensions: Option<&Value>,
    ) -> Result<Option<PersistedQuery>, &'static str> {
        let Some(pq) = extensions.and_then(|e| e.get("persistedQuery")) else {
            return Ok(None);
        };
        if pq.is_null() {
            return Ok(None);
        }
        if pq.get("version").and_then(Value::as_i64) != Some(1) {
            return Err("persistedQuery.version must be 1");
        }
        let Some(hash) = pq.get("sha256Hash").and_then(Value::as_str) else {
            return Err("persistedQuery.sha256Hash must be a string");
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("persistedQuery.sha256Hash must be 64 hexadecimal digits");
        }
        Ok(Some(PersistedQuery {
            hash: hash.to_ascii_lowercase(),
        }))
    }

    /// Whether `query` hashes to this.
    pub fn matches(&self, query: &str) -> bool {
        sha256_hex(query) == self.hash
    }
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PersistedQueries {
    pub fn new(entries: u64) -> PersistedQueries {
        PersistedQueries {
            cache: Cache::builder().max_capacity(entries).build(),
        }
    }

    pub fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.cache.get(hash)
    }

    /// Remembers a query that ran (its hash already checked).
    pub fn insert(&self, hash: String, query: &str) {
        if query.len() <= MAX_CACHED_QUERY_BYTES {
            self.cache.insert(hash, Arc::from(query));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_extension_is_read_strictly_and_hashes_compare_case_insensitively() {
        let hash = sha256_hex("{ me { id } }");
        assert_eq!(hash.len(), 64);
        let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash.to_uppercase() } });
        let pq = PersistedQuery::from_extensions(Some(&ext))
            .expect("valid")
            .expect("present");
        assert!(pq.matches("{ me { id } }"));
        assert!(!pq.matches("{ me { username } }"));
        assert_eq!(PersistedQuery::from_extensions(None), Ok(None));
        assert_eq!(PersistedQuery::from_extensions(Some(&json!({}))), Ok(None));
        for bad in [
            json!({ "persistedQuery": { "version": 2, "sha256Hash": hash } }),
            json!({ "persistedQuery": { "version": 1 } }),
            json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
            json!({ "persistedQuery": "x" }),
        ] {
            assert!(
                PersistedQuery::from_extensions(Some(&bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = PersistedQueries::new(10);
        for i in 0..1000 {
            let query = format!("{{ a{i}: me {{ id }} }}");
            cache.insert(sha256_hex(&query), &query);
        }
        cache.cache.run_pending_tasks();
        assert!(cache.cache.entry_count() <= 10);
        let huge = "x".repeat(MAX_CACHED_QUERY_BYTES + 1);
        cache.insert(sha256_hex(&huge), &huge);
        assert!(cache.get(&sha256_hex(&huge)).is_none());
    }
}
