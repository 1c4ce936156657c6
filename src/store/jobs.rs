//! The one durable queue of work. A job is a (kind, subject) pair — `verify` a mention,
//! `deliver` a notification, `send` a post's pings again — with when it is due, how often it was
//! tried, and a lease (until when, and whose) so that exactly one loop works on it at a time.
//!
//! Leases are fenced. Every lease taken bumps the job's `fence`, and the holder gets it back in
//! a [`Lease`]; every write of that job's outcome (finish, retry, put back, and the outcome
//! itself) names its lease and is refused ([`StaleLease`]) when the job has been leased again
//! since. A loop that is alive but stuck past its lease (a paused VM, a stop-the-world swap)
//! therefore cannot overwrite a newer outcome or drop another loop's retry when it wakes.
//! Holders renew their leases while work goes on ([`Store::renew_leases`]); a job whose holder
//! stopped renewing is taken over only after its lease expired: no process ids, no `/proc`,
//! nothing that is wrong across hosts or in containers. Every loop leases under an owner of its
//! own ([`new_owner`]) and gives back only its own leases.
//!
//! A job asked for again while leased (a source re-pinged during its fetch) is marked `again`:
//! finishing it makes it due at once instead of deleting it, so the newer ping gets a fetch of
//! its own.
//!
//! What is specific to a kind lives with it: the verifier's lease is fair between source hosts
//! ([`super::queue`]), a delivery joins its channel ([`super::notifications`]), a send is leased
//! per post ([`super::sends`]); the table, the lease rules and the owners are one.

use super::db::{Conn, OptionalExtension, params};
use super::{Result, Store, StoreResult};
use crate::model::now_rfc3339;

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

/// One lease on one job: the job and the fence it was leased under. Writes of the job's outcome
/// take it, and are refused when the job was leased again since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub kind: JobKind,
    pub subject: i64,
    pub fence: i64,
}

/// A write refused because its lease is no longer the job's: the job was leased again (its
/// lease expired while this holder was stuck). The caller's transaction or savepoint is rolled
/// back; the newer holder's outcome stands.
#[derive(Debug, thiserror::Error)]
#[error(
    "stale lease: the {kind} job {subject} was leased again (fence {fence} is old); this outcome is not written"
)]
pub struct StaleLease {
    kind: &'static str,
    subject: i64,
    fence: i64,
}

impl Lease {
    fn stale(&self) -> super::StoreError {
        super::StoreError::StaleLease(Box::new(StaleLease {
            kind: self.kind.as_str(),
            subject: self.subject,
            fence: self.fence,
        }))
    }
}

/// What this process is, for its lease owners: `serve`, or `cli` (a command run by hand, the
/// default). Set once, before anything is leased.
static OWNER_ROLE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names this process's role in the leases it takes (see [`new_owner`]).
pub fn set_owner_role(role: &'static str) {
    let _ = OWNER_ROLE.set(role);
}

/// A lease owner for one loop (a worker, a send run, a delivery run): `role:host:pid:random`.
/// The role (`serve`, or `cli` for a command run by hand) lets a `serve` that holds the store's
/// single-process lock give back the leases of the `serve` it replaces; the rest only names the
/// holder for people reading the store. Two loops of one process never share an owner.
pub fn new_owner() -> String {
    let role = OWNER_ROLE.get().copied().unwrap_or("cli");
    let random = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!("{role}:{}:{}:{random:016x}", hostname(), std::process::id())
}

/// This machine's name (the kernel's, else `/etc/hostname`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `lease` is still the job's (its fence unchanged); `Err` ([`StaleLease`]) when not.
pub(super) fn check(c: &Conn, lease: &Lease) -> Result<()> {
    let current = c
        .prepare_cached("SELECT fence FROM jobs WHERE kind = ?1 AND subject = ?2")?
        .query_row(params![lease.kind.as_str(), lease.subject], |r| {
            r.get::<_, i64>(0)
        });
    match current {
        Ok(fence) if fence == lease.fence => Ok(()),
        Ok(_) | Err(super::StoreError::NotFound) => Err(lease.stale()),
        Err(e) => Err(e),
    }
}

/// `secs` from now, as the store writes times (clamped: see [`crate::model::Wait`]).
pub(super) fn in_secs(secs: i64) -> String {
    crate::model::Wait::secs_i64(secs).from_now_rfc3339()
}

/// A job tried and due again at `next_try`: one more attempt, its lease given back. (Asked
/// for again meanwhile, it is due at once and its attempts start over: a new ping is a new
/// candidate.)
pub(super) fn retry(c: &Conn, lease: &Lease, next_try: &str) -> Result<()> {
    give_back(c, lease, next_try, true)
}

/// A job given back untried: due at `next_try` (at once when asked for again), no attempt
/// counted.
pub(super) fn put_back(c: &Conn, lease: &Lease, next_try: &str) -> Result<()> {
    give_back(c, lease, next_try, false)
}

/// [`retry`] (`tried`: one more attempt) or [`put_back`]; refused for a stale lease.
fn give_back(c: &Conn, lease: &Lease, next_try: &str, tried: bool) -> Result<()> {
    let changed = c.run(
        "UPDATE jobs SET next_try = CASE WHEN again = 1 THEN CAST(?4 AS time_text) ELSE CAST(?3 AS time_text) END,
                attempts = CASE WHEN again = 1 THEN 0 ELSE attempts + ?6 END,
                again = 0, lease_until = NULL, lease_owner = NULL
         WHERE kind = ?1 AND subject = ?2 AND fence = ?5",
        params![
            lease.kind.as_str(),
            lease.subject,
            next_try,
            now_rfc3339(),
            lease.fence,
            i64::from(tried)
        ],
    )?;
    if changed == 0 {
        return Err(lease.stale());
    }
    Ok(())
}

/// A job done: gone from the queue — unless it was asked for again while leased, in which
/// case it is due again at once, as a new job.
pub(super) fn finish(c: &Conn, lease: &Lease) -> Result<()> {
    let args = params![lease.kind.as_str(), lease.subject, lease.fence];
    if c.run(
        "DELETE FROM jobs WHERE kind = ?1 AND subject = ?2 AND fence = ?3 AND again = 0",
        args,
    )? > 0
    {
        return Ok(());
    }
    let requeued = c.run(
        "UPDATE jobs SET again = 0, attempts = 0, conditional = 0, next_try = ?4,
                lease_until = NULL, lease_owner = NULL
         WHERE kind = ?1 AND subject = ?2 AND fence = ?3",
        params![
            lease.kind.as_str(),
            lease.subject,
            lease.fence,
            now_rfc3339()
        ],
    )?;
    if requeued == 0 {
        return Err(lease.stale());
    }
    Ok(())
}

/// Leases the queued job (kind, subject) to `owner` until `until` when no one holds it (or
/// its lease expired): a new fence, and a clean `again`. `None` when another loop holds it.
pub(super) fn take(
    c: &Conn,
    kind: JobKind,
    subject: i64,
    until: &str,
    owner: &str,
) -> Result<Option<i64>> {
    c.prepare_cached(
        "UPDATE jobs SET lease_until = ?3, lease_owner = ?4, fence = fence + 1, again = 0
         WHERE kind = ?1 AND subject = ?2 AND (lease_until IS NULL OR lease_until <= ?5)
         RETURNING fence",
    )?
    .query_row(
        params![kind.as_str(), subject, until, owner, now_rfc3339()],
        |r| r.get(0),
    )
    .optional()
}

/// [`take`] of many jobs of `kind` in one statement, passing over a row another transaction
/// has locked (on PostgreSQL: it is being leased or finished right now by another process)
/// instead of waiting for it, as if it were held; SQLite has one writer and no row locks.
/// The fence of each job leased, by subject.
pub(super) fn take_many_unless_locked(
    c: &Conn,
    kind: JobKind,
    subjects: &[i64],
    until: &str,
    owner: &str,
) -> Result<std::collections::HashMap<i64, i64>> {
    let listed = subjects
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // The rows to lease are found by their keys on both engines (PostgreSQL plans an array
    // of keys as index probes; a JSON list it scanned the table for, on a small queue).
    let (sql, subjects) = match c.engine() {
        super::db::Engine::Postgres => (
            "UPDATE jobs SET lease_until = ?3, lease_owner = ?4, fence = jobs.fence + 1, again = 0
             FROM (SELECT subject FROM jobs
                   WHERE kind = ?1 AND subject = ANY(CAST(CAST(?2 AS TEXT) AS BIGINT[]))
                     AND (lease_until IS NULL OR lease_until <= ?5)
                   FOR UPDATE SKIP LOCKED) AS free
             WHERE jobs.kind = ?1 AND jobs.subject = free.subject
             RETURNING jobs.subject, jobs.fence",
            format!("{{{listed}}}"),
        ),
        super::db::Engine::Sqlite => (
            "UPDATE jobs SET lease_until = ?3, lease_owner = ?4, fence = fence + 1, again = 0
             WHERE kind = ?1 AND subject IN (SELECT value FROM json_each(?2))
               AND (lease_until IS NULL OR lease_until <= ?5)
             RETURNING subject, fence",
            format!("[{listed}]"),
        ),
    };
    c.prepare_cached(sql)?
        .query_map(
            params![kind.as_str(), subjects, until, owner, now_rfc3339()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect()
}

/// Leases the job (kind, subject) to `owner` when no one holds it (or its lease expired),
/// queuing it first if it is not queued; `None` while another loop holds it — the same owner
/// included: a loop never takes a job it already holds a second time.
pub(super) fn lease_subject(
    c: &Conn,
    kind: JobKind,
    subject: i64,
    lease_secs: i64,
    owner: &str,
) -> Result<Option<Lease>> {
    c.run(
        "INSERT INTO jobs (kind, subject, next_try) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![kind.as_str(), subject, now_rfc3339()],
    )?;
    let fence = take(c, kind, subject, &in_secs(lease_secs), owner)?;
    Ok(fence.map(|fence| Lease {
        kind,
        subject,
        fence,
    }))
}

/// [`Store::renew_leases`] on `c` (the group commit's connection, for the worker). On
/// PostgreSQL a row another transaction has locked is passed over, not waited for: it is being
/// finished or put back right now (by another group of this process's committers), and needs
/// no renewal — if that transaction fails, the next renewal, a third of a lease later, takes
/// it. Waiting deadlocked: the renewal locks the owner's rows in the table's order while a
/// group commit finishes several of them in its own, each holding one the other wants
/// (PostgreSQL broke each cycle after a second, and a group stalled a second per unit).
pub(super) fn renew_leases_in(c: &Conn, owner: &str, lease_secs: i64) -> Result<usize> {
    let sql = match c.engine() {
        super::db::Engine::Postgres => {
            "UPDATE jobs SET lease_until = ?2
             FROM (SELECT kind, subject FROM jobs WHERE lease_owner = ?1 FOR UPDATE SKIP LOCKED) AS mine
             WHERE jobs.kind = mine.kind AND jobs.subject = mine.subject"
        }
        super::db::Engine::Sqlite => "UPDATE jobs SET lease_until = ?2 WHERE lease_owner = ?1",
    };
    c.run(sql, params![owner, in_secs(lease_secs)])
}

/// How often a leaser looks at whether the hot tables' statistics are stale (see
/// [`refresh_statistics`]).
const STATISTICS_LOOK_EVERY_MS: i64 = 1_000;

/// The tables whose size swings faster than autovacuum follows: the queue, and the mentions
/// and addresses that the group commit writes many at a time (see `together`).
const TABLES_THAT_SWING: &str =
    "CAST('jobs' AS regclass), CAST('mentions' AS regclass), CAST('mention_urls' AS regclass)";

/// On PostgreSQL, analyzes each of [`TABLES_THAT_SWING`] whose statistics no longer describe
/// it: more rows changed since the last ANALYZE than it then held (plus 500), so it may have
/// doubled or emptied. Looks at most once a second (`looked_at_ms`: when it last looked, in
/// milliseconds since the epoch); SQLite plans without statistics, and is left alone. Runs in
/// the lease's group commit: an ANALYZE rolled back with its group is made at the next look, a
/// second later.
///
/// Why: PostgreSQL plans every statement from those statistics and keeps the plan of a
/// prepared statement until they change, and these tables grow faster than autovacuum
/// refreshes them (a minute apart at best). Analyzed while nearly empty, then given 10,000
/// jobs in seconds, the queue was taken for a handful of rows: each lease read every due job
/// and sorted them (a bitmap scan) instead of reading the oldest through `jobs_due`, and each
/// lease's update scanned the whole queue — 3.4 ms a window, and 12 of PostgreSQL's 15 s of
/// work in a run of 10,000 verifications (`pg_stat_statements`, `auto_explain`). A plan made
/// from fresh statistics reads a window in 0.1 ms. The same holds for the outcomes written
/// together (`mentions.id IN (…)`, `VALUES` joined to `mentions`): planned while `mentions`
/// was empty, each read or updated every mention.
pub(super) fn refresh_statistics(
    c: &Conn,
    looked_at_ms: &std::sync::atomic::AtomicI64,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    if c.engine() != super::db::Engine::Postgres {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let looked_at = looked_at_ms.load(Ordering::Relaxed);
    if now_ms - looked_at < STATISTICS_LOOK_EVERY_MS
        || looked_at_ms
            .compare_exchange(looked_at, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    let stale: Vec<String> = c
        .prepare_cached(format!(
            "SELECT CAST(t.relname AS TEXT) FROM pg_stat_user_tables s JOIN pg_class t ON t.oid = s.relid
             WHERE s.relid IN ({TABLES_THAT_SWING})
               AND s.n_mod_since_analyze > 500 + GREATEST(t.reltuples, 0)"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for table in stale {
        c.execute_batch(&format!("ANALYZE {table}"))?;
    }
    Ok(())
}

impl Store {
    /// Gives back the leases `owner` still holds, of every kind (a loop that stops): those jobs
    /// are due again at once. Leases of other loops, in this process or another, are left alone.
    pub fn release_leases(&self, owner: &str) -> StoreResult<usize> {
        self.write(|c| {
            c.run(
                "UPDATE jobs SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?1",
                [owner],
            )
        })
    }

    /// Renews every lease `owner` holds for `lease_secs` from now (a loop whose work goes on).
    /// A lease already taken over is not `owner`'s any more, and is left alone.
    pub fn renew_leases(&self, owner: &str, lease_secs: i64) -> StoreResult<usize> {
        self.write(|c| renew_leases_in(c, owner, lease_secs))
    }

    /// Gives back every lease held by a `serve` process (owners `serve:…`). Only for a `serve`
    /// that holds the SQLite store's single-process lock: then no other `serve` is alive, and
    /// those leases belong to one that crashed; leases of commands run by hand (`cli:…`) are
    /// left to expire. Returns how many.
    pub fn release_leases_of_dead_serve(&self) -> StoreResult<usize> {
        self.write(|c| {
            c.run(
                "UPDATE jobs SET lease_until = NULL, lease_owner = NULL WHERE lease_owner LIKE 'serve:%'",
                [],
            )
        })
    }

    /// Jobs of `kind` queued, and how many of them are due now.
    pub fn jobs_waiting(&self, kind: JobKind) -> StoreResult<(i64, i64)> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN next_try <= ?2 THEN 1 ELSE 0 END), 0) FROM jobs WHERE kind = ?1",
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
        for (store, _keep) in crate::store::testing::test_stores("jobs") {
            every_kind_is_leased_once(&store);
        }
    }

    fn every_kind_is_leased_once(store: &Store) {
        for kind in [JobKind::Verify, JobKind::Deliver, JobKind::Send] {
            let lease = |owner: &str| {
                store
                    .write(|c| lease_subject(c, kind, 7, 60, owner))
                    .unwrap()
            };
            assert!(
                lease("serve:a").is_some(),
                "{kind:?}: a queues and leases it"
            );
            assert!(lease("cli:b").is_none(), "{kind:?}: b must wait");
            assert!(
                lease("serve:a").is_none(),
                "{kind:?}: a does not take it twice"
            );
        }
        assert_eq!(store.jobs_waiting(JobKind::Deliver).unwrap(), (1, 1));
        assert_eq!(store.renew_leases("serve:a", 60).unwrap(), 3);
        assert_eq!(store.release_leases_of_dead_serve().unwrap(), 3);
        let lease = store
            .write(|c| lease_subject(c, JobKind::Send, 7, 60, "cli:b"))
            .unwrap()
            .expect("released: b takes it");
        assert_eq!(lease.fence, 2, "every lease bumps the fence");
        store.write(|c| finish(c, &lease)).unwrap();
        assert_eq!(store.jobs_waiting(JobKind::Send).unwrap(), (0, 0));
    }

    #[test]
    fn a_stale_lease_writes_nothing_and_a_job_asked_for_again_survives_its_finish() {
        for (store, _keep) in crate::store::testing::test_stores("stale") {
            stale_leases_write_nothing(&store);
        }
    }

    fn stale_leases_write_nothing(store: &Store) {
        let take = |owner: &str, secs: i64| {
            store
                .write(|c| lease_subject(c, JobKind::Deliver, 1, secs, owner))
                .unwrap()
        };
        // A takes the job and stalls; its lease runs out; B takes it over.
        let old = take("serve:a", -1).expect("a leases");
        let new = take("serve:b", 60).expect("expired: b takes over");
        assert!(new.fence > old.fence);
        for write in [
            Box::new(|c: &Conn| finish(c, &old)) as Box<dyn Fn(&Conn) -> Result<()>>,
            Box::new(|c: &Conn| retry(c, &old, "2000-01-01T00:00:00Z")),
            Box::new(|c: &Conn| put_back(c, &old, "2000-01-01T00:00:00Z")),
        ] {
            let refused = store.write(|c| write(c)).unwrap_err();
            assert!(refused.is_stale_lease(), "{refused}");
        }
        assert_eq!(
            store.jobs_waiting(JobKind::Deliver).unwrap().0,
            1,
            "b's job stands"
        );
        // Asked for again while b works on it: b's finish leaves it due, not gone.
        store
            .write(|c| {
                c.run(
                    "UPDATE jobs SET again = 1 WHERE kind = 'deliver' AND subject = 1",
                    [],
                )
            })
            .unwrap();
        store.write(|c| finish(c, &new)).unwrap();
        assert_eq!(store.jobs_waiting(JobKind::Deliver).unwrap(), (1, 1));
        let third = take("serve:c", 60).expect("due again at once");
        store.write(|c| finish(c, &third)).unwrap();
        assert_eq!(store.jobs_waiting(JobKind::Deliver).unwrap(), (0, 0));
    }
}
