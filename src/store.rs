//! The only SQL in backfeed: one SQLite file in WAL mode, migrated forward on open.
//!
//! Shape: every (source, target post) pair is one row of `mentions`, from the moment it is a
//! candidate (`pending`) to verified, held, rejected or deleted. The durable queue is a second
//! table, `queue`, holding the mention ids that still need a fetch, with leases so that a crash
//! mid-job only delays the job. Keeping the pair in one row from the start means a webmention's
//! status URL, `backfeed mentions --status pending` and the feeds all read the same truth, and
//! "a second ping for the same pair updates it" is a unique index, not a merge.
//!
//! One writer: a single connection behind a mutex does every write, so SQLite never sees two
//! writers racing for its lock; reads use a small pool of their own connections (WAL lets them
//! run beside the writer). No connection is ever held across a network await: every method here
//! is synchronous and short.
//!
//! The interface is narrow on purpose (methods named for what the pipeline means, plain values
//! in and out), so that another backend could stand behind the same methods.

use crate::model::{Author, Extracted, Kind, Mention, MentionType, Post, Status, now_rfc3339};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE posts (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,
    match_key  TEXT NOT NULL UNIQUE,
    key        TEXT NOT NULL UNIQUE,
    title      TEXT,
    published  TEXT,
    atom_id    TEXT,
    first_seen TEXT NOT NULL
);
CREATE TABLE mentions (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    target          TEXT NOT NULL,
    target_key      TEXT NOT NULL,
    post_id         INTEGER REFERENCES posts(id),
    kind            TEXT NOT NULL,
    type            TEXT NOT NULL DEFAULT 'mention',
    status          TEXT NOT NULL DEFAULT 'pending',
    moderation      TEXT,
    reason          TEXT,
    title           TEXT,
    author_name     TEXT,
    author_url      TEXT,
    author_photo    TEXT,
    published       TEXT,
    excerpt         TEXT,
    content_html    TEXT,
    final_url       TEXT,
    hint            TEXT,
    not_found_count INTEGER NOT NULL DEFAULT 0,
    first_seen      TEXT NOT NULL,
    verified_at     TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (source, target_key)
);
CREATE INDEX mentions_status_updated ON mentions (status, updated_at);
CREATE INDEX mentions_post ON mentions (post_id, status);
CREATE TABLE queue (
    mention_id  INTEGER PRIMARY KEY REFERENCES mentions(id),
    next_try    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until TEXT,
    conditional INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_next ON queue (next_try);
CREATE TABLE decisions (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL,
    target  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX decisions_at ON decisions (at);
CREATE TABLE fetch_state (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    fingerprint   TEXT,
    error_count   INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_ok       TEXT,
    next_try      TEXT,
    updated_at    TEXT NOT NULL
);
CREATE TABLE blocks (
    domain     TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- How this job's candidate arrived (the decision log's kind; the mention keeps its first kind).
ALTER TABLE queue ADD COLUMN arrival TEXT;
-- Which job loop holds the lease: a loop gives back only its own.
ALTER TABLE queue ADD COLUMN lease_owner TEXT;
-- The unguessable name of a mention's status page (ids are sequential: anyone could read all).
ALTER TABLE mentions ADD COLUMN status_token TEXT;
UPDATE mentions SET status_token = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX mentions_status_token ON mentions (status_token);
-- When the source was last looked at; verified_at and updated_at move only when what is
-- published changes.
ALTER TABLE mentions ADD COLUMN checked_at TEXT;
UPDATE mentions SET checked_at = COALESCE(verified_at, updated_at);
"#,
];

const MENTION_COLUMNS: &str = "id, source, target, kind, type, status, title, author_name, author_url, \
     author_photo, published, excerpt, content_html, first_seen, verified_at, reason, updated_at, final_url";

fn mention_from_row(row: &Row<'_>) -> Result<Mention> {
    let word = |i: usize| -> Result<String> { row.get(i) };
    Ok(Mention {
        id: row.get(0)?,
        source: row.get(1)?,
        target: row.get(2)?,
        kind: Kind::parse(&word(3)?).unwrap_or(Kind::Webmention),
        mention_type: MentionType::parse(&word(4)?).unwrap_or(MentionType::Mention),
        status: Status::parse(&word(5)?).unwrap_or(Status::Pending),
        title: row.get(6)?,
        author: Author {
            name: row.get(7)?,
            url: row.get(8)?,
            photo: row.get(9)?,
        },
        published: row.get(10)?,
        excerpt: row.get(11)?,
        content_html: row.get(12)?,
        first_seen: row.get(13)?,
        verified_at: row.get(14)?,
        reason: row.get(15)?,
        updated_at: row.get(16)?,
        final_url: row.get(17)?,
    })
}

fn job_from_row(r: &Row<'_>) -> Result<Job> {
    Ok(Job {
        mention_id: r.get(0)?,
        source: r.get(1)?,
        target: r.get(2)?,
        kind: Kind::parse(&r.get::<_, String>(3)?).unwrap_or(Kind::Webmention),
        hint: r.get(4)?,
        attempts: r.get(5)?,
        conditional: r.get(6)?,
        ever_verified: r.get(7)?,
    })
}

/// A post row as the pipeline needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct PostRef {
    pub id: i64,
    pub url: String,
    pub key: String,
    pub title: Option<String>,
    pub atom_id: Option<String>,
}

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
}

impl Job {
    /// The source's host as the fetcher counts it (see [`Store::lease_due`]).
    pub fn source_host(&self) -> String {
        crate::model::host_of(&self.source)
            .map(|h| h.trim_end_matches('.').to_string())
            .unwrap_or_default()
    }
}

/// Result of [`Store::enqueue`].
#[derive(Clone, Debug, PartialEq)]
pub struct Enqueued {
    pub id: i64,
    /// Names the status page (`/webmention/<token>`).
    pub status_token: String,
    pub new: bool,
    /// It was queued already (a repeated ping coalesces into the waiting job).
    pub already_queued: bool,
    pub status: Status,
}

/// Filters for listings; all optional.
#[derive(Clone, Debug, Default)]
pub struct MentionFilter {
    pub target_keys: Vec<String>,
    pub status: Option<Status>,
    pub domain: Option<String>,
    pub types: Vec<MentionType>,
    pub since: Option<String>,
    pub since_id: Option<i64>,
    pub order_by_published: bool,
    pub ascending: bool,
    pub limit: Option<i64>,
    pub offset: i64,
}

/// Validators and health of one fetched URL.
#[derive(Clone, Debug, Default)]
pub struct FetchState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fingerprint: Option<String>,
    pub error_count: i64,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
    pub next_try: Option<String>,
}

/// A fetched URL whose last fetches failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailingUrl {
    pub url: String,
    pub errors: i64,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
}

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

/// Counts for `status` and `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub posts: i64,
    pub by_status: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub queue_due: i64,
    pub decisions: i64,
}

/// The store: one writer, a few readers.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash or power
    // loss may lose the last transactions. That is the durability the 201 promises.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        configure(&conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                configure(&c)?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }

    /// Answers when the database does, for reads and for writes: a store that can no longer
    /// write (a full disk, a read-only file) cannot keep what receivers acknowledge.
    pub fn health(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())))?;
        self.kv_put("health:checked_at", &now_rfc3339())
    }

    // ---- posts -------------------------------------------------------------------------------

    /// Adds or refreshes one of the site's posts; returns its key. The key, once given, never
    /// changes: it names files in exports and trackback URLs.
    pub fn upsert_post(
        &self,
        url: &str,
        match_key: &str,
        title: Option<&str>,
        published: Option<&str>,
        atom_id: Option<&str>,
    ) -> Result<String> {
        self.write(|c| {
            let tx = c.transaction()?;
            let existing: Option<String> = tx
                .query_row("SELECT key FROM posts WHERE match_key = ?1", [match_key], |r| r.get(0))
                .optional()?;
            let key = if let Some(key) = existing {
                tx.execute(
                    "UPDATE posts SET url = ?2, title = COALESCE(?3, title), published = COALESCE(?4, published),
                            atom_id = COALESCE(?5, atom_id) WHERE match_key = ?1",
                    params![match_key, url, title, published, atom_id],
                )?;
                key
            } else {
                let base = post_key_base(url);
                let mut key = base.clone();
                let mut n = 2;
                while tx
                    .query_row("SELECT 1 FROM posts WHERE key = ?1", [&key], |_| Ok(()))
                    .optional()?
                    .is_some()
                {
                    key = format!("{base}-{n}");
                    n += 1;
                }
                tx.execute(
                    "INSERT INTO posts (url, match_key, key, title, published, atom_id, first_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![url, match_key, key, title, published, atom_id, now_rfc3339()],
                )?;
                key
            };
            tx.commit()?;
            Ok(key)
        })
    }

    /// The post whose URL has this match key.
    pub fn post_by_match_key(&self, match_key: &str) -> Result<Option<PostRef>> {
        self.post_where("match_key = ?1", match_key)
    }

    /// The posts with these match keys, in one query (publishing asks for all targets at once).
    pub fn posts_by_match_keys(&self, keys: &[String]) -> Result<Vec<(String, PostRef)>> {
        let mut found = Vec::new();
        // SQLite allows some tens of thousands of parameters; an export may name every post.
        for chunk in keys.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows: Vec<(String, PostRef)> = self.read(|c| {
                c.prepare(&format!(
                    "SELECT match_key, id, url, key, title, atom_id FROM posts WHERE match_key IN ({marks})"
                ))?
                .query_map(rusqlite::params_from_iter(chunk), |r| {
                    Ok((
                        r.get(0)?,
                        PostRef {
                            id: r.get(1)?,
                            url: r.get(2)?,
                            key: r.get(3)?,
                            title: r.get(4)?,
                            atom_id: r.get(5)?,
                        },
                    ))
                })?
                .collect()
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// The post with this short key.
    pub fn post_by_key(&self, key: &str) -> Result<Option<PostRef>> {
        self.post_where("key = ?1", key)
    }

    fn post_where(&self, clause: &str, value: &str) -> Result<Option<PostRef>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT id, url, key, title, atom_id FROM posts WHERE {clause}"),
                [value],
                |r| {
                    Ok(PostRef {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        key: r.get(2)?,
                        title: r.get(3)?,
                        atom_id: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Every post with its count of published mentions, newest first.
    pub fn list_posts(&self) -> Result<Vec<Post>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT p.url, p.title, p.key, p.published,
                        (SELECT COUNT(*) FROM mentions m WHERE m.post_id = p.id AND m.status = 'verified')
                 FROM posts p ORDER BY COALESCE(p.published, p.first_seen) DESC, p.id DESC",
            )?;
            stmt.query_map([], |r| {
                Ok(Post { url: r.get(0)?, title: r.get(1)?, key: r.get(2)?, published: r.get(3)?, mentions: r.get(4)? })
            })?
            .collect()
        })
    }

    // ---- queue -------------------------------------------------------------------------------

    /// Makes (source, target post) a candidate and queues it for verification now. A pair seen
    /// before keeps its row, its status and its moderation; only the job is (re)queued. The row
    /// and the job are committed before this returns: what a receiver acknowledges is durable.
    pub fn enqueue(&self, candidate: &Candidate) -> Result<Enqueued> {
        let mut results = self.enqueue_many(std::slice::from_ref(candidate))?;
        results.pop().expect("one result per candidate")
    }

    /// [`Store::enqueue`] for many candidates in one transaction (group commit), each in its own
    /// savepoint so one bad row cannot sink the others. The outer error is a failed commit.
    pub fn enqueue_many(&self, candidates: &[Candidate]) -> Result<Vec<Result<Enqueued>>> {
        self.write(|c| {
            let mut tx = c.transaction()?;
            let mut results = Vec::with_capacity(candidates.len());
            for candidate in candidates {
                let sp = tx.savepoint()?;
                let result = enqueue_one(&sp, candidate);
                if result.is_ok() {
                    sp.commit()?;
                } // else: dropping the savepoint rolls it back
                results.push(result);
            }
            tx.commit()?;
            Ok(results)
        })
    }

    /// Queues every published or held mention for a conditional re-check, spread over
    /// `spread_secs` so a large store does not fetch everything at once. Returns how many.
    pub fn enqueue_reverify(&self, spread_secs: i64) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM mentions WHERE status IN ('verified', 'held') ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_>>()?;
            let n = ids.len().max(1) as i64;
            let start = chrono::Utc::now();
            for (i, id) in ids.iter().enumerate() {
                let at = start + chrono::Duration::milliseconds(spread_secs * 1000 * i as i64 / n);
                tx.execute(
                    "INSERT INTO queue (mention_id, next_try, attempts, conditional) VALUES (?1, ?2, 0, 1)
                     ON CONFLICT (mention_id) DO NOTHING",
                    params![id, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)],
                )?;
            }
            tx.commit()?;
            Ok(ids.len())
        })
    }

    /// Leases up to `limit` due jobs for `lease_secs` to `owner`; an expired lease (a crash) is
    /// due again. Fair between source hosts: a host that already has `per_host` jobs in
    /// `in_flight` (or chosen in this call) is passed over for now, so that one host's slow or
    /// hanging pages cannot take every slot from the others. Jobs are looked for in a window
    /// of the oldest due ones, a few times `limit` long.
    pub fn lease_due(
        &self,
        limit: usize,
        lease_secs: i64,
        owner: &str,
        in_flight: &std::collections::HashMap<String, usize>,
        per_host: usize,
    ) -> Result<Vec<Job>> {
        let window = limit.saturating_mul(8).saturating_add(64);
        self.write(|c| {
            let tx = c.transaction()?;
            let now = now_rfc3339();
            let until = (chrono::Utc::now() + chrono::Duration::seconds(lease_secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let due: Vec<Job> = {
                let mut stmt = tx.prepare(
                    "SELECT q.mention_id, m.source, m.target, COALESCE(q.arrival, m.kind), m.hint, q.attempts,
                            q.conditional, m.verified_at IS NOT NULL
                     FROM queue q JOIN mentions m ON m.id = q.mention_id
                     WHERE q.next_try <= ?1 AND (q.lease_until IS NULL OR q.lease_until <= ?1)
                     ORDER BY q.next_try, q.mention_id LIMIT ?2",
                )?;
                stmt.query_map(params![now, window as i64], job_from_row)?.collect::<Result<_>>()?
            };
            let mut chosen: std::collections::HashMap<String, usize> = Default::default();
            let jobs: Vec<Job> = due
                .into_iter()
                .filter(|job| {
                    let host = job.source_host();
                    let busy = in_flight.get(&host).copied().unwrap_or(0);
                    let taken = chosen.entry(host).or_default();
                    let fits = busy + *taken < per_host.max(1);
                    if fits {
                        *taken += 1;
                    }
                    fits
                })
                .take(limit)
                .collect();
            for job in &jobs {
                tx.execute(
                    "UPDATE queue SET lease_until = ?2, lease_owner = ?3 WHERE mention_id = ?1",
                    params![job.mention_id, until, owner],
                )?;
            }
            tx.commit()?;
            Ok(jobs)
        })
    }

    /// Leases one given job for a synchronous check (pingback, `submit`); `None` if another
    /// worker holds it.
    pub fn lease_one(&self, mention_id: i64, lease_secs: i64, owner: &str) -> Result<Option<Job>> {
        self.write(|c| {
            let now = now_rfc3339();
            let until = (chrono::Utc::now() + chrono::Duration::seconds(lease_secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let leased = c.execute(
                "UPDATE queue SET lease_until = ?2, lease_owner = ?4
                 WHERE mention_id = ?1 AND (lease_until IS NULL OR lease_until <= ?3)",
                params![mention_id, until, now, owner],
            )?;
            if leased == 0 {
                return Ok(None);
            }
            c.query_row(
                "SELECT q.mention_id, m.source, m.target, COALESCE(q.arrival, m.kind), m.hint, q.attempts, q.conditional,
                        m.verified_at IS NOT NULL
                 FROM queue q JOIN mentions m ON m.id = q.mention_id WHERE q.mention_id = ?1",
                [mention_id],
                job_from_row,
            )
            .optional()
        })
    }

    /// Gives back the leases `owner` still holds (a loop that stops): those jobs are due again
    /// at once. Leases of other loops, in this process or another, are left alone.
    pub fn release_leases(&self, owner: &str) -> Result<usize> {
        self.write(|c| {
            c.execute(
                "UPDATE queue SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?1",
                [owner],
            )
        })
    }

    /// Gives back the unexpired leases whose owner `is_gone` says has stopped (a process that
    /// crashed), so its jobs need not wait for the leases to expire. Returns how many.
    pub fn release_orphaned_leases(&self, is_gone: impl Fn(&str) -> bool) -> Result<usize> {
        let owners: Vec<String> = self.read(|c| {
            c.prepare(
                "SELECT DISTINCT lease_owner FROM queue WHERE lease_owner IS NOT NULL AND lease_until > ?1",
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

    /// Jobs in the queue, and how many of them are due now.
    pub fn queue_depth(&self) -> Result<(i64, i64)> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(next_try <= ?1), 0) FROM queue",
                [now_rfc3339()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Whether a mention still has a job waiting.
    pub fn is_queued(&self, mention_id: i64) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM queue WHERE mention_id = ?1",
                [mention_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    // ---- applying outcomes ---------------------------------------------------------------------

    /// A verified source: fills the mention and publishes it (or holds it for moderation), keeping
    /// a moderator's earlier decision. Ends the job and logs the decision, in one transaction.
    pub fn apply_verified(
        &self,
        job: &Job,
        x: &Extracted,
        final_url: Option<&str>,
        hold_new: bool,
        decision: &Decision,
    ) -> Result<Status> {
        self.write(|c| {
            let tx = c.transaction()?;
            let (status, moderation): (String, Option<String>) = tx.query_row(
                "SELECT status, moderation FROM mentions WHERE id = ?1",
                [job.mention_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let next = match (moderation.as_deref(), status.as_str()) {
                (Some("rejected" | "blocked"), _) => Status::Rejected,
                (Some("approved"), _) => Status::Verified,
                (_, "held") => Status::Held,
                (_, "verified") => Status::Verified,
                _ if hold_new => Status::Held,
                _ => Status::Verified,
            };
            let now = now_rfc3339();
            tx.execute(
                // SET reads the row as it was: the stamps move only when what is published does
                // (a nightly reverify of unchanged pages must not make feed readers show old
                // entries as new); `checked_at` always says when it was last looked at.
                "UPDATE mentions SET
                        verified_at = CASE WHEN verified_at IS NULL OR status IS NOT ?2 OR type IS NOT ?3
                            OR title IS NOT ?4 OR author_name IS NOT ?5 OR author_url IS NOT ?6
                            OR author_photo IS NOT ?7 OR published IS NOT ?8 OR excerpt IS NOT ?9
                            OR content_html IS NOT ?10 OR final_url IS NOT ?11 THEN ?13 ELSE verified_at END,
                        updated_at = CASE WHEN verified_at IS NULL OR status IS NOT ?2 OR type IS NOT ?3
                            OR title IS NOT ?4 OR author_name IS NOT ?5 OR author_url IS NOT ?6
                            OR author_photo IS NOT ?7 OR published IS NOT ?8 OR excerpt IS NOT ?9
                            OR content_html IS NOT ?10 OR final_url IS NOT ?11 THEN ?13 ELSE updated_at END,
                        status = ?2, type = ?3, title = ?4, author_name = ?5, author_url = ?6,
                        author_photo = ?7, published = ?8, excerpt = ?9, content_html = ?10, final_url = ?11,
                        reason = ?12, not_found_count = 0, checked_at = ?13
                 WHERE id = ?1",
                params![
                    job.mention_id,
                    next.as_str(),
                    x.mention_type.unwrap_or(MentionType::Mention).as_str(),
                    x.title,
                    x.author.name,
                    x.author.url,
                    x.author.photo,
                    x.published,
                    x.excerpt,
                    x.content_html,
                    final_url,
                    decision.reason,
                    now
                ],
            )?;
            finish(&tx, job.mention_id, decision)?;
            tx.commit()?;
            Ok(next)
        })
    }

    /// The source no longer supports the mention (410, no link, repeated 404): a mention that was
    /// ever verified becomes `deleted`, one that never was becomes `rejected`. A moderator's
    /// rejection stays a rejection.
    pub fn apply_refusal(&self, job: &Job, delete: bool, decision: &Decision) -> Result<Status> {
        self.write(|c| {
            let tx = c.transaction()?;
            let next = refuse(&tx, job, delete, decision)?;
            tx.commit()?;
            Ok(next)
        })
    }

    /// A 404 for a mention that was verified once: counted, and the second in a row deletes;
    /// the first ends the job and keeps the mention as it is. One transaction.
    pub fn apply_not_found(&self, job: &Job, decision: &Decision) -> Result<Status> {
        self.write(|c| {
            let tx = c.transaction()?;
            let (count, status): (i64, String) = tx.query_row(
                "UPDATE mentions SET not_found_count = not_found_count + 1 WHERE id = ?1
                 RETURNING not_found_count, status",
                [job.mention_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let next = if count >= 2 {
                refuse(&tx, job, true, decision)?
            } else {
                finish(&tx, job.mention_id, decision)?;
                Status::parse(&status).unwrap_or(Status::Verified)
            };
            tx.commit()?;
            Ok(next)
        })
    }

    /// A transient failure: the job waits `delay_secs` and is tried again. Nothing is deleted.
    pub fn retry_later(&self, job: &Job, delay_secs: i64, decision: &Decision) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            let at = (chrono::Utc::now() + chrono::Duration::seconds(delay_secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            tx.execute(
                "UPDATE queue SET next_try = ?2, attempts = attempts + 1, lease_until = NULL WHERE mention_id = ?1",
                params![job.mention_id, at],
            )?;
            tx.execute(
                "UPDATE mentions SET reason = ?2 WHERE id = ?1 AND status = 'pending'",
                params![job.mention_id, decision.reason],
            )?;
            insert_decision(&tx, decision)?;
            tx.commit()
        })
    }

    /// Puts a job back untried: due again in `delay_secs`, no attempt counted, nothing logged.
    pub fn defer(&self, job: &Job, delay_secs: i64) -> Result<()> {
        let at = (chrono::Utc::now() + chrono::Duration::seconds(delay_secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.write(|c| {
            c.execute(
                "UPDATE queue SET next_try = ?2, lease_until = NULL, lease_owner = NULL WHERE mention_id = ?1",
                params![job.mention_id, at],
            )?;
            Ok(())
        })
    }

    /// Ends a job without changing what is published (a 304, or a kept mention after giving
    /// up on a transient failure); returns the mention's status. One transaction.
    pub fn finish_unchanged(&self, job: &Job, decision: &Decision) -> Result<Status> {
        self.write(|c| {
            let tx = c.transaction()?;
            let status: String = tx.query_row(
                "UPDATE mentions SET not_found_count = 0, checked_at = ?2 WHERE id = ?1 RETURNING status",
                params![job.mention_id, now_rfc3339()],
                |r| r.get(0),
            )?;
            finish(&tx, job.mention_id, decision)?;
            tx.commit()?;
            Ok(Status::parse(&status).unwrap_or(Status::Pending))
        })
    }

    // ---- reading mentions --------------------------------------------------------------------

    /// The mention whose status page is named `token`.
    pub fn mention_by_status_token(&self, token: &str) -> Result<Option<Mention>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {MENTION_COLUMNS} FROM mentions WHERE status_token = ?1"),
                [token],
                mention_from_row,
            )
            .optional()
        })
    }

    pub fn mention(&self, id: i64) -> Result<Option<Mention>> {
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
    pub fn mentions(&self, filter: &MentionFilter) -> Result<Vec<Mention>> {
        let mut sql = format!("SELECT {MENTION_COLUMNS} FROM mentions WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |v: rusqlite::types::Value, sql: &mut String, clause: &str| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(status) = filter.status {
            arg(
                status.as_str().to_string().into(),
                &mut sql,
                " AND status = ?",
            );
        }
        if !filter.target_keys.is_empty() {
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
            let d = domain
                .trim()
                .to_ascii_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
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
        let dir = if filter.ascending { "ASC" } else { "DESC" };
        if filter.order_by_published {
            sql.push_str(&format!(
                " ORDER BY COALESCE(published, first_seen) {dir}, id {dir}"
            ));
        } else {
            sql.push_str(&format!(" ORDER BY first_seen {dir}, id {dir}"));
        }
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " LIMIT {} OFFSET {}",
                limit.max(0),
                filter.offset.max(0)
            ));
        }
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(args.iter()), mention_from_row)?
                .collect()
        })
    }

    /// The newest change among published mentions (for Last-Modified), and how many there are.
    pub fn published_stamp(&self) -> Result<(Option<String>, i64)> {
        self.read(|c| {
            c.query_row(
                "SELECT MAX(updated_at), COUNT(*) FROM mentions WHERE status = 'verified'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Published mention counts per type for one target.
    pub fn count_by_type(&self, target_key: &str) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT type, COUNT(*) FROM mentions WHERE target_key = ?1 AND status = 'verified' GROUP BY type",
            )?;
            stmt.query_map([target_key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    // ---- moderation --------------------------------------------------------------------------

    /// Approves a held (or rejected) mention; `None` if there is no such id.
    pub fn approve(&self, id: i64) -> Result<Option<Status>> {
        self.moderate(id, "approved", |status, verified| match status {
            "held" | "rejected" if verified => Status::Verified,
            other => Status::parse(other).unwrap_or(Status::Pending),
        })
    }

    /// Rejects a mention by hand; it stays rejected through later pings until approved.
    pub fn reject(&self, id: i64) -> Result<Option<Status>> {
        self.moderate(id, "rejected", |_, _| Status::Rejected)
    }

    fn moderate(
        &self,
        id: i64,
        decision: &str,
        next: impl Fn(&str, bool) -> Status,
    ) -> Result<Option<Status>> {
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
            let new = next(&status, verified);
            let now = now_rfc3339();
            tx.execute(
                "UPDATE mentions SET status = ?2, moderation = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, new.as_str(), decision, now],
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
    pub fn block(&self, domain: &str) -> Result<usize> {
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("INSERT OR IGNORE INTO blocks (domain, created_at) VALUES (?1, ?2)", params![domain, now_rfc3339()])?;
            let ids = ids_on_domain(&tx, &domain, "status IN ('verified', 'held', 'pending')")?;
            for id in &ids {
                tx.execute(
                    "UPDATE mentions SET status = 'rejected', moderation = 'blocked', reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, format!("blocked domain {domain}"), now_rfc3339()],
                )?;
            }
            tx.commit()?;
            Ok(ids.len())
        })
    }

    /// Lifts a block; mentions it hid come back as they were verified. Returns how many.
    pub fn unblock(&self, domain: &str) -> Result<Option<usize>> {
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        self.write(|c| {
            let tx = c.transaction()?;
            if tx.execute("DELETE FROM blocks WHERE domain = ?1", [&domain])? == 0 {
                return Ok(None);
            }
            let ids = ids_on_domain(&tx, &domain, "moderation = 'blocked'")?;
            for id in &ids {
                tx.execute(
                    "UPDATE mentions SET status = CASE WHEN verified_at IS NULL THEN 'pending' ELSE 'verified' END,
                            moderation = NULL, reason = 'unblocked', updated_at = ?2 WHERE id = ?1",
                    params![id, now_rfc3339()],
                )?;
            }
            tx.commit()?;
            Ok(Some(ids.len()))
        })
    }

    /// Blocked domains: the store's list (the config's list is added by the caller).
    pub fn blocked_domains(&self) -> Result<Vec<String>> {
        self.read(|c| {
            c.prepare("SELECT domain FROM blocks ORDER BY domain")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    // ---- decision log ------------------------------------------------------------------------

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

    // ---- fetch state and small values --------------------------------------------------------

    pub fn fetch_state(&self, url: &str) -> Result<FetchState> {
        self.read(|c| {
            c.query_row(
                "SELECT etag, last_modified, fingerprint, error_count, last_error, last_ok, next_try
                 FROM fetch_state WHERE url = ?1",
                [url],
                |r| {
                    Ok(FetchState {
                        etag: r.get(0)?,
                        last_modified: r.get(1)?,
                        fingerprint: r.get(2)?,
                        error_count: r.get(3)?,
                        last_error: r.get(4)?,
                        last_ok: r.get(5)?,
                        next_try: r.get(6)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    pub fn put_fetch_state(&self, url: &str, s: &FetchState) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO fetch_state (url, etag, last_modified, fingerprint, error_count, last_error, last_ok, next_try, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (url) DO UPDATE SET etag = ?2, last_modified = ?3, fingerprint = ?4, error_count = ?5,
                     last_error = ?6, last_ok = ?7, next_try = ?8, updated_at = ?9",
                params![url, s.etag, s.last_modified, s.fingerprint, s.error_count, s.last_error, s.last_ok, s.next_try, now_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// URLs that have failed `min_errors` times or more in a row, with their last error.
    pub fn failing_urls(&self, min_errors: i64) -> Result<Vec<FailingUrl>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT url, error_count, last_error, last_ok FROM fetch_state WHERE error_count >= ?1 ORDER BY url",
            )?;
            stmt.query_map([min_errors], |r| {
                Ok(FailingUrl { url: r.get(0)?, errors: r.get(1)?, last_error: r.get(2)?, last_ok: r.get(3)? })
            })?
            .collect()
        })
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    pub fn kv_put(&self, key: &str, value: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Store-wide counts.
    pub fn counts(&self) -> Result<Counts> {
        let (queue_depth, queue_due) = self.queue_depth()?;
        self.read(|c| {
            let posts = c.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))?;
            let decisions = c.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0))?;
            let by_status = c
                .prepare("SELECT status, COUNT(*) FROM mentions GROUP BY status ORDER BY status")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_>>()?;
            Ok(Counts {
                posts,
                by_status,
                queue_depth,
                queue_due,
                decisions,
            })
        })
    }
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

fn enqueue_one(c: &Connection, cand: &Candidate) -> Result<Enqueued> {
    let now = now_rfc3339();
    let existing: Option<(i64, String, String)> = c
        .query_row(
            "SELECT id, status, status_token FROM mentions WHERE source = ?1 AND target_key = ?2",
            params![cand.source, cand.target_key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (id, new, status, status_token) = match existing {
        Some((id, status, token)) => {
            c.execute(
                "UPDATE mentions SET hint = COALESCE(?2, hint), post_id = COALESCE(?3, post_id),
                        target = CASE WHEN ?3 IS NOT NULL THEN ?4 ELSE target END
                 WHERE id = ?1",
                params![id, cand.hint, cand.post_id, cand.target],
            )?;
            (
                id,
                false,
                Status::parse(&status).unwrap_or(Status::Pending),
                token,
            )
        }
        None => {
            let token: String = c.query_row(
                "INSERT INTO mentions (source, target, target_key, post_id, kind, hint, first_seen, updated_at, status_token)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, lower(hex(randomblob(16)))) RETURNING status_token",
                params![cand.source, cand.target, cand.target_key, cand.post_id, cand.kind.as_str(), cand.hint, now],
                |r| r.get(0),
            )?;
            (c.last_insert_rowid(), true, Status::Pending, token)
        }
    };
    let already_queued = c
        .query_row(
            "SELECT 1 FROM queue WHERE mention_id = ?1",
            [id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    c.execute(
        "INSERT INTO queue (mention_id, next_try, attempts, conditional, arrival) VALUES (?1, ?2, 0, 0, ?3)
         ON CONFLICT (mention_id) DO UPDATE SET next_try = MIN(next_try, excluded.next_try), conditional = 0,
             arrival = excluded.arrival",
        params![id, now, cand.kind.as_str()],
    )?;
    Ok(Enqueued {
        id,
        status_token,
        new,
        already_queued,
        status,
    })
}

type EnqueueReply = tokio::sync::oneshot::Sender<Result<Enqueued>>;

/// Group commit for the receivers' hot path: concurrent enqueues are collected by one thread
/// and committed together, and each caller is answered only after the commit. Under load this
/// turns N transactions into one, and async callers wait on a channel instead of blocking a
/// runtime thread on the writer lock.
pub struct GroupCommit {
    sender: tokio::sync::mpsc::Sender<(Candidate, EnqueueReply)>,
}

impl GroupCommit {
    /// Most candidates committed in one transaction.
    const MAX_BATCH: usize = 256;
    /// Candidates waiting for the committer at most; more wait in their senders (backpressure
    /// instead of an unbounded queue in memory).
    const MAX_WAITING: usize = 4 * Self::MAX_BATCH;

    pub fn start(store: std::sync::Arc<Store>) -> GroupCommit {
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<(Candidate, EnqueueReply)>(Self::MAX_WAITING);
        std::thread::Builder::new()
            .name("backfeed-group-commit".into())
            .spawn(move || {
                while let Some(first) = receiver.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < Self::MAX_BATCH {
                        match receiver.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    let (candidates, replies): (Vec<Candidate>, Vec<EnqueueReply>) =
                        batch.into_iter().unzip();
                    match store.enqueue_many(&candidates) {
                        Ok(results) => {
                            for (reply, result) in replies.into_iter().zip(results) {
                                let _ = reply.send(result);
                            }
                        }
                        Err(e) => {
                            let message = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(commit_failed(&message)));
                            }
                        }
                    }
                }
            })
            .expect("the group-commit thread starts");
        GroupCommit { sender }
    }

    /// Enqueues one candidate; resolves once it is committed.
    pub async fn enqueue(&self, candidate: Candidate) -> Result<Enqueued> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send((candidate, reply))
            .await
            .map_err(|_| commit_failed("the group-commit thread has stopped"))?;
        answer
            .await
            .map_err(|_| commit_failed("the group-commit thread dropped the request"))?
    }
}

fn commit_failed(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
        Some(format!("commit failed: {message}")),
    )
}

fn ids_on_domain(c: &Connection, domain: &str, condition: &str) -> Result<Vec<i64>> {
    let mut stmt = c.prepare(&format!(
        "SELECT id, source FROM mentions WHERE {condition}"
    ))?;
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

/// The source no longer supports the mention: see [`Store::apply_refusal`].
fn refuse(tx: &Connection, job: &Job, delete: bool, decision: &Decision) -> Result<Status> {
    let (status, verified): (String, bool) = tx.query_row(
        "SELECT status, verified_at IS NOT NULL FROM mentions WHERE id = ?1",
        [job.mention_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let next = if status == "rejected" {
        Status::Rejected
    } else if verified && delete {
        Status::Deleted
    } else if verified {
        // Refused for a reason that says nothing about the source's link (e.g. now too
        // large): keep what we had.
        Status::parse(&status).unwrap_or(Status::Verified)
    } else {
        Status::Rejected
    };
    let now = now_rfc3339();
    // What is published changes only when the status does: a kept mention keeps its stamps.
    tx.execute(
        "UPDATE mentions SET status = ?2, reason = ?3, checked_at = ?4,
                updated_at = CASE WHEN status = ?2 THEN updated_at ELSE ?4 END
         WHERE id = ?1",
        params![job.mention_id, next.as_str(), decision.reason, now],
    )?;
    finish(tx, job.mention_id, decision)?;
    Ok(next)
}

fn finish(c: &Connection, mention_id: i64, decision: &Decision) -> Result<()> {
    c.execute("DELETE FROM queue WHERE mention_id = ?1", [mention_id])?;
    insert_decision(c, decision)
}

fn insert_decision(c: &Connection, d: &Decision) -> Result<()> {
    c.execute(
        "INSERT INTO decisions (at, source, target, kind, outcome, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![d.at, d.source, d.target, d.kind, d.outcome, d.reason],
    )?;
    Ok(())
}

/// A short, readable key from a post URL's last path segment: `/2024/05/hello-world/` →
/// `hello-world`. The store makes it unique.
fn post_key_base(url: &str) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let segment = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let segment = segment.rsplit_once('.').map_or(segment, |(stem, _)| stem);
    let mut key = String::new();
    for ch in segment.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            key.push(ch);
        } else if !key.ends_with('-') && !key.is_empty() {
            key.push('-');
        }
    }
    let key = key.trim_end_matches('-');
    let key: String = key.chars().take(60).collect();
    if key.is_empty() { "post".into() } else { key }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_keys_are_slugs_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let a = store
            .upsert_post(
                "https://b.example/2024/Hello_World/",
                "b.example/2024/Hello_World",
                None,
                None,
                None,
            )
            .unwrap();
        let b = store
            .upsert_post(
                "https://b.example/2025/hello-world.html",
                "b.example/2025/hello-world.html",
                None,
                None,
                None,
            )
            .unwrap();
        let again = store
            .upsert_post(
                "https://b.example/2024/Hello_World",
                "b.example/2024/Hello_World",
                Some("T"),
                None,
                None,
            )
            .unwrap();
        assert_eq!(a, "hello-world");
        assert_eq!(b, "hello-world-2");
        assert_eq!(again, a);
        assert_eq!(post_key_base("https://b.example/"), "post");
    }

    #[test]
    fn enqueue_coalesces_a_pair_and_keeps_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let candidate = Candidate {
            source: "https://a.example/x".into(),
            target: "https://b.example/p".into(),
            target_key: "b.example/p".into(),
            post_id: None,
            kind: Kind::Webmention,
            hint: None,
        };
        let first = store.enqueue(&candidate).unwrap();
        let second = store.enqueue(&candidate).unwrap();
        assert!(first.new && !first.already_queued);
        assert_eq!(second.id, first.id);
        assert!(!second.new && second.already_queued);
        assert_eq!(store.queue_depth().unwrap().0, 1);
        let none = std::collections::HashMap::new();
        let leased = store.lease_due(10, 60, "a", &none, 2).unwrap();
        assert_eq!(leased.len(), 1);
        assert!(
            store.lease_due(10, 60, "b", &none, 2).unwrap().is_empty(),
            "a leased job is not handed out twice"
        );
        assert_eq!(
            store.release_leases("b").unwrap(),
            0,
            "a loop gives back only its own leases"
        );
        assert!(store.lease_due(10, 60, "b", &none, 2).unwrap().is_empty());
        assert_eq!(store.release_orphaned_leases(|o| o == "b").unwrap(), 0);
        assert_eq!(store.release_orphaned_leases(|o| o == "a").unwrap(), 1);
        assert_eq!(
            store.lease_due(10, 60, "b", &none, 2).unwrap().len(),
            1,
            "released leases are due again"
        );
    }
}
