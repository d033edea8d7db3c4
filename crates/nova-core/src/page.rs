//! Forward keyset page requests (`first`/`after`) and the pages returned for them.

use crate::{Cursor, Id};

/// A validated request for one page: at most `limit` items strictly older than `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Id>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageRequestError {
    #[error("`first` must be between 0 and {max}")]
    FirstOutOfRange { max: u32 },
    #[error("`after` is not a valid cursor for this list")]
    BadCursor,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Builds a request from the client's `first` and `after` for the list named `kind`.
    pub fn parse(
        first: Option<i32>,
        after: Option<&str>,
        kind: &str,
    ) -> Result<Self, PageRequestError> {
        let limit = match first {
            None => Self::DEFAULT_LIMIT,
            Some(n) if (0..=Self::MAX_LIMIT as i32).contains(&n) => n as u32,
            Some(_) => {
                return Err(PageRequestError::FirstOutOfRange {
                    max: Self::MAX_LIMIT,
                })
            }
        };
        let after = match after {
            None => None,
            Some(raw) => Some(
                Cursor::decode(kind, raw)
                    .map_err(|_| PageRequestError::BadCursor)?
                    .id,
            ),
        };
        Ok(PageRequest { limit, after })
    }

    /// The number of rows a store should fetch: one more than asked, to learn `has_next_page`.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of items, in list order, each with the id its cursor is built from.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from `fetch_limit()` rows: trims the extra row and records that it existed.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest) -> Self {
        let has_next_page = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);
        Page {
            items: rows,
            has_next_page,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_bounded() {
        assert_eq!(PageRequest::parse(None, None, "x").map(|p| p.limit), Ok(20));
        assert_eq!(
            PageRequest::parse(Some(100), None, "x").map(|p| p.limit),
            Ok(100)
        );
        assert!(PageRequest::parse(Some(101), None, "x").is_err());
        assert!(PageRequest::parse(Some(-1), None, "x").is_err());
        assert_eq!(
            PageRequest::parse(Some(1), Some("garbage!"), "x"),
            Err(PageRequestError::BadCursor)
        );
    }

    #[test]
    fn page_trims_the_probe_row() {
        let request = PageRequest {
            limit: 2,
            after: None,
        };
        let page = Page::from_rows(vec![1, 2, 3], &request);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next_page);
    }
}
