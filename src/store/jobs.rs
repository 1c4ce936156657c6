//! The one durable queue of work. A job is a (kind, subject) pair — `verify` a mention,
//! `deliver` a notification, `send` a post's pings again — with when it is due, how often it was
//! tried, and a lease (until when, and whose) so that exactly one loop works on it at a time.
//!
//! Every worker loop leases from here under its own owner id (a process id and a random part),
//! gives back only its own leases, and `serve` takes back at start the leases of processes that
//! are gone. What is specific to a kind lives with it: the verifier's lease is fair between
//! source hosts ([`super::queue`]), a delivery joins its channel ([`super::notifications`]), a
//! send is leased per post ([`super::sends`]); the table, the lease rules and the owners are
//! one.

use super::{Cached, Result, Store};
use crate::model::now_rfc3339;
use rusqlite::{Connection, params};

/// What a job does to its subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Fetch and check a mention's source (subject: the mention's id).
    Verify,
    /// Deliver a notification on one channel (subject: the delivery's id).
    Deliver,
    /// Send a post's pings again (subject: the post's id).
    Send,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Verify => "verify",
            JobKind::Deliver => "deliver",
            JobKind::Send => "send",
        }
    }
}

/// `secs` from now, as the store writes times (clamped: see [`crate::model::Wait`]).
pub(super) fn in_secs(secs: i64) -> String {
    crate::model::Wait::secs_i64(secs).from_now_rfc3339()
}

/// A job tried and due again at `next_try`: one more attempt, its lease given back.
pub(super) fn retry(c: &Connection, kind: JobKind, subject: i64, next_try: &str) -> Result<()> {
    c.run(
        "UPDATE jobs SET next_try = ?3, attempts = attempts + 1, lease_until = NULL, lease_owner = NULL
         WHERE kind = ?1 AND subject = ?2",
        params![kind.as_str(), subject, next_try],
    )?;
    Ok(())
}

/// A job given back untried: due at `next_try`, no attempt counted.
pub(super) fn put_back(c: &Connection, kind: JobKind, subject: i64, next_try: &str) -> Result<()> {
    c.run(
        "UPDATE jobs SET next_try = ?3, lease_until = NULL, lease_owner = NULL
         WHERE kind = ?1 AND subject = ?2",
        params![kind.as_str(), subject, next_try],
    )?;
    Ok(())
}

/// A job done: gone from the queue.
pub(super) fn finish(c: &Connection, kind: JobKind, subject: i64) -> Result<()> {
    c.run(
        "DELETE FROM jobs WHERE kind = ?1 AND subject = ?2",
        params![kind.as_str(), subject],
    )?;
    Ok(())
}

/// Leases the job (kind, subject) to `owner` when no one else holds it, queuing it first if it
/// is not queued; `false` when another loop holds it.
pub(super) fn lease_subject(
    c: &Connection,
    kind: JobKind,
    subject: i64,
    lease_secs: i64,
    owner: &str,
) -> Result<bool> {
    let now = now_rfc3339();
    let changed = c.run(
        "INSERT INTO jobs (kind, subject, next_try, lease_until, lease_owner) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (kind, subject) DO UPDATE SET lease_until = excluded.lease_until,
             lease_owner = excluded.lease_owner
         WHERE lease_until IS NULL OR lease_until <= ?3 OR lease_owner = ?5",
        params![kind.as_str(), subject, now, in_secs(lease_secs), owner],
    )?;
    Ok(changed > 0)
}

impl Store {
    /// Gives back the leases `owner` still holds, of every kind (a loop that stops): those jobs
    /// are due again at once. Leases of other loops, in this process or another, are left alone.
    pub fn release_leases(&self, owner: &str) -> Result<usize> {
        self.write(|c| {
            c.run(
                "UPDATE jobs SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?1",
                [owner],
            )
        })
    }

    /// Gives back the unexpired leases whose owner `is_gone` says has stopped (a process that
    /// crashed), so its jobs need not wait for the leases to expire. Returns how many.
    pub fn release_orphaned_leases(&self, is_gone: impl Fn(&str) -> bool) -> Result<usize> {
        let owners: Vec<String> = self.read(|c| {
            c.prepare(
                "SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner IS NOT NULL AND lease_until > ?1",
            )?
            .query_map([now_rfc3339()], |r| r.get(0))?
            .collect()
        })?;
        let mut released = 0;
        for owner in owners.iter().filter(|o| is_gone(o)) {
            released += self.release_leases(owner)?;
        }
        Ok(released)
    }

    /// Jobs of `kind` queued, and how many of them are due now.
    pub fn jobs_waiting(&self, kind: JobKind) -> Result<(i64, i64)> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(next_try <= ?2), 0) FROM jobs WHERE kind = ?1",
                params![kind.as_str(), now_rfc3339()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_leased_from_one_table_by_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        for kind in [JobKind::Verify, JobKind::Deliver, JobKind::Send] {
            let lease = |owner: &str| {
                store
                    .write(|c| lease_subject(c, kind, 7, 60, owner))
                    .unwrap()
            };
            assert!(lease("a"), "{kind:?}: a queues and leases it");
            assert!(!lease("b"), "{kind:?}: b must wait");
            assert!(lease("a"), "{kind:?}: a may renew its own");
        }
        assert_eq!(store.jobs_waiting(JobKind::Deliver).unwrap(), (1, 1));
        assert_eq!(store.release_orphaned_leases(|o| o == "b").unwrap(), 0);
        assert_eq!(store.release_orphaned_leases(|o| o == "a").unwrap(), 3);
        assert!(
            store
                .write(|c| lease_subject(c, JobKind::Send, 7, 60, "b"))
                .unwrap()
        );
        store.write(|c| finish(c, JobKind::Send, 7)).unwrap();
        assert_eq!(store.jobs_waiting(JobKind::Send).unwrap(), (0, 0));
    }
}
