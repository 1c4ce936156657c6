//! Sites as data: which site each post, mention and decision is filed under, the routes that
//! decide it (set from the configuration, and again on SIGHUP), filing rows written before
//! there were sites, and forgetting a removed site's data.
//!
//! A row is filed when it is written (`site` column; `''` = under no site) and stays there: a
//! site added later with a longer `base_url` does not take posts from another. A single-site
//! store from before sites is filed at first start under its one site, named after its
//! `base_url`'s host, and every id and URL it published stays as it was.

use super::db::{Conn, params};
use super::{Result, Store, StoreResult};
use crate::sites::Routes;
use std::sync::Arc;

/// What `forget-site` deleted.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Forgotten {
    pub posts: usize,
    pub mentions: usize,
    pub decisions: usize,
}

/// One site's rows, for the host's operator.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SiteCounts {
    /// The name rows are filed under (`""`: under no site).
    pub site: String,
    pub posts: i64,
    pub by_status: Vec<(String, i64)>,
}

/// Rows filed a page at a time while routing what was written before sites.
const FILE_PAGE: i64 = 5_000;

impl Store {
    /// The routes of the sites served from now on; rows not yet filed under a site (written
    /// before sites, or while their site was not configured) are filed now.
    pub fn set_site_routes(&self, routes: Routes) -> StoreResult<()> {
        let routes = Arc::new(routes);
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = routes.clone();
        self.file_unfiled(&routes)?;
        // Sites with rows here but no longer configured: not published until forgotten.
        let filed: Vec<String> = self.read(|c| {
            c.prepare(
                "WITH RECURSIVE s(site) AS (
                     SELECT MIN(site) FROM posts
                     UNION ALL
                     SELECT (SELECT MIN(site) FROM posts WHERE site > s.site) FROM s WHERE s.site IS NOT NULL
                 ) SELECT site FROM s WHERE site IS NOT NULL",
            )?
            .query_map([], |r| r.get(0))?
            .collect()
        })?;
        let removed = filed
            .into_iter()
            .filter(|site| !site.is_empty() && routes.named(site).is_none())
            .collect();
        *self
            .removed_sites
            .write()
            .unwrap_or_else(|e| e.into_inner()) = removed;
        Ok(())
    }

    /// Sites whose rows are still here though they are no longer configured (until
    /// `forget-site`): what publishing leaves out.
    pub fn removed_sites(&self) -> Vec<String> {
        self.removed_sites
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The routes in use.
    pub fn site_routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The name of the site `url` is filed under (`""`: none).
    pub fn site_of(&self, url: &str) -> String {
        self.site_routes().site_of(url).to_string()
    }

    /// Files posts, mentions and decisions not filed yet. With one site, everything is its own
    /// (one statement a table); with several, each row by its URL, a page at a time.
    fn file_unfiled(&self, routes: &Routes) -> StoreResult<()> {
        let unfiled = self.read(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM posts WHERE site = '')
                     OR EXISTS (SELECT 1 FROM mentions WHERE site = '')",
                [],
                |r| r.get::<_, bool>(0),
            )
        })?;
        if !unfiled || routes.is_empty() {
            return Ok(());
        }
        let filed = self.file_rows(routes);
        // Verification jobs carry their mention's site (leasing goes round the sites).
        self.write(|c| {
            c.run(
                "UPDATE jobs SET site = COALESCE((SELECT m.site FROM mentions m WHERE m.id = jobs.subject), '')
                 WHERE kind = 'verify' AND site = ''",
                [],
            )
            .map(|_| ())
        })?;
        filed
    }

    /// [`Store::file_unfiled`]'s posts, mentions and decisions.
    fn file_rows(&self, routes: &Routes) -> StoreResult<()> {
        if routes.len() == 1 {
            let only = routes
                .iter()
                .next()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            return self.write(|c| {
                let tx = c.transaction()?;
                tx.run("UPDATE posts SET site = ?1 WHERE site = ''", [&only])?;
                tx.run("UPDATE mentions SET site = ?1 WHERE site = ''", [&only])?;
                tx.run("UPDATE decisions SET site = ?1 WHERE site = ''", [&only])?;
                for table in ["site_listings", "own_profiles"] {
                    tx.run(
                        &format!(
                            "UPDATE {table} SET site = ?1 WHERE site = ''
                             AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.site = ?1)"
                        ),
                        [&only],
                    )?;
                }
                tx.commit()
            });
        }
        for (table, url) in [
            ("posts", "url"),
            ("mentions", "target"),
            ("decisions", "target"),
        ] {
            let mut after = 0i64;
            loop {
                let page: Vec<(i64, String)> = self.read(|c| {
                    c.prepare(format!(
                        "SELECT id, {url} FROM {table} WHERE site = '' AND id > ?1 ORDER BY id LIMIT ?2"
                    ))?
                    .query_map(params![after, FILE_PAGE], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
                })?;
                let Some(&(last, _)) = page.last() else { break };
                after = last;
                self.write(|c| {
                    let tx = c.transaction()?;
                    for (id, url) in &page {
                        let site = routes.site_of(url);
                        if !site.is_empty() {
                            tx.run(
                                &format!("UPDATE {table} SET site = ?2 WHERE id = ?1"),
                                params![id, site],
                            )?;
                        }
                    }
                    tx.commit()
                })?;
            }
        }
        Ok(())
    }

    /// Every site name rows are filed under, with its posts and mentions by status: what the
    /// host's operator sees per site (removed sites included, until forgotten).
    pub fn site_counts(&self) -> StoreResult<Vec<SiteCounts>> {
        self.read(|c| {
            let posts: Vec<(String, i64)> = c
                .prepare("SELECT site, COUNT(*) FROM posts GROUP BY site")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_>>()?;
            let mentions: Vec<(String, String, i64)> = c
                .prepare("SELECT site, status, COUNT(*) FROM mentions GROUP BY site, status ORDER BY status")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_>>()?;
            // One entry a name, in order, whichever table names it.
            let mut sites = std::collections::BTreeMap::<String, SiteCounts>::new();
            fn of(sites: &mut std::collections::BTreeMap<String, SiteCounts>, site: String) -> &mut SiteCounts {
                sites.entry(site.clone()).or_insert_with(|| SiteCounts {
                    site,
                    ..Default::default()
                })
            }
            for (site, n) in posts {
                of(&mut sites, site).posts = n;
            }
            for (site, status, n) in mentions {
                of(&mut sites, site).by_status.push((status, n));
            }
            Ok(sites.into_values().collect())
        })
    }

    /// Deletes every post, mention and decision filed under `site`, with what hangs on them
    /// (jobs, notifications, deliveries, sends, syndication URLs). Nothing of it is announced
    /// as deleted (`/api/deleted.json`): the site is gone, not its mentions.
    pub fn forget_site(&self, site: &str) -> StoreResult<Forgotten> {
        let forgotten = self.write(|c| {
            let tx = c.transaction()?;
            let forgotten = forget_in(&tx, site)?;
            tx.commit()?;
            Ok(forgotten)
        })?;
        self.removed_sites
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s != site);
        Ok(forgotten)
    }
}

fn forget_in(tx: &Conn, site: &str) -> Result<Forgotten> {
    let of_mentions = "SELECT id FROM mentions WHERE site = ?1";
    let of_posts = "SELECT id FROM posts WHERE site = ?1";
    let of_notifications =
        format!("SELECT id FROM notifications WHERE mention_id IN ({of_mentions})");
    for sql in [
        format!(
            "DELETE FROM jobs WHERE kind = 'deliver' AND subject IN
                 (SELECT id FROM deliveries WHERE notification_id IN ({of_notifications}))"
        ),
        format!("DELETE FROM deliveries WHERE notification_id IN ({of_notifications})"),
        format!("DELETE FROM notifications WHERE mention_id IN ({of_mentions})"),
        format!("DELETE FROM jobs WHERE kind = 'verify' AND subject IN ({of_mentions})"),
        format!("DELETE FROM jobs WHERE kind = 'send' AND subject IN ({of_posts})"),
        format!("DELETE FROM mention_urls WHERE mention_id IN ({of_mentions})"),
        format!("DELETE FROM sends WHERE post_id IN ({of_posts})"),
    ] {
        tx.run(&sql, [site])?;
    }
    let ids: Vec<i64> = tx
        .prepare(of_mentions)?
        .query_map([site], |r| r.get(0))?
        .collect::<Result<_>>()?;
    let mentions = tx.run("DELETE FROM mentions WHERE site = ?1", [site])?;
    // The deletion trigger noted each published one for `/api/deleted.json`: not a deletion
    // a site build should follow, the site itself is gone.
    for chunk in ids.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tx.run(
            &format!("DELETE FROM unpublished WHERE mention_id IN ({list})"),
            [],
        )?;
    }
    let posts = tx.run("DELETE FROM posts WHERE site = ?1", [site])?;
    tx.run("DELETE FROM site_listings WHERE site = ?1", [site])?;
    tx.run("DELETE FROM own_profiles WHERE site = ?1", [site])?;
    let decisions = tx.run("DELETE FROM decisions WHERE site = ?1", [site])?;
    Ok(Forgotten {
        posts,
        mentions,
        decisions,
    })
}

#[cfg(test)]
mod tests {
    use crate::sites::{Routes, SiteRoute};
    use crate::store::{MIGRATIONS, Store};

    /// A store written before sites (every migration but the ones since) opens with every
    /// row filed under its one site, and every id as it was.
    #[test]
    fn a_store_from_before_sites_is_filed_under_its_one_site() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let before_sites = MIGRATIONS
            .iter()
            .position(|m| m.contains("Many sites (see store/sites.rs)"))
            .unwrap();
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..before_sites] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", before_sites as i64)
                .unwrap();
            c.execute_batch(
                "INSERT INTO posts (id, url, match_key, key, first_seen)
                     VALUES (7, 'https://blog.example/hello/', 'blog.example/hello', 'hello', '2026-01-01T00:00:00Z');
                 INSERT INTO mentions (id, source, target, target_key, post_id, kind, status, first_seen, updated_at)
                     VALUES (42, 'https://friend.example/a', 'https://blog.example/hello/', 'blog.example/hello', 7,
                             'webmention', 'verified', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
                 INSERT INTO decisions (at, source, target, kind, outcome, reason)
                     VALUES ('2026-01-01T00:00:00Z', 'https://friend.example/a', 'https://blog.example/hello/', 'webmention', 'accepted', 'link found');
                 INSERT INTO jobs (kind, subject, next_try) VALUES ('verify', 42, '2026-01-01T00:00:00Z');
                 INSERT INTO site_listing (id, complete_at) VALUES (1, '2026-01-01T00:00:00Z');
                 INSERT INTO site_profiles (url) VALUES ('https://social.example/@me');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        store
            .set_site_routes(Routes::new(vec![SiteRoute {
                name: "blog.example".into(),
                base_url: url::Url::parse("https://blog.example/").unwrap(),
            }]))
            .unwrap();
        let site_of =
            |sql: &str| -> String { store.read(|c| c.query_row(sql, [], |r| r.get(0))).unwrap() };
        assert_eq!(
            site_of("SELECT site FROM posts WHERE id = 7"),
            "blog.example"
        );
        assert_eq!(
            site_of("SELECT site FROM mentions WHERE id = 42"),
            "blog.example"
        );
        assert_eq!(site_of("SELECT site FROM decisions"), "blog.example");
        assert_eq!(
            site_of("SELECT site FROM jobs WHERE subject = 42"),
            "blog.example"
        );
        assert_eq!(site_of("SELECT site FROM site_listings"), "blog.example");
        assert_eq!(
            store.site_profiles("blog.example").unwrap(),
            ["https://social.example/@me"]
        );
        assert_eq!(
            store.mention_site(42).unwrap().as_deref(),
            Some("blog.example")
        );
        assert!(store.removed_sites().is_empty());
    }

    /// The status page counts every mention once, for the store and for each site: the
    /// store-wide figures summed from the sites' are the ones counted for the store on its own.
    #[test]
    fn the_stores_counts_are_the_sum_of_its_sites() {
        for (store, _keep) in crate::store::testing::test_stores("site_counts") {
            let sql = crate::store::testing::Sql::open(&store.location);
            sql.execute_batch(
                "INSERT INTO posts (id, url, match_key, key, first_seen, site) VALUES
                     (1, 'https://a.example/p/', 'a.example/p', 'p', '2026-01-01T00:00:00Z', 'a'),
                     (2, 'https://b.example/q/', 'b.example/q', 'q', '2026-01-01T00:00:00Z', 'b'),
                     (3, 'https://b.example/r/', 'b.example/r', 'r', '2026-01-01T00:00:00Z', 'b');
                 INSERT INTO mentions (source, target, target_key, post_id, kind, status, first_seen, updated_at, site) VALUES
                     ('https://x.example/1', 'https://a.example/p/', 'a.example/p', 1, 'webmention', 'verified', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'a'),
                     ('https://x.example/2', 'https://a.example/p/', 'a.example/p', 1, 'webmention', 'pending', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'a'),
                     ('https://x.example/3', 'https://b.example/q/', 'b.example/q', 2, 'webmention', 'verified', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'b'),
                     ('https://x.example/4', 'https://b.example/r/', 'b.example/r', 3, 'pingback', 'rejected', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'b');",
            );
            let alone = store.counts().unwrap();
            let (summed, sites) = store.counts_with_sites().unwrap();
            assert_eq!(summed.posts, 3);
            assert_eq!(summed.posts, alone.posts);
            assert_eq!(summed.by_status, alone.by_status);
            assert_eq!(
                summed.by_status,
                [("pending", 1), ("rejected", 1), ("verified", 2)]
                    .map(|(s, n)| (s.to_string(), n))
                    .to_vec()
            );
            assert_eq!(
                (summed.queue_depth, summed.decisions),
                (alone.queue_depth, alone.decisions)
            );
            let b = sites.iter().find(|s| s.site == "b").unwrap();
            assert_eq!(b.posts, 2);
            assert_eq!(b.by_status.iter().map(|(_, n)| n).sum::<i64>(), 2);
        }
    }
}
