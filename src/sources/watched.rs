//! Watched feeds and pages (`[[watch]]`): polled with conditional GET; a feed item or a page is
//! looked at again only when it changed, and a summary-only item's own page is read once.

use crate::fetch::{Fetched, Request, Trust};
use crate::model::{Kind, OrLog, match_key};
use crate::pipeline::{Context, Hint};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use url::Url;

use super::{
    Summary, entry_link, fetch_configured, linked_posts, linked_posts_of_page, parse_feed,
    post_index, submit_candidate,
};

pub(crate) fn looks_like_feed(f: &Fetched) -> bool {
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

/// One item of a watched feed, read off the async threads.
pub(crate) struct FeedItem {
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
pub(crate) fn read_feed_items(
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

pub(crate) async fn poll_feed(
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
        if linked.is_empty() && !ctx.is_under_any_site(&item.permalink) {
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
pub(crate) async fn linked_from_page(
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

/// The `xml:base` attribute of a feed's root element, if any.
pub(crate) fn root_xml_base(body: &[u8]) -> Option<String> {
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
pub(crate) fn with_base(html: &str, base: &Url) -> String {
    format!(
        "<base href=\"{}\">{html}",
        crate::text::html_escape(base.as_str())
    )
}
