//! Tables read at every ping and seldom written — the domain blocks, each site's profiles, the
//! posts by address — kept in memory on PostgreSQL, for as long as no process is heard changing
//! them.
//!
//! Why: every receiver checks the blocks and looks its target up, and every verification reads
//! its site's profiles; on PostgreSQL each read is a statement, and a statement a round trip —
//! four of the nine a webmention cost end to end. Why not for a while (a TTL): a block made by
//! `backfeed block` in another process must refuse the next ping, not one a few seconds later.
//!
//! How: a trigger announces every change to those tables at commit (`NOTIFY backfeed_changed`,
//! see the migrations), and each store that keeps them listens on a connection of its own
//! (a thread, [`listen`]). A change heard moves [`Heard`]'s generation on; what was kept under
//! an older one is read again. While the store does not listen (before its first LISTEN is
//! answered, and from the moment that connection ends until another has listened) nothing is
//! kept: every read goes to the database, as on SQLite, where a read costs no round trip and
//! nothing is kept.

use super::db::PgConn;
use super::{Location, Store, StoreResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Answers one map keeps at most (a post's lookup, a site's profiles); more empty it.
const KEPT_AT_MOST: usize = 10_000;

/// The channel the triggers announce on.
const CHANNEL: &str = "backfeed_changed";

/// What the listening thread heard: whether it listens, and how many changes (and losses of
/// its connection) so far.
#[derive(Default)]
pub(super) struct Heard {
    generation: AtomicU64,
    listening: AtomicBool,
    started: AtomicBool,
}

impl Heard {
    /// The generation a read made now belongs to; `None` while nothing may be kept.
    fn now(&self) -> Option<u64> {
        self.listening
            .load(Ordering::SeqCst)
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    /// A change: what was kept is read again.
    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn set_listening(&self, listening: bool) {
        if listening {
            self.changed();
            self.listening.store(true, Ordering::SeqCst);
        } else {
            self.listening.store(false, Ordering::SeqCst);
            self.changed();
        }
    }
}

/// What a store keeps of the tables [`Heard`] covers.
#[derive(Default)]
pub(super) struct Kept {
    pub heard: Arc<Heard>,
    pub blocks: Mutex<HashMap<(), (u64, Vec<String>)>>,
    pub profiles: Mutex<HashMap<String, (u64, Vec<String>)>>,
    /// Posts by match key (`None`: no such post).
    pub posts: Mutex<HashMap<String, (u64, Option<super::PostRef>)>>,
}

impl Store {
    /// `read`'s answer for `key`, as kept in `kept` while nothing was heard to change it (see
    /// the module); read anew otherwise, and on SQLite always.
    pub(super) fn kept_or_read<K: Eq + Hash, T: Clone>(
        &self,
        kept: &Mutex<HashMap<K, (u64, T)>>,
        key: K,
        read: impl FnOnce() -> StoreResult<T>,
    ) -> StoreResult<T> {
        let Location::Postgres { url, .. } = &self.location else {
            return read();
        };
        let heard = &self.kept.heard;
        if !heard.started.swap(true, Ordering::SeqCst) {
            let (url, heard) = (url.clone(), Arc::downgrade(heard));
            let spawned = std::thread::Builder::new()
                .name("backfeed-listen".into())
                .spawn(move || listen(&url, &heard));
            if let Err(e) = spawned {
                // Nothing is kept then: every read goes to the database.
                tracing::error!(error = %e, "the thread listening for changes did not start");
            }
        }
        let Some(generation) = heard.now() else {
            return read();
        };
        if let Some((at, value)) = lock(kept).get(&key)
            && *at == generation
        {
            return Ok(value.clone());
        }
        let value = read()?;
        let mut kept = lock(kept);
        if kept.len() >= KEPT_AT_MOST {
            kept.clear();
        }
        kept.insert(key, (generation, value.clone()));
        Ok(value)
    }

    /// Whether this store listens for changes now (tests wait for it).
    #[cfg(test)]
    pub(super) fn listens(&self) -> bool {
        self.kept.heard.now().is_some()
    }
}

/// Listens for changes on a connection of its own until the store is dropped; a connection
/// that ends (the server restarted) is opened again a second later. An outage is told once,
/// and its end once.
fn listen(url: &str, heard: &Weak<Heard>) {
    let outage = std::cell::Cell::new(false);
    while heard.strong_count() > 0 {
        let hearing = {
            let heard = heard.clone();
            Box::new(move |_: &str| {
                if let Some(heard) = heard.upgrade() {
                    heard.changed();
                }
            })
        };
        let listened =
            PgConn::connect_hearing(url, std::time::Duration::from_secs(10), Some(hearing))
                .and_then(|conn| {
                    conn.hear(
                        CHANNEL,
                        || {
                            if outage.replace(false) {
                                tracing::info!(
                                    "listening again for changes to blocks, profiles and posts"
                                );
                            }
                            with(heard, |h| h.set_listening(true))
                        },
                        || heard.strong_count() == 0,
                    )
                });
        with(heard, |h| h.set_listening(false));
        match listened {
            Err(e) if outage.replace(true) => {
                tracing::debug!(error = %e, "still not listening for changes");
            }
            Err(e) => tracing::warn!(
                error = %e,
                "not listening for changes to blocks, profiles and posts; reading them every \
                 time, and trying again every second (told once until it listens again)"
            ),
            Ok(()) => {}
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn lock<T>(kept: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    kept.lock().unwrap_or_else(|p| p.into_inner())
}

fn with(heard: &Weak<Heard>, f: impl FnOnce(&Heard)) {
    if let Some(heard) = heard.upgrade() {
        f(&heard);
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::testing::{Sql, TestDatabase};

    fn soon(what: &str, done: impl Fn() -> bool) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < until, "{what}: not within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn blocks_and_profiles_are_kept_until_a_change_is_heard() {
        let Some(db) = TestDatabase::create("kept") else {
            return;
        };
        let here = Store::open_at(&db.location()).unwrap();
        let there = Store::open_at(&db.location()).unwrap();
        let sql = Sql::open(&db.location());
        let blocks = || here.blocked_domains().unwrap();
        // A row no trigger announces: unseen while the list is kept.
        let quietly_block = |domain: &str| {
            sql.execute_batch(&format!(
                "ALTER TABLE blocks DISABLE TRIGGER blocks_changed;
                 INSERT INTO blocks (domain, created_at) VALUES ('{domain}', '2024-01-01T00:00:00Z');
                 ALTER TABLE blocks ENABLE TRIGGER blocks_changed"
            ))
        };
        assert!(blocks().is_empty());
        soon("listening", || here.listens());
        assert!(blocks().is_empty());
        quietly_block("quiet.example");
        assert!(blocks().is_empty(), "the list is kept");
        // Another process's block is heard, and the list read again.
        there.block("spam.example").unwrap();
        soon("the block heard", || blocks().len() == 2);
        // This store's own change is read at once.
        here.set_site_profiles("", &["https://social.example/@me".into()])
            .unwrap();
        assert_eq!(
            here.site_profiles("").unwrap(),
            ["https://social.example/@me"]
        );
        // The listening connection ends: nothing is kept until another listens.
        let ended = sql.query_i64(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        );
        assert_eq!(ended, 1, "one store listens");
        soon("the end noticed", || !here.listens());
        quietly_block("quieter.example");
        assert_eq!(blocks().len(), 3, "read again, not kept");
        soon("listening again", || here.listens());
        assert_eq!(blocks().len(), 3);
        // A post looked up and not found is kept as not found, until another process adds it.
        let post = |key: &str| here.post_by_match_key(key).unwrap();
        assert!(post("blog.example/new").is_none());
        assert!(post("blog.example/new").is_none());
        there
            .upsert_post(
                "https://blog.example/new",
                "blog.example/new",
                Some("New"),
                None,
                None,
            )
            .unwrap();
        soon("the post heard", || post("blog.example/new").is_some());
        // Its title changed by another process is heard too.
        there
            .upsert_post(
                "https://blog.example/new",
                "blog.example/new",
                Some("Newer"),
                None,
                None,
            )
            .unwrap();
        soon("the title heard", || {
            post("blog.example/new").is_some_and(|p| p.title.as_deref() == Some("Newer"))
        });
    }
}
