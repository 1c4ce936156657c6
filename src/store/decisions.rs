//! The decision log: why each candidate was accepted, refused, updated or deleted.

use super::{Result, Store};
use rusqlite::{Connection, params};

/// One line of the decision log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decision {
    pub at: String,
    pub source: String,
    pub target: String,
    pub kind: String,
    pub outcome: String,
    pub reason: String,
}

impl Store {
    /// Logs a decision that changes no mention (e.g. a ping refused before it was queued).
    pub fn log_decision(&self, decision: &Decision) -> Result<()> {
        self.write(|c| insert_decision(c, decision))
    }

    /// Decisions at or after `since` (RFC 3339), oldest first.
    pub fn decisions_since(&self, since: &str) -> Result<Vec<Decision>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT at, source, target, kind, outcome, reason FROM decisions WHERE at >= ?1 ORDER BY id",
            )?;
            stmt.query_map([since], |r| {
                Ok(Decision {
                    at: r.get(0)?,
                    source: r.get(1)?,
                    target: r.get(2)?,
                    kind: r.get(3)?,
                    outcome: r.get(4)?,
                    reason: r.get(5)?,
                })
            })?
            .collect()
        })
    }
}

pub(super) fn insert_decision(c: &Connection, d: &Decision) -> Result<()> {
    c.execute(
        "INSERT INTO decisions (at, source, target, kind, outcome, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![d.at, d.source, d.target, d.kind, d.outcome, d.reason],
    )?;
    Ok(())
}
