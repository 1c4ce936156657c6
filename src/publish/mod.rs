//! Read-only views of published mentions, rendered to bytes: Atom 1.0 (with RFC 4685
//! `thr:in-reply-to`), RSS 2.0, JSON Feed 1.1, JF2, the webmention.io-compatible API shape, and
//! the static export, one file a format ([`atom`], [`rss`], [`json_feed`], [`jf2`]), the
//! export ([`export`]) and the HTTP routes ([`http`]); this file holds what they share. The HTTP routes and `backfeed export` share every function here, so a
//! site build gets the same bytes whichever way it pulls.
//!
//! XML is written with quick-xml's writer, never glued from strings; text that came from a
//! source is stripped of characters XML cannot carry, and escaped by the writer. Entry ids are
//! `tag:` URIs built from the site's host, a fixed date and a hash of (source, post match key):
//! they never change for a pair, whatever its title, author or redirect does.

pub mod atom;
pub mod export;
pub mod html;
pub mod http;
pub mod jf2;
pub mod json_feed;
pub mod rss;

pub use export::{ExportSummary, export};
pub use jf2::{count_json, json_bytes, write_json};

use crate::model::{Mention, MentionType, match_key};
use crate::store::{MentionFilter, PostRef, Store};
use crate::text::html_escape;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What a feed is about and where it lives.
#[derive(Clone, Debug)]
pub struct FeedMeta {
    pub title: String,
    /// This feed's own URL (`rel="self"`).
    pub self_url: String,
    /// The blog's home page.
    pub home_url: String,
    /// Host used as the `tag:` authority of every id (the blog's host: stable).
    pub id_host: String,
    /// The feed's own stable id suffix, e.g. `mentions` or `post/hello`.
    pub id_suffix: String,
}

pub use crate::model::Site;

impl FeedMeta {
    /// The one builder of feed metadata, served or exported, so a feed has one id wherever it
    /// is read: the site's feed at `path` (e.g. `mentions.atom`), or, with `post` (its URL and
    /// title), that post's feed.
    pub fn new(site: Site<'_>, path: &str, post: Option<(&str, Option<&str>)>) -> FeedMeta {
        let id_host = crate::model::host_of(site.home_url).unwrap_or_else(|| "localhost".into());
        match post {
            None => FeedMeta {
                title: format!("Mentions of {}", site.title),
                self_url: format!("{}{path}", site.public_url),
                home_url: site.home_url.to_string(),
                id_host,
                id_suffix: "mentions".into(),
            },
            Some((url, title)) => FeedMeta {
                title: format!("Mentions of {}", title.unwrap_or(url)),
                self_url: format!(
                    "{}{path}?target={}",
                    site.public_url,
                    percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC)
                ),
                home_url: url.to_string(),
                id_host,
                id_suffix: format!("mentions/{}", match_key(url).unwrap_or_default()),
            },
        }
    }

    fn feed_id(&self) -> String {
        format!("tag:{},2026:{}", self.id_host, self.id_suffix)
    }
}

/// Stable id of the entry for a (source, target) pair.
pub fn entry_id(id_host: &str, m: &Mention) -> String {
    let target = match_key(&m.target).unwrap_or_else(|| m.target.clone());
    let digest = Sha256::digest(format!("{}\n{}", m.source, target).as_bytes());
    format!("tag:{id_host},2026:mention/{}", &hex::encode(digest)[..24])
}

/// Characters XML 1.0 cannot carry, removed (a hostile title must not break the feed). Text
/// without any (nearly all of it) is not copied: rebuilding every feed's text a character at
/// a time was a sixth of the Atom route's CPU.
pub(crate) fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    let clean = s
        .bytes()
        .all(|b| b >= b' ' || matches!(b, b'\t' | b'\n' | b'\r'))
        && !s.contains('\u{FFFE}')
        && !s.contains('\u{FFFF}');
    if clean {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.chars().filter(|&c| allowed(c)).collect())
    }
}

pub(crate) fn verb(t: MentionType) -> &'static str {
    match t {
        MentionType::Mention => "mentioned",
        MentionType::Reply => "replied to",
        MentionType::Like => "liked",
        MentionType::Repost => "reposted",
        MentionType::Bookmark => "bookmarked",
    }
}

/// A reader-facing entry title: "Alice replied to “Hello”", plain text.
pub fn entry_title(m: &Mention, post_title: Option<&str>) -> String {
    let who = m
        .author
        .name
        .clone()
        .or_else(|| crate::model::host_of(&m.source))
        .unwrap_or_else(|| "someone".into());
    let what = post_title
        .map(str::to_string)
        .unwrap_or_else(|| m.target.clone());
    match (&m.title, m.mention_type) {
        (Some(title), MentionType::Mention) => format!("{who} mentioned “{what}”: {title}"),
        _ => format!("{who} {} “{what}”", verb(m.mention_type)),
    }
}

/// Date of an entry: when the source says it was published, else when we first saw it.
pub(crate) fn entry_date(m: &Mention) -> &str {
    m.published.as_deref().unwrap_or(&m.first_seen)
}

pub(crate) fn rfc2822(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc2822()
                .replace("+0000", "GMT")
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// Post titles and atom ids for the targets of a set of mentions (by target URL), or of every
/// post (by match key: an export's feeds name them all). `Default`: none known (entries name
/// their target URL).
#[derive(Default)]
pub struct PostInfo {
    pub titles: std::collections::HashMap<String, (Option<String>, Option<String>)>,
    by_key: std::collections::HashMap<String, (Option<String>, Option<String>)>,
}

impl PostInfo {
    /// The posts of `mentions`' targets, read in one query. A store error leaves titles out
    /// (entries then name the target URL) and is logged.
    pub fn load(store: &Store, mentions: &[Mention]) -> PostInfo {
        // Each distinct target's key, worked out once (a URL parse each).
        let mut targets: std::collections::HashMap<&str, Option<String>> = Default::default();
        for m in mentions {
            targets
                .entry(m.target.as_str())
                .or_insert_with(|| match_key(&m.target));
        }
        let mut keys: Vec<String> = targets.values().flatten().cloned().collect();
        keys.sort();
        keys.dedup();
        let posts: std::collections::HashMap<String, PostRef> = store
            .posts_by_match_keys(&keys)
            .inspect_err(|e| tracing::warn!(error = %e, "post titles not read"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let titles = targets
            .into_iter()
            .map(|(target, key)| {
                let post = key.and_then(|k| posts.get(&k));
                (
                    target.to_string(),
                    post.map(|p| (p.title.clone(), p.atom_id.clone()))
                        .unwrap_or_default(),
                )
            })
            .collect();
        PostInfo {
            titles,
            by_key: Default::default(),
        }
    }

    /// Every post's title and atom id. A store error leaves titles out, and is logged.
    pub fn every_post(store: &Store) -> PostInfo {
        let by_key = store
            .post_refs()
            .inspect_err(|e| tracing::warn!(error = %e, "post titles not read"))
            .unwrap_or_default()
            .into_iter()
            .map(|(key, p)| (key, (p.title, p.atom_id)))
            .collect();
        PostInfo {
            titles: Default::default(),
            by_key,
        }
    }

    fn post(&self, target: &str) -> Option<&(Option<String>, Option<String>)> {
        match self.titles.get(target) {
            Some(post) => Some(post),
            None if self.by_key.is_empty() => None,
            None => match_key(target).and_then(|key| self.by_key.get(&key)),
        }
    }

    fn title(&self, target: &str) -> Option<&str> {
        self.post(target).and_then(|(t, _)| t.as_deref())
    }

    fn atom_id<'a>(&'a self, target: &'a str) -> &'a str {
        self.post(target)
            .and_then(|(_, a)| a.as_deref())
            .unwrap_or(target)
    }
}

pub(crate) type XmlResult = std::io::Result<()>;

/// The mentions a renderer writes, handed over one at a time, newest first: `each(f)` calls `f`
/// on every one. It may be called more than once (the HTML fragment reads its mentions in
/// three passes). A slice in memory for the HTTP routes ([`in_memory`]); pages read from the
/// store one after another for the export ([`export`]), so a feed of a million mentions is
/// written without holding them.
pub type Each<'a> = dyn FnMut(&mut Visit<'_>) -> std::io::Result<()> + 'a;

/// What [`Each`] calls on every mention.
pub type Visit<'v> = dyn FnMut(&Mention) -> std::io::Result<()> + 'v;

/// [`Each`] over mentions in memory.
pub fn in_memory(mentions: &[Mention]) -> impl FnMut(&mut Visit<'_>) -> std::io::Result<()> + '_ {
    move |f| mentions.iter().try_for_each(f)
}

/// The latest `updated_at` among `mentions` (a feed's own updated date).
pub(crate) fn last_updated(mentions: &[Mention]) -> Option<&str> {
    mentions.iter().map(|m| m.updated_at.as_str()).max()
}

/// Serializes the elements of a JSON array from `each`, one by one, never collected: `one`
/// serializes a mention's element.
pub(crate) fn serialize_each<Q: serde::ser::SerializeSeq>(
    seq: &mut Q,
    each: &std::cell::RefCell<&mut Each<'_>>,
    mut one: impl FnMut(&Mention, &mut Q) -> Result<(), Q::Error>,
) -> Result<(), Q::Error> {
    use serde::ser::Error;
    let mut failed: Option<Q::Error> = None;
    let mut each = each.borrow_mut();
    let walked = each(&mut |m| {
        one(m, seq).map_err(|e| {
            let message = e.to_string();
            failed = Some(e);
            std::io::Error::other(message)
        })
    });
    match failed {
        Some(e) => Err(e),
        None => walked.map_err(Q::Error::custom),
    }
}

pub(crate) fn text_el<W: std::io::Write>(w: &mut Writer<W>, name: &str, text: &str) -> XmlResult {
    w.create_element(name)
        .write_text_content(BytesText::new(&xml_safe(text)))?;
    Ok(())
}

/// [`Each`] over every published mention (of one post: its match key), newest first, read
/// from the store a page at a time.
pub fn published_pages<'a>(
    store: &'a Store,
    target_key: Option<String>,
    site: Option<&str>,
) -> impl FnMut(&mut Visit<'_>) -> std::io::Result<()> + 'a {
    const PAGE: i64 = 500;
    let site = site.map(str::to_string);
    move |f| {
        let mut filter = MentionFilter {
            status: Some(crate::model::Status::Verified),
            target_keys: target_key.clone().into_iter().collect(),
            site: site.clone(),
            configured_sites_only: true,
            limit: Some(PAGE),
            ..Default::default()
        };
        loop {
            let page = store.mentions(&filter).map_err(std::io::Error::other)?;
            page.iter().try_for_each(&mut *f)?;
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => {
                    filter.before = Some((last.first_seen.clone(), last.id));
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Published mentions, optionally for one target or of one site, newest first, at most `limit`.
pub fn published(
    store: &Store,
    target: Option<&str>,
    site: Option<&str>,
    limit: i64,
) -> crate::store::StoreResult<Vec<Mention>> {
    let filter = MentionFilter {
        status: Some(crate::model::Status::Verified),
        target_keys: target.and_then(match_key).into_iter().collect(),
        site: site.map(str::to_string),
        configured_sites_only: true,
        limit: Some(limit),
        ..Default::default()
    };
    store.mentions(&filter)
}

/// Most bytes of stored text (content, excerpt, title, names, URLs) one response carries.
/// Each mention holds at most 8 KiB of content, so a page of 50 always fits; a page of 1,000
/// long articles stops early (page on with `since_id`, `page` or a smaller `limit`).
pub const RESPONSE_TEXT_MAX: usize = 8 * 1024 * 1024;

/// The first mentions of `mentions` whose stored text fits in [`RESPONSE_TEXT_MAX`].
pub fn within_response_budget(mut mentions: Vec<Mention>) -> Vec<Mention> {
    let mut total = 0usize;
    let fits = mentions
        .iter()
        .take_while(|m| {
            let size = [
                &m.content_html,
                &m.excerpt,
                &m.title,
                &m.author.name,
                &m.author.url,
                &m.author.photo,
            ]
            .iter()
            .map(|f| f.as_deref().map_or(0, str::len))
            .sum::<usize>()
                + m.source.len()
                + m.target.len();
            total += size;
            total <= RESPONSE_TEXT_MAX
        })
        .count();
    mentions.truncate(fits.max(1));
    mentions
}

/// The four feed formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Atom,
    Rss,
    JsonFeed,
    Jf2,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::JsonFeed => "application/feed+json; charset=utf-8",
            Format::Jf2 => "application/jf2feed+json; charset=utf-8",
        }
    }

    pub fn render(self, meta: &FeedMeta, mentions: &[Mention], posts: &PostInfo) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(
            &mut out,
            meta,
            last_updated(mentions),
            posts,
            &mut in_memory(mentions),
        )
        .expect("writing to memory cannot fail");
        out
    }

    /// Writes the feed of `each` to `out`; `updated` is the latest `updated_at` among them.
    pub fn write(
        self,
        out: &mut dyn std::io::Write,
        meta: &FeedMeta,
        updated: Option<&str>,
        posts: &PostInfo,
        each: &mut Each<'_>,
    ) -> std::io::Result<()> {
        match self {
            Format::Atom => atom::write_atom(out, meta, updated, posts, each),
            Format::Rss => rss::write_rss(out, meta, updated, posts, each),
            Format::JsonFeed => json_feed::write_json_feed(out, meta, posts, each),
            Format::Jf2 => jf2::write_jf2(out, &meta.title, each, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_safe_removes_what_xml_cannot_carry_and_copies_nothing_else() {
        assert_eq!(
            xml_safe("a\u{1}b\u{FFFE}c\td\u{FFFF}\r\né\u{7}"),
            "abc\td\r\né"
        );
        assert_eq!(xml_safe("\u{0}"), "");
        let clean = "Ünïcode — fine\ttext\n";
        assert!(matches!(xml_safe(clean), std::borrow::Cow::Borrowed(s) if s == clean));
        // U+FFFD and other characters near the excluded ones stay.
        assert_eq!(xml_safe("\u{FFFD}\u{FFFC}"), "\u{FFFD}\u{FFFC}");
    }
}
