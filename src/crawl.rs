//! The producers that look for links nobody pinged us about, run by `crawl` and the schedule:
//! the site's own feeds and sitemaps (what the posts are), watched feeds and pages, and the web
//! server's referrer logs.
//!
//! Producers only make candidates; the pipeline verifies them. What they remember between runs
//! lives in the store: validators and health per fetched URL (`fetch_state`), a fingerprint per
//! feed item (so an unchanged item is never looked at twice), and the inode and offset of each
//! access log (so a log line is read once, across rotations).

use crate::fetch::{Fetched, Request, Trust};
use crate::model::OrLog;
use crate::model::{Kind, match_key, now_rfc3339};
use crate::pipeline::{Context, Hint, Processed};
use crate::store::FetchState;
use crate::verify::Page;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use url::Url;

/// What one crawl did, for the summary line.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub posts: usize,
    pub found: usize,
    pub verified: usize,
    pub rejected: usize,
    pub unchanged: usize,
    pub errors: usize,
}

impl Summary {
    /// Adds the outcomes of processed jobs.
    pub fn add_processed(&mut self, processed: &[Processed]) {
        for p in processed {
            match p.outcome.word() {
                "verified" => self.verified += 1,
                "unchanged" => self.unchanged += 1,
                "transient" => self.errors += 1,
                _ => self.rejected += 1,
            }
        }
    }

    pub fn line(&self) -> String {
        format!(
            "posts {} · found {} · verified {} · rejected {} · unchanged {} · errors {}",
            self.posts, self.found, self.verified, self.rejected, self.unchanged, self.errors
        )
    }
}

/// A fetch of an operator-configured URL that remembers validators and health. `Ok(None)`
/// means "not modified" or "not due yet (backing off)".
async fn fetch_configured(ctx: &Context, url: &Url, summary: &mut Summary) -> Option<Fetched> {
    let key = url.as_str();
    let mut state = ctx.store.fetch_state(key).unwrap_or_default();
    if let Some(next) = &state.next_try
        && next.as_str() > now_rfc3339().as_str()
    {
        tracing::debug!(url = key, next_try = %next, "not due yet");
        return None;
    }
    let mut req = Request::get(url.clone(), Trust::Configured);
    req.accept = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, text/html;q=0.8, */*;q=0.1";
    req.etag = state.etag.clone();
    req.last_modified = state.last_modified.clone();
    let result = ctx.fetcher.fetch(&req).await;
    let outcome = match result {
        Ok(f) if f.status == 304 => {
            summary.unchanged += 1;
            record_health(&mut state, None, f.max_age);
            None
        }
        Ok(f) if (200..300).contains(&f.status) => {
            state.etag = f.etag.clone();
            state.last_modified = f.last_modified.clone();
            record_health(&mut state, None, f.max_age);
            Some(f)
        }
        Ok(f) => {
            summary.errors += 1;
            let wait = f.retry_after;
            record_health(&mut state, Some(format!("HTTP {}", f.status)), wait);
            None
        }
        Err(e) => {
            summary.errors += 1;
            record_health(&mut state, Some(e.to_string()), None);
            None
        }
    };
    if let Some(err) = &state.last_error
        && state.error_count > 0
    {
        tracing::warn!(url = key, errors = state.error_count, error = %err, "watched URL failing");
    }
    if let Err(e) = ctx.store.put_fetch_state(key, &state) {
        tracing::error!(error = %e, "cannot save fetch state");
    }
    outcome
}

/// Health bookkeeping: errors back off exponentially (or as the server asked); a success may
/// ask us (max-age) not to come back too soon.
fn record_health(state: &mut FetchState, error: Option<String>, wait_secs: Option<u64>) {
    let now = chrono::Utc::now();
    match error {
        None => {
            state.error_count = 0;
            state.last_error = None;
            state.last_ok = Some(now_rfc3339());
            state.next_try = wait_secs.filter(|s| *s > 0).map(|s| {
                (now + chrono::Duration::seconds(s.min(86_400) as i64))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
        }
        Some(e) => {
            state.error_count += 1;
            state.last_error = Some(e);
            let backoff = wait_secs
                .unwrap_or_else(|| 60 * (1 << state.error_count.clamp(0, 10)) as u64)
                .min(86_400);
            state.next_try = Some(
                (now + chrono::Duration::seconds(backoff as i64))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
    }
}

fn entry_link(entry: &feed_rs::model::Entry) -> Option<String> {
    entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or_else(|| entry.links.first())
        .map(|l| l.href.clone())
        .or_else(|| entry.id.starts_with("http").then(|| entry.id.clone()))
}

/// Parses RSS, Atom or JSON Feed from raw bytes (so the declared encoding is used), resolving
/// relative links against the feed's URL and `xml:base`.
fn parse_feed(fetched: &Fetched) -> Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError> {
    feed_rs::parser::Builder::new()
        .base_uri(Some(fetched.final_url.as_str()))
        .sanitize_content(false)
        .build()
        .parse(fetched.body.as_slice())
}

fn looks_like_feed(f: &Fetched) -> bool {
    let ct = f.content_type.as_deref().unwrap_or("").to_ascii_lowercase();
    if ct.contains("rss") || ct.contains("atom") || ct.contains("feed+json") || ct.contains("/xml")
    {
        return true;
    }
    if ct.contains("html") {
        return false;
    }
    let head = String::from_utf8_lossy(&f.body[..f.body.len().min(512)]).to_ascii_lowercase();
    head.contains("<rss")
        || head.contains("<feed")
        || head.contains("<rdf:rdf")
        || head.contains("jsonfeed.org")
}

/// Refreshes the site's own posts from `[site] feeds` and `sitemaps`. Returns how many posts
/// the sources listed.
pub async fn refresh_posts(ctx: &Context, summary: &mut Summary) -> usize {
    let mut listed = 0;
    for feed_url in &ctx.cfg.site.feeds {
        let Some(fetched) = fetch_configured(ctx, feed_url, summary).await else {
            continue;
        };
        let feed = match parse_feed(&fetched) {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(url = %feed_url, error = %e, "site feed does not parse");
                summary.errors += 1;
                continue;
            }
        };
        for entry in &feed.entries {
            let Some(link) = entry_link(entry) else {
                continue;
            };
            let Ok(url) = fetched.final_url.join(&link) else {
                continue;
            };
            if !ctx.cfg.is_under_site(&url) {
                continue;
            }
            let Some(key) = match_key(url.as_str()) else {
                continue;
            };
            let title = entry
                .title
                .as_ref()
                .map(|t| crate::text::collapse(&t.content));
            let published = entry
                .published
                .or(entry.updated)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let atom_id = (!entry.id.is_empty()).then_some(entry.id.as_str());
            match ctx.store.upsert_post(
                url.as_str(),
                &key,
                title.as_deref(),
                published.as_deref(),
                atom_id,
            ) {
                Ok(_) => listed += 1,
                Err(e) => tracing::error!(error = %e, "cannot store post"),
            }
        }
    }
    let mut sitemaps: Vec<Url> = ctx.cfg.site.sitemaps.clone();
    let mut seen = 0;
    while let Some(sitemap) = sitemaps.pop() {
        seen += 1;
        if seen > 50 {
            break;
        }
        let Some(fetched) = fetch_configured(ctx, &sitemap, summary).await else {
            continue;
        };
        let (pages, nested) = sitemap_locs(&fetched.body);
        sitemaps.extend(nested.iter().filter_map(|u| Url::parse(u).ok()));
        for page in pages {
            let Ok(url) = Url::parse(&page) else { continue };
            if !ctx.cfg.is_under_site(&url)
                || match_key(url.as_str()) == match_key(ctx.cfg.site.base_url.as_str())
            {
                continue;
            }
            if let Some(key) = match_key(url.as_str())
                && ctx
                    .store
                    .upsert_post(url.as_str(), &key, None, None, None)
                    .is_ok()
            {
                listed += 1;
            }
        }
    }
    summary.posts = ctx.store.list_posts().map(|p| p.len()).unwrap_or(0);
    listed
}

/// `<loc>`s of a sitemap: (pages of a `<urlset>`, sitemaps of a `<sitemapindex>`).
pub fn sitemap_locs(body: &[u8]) -> (Vec<String>, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let (mut pages, mut nested) = (Vec::new(), Vec::new());
    let mut in_loc = false;
    let mut is_index = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_string();
                if name == "sitemapindex" {
                    is_index = true;
                }
                in_loc = name == "loc";
            }
            Ok(Event::Text(t)) if in_loc => {
                let loc = t.xml10_content().trim().to_string();
                if is_index {
                    nested.push(loc)
                } else {
                    pages.push(loc)
                }
            }
            Ok(Event::End(_)) => in_loc = false,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    (pages, nested)
}

/// Match keys of every known post → its URL.
fn post_index(ctx: &Context) -> HashMap<String, String> {
    ctx.store
        .list_posts()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((match_key(&p.url)?, p.url)))
        .collect()
}

async fn submit_candidate(
    ctx: &Context,
    source: &str,
    post: &str,
    kind: Kind,
    hint: Option<&Hint>,
    summary: &mut Summary,
) {
    match ctx.submit(source, post, kind, hint).await {
        Ok((enqueued, _)) if enqueued.new => summary.found += 1,
        Ok(_) => {}
        Err(r) => tracing::info!(source, target = post, reason = %r.reason(), "candidate refused"),
    }
}

/// Polls every `[[watch]]` URL once.
pub async fn poll_watches(ctx: &Context, summary: &mut Summary) {
    if ctx.cfg.watch.is_empty() {
        return;
    }
    let posts = post_index(ctx);
    for watch in &ctx.cfg.watch {
        let Ok(url) = Url::parse(&watch.url) else {
            continue;
        };
        let Some(fetched) = fetch_configured(ctx, &url, summary).await else {
            continue;
        };
        let as_feed = match watch.kind.as_deref() {
            Some("feed") => true,
            Some(_) => false,
            None => looks_like_feed(&fetched),
        };
        if as_feed {
            poll_feed(ctx, &url, fetched, &posts, summary).await;
        } else {
            let source = fetched.final_url.to_string();
            let linked = linked_posts_of_page(fetched, &posts).await;
            // Pages change for many reasons; only a change in which posts they link to is news.
            let fingerprint = hex::encode(Sha256::digest(linked.join("\n").as_bytes()));
            let seen = ctx.store.seen_fingerprint(url.as_str(), "").ok().flatten();
            if seen.as_deref() == Some(fingerprint.as_str()) {
                continue;
            }
            for post in &linked {
                submit_candidate(ctx, &source, post, Kind::Page, None, summary).await;
            }
            ctx.store
                .set_seen_fingerprint(url.as_str(), "", &fingerprint)
                .or_log("crawl state not kept");
        }
    }
}

/// The known posts an HTML page or fragment links to, each once. (The parsed tree is not
/// `Send`, so it lives only inside this function, never across an await.)
fn linked_posts(html: &str, base: &Url, posts: &HashMap<String, String>) -> Vec<String> {
    let Ok(page) = Page::parse(html, base) else {
        return Vec::new();
    };
    let mut linked: Vec<String> = page
        .link_urls()
        .iter()
        .filter_map(|u| posts.get(&match_key(u.as_str())?).cloned())
        .collect();
    linked.sort();
    linked.dedup();
    linked
}

/// One item of a watched feed, read off the async threads.
struct FeedItem {
    permalink: Url,
    /// Its id in the feed, and what it looked like (an unchanged item is skipped).
    item_key: String,
    fingerprint: String,
    html: String,
    base: Url,
    /// Known posts its feed content links to.
    linked: Vec<String>,
}

/// Parses a watched feed and reads each item's links: CPU work, done on the blocking pool.
fn read_feed_items(
    fetched: &Fetched,
    posts: &HashMap<String, String>,
) -> Result<Vec<FeedItem>, feed_rs::parser::ParseFeedError> {
    let feed = parse_feed(fetched)?;
    let feed_base = root_xml_base(&fetched.body).and_then(|b| fetched.final_url.join(&b).ok());
    let mut items = Vec::new();
    for entry in &feed.entries {
        let Some(link) = entry_link(entry) else {
            continue;
        };
        let Ok(permalink) = fetched.final_url.join(&link) else {
            continue;
        };
        let html = entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .into_iter()
            .chain(entry.summary.as_ref().map(|s| s.content.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        let fingerprint = hex::encode(Sha256::digest(
            format!("{}\n{}\n{html}", entry.id, permalink).as_bytes(),
        ));
        let item_key = if entry.id.is_empty() {
            permalink.to_string()
        } else {
            entry.id.clone()
        };
        // Relative links in content resolve against the xml:base in scope: the content
        // element's own (feed-rs keeps it raw), else the feed's, else the permalink.
        let base = match (&feed_base, entry.base.as_deref()) {
            (Some(feed_base), Some(own)) => feed_base.join(own).ok(),
            (None, Some(own)) => fetched.final_url.join(own).ok(),
            (Some(feed_base), None) => Some(feed_base.clone()),
            (None, None) => None,
        }
        .unwrap_or_else(|| permalink.clone());
        let linked = linked_posts(&html, &base, posts);
        items.push(FeedItem {
            permalink,
            item_key,
            fingerprint,
            html,
            base,
            linked,
        });
    }
    Ok(items)
}

async fn poll_feed(
    ctx: &Context,
    feed_url: &Url,
    fetched: Fetched,
    posts: &HashMap<String, String>,
    summary: &mut Summary,
) {
    let read = {
        let posts = posts.clone();
        tokio::task::spawn_blocking(move || read_feed_items(&fetched, &posts)).await
    };
    let items = match read {
        Ok(Ok(items)) => items,
        Ok(Err(e)) => {
            tracing::warn!(url = %feed_url, error = %e, "watched feed does not parse");
            summary.errors += 1;
            return;
        }
        Err(e) => {
            tracing::error!(url = %feed_url, error = %e, "reading a watched feed failed");
            summary.errors += 1;
            return;
        }
    };
    for item in items {
        let seen = ctx
            .store
            .seen_fingerprint(feed_url.as_str(), &item.item_key)
            .ok()
            .flatten();
        if seen.as_deref() == Some(item.fingerprint.as_str()) {
            continue;
        }
        let mut linked = item.linked;
        // A summary-only feed (WordPress's "Summary" setting, most news sites) shows no links:
        // the article does. Its page is read once per new or changed item; an item whose feed
        // content already links to a post is not fetched.
        if linked.is_empty() && !ctx.cfg.is_under_site(&item.permalink) {
            match linked_from_page(ctx, &item.permalink, posts).await {
                Some(from_page) => linked = from_page,
                None => continue, // not readable now: the next crawl tries again
            }
        }
        let hint = Hint {
            evidence_html: Some(with_base(&item.html, &item.base)),
            ..Default::default()
        };
        for post in linked {
            if match_key(item.permalink.as_str()) == match_key(&post) {
                continue;
            }
            submit_candidate(
                ctx,
                item.permalink.as_str(),
                &post,
                Kind::Feed,
                Some(&hint),
                summary,
            )
            .await;
        }
        ctx.store
            .set_seen_fingerprint(feed_url.as_str(), &item.item_key, &item.fingerprint)
            .or_log("crawl state not kept");
    }
}

/// The posts a feed item's own page links to; `None` when the page could not be read now (a
/// transient failure), so that the item is looked at again on the next crawl.
async fn linked_from_page(
    ctx: &Context,
    page: &Url,
    posts: &HashMap<String, String>,
) -> Option<Vec<String>> {
    let fetched = match ctx
        .fetcher
        .fetch(&Request::get(page.clone(), Trust::Outside))
        .await
    {
        Ok(f) if (200..300).contains(&f.status) => f,
        Ok(f) if f.status == 429 || f.status >= 500 => return None,
        Ok(_) => return Some(Vec::new()),
        Err(e) if e.is_transient() => return None,
        Err(e) => {
            tracing::info!(url = %page, error = %e, "feed item page refused");
            return Some(Vec::new());
        }
    };
    Some(linked_posts_of_page(fetched, posts).await)
}

/// The known posts a fetched page links to, read on the blocking pool.
async fn linked_posts_of_page(fetched: Fetched, posts: &HashMap<String, String>) -> Vec<String> {
    let posts = posts.clone();
    tokio::task::spawn_blocking(move || {
        let html = crate::fetch::decode_text(&fetched.body, fetched.content_type.as_deref());
        linked_posts(&html, &fetched.final_url, &posts)
    })
    .await
    .unwrap_or_default()
}

/// The `xml:base` attribute of a feed's root element, if any.
fn root_xml_base(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) => {
                let attr = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == "xml:base")?;
                return attr
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned());
            }
            Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// The fragment with a `<base href>` in front, so its relative links resolve the same wherever
/// the evidence is parsed later.
fn with_base(html: &str, base: &Url) -> String {
    format!(
        "<base href=\"{}\">{html}",
        crate::text::html_escape(base.as_str())
    )
}

/// Search engines, whose referrers are never mentions.
const SEARCH_ENGINES: &[&str] = &[
    "google.",
    "bing.com",
    "duckduckgo.com",
    "search.yahoo.",
    "yandex.",
    "baidu.com",
    "ecosia.org",
    "startpage.com",
    "qwant.com",
    "search.brave.com",
    "kagi.com",
];

/// One parsed line of a combined-format access log.
#[derive(Debug, PartialEq)]
pub struct LogLine {
    pub path: String,
    pub status: u16,
    pub referer: String,
}

/// Parses `host ident user [date] "METHOD path PROTO" status size "referer" "agent"`.
pub fn parse_combined(line: &str) -> Option<LogLine> {
    let after_date = &line[line.find("] \"")? + 3..];
    let (request, rest) = after_date.split_once('"')?;
    let mut parts = request.split_whitespace();
    let _method = parts.next()?;
    let path = parts.next()?.to_string();
    let mut rest = rest.trim_start().splitn(3, ' ');
    let status = rest.next()?.parse().ok()?;
    let _size = rest.next()?;
    let quoted = rest.next()?.trim_start().strip_prefix('"')?;
    let referer = quoted.split_once('"')?.0.to_string();
    Some(LogLine {
        path,
        status,
        referer,
    })
}

/// Reads new lines of every `[refback] access_logs` file; Referers pointing at posts from
/// outside become candidates. Returns (lines read, unparseable lines).
pub async fn poll_refback(ctx: &Context, summary: &mut Summary) -> (usize, usize) {
    if ctx.cfg.refback.access_logs.is_empty() {
        return (0, 0);
    }
    let posts = post_index(ctx);
    let site_host = ctx
        .cfg
        .site
        .base_url
        .host_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    let (mut read, mut bad) = (0, 0);
    for path in &ctx.cfg.refback.access_logs {
        let lines = match read_new_lines(ctx, path) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(log = %path.display(), error = %e, "cannot read access log");
                summary.errors += 1;
                continue;
            }
        };
        let mut candidates: Vec<(String, String)> = Vec::new();
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            read += 1;
            let Some(entry) = parse_combined(line) else {
                bad += 1;
                continue;
            };
            if !(200..400).contains(&entry.status)
                || entry.referer == "-"
                || entry.referer.is_empty()
            {
                continue;
            }
            let Ok(referer) = Url::parse(&entry.referer) else {
                continue;
            };
            let Some(host) = referer.host_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            if host == site_host || SEARCH_ENGINES.iter().any(|s| host.contains(s)) {
                continue;
            }
            let Ok(requested) = ctx.cfg.site.base_url.join(&entry.path) else {
                continue;
            };
            let Some(post) = match_key(requested.as_str()).and_then(|k| posts.get(&k)) else {
                continue;
            };
            let pair = (referer.to_string(), post.clone());
            if !candidates.contains(&pair) {
                candidates.push(pair);
            }
        }
        for (source, post) in candidates {
            submit_candidate(ctx, &source, &post, Kind::Refback, None, summary).await;
        }
    }
    if bad > 0 {
        tracing::info!(lines = read, unparseable = bad, "access log lines skipped");
    }
    (read, bad)
}

/// The complete lines appended since the last read, following rotation (a new inode or a
/// shorter file starts from the top).
fn read_new_lines(ctx: &Context, path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let key = path.display().to_string();
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let (inode, size) = (meta.ino(), meta.len());
    let offset = ctx
        .store
        .log_offset(&key)
        .ok()
        .flatten()
        .filter(|(i, o)| *i == inode && *o <= size)
        .map_or(0, |(_, o)| o);
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(64 * 1024 * 1024).read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(complete);
    ctx.store
        .set_log_offset(&key, inode, offset + complete as u64)
        .or_log("crawl state not kept");
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// One full cycle: own posts, every producer, then every due candidate.
pub async fn crawl(ctx: &Arc<Context>, progress: &mut (dyn FnMut(&Processed) + Send)) -> Summary {
    let mut summary = Summary::default();
    refresh_posts(ctx, &mut summary).await;
    poll_watches(ctx, &mut summary).await;
    poll_refback(ctx, &mut summary).await;
    crate::social::poll_all(ctx, &mut summary).await;
    let processed = crate::pipeline::drain(ctx, |p| progress(p)).await;
    summary.add_processed(&processed);
    summary
}

/// Re-checks every stored mention (conditionally), then exits.
pub async fn reverify(
    ctx: &Arc<Context>,
    spread_secs: i64,
    progress: &mut (dyn FnMut(&Processed) + Send),
) -> Summary {
    let mut summary = Summary::default();
    if let Err(e) = ctx.store.enqueue_reverify(spread_secs) {
        tracing::error!(error = %e, "cannot queue re-verification");
        summary.errors += 1;
        return summary;
    }
    let processed = crate::pipeline::drain(ctx, |p| progress(p)).await;
    summary.add_processed(&processed);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_log_lines_parse() {
        let line = r#"203.0.113.9 - - [27/Nov/2026:10:00:00 +0000] "GET /2024/hello/ HTTP/1.1" 200 5120 "https://friend.example/links" "Mozilla/5.0 (X11)""#;
        assert_eq!(
            parse_combined(line),
            Some(LogLine {
                path: "/2024/hello/".into(),
                status: 200,
                referer: "https://friend.example/links".into()
            })
        );
        assert_eq!(parse_combined("garbage"), None);
        assert_eq!(
            parse_combined(r#"1.2.3.4 - - [x] "GET" 200 1 "-" "-""#),
            None
        );
    }

    #[test]
    fn sitemap_and_index_locs() {
        let (pages, nested) =
            sitemap_locs(b"<urlset><url><loc> https://b.example/a </loc></url></urlset>");
        assert_eq!(
            (pages, nested),
            (vec!["https://b.example/a".to_string()], vec![])
        );
        let (pages, nested) = sitemap_locs(
            b"<sitemapindex><sitemap><loc>https://b.example/s.xml</loc></sitemap></sitemapindex>",
        );
        assert_eq!(
            (pages, nested),
            (vec![], vec!["https://b.example/s.xml".to_string()])
        );
    }
}
