//! The decision log: why each candidate was accepted, refused, updated or deleted.

use super::db::{Conn, Param, Piped, ValueRef, params};
use super::{Result, Store, StoreResult};
use crate::model::match_key;

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

/// Which lines of the log to list, newest first; all optional.
#[derive(Clone, Debug, Default)]
pub struct DecisionFilter {
    pub outcome: Option<String>,
    pub kind: Option<String>,
    /// Words found in the source, target or reason (case-insensitive).
    pub text: Option<String>,
    /// Only this site's lines.
    pub site: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

fn decision_from_row(r: &super::db::Row<'_>) -> Result<Decision> {
    Ok(Decision {
        at: r.get(0)?,
        source: r.get(1)?,
        target: r.get(2)?,
        kind: r.get(3)?,
        outcome: r.get(4)?,
        reason: r.get(5)?,
    })
}

impl Store {
    /// Logs a decision that changes no mention (e.g. a ping refused before it was queued).
    pub fn log_decision(&self, decision: &Decision) -> StoreResult<()> {
        self.write(|c| insert_decision(c, decision))
    }

    /// Decisions at or after `since` (RFC 3339), oldest first.
    pub fn decisions_since(&self, since: &str, site: Option<&str>) -> StoreResult<Vec<Decision>> {
        self.read(|c| {
            let stmt = c.prepare(
                "SELECT at, source, target, kind, outcome, reason FROM decisions
                 WHERE at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR site = ?2) ORDER BY id",
            )?;
            stmt.query_map(params![since, site], decision_from_row)?
                .collect()
        })
    }

    /// The outcomes the log holds, for choosing among them.
    pub fn decision_outcomes(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            c.prepare("SELECT DISTINCT outcome FROM decisions ORDER BY outcome")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// Lines of the log matching `filter`, newest first.
    pub fn decisions(&self, filter: &DecisionFilter) -> StoreResult<Vec<Decision>> {
        let text = filter
            .text
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(super::like_containing);
        self.read(|c| {
            let stmt = c.prepare(
                "SELECT at, source, target, kind, outcome, reason FROM decisions
                 WHERE (CAST(?1 AS TEXT) IS NULL OR outcome = ?1) AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2)
                   AND (CAST(?3 AS TEXT) IS NULL OR source LIKE ?3 ESCAPE '\\' OR target LIKE ?3 ESCAPE '\\'
                        OR reason LIKE ?3 ESCAPE '\\')
                   AND (CAST(?6 AS TEXT) IS NULL OR site = ?6)
                 ORDER BY id DESC LIMIT ?4 OFFSET ?5",
            )?;
            stmt.query_map(
                params![
                    filter.outcome,
                    filter.kind,
                    text,
                    filter.limit.max(0),
                    filter.offset.max(0),
                    filter.site
                ],
                decision_from_row,
            )?
            .collect()
        })
    }
}

/// Files the decision under the site of the post it is about: its target's (a mention), else
/// its source's (a send); a ping for no known post is the host's alone (site `''`).
pub(super) fn insert_decision(c: &Conn, d: &Decision) -> Result<()> {
    insert_decisions(c, &[d])
}

/// Writes decision-log lines, many to a statement (see [`DecisionLines`]).
pub(super) fn insert_decisions(c: &Conn, decisions: &[&Decision]) -> Result<()> {
    c.pipeline(vec![DecisionLines::new(decisions).insert()])
}

/// Decision-log lines to write, each filed under the site of its target's post, or else of its
/// source's (with their posts' keys, worked out here).
pub(super) struct DecisionLines<'d> {
    lines: Vec<(&'d Decision, Option<String>, Option<String>)>,
}

impl<'d> DecisionLines<'d> {
    pub fn new(decisions: &[&'d Decision]) -> DecisionLines<'d> {
        let lines = decisions
            .iter()
            .map(|&d| (d, match_key(&d.target), match_key(&d.source)))
            .collect();
        DecisionLines { lines }
    }

    /// Their INSERT, many lines to a statement (see [`Piped::in_runs`]).
    pub fn insert(&self) -> Piped<'_> {
        Piped::in_runs(
            &self.lines,
            "(CAST(? AS time_text), ?, ?, ?, ?, ?,
              COALESCE((SELECT site FROM posts WHERE match_key = ?), (SELECT site FROM posts WHERE match_key = ?), ''))",
            |rows| {
                format!(
                    "INSERT INTO decisions (at, source, target, kind, outcome, reason, site) VALUES {rows}"
                )
            },
            |(d, target_key, source_key)| {
                vec![
                    ValueRef::Text(&d.at),
                    ValueRef::Text(&d.source),
                    ValueRef::Text(&d.target),
                    ValueRef::Text(&d.kind),
                    ValueRef::Text(&d.outcome),
                    ValueRef::Text(&d.reason),
                    target_key.value(),
                    source_key.value(),
                ]
            },
        )
    }
}
