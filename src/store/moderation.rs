//! Moderation by hand: approve, reject (which sticks through later pings), and domain blocks
//! that hide a domain's mentions reversibly.

use super::db::{Conn, OptionalExtension, params};
use super::decisions::{Decision, insert_decision};
use super::{Result, Store, StoreResult};
use crate::lifecycle;
use crate::model::{Status, now_rfc3339};

impl Store {
    /// Approves a held (or rejected) mention; `None` if there is no such id.
    pub fn approve(&self, id: i64) -> StoreResult<Option<Status>> {
        self.moderate(id, "approved", lifecycle::after_approval)
    }

    /// Rejects a mention by hand; it stays rejected through later pings until approved.
    pub fn reject(&self, id: i64) -> StoreResult<Option<Status>> {
        self.moderate(id, "rejected", |status, _| {
            lifecycle::after_rejection(status)
        })
    }

    fn moderate(
        &self,
        id: i64,
        decision: &str,
        next: impl Fn(Status, bool) -> Status,
    ) -> StoreResult<Option<Status>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let row: Option<(String, bool, String, String, String)> = tx
                .query_row(
                    "SELECT status, verified_at IS NOT NULL, source, target, kind FROM mentions WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((status, verified, source, target, kind)) = row else { return Ok(None) };
            let new = next(Status::parse(&status).unwrap_or(Status::Pending), verified);
            let now = now_rfc3339();
            tx.run(
                "UPDATE mentions SET status = ?2, moderation = ?3, updated_at = ?4, reason = ?5 WHERE id = ?1",
                params![id, new.as_str(), decision, now, format!("{decision} by hand")],
            )?;
            insert_decision(
                &tx,
                &Decision { at: now, source, target, kind, outcome: decision.into(), reason: "by hand".into() },
            )?;
            tx.commit()?;
            Ok(Some(new))
        })
    }

    /// Blocks a domain: its mentions are hidden (marked rejected, reversibly) and new candidates
    /// from it are refused. Returns how many mentions it hid.
    pub fn block(&self, domain: &str) -> StoreResult<usize> {
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        self.write(|c| {
            let tx = c.transaction()?;
            tx.run(
                "INSERT INTO blocks (domain, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![domain, now_rfc3339()],
            )?;
            let ids = ids_on_domain(&tx, &domain, "status IN ('verified', 'held', 'pending')")?;
            for id in &ids {
                let status: String =
                    tx.query_row("SELECT status FROM mentions WHERE id = ?1", [id], |r| r.get(0))?;
                let new = lifecycle::after_rejection(Status::parse(&status).unwrap_or(Status::Pending));
                tx.run(
                    "UPDATE mentions SET status = ?4, moderation = 'blocked', status_before_block = status,
                            reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, format!("blocked domain {domain}"), now_rfc3339(), new.as_str()],
                )?;
            }
            tx.commit()?;
            self.kept.heard.changed();
            Ok(ids.len())
        })
    }

    /// Lifts a block; mentions it hid come back as they were (held stays held). Returns how many.
    pub fn unblock(&self, domain: &str) -> StoreResult<Option<usize>> {
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        self.write(|c| {
            let tx = c.transaction()?;
            if tx.run("DELETE FROM blocks WHERE domain = ?1", [&domain])? == 0 {
                return Ok(None);
            }
            let ids = ids_on_domain(&tx, &domain, "moderation = 'blocked'")?;
            for id in &ids {
                let (before_block, verified): (Option<String>, bool) = tx.query_row(
                    "SELECT status_before_block, verified_at IS NOT NULL FROM mentions WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let back = lifecycle::after_unblock(before_block.as_deref().and_then(Status::parse), verified);
                tx.run(
                    "UPDATE mentions SET status = ?3, status_before_block = NULL, moderation = NULL,
                            reason = 'unblocked', updated_at = ?2
                     WHERE id = ?1",
                    params![id, now_rfc3339(), back.as_str()],
                )?;
            }
            tx.commit()?;
            self.kept.heard.changed();
            Ok(Some(ids.len()))
        })
    }

    /// Blocked domains: the store's list (the config's list is added by the caller).
    pub fn blocked_domains(&self) -> StoreResult<Vec<String>> {
        self.kept_or_read(&self.kept.blocks, (), || {
            self.read(|c| {
                c.prepare_cached("SELECT domain FROM blocks ORDER BY domain")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
        })
    }
}

fn ids_on_domain(c: &Conn, domain: &str, condition: &str) -> Result<Vec<i64>> {
    let stmt = c.prepare(format!("SELECT id, source FROM mentions WHERE {condition}"))?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, source)| {
            crate::model::host_of(source).is_some_and(|h| crate::model::host_in_domain(&h, domain))
        })
        .map(|(id, _)| id)
        .collect())
}
