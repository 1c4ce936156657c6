//! The blogger's own posts: learned from feeds and sitemaps (or, for a new post, from its own
//! page), each with a short key that names its files and trackback URL.

use super::db::Conn;
use super::db::{OptionalExtension, params};
use super::{Result, Store, StoreResult};
use crate::model::{Post, now_rfc3339};

/// See [`Store::post_send_state`].
#[derive(Clone, Debug, Default)]
pub struct PostSendState {
    pub sent_fingerprint: Option<String>,
    /// Whether the last complete listing of the site's feeds and sitemaps named the post;
    /// `None` before any listing was complete.
    pub listed: Option<bool>,
    /// 404s its page answered in a row.
    pub not_found_count: i64,
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

/// A post as a site's feed or sitemap lists it.
#[derive(Clone, Debug, Default)]
pub struct ListedPost {
    pub url: String,
    pub match_key: String,
    pub title: Option<String>,
    pub published: Option<String>,
    pub atom_id: Option<String>,
    /// What the feed says the post holds (the sender's fallback when its page has no h-entry).
    pub feed_content: Option<String>,
}

impl Store {
    /// Adds or refreshes one of the site's posts; returns its key. The key, once given, never
    /// changes: it names files in exports and trackback URLs.
    pub fn upsert_post(
        &self,
        url: &str,
        match_key: &str,
        title: Option<&str>,
        published: Option<&str>,
        atom_id: Option<&str>,
    ) -> StoreResult<String> {
        let post = ListedPost {
            url: url.into(),
            match_key: match_key.into(),
            title: title.map(str::to_string),
            published: published.map(str::to_string),
            atom_id: atom_id.map(str::to_string),
            feed_content: None,
        };
        let mut keys = self.upsert_listed_posts(std::slice::from_ref(&post))?;
        Ok(keys.pop().unwrap_or_default())
    }

    /// Adds or refreshes the posts one feed or sitemap lists, in one transaction (a site's
    /// feed of 20 posts is one commit, not 20); returns their keys.
    pub fn upsert_listed_posts(&self, posts: &[ListedPost]) -> StoreResult<Vec<String>> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let routes = self.site_routes();
        self.write(|c| {
            let tx = c.transaction()?;
            let mut keys = Vec::with_capacity(posts.len());
            for p in posts {
                let (id, key) = upsert_post_in(
                    &tx,
                    &p.url,
                    &p.match_key,
                    p.title.as_deref(),
                    p.published.as_deref(),
                    p.atom_id.as_deref(),
                    routes.site_of(&p.url),
                )?;
                // Listed by the site's own feeds or sitemaps now: not deleted, whatever its
                // page says.
                tx.run(
                    "UPDATE posts SET listed_at = ?2, feed_content = COALESCE(?3, feed_content) WHERE id = ?1",
                    params![id, now_millis(), p.feed_content],
                )?;
                keys.push(key);
            }
            tx.commit()?;
            Ok(keys)
        })
    }

    /// `site`'s feeds and sitemaps were all read, from `started_at` on: a post of it they did
    /// not list (its `listed_at` older) is no longer listed.
    pub fn site_listing_complete(&self, site: &str, started_at: &str) -> StoreResult<()> {
        self.write(|c| {
            c.run(
                "INSERT INTO site_listings (site, complete_at) VALUES (?1, ?2)
                 ON CONFLICT (site) DO UPDATE SET complete_at = excluded.complete_at",
                [site, started_at],
            )
            .map(|_| ())
        })
    }

    /// What sending needs to know of a post: the content fingerprint its last complete run
    /// sent, and whether the site still lists it (`None`: no complete listing yet, unknown).
    pub fn post_send_state(&self, post_id: i64) -> StoreResult<PostSendState> {
        self.read(|c| {
            c.query_row(
                "SELECT p.sent_fingerprint,
                        (SELECT CASE WHEN p.listed_at >= s.complete_at THEN 1 ELSE 0 END
                         FROM site_listings s WHERE s.site = p.site),
                        p.not_found_count
                 FROM posts p WHERE p.id = ?1",
                [post_id],
                |r| {
                    Ok(PostSendState {
                        sent_fingerprint: r.get(0)?,
                        listed: r.get(1)?,
                        not_found_count: r.get(2)?,
                    })
                },
            )
        })
    }

    /// The post's page answered 404 (`true`) or was read (`false`); returns how many 404s in a
    /// row it has answered now.
    pub fn post_page_answered(&self, post_id: i64, not_found: bool) -> StoreResult<i64> {
        self.write(|c| {
            c.query_row(
                "UPDATE posts SET not_found_count = CASE WHEN ?2 <> 0 THEN not_found_count + 1 ELSE 0 END
                 WHERE id = ?1 RETURNING not_found_count",
                params![post_id, not_found],
                |r| r.get(0),
            )
        })
    }

    /// The post whose URL has this match key.
    pub fn post_by_match_key(&self, match_key: &str) -> StoreResult<Option<PostRef>> {
        self.kept_or_read(&self.kept.posts, match_key.to_string(), || {
            self.post_where("match_key = ?1", match_key)
        })
    }

    /// The posts with these match keys, in one query (publishing asks for all targets at once).
    /// Every post by its match key (an export's titles).
    pub fn post_refs(&self) -> StoreResult<Vec<(String, PostRef)>> {
        self.read(|c| {
            c.prepare_cached("SELECT match_key, id, url, key, title, atom_id FROM posts")?
                .query_map([], |r| Ok((r.get(0)?, post_ref_at(r, 1)?)))?
                .collect()
        })
    }

    pub fn posts_by_match_keys(&self, keys: &[String]) -> StoreResult<Vec<(String, PostRef)>> {
        // The keys go in as one JSON array, so there is one statement to keep prepared however
        // many a feed page names, and no limit on how many (an export may name every post).
        let keys = serde_json::to_string(keys).map_err(super::StoreError::other)?;
        self.read(|c| {
            c.prepare_cached(
                "SELECT match_key, id, url, key, title, atom_id FROM posts
                 WHERE match_key IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([&keys], |r| Ok((r.get(0)?, post_ref_at(r, 1)?)))?
            .collect()
        })
    }

    /// The post with this short key.
    pub fn post_by_key(&self, key: &str) -> StoreResult<Option<PostRef>> {
        self.post_where("key = ?1", key)
    }

    fn post_where(&self, clause: &str, value: &str) -> StoreResult<Option<PostRef>> {
        self.read(|c| post_where_in(c, clause, value))
    }

    /// Every post, as the pipeline and the sender need it, newest first.
    pub fn all_posts(&self) -> StoreResult<Vec<PostRef>> {
        self.read(|c| {
            c.prepare(
                "SELECT id, url, key, title, atom_id FROM posts
                 ORDER BY COALESCE(published, rfc3339_text(first_seen)) DESC, id DESC",
            )?
            .query_map([], |r| post_ref_at(r, 0))?
            .collect()
        })
    }

    /// Keeps the content the site's own feed gives a post (capped by the caller).
    pub fn post_feed_content(&self, post_id: i64) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row(
                "SELECT feed_content FROM posts WHERE id = ?1",
                [post_id],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }

    /// Every post with its count of published mentions, newest first.
    pub fn list_posts(&self) -> StoreResult<Vec<Post>> {
        self.list_posts_of(None)
    }

    /// [`Store::list_posts`] of one site (`None`: every site).
    pub fn list_posts_of(&self, site: Option<&str>) -> StoreResult<Vec<Post>> {
        self.read(|c| {
            let stmt = c.prepare(
                "SELECT p.url, p.title, p.key, p.published,
                        (SELECT COUNT(*) FROM mentions m WHERE m.post_id = p.id AND m.status = 'verified')
                 FROM posts p WHERE CAST(?1 AS TEXT) IS NULL OR p.site = ?1
                 ORDER BY COALESCE(p.published, rfc3339_text(p.first_seen)) DESC, p.id DESC",
            )?;
            stmt.query_map([site], |r| {
                Ok(Post { url: r.get(0)?, title: r.get(1)?, key: r.get(2)?, published: r.get(3)?, mentions: r.get(4)? })
            })?
            .collect()
        })
    }
}

/// A post from the columns `id, url, key, title, atom_id` of `r`, starting at column `at`.
fn post_ref_at(r: &super::db::Row<'_>, at: usize) -> Result<PostRef> {
    Ok(PostRef {
        id: r.get(at)?,
        url: r.get(at + 1)?,
        key: r.get(at + 2)?,
        title: r.get(at + 3)?,
        atom_id: r.get(at + 4)?,
    })
}

/// [`Store::upsert_post`] inside a transaction the caller holds; returns the post's id and key.
/// `site` files a new post (and one not filed yet); a post stays under the site it was filed
/// under.
pub(super) fn upsert_post_in(
    tx: &Conn,
    url: &str,
    match_key: &str,
    title: Option<&str>,
    published: Option<&str>,
    atom_id: Option<&str>,
    site: &str,
) -> Result<(i64, String)> {
    // Two processes of a fleet may learn one post at once (a crawl by hand beside `serve`'s):
    // an insert that finds its post or its key taken meanwhile does nothing and looks again.
    for _ in 0..8 {
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, key FROM posts WHERE match_key = ?1",
                [match_key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, key)) = existing {
            tx.run(
                "UPDATE posts SET url = ?2, title = COALESCE(?3, title), published = COALESCE(?4, published),
                        atom_id = COALESCE(?5, atom_id), site = CASE WHEN site = '' THEN ?6 ELSE site END
                 WHERE match_key = ?1",
                params![match_key, url, title, published, atom_id, site],
            )?;
            return Ok((id, key));
        }
        let key = free_post_key(tx, &post_key_base(url))?;
        let inserted: Option<i64> = tx
            .query_row(
                "INSERT INTO posts (url, match_key, key, title, published, atom_id, first_seen, site)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING RETURNING id",
                params![
                    url,
                    match_key,
                    key,
                    title,
                    published,
                    atom_id,
                    now_rfc3339(),
                    site
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = inserted {
            return Ok((id, key));
        }
    }
    Err(super::StoreError::other(std::io::Error::other(format!(
        "post {url}: its key kept being taken by others"
    ))))
}

/// `base`, or the first of `base-2`, `base-3` … no post has: one read of the keys that start so
/// (many sites each have a `hello-world`; probing one key at a time cost a query per taken key).
fn free_post_key(tx: &Conn, base: &str) -> Result<String> {
    // Every key `base-…` sorts between `base-` and `base.` ('-' and '.' are neighbours).
    let taken: std::collections::HashSet<String> = tx
        .prepare_cached("SELECT key FROM posts WHERE key = ?1 OR (key >= ?2 AND key < ?3)")?
        .query_map(params![base, format!("{base}-"), format!("{base}.")], |r| {
            r.get(0)
        })?
        .collect::<Result<_>>()?;
    if !taken.contains(base) {
        return Ok(base.to_string());
    }
    Ok((2..)
        .map(|n| format!("{base}-{n}"))
        .find(|key| !taken.contains(key))
        .expect("a free number exists"))
}

/// A short, readable key from a post URL's last path segment: `/2024/05/hello-world/` →
/// `hello-world`. The store makes it unique.
pub(super) fn post_key_base(url: &str) -> String {
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

/// The post `clause` (one of a few fixed ones, with `?1`) finds, on `c`. Every webmention asks
/// this: the statement is kept prepared (one per clause).
pub(super) fn post_where_in(c: &Conn, clause: &str, value: &str) -> Result<Option<PostRef>> {
    c.prepare_cached(format!(
        "SELECT id, url, key, title, atom_id FROM posts WHERE {clause}"
    ))?
    .query_row([value], |r| post_ref_at(r, 0))
    .optional()
}

/// Now, to the millisecond (RFC 3339, UTC): the post listing's stamps, which two crawls within
/// one second must still tell apart.
pub fn now_millis() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn post_keys_are_slugs_and_unique() {
        for (store, _keep) in crate::store::testing::test_stores("post_keys") {
            post_keys_on(&store);
        }
    }

    fn post_keys_on(store: &Store) {
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
}
