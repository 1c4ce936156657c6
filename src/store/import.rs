//! Moving in and out: mentions from another system's history merged in, and backfeed's own
//! lossless backup (every row of posts, mentions, blocks and decisions) written and restored.
//!
//! A file is checked whole before anything is written: one that turns out malformed leaves the
//! store as it was, and `--dry-run` rolls back what it counted. Merging is by (source, target
//! post): a pair already stored keeps its row, its status and its moderation; only fields it
//! lacks are filled.
//!
//! How a real import writes depends on who else uses the store. Beside a running daemon it
//! commits a chunk at a time, letting go of the write lock between chunks. Alone with a SQLite
//! store (no `serve` holds it, and this import takes its lock meanwhile) and bringing
//! [`BULK_MIN_RECORDS`] records or more, more than the store has ever held mentions, it writes
//! in bulk: one transaction, with the mentions' secondary indexes dropped first and built again
//! at the end, from their own definitions in the schema. Why: each of those indexes takes its
//! keys in an order of its own (a post, a random status token…), so a record written row by row
//! dirties a page of each, and SQLite writes every dirty page whole at each commit and again at
//! each checkpoint — gigabytes for a million records. Building an index sorts its keys once.
//! (At 1,000,000 records, on the development machine: 314–372 s row by row, 104–128 s in bulk.)

use super::db::Value as SqlValue;
use super::db::{Conn, OptionalExtension, params};
use super::decisions::{Decision, insert_decision};
use super::posts::upsert_post_in;
use super::{Result, Store, StoreResult};
use crate::model::{Extracted, Kind, MentionType, Status, match_key};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One mention from another system, in backfeed's terms.
#[derive(Clone, Debug, Default)]
pub struct ImportedMention {
    pub source: String,
    /// The post's URL (after `--rewrite`).
    pub target: String,
    pub post_title: Option<String>,
    /// When the post was published (RFC 3339), when the file says.
    pub post_published: Option<String>,
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    /// What the record says of the mention: type, title, author, dates, text. The importer
    /// cleans these as the verifier cleans a page's facts before they reach the store.
    pub facts: Extracted,
    /// When it was first seen there (RFC 3339).
    pub first_seen: Option<String>,
}

/// What an import did: records read, mentions imported new, merged into existing ones, and
/// skipped (by reason).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportCounts {
    pub read: usize,
    pub imported: usize,
    /// Pairs already stored that gained a field they lacked.
    pub merged: usize,
    /// Pairs already stored as the file has them: nothing changed.
    pub unchanged: usize,
    /// Mentions imported new, by the status they came in with.
    pub by_status: BTreeMap<String, usize>,
    pub skipped: BTreeMap<String, usize>,
}

impl ImportCounts {
    pub fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }
}

/// How an import writes: not at all (a first reading that checks the whole file), in one
/// transaction rolled back at the end (`--dry-run`: the counts are exact), or for real (in
/// chunks, or in bulk: see the module's comment), the check having counted `records`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    Check,
    DryRun,
    Write { records: usize },
}

/// Records written in one transaction of a real import: the store's write lock is let go
/// between chunks, so a daemon beside a long import keeps accepting pings.
const IMPORT_CHUNK: usize = 1_000;

/// SQLite's page cache while an import writes, in KiB (the default is 2,000).
const IMPORT_CACHE_KIB: usize = 65_536;

/// SQLite's page cache while a bulk import builds the indexes again, in KiB.
const REBUILD_CACHE_KIB: usize = 16_384;

/// The fewest records an import writes in bulk (see the module's comment): below it, rebuilding
/// the indexes is not worth taking the store alone.
const BULK_MIN_RECORDS: usize = 10_000;

/// Writes imported records (see [`ImportMode`]).
pub struct Importer<'a> {
    tx: &'a Conn,
    /// The sites' routes: what each post imported is filed under.
    routes: std::sync::Arc<crate::sites::Routes>,
    /// The format, recorded on every mention imported.
    format: &'a str,
    verify: bool,
    mode: ImportMode,
    /// Writing in one transaction (see the module's comment), not in chunks.
    bulk: bool,
    /// Records written since the current chunk's transaction began.
    in_chunk: usize,
    pub counts: ImportCounts,
}

impl Store {
    /// Runs one import: `fill` feeds the [`Importer`], and an error from it (a malformed file)
    /// stops it. With [`ImportMode::Check`] nothing is written; with `DryRun` everything is
    /// rolled back; with `Write` records are committed a chunk at a time (a file already
    /// checked whole, so that only a crash or a full disk can stop it partway — and importing
    /// the same file again completes it, merging is by pair), or all at once in bulk.
    pub fn import<E: From<super::StoreError>>(
        &self,
        format: &str,
        verify: bool,
        mode: ImportMode,
        fill: impl FnOnce(&mut Importer<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ImportCounts, E> {
        self.write(|c| -> Result<_> {
            // The first reading writes nothing: it takes no write lock either.
            let writes = mode != ImportMode::Check;
            let sqlite = c.engine() == super::db::Engine::Sqlite;
            if writes && sqlite {
                // Every record updates several indexes of a store that may be far larger than
                // SQLite's default 2 MB page cache; with 64 MB the pages they touch stay in
                // memory instead of being read back from the file system for each record.
                c.execute_batch(&format!("PRAGMA cache_size = -{}", IMPORT_CACHE_KIB))?;
            }
            let routes = self.site_routes();
            let alone = self.alone_for_bulk(c, mode)?;
            if alone.is_some() {
                // Building the indexes again sorts their keys in temporary files: the store
                // keeps those in memory, which for a million mentions doubled the import's.
                // (A transaction cannot change this: it is set around the import's.)
                c.execute_batch("PRAGMA temp_store = FILE")?;
            }
            let imported = import_in(c, routes, format, verify, mode, alone.is_some(), fill);
            if writes && sqlite {
                c.execute_batch("PRAGMA cache_size = -2000")?;
            }
            if alone.is_some() {
                c.execute_batch("PRAGMA temp_store = MEMORY")?;
                // The whole import passed through the write-ahead log: its file is as large as
                // what was written. Copied into the store, it is emptied.
                c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            }
            if matches!(mode, ImportMode::Write { .. }) && !sqlite {
                // PostgreSQL plans by its statistics, which autovacuum refreshes only a while
                // later: straight after a million rows came in, a table it still thinks small
                // got a plan that reads all of it (page 500 of the API: 1.4 s instead of 5 ms).
                // VACUUM too: it marks the new rows visible to all, so that index-only scans
                // need not visit the table for each entry they pass.
                c.execute_batch("VACUUM (ANALYZE) posts, mentions, mention_urls, decisions, jobs")?;
            }
            imported
        })?
    }

    /// The store's lock, taken for an import that writes in bulk (see the module's comment): a
    /// real import of at least [`BULK_MIN_RECORDS`] records, into a SQLite store that has held
    /// fewer mentions than the file brings (the same file again merges in chunks: nothing to
    /// rebuild) and that no `serve` uses. `None`: write in chunks.
    fn alone_for_bulk(&self, c: &Conn, mode: ImportMode) -> Result<Option<super::ServeLock>> {
        let (super::Location::Sqlite(path), ImportMode::Write { records }) = (&self.location, mode)
        else {
            return Ok(None);
        };
        if records < BULK_MIN_RECORDS {
            return Ok(None);
        }
        let held: i64 = c.query_row("SELECT COALESCE(MAX(id), 0) FROM mentions", [], |r| {
            r.get(0)
        })?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= records {
            return Ok(None);
        }
        Ok(super::ServeLock::acquire(path, "import").ok())
    }

    /// Writes every post, mention, unpublished record, block and decision as one JSON object a
    /// line (`"table"`
    /// names the table; the other keys are its columns).
    pub fn export_jsonl(&self, out: &mut dyn std::io::Write) -> StoreResult<usize> {
        self.read(|c| {
            let mut lines = 0;
            for table in BACKUP_TABLES {
                // The table's column names, read from its first row (not once a row).
                let mut names: Option<Vec<String>> = None;
                c.for_each_row(&format!("SELECT * FROM {table} ORDER BY 1"), [], |row| {
                    let names = names.get_or_insert_with(|| row.column_names());
                    let mut obj = Map::new();
                    for (i, name) in names.iter().enumerate() {
                        obj.insert(name.clone(), sql_to_json(row.get::<_, SqlValue>(i)?));
                    }
                    obj.insert("table".into(), Value::from(table));
                    let line = serde_json::to_string(&obj).map_err(super::StoreError::other)?;
                    writeln!(out, "{line}").map_err(super::StoreError::other)?;
                    lines += 1;
                    Ok(())
                })?;
            }
            Ok(lines)
        })
    }
}

/// Commits a chunk of an import. A restore may set ids: PostgreSQL's id sequences move past
/// them first, so that the next mention written gets an id of its own (SQLite's rowids do so
/// by themselves).
fn commit_chunk(c: &Conn) -> Result<()> {
    if c.engine() == super::db::Engine::Postgres {
        for table in ["posts", "mentions", "decisions"] {
            c.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   GREATEST((SELECT MAX(id) FROM {table}), 1))"
                ),
                [],
                |_| Ok(()),
            )?;
        }
    }
    c.execute_batch("COMMIT")
}

/// The tables a backup holds, in the order a restore needs them (posts before mentions); each
/// line names its table in a `"table"` key. `unpublished` is what `/api/deleted.json` reads:
/// without it a moved store would forget what a site build must still take down.
const BACKUP_TABLES: [&str; 5] = ["posts", "mentions", "unpublished", "blocks", "decisions"];

fn sql_to_json(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) => Value::from(i),
        SqlValue::Real(f) => Value::from(f),
        SqlValue::Text(t) => Value::from(t),
    }
}

fn json_to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Int(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Int)
            .or_else(|| n.as_f64().map(SqlValue::Real))
            .unwrap_or(SqlValue::Null),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

impl Importer<'_> {
    /// Whether this is the first reading, which only checks the file.
    pub fn checking(&self) -> bool {
        self.mode == ImportMode::Check
    }

    /// Ends the chunk's transaction and begins the next one, every [`IMPORT_CHUNK`] records of
    /// a real import.
    fn next_record(&mut self) -> Result<()> {
        if !matches!(self.mode, ImportMode::Write { .. }) || self.bulk {
            return Ok(());
        }
        self.in_chunk += 1;
        if self.in_chunk >= IMPORT_CHUNK {
            commit_chunk(self.tx)?;
            self.tx.begin()?;
            self.in_chunk = 0;
        }
        Ok(())
    }

    /// Imports one mention from another system, or merges it into the stored pair.
    pub fn mention(&mut self, m: &ImportedMention) -> StoreResult<()> {
        if self.mode == ImportMode::Check {
            self.counts.read += 1;
            return Ok(());
        }
        self.next_record()?;
        self.counts.read += 1;
        let (Some(target_key), true) = (match_key(&m.target), match_key(&m.source).is_some())
        else {
            self.counts.skip("source or target is not an http(s) URL");
            return Ok(());
        };
        let (post_id, _) = upsert_post_in(
            self.tx,
            &m.target,
            &target_key,
            m.post_title.as_deref(),
            m.post_published.as_deref(),
            None,
            self.routes.site_of(&m.target),
        )?;
        let existing: Option<i64> = self
            .tx
            .query_row(
                "SELECT id FROM mentions WHERE source = ?1 AND target_key = ?2",
                params![m.source, target_key],
                |r| r.get(0),
            )
            .optional()?;
        let status = m.status.unwrap_or(Status::Verified);
        let first_seen = m
            .first_seen
            .clone()
            .unwrap_or_else(crate::model::now_rfc3339);
        // What was published there counts as verified then; the stamps say when.
        let verified_at = matches!(status, Status::Verified | Status::Held | Status::Deleted)
            .then(|| first_seen.clone());
        let values = params![
            m.source,
            m.target,
            target_key,
            post_id,
            m.kind.unwrap_or(Kind::Webmention).as_str(),
            m.facts
                .mention_type
                .unwrap_or(MentionType::Mention)
                .as_str(),
            status.as_str(),
            m.facts.title,
            m.facts.author.name,
            m.facts.author.url,
            m.facts.author.photo,
            m.facts.published,
            m.facts.excerpt,
            m.facts.content_html,
            first_seen,
            verified_at,
            self.format,
            self.verify,
        ];
        if let Some(id) = existing {
            // Merged: the stored pair keeps its status and moderation; it gains what it lacked
            // (and says so only when it did: the same file twice changes nothing).
            let changed = self.tx.execute(
                "UPDATE mentions SET title = COALESCE(title, ?1), author_name = COALESCE(author_name, ?2),
                        author_url = COALESCE(author_url, ?3), author_photo = COALESCE(author_photo, ?4),
                        published = COALESCE(published, ?5), excerpt = COALESCE(excerpt, ?6),
                        content_html = COALESCE(content_html, ?7),
                        first_seen = CASE WHEN ?8 < first_seen THEN ?8 ELSE first_seen END
                 WHERE id = ?9
                   AND ((title IS NULL AND CAST(?1 AS TEXT) IS NOT NULL) OR (author_name IS NULL AND CAST(?2 AS TEXT) IS NOT NULL)
                     OR (author_url IS NULL AND CAST(?3 AS TEXT) IS NOT NULL) OR (author_photo IS NULL AND CAST(?4 AS TEXT) IS NOT NULL)
                     OR (published IS NULL AND CAST(?5 AS TEXT) IS NOT NULL) OR (excerpt IS NULL AND CAST(?6 AS TEXT) IS NOT NULL)
                     OR (content_html IS NULL AND CAST(?7 AS TEXT) IS NOT NULL) OR first_seen > ?8)",
                // The texts it may fill in (?8 to ?15 of the insert's) and the id.
                values[7..15]
                    .iter()
                    .copied()
                    .chain([&id as &dyn super::db::Param])
                    .collect::<Vec<_>>()
                    .as_slice(),
            )?;
            if changed > 0 {
                self.counts.merged += 1;
            } else {
                self.counts.unchanged += 1;
            }
        } else {
            self.tx.execute(
                "INSERT INTO mentions (source, target, target_key, post_id, kind, type, status, title,
                        author_name, author_url, author_photo, published, excerpt, content_html,
                        first_seen, verified_at, updated_at, checked_at, reason, imported, imported_verify,
                        status_token, site)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?15, ?15,
                         'imported', ?17, ?18, ?19, COALESCE((SELECT site FROM posts WHERE id = ?4), ''))",
                values
                    .iter()
                    .copied()
                    .chain([&super::new_status_token() as &dyn super::db::Param])
                    .collect::<Vec<_>>()
                    .as_slice(),
            )?;
            self.counts.imported += 1;
            *self
                .counts
                .by_status
                .entry(status.as_str().to_string())
                .or_default() += 1;
        }
        Ok(())
    }

    /// Restores one line of backfeed's own backup. `Ok(false)` when its type is unknown.
    pub fn backup_row(&mut self, row: &Map<String, Value>) -> StoreResult<bool> {
        if self.mode == ImportMode::Check {
            self.counts.read += 1;
            let table = row.get("table").and_then(Value::as_str);
            return Ok(matches!(
                table,
                Some("posts" | "mentions" | "unpublished" | "blocks" | "decisions")
            ));
        }
        self.next_record()?;
        self.counts.read += 1;
        let text = |k: &str| row.get(k).and_then(Value::as_str);
        match row.get("table").and_then(Value::as_str) {
            Some("posts") => {
                let (Some(url), Some(key)) = (text("url"), text("match_key")) else {
                    self.counts.skip("post without url");
                    return Ok(true);
                };
                // A post keeps its key (it names files and trackback URLs).
                let known: Option<i64> = self
                    .tx
                    .query_row("SELECT id FROM posts WHERE match_key = ?1", [key], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if known.is_none() {
                    let skip: &[&str] = if self.id_free("posts", row)? {
                        &[]
                    } else {
                        &["id"]
                    };
                    self.insert_row("posts", row, skip)?;
                } else {
                    upsert_post_in(
                        self.tx,
                        url,
                        key,
                        text("title"),
                        text("published"),
                        text("atom_id"),
                        self.routes.site_of(url),
                    )?;
                }
                Ok(true)
            }
            Some("mentions") => {
                let (Some(source), Some(target_key)) = (text("source"), text("target_key")) else {
                    self.counts.skip("mention without source or target");
                    return Ok(true);
                };
                let exists = self
                    .tx
                    .query_row(
                        "SELECT 1 FROM mentions WHERE source = ?1 AND target_key = ?2",
                        params![source, target_key],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if exists {
                    self.counts.unchanged += 1; // a restore never overwrites a stored pair
                    return Ok(true);
                }
                let post_id: Option<i64> = self
                    .tx
                    .query_row(
                        "SELECT id FROM posts WHERE match_key = ?1",
                        [target_key],
                        |r| r.get(0),
                    )
                    .optional()?;
                let mut row = row.clone();
                row.insert("post_id".into(), post_id.map_or(Value::Null, Value::from));
                let skip: &[&str] = if self.id_free("mentions", &row)? {
                    &[]
                } else {
                    &["id"]
                };
                let id = self.insert_row("mentions", &row, skip)?;
                // A candidate that was waiting for its check waits again: it gets its job.
                if text("status") == Some("pending") {
                    self.tx.execute(
                        "INSERT INTO jobs (kind, subject, next_try, site)
                         VALUES ('verify', ?1, ?2, (SELECT site FROM mentions WHERE id = ?1))
                         ON CONFLICT (kind, subject) DO NOTHING",
                        params![id, crate::model::now_rfc3339()],
                    )?;
                }
                self.counts.imported += 1;
                Ok(true)
            }
            Some("unpublished") => {
                let id = row.get("mention_id").and_then(Value::as_i64);
                let (Some(id), Some(source), Some(target), Some(at)) =
                    (id, text("source"), text("target"), text("deleted_at"))
                else {
                    self.counts.skip("unpublished record without its fields");
                    return Ok(true);
                };
                // Kept as it was; a record already there for that id stands.
                self.tx.execute(
                    "INSERT INTO unpublished (mention_id, source, target, deleted_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (mention_id) DO NOTHING",
                    params![id, source, target, at],
                )?;
                Ok(true)
            }
            Some("blocks") => {
                self.tx.execute(
                    "INSERT INTO blocks (domain, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![text("domain"), text("created_at")],
                )?;
                Ok(true)
            }
            Some("decisions") => {
                let d = Decision {
                    at: text("at").unwrap_or_default().into(),
                    source: text("source").unwrap_or_default().into(),
                    target: text("target").unwrap_or_default().into(),
                    kind: text("kind").unwrap_or_default().into(),
                    outcome: text("outcome").unwrap_or_default().into(),
                    reason: text("reason").unwrap_or_default().into(),
                };
                let seen = self
                    .tx
                    .query_row(
                        "SELECT 1 FROM decisions WHERE at = ?1 AND source = ?2 AND target = ?3 AND kind = ?4
                         AND outcome = ?5 AND reason = ?6",
                        params![d.at, d.source, d.target, d.kind, d.outcome, d.reason],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !seen {
                    // Its own id when that is free (a restore into an empty store keeps ids).
                    if self.id_free("decisions", row)? {
                        self.insert_row("decisions", row, &[])?;
                    } else {
                        insert_decision(self.tx, &d)?;
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the row's own id is free in `table` (a restore into an empty store keeps ids).
    fn id_free(&self, table: &str, row: &Map<String, Value>) -> Result<bool> {
        let Some(id) = row.get("id").and_then(Value::as_i64) else {
            return Ok(false);
        };
        Ok(self
            .tx
            .query_row(
                &format!("SELECT 1 FROM {table} WHERE id = ?1"),
                [id],
                |_| Ok(()),
            )
            .optional()?
            .is_none())
    }

    /// Inserts a backup row into `table`, with the columns the table has (a backup from an
    /// older or newer version may have fewer or more), leaving out `skip`; the new row's id
    /// when the table has ids.
    fn insert_row(
        &self,
        table: &str,
        row: &Map<String, Value>,
        skip: &[&str],
    ) -> Result<Option<i64>> {
        let all = self.tx.column_names(table)?;
        let columns: Vec<&String> = all
            .iter()
            .filter(|c| row.contains_key(*c) && *c != "table" && !skip.contains(&c.as_str()))
            .collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let values: Vec<SqlValue> = columns.iter().map(|c| json_to_sql(&row[*c])).collect();
        let has_id = all.iter().any(|c| c == "id");
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({}){}",
            columns
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            marks.join(", "),
            if has_id { " RETURNING id" } else { "" }
        );
        if has_id {
            Ok(Some(self.tx.query_row(&sql, values, |r| r.get(0))?))
        } else {
            self.tx.execute(&sql, values)?;
            Ok(None)
        }
    }
}

/// [`Store::import`] on its connection.
fn import_in<E: From<super::StoreError>>(
    c: &Conn,
    routes: std::sync::Arc<crate::sites::Routes>,
    format: &str,
    verify: bool,
    mode: ImportMode,
    bulk: bool,
    fill: impl FnOnce(&mut Importer<'_>) -> std::result::Result<(), E>,
) -> Result<std::result::Result<ImportCounts, E>> {
    let writes = mode != ImportMode::Check;
    if writes {
        c.begin()?;
    }
    let rebuild = if bulk {
        drop_secondary_indexes(c, "mentions")?
    } else {
        Vec::new()
    };
    let mut importer = Importer {
        tx: c,
        routes,
        format,
        verify,
        mode,
        bulk,
        in_chunk: 0,
        counts: ImportCounts::default(),
    };
    let filled = fill(&mut importer);
    let counts = std::mem::take(&mut importer.counts);
    Ok(match filled {
        Ok(()) if matches!(mode, ImportMode::Write { .. }) => {
            if !rebuild.is_empty() {
                // SQLite sorts an index's keys in memory up to the page cache's size, then in
                // temporary files (on disk in a bulk import: see `Store::import`).
                c.execute_batch(&format!("PRAGMA cache_size = -{REBUILD_CACHE_KIB}"))?;
            }
            for index in rebuild {
                c.execute_batch(&index)?;
            }
            commit_chunk(c).map(|_| Ok(counts))?
        }
        Ok(()) => {
            if writes {
                c.execute_batch("ROLLBACK")?;
            }
            Ok(counts)
        }
        Err(e) => {
            if writes {
                let _ = c.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    })
}

/// Drops `table`'s indexes other than those its constraints make (a SQLite store, in the
/// caller's transaction); returns the statements that create them again, as the schema has them.
fn drop_secondary_indexes(c: &Conn, table: &str) -> Result<Vec<String>> {
    let indexes: Vec<(String, String)> = c
        .prepare(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
        )?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    let mut rebuild = Vec::new();
    for (name, sql) in indexes {
        c.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        rebuild.push(sql);
    }
    Ok(rebuild)
}
