//! Read-only views of published mentions, rendered to bytes: Atom 1.0 (with RFC 4685
//! `thr:in-reply-to`), RSS 2.0, JSON Feed 1.1, JF2, the webmention.io-compatible API shape, and
//! the static export. The HTTP routes and `backfeed export` share every function here, so a
//! site build gets the same bytes whichever way it pulls.
//!
//! XML is written with quick-xml's writer, never glued from strings; text that came from a
//! source is stripped of characters XML cannot carry, and escaped by the writer. Entry ids are
//! `tag:` URIs built from the site's host, a fixed date and a hash of (source, post match key):
//! they never change for a pair, whatever its title, author or redirect does.

use crate::model::{Mention, MentionType, match_key};
use crate::store::PostRef;
use crate::store::{MentionFilter, Store};
use crate::text::html_escape;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Cursor;

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

/// The site's names every feed's metadata is built from.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub title: &'a str,
    /// The blog's home page (`[site] base_url`); its host is the `tag:` authority of every id.
    pub home_url: &'a str,
    /// Where backfeed is reached (`[server] public_url`), ending in `/`.
    pub public_url: &'a str,
}

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

/// Characters XML 1.0 cannot carry, removed (a hostile title must not break the feed).
fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

fn verb(t: MentionType) -> &'static str {
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
fn entry_date(m: &Mention) -> &str {
    m.published.as_deref().unwrap_or(&m.first_seen)
}

fn rfc2822(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc2822()
                .replace("+0000", "GMT")
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// Post titles and atom ids for the targets of a set of mentions.
pub struct PostInfo {
    pub titles: std::collections::HashMap<String, (Option<String>, Option<String>)>,
}

impl PostInfo {
    /// The posts of `mentions`' targets, read in one query. A store error leaves titles out
    /// (entries then name the target URL) and is logged.
    pub fn load(store: &Store, mentions: &[Mention]) -> PostInfo {
        let mut keys: Vec<String> = mentions
            .iter()
            .filter_map(|m| match_key(&m.target))
            .collect();
        keys.sort();
        keys.dedup();
        let posts: std::collections::HashMap<String, PostRef> = store
            .posts_by_match_keys(&keys)
            .inspect_err(|e| tracing::warn!(error = %e, "post titles not read"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let titles = mentions
            .iter()
            .map(|m| {
                let post = match_key(&m.target).and_then(|k| posts.get(&k));
                (
                    m.target.clone(),
                    post.map(|p| (p.title.clone(), p.atom_id.clone()))
                        .unwrap_or_default(),
                )
            })
            .collect();
        PostInfo { titles }
    }

    fn title(&self, target: &str) -> Option<&str> {
        self.titles.get(target).and_then(|(t, _)| t.as_deref())
    }

    fn atom_id<'a>(&'a self, target: &'a str) -> &'a str {
        self.titles
            .get(target)
            .and_then(|(_, a)| a.as_deref())
            .unwrap_or(target)
    }
}

type XmlResult = std::io::Result<()>;

fn text_el(w: &mut Writer<Cursor<Vec<u8>>>, name: &str, text: &str) -> XmlResult {
    w.create_element(name)
        .write_text_content(BytesText::new(&xml_safe(text)))?;
    Ok(())
}

/// Atom 1.0, newest first.
pub fn atom(meta: &FeedMeta, mentions: &[Mention], posts: &PostInfo) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 1);
    let updated = mentions
        .iter()
        .map(|m| m.updated_at.as_str())
        .max()
        .unwrap_or("2026-01-01T00:00:00Z");
    let write = |w: &mut Writer<Cursor<Vec<u8>>>| -> XmlResult {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        w.create_element("feed")
            .with_attribute(("xmlns", "http://www.w3.org/2005/Atom"))
            .with_attribute(("xmlns:thr", "http://purl.org/syndication/thread/1.0"))
            .write_inner_content(|w| {
                text_el(w, "id", &meta.feed_id())?;
                text_el(w, "title", &meta.title)?;
                text_el(w, "updated", updated)?;
                w.create_element("link")
                    .with_attribute(("rel", "self"))
                    .with_attribute(("type", "application/atom+xml"))
                    .with_attribute(("href", meta.self_url.as_str()))
                    .write_empty()?;
                w.create_element("link")
                    .with_attribute(("rel", "alternate"))
                    .with_attribute(("href", meta.home_url.as_str()))
                    .write_empty()?;
                w.create_element("generator")
                    .write_text_content(BytesText::new("backfeed"))?;
                for m in mentions {
                    atom_entry(w, meta, m, posts)?;
                }
                Ok(())
            })?;
        Ok(())
    };
    write(&mut w).expect("writing to memory cannot fail");
    w.into_inner().into_inner()
}

fn atom_entry(
    w: &mut Writer<Cursor<Vec<u8>>>,
    meta: &FeedMeta,
    m: &Mention,
    posts: &PostInfo,
) -> XmlResult {
    w.create_element("entry").write_inner_content(|w| {
        text_el(w, "id", &entry_id(&meta.id_host, m))?;
        text_el(w, "title", &entry_title(m, posts.title(&m.target)))?;
        text_el(w, "updated", &m.updated_at)?;
        if let Some(p) = &m.published {
            text_el(w, "published", p)?;
        }
        w.create_element("author").write_inner_content(|w| {
            let name = m
                .author
                .name
                .clone()
                .or_else(|| crate::model::host_of(&m.source))
                .unwrap_or_default();
            text_el(w, "name", &name)?;
            if let Some(u) = &m.author.url {
                text_el(w, "uri", u)?;
            }
            Ok(())
        })?;
        w.create_element("link")
            .with_attribute(("rel", "alternate"))
            .with_attribute(("type", "text/html"))
            .with_attribute(("href", xml_safe(&m.source).as_str()))
            .write_empty()?;
        w.create_element("link")
            .with_attribute(("rel", "related"))
            .with_attribute(("href", m.target.as_str()))
            .write_empty()?;
        w.create_element("thr:in-reply-to")
            .with_attribute(("ref", posts.atom_id(&m.target)))
            .with_attribute(("href", m.target.as_str()))
            .with_attribute(("type", "text/html"))
            .write_empty()?;
        w.create_element("category")
            .with_attribute(("term", m.mention_type.as_str()))
            .with_attribute(("scheme", "https://backfeed.invalid/type"))
            .write_empty()?;
        if let Some(ex) = &m.excerpt {
            text_el(w, "summary", ex)?;
        }
        if let Some(html) = &m.content_html {
            w.create_element("content")
                .with_attribute(("type", "html"))
                .write_text_content(BytesText::new(&xml_safe(html)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// RSS 2.0, newest first.
pub fn rss(meta: &FeedMeta, mentions: &[Mention], posts: &PostInfo) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 1);
    let write = |w: &mut Writer<Cursor<Vec<u8>>>| -> XmlResult {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        w.create_element("rss")
            .with_attribute(("version", "2.0"))
            .with_attribute(("xmlns:atom", "http://www.w3.org/2005/Atom"))
            .with_attribute(("xmlns:dc", "http://purl.org/dc/elements/1.1/"))
            .write_inner_content(|w| {
                w.create_element("channel").write_inner_content(|w| {
                    text_el(w, "title", &meta.title)?;
                    text_el(w, "link", &meta.home_url)?;
                    text_el(w, "description", &format!("Mentions of {}", meta.home_url))?;
                    w.create_element("atom:link")
                        .with_attribute(("rel", "self"))
                        .with_attribute(("type", "application/rss+xml"))
                        .with_attribute(("href", meta.self_url.as_str()))
                        .write_empty()?;
                    if let Some(m) = mentions
                        .iter()
                        .max_by(|a, b| a.updated_at.cmp(&b.updated_at))
                    {
                        text_el(w, "lastBuildDate", &rfc2822(&m.updated_at))?;
                    }
                    for m in mentions {
                        w.create_element("item").write_inner_content(|w| {
                            text_el(w, "title", &entry_title(m, posts.title(&m.target)))?;
                            text_el(w, "link", &m.source)?;
                            w.create_element("guid")
                                .with_attribute(("isPermaLink", "false"))
                                .write_text_content(BytesText::new(&entry_id(&meta.id_host, m)))?;
                            text_el(w, "pubDate", &rfc2822(entry_date(m)))?;
                            if let Some(name) = &m.author.name {
                                text_el(w, "dc:creator", name)?;
                            }
                            text_el(w, "category", m.mention_type.as_str())?;
                            let description = match (&m.content_html, &m.excerpt) {
                                (Some(html), _) => html.clone(),
                                (None, Some(ex)) => html_escape(ex),
                                (None, None) => html_escape(&m.source),
                            };
                            text_el(w, "description", &description)?;
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    };
    write(&mut w).expect("writing to memory cannot fail");
    w.into_inner().into_inner()
}

/// JSON Feed 1.1, newest first.
pub fn json_feed(meta: &FeedMeta, mentions: &[Mention], posts: &PostInfo) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Feed<'a> {
        version: &'static str,
        title: &'a str,
        home_page_url: &'a str,
        feed_url: &'a str,
        items: Vec<Item<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Item<'a> {
        id: String,
        url: &'a str,
        external_url: &'a str,
        title: String,
        date_published: &'a str,
        date_modified: &'a str,
        authors: [ItemAuthor<'a>; 1],
        tags: [&'static str; 1],
        #[serde(skip_serializing_if = "Option::is_none")]
        content_html: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<&'a str>,
        _backfeed: Extension<'a>,
    }
    #[derive(serde::Serialize)]
    struct ItemAuthor<'a> {
        name: Option<&'a str>,
        url: Option<&'a str>,
        avatar: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Extension<'a> {
        #[serde(rename = "type")]
        mention_type: &'static str,
        kind: &'static str,
        target: &'a str,
        source: &'a str,
    }
    let items = mentions
        .iter()
        .map(|m| Item {
            id: entry_id(&meta.id_host, m),
            url: &m.source,
            external_url: &m.target,
            title: entry_title(m, posts.title(&m.target)),
            date_published: entry_date(m),
            date_modified: &m.updated_at,
            authors: [ItemAuthor {
                name: m.author.name.as_deref(),
                url: m.author.url.as_deref(),
                avatar: m.author.photo.as_deref(),
            }],
            tags: [m.mention_type.as_str()],
            // JSON Feed needs content_html or content_text.
            content_html: m.content_html.as_deref(),
            content_text: m
                .content_html
                .is_none()
                .then(|| m.excerpt.as_deref().unwrap_or(&m.source)),
            summary: m.excerpt.as_deref(),
            _backfeed: Extension {
                mention_type: m.mention_type.as_str(),
                kind: m.kind.as_str(),
                target: &m.target,
                source: &m.source,
            },
        })
        .collect();
    json_bytes(&Feed {
        version: "https://jsonfeed.org/version/1.1",
        title: &meta.title,
        home_page_url: &meta.home_url,
        feed_url: &meta.self_url,
        items,
    })
}

/// Pretty JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026`: the same value to
/// any JSON parser, but JSON pasted into an HTML page can never open a tag. (Outside strings,
/// JSON never contains these characters, so replacing them everywhere is exact.)
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let text = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for byte in text {
        match byte {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            other => out.push(other),
        }
    }
    out
}

/// One mention as webmention.io's JF2 API shows it.
pub fn jf2_entry(m: &Mention) -> Value {
    let property = m.mention_type.wm_property();
    let received = m.verified_at.as_deref().unwrap_or(&m.first_seen);
    let mut entry = json!({
        "type": "entry",
        "author": {"type": "card", "name": m.author.name, "photo": m.author.photo, "url": m.author.url},
        "url": m.final_url.as_deref().unwrap_or(&m.source),
        "published": m.published,
        "wm-received": received,
        "wm-id": m.id,
        "wm-source": m.source,
        "wm-target": m.target,
        "wm-protocol": m.kind.as_str(),
        "wm-property": property,
        "wm-private": false,
    });
    entry[property] = json!(m.target);
    let text = m.excerpt.clone().or_else(|| {
        m.content_html
            .as_ref()
            .map(|h| crate::text::collapse(&crate::verify::html_text(h)))
    });
    if text.is_some() || m.content_html.is_some() {
        let html = m
            .content_html
            .clone()
            .unwrap_or_else(|| html_escape(text.as_deref().unwrap_or("")));
        entry["content"] = json!({"text": text.unwrap_or_default(), "html": html});
    }
    if let Some(title) = &m.title {
        entry["name"] = json!(title);
    }
    entry
}

/// A JF2 feed (`{"type": "feed", "children": [...]}`).
pub fn jf2_feed(name: &str, mentions: &[Mention]) -> Vec<u8> {
    let feed = json!({"type": "feed", "name": name, "children": mentions.iter().map(jf2_entry).collect::<Vec<_>>()});
    json_bytes(&feed)
}

/// `{"count": N, "type": {"mention": n, ...}}` for `/api/count.json`.
pub fn count_json(by_type: &[(String, i64)]) -> Vec<u8> {
    let total: i64 = by_type.iter().map(|(_, n)| n).sum();
    let types: serde_json::Map<String, Value> =
        by_type.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
    json_bytes(&json!({"count": total, "type": types}))
}

/// Published mentions, optionally for one target, newest first, at most `limit`.
pub fn published(
    store: &Store,
    target: Option<&str>,
    limit: i64,
) -> rusqlite::Result<Vec<Mention>> {
    let filter = MentionFilter {
        status: Some(crate::model::Status::Verified),
        target_keys: target.and_then(match_key).into_iter().collect(),
        limit: Some(limit),
        ..Default::default()
    };
    store.mentions(&filter)
}

/// Most bytes of stored text (content, excerpt, title, names, URLs) one response carries.
/// Each mention holds at most 32 KiB of content, so a page of 50 always fits; a page of 1,000
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
        match self {
            Format::Atom => atom(meta, mentions, posts),
            Format::Rss => rss(meta, mentions, posts),
            Format::JsonFeed => json_feed(meta, mentions, posts),
            Format::Jf2 => jf2_feed(&meta.title, mentions),
        }
    }
}

/// What `backfeed export` wrote.
#[derive(Debug, Default, serde::Serialize)]
pub struct ExportSummary {
    pub files: usize,
    pub posts: usize,
    pub mentions: usize,
}

/// Writes the site-wide feeds, per-post JF2 and Atom files and `index.json` under `dir`.
/// Files are written to a temporary name and renamed, so a site build never reads half a file.
pub fn export(
    store: &Store,
    site: Site<'_>,
    dir: &std::path::Path,
) -> Result<ExportSummary, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("posts"))?;
    let mut summary = ExportSummary::default();
    let mut write = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        summary.files += 1;
        Ok(())
    };
    let all = published(store, None, i64::MAX)?;
    let posts = PostInfo::load(store, &all);
    let site_meta = |format: &str| FeedMeta::new(site, &format!("mentions.{format}"), None);
    write(
        "mentions.atom",
        &Format::Atom.render(&site_meta("atom"), &all, &posts),
    )?;
    write(
        "mentions.rss",
        &Format::Rss.render(&site_meta("rss"), &all, &posts),
    )?;
    write(
        "mentions.json",
        &Format::JsonFeed.render(&site_meta("json"), &all, &posts),
    )?;
    write(
        "mentions.jf2.json",
        &Format::Jf2.render(&site_meta("jf2"), &all, &posts),
    )?;

    let mut index = serde_json::Map::new();
    for post in store.list_posts()? {
        let key_match = match_key(&post.url).unwrap_or_default();
        let mine: Vec<Mention> = all
            .iter()
            .filter(|m| match_key(&m.target).as_deref() == Some(&key_match))
            .cloned()
            .collect();
        let meta = FeedMeta::new(
            site,
            "mentions.atom",
            Some((&post.url, post.title.as_deref())),
        );
        write(
            &format!("posts/{}.json", post.key),
            &jf2_feed(&meta.title, &mine),
        )?;
        write(
            &format!("posts/{}.atom", post.key),
            &atom(&meta, &mine, &posts),
        )?;
        let mut types = serde_json::Map::new();
        for m in &mine {
            let n = types.entry(m.mention_type.as_str()).or_insert(json!(0));
            *n = json!(n.as_i64().unwrap_or(0) + 1);
        }
        index.insert(
            post.url.clone(),
            json!({"key": post.key, "title": post.title, "json": format!("posts/{}.json", post.key),
                   "atom": format!("posts/{}.atom", post.key), "count": mine.len(), "type": types}),
        );
        summary.posts += 1;
    }
    summary.mentions = all.len();
    write("index.json", &json_bytes(&Value::Object(index)))?;
    Ok(summary)
}
