//! The outbox of notifications. A mention that becomes published, or stops being published,
//! gets a `notifications` row in the same transaction as the change — written by a database
//! trigger on the status column, so no code path that publishes can forget it, and a crash
//! between publish and delivery loses nothing. The notifier then fans each out to one
//! `deliveries` row per configured channel, each with a `deliver` job in the one queue
//! ([`super::jobs`]), leases due ones (so two loops never deliver one twice), and marks each
//! delivered, or failed with its error and next try.

use super::db::params;
use super::decisions::{Decision, insert_decision};
use super::mentions::{MENTION_COLUMNS, mention_from_row_at};
use super::{Result, Store, StoreResult};
use crate::model::{Mention, now_rfc3339};

/// One delivery due: which channel, what happened, to which mention.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    /// The fence of this delivery's lease (see [`super::jobs::Lease`]).
    pub fence: i64,
    pub channel: String,
    /// `published` or `deleted`.
    pub event: String,
    pub attempts: i64,
    pub mention: Mention,
}

impl Delivery {
    /// The lease its outcome is written under.
    pub fn lease(&self) -> super::jobs::Lease {
        super::jobs::Lease {
            kind: super::JobKind::Deliver,
            subject: self.id,
            fence: self.fence,
        }
    }
}

/// Deliveries not yet done, per channel, for `backfeed status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingDeliveries {
    pub channel: String,
    pub pending: i64,
    pub last_error: Option<String>,
    /// When the earliest of them is tried next (RFC 3339).
    pub next_try: Option<String>,
}

impl Store {
    /// The channels configured now, each with the site it is for (`""`: every site); from
    /// here on, publishing and deleting queue notifications for them (none: nothing is queued).
    pub fn set_notify_channels(&self, channels: &[(String, String)]) -> StoreResult<()> {
        let mut wanted: Vec<(String, String)> = channels.to_vec();
        wanted.sort();
        wanted.dedup();
        let current: Vec<(String, String)> = self.read(|c| {
            c.prepare("SELECT channel, site FROM notify_channels ORDER BY channel, site")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        if current == wanted {
            return Ok(()); // most commands only read: they must not take the write lock
        }
        self.write(|c| {
            let tx = c.transaction()?;
            tx.run("DELETE FROM notify_channels", [])?;
            for (channel, site) in channels {
                tx.run(
                    "INSERT INTO notify_channels (channel, site) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    [channel, site],
                )?;
            }
            tx.commit()
        })
    }

    /// Gives every notification not yet fanned out one delivery per configured channel: the
    /// channels of every site, and those of the mention's own site.
    ///
    /// The notifications are claimed first (`fanned_out = 2`, this transaction's own mark), and
    /// only those are given deliveries and marked done: with many processes on PostgreSQL, a
    /// notification committed by another process between two statements here must not be
    /// marked fanned out without its deliveries (each statement sees the latest commits). A
    /// second process fanning out at once waits on the claimed rows, then finds them done.
    pub fn fan_out(&self) -> StoreResult<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            if tx.run(
                "UPDATE notifications SET fanned_out = 2 WHERE fanned_out = 0",
                [],
            )? == 0
            {
                return Ok(0);
            }
            let made = tx.run(
                "INSERT INTO deliveries (notification_id, channel)
                 SELECT n.id, ch.channel FROM notifications n
                 JOIN mentions m ON m.id = n.mention_id
                 JOIN notify_channels ch ON ch.site = '' OR ch.site = m.site
                 WHERE n.fanned_out = 2 ON CONFLICT DO NOTHING",
                [],
            )?;
            tx.run(
                "INSERT INTO jobs (kind, subject, next_try)
                 SELECT 'deliver', d.id, n.created_at FROM deliveries d
                 JOIN notifications n ON n.id = d.notification_id
                 WHERE n.fanned_out = 2 AND d.status = 'pending' ON CONFLICT DO NOTHING",
                [],
            )?;
            tx.run(
                "UPDATE notifications SET fanned_out = 1 WHERE fanned_out = 2",
                [],
            )?;
            tx.commit()?;
            Ok(made)
        })
    }

    /// Leases up to `limit` due deliveries on `channels` to `owner` for `lease_secs`.
    pub fn lease_deliveries(
        &self,
        channels: &[String],
        limit: usize,
        lease_secs: i64,
        owner: &str,
    ) -> StoreResult<Vec<Delivery>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_rfc3339();
        let until = super::jobs::in_secs(lease_secs);
        let marks = vec!["?"; channels.len()].join(", ");
        self.write(|c| {
            let tx = c.transaction()?;
            let columns = MENTION_COLUMNS
                .split(", ")
                .map(|col| format!("m.{}", col.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            // Other processes of a fleet lease at the same time: rows one of them is leasing
            // are skipped, not waited for.
            let skip_locked = match tx.engine() {
                super::db::Engine::Postgres => " FOR UPDATE OF j SKIP LOCKED",
                super::db::Engine::Sqlite => "",
            };
            let found: Vec<Delivery> = {
                let stmt = tx.prepare(format!(
                    "SELECT d.id, d.channel, n.event, j.attempts, j.fence, {columns}
                     FROM jobs j JOIN deliveries d ON d.id = j.subject
                     JOIN notifications n ON n.id = d.notification_id
                     JOIN mentions m ON m.id = n.mention_id
                     WHERE j.kind = 'deliver' AND j.next_try <= ? AND (j.lease_until IS NULL OR j.lease_until <= ?)
                       AND d.channel IN ({marks})
                     ORDER BY j.subject LIMIT ?{skip_locked}"
                ))?;
                let mut args: Vec<super::db::Value> = vec![now.clone().into(), now.clone().into()];
                args.extend(channels.iter().map(|ch| ch.clone().into()));
                args.push(super::db::Param::value(&limit).into());
                stmt.query_map(args, |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        channel: r.get(1)?,
                        event: r.get(2)?,
                        attempts: r.get(3)?,
                        fence: r.get(4)?,
                        mention: mention_from_row_at(r, 5)?,
                    })
                })?
                .collect::<Result<_>>()?
            };
            // Each was free when read, in this same transaction: one taken meanwhile all the
            // same is left to its taker.
            let mut leased = Vec::with_capacity(found.len());
            for mut d in found {
                if let Some(fence) = super::jobs::take(&tx, super::JobKind::Deliver, d.id, &until, owner)? {
                    d.fence = fence;
                    leased.push(d);
                }
            }
            tx.commit()?;
            Ok(leased)
        })
    }

    /// A delivery done: it is never made again. Logged with its decision, together. Refused
    /// ([`super::jobs::StaleLease`]) when its lease was taken over meanwhile.
    pub fn delivered(&self, d: &Delivery, decision: &Decision) -> StoreResult<()> {
        let id = d.id;
        self.write(|c| {
            let tx = c.transaction()?;
            tx.run(
                "UPDATE deliveries SET status = 'delivered', delivered_at = ?2, attempts = attempts + 1,
                        last_error = NULL WHERE id = ?1",
                params![id, now_rfc3339()],
            )?;
            super::jobs::finish(&tx, &d.lease())?;
            insert_decision(&tx, decision)?;
            tx.commit()
        })
    }

    /// A delivery that failed: tried again in `retry_secs`, with its error kept and logged.
    pub fn delivery_failed(
        &self,
        d: &Delivery,
        error: &str,
        retry_secs: i64,
        decision: &Decision,
    ) -> StoreResult<()> {
        let id = d.id;
        let next = super::jobs::in_secs(retry_secs);
        self.write(|c| {
            let tx = c.transaction()?;
            tx.run(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )?;
            super::jobs::retry(&tx, &d.lease(), &next)?;
            insert_decision(&tx, decision)?;
            tx.commit()
        })
    }

    /// Per channel: deliveries not done yet and the last error.
    pub fn pending_deliveries(&self) -> StoreResult<Vec<PendingDeliveries>> {
        self.read(|c| {
            c.prepare(
                "SELECT channel, SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
                        (SELECT last_error FROM deliveries e WHERE e.channel = d.channel AND e.last_error IS NOT NULL
                         ORDER BY e.id DESC LIMIT 1),
                        (SELECT MIN(j.next_try) FROM jobs j JOIN deliveries w ON w.id = j.subject
                         WHERE j.kind = 'deliver' AND w.channel = d.channel)
                 FROM deliveries d GROUP BY channel ORDER BY channel",
            )?
            .query_map([], |r| {
                Ok(PendingDeliveries {
                    channel: r.get(0)?,
                    pending: r.get(1)?,
                    last_error: r.get(2)?,
                    next_try: r.get(3)?,
                })
            })?
            .collect()
        })
    }
}
