//! What the sender did for each (post, link): the post's content fingerprint at that send, the
//! protocol and endpoint, the answer, attempts and the next try of a transient failure. Each
//! send's row and its decision-log line are one transaction. A post being sent holds a `send`
//! job's lease ([`super::jobs`]), so two runs never ping for one post at once; the job stays
//! queued, due at the earliest retry, while any of its links waits for one.

use super::db::{Row, params};
use super::decisions::{Decision, insert_decision};
use super::{JobKind, Lease, Result, Store, StoreResult};
use crate::model::{SendStatus, now_rfc3339};

/// One (post, link) as `backfeed sent` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SendRecord {
    /// The post (what was pinged about).
    pub source: String,
    /// The page the post links to.
    pub target: String,
    /// `webmention`, `pingback`, `trackback`, or none.
    pub protocol: Option<String>,
    pub endpoint: Option<String>,
    /// `sent`, `no_endpoint`, `failed` (final), `retrying` or `refused`.
    pub status: SendStatus,
    pub http_status: Option<i64>,
    pub reason: Option<String>,
    pub sent_at: Option<String>,
    pub attempts: i64,
    #[serde(skip)]
    pub fingerprint: String,
    #[serde(skip)]
    pub next_try: Option<String>,
}

/// The result of one send, to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct SendResult {
    pub protocol: Option<String>,
    pub endpoint: Option<String>,
    pub status: SendStatus,
    pub http_status: Option<u16>,
    pub reason: String,
    /// For `retrying`: seconds until the next try.
    pub retry_in_secs: Option<i64>,
}

const COLUMNS: &str = "p.url, s.target, s.protocol, s.endpoint, s.status, s.http_status, s.reason, \
     s.sent_at, s.attempts, s.fingerprint, s.next_try";

fn record_from_row(r: &Row<'_>) -> Result<SendRecord> {
    Ok(SendRecord {
        source: r.get(0)?,
        target: r.get(1)?,
        protocol: r.get(2)?,
        endpoint: r.get(3)?,
        // A word this version does not know reads as final: never retried by mistake.
        status: SendStatus::parse(&r.get::<_, String>(4)?).unwrap_or(SendStatus::Failed),
        http_status: r.get(5)?,
        reason: r.get(6)?,
        sent_at: r.get(7)?,
        attempts: r.get(8)?,
        fingerprint: r.get(9)?,
        next_try: r.get(10)?,
    })
}

impl Store {
    /// What was sent for one post, by target.
    pub fn sends_for_post(&self, post_id: i64) -> StoreResult<Vec<SendRecord>> {
        self.read(|c| {
            c.prepare(format!(
                "SELECT {COLUMNS} FROM sends s JOIN posts p ON p.id = s.post_id
                 WHERE s.post_id = ?1 ORDER BY s.target"
            ))?
            .query_map([post_id], record_from_row)?
            .collect()
        })
    }

    /// Everything sent, or for one post (by its URL), newest first; `limit` rows at most
    /// (negative: all) after skipping `offset`.
    /// `site` keeps one site's (`None`: every site's).
    pub fn sends(
        &self,
        post_url: Option<&str>,
        site: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<SendRecord>> {
        self.read(|c| {
            c.prepare(format!(
                "SELECT {COLUMNS} FROM sends s JOIN posts p ON p.id = s.post_id
                 WHERE (CAST(?1 AS TEXT) IS NULL OR p.url = ?1) AND (CAST(?4 AS TEXT) IS NULL OR p.site = ?4)
                 ORDER BY s.sent_at DESC, s.id DESC LIMIT ?2 OFFSET ?3"
            ))?
            .query_map(
                params![post_url, if limit < 0 { i64::MAX } else { limit }, offset, site],
                record_from_row,
            )?
            .collect()
        })
    }

    /// Posts with a transient failure due for another try (and no run sending them now).
    pub fn posts_with_due_retries(&self) -> StoreResult<Vec<i64>> {
        self.read(|c| {
            c.prepare(
                "SELECT subject FROM jobs WHERE kind = 'send' AND next_try <= ?1
                 AND (lease_until IS NULL OR lease_until <= ?1)",
            )?
            .query_map([now_rfc3339()], |r| r.get(0))?
            .collect()
        })
    }

    /// Takes the post's `send` job for `owner`; `None` while another run sends for it.
    pub fn lease_post_send(
        &self,
        post_id: i64,
        lease_secs: i64,
        owner: &str,
    ) -> StoreResult<Option<Lease>> {
        self.write(|c| super::jobs::lease_subject(c, JobKind::Send, post_id, lease_secs, owner))
    }

    /// A run is done with the post: its job waits for the earliest retry of its links, or is
    /// gone when none waits. With `completed`, the run gave every link an outcome, and that
    /// content fingerprint counts as sent; a run that stopped early leaves the post's sent
    /// fingerprint as it was, so the next run resumes.
    pub fn post_send_done(&self, lease: &Lease, completed: Option<&str>) -> StoreResult<()> {
        let post_id = lease.subject;
        self.write(|c| {
            let tx = c.transaction()?;
            // The fenced put-back or finish below refuses a stale lease, and with it this.
            if let Some(fingerprint) = completed {
                tx.run(
                    "UPDATE posts SET sent_fingerprint = ?2 WHERE id = ?1",
                    params![post_id, fingerprint],
                )?;
            }
            let next: Option<String> = tx.query_row(
                "SELECT MIN(next_try) FROM sends WHERE post_id = ?1 AND status = 'retrying'",
                [post_id],
                |r| r.get(0),
            )?;
            match next {
                Some(at) => super::jobs::put_back(&tx, lease, &at)?,
                None => super::jobs::finish(&tx, lease)?,
            }
            tx.commit()
        })
    }

    /// Records one send (a new row, or the pair's row updated) and its decision, together.
    pub fn record_send(
        &self,
        lease: &Lease,
        target: &str,
        fingerprint: &str,
        result: &SendResult,
        decision: &Decision,
    ) -> StoreResult<()> {
        let now = now_rfc3339();
        let next_try = result.retry_in_secs.map(super::jobs::in_secs);
        let post_id = lease.subject;
        self.write(|c| {
            let tx = c.transaction()?;
            super::jobs::check(&tx, lease)?;
            tx.run(
                "INSERT INTO sends (post_id, target, fingerprint, protocol, endpoint, status, http_status,
                                    reason, sent_at, attempts, next_try)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10)
                 ON CONFLICT (post_id, target) DO UPDATE SET fingerprint = ?3, protocol = ?4, endpoint = ?5,
                     status = ?6, http_status = ?7, reason = ?8, sent_at = ?9, next_try = ?10,
                     attempts = CASE WHEN sends.status = 'retrying' THEN sends.attempts + 1 ELSE 1 END",
                params![
                    post_id,
                    target,
                    fingerprint,
                    result.protocol,
                    result.endpoint,
                    result.status.as_str(),
                    result.http_status,
                    result.reason,
                    now,
                    next_try
                ],
            )?;
            insert_decision(&tx, decision)?;
            tx.commit()
        })
    }
}
