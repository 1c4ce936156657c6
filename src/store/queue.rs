//! Verification jobs: one `verify` job (see [`super::jobs`]) per mention that still needs a
//! fetch, leased by one loop at a time and fair between source hosts; and the group commit that
//! turns the receivers' concurrent enqueues into one transaction.

use super::db::{Conn, OptionalExtension, Row, params};
use super::decisions::Decision;
use super::mentions::Applied;
use super::together::VerifiedWrite;
use super::{Result, Store, StoreResult};
use crate::model::{Kind, Status, now_rfc3339};

/// A leased unit of work: one mention to (re)verify.
#[derive(Clone, Debug)]
pub struct Job {
    pub mention_id: i64,
    pub source: String,
    pub target: String,
    pub kind: Kind,
    pub hint: Option<String>,
    pub attempts: i64,
    pub conditional: bool,
    pub ever_verified: bool,
    /// The fence this job was leased under (see [`super::jobs::Lease`]).
    pub fence: i64,
}

impl Job {
    /// The lease its outcome is written under.
    pub fn lease(&self) -> super::jobs::Lease {
        super::jobs::Lease {
            kind: super::JobKind::Verify,
            subject: self.mention_id,
            fence: self.fence,
        }
    }

    /// The source's host as the fetcher counts it (see [`lease_due`]).
    pub fn source_host(&self) -> String {
        crate::model::host_of(&self.source)
            .map(|h| h.trim_end_matches('.').to_string())
            .unwrap_or_default()
    }
}

/// Result of an enqueue ([`GroupCommit::enqueue`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Enqueued {
    pub id: i64,
    /// Names the status page (`/webmention/<token>`).
    pub status_token: String,
    /// A moderator's decision on the pair (`rejected`, `blocked`, `approved`), which later pings
    /// do not change.
    pub moderation: Option<String>,
    pub new: bool,
    /// It was queued already (a repeated ping coalesces into the waiting job).
    pub already_queued: bool,
    pub status: Status,
}

/// A candidate for the queue: a (source, target post) pair and how it came.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub source: String,
    /// The post's URL (or the target as given, when no post is known).
    pub target: String,
    /// [`crate::model::match_key`] of the target.
    pub target_key: String,
    pub post_id: Option<i64>,
    pub kind: Kind,
    /// JSON facts from the producer (see `pipeline::Hint`).
    pub hint: Option<String>,
}

pub(super) fn job_from_row(r: &Row<'_>) -> Result<Job> {
    Ok(Job {
        mention_id: r.get(0)?,
        source: r.get(1)?,
        target: r.get(2)?,
        kind: Kind::parse(&r.get::<_, String>(3)?).unwrap_or(Kind::Webmention),
        hint: r.get(4)?,
        attempts: r.get(5)?,
        conditional: r.get(6)?,
        ever_verified: r.get(7)?,
        fence: r.get(8)?,
    })
}

impl Store {
    /// Queues every published or held mention for a conditional re-check, spread over at
    /// least `spread_secs` (0: all due now) so a large store does not fetch everything at once:
    /// long enough that the run averages at most [`REVERIFY_PER_SECOND`] re-checks a second, up
    /// to a day (1,000,000 mentions: one every 86 ms, over 24 hours). Queued in transactions of
    /// [`REVERIFY_CHUNK`], so intake is not held up behind one long write. Returns how many.
    pub fn enqueue_reverify(&self, spread_secs: i64) -> StoreResult<usize> {
        self.write(|c| {
            let ids: Vec<i64> = c
                // Imported history is kept as it came unless imported with --verify: the page
                // behind a ten-year-old pingback is often long gone.
                .prepare(
                    "SELECT id FROM mentions WHERE status IN ('verified', 'held')
                     AND (imported IS NULL OR imported_verify = 1) ORDER BY id",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_>>()?;
            let n = ids.len().max(1) as i64;
            let spread_secs = reverify_spread(spread_secs, n);
            let start = chrono::Utc::now();
            for (chunk, ids) in ids.chunks(REVERIFY_CHUNK).enumerate() {
                let tx = c.transaction()?;
                for (j, id) in ids.iter().enumerate() {
                    let i = (chunk * REVERIFY_CHUNK + j) as i64;
                    let at = start + chrono::Duration::milliseconds(spread_secs * 1000 * i / n);
                    tx.run(
                        "INSERT INTO jobs (kind, subject, next_try, attempts, conditional, site)
                         VALUES ('verify', ?1, ?2, 0, 1, (SELECT site FROM mentions WHERE id = ?1))
                         ON CONFLICT (kind, subject) DO NOTHING",
                        params![id, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)],
                    )?;
                }
                tx.commit()?;
            }
            Ok(ids.len())
        })
    }

    /// Mentions waiting for verification, and how many of them are due now.
    pub fn queue_depth(&self) -> StoreResult<(i64, i64)> {
        self.jobs_waiting(super::JobKind::Verify)
    }

    /// Whether a mention still has a job waiting.
    pub fn is_queued(&self, mention_id: i64) -> StoreResult<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM jobs WHERE kind = 'verify' AND subject = ?1",
                [mention_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }
}

/// Leases the job of one given mention to `owner` (a check made now); `None` if another loop
/// holds it.
pub(super) fn lease_one_in(
    c: &Conn,
    mention_id: i64,
    lease_secs: i64,
    owner: &str,
) -> Result<Option<Job>> {
    let until = super::jobs::in_secs(lease_secs);
    if super::jobs::take(c, super::JobKind::Verify, mention_id, &until, owner)?.is_none() {
        return Ok(None);
    }
    c.query_row(
        "SELECT q.subject, m.source, m.target, COALESCE(q.arrival, m.kind), m.hint, q.attempts, q.conditional,
                m.verified_at IS NOT NULL, q.fence
         FROM jobs q JOIN mentions m ON m.id = q.subject WHERE q.kind = 'verify' AND q.subject = ?1",
        [mention_id],
        job_from_row,
    )
    .optional()
}

/// Due verification jobs with their mentions, oldest first, a window after a given one.
macro_rules! due_jobs_sql {
    () => {
        "SELECT q.subject, m.source, m.target, COALESCE(q.arrival, m.kind), m.hint, q.attempts,
                q.conditional, m.verified_at IS NOT NULL, q.fence, q.next_try
         FROM jobs q JOIN mentions m ON m.id = q.subject
         WHERE q.kind = 'verify' AND q.next_try <= ?1 AND (q.lease_until IS NULL OR q.lease_until <= ?1)
           AND (q.next_try, q.subject) > (?3, ?4)
         ORDER BY q.next_try, q.subject LIMIT ?2"
    };
}

/// [`due_jobs_sql`] of one site's jobs (`?2`), oldest first, at most `?3`.
const SITE_DUE_JOBS_SQL: &str = "SELECT q.subject, m.source, m.target, COALESCE(q.arrival, m.kind), m.hint, q.attempts,
        q.conditional, m.verified_at IS NOT NULL, q.fence, q.next_try
 FROM jobs q JOIN mentions m ON m.id = q.subject
 WHERE q.kind = 'verify' AND q.site = ?2 AND q.next_try <= ?1 AND (q.lease_until IS NULL OR q.lease_until <= ?1)
 ORDER BY q.next_try, q.subject LIMIT ?3";

/// The sites with verification jobs queued (due or not), by a walk of `jobs_site_due` that
/// costs one index seek a site, however long each site's queue.
const SITES_WITH_JOBS_SQL: &str = "WITH RECURSIVE s(site) AS (
     SELECT MIN(site) FROM jobs WHERE kind = 'verify'
     UNION ALL
     SELECT (SELECT MIN(site) FROM jobs WHERE kind = 'verify' AND site > s.site) FROM s WHERE s.site IS NOT NULL
 ) SELECT site FROM s WHERE site IS NOT NULL";

/// Sites one lease call looks at most, when many have work due; the next call goes on from
/// where this one stopped.
const LEASE_SITES_PER_CALL: usize = 64;

/// Where the next lease call starts going round the sites (each process goes round on its own).
static NEXT_SITE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The average rate a scheduled re-verification run stays under (see
/// [`Store::enqueue_reverify`]).
pub const REVERIFY_PER_SECOND: i64 = 10;
/// Jobs a re-verification run queues in one transaction.
const REVERIFY_CHUNK: usize = 5_000;

/// How long a re-verification of `n` mentions is spread over, asked for at least `asked`
/// seconds (0: none).
fn reverify_spread(asked: i64, n: i64) -> i64 {
    if asked <= 0 {
        return 0;
    }
    asked.max(n / REVERIFY_PER_SECOND).min(24 * 3600)
}

/// What leasing knows of the source hosts' room: the calling loop's jobs in flight per host,
/// each host's share (`[fetch] per_host`), and the name this process's fleet slots carry (see
/// `store::fleet`): on PostgreSQL the other processes' slots count against a host's share too,
/// and this process's own are its jobs in flight already (or kept for its next fetch there).
#[derive(Clone, Debug, Default)]
pub struct HostRoom {
    pub in_flight: std::collections::HashMap<String, usize>,
    pub per_host: usize,
    pub instance: String,
}

/// Windows of due jobs one lease call reads at most, looking past hosts whose slots are full.
const LEASE_SCAN_WINDOWS: usize = 16;

/// Leases up to `limit` due jobs for `lease_secs` to `owner`; an expired lease (a crash) is
/// due again. Fair between source hosts: a host that already has `per_host` jobs in
/// `in_flight` (or chosen in this call) is passed over for now, so that one host's slow or
/// hanging pages cannot take every slot from the others. Jobs are looked for oldest first, a
/// window at a time, up to [`LEASE_SCAN_WINDOWS`] windows: the first a little over `limit`
/// (usually enough: the oldest jobs of hosts with room), each next one twice as long, up to
/// eight times `limit`. A window is read with its mentions (a join row by row): eight times
/// `limit` from the start was a quarter of PostgreSQL's time in a drain of 10,000 jobs
/// (`pg_stat_statements`), most of it rows read for slots that were not free.
///
/// `many_sites`: more than one site is served, so leasing goes round the sites first (a single
/// site's store is spared the look at which sites have work).
pub(crate) fn lease_due(
    tx: &Conn,
    limit: usize,
    lease_secs: i64,
    owner: &str,
    room: &HostRoom,
    many_sites: bool,
) -> Result<Vec<Job>> {
    let per_host = room.per_host;
    let longest_window = limit.saturating_mul(8).saturating_add(64);
    let mut window = limit
        .saturating_mul(2)
        .saturating_add(8)
        .min(longest_window);
    let now = now_rfc3339();
    let until = super::jobs::in_secs(lease_secs);
    let mut chosen: std::collections::HashMap<String, usize> = Default::default();
    let mut jobs: Vec<Job> = Vec::new();
    // Oldest first, a window at a time: when one host's backlog fills a window (its jobs all
    // passed over, its slots taken), the next window is read, so other hosts' jobs behind it
    // are found — up to LEASE_SCAN_WINDOWS windows a call, which bounds the work.
    let mut after: (String, i64) = (super::BEFORE_ANY_TIME.to_string(), i64::MIN);
    // Many processes lease from one PostgreSQL store: rows another process is leasing right
    // now are skipped, not waited for (it holds them until its lease call commits), and a
    // host's fetches in flight anywhere in the fleet count against its share here.
    let fleet = tx.engine() == super::db::Engine::Postgres;
    let mut in_flight = room.in_flight.clone();
    if fleet {
        let elsewhere: Vec<(String, i64)> = tx
            .prepare_cached(
                "SELECT host, COUNT(*) FROM host_slots
                 WHERE until > ?1 AND substr(holder, 1, length(?2) + 1) <> ?2 || ' ' GROUP BY host",
            )?
            .query_map(params![now, room.instance], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_>>()?;
        for (host, n) in elsewhere {
            *in_flight.entry(host).or_default() += n as usize;
        }
    }
    let sites: Vec<String> = if many_sites {
        tx.prepare_cached(SITES_WITH_JOBS_SQL)?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    if sites.len() > 1 {
        // Round the sites first, then the hosts: each site with work due gives one job a
        // round (its oldest whose host has room), so a site's flood of 10,000 pings holds
        // back another site's single ping by one round, not by 10,000 jobs.
        let start = NEXT_SITE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let looked_at = sites.len().min(LEASE_SITES_PER_CALL);
        let per_site = (limit.saturating_mul(2) + 8) as i64;
        let mut queues: Vec<std::collections::VecDeque<Job>> = Vec::with_capacity(looked_at);
        for i in 0..looked_at {
            let site = &sites[(start + i) % sites.len()];
            let due: std::collections::VecDeque<Job> = tx
                .prepare_cached(SITE_DUE_JOBS_SQL)?
                .query_map(params![now, site, per_site], job_from_row)?
                .collect::<Result<_>>()?;
            queues.push(due);
        }
        while jobs.len() < limit && queues.iter().any(|q| !q.is_empty()) {
            for queue in queues.iter_mut() {
                while let Some(job) = queue.pop_front() {
                    let host = job.source_host();
                    let busy = in_flight.get(&host).copied().unwrap_or(0);
                    let taken = chosen.entry(host).or_default();
                    if busy + *taken < per_host.max(1) {
                        *taken += 1;
                        jobs.push(job);
                        break;
                    }
                }
                if jobs.len() == limit {
                    break;
                }
            }
        }
    }
    for _ in 0..LEASE_SCAN_WINDOWS {
        if sites.len() > 1 {
            break;
        }
        let due: Vec<Job> = tx
            .prepare_cached(due_jobs_sql!())?
            .query_map(params![now, window as i64, after.0, after.1], |r| {
                Ok((job_from_row(r)?, r.get::<_, String>(9)?))
            })?
            .map(|row| {
                row.map(|(job, next_try)| {
                    after = (next_try, job.mention_id);
                    job
                })
            })
            .collect::<Result<_>>()?;
        let exhausted = due.len() < window;
        for job in due {
            let host = job.source_host();
            let busy = in_flight.get(&host).copied().unwrap_or(0);
            let taken = chosen.entry(host).or_default();
            if busy + *taken < per_host.max(1) {
                *taken += 1;
                jobs.push(job);
                if jobs.len() == limit {
                    break;
                }
            }
        }
        if exhausted || jobs.len() == limit {
            break;
        }
        window = window.saturating_mul(2).min(longest_window);
    }
    // Each was free when read; one taken meanwhile is left to its taker. On PostgreSQL the
    // windows are read without locks (locking every row read, most of them passed over, cost
    // more than the fetches: a host at its share fills whole windows) and only the chosen rows
    // are locked, each skipped if another process is leasing it right now.
    // All in one statement, not a round trip per job.
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let subjects: Vec<i64> = jobs.iter().map(|job| job.mention_id).collect();
    let fences =
        super::jobs::take_many_unless_locked(tx, super::JobKind::Verify, &subjects, &until, owner)?;
    Ok(jobs
        .into_iter()
        .filter_map(|mut job| {
            job.fence = *fences.get(&job.mention_id)?;
            Some(job)
        })
        .collect())
}

/// Makes (source, target post) a candidate and queues it for verification now. A pair seen
/// before keeps its row, its status and its moderation; only the job is (re)queued.
pub(super) fn enqueue_one(c: &Conn, cand: &Candidate) -> Result<Enqueued> {
    let existing: Option<(i64, String, String, Option<String>)> = c
        .prepare_cached(
            "SELECT id, status, status_token, moderation FROM mentions WHERE source = ?1 AND target_key = ?2",
        )?
        .query_row(params![cand.source, cand.target_key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((id, status, status_token, moderation)) = existing else {
        // A new pair: its mention and its job, written as a group's new pings are.
        let enqueued = super::together::enqueue(c, &[cand])?;
        return Ok(enqueued
            .into_iter()
            .next()
            .expect("an answer for each candidate"));
    };
    c.run(
        "UPDATE mentions SET hint = COALESCE(?2, hint), post_id = COALESCE(?3, post_id),
                target = CASE WHEN ?3 IS NOT NULL THEN ?4 ELSE target END
         WHERE id = ?1",
        params![id, cand.hint, cand.post_id, cand.target],
    )?;
    let already_queued = c
        .prepare_cached("SELECT 1 FROM jobs WHERE kind = 'verify' AND subject = ?1")?
        .exists([id])?;
    c.run(
        "INSERT INTO jobs (kind, subject, next_try, attempts, conditional, arrival, site)
         VALUES ('verify', ?1, ?2, 0, 0, ?3, (SELECT site FROM mentions WHERE id = ?1))
         ON CONFLICT (kind, subject) DO UPDATE SET next_try = CASE WHEN excluded.next_try < jobs.next_try THEN excluded.next_try ELSE jobs.next_try END, conditional = 0,
             arrival = excluded.arrival, again = CASE WHEN jobs.lease_owner IS NOT NULL THEN 1 ELSE 0 END",
        params![id, now_rfc3339(), cand.kind.as_str()],
    )?;
    Ok(Enqueued {
        id,
        status_token,
        moderation,
        new: false,
        already_queued,
        status: Status::parse(&status).unwrap_or(Status::Pending),
    })
}

/// One write waiting for a group commit: run in the batch's transaction (again in a savepoint
/// of its own when a write of the batch failed: see [`commit_group`]), then answered once the
/// transaction is committed (or has failed).
trait Unit: Send {
    /// Runs the write (again, after a rolled-back first run); `false` when it failed.
    fn run(&mut self, c: &Conn) -> bool;
    /// Answers the caller: the write's result, or why the commit failed.
    fn answer(self: Box<Self>, commit: std::result::Result<(), String>);
    /// What this write is, when it can be written with its group's others of its kind (see
    /// [`super::together`]) instead of run alone.
    fn together(&self) -> Option<Together<'_>> {
        None
    }
    /// This write was written with its group's others: what that gave it.
    fn written_together(&mut self, _written: WrittenTogether) {}
}

/// A write that [`super::together`] can write with others of its kind.
enum Together<'a> {
    /// A check's verified outcome.
    Verified(VerifiedWrite<'a>),
    /// A candidate to queue.
    Enqueue(&'a Candidate),
}

/// What writing together gave a write.
enum WrittenTogether {
    Verified(Status),
    Enqueued(Enqueued),
}

/// A write of a kind that can be written together: how it is written alone, and what it is.
trait WriteTogether: Send + 'static {
    type Answer: Send + 'static;
    fn alone(&self, c: &Conn) -> Result<Self::Answer>;
    fn together(&self) -> Option<Together<'_>>;
    fn answer(written: WrittenTogether) -> Option<Self::Answer>;
}

/// A check's outcome ([`GroupCommit::apply`]).
struct Outcome {
    job: Job,
    applied: Applied,
    decision: Decision,
}

impl WriteTogether for Outcome {
    type Answer = Option<Status>;

    fn alone(&self, c: &Conn) -> Result<Option<Status>> {
        super::mentions::apply(c, &self.job, &self.applied, &self.decision)
    }

    fn together(&self) -> Option<Together<'_>> {
        match &self.applied {
            Applied::Verified {
                extracted,
                hold_new,
            } => Some(Together::Verified(VerifiedWrite {
                job: &self.job,
                extracted,
                hold_new: *hold_new,
                decision: &self.decision,
            })),
            _ => None,
        }
    }

    fn answer(written: WrittenTogether) -> Option<Option<Status>> {
        match written {
            WrittenTogether::Verified(status) => Some(Some(status)),
            WrittenTogether::Enqueued(_) => None,
        }
    }
}

impl WriteTogether for Candidate {
    type Answer = Enqueued;

    fn alone(&self, c: &Conn) -> Result<Enqueued> {
        enqueue_one(c, self)
    }

    fn together(&self) -> Option<Together<'_>> {
        Some(Together::Enqueue(self))
    }

    fn answer(written: WrittenTogether) -> Option<Enqueued> {
        match written {
            WrittenTogether::Enqueued(enqueued) => Some(enqueued),
            WrittenTogether::Verified(_) => None,
        }
    }
}

/// Answers a write's caller: its result, or why the commit failed.
fn reply_with<T>(
    result: Option<Result<T>>,
    commit: std::result::Result<(), String>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
) {
    let answer = match (result, commit) {
        (Some(Err(e)), _) => Err(e),
        (_, Err(message)) => Err(commit_failed(&message)),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (None, Ok(())) => Err(commit_failed("the write never ran")),
    };
    let _ = reply.send(answer);
}

struct Pending<T, F> {
    write: F,
    result: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T: Send, F: Fn(&Conn) -> Result<T> + Send> Unit for Pending<T, F> {
    fn run(&mut self, c: &Conn) -> bool {
        let result = (self.write)(c);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: std::result::Result<(), String>) {
        reply_with(self.result, commit, self.reply);
    }
}

/// A write that can be written together, waiting for a group commit.
struct PendingTogether<W: WriteTogether> {
    write: W,
    result: Option<Result<W::Answer>>,
    reply: tokio::sync::oneshot::Sender<Result<W::Answer>>,
}

/// `write` waiting for a group commit, and where its answer comes.
fn pending_together<W: WriteTogether>(
    write: W,
) -> (
    Box<dyn Unit>,
    tokio::sync::oneshot::Receiver<Result<W::Answer>>,
) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let unit = Box::new(PendingTogether {
        write,
        result: None,
        reply,
    });
    (unit, answer)
}

impl<W: WriteTogether> Unit for PendingTogether<W> {
    fn run(&mut self, c: &Conn) -> bool {
        let result = self.write.alone(c);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: std::result::Result<(), String>) {
        reply_with(self.result, commit, self.reply);
    }

    fn together(&self) -> Option<Together<'_>> {
        self.write.together()
    }

    fn written_together(&mut self, written: WrittenTogether) {
        if let Some(answer) = W::answer(written) {
            self.result = Some(Ok(answer));
        }
    }
}

/// Committer threads, and the most writes one group holds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Committers {
    pub count: usize,
    pub max_group: usize,
    /// Whether a group's verified outcomes and candidates are written together (see
    /// [`super::together`]).
    pub together: bool,
}

/// How a [`GroupCommit`] commits (see [`Store::commit_plan`]): committers for all writes, and
/// on PostgreSQL committers of the receivers' own and of the worker's leases.
#[derive(Clone, Copy, Debug)]
pub(super) struct CommitPlan {
    pub writes: Committers,
    pub intake: Option<Committers>,
    pub leasing: Option<Committers>,
}

/// Group commit for the writes of the hot paths — the receivers' enqueues and the worker's
/// outcomes: concurrent writes are collected by a committer thread (one on SQLite; on PostgreSQL
/// a few, each on its own connection, see [`Store::commit_plan`]) and committed together, each
/// in its own savepoint (one failing cannot sink the others), and each caller is answered only after
/// the commit. Under load this turns N transactions into one, and async callers wait on a
/// channel instead of blocking a runtime thread on the writer lock.
pub struct GroupCommit {
    sender: tokio::sync::mpsc::Sender<Box<dyn Unit>>,
    /// The receivers' own queue, on PostgreSQL.
    intake: Option<tokio::sync::mpsc::Sender<Box<dyn Unit>>>,
    /// The worker's leases' own queue, on PostgreSQL: a lease waits for no group of outcomes
    /// (each a few round trips and a disk sync), for while it waits, no new check starts and
    /// the parse threads can run dry (verification alone: a fifth more pages a second). Used
    /// only while the receivers are quiet: see [`GroupCommit::lease_due`].
    leasing: Option<tokio::sync::mpsc::Sender<Box<dyn Unit>>>,
    /// When a receiver's write was last queued, in ms since `started`, plus one (0: never).
    received_at_ms: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    /// When a lease last looked at the hot tables' statistics (see
    /// [`super::jobs::refresh_statistics`]).
    statistics_looked_at_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl GroupCommit {
    /// Writes waiting for the committers at most; more wait in their senders (backpressure
    /// instead of an unbounded queue in memory).
    const MAX_WAITING: usize = 1024;

    pub fn start(store: std::sync::Arc<Store>) -> GroupCommit {
        let plan = store.commit_plan();
        GroupCommit {
            sender: Self::committers(&store, plan.writes),
            intake: plan.intake.map(|intake| Self::committers(&store, intake)),
            leasing: plan
                .leasing
                .map(|leasing| Self::committers(&store, leasing)),
            statistics_looked_at_ms: Default::default(),
            received_at_ms: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    /// How long after a receiver's write the receivers count as busy (see
    /// [`GroupCommit::lease_due`]).
    const RECEIVING_FOR: std::time::Duration = std::time::Duration::from_millis(250);

    /// The receivers' queue (on SQLite the one queue), noting that they are writing.
    fn receiving(&self) -> &tokio::sync::mpsc::Sender<Box<dyn Unit>> {
        let now = self.started.elapsed().as_millis() as u64;
        self.received_at_ms
            .store(now + 1, std::sync::atomic::Ordering::Relaxed);
        self.intake.as_ref().unwrap_or(&self.sender)
    }

    /// Whether a receiver wrote within [`GroupCommit::RECEIVING_FOR`].
    fn receivers_busy(&self) -> bool {
        let at = self
            .received_at_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64 + 1;
        at != 0 && now.saturating_sub(at) < Self::RECEIVING_FOR.as_millis() as u64
    }

    /// Starts `count` committer threads taking groups of at most `max_group` from one queue.
    fn committers(
        store: &std::sync::Arc<Store>,
        Committers {
            count,
            max_group,
            together,
        }: Committers,
    ) -> tokio::sync::mpsc::Sender<Box<dyn Unit>> {
        type Queue = std::sync::Mutex<tokio::sync::mpsc::Receiver<Box<dyn Unit>>>;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Box<dyn Unit>>(Self::MAX_WAITING);
        let receiver: std::sync::Arc<Queue> = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        // One committer gathers a group at a time; the others commit theirs meanwhile.
        let next_group = move |receiver: &Queue| -> Option<Vec<Box<dyn Unit>>> {
            let mut receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            let mut group = vec![receiver.blocking_recv()?];
            while group.len() < max_group {
                match receiver.try_recv() {
                    Ok(unit) => group.push(unit),
                    Err(_) => break,
                }
            }
            Some(group)
        };
        for _ in 0..count {
            let (store, receiver) = (store.clone(), receiver.clone());
            std::thread::Builder::new()
                .name("backfeed-group-commit".into())
                .spawn(move || {
                    let _exit_if_it_dies = ExitOnPanic("the group-commit thread");
                    while let Some(mut group) = next_group(&receiver) {
                        let commit =
                            commit_group(&store, &mut group, together).map_err(|e| e.to_string());
                        for unit in group {
                            unit.answer(commit.clone());
                        }
                    }
                })
                .expect("the group-commit thread starts");
        }
        sender
    }

    /// Runs `write` in the next group commit; resolves once it is committed.
    pub async fn run<T: Send + 'static>(
        &self,
        write: impl Fn(&Conn) -> Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run_on(&self.sender, write).await
    }

    /// [`GroupCommit::run`] for a write a receiver answers after (see [`GroupCommit::start`]).
    async fn run_intake<T: Send + 'static>(
        &self,
        write: impl Fn(&Conn) -> Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run_on(self.receiving(), write).await
    }

    async fn run_on<T: Send + 'static>(
        &self,
        queue: &tokio::sync::mpsc::Sender<Box<dyn Unit>>,
        write: impl Fn(&Conn) -> Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let unit = Box::new(Pending {
            write,
            result: None,
            reply,
        });
        Self::queue(queue, unit, answer).await
    }

    /// Puts `unit` in the next group commit of `queue`; resolves with its `answer`.
    async fn queue<T>(
        queue: &tokio::sync::mpsc::Sender<Box<dyn Unit>>,
        unit: Box<dyn Unit>,
        answer: tokio::sync::oneshot::Receiver<Result<T>>,
    ) -> StoreResult<T> {
        queue
            .send(unit)
            .await
            .map_err(|_| commit_failed("the group-commit thread has stopped"))?;
        answer
            .await
            .map_err(|_| commit_failed("the group-commit thread dropped the request"))?
    }

    /// Enqueues one candidate: a (source, target post) pair seen before keeps its row, its status
    /// and its moderation, only its job is (re)queued. Resolves once it is committed: what a
    /// receiver acknowledges is durable.
    pub async fn enqueue(&self, candidate: Candidate) -> StoreResult<Enqueued> {
        let (unit, answer) = pending_together(candidate);
        Self::queue(self.receiving(), unit, answer).await
    }

    /// Enqueues one candidate and leases its job to `owner` in the same commit (a check the
    /// caller makes now); the job is `None` when another loop already holds it.
    pub async fn enqueue_and_lease(
        &self,
        candidate: Candidate,
        lease_secs: i64,
        owner: String,
    ) -> StoreResult<(Enqueued, Option<Job>)> {
        self.run(move |c| {
            let enqueued = enqueue_one(c, &candidate)?;
            let job = lease_one_in(c, enqueued.id, lease_secs, &owner)?;
            Ok((enqueued, job))
        })
        .await
    }

    /// Leases due jobs (see [`lease_due`]) in the next group commit, off the async threads;
    /// on PostgreSQL, the hot tables' statistics are refreshed first when they are stale.
    ///
    /// Receiving comes first: on PostgreSQL a lease has a committer of its own while the
    /// receivers are quiet, and while they write (within [`GroupCommit::RECEIVING_FOR`]) it
    /// waits its turn behind the worker's outcomes, so verification slows for them. (A lease
    /// always on its own: a tenth more pages a second end to end, but while receiving, the
    /// faster worker's share of PostgreSQL took intake's p99 from 21–23 ms to 35–52 ms.)
    pub async fn lease_due(
        &self,
        limit: usize,
        lease_secs: i64,
        owner: String,
        room: HostRoom,
        many_sites: bool,
    ) -> StoreResult<Vec<Job>> {
        let looked_at_ms = self.statistics_looked_at_ms.clone();
        let queue = match &self.leasing {
            Some(leasing) if !self.receivers_busy() => leasing,
            _ => &self.sender,
        };
        self.run_on(queue, move |c| {
            super::jobs::refresh_statistics(c, &looked_at_ms)?;
            lease_due(c, limit, lease_secs, &owner, &room, many_sites)
        })
        .await
    }

    /// Renews every lease `owner` holds (see [`Store::renew_leases`]), off the async threads.
    pub async fn renew_leases(&self, owner: String, lease_secs: i64) -> StoreResult<usize> {
        self.run(move |c| super::jobs::renew_leases_in(c, &owner, lease_secs))
            .await
    }

    /// Writes a decision-log line (a receiver's refusal) off the async threads.
    pub async fn log_decision(&self, decision: super::Decision) -> StoreResult<()> {
        self.run_intake(move |c| super::decisions::insert_decision(c, &decision))
            .await
    }

    /// Keeps a URL's fetch state (validators, health) off the async threads.
    pub async fn put_fetch_state(&self, url: String, state: super::FetchState) -> StoreResult<()> {
        self.run(move |c| super::fetch_state::put_fetch_state_in(c, &url, &state))
            .await
    }

    /// Adds a post learned from its own page (a ping's unknown target that says it is a post),
    /// off the async threads; returns it.
    pub async fn add_post_from_page(
        &self,
        url: String,
        match_key: String,
        title: Option<String>,
        site: String,
    ) -> StoreResult<super::PostRef> {
        self.run(move |c| {
            super::posts::upsert_post_in(c, &url, &match_key, title.as_deref(), None, None, &site)?;
            super::posts::post_where_in(c, "match_key = ?1", &match_key)?
                .ok_or(super::StoreError::NotFound)
        })
        .await
    }

    /// Writes what a check came to (see [`super::mentions::Applied`]); resolves once it is
    /// committed, with the mention's status (`None` while it waits for a retry).
    pub async fn apply(
        &self,
        job: Job,
        applied: Applied,
        decision: Decision,
    ) -> StoreResult<Option<Status>> {
        let (unit, answer) = pending_together(Outcome {
            job,
            applied,
            decision,
        });
        Self::queue(&self.sender, unit, answer).await
    }
}

/// Ends the process (exit status 70) when the thread holding it dies of a panic: without its
/// committer a daemon would accept nothing and verify nothing while looking alive, so it stops
/// and lets its supervisor (systemd's `Restart=`) start it again.
struct ExitOnPanic(&'static str);

impl Drop for ExitOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                thread = self.0,
                "a thread the process cannot do without died; exiting so that it is restarted"
            );
            std::process::exit(70);
        }
    }
}

impl GroupCommit {
    /// Whether the committer still takes writes (`/healthz` asks).
    pub fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }
}

/// Commits a group in one transaction: a write that fails (or panics) is rolled back alone and
/// its caller answered; the others are written.
///
/// The savepoints are taken only when needed: the group first runs without them (on PostgreSQL
/// each is two round trips, a fifth of a verification's), and a write seldom fails (a lease
/// taken over, a constraint). When one does, that transaction is rolled back and the group run
/// again, a savepoint per write. (A write is a function of the store alone, so running it again
/// after a rollback is running it once.)
fn commit_group(store: &Store, group: &mut [Box<dyn Unit>], together: bool) -> StoreResult<()> {
    store.write(|c| {
        if together && commit_together(c, group)? {
            return Ok(());
        }
        let tx = c.transaction()?;
        if group.iter_mut().all(|unit| run_caught(unit.as_mut(), &tx)) {
            return tx.commit();
        }
        drop(tx); // rolls the group back
        if group.len() == 1 {
            return Ok(()); // its own failure is its answer: nothing else to keep
        }
        let tx = c.transaction()?;
        for unit in group.iter_mut() {
            let sp = tx.savepoint()?;
            if run_caught(unit.as_mut(), &sp) {
                sp.commit()?;
            } else {
                drop(sp); // rolls the unit back
                // After some errors (a full disk, an I/O error) SQLite rolls the whole
                // transaction back by itself: then nothing of this group is written, and no
                // later savepoint may pretend it is.
                if tx.is_autocommit() {
                    return Err(commit_failed(
                        "SQLite rolled the transaction back after an error",
                    ));
                }
            }
        }
        tx.commit()
    })
}

/// Commits `group` with its verified outcomes, and its candidates to queue, written together
/// (see [`super::together`]); `false`, with nothing written, when it is to be written one
/// write at a time instead: fewer than two of either kind, or verified outcomes that the
/// writing together hands back, or a write of the group that fails.
fn commit_together(c: &Conn, group: &mut [Box<dyn Unit>]) -> StoreResult<bool> {
    let (mut verified, mut enqueues, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    for unit in group.iter_mut() {
        match unit.together().map(|t| matches!(t, Together::Verified(_))) {
            Some(true) => verified.push(unit),
            Some(false) => enqueues.push(unit),
            None => alone.push(unit),
        }
    }
    for few in [&mut verified, &mut enqueues] {
        if few.len() < 2 {
            alone.append(few);
        }
    }
    if verified.is_empty() && enqueues.is_empty() {
        return Ok(false);
    }
    let tx = c.transaction()?;
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write_together(&tx, &verified, &enqueues)
    }));
    let (statuses, enqueued) = match written {
        Ok(Ok(Some(written))) => written,
        Ok(Ok(None)) => return Ok(false), // rolled back with `tx`
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "a group not written together; one write at a time");
            return Ok(false);
        }
        Err(_) => {
            tracing::error!("writing a group together panicked; one write at a time");
            return Ok(false);
        }
    };
    let statuses = statuses.into_iter().map(WrittenTogether::Verified);
    let enqueued = enqueued.into_iter().map(WrittenTogether::Enqueued);
    for (unit, written) in verified
        .into_iter()
        .chain(enqueues)
        .zip(statuses.chain(enqueued))
    {
        unit.written_together(written);
    }
    if !alone.into_iter().all(|unit| run_caught(unit.as_mut(), &tx)) {
        return Ok(false);
    }
    tx.commit()?;
    Ok(true)
}

/// Writes `verified` outcomes and `enqueues` together: the statuses and the enqueues' answers,
/// in order; `None` when the verified outcomes are handed back.
fn write_together(
    tx: &Conn,
    verified: &[&mut Box<dyn Unit>],
    enqueues: &[&mut Box<dyn Unit>],
) -> Result<Option<(Vec<Status>, Vec<Enqueued>)>> {
    let (mut writes, mut candidates) = (Vec::new(), Vec::new());
    for unit in verified.iter().chain(enqueues) {
        match unit.together() {
            Some(Together::Verified(write)) => writes.push(write),
            Some(Together::Enqueue(candidate)) => candidates.push(candidate),
            None => {}
        }
    }
    let statuses = if writes.is_empty() {
        Vec::new()
    } else {
        match super::together::write_verified(tx, &writes)? {
            Some(statuses) => statuses,
            None => return Ok(None),
        }
    };
    let enqueued = if candidates.is_empty() {
        Vec::new()
    } else {
        super::together::enqueue(tx, &candidates)?
    };
    Ok(Some((statuses, enqueued)))
}

/// Runs `unit` on `c`; a panic is a failure (logged), not the committer's end.
fn run_caught(unit: &mut dyn Unit, c: &Conn) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unit.run(c))).unwrap_or_else(|_| {
        tracing::error!("a write panicked in the group commit; it is rolled back");
        false
    })
}

fn commit_failed(message: &str) -> super::StoreError {
    super::StoreError::Database(format!("commit failed: {message}").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Runs `check` on a store of each engine.
    fn on_each_store(test: &str, check: impl Fn(&Store)) {
        for (store, _keep) in crate::store::testing::test_stores(test) {
            check(&store);
        }
    }

    /// A webmention from `source` to one post.
    fn test_candidate(source: &str) -> Candidate {
        Candidate {
            source: source.into(),
            target: "https://b.example/p".into(),
            target_key: "b.example/p".into(),
            post_id: None,
            kind: Kind::Webmention,
            hint: None,
        }
    }

    #[test]
    fn enqueue_coalesces_a_pair_and_keeps_its_row() {
        on_each_store("enqueue_coalesces_a_", |store| {
            let candidate = test_candidate("https://a.example/x");
            let enqueue = || store.write(|c| enqueue_one(c, &candidate)).unwrap();
            let first = enqueue();
            let second = enqueue();
            assert!(first.new && !first.already_queued);
            assert_eq!(second.id, first.id);
            assert!(!second.new && second.already_queued);
            assert_eq!(store.queue_depth().unwrap().0, 1);
            let room_of_two = room_of_two();
            let lease = |owner: &str| {
                store
                    .write(|c| lease_due(c, 10, 60, owner, &room_of_two, false))
                    .unwrap()
            };
            let leased = lease("a");
            assert_eq!(leased.len(), 1);
            assert!(
                lease("b").is_empty(),
                "a leased job is not handed out twice"
            );
            assert_eq!(
                store.release_leases("b").unwrap(),
                0,
                "a loop gives back only its own leases"
            );
            assert!(lease("b").is_empty());
            assert_eq!(store.release_leases("a").unwrap(), 1);
            assert_eq!(lease("b").len(), 1, "released leases are due again");
        });
    }

    #[test]
    fn a_ping_while_its_job_is_leased_makes_it_due_again_after_the_attempt() {
        on_each_store("a_ping_while_its_job", |store| {
            let candidate = test_candidate("https://a.example/x");
            store.write(|c| enqueue_one(c, &candidate)).unwrap();
            let room_of_two = room_of_two();
            let lease = || {
                store
                    .write(|c| lease_due(c, 10, 60, "serve:w", &room_of_two, false))
                    .unwrap()
            };
            let first = lease().pop().expect("leased");
            // The source is edited and pinged again while its first fetch is in flight.
            store.write(|c| enqueue_one(c, &candidate)).unwrap();
            let decision = super::super::Decision {
                at: now_rfc3339(),
                source: first.source.clone(),
                target: first.target.clone(),
                kind: "webmention".into(),
                outcome: "rejected".into(),
                reason: "no link".into(),
            };
            store
                .write(|c| {
                    super::super::mentions::apply(
                        c,
                        &first,
                        &super::super::mentions::Applied::Refused { delete: false },
                        &decision,
                    )
                })
                .unwrap();
            let again = lease();
            assert_eq!(again.len(), 1, "the newer ping gets a fetch of its own");
            assert!(again[0].fence > first.fence);
            // The first attempt's late second write is refused: its lease is not the job's now.
            let stale = store
                .write(|c| {
                    super::super::mentions::apply(
                        c,
                        &first,
                        &super::super::mentions::Applied::Unchanged,
                        &decision,
                    )
                })
                .unwrap_err();
            assert!(stale.is_stale_lease(), "{stale}");
        });
    }

    /// Receiving comes first: a lease goes on its own committer only while no receiver has
    /// written for a moment; either way it leases.
    #[tokio::test]
    async fn the_receivers_count_as_busy_for_a_moment_after_they_write() {
        for (store, _keep) in crate::store::testing::test_stores("receiving") {
            let commit = GroupCommit::start(std::sync::Arc::new(store));
            assert!(!commit.receivers_busy(), "nothing received yet");
            let lease = || {
                let room = HostRoom {
                    in_flight: Default::default(),
                    per_host: 2,
                    instance: "test".into(),
                };
                commit.lease_due(4, 60, "test".into(), room, false)
            };
            commit
                .enqueue(test_candidate("https://a.example/1"))
                .await
                .unwrap();
            assert!(commit.receivers_busy());
            assert_eq!(lease().await.unwrap().len(), 1, "leased while receiving");
            tokio::time::sleep(GroupCommit::RECEIVING_FOR + std::time::Duration::from_millis(50))
                .await;
            assert!(!commit.receivers_busy(), "quiet again");
            commit
                .log_decision(crate::store::together::tests::decision(
                    "https://a.example/3",
                ))
                .await
                .unwrap();
            assert!(commit.receivers_busy(), "a refusal logged is receiving too");
            tokio::time::sleep(GroupCommit::RECEIVING_FOR + std::time::Duration::from_millis(50))
                .await;
            commit
                .run(|c| enqueue_one(c, &test_candidate("https://a.example/2")))
                .await
                .unwrap();
            assert!(!commit.receivers_busy(), "the worker's own writes are not");
            assert_eq!(lease().await.unwrap().len(), 1, "leased while quiet");
        }
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_the_committer_goes_on() {
        for (store, _keep) in crate::store::testing::test_stores("panic") {
            let store = std::sync::Arc::new(store);
            let commit = GroupCommit::start(store.clone());
            let panicked = commit
                .run(|_c: &Conn| -> Result<()> { panic!("a bug in one write") })
                .await;
            assert!(panicked.is_err(), "its caller is answered with an error");
            assert!(commit.is_running());
            let enqueued = commit
                .enqueue(test_candidate("https://a.example/x"))
                .await
                .unwrap();
            assert!(enqueued.new, "later writes still commit");
            assert_eq!(store.queue_depth().unwrap().0, 1);
        }
    }

    #[tokio::test]
    async fn a_failing_write_is_rolled_back_alone_and_the_rest_of_its_group_is_written() {
        for (store, _keep) in crate::store::testing::test_stores("group_fail") {
            // Each enqueues a candidate; the second then fails, after its write.
            let mut answers = Vec::new();
            let mut group: Vec<Box<dyn Unit>> = Vec::new();
            for (n, fails) in [(1, false), (2, true), (3, false)] {
                let (reply, answer) = tokio::sync::oneshot::channel();
                answers.push(answer);
                group.push(Box::new(Pending {
                    write: move |c: &Conn| -> Result<Enqueued> {
                        let enqueued =
                            enqueue_one(c, &test_candidate(&format!("https://a.example/{n}")))?;
                        if fails {
                            Err(crate::store::StoreError::NotFound)
                        } else {
                            Ok(enqueued)
                        }
                    },
                    result: None,
                    reply,
                }));
            }
            let commit = commit_group(&store, &mut group, false).map_err(|e| e.to_string());
            for unit in group {
                unit.answer(commit.clone());
            }
            let mut answered = Vec::new();
            for answer in answers {
                answered.push(answer.await.unwrap().is_ok());
            }
            assert_eq!(answered, [true, false, true]);
            let sources: Vec<String> = store
                .mentions(&crate::store::MentionFilter::default())
                .unwrap()
                .into_iter()
                .map(|m| m.source)
                .collect();
            assert_eq!(sources.len(), 2, "{sources:?}");
            assert!(!sources.contains(&"https://a.example/2".to_string()));
            assert_eq!(store.queue_depth().unwrap().0, 2);
        }
    }

    #[test]
    fn a_large_reverification_is_spread_over_up_to_a_day() {
        assert_eq!(reverify_spread(0, 1_000_000), 0, "asked for now");
        assert_eq!(reverify_spread(3600, 100), 3600, "a small store: as asked");
        assert_eq!(
            reverify_spread(3600, 100_000),
            10_000,
            "10 a second on average"
        );
        assert_eq!(
            reverify_spread(3600, 1_000_000),
            86_400,
            "never more than a day"
        );
    }

    #[test]
    fn one_hosts_backlog_does_not_hide_another_hosts_job() {
        on_each_store("one_hosts_backlog_do", |store| {
            for n in 0..500 {
                let c = test_candidate(&format!("https://flood.example/{n}"));
                store.write(|c2| enqueue_one(c2, &c)).unwrap();
            }
            let single = test_candidate("https://single.example/1");
            store.write(|c| enqueue_one(c, &single)).unwrap();
            // Everything is due; the flood is older (same second, lower ids first).
            let leased = store
                .write(|c| lease_due(c, 4, 60, "serve:w", &room_of_two(), false))
                .unwrap();
            let hosts: Vec<String> = leased.iter().map(Job::source_host).collect();
            assert_eq!(hosts.len(), 3, "{hosts:?}");
            assert_eq!(
                hosts.iter().filter(|h| *h == "flood.example").count(),
                2,
                "the flood's host gets its per-host share"
            );
            assert!(hosts.contains(&"single.example".to_string()), "{hosts:?}");
        });
    }

    #[test]
    fn one_sites_flood_does_not_hold_back_another_sites_single_ping() {
        on_each_store("one_sites_flood_does", |store| {
            let post_of = |site: &str| {
                let url = format!("https://{site}.example/post");
                let key = format!("{site}.example/post");
                let (id, _) = store
                    .write(|c| {
                        super::super::posts::upsert_post_in(c, &url, &key, None, None, None, site)
                    })
                    .unwrap();
                (url, key, id)
            };
            let (anna_url, anna_key, anna_post) = post_of("anna");
            let (bob_url, bob_key, bob_post) = post_of("bob");
            let candidate = |source: String, target: &str, key: &str, post: i64| Candidate {
                source,
                target: target.into(),
                target_key: key.into(),
                post_id: Some(post),
                kind: Kind::Webmention,
                hint: None,
            };
            // 10,000 pings for anna, each from a host of its own (no host limit holds them),
            // all older than bob's one.
            store
                .write(|c| {
                    let tx = c.transaction()?;
                    for n in 0..10_000 {
                        let from = format!("https://h{n}.example/x");
                        enqueue_one(&tx, &candidate(from, &anna_url, &anna_key, anna_post))?;
                    }
                    tx.commit()
                })
                .unwrap();
            let single = candidate(
                "https://friend.example/y".into(),
                &bob_url,
                &bob_key,
                bob_post,
            );
            store.write(|c| enqueue_one(c, &single)).unwrap();
            let leased = store
                .write(|c| lease_due(c, 8, 60, "serve:w", &room_of_two(), true))
                .unwrap();
            assert_eq!(leased.len(), 8);
            assert!(
                leased.iter().any(|j| j.target == bob_url),
                "bob's ping waits behind anna's flood: {:?}",
                leased.iter().map(|j| &j.source).collect::<Vec<_>>()
            );
        });
    }

    /// Room for two jobs a host, none in flight.
    fn room_of_two() -> HostRoom {
        HostRoom {
            per_host: 2,
            ..HostRoom::default()
        }
    }

    /// A PostgreSQL store (`None` where there is no server) with `jobs` verifications queued,
    /// each from a host of its own (`h0.example`, …).
    fn postgres_store_with_jobs(
        test: &str,
        jobs: usize,
    ) -> Option<(crate::store::testing::TestDatabase, Store)> {
        let db = crate::store::testing::TestDatabase::create(test)?;
        let store = Store::open_at(&db.location()).unwrap();
        for n in 0..jobs {
            let c = test_candidate(&format!("https://h{n}.example/x"));
            store.write(|c2| enqueue_one(c2, &c)).unwrap();
        }
        Some((db, store))
    }

    /// On PostgreSQL another process's fetches take a host's share; this process's own slots
    /// (one kept for its next fetch there) are its jobs in flight, counted by the caller.
    #[test]
    fn a_host_slot_of_another_process_takes_its_share_and_one_of_this_process_does_not() {
        let Some((_db, store)) = postgres_store_with_jobs("lease_slots", 2) else {
            return;
        };
        store
            .take_host_slot("elsewhere", "h0.example", 1, 60)
            .unwrap()
            .expect("a free slot");
        store
            .take_host_slot("here", "h1.example", 1, 60)
            .unwrap()
            .expect("a free slot");
        let room = HostRoom {
            per_host: 1,
            instance: "here".into(),
            ..HostRoom::default()
        };
        let leased = store
            .write(|c| lease_due(c, 10, 60, "serve:w", &room, false))
            .unwrap();
        let hosts: Vec<String> = leased.iter().map(Job::source_host).collect();
        assert_eq!(hosts, ["h1.example"], "h0's one slot is taken elsewhere");
    }

    #[test]
    fn a_job_another_process_is_leasing_right_now_is_passed_over_not_waited_for() {
        let Some((db, store)) = postgres_store_with_jobs("lease_skip", 3) else {
            return;
        };
        // Another process's lease call holds the oldest job's row in its open transaction.
        let other = crate::store::testing::Sql::open(&db.location());
        other.execute_batch(
            "BEGIN; SELECT subject FROM jobs WHERE kind = 'verify' ORDER BY subject LIMIT 1 FOR UPDATE",
        );
        let leased = store
            .write(|c| lease_due(c, 10, 60, "serve:w", &room_of_two(), false))
            .expect("no wait for the other's lock (a wait would end in lock_timeout)");
        let hosts: Vec<String> = leased.iter().map(Job::source_host).collect();
        assert_eq!(
            hosts,
            ["h1.example", "h2.example"],
            "the locked job is left to its taker"
        );
        other.execute_batch("COMMIT");
    }

    #[test]
    fn a_renewal_passes_over_a_job_being_finished_right_now_instead_of_waiting_for_it() {
        let Some((db, store)) = postgres_store_with_jobs("renew_skip", 2) else {
            return;
        };
        let leased = store
            .write(|c| lease_due(c, 10, 60, "serve:w", &room_of_two(), false))
            .unwrap();
        assert_eq!(leased.len(), 2);
        // A group commit finishing the first job holds its row in its open transaction (and
        // would next want the second's, which a waiting renewal would hold: a deadlock).
        let finishing = crate::store::testing::Sql::open(&db.location());
        finishing.execute_batch(&format!(
            "BEGIN; DELETE FROM jobs WHERE kind = 'verify' AND subject = {}",
            leased[0].mention_id
        ));
        let renewed = store
            .write(|c| super::super::jobs::renew_leases_in(c, "serve:w", 120))
            .expect("no wait for the finishing transaction (a wait would end in lock_timeout)");
        assert_eq!(renewed, 1, "the job being finished is passed over");
        finishing.execute_batch("COMMIT");
    }

    #[test]
    fn a_table_that_outgrew_its_statistics_is_analyzed_again_at_most_once_a_second() {
        let Some((db, store)) = postgres_store_with_jobs("queue_statistics", 0) else {
            return;
        };
        let sql = crate::store::testing::Sql::open(&db.location());
        // Analyzed while empty (autovacuum kept out of it), then 2,000 jobs queued at once.
        sql.execute_batch(
            "ALTER TABLE jobs SET (autovacuum_enabled = false); ANALYZE jobs;
             INSERT INTO jobs (kind, subject, next_try)
             SELECT 'verify', n, '2000-01-01T00:00:00Z' FROM generate_series(1, 2000) AS n",
        );
        let analyzed_rows = || {
            sql.query_i64(
                "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE oid = CAST('jobs' AS regclass)",
                &[],
            )
        };
        assert_eq!(analyzed_rows(), 0);
        // The server counts the changes within a second or so of their commit.
        let looked_at_ms = std::sync::atomic::AtomicI64::new(0);
        for _ in 0..40 {
            looked_at_ms.store(0, std::sync::atomic::Ordering::Relaxed);
            store
                .write(|c| super::super::jobs::refresh_statistics(c, &looked_at_ms))
                .unwrap();
            if analyzed_rows() > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        assert_eq!(analyzed_rows(), 2000, "jobs was analyzed again");
        // Looked at a moment ago: not again within the second, whatever changed meanwhile.
        sql.execute_batch("DELETE FROM jobs");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        looked_at_ms.store(
            chrono::Utc::now().timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        store
            .write(|c| super::super::jobs::refresh_statistics(c, &looked_at_ms))
            .unwrap();
        assert_eq!(analyzed_rows(), 2000);
    }

    /// Commits the verified outcomes of `leased` in one group, an enqueue beside them, as
    /// [`commit_group`] does (written together when `together`, unless handed back); their
    /// answers, and whether they were written together.
    fn commit_verified(
        store: &Store,
        leased: &[(Job, crate::model::Extracted, bool)],
        together: bool,
    ) -> (Vec<Result<Option<Status>>>, bool) {
        use crate::store::together::tests::decision;
        let mut group: Vec<Box<dyn Unit>> = Vec::new();
        let mut answers = Vec::new();
        for (job, x, hold_new) in leased {
            let (unit, answer) = pending_together(Outcome {
                job: job.clone(),
                applied: Applied::Verified {
                    extracted: Box::new(x.clone()),
                    hold_new: *hold_new,
                },
                decision: decision(&job.source),
            });
            answers.push(answer);
            group.push(unit);
        }
        let (reply, enqueued) = tokio::sync::oneshot::channel();
        let source = format!("{}/new", leased[0].0.source);
        group.push(Box::new(Pending {
            write: move |c: &Conn| enqueue_one(c, &test_candidate(&source)),
            result: None,
            reply,
        }));
        let written_together = together && store.write(|c| commit_together(c, &mut group)).unwrap();
        let commit = if written_together {
            Ok(())
        } else {
            commit_group(store, &mut group, false).map_err(|e| e.to_string())
        };
        for unit in group {
            unit.answer(commit.clone());
        }
        assert!(enqueued.blocking_recv().unwrap().unwrap().new);
        let answers = answers
            .into_iter()
            .map(|answer| answer.blocking_recv().unwrap())
            .collect();
        (answers, written_together)
    }

    #[test]
    fn a_group_commit_writes_verified_outcomes_together_as_it_would_one_by_one() {
        use crate::store::together::tests::{candidate, leased_side, written};
        for (store, _keep) in crate::store::testing::test_stores("group_together") {
            let statuses = |(answers, _): (Vec<Result<Option<Status>>>, bool)| {
                answers
                    .into_iter()
                    .map(|a| a.unwrap())
                    .collect::<Vec<Option<Status>>>()
            };
            let one_by_one = statuses(commit_verified(&store, &leased_side(&store, "a"), false));
            let (answers, written_together) =
                commit_verified(&store, &leased_side(&store, "b"), true);
            assert!(written_together, "the group is written together");
            let together = statuses((answers, written_together));
            assert_eq!(together, one_by_one);
            assert_eq!(together[2], Some(Status::Held));
            assert_eq!(written(&store, "b"), written(&store, "a"));
            // One of the group pinged again while it was checked: the group is written one by
            // one, and that job is queued again.
            let (alone, handed_back) = (leased_side(&store, "c"), leased_side(&store, "d"));
            for leased in [&alone, &handed_back] {
                let pinged = &leased[1].0;
                store
                    .write(|c| enqueue_one(c, &candidate(&pinged.source)))
                    .unwrap();
            }
            let one_by_one = statuses(commit_verified(&store, &alone, false));
            let (answers, written_together) = commit_verified(&store, &handed_back, true);
            assert!(!written_together, "the group is handed back");
            assert_eq!(statuses((answers, written_together)), one_by_one);
            assert_eq!(written(&store, "d"), written(&store, "c"));
            let queued = store.queue_depth().unwrap().0;
            assert_eq!(
                queued,
                4 + 2,
                "each group's new ping, and the two pinged again"
            );
        }
    }

    #[tokio::test]
    async fn when_sqlite_rolls_the_transaction_back_nothing_of_the_batch_claims_to_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(&dir.path().join("t.db")).unwrap());
        let commit = GroupCommit::start(store.clone());
        // A write fails in a way after which SQLite has rolled the whole transaction back (as
        // after a full disk or an I/O error); another waits behind it in the same batch. That
        // one must not run outside the transaction and be written while answered "failed".
        let (failed, behind) = tokio::join!(
            commit.run(|c: &Conn| -> Result<()> {
                c.execute_batch("ROLLBACK")?;
                Err(crate::store::StoreError::NotFound)
            }),
            commit.enqueue(test_candidate("https://a.example/1")),
        );
        assert!(failed.is_err());
        let written = store.queue_depth().unwrap().0;
        assert_eq!(
            behind.is_ok(),
            written == 1,
            "answered {behind:?} with {written} written"
        );
        // The committer goes on, in a transaction of its own.
        commit
            .enqueue(test_candidate("https://a.example/2"))
            .await
            .unwrap();
        assert!(store.queue_depth().unwrap().0 >= 1);
    }
}
