//! Sorting database errors (sqlx for Postgres and migrations, rusqlite for the SQLite adapter) once: failures that mean "the database is slow, stuck or unreachable"
//! (statement timeout, connection loss, lock timeout, SQLite busy) carry the [`Unavailable`]
//! marker, so clients get UNAVAILABLE with Retry-After instead of INTERNAL; everything else is an
//! internal error with the operation named.

use nova_core::code::Unavailable;

/// `.context(..)` for the adapters: on sqlx results it classifies the error; on anyhow results
/// and options it behaves like `anyhow::Context`.
pub(crate) trait DbContext<T> {
    fn context(self, what: &'static str) -> anyhow::Result<T>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn context(self, what: &'static str) -> anyhow::Result<T> {
        self.map_err(|error| classify(error, what))
    }
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn context(self, what: &'static str) -> anyhow::Result<T> {
        self.map_err(|error| classify_sqlite(error, what))
    }
}

impl<T> DbContext<T> for anyhow::Result<T> {
    fn context(self, what: &'static str) -> anyhow::Result<T> {
        anyhow::Context::context(self, what)
    }
}

impl<T> DbContext<T> for Option<T> {
    fn context(self, what: &'static str) -> anyhow::Result<T> {
        anyhow::Context::context(self, what)
    }
}

/// Whether a sqlx error means the database could not serve in time rather than a bug.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Postgres: query_canceled (statement timeout), lock_not_available, connection
            // exceptions (08xxx), admin/crash shutdown, cannot_connect_now, too_many_connections.
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) after the busy timeout.
            matches!(
                code.as_ref(),
                "57014" | "55P03" | "57P01" | "57P02" | "57P03" | "53300" | "5" | "6"
            ) || code.starts_with("08")
        }),
        _ => false,
    }
}

fn classify(error: sqlx::Error, what: &'static str) -> anyhow::Error {
    if is_unavailable(&error) {
        anyhow::Error::new(Unavailable("the database did not answer in time"))
            .context(format!("{what}: {error}"))
    } else {
        anyhow::Error::new(error).context(what)
    }
}

/// Whether a rusqlite error means SQLite could not serve in time: SQLITE_BUSY or SQLITE_LOCKED
/// after the busy timeout, or an interrupted statement.
pub(crate) fn is_sqlite_unavailable(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::OperationInterrupted
            )
    )
}

pub(crate) fn classify_sqlite(error: rusqlite::Error, what: &'static str) -> anyhow::Error {
    if is_sqlite_unavailable(&error) {
        anyhow::Error::new(Unavailable("the database did not answer in time"))
            .context(format!("{what}: {error}"))
    } else {
        anyhow::Error::new(error).context(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_unavailable_and_other_errors_are_not() {
        let timed_out: Result<(), sqlx::Error> = Err(sqlx::Error::PoolTimedOut);
        let error = DbContext::context(timed_out, "get post").expect_err("error");
        assert!(error.downcast_ref::<Unavailable>().is_some());
        assert!(format!("{error:#}").contains("get post"));

        let decode: Result<(), sqlx::Error> = Err(sqlx::Error::RowNotFound);
        let error = DbContext::context(decode, "get post").expect_err("error");
        assert!(error.downcast_ref::<Unavailable>().is_none());
    }

    #[test]
    fn sqlite_busy_and_locked_are_unavailable_and_constraints_are_not() {
        let failure = |code: i32| {
            Err::<(), _>(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let error = DbContext::context(failure(code), "insert post").expect_err("error");
            assert!(error.downcast_ref::<Unavailable>().is_some(), "{error:#}");
            assert!(format!("{error:#}").contains("insert post"));
        }
        let error = DbContext::context(
            failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
            "insert post",
        )
        .expect_err("error");
        assert!(error.downcast_ref::<Unavailable>().is_none());
    }
}
