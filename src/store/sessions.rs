//! The operator's sessions (`/admin/`), kept in the store so that every process serving it
//! knows them: behind a load balancer the next click may reach another process, and a restart
//! no longer signs the operator out. Only a digest of each cookie's token is kept, so the table
//! holds nothing a cookie could be rebuilt from.

use super::db::{OptionalExtension, params};
use super::{Store, StoreResult};
use crate::model::now_rfc3339;

impl Store {
    /// Opens a session for `lifetime_secs`; the oldest sessions go when more than `max` live.
    pub fn open_session(
        &self,
        token_digest: &str,
        csrf: &str,
        site: Option<&str>,
        lifetime_secs: i64,
        max: usize,
    ) -> StoreResult<()> {
        let expires = super::jobs::in_secs(lifetime_secs);
        self.write(|c| {
            let tx = c.transaction()?;
            tx.run("DELETE FROM admin_sessions WHERE expires_at <= ?1", [now_rfc3339()])?;
            tx.run(
                "DELETE FROM admin_sessions WHERE token_digest NOT IN
                     (SELECT token_digest FROM admin_sessions ORDER BY expires_at DESC, token_digest LIMIT ?1)",
                [max.saturating_sub(1) as i64],
            )?;
            tx.run(
                "INSERT INTO admin_sessions (token_digest, csrf, expires_at, site) VALUES (?1, ?2, ?3, ?4)",
                params![token_digest, csrf, expires, site],
            )?;
            tx.commit()
        })
    }

    /// The CSRF token and the site (`None`: every site) of the live session with this digest,
    /// if there is one.
    pub fn session(&self, token_digest: &str) -> StoreResult<Option<(String, Option<String>)>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT csrf, site FROM admin_sessions WHERE token_digest = ?1 AND expires_at > ?2",
            )?
            .query_row(params![token_digest, now_rfc3339()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }

    /// Ends the session with this digest.
    pub fn close_session(&self, token_digest: &str) -> StoreResult<()> {
        self.write(|c| {
            c.run(
                "DELETE FROM admin_sessions WHERE token_digest = ?1",
                [token_digest],
            )?;
            Ok(())
        })
    }
}
