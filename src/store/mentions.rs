//! Mentions: outcomes applied to them (each state change with its decision, in one savepoint of
//! the group commit's transaction — see [`Applied`]), and what listings, feeds and counts read.

use super::db::{Conn, OptionalExtension, Param, Row, ValueRef, params};
use super::decisions::{Decision, insert_decision};
use super::queue::Job;
use super::{Result, Store, StoreResult};
use crate::lifecycle::{self, Moderation};
use crate::model::{Author, Extracted, Kind, Mention, MentionType, Status, now_rfc3339};

pub(super) const MENTION_COLUMNS: &str = "id, source, target, kind, type, status, title, author_name, author_url, \
     author_photo, published, excerpt, content_html, first_seen, verified_at, reason, updated_at, final_url, \
     imported";

pub(super) fn mention_from_row(row: &Row<'_>) -> Result<Mention> {
    mention_from_row_at(row, 0)
}

/// A mention from the [`MENTION_COLUMNS`] of `row`, starting at column `at`.
pub(super) fn mention_from_row_at(row: &Row<'_>, at: usize) -> Result<Mention> {
    let word = |i: usize| -> Result<String> { row.get(at + i) };
    Ok(Mention {
        id: row.get(at)?,
        source: row.get(at + 1)?,
        target: row.get(at + 2)?,
        kind: Kind::parse(&word(3)?).unwrap_or(Kind::Webmention),
        mention_type: MentionType::parse(&word(4)?).unwrap_or(MentionType::Mention),
        status: Status::parse(&word(5)?).unwrap_or(Status::Pending),
        title: row.get(at + 6)?,
        author: Author {
            name: row.get(at + 7)?,
            url: row.get(at + 8)?,
            photo: row.get(at + 9)?,
        },
        published: row.get(at + 10)?,
        excerpt: row.get(at + 11)?,
        content_html: row.get(at + 12)?,
        first_seen: row.get(at + 13)?,
        verified_at: row.get(at + 14)?,
        reason: row.get(at + 15)?,
        updated_at: row.get(at + 16)?,
        final_url: row.get(at + 17)?,
        imported: row.get(at + 18)?,
        syndication: Vec::new(),
    })
}

/// Filters for listings; all optional.
#[derive(Clone, Debug, Default)]
pub struct MentionFilter {
    pub target_keys: Vec<String>,
    pub status: Option<Status>,
    pub domain: Option<String>,
    pub types: Vec<MentionType>,
    pub kind: Option<Kind>,
    /// Words found in the title, excerpt, author's name or source URL (case-insensitive).
    pub text: Option<String>,
    pub since: Option<String>,
    pub since_id: Option<i64>,
    pub order_by_published: bool,
    pub ascending: bool,
    pub limit: Option<i64>,
    pub offset: i64,
    /// Only mentions after this (first_seen, id) in the default order, newest first: the next
    /// page of a walk over many (a cursor costs an index seek, an offset a walk).
    pub before: Option<(String, i64)>,
    /// Only this site's mentions.
    pub site: Option<String>,
    /// Leave out sites no longer configured (publishing: a removed site is not published,
    /// though its rows stay until `forget-site`).
    pub configured_sites_only: bool,
}

/// Counts for `status` and `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub posts: i64,
    pub by_status: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub queue_due: i64,
    pub decisions: i64,
}

/// What a verification writes to its mention (`?1` its id, `?2`…`?13` the rest of
/// [`verified_values`]). SET reads the row as it was: the stamps move only when what is
/// published does (a nightly reverify of unchanged pages must not make feed readers show old
/// entries as new); `checked_at` always says when it was last looked at.
const VERIFIED_SET: &str = "verified_at = CASE WHEN verified_at IS NULL OR status IS DISTINCT FROM ?2 OR type IS DISTINCT FROM ?3
        OR title IS DISTINCT FROM ?4 OR author_name IS DISTINCT FROM ?5 OR author_url IS DISTINCT FROM ?6
        OR author_photo IS DISTINCT FROM ?7 OR published IS DISTINCT FROM ?8 OR excerpt IS DISTINCT FROM ?9
        OR content_html IS DISTINCT FROM ?10 OR final_url IS DISTINCT FROM ?11 THEN ?13 ELSE verified_at END,
    updated_at = CASE WHEN verified_at IS NULL OR status IS DISTINCT FROM ?2 OR type IS DISTINCT FROM ?3
        OR title IS DISTINCT FROM ?4 OR author_name IS DISTINCT FROM ?5 OR author_url IS DISTINCT FROM ?6
        OR author_photo IS DISTINCT FROM ?7 OR published IS DISTINCT FROM ?8 OR excerpt IS DISTINCT FROM ?9
        OR content_html IS DISTINCT FROM ?10 OR final_url IS DISTINCT FROM ?11 THEN ?13 ELSE updated_at END,
    status = ?2, type = ?3, title = ?4, author_name = ?5, author_url = ?6,
    author_photo = ?7, published = ?8, excerpt = ?9, content_html = ?10, final_url = ?11,
    reason = ?12, not_found_count = 0, checked_at = ?13";

static VERIFIED_UPDATE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("UPDATE mentions SET {VERIFIED_SET} WHERE id = ?1"));

/// [`VERIFIED_SET`] for many mentions at once: each row of `{rows}` (a `VALUES` list) holds
/// one mention's [`verified_values`], read as `v.column1` … `v.column13`.
pub(super) static VERIFIED_UPDATE_FROM_ROWS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        let set = (2..=13).rev().fold(VERIFIED_SET.to_string(), |set, n| {
            set.replace(&format!("?{n}"), &format!("v.column{n}"))
        });
        format!(
            "UPDATE mentions SET {set} FROM (VALUES {{rows}}) AS v WHERE mentions.id = v.column1"
        )
    });

/// The values of [`VERIFIED_SET`] for one verification: the mention's id, its next status,
/// what the page says, the decision's reason and the time.
pub(super) fn verified_values<'a>(
    job: &'a Job,
    next: &'a str,
    x: &'a Extracted,
    decision: &'a Decision,
    now: &'a String,
) -> [ValueRef<'a>; 13] {
    [
        ValueRef::Int(job.mention_id),
        ValueRef::Text(next),
        ValueRef::Text(x.mention_type.unwrap_or(MentionType::Mention).as_str()),
        x.title.value(),
        x.author.name.value(),
        x.author.url.value(),
        x.author.photo.value(),
        x.published.value(),
        x.excerpt.value(),
        x.content_html.value(),
        x.final_url.value(),
        decision.reason.value(),
        now.value(),
    ]
}

/// A verified source: fills the mention (its page's final URL included) and publishes it (or
/// holds it for moderation), keeping a moderator's earlier decision. Ends the job and logs the
/// decision, in the caller's transaction.
fn verified(
    tx: &Conn,
    job: &Job,
    x: &Extracted,
    hold_new: bool,
    decision: &Decision,
) -> Result<Status> {
    let (status, moderation, target_key): (String, Option<String>, String) = tx
        .prepare_cached("SELECT status, moderation, target_key FROM mentions WHERE id = ?1")?
        .query_row([job.mention_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let next = lifecycle::after_verification(
        Status::parse(&status).unwrap_or(Status::Pending),
        Moderation::parse(moderation.as_deref()),
        hold_new,
    );
    let now = now_rfc3339();
    tx.run(
        &VERIFIED_UPDATE,
        &verified_values(job, next.as_str(), x, decision, &now)[..],
    )?;
    finish(tx, job, decision)?;
    // The same reaction seen through another channel: one of the two is kept (only among
    // mentions that are, or wait to be, published).
    if !matches!(next, Status::Verified | Status::Held) {
        return Ok(next);
    }
    match super::conversations::record_and_merge(tx, job.mention_id, &job.source, &target_key, x)? {
        Some(dropped) if dropped == job.mention_id => Ok(Status::Deleted),
        _ => Ok(next),
    }
}

/// A 404 for a mention that was verified once: counted, and the second in a row deletes;
/// the first ends the job and keeps the mention as it is.
fn not_found(tx: &Conn, job: &Job, decision: &Decision) -> Result<Status> {
    let (count, status): (i64, String) = tx.query_row(
        "UPDATE mentions SET not_found_count = not_found_count + 1 WHERE id = ?1
         RETURNING not_found_count, status",
        [job.mention_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let next = if count >= 2 {
        refuse(tx, job, true, decision)?
    } else {
        finish(tx, job, decision)?;
        Status::parse(&status).unwrap_or(Status::Verified)
    };
    Ok(next)
}

/// A transient failure: the job waits `delay_secs` and is tried again. Nothing is deleted.
fn retry_later(tx: &Conn, job: &Job, delay_secs: i64, decision: &Decision) -> Result<()> {
    let at = super::jobs::in_secs(delay_secs);
    super::jobs::retry(tx, &job.lease(), &at)?;
    tx.run(
        "UPDATE mentions SET reason = ?2 WHERE id = ?1 AND status = 'pending'",
        params![job.mention_id, decision.reason],
    )?;
    insert_decision(tx, decision)
}

/// Ends a job without changing what is published (a 304, or a kept mention after giving
/// up on a transient failure); returns the mention's status.
fn unchanged(tx: &Conn, job: &Job, decision: &Decision) -> Result<Status> {
    let status: String = tx.query_row(
        "UPDATE mentions SET not_found_count = 0, checked_at = ?2 WHERE id = ?1 RETURNING status",
        params![job.mention_id, now_rfc3339()],
        |r| r.get(0),
    )?;
    finish(tx, job, decision)?;
    Ok(Status::parse(&status).unwrap_or(Status::Pending))
}

/// What checking a source came to, as the store writes it: the pipeline decides which, by
/// its rules (retries, attempts, whether the mention was ever verified); the store knows how.
#[derive(Clone, Debug)]
pub enum Applied {
    /// Verified: fill the mention and publish it (or hold it, in moderation).
    Verified {
        extracted: Box<Extracted>,
        hold_new: bool,
    },
    /// The source no longer supports the mention: `delete` a verified one, else reject.
    Refused { delete: bool },
    /// A 404 for a mention verified once (the second in a row deletes).
    NotFound,
    /// Checked, nothing to change (a 304; a kept mention after giving up on a failure).
    Unchanged,
    /// A transient failure: tried again in this many seconds.
    RetryIn(i64),
    /// Not tried (a host's budget is spent): put back for this many seconds, nothing logged.
    DeferFor(i64),
}

/// Writes what a check came to for `job`, with its decision, on `c` (a transaction or a
/// savepoint of the caller's): the mention's status afterwards, `None` while it waits. Refused
/// as a whole ([`super::jobs::StaleLease`]) when the job was leased again since `job` was: the
/// newer holder's outcome stands. (Every path ends in the job's fenced finish, retry or put
/// back; its refusal rolls back what the path wrote before it.)
pub(crate) fn apply(
    c: &Conn,
    job: &Job,
    applied: &Applied,
    decision: &Decision,
) -> Result<Option<Status>> {
    Ok(match applied {
        Applied::Verified {
            extracted,
            hold_new,
        } => Some(verified(c, job, extracted, *hold_new, decision)?),
        Applied::Refused { delete } => Some(refuse(c, job, *delete, decision)?),
        Applied::NotFound => Some(not_found(c, job, decision)?),
        Applied::Unchanged => Some(unchanged(c, job, decision)?),
        Applied::RetryIn(secs) => {
            retry_later(c, job, *secs, decision)?;
            None
        }
        Applied::DeferFor(secs) => {
            let at = super::jobs::in_secs(*secs);
            super::jobs::put_back(c, &job.lease(), &at)?;
            None
        }
    })
}

/// A mention's id, title and author's name: the text a repair of imported mentions rewrites.
pub type MentionText = (i64, Option<String>, Option<String>);

/// A mention that left the published set, and when (`/api/deleted.json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unpublished {
    pub source: String,
    pub target: String,
    pub deleted_at: String,
}

impl Store {
    /// Imported mentions whose title or author's name still holds an HTML escape
    /// (`&#039;`, `&laquo;`: as WordPress exports them, and as older versions kept them):
    /// (id, title, author name).
    pub fn escaped_imported_texts(&self) -> StoreResult<Vec<MentionText>> {
        self.read(|c| {
            c.prepare(
                "SELECT id, title, author_name FROM mentions
                 WHERE imported IS NOT NULL AND (title LIKE '%&%;%' OR author_name LIKE '%&%;%')",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
        })
    }

    /// Sets mentions' title and author name (a repair of imported text), in one transaction.
    pub fn set_mention_texts(&self, texts: &[MentionText]) -> StoreResult<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            for (id, title, author) in texts {
                tx.run(
                    "UPDATE mentions SET title = ?2, author_name = ?3 WHERE id = ?1",
                    params![id, title, author],
                )?;
            }
            tx.commit()
        })
    }

    /// Mentions deleted, rejected or blocked after being published, since `since` (RFC 3339)
    /// when given, oldest first, at most `limit`.
    pub fn unpublished_since(
        &self,
        since: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Unpublished>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT source, target, deleted_at FROM unpublished
                 WHERE deleted_at > ?1 ORDER BY deleted_at, mention_id LIMIT ?2",
            )?
            .query_map(
                params![since.unwrap_or(super::BEFORE_ANY_TIME), limit],
                |r| {
                    Ok(Unpublished {
                        source: r.get(0)?,
                        target: r.get(1)?,
                        deleted_at: r.get(2)?,
                    })
                },
            )?
            .collect()
        })
    }

    /// The mention whose status page is named `token`.
    pub fn mention_by_status_token(&self, token: &str) -> StoreResult<Option<Mention>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {MENTION_COLUMNS} FROM mentions WHERE status_token = ?1"),
                [token],
                mention_from_row,
            )
            .optional()
        })
    }

    pub fn mention(&self, id: i64) -> StoreResult<Option<Mention>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {MENTION_COLUMNS} FROM mentions WHERE id = ?1"),
                [id],
                mention_from_row,
            )
            .optional()
        })
    }

    /// Mentions matching `filter`, newest first unless asked otherwise.
    pub fn mentions(&self, filter: &MentionFilter) -> StoreResult<Vec<Mention>> {
        // The conditions and the order; what is read comes around them below.
        let mut sql = String::from(" FROM mentions WHERE 1 = 1");
        let mut args: Vec<super::db::Value> = Vec::new();
        let mut arg = |v: super::db::Value, sql: &mut String, clause: &str| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(status) = filter.status {
            // Written out, not bound: the publishing indexes hold published mentions only
            // (`WHERE status = 'verified'`), and SQLite uses such an index only for a query
            // that names the value. The status is one of our own fixed words.
            sql.push_str(&format!(" AND status = '{}'", status.as_str()));
        }
        if !filter.target_keys.is_empty() {
            // Always true, and what lets a post's listing walk the index of its mentions in
            // order (`mentions_target_seen`, partial on it: see its migration).
            if filter.status.is_none() {
                sql.push_str(" AND status IS NOT NULL");
            }
            sql.push_str(" AND target_key IN (");
            for (i, key) in filter.target_keys.iter().enumerate() {
                arg(
                    key.clone().into(),
                    &mut sql,
                    if i == 0 { "?" } else { ", ?" },
                );
            }
            sql.push(')');
        }
        if !filter.types.is_empty() {
            sql.push_str(" AND type IN (");
            for (i, t) in filter.types.iter().enumerate() {
                arg(
                    t.as_str().to_string().into(),
                    &mut sql,
                    if i == 0 { "?" } else { ", ?" },
                );
            }
            sql.push(')');
        }
        if let Some(domain) = &filter.domain {
            // Match the target's host or any subdomain of it; `%` and `_` in the parameter are
            // characters, not wildcards.
            let d = super::like_escape(&domain.trim().to_ascii_lowercase());
            arg(
                format!("{d}%").into(),
                &mut sql,
                " AND (target_key LIKE ? ESCAPE '\\'",
            );
            arg(
                format!("%.{d}%").into(),
                &mut sql,
                " OR target_key LIKE ? ESCAPE '\\')",
            );
        }
        if let Some(kind) = filter.kind {
            arg(kind.as_str().to_string().into(), &mut sql, " AND kind = ?");
        }
        if let Some(site) = &filter.site {
            arg(site.clone().into(), &mut sql, " AND site = ?");
        }
        if filter.configured_sites_only {
            for site in self.removed_sites() {
                arg(site.into(), &mut sql, " AND site <> ?");
            }
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let pattern = super::like_containing(text);
            for (i, column) in ["title", "excerpt", "author_name", "source"]
                .iter()
                .enumerate()
            {
                let joint = if i == 0 { " AND (" } else { " OR " };
                arg(
                    pattern.clone().into(),
                    &mut sql,
                    &format!("{joint}{column} LIKE ? ESCAPE '\\'"),
                );
            }
            sql.push(')');
        }
        if let Some(since) = &filter.since {
            arg(
                since.clone().into(),
                &mut sql,
                " AND COALESCE(verified_at, first_seen) > ?",
            );
        }
        if let Some(since_id) = filter.since_id {
            arg(since_id.into(), &mut sql, " AND id > ?");
        }
        if let Some((first_seen, id)) = &filter.before {
            arg(
                first_seen.clone().into(),
                &mut sql,
                " AND (first_seen, id) < (?",
            );
            arg((*id).into(), &mut sql, ", ?)");
        }
        let dir = if filter.ascending { "ASC" } else { "DESC" };
        let order = if filter.order_by_published {
            format!(" ORDER BY COALESCE(published, rfc3339_text(first_seen)) {dir}, id {dir}")
        } else {
            format!(" ORDER BY first_seen {dir}, id {dir}")
        };
        sql.push_str(&order);
        let sql = match filter.limit {
            // A page is picked by id first, then only its rows are read: the rows an `OFFSET`
            // skips are then index entries, not whole mentions (page 500 of a listing skips
            // 10,000; read whole, on PostgreSQL at a million mentions that was 10,000 table
            // pages: 275 ms warm, over a second cold, against 2 ms).
            Some(limit) => {
                arg(limit.max(0).into(), &mut sql, " LIMIT ?");
                arg(filter.offset.max(0).into(), &mut sql, " OFFSET ?");
                format!(
                    "SELECT {MENTION_COLUMNS} FROM mentions WHERE id IN (SELECT id{sql}){order}"
                )
            }
            None => format!("SELECT {MENTION_COLUMNS}{sql}"),
        };
        // Planned for its values: how many mentions the post has decides the plan (see
        // PLANNED_PER_CALL); a request that runs it is a body not yet made (publish's cache).
        let sql = format!("{}{sql}", super::db::PLANNED_PER_CALL);
        let mut list: Vec<Mention> = self.read(|c| {
            let stmt = c.prepare_cached(&sql)?;
            stmt.query_map(args.as_slice(), mention_from_row)?.collect()
        })?;
        // Where else each reaction was seen (see `conversations`).
        if !list.is_empty() {
            let ids: Vec<i64> = list.iter().map(|m| m.id).collect();
            let mut elsewhere = self.seen_elsewhere(&ids)?;
            for m in &mut list {
                m.syndication = elsewhere.remove(&m.id).unwrap_or_default();
            }
        }
        Ok(list)
    }

    /// The version of what is published and when it last changed: moved by the database on
    /// every change to a published mention or a post's title, so a feed's validators cost one
    /// row, not a render.
    pub fn published_version(&self) -> StoreResult<(i64, String)> {
        self.published_version_of(None)
    }

    /// [`Store::published_version`] of one site (`None`: the whole store's): what it
    /// publishes moves it, other sites' changes do not. A site that never published anything
    /// is at 0, dated with the store's.
    pub fn published_version_of(&self, site: Option<&str>) -> StoreResult<(i64, String)> {
        self.read(|c| match site {
            None => c.query_row(
                "SELECT version, changed_at FROM publish_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            Some(site) => c.query_row(
                "SELECT COALESCE((SELECT version FROM site_versions WHERE site = ?1), 0),
                        COALESCE((SELECT changed_at FROM site_versions WHERE site = ?1),
                                 (SELECT changed_at FROM publish_state WHERE id = 1))",
                [site],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
        })
    }

    /// How many mentions have `status`.
    pub fn count_with_status(&self, status: Status) -> StoreResult<i64> {
        self.count_with_status_in(status, None)
    }

    /// [`Store::count_with_status`] of one site (`None`: every site).
    pub fn count_with_status_in(&self, status: Status, site: Option<&str>) -> StoreResult<i64> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM mentions WHERE status = ?1 AND (CAST(?2 AS TEXT) IS NULL OR site = ?2)",
                params![status.as_str(), site],
                |r| r.get(0),
            )
        })
    }

    /// The site a mention is filed under (`None`: no such mention).
    pub fn mention_site(&self, id: i64) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT site FROM mentions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Published mention counts per type for one target.
    /// The latest `updated_at` among published mentions, of one post (its match key) or all.
    pub fn published_updated(&self, target_key: Option<&str>) -> StoreResult<Option<String>> {
        self.read(|c| match target_key {
            Some(key) => c.query_row(
                "SELECT MAX(updated_at) FROM mentions WHERE target_key = ?1 AND status = 'verified'",
                [key],
                |r| r.get(0),
            ),
            None => c.query_row(
                "SELECT MAX(updated_at) FROM mentions WHERE status = 'verified'",
                [],
                |r| r.get(0),
            ),
        })
    }

    pub fn count_by_type(&self, target_key: &str) -> StoreResult<Vec<(String, i64)>> {
        self.read(|c| {
            let stmt = c.prepare(
                "SELECT type, COUNT(*) FROM mentions WHERE target_key = ?1 AND status = 'verified' GROUP BY type",
            )?;
            stmt.query_map([target_key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Store-wide counts.
    pub fn counts(&self) -> StoreResult<Counts> {
        let (posts, by_status) = self.read(|c| {
            let posts = c.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))?;
            let by_status = c
                .prepare("SELECT status, COUNT(*) FROM mentions GROUP BY status ORDER BY status")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_>>()?;
            Ok((posts, by_status))
        })?;
        self.counts_of(posts, by_status)
    }

    /// Store-wide counts and each site's, from one count of the mentions (the status page's:
    /// at a million mentions each count reads them all, a quarter of a second on PostgreSQL).
    pub fn counts_with_sites(&self) -> StoreResult<(Counts, Vec<super::SiteCounts>)> {
        let sites = self.site_counts()?;
        let mut by_status = std::collections::BTreeMap::<String, i64>::new();
        for (status, n) in sites.iter().flat_map(|s| &s.by_status) {
            *by_status.entry(status.clone()).or_default() += n;
        }
        let posts = sites.iter().map(|s| s.posts).sum();
        let counts = self.counts_of(posts, by_status.into_iter().collect())?;
        Ok((counts, sites))
    }

    /// [`Counts`] of these posts and mentions, with the queue and the decision log now.
    fn counts_of(&self, posts: i64, by_status: Vec<(String, i64)>) -> StoreResult<Counts> {
        let (queue_depth, queue_due) = self.queue_depth()?;
        let decisions =
            self.read(|c| c.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0)))?;
        Ok(Counts {
            posts,
            by_status,
            queue_depth,
            queue_due,
            decisions,
        })
    }
}

/// The source no longer supports the mention: see [`Store::apply_refusal`].
pub(super) fn refuse(tx: &Conn, job: &Job, delete: bool, decision: &Decision) -> Result<Status> {
    let (status, verified): (String, bool) = tx.query_row(
        "SELECT status, verified_at IS NOT NULL FROM mentions WHERE id = ?1",
        [job.mention_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let current = Status::parse(&status).unwrap_or(Status::Pending);
    let next = lifecycle::after_refusal(current, verified, delete);
    let now = now_rfc3339();
    // What is published changes only when the status does: a kept mention keeps its stamps.
    tx.run(
        "UPDATE mentions SET status = ?2, reason = ?3, checked_at = ?4,
                updated_at = CASE WHEN status = ?2 THEN updated_at ELSE ?4 END
         WHERE id = ?1",
        params![job.mention_id, next.as_str(), decision.reason, now],
    )?;
    finish(tx, job, decision)?;
    Ok(next)
}

pub(super) fn finish(c: &Conn, job: &Job, decision: &Decision) -> Result<()> {
    super::jobs::finish(c, &job.lease())?;
    insert_decision(c, decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::change;
    use crate::store::queue::{Candidate, enqueue_one};

    /// Both engines' triggers do what [`lifecycle::change`] says, for every pair of statuses:
    /// the events queued, the record `/api/deleted.json` reads, the published version.
    #[test]
    fn triggers_follow_the_lifecycle() {
        for (store, _keep) in crate::store::testing::test_stores("lifecycle") {
            store
                .set_notify_channels(&[("mail".to_string(), String::new())])
                .unwrap();
            let candidate = Candidate {
                source: "https://a.example/x".into(),
                target: "https://b.example/p".into(),
                target_key: "b.example/p".into(),
                post_id: None,
                kind: Kind::Webmention,
                hint: None,
            };
            let id = store.write(|c| enqueue_one(c, &candidate)).unwrap().id;
            let old_record = "2000-01-01T00:00:00Z";
            for from in Status::ALL.iter().copied() {
                for to in Status::ALL.iter().copied() {
                    let version = |c: &Conn| -> Result<i64> {
                        c.query_row("SELECT version FROM publish_state", [], |r| r.get(0))
                    };
                    let (events, record, moved) = store
                        .write(|c| {
                            c.run(
                                "UPDATE mentions SET status = ?2 WHERE id = ?1",
                                params![id, from.as_str()],
                            )?;
                            c.run("DELETE FROM notifications", [])?;
                            c.run("DELETE FROM unpublished", [])?;
                            c.run(
                                "INSERT INTO unpublished (mention_id, source, target, deleted_at)
                                 VALUES (?1, 's', 't', ?2)",
                                params![id, old_record],
                            )?;
                            let before = version(c)?;
                            c.run(
                                "UPDATE mentions SET status = ?2 WHERE id = ?1",
                                params![id, to.as_str()],
                            )?;
                            let events: Vec<String> = c
                                .prepare("SELECT event FROM notifications ORDER BY event")?
                                .query_map([], |r| r.get(0))?
                                .collect::<Result<_>>()?;
                            let record: Option<String> = c
                                .query_row(
                                    "SELECT deleted_at FROM unpublished WHERE mention_id = ?1",
                                    [id],
                                    |r| r.get(0),
                                )
                                .optional()?;
                            Ok((events, record, version(c)? != before))
                        })
                        .unwrap();
                    let expected = change(from, to);
                    let pair = format!("{from:?} → {to:?} on {:?}", store.engine());
                    let expected_events: Vec<&str> =
                        expected.events.iter().map(|e| e.as_str()).collect();
                    assert_eq!(events, expected_events, "{pair}");
                    assert_eq!(moved, expected.publishing_moved, "{pair}");
                    match expected.unpublished {
                        Some(true) => assert!(record.is_some_and(|at| at != old_record), "{pair}"),
                        Some(false) => assert_eq!(record, None, "{pair}"),
                        None => assert_eq!(record.as_deref(), Some(old_record), "{pair}"),
                    }
                }
            }
        }
    }
}
