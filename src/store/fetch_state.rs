//! What the fetcher learned about each URL it polls: validators for conditional GET, a content
//! fingerprint, and its health (errors in a row, when to try again).

use super::db::Conn;
use super::db::{OptionalExtension, params};
use super::{Result, Store, StoreResult};
use crate::model::now_rfc3339;

/// Validators and health of one fetched URL.
#[derive(Clone, Debug, Default)]
pub struct FetchState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fingerprint: Option<String>,
    pub error_count: i64,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
    pub next_try: Option<String>,
}

/// A fetched URL whose last fetches failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailingUrl {
    pub url: String,
    pub errors: i64,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
    /// When it will be tried again.
    pub next_try: Option<String>,
}

impl Store {
    pub fn fetch_state(&self, url: &str) -> StoreResult<FetchState> {
        self.read(|c| {
            c.query_row(
                "SELECT etag, last_modified, fingerprint, error_count, last_error, last_ok, next_try
                 FROM fetch_state WHERE url = ?1",
                [url],
                |r| {
                    Ok(FetchState {
                        etag: r.get(0)?,
                        last_modified: r.get(1)?,
                        fingerprint: r.get(2)?,
                        error_count: r.get(3)?,
                        last_error: r.get(4)?,
                        last_ok: r.get(5)?,
                        next_try: r.get(6)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    pub fn put_fetch_state(&self, url: &str, s: &FetchState) -> StoreResult<()> {
        self.write(|c| put_fetch_state_in(c, url, s))
    }

    /// URLs that have failed `min_errors` times or more in a row, with their last error.
    pub fn failing_urls(&self, min_errors: i64) -> StoreResult<Vec<FailingUrl>> {
        self.read(|c| {
            let stmt = c.prepare(
                "SELECT url, error_count, last_error, last_ok, next_try FROM fetch_state WHERE error_count >= ?1 ORDER BY url",
            )?;
            stmt.query_map([min_errors], |r| {
                Ok(FailingUrl {
                    url: r.get(0)?,
                    errors: r.get(1)?,
                    last_error: r.get(2)?,
                    last_ok: r.get(3)?,
                    next_try: r.get(4)?,
                })
            })?
            .collect()
        })
    }
}

/// [`Store::put_fetch_state`] on `c` (the group commit's connection, for async callers).
pub(super) fn put_fetch_state_in(c: &Conn, url: &str, s: &FetchState) -> Result<()> {
    c.execute(
        "INSERT INTO fetch_state (url, etag, last_modified, fingerprint, error_count, last_error, last_ok, next_try, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (url) DO UPDATE SET etag = ?2, last_modified = ?3, fingerprint = ?4, error_count = ?5,
             last_error = ?6, last_ok = ?7, next_try = ?8, updated_at = ?9",
        params![url, s.etag, s.last_modified, s.fingerprint, s.error_count, s.last_error, s.last_ok, s.next_try, now_rfc3339()],
    )?;
    Ok(())
}
