//! One reaction, one mention. The same reply or like often arrives more than once: the toot the
//! Mastodon source finds and Brid.gy's webmention for it, a blog reply and its syndicated copy.
//! Each verified mention records every address it was seen at (`mention_urls`): its source,
//! where that redirected, the original it names (`u-url` pointing elsewhere — Brid.gy's copies
//! do), and its copies (`u-syndication`). When a newly verified mention of a post shares an
//! address with another published or held mention of the same post, they are one reaction:
//! one is kept, the other is deleted with the reason "same reaction as mention #N", and its
//! addresses join the kept one's, which publishing shows as `syndication`.
//!
//! Which is kept is decided, never a race: the original when either names it (the one the
//! other's `u-url` points at, or the one whose `u-syndication` lists the other); else the one
//! seen first (lower id). Refused merges: mentions of different posts (never compared), and
//! mentions whose authors are both known and differ (two people quoting one URL are two).

use super::Result;
use super::db::{Conn, Piped, ValueRef, params};
use crate::model::{Extracted, match_key};

/// An address a mention was seen at, as `mention_urls` keeps it.
pub(super) struct SeenAt<'a> {
    pub url: &'a str,
    pub key: String,
    /// "source" (the source, or where it redirected), "original" or "copy".
    pub role: &'static str,
}

/// The addresses a mention from `source` that says `x` was seen at (those with a match key).
pub(super) fn seen_at<'a>(source: &'a str, x: &'a Extracted) -> Vec<SeenAt<'a>> {
    std::iter::once((source, "source"))
        .chain(x.final_url.as_deref().map(|u| (u, "source")))
        .chain(x.originals.iter().map(|u| (u.as_str(), "original")))
        .chain(x.copies.iter().map(|u| (u.as_str(), "copy")))
        .filter_map(|(url, role)| {
            Some(SeenAt {
                url,
                key: match_key(url)?,
                role,
            })
        })
        .collect()
}

/// Records the addresses mentions were seen at (`mention_urls`); see [`addresses_recorded`].
pub(super) fn record_addresses(c: &Conn, seen: &[(i64, SeenAt<'_>)]) -> Result<()> {
    c.pipeline(vec![addresses_recorded(seen)])
}

/// The INSERT that records the addresses mentions were seen at, many to a statement (see
/// [`Piped::in_runs`]); one already recorded is left as it is.
pub(super) fn addresses_recorded<'a>(seen: &'a [(i64, SeenAt<'a>)]) -> Piped<'a> {
    Piped::in_runs(
        seen,
        "(CAST(? AS BIGINT), ?, ?, ?)",
        |rows| {
            format!(
                "INSERT INTO mention_urls (mention_id, url, url_key, role) VALUES {rows}
                 ON CONFLICT DO NOTHING"
            )
        },
        |(id, at)| {
            vec![
                ValueRef::Int(*id),
                ValueRef::Text(at.url),
                ValueRef::Text(&at.key),
                ValueRef::Text(at.role),
            ]
        },
    )
}

/// Records where mention `id` (from `source`, of the post `target_key`) was seen, then merges it
/// with another mention of the same post that shares an address, if there is one. Returns the
/// id of the mention that was deleted as a duplicate, if any (possibly `id` itself).
pub(super) fn record_and_merge(
    c: &Conn,
    id: i64,
    source: &str,
    target_key: &str,
    x: &Extracted,
) -> Result<Option<i64>> {
    let seen: Vec<(i64, SeenAt<'_>)> = seen_at(source, x).into_iter().map(|at| (id, at)).collect();
    record_addresses(c, &seen)?;
    let keys: Vec<String> = seen.into_iter().map(|(_, at)| at.key).collect();
    // Another live mention of the same post seen at one of these addresses: one indexed
    // lookup per address (a handful), so the cost does not grow with the post's mentions on
    // either engine (one query over the whole list left PostgreSQL's planner walking them all).
    // The mention's status and post are checked in a subquery per address found, not joined,
    // and the smallest id is taken here, not by MIN(): a join, or MIN() read off the primary
    // key (mention_id, url_key) in order, let a plan made while the tables were small
    // (PostgreSQL keeps a prepared statement's plan) walk every mention instead — 4 ms a
    // lookup at 10,000 mentions.
    let mut other: Option<i64> = None;
    for key in &keys {
        let found = c
            .prepare_cached(
                "SELECT u.mention_id FROM mention_urls u
                 WHERE u.url_key = ?1 AND u.mention_id != ?2
                   AND (SELECT m.status IN ('verified', 'held') AND m.target_key = ?3
                        FROM mentions m WHERE m.id = u.mention_id)",
            )?
            .query_map(params![key, id, target_key], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<i64>>>()?;
        other = other.into_iter().chain(found).min();
    }
    let Some(other) = other else { return Ok(None) };
    if !same_author(c, id, other)? {
        return Ok(None);
    }
    let (keep, drop) = if names_as(c, id, other, "original")? || names_as(c, other, id, "copy")? {
        (other, id)
    } else if names_as(c, other, id, "original")? || names_as(c, id, other, "copy")? {
        (id, other)
    } else {
        (id.min(other), id.max(other))
    };
    c.prepare_cached(
        "INSERT INTO mention_urls (mention_id, url, url_key, role)
         SELECT ?1, url, url_key, CASE role WHEN 'source' THEN 'copy' ELSE role END
         FROM mention_urls WHERE mention_id = ?2 ON CONFLICT DO NOTHING",
    )?
    .execute(params![keep, drop])?;
    c.prepare_cached(
        "UPDATE mentions SET status = 'deleted', reason = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![
        drop,
        format!("same reaction as mention #{keep}"),
        crate::model::now_rfc3339()
    ])?;
    Ok(Some(drop))
}

/// Whether mention `who` names mention `whom`'s source as its `role` ("original" or "copy").
fn names_as(c: &Conn, who: i64, whom: i64, role: &str) -> Result<bool> {
    c.prepare_cached(
        "SELECT 1 FROM mention_urls a JOIN mention_urls b ON a.url_key = b.url_key
         WHERE a.mention_id = ?1 AND a.role = ?3 AND b.mention_id = ?2 AND b.role = 'source'",
    )?
    .exists(params![who, whom, role])
}

/// Whether two mentions could be one person's: their authors' pages or names agree, or one
/// of them names no author.
fn same_author(c: &Conn, a: i64, b: i64) -> Result<bool> {
    let author = |id: i64| -> Result<(Option<String>, Option<String>)> {
        c.prepare_cached("SELECT author_url, author_name FROM mentions WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
    };
    let ((url_a, name_a), (url_b, name_b)) = (author(a)?, author(b)?);
    Ok(
        match (
            url_a.as_deref().and_then(match_key),
            url_b.as_deref().and_then(match_key),
        ) {
            (Some(x), Some(y)) if x == y => true,
            _ => match (name_a, name_b) {
                (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
                _ => true,
            },
        },
    )
}

impl super::Store {
    /// Every address each of `ids` was seen at besides its own source, by mention id
    /// (publishing's `syndication`).
    pub fn seen_elsewhere(
        &self,
        ids: &[i64],
    ) -> super::StoreResult<std::collections::HashMap<i64, Vec<String>>> {
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        self.read(|c| {
            let mut out: std::collections::HashMap<i64, Vec<String>> = Default::default();
            let stmt = c.prepare_cached(
                "SELECT u.mention_id, u.url FROM mention_urls u JOIN mentions m ON m.id = u.mention_id
                 WHERE u.mention_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1)) AND u.url != m.source
                   AND u.url IS DISTINCT FROM m.final_url
                 ORDER BY u.mention_id, u.role, u.url",
            )?;
            let rows = stmt.query_map([ids], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, url) = row?;
                out.entry(id).or_default().push(url);
            }
            Ok(out)
        })
    }
}
