//! What crawls and schedules remember between runs, in tables of their own (they once lived
//! in a generic key-value table under keys built with `format!`, which no type checked):
//! each schedule's last run, each social source's standing and per-post cursors, the
//! fingerprints of watched feed items and pages, and how far each referrer log was read.

use super::db::{OptionalExtension, params};
use super::{Store, StoreResult};
use crate::model::now_rfc3339;

/// One schedule's last run, for `backfeed status`.
#[derive(Clone, Debug, Default)]
pub struct ScheduleRun {
    pub last_start: Option<String>,
    pub last_end: Option<String>,
    pub last_summary: Option<String>,
}

/// A social source's standing.
#[derive(Clone, Debug, Default)]
pub struct SocialSourceState {
    /// Skipped until then (a rate limit's reset).
    pub skip_until: Option<String>,
    /// What went wrong on its last run; `None` when it went well.
    pub last_error: Option<String>,
}

impl Store {
    /// Answers when the database does, for reads and for writes: a store that can no longer
    /// write (a full disk, a read-only file) cannot keep what receivers acknowledge.
    pub fn health(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())))?;
        self.write(|c| {
            c.execute(
                "INSERT INTO health (id, checked_at) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET checked_at = ?1",
                [now_rfc3339()],
            )?;
            Ok(())
        })
    }

    pub fn schedule_started(&self, job: &str, at: &str) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO schedule_runs (job, last_start) VALUES (?1, ?2)
                 ON CONFLICT (job) DO UPDATE SET last_start = ?2",
                params![job, at],
            )?;
            Ok(())
        })
    }

    pub fn schedule_finished(&self, job: &str, at: &str, summary: &str) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO schedule_runs (job, last_end, last_summary) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job) DO UPDATE SET last_end = ?2, last_summary = ?3",
                params![job, at, summary],
            )?;
            Ok(())
        })
    }

    pub fn schedule_run(&self, job: &str) -> StoreResult<ScheduleRun> {
        self.read(|c| {
            c.query_row(
                "SELECT last_start, last_end, last_summary FROM schedule_runs WHERE job = ?1",
                [job],
                |r| {
                    Ok(ScheduleRun {
                        last_start: r.get(0)?,
                        last_end: r.get(1)?,
                        last_summary: r.get(2)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    pub fn social_source(&self, source: &str) -> StoreResult<SocialSourceState> {
        self.read(|c| {
            c.query_row(
                "SELECT skip_until, last_error FROM social_sources WHERE source = ?1",
                [source],
                |r| {
                    Ok(SocialSourceState {
                        skip_until: r.get(0)?,
                        last_error: r.get(1)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    /// Skips `source` until `until` (RFC 3339).
    pub fn set_social_skip(&self, source: &str, until: &str) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO social_sources (source, skip_until) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET skip_until = ?2",
                params![source, until],
            )?;
            Ok(())
        })
    }

    /// Records what went wrong on `source`'s run, or (`None`) that it went well.
    pub fn set_social_error(&self, source: &str, error: Option<&str>) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO social_sources (source, last_error) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET last_error = ?2",
                params![source, error],
            )?;
            Ok(())
        })
    }

    /// When `source` was last asked about the post with key `post_key`.
    pub fn social_polled(&self, source: &str, post_key: &str) -> StoreResult<Option<String>> {
        self.social_post_field(source, post_key, "polled_at")
    }

    pub fn set_social_polled(&self, source: &str, post_key: &str, at: &str) -> StoreResult<()> {
        self.set_social_post_field(source, post_key, "polled_at", at)
    }

    /// The newest item `source` has shown for the post (a timestamp or cursor of its own).
    pub fn social_since(&self, source: &str, post_key: &str) -> StoreResult<Option<String>> {
        self.social_post_field(source, post_key, "since")
    }

    pub fn set_social_since(&self, source: &str, post_key: &str, since: &str) -> StoreResult<()> {
        self.set_social_post_field(source, post_key, "since", since)
    }

    /// `column` is one of this file's two names, never input.
    fn social_post_field(
        &self,
        source: &str,
        post_key: &str,
        column: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {column} FROM social_posts WHERE source = ?1 AND post_key = ?2"),
                params![source, post_key],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }

    fn set_social_post_field(
        &self,
        source: &str,
        post_key: &str,
        column: &str,
        value: &str,
    ) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                &format!(
                    "INSERT INTO social_posts (source, post_key, {column}) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source, post_key) DO UPDATE SET {column} = ?3"
                ),
                params![source, post_key, value],
            )?;
            Ok(())
        })
    }

    /// The fingerprint a watched feed's item (or a watched page, with `item` empty) had when
    /// it was last looked at.
    pub fn seen_fingerprint(&self, watched: &str, item: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row(
                "SELECT fingerprint FROM seen_items WHERE watched = ?1 AND item = ?2",
                params![watched, item],
                |r| r.get(0),
            )
            .optional()
        })
    }

    pub fn set_seen_fingerprint(
        &self,
        watched: &str,
        item: &str,
        fingerprint: &str,
    ) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO seen_items (watched, item, fingerprint) VALUES (?1, ?2, ?3)
                 ON CONFLICT (watched, item) DO UPDATE SET fingerprint = ?3",
                params![watched, item, fingerprint],
            )?;
            Ok(())
        })
    }

    /// How far a referrer log was read: the file's inode and the byte offset.
    pub fn log_offset(&self, path: &str) -> StoreResult<Option<(u64, u64)>> {
        self.read(|c| {
            c.query_row(
                "SELECT inode, \"offset\" FROM log_offsets WHERE path = ?1",
                [path],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }

    pub fn set_log_offset(&self, path: &str, inode: u64, offset: u64) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO log_offsets (path, inode, \"offset\") VALUES (?1, ?2, ?3)
                 ON CONFLICT (path) DO UPDATE SET inode = ?2, \"offset\" = ?3",
                params![path, inode as i64, offset as i64],
            )?;
            Ok(())
        })
    }

    /// The blogger's accounts `site`'s home page names (`rel="me"`), as last read.
    pub fn site_profiles(&self, site: &str) -> StoreResult<Vec<String>> {
        self.kept_or_read(&self.kept.profiles, site.to_string(), || {
            self.read(|c| {
                c.prepare_cached("SELECT url FROM own_profiles WHERE site = ?1 ORDER BY url")?
                    .query_map([site], |r| r.get(0))?
                    .collect()
            })
        })
    }

    /// Replaces the accounts `site`'s home page names.
    pub fn set_site_profiles(&self, site: &str, urls: &[String]) -> StoreResult<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM own_profiles WHERE site = ?1", [site])?;
            for url in urls {
                tx.execute(
                    "INSERT INTO own_profiles (site, url) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    [site, url.as_str()],
                )?;
            }
            tx.commit()?;
            self.kept.heard.changed();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{MIGRATIONS, Store};

    /// A store written by the first release, with state under string keys, opens with that
    /// state moved to its own tables.
    #[test]
    fn key_value_state_moves_to_typed_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            for (k, v) in [
                ("schedule:crawl:last_start", "2026-01-01T00:00:00Z"),
                ("schedule:crawl:last_summary", "found 1"),
                ("social:bluesky:skip_until", "2026-01-02T00:00:00Z"),
                ("social:reddit:error", "reddit answered 500"),
                ("social:hackernews:error", ""),
                ("social:hackernews:polled:hello", "2026-01-01T01:00:00Z"),
                ("social:hackernews:since:hello", "1700000000"),
                ("refback:/var/log/nginx/access.log", "1234:5678"),
                ("page:https://friend.example/links", "abc"),
            ] {
                c.execute("INSERT INTO kv (key, value) VALUES (?1, ?2)", [k, v])
                    .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let crawl = store.schedule_run("crawl").unwrap();
        assert_eq!(crawl.last_start.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(crawl.last_summary.as_deref(), Some("found 1"));
        assert_eq!(crawl.last_end, None);
        assert_eq!(
            store
                .social_source("bluesky")
                .unwrap()
                .skip_until
                .as_deref(),
            Some("2026-01-02T00:00:00Z")
        );
        assert_eq!(
            store.social_source("reddit").unwrap().last_error.as_deref(),
            Some("reddit answered 500")
        );
        assert_eq!(store.social_source("hackernews").unwrap().last_error, None);
        assert_eq!(
            store
                .social_polled("hackernews", "hello")
                .unwrap()
                .as_deref(),
            Some("2026-01-01T01:00:00Z")
        );
        assert_eq!(
            store
                .social_since("hackernews", "hello")
                .unwrap()
                .as_deref(),
            Some("1700000000")
        );
        assert_eq!(
            store.log_offset("/var/log/nginx/access.log").unwrap(),
            Some((1234, 5678))
        );
        assert_eq!(
            store
                .seen_fingerprint("https://friend.example/links", "")
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        store.health().unwrap();
    }
}
