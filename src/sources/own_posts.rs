//! The bloggers' own posts, learned on every crawl from each site's feeds (RSS, Atom, JSON
//! Feed) and sitemaps, with their titles and publication dates.

use crate::config::SiteConfig;
use crate::model::{OrLog, match_key};
use crate::pipeline::Context;
use crate::store::ListedPost;
use url::Url;

use super::{Summary, entry_link, fetch_configured, parse_feed};

/// Refreshes every site's own posts from its `feeds` and `sitemaps`. Returns how many posts
/// the sources listed.
pub async fn refresh_posts(ctx: &Context, summary: &mut Summary) -> usize {
    let sites = ctx.sites();
    // A few sites at a time: a host of a thousand sites waits on their feeds side by side
    // (each fetch still within `[fetch]`'s limits), not one after another.
    let mut listed = 0;
    for group in sites.list.chunks(SITES_AT_ONCE) {
        let runs: Vec<_> = group.iter().map(|site| refresh_alone(ctx, site)).collect();
        for (n, own) in futures_util::future::join_all(runs).await {
            listed += n;
            summary.errors += own.errors;
            summary.failing += own.failing;
            summary.unchanged += own.unchanged;
        }
    }
    summary.posts = ctx.store.list_posts().map(|p| p.len()).unwrap_or(0);
    listed
}

/// Sites whose feeds and sitemaps one crawl reads at once.
const SITES_AT_ONCE: usize = 8;

/// Keeps the posts one feed or sitemap listed; how many.
fn keep_listed(ctx: &Context, batch: &[ListedPost]) -> usize {
    match ctx.store.upsert_listed_posts(batch) {
        Ok(keys) => keys.len(),
        Err(e) => {
            tracing::error!(error = %e, posts = batch.len(), "cannot store posts");
            0
        }
    }
}

/// [`refresh_site`] with a summary of its own (sites run side by side).
async fn refresh_alone(ctx: &Context, site: &SiteConfig) -> (usize, Summary) {
    let mut own = Summary::default();
    let listed = refresh_site(ctx, site, &mut own).await;
    (listed, own)
}

/// One site's posts, from its feeds and sitemaps (only URLs under it count).
async fn refresh_site(ctx: &Context, site: &SiteConfig, summary: &mut Summary) -> usize {
    let started = crate::store::now_millis();
    let under_site = |url: &Url| crate::sites::is_under(url, &site.base_url);
    // Whether every feed and sitemap was read whole now (not failing, not a 304).
    let mut read_all = true;
    let mut listed = 0;
    for feed_url in &site.feeds {
        let Some(fetched) = fetch_configured(ctx, feed_url, summary).await else {
            read_all = false;
            continue;
        };
        let feed = match parse_feed(&fetched) {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(url = %feed_url, error = %e, "site feed does not parse");
                summary.errors += 1;
                read_all = false;
                continue;
            }
        };
        let mut batch = Vec::with_capacity(feed.entries.len());
        for entry in &feed.entries {
            let Some(link) = entry_link(entry) else {
                continue;
            };
            let Ok(url) = fetched.final_url.join(&link) else {
                continue;
            };
            if !under_site(&url) {
                continue;
            }
            let Some(key) = match_key(url.as_str()) else {
                continue;
            };
            // What the feed says the post holds: the sender's fallback when the page has no
            // h-entry (the links of a post are those in its content, never its template).
            let content = entry
                .content
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .or(entry.summary.as_ref().map(|s| s.content.as_str()));
            batch.push(ListedPost {
                url: url.to_string(),
                match_key: key,
                title: entry
                    .title
                    .as_ref()
                    .map(|t| crate::text::collapse(&t.content)),
                published: entry
                    .published
                    .or(entry.updated)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                atom_id: Some(entry.id.clone()).filter(|id| !id.is_empty()),
                feed_content: content.map(|c| {
                    crate::verify::cut_html(c, crate::verify::CONTENT_MAX * 2).into_owned()
                }),
            });
        }
        listed += keep_listed(ctx, &batch);
    }
    let mut sitemaps: Vec<Url> = site.sitemaps.clone();
    let mut seen = 0;
    while let Some(sitemap) = sitemaps.pop() {
        seen += 1;
        if seen > 50 {
            read_all = false;
            break;
        }
        let Some(fetched) = fetch_configured(ctx, &sitemap, summary).await else {
            read_all = false;
            continue;
        };
        let (pages, nested) = sitemap_locs(&fetched.body);
        sitemaps.extend(nested.iter().filter_map(|u| Url::parse(u).ok()));
        let home = match_key(site.base_url.as_str());
        let batch: Vec<ListedPost> = pages
            .iter()
            .filter_map(|page| Url::parse(page).ok())
            .filter(|url| under_site(url))
            .filter_map(|url| {
                let key = match_key(url.as_str()).filter(|k| Some(k) != home.as_ref())?;
                Some(ListedPost {
                    url: url.to_string(),
                    match_key: key,
                    ..Default::default()
                })
            })
            .collect();
        listed += keep_listed(ctx, &batch);
    }
    read_own_profiles(ctx, site).await;
    // Every feed and sitemap read: what they did not list is no longer listed (sending tells a
    // deleted post by that and its 404). A listing with a failure says nothing of that.
    if read_all && listed > 0 {
        ctx.store
            .site_listing_complete(&site.name, &started)
            .or_log("site listing not kept");
    }
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

/// The blogger's accounts elsewhere, as the site's home page names them (`rel="me"`): kept so
/// that their own syndicated copies are not taken for mentions (with `[site] own_profiles`).
/// A home page that cannot be read now keeps what was read before, and is no crawl error
/// (it is not where posts are learned).
///
/// Read conditionally (its last ETag and Last-Modified, kept once its links were): a home page
/// that did not change answers 304 and costs no parse — a host of 1,000 sites reads 1,000 home
/// pages a crawl. Unlike the feeds, a failure here starts no back-off: the next crawl tries again.
async fn read_own_profiles(ctx: &Context, site: &SiteConfig) {
    let key = site.base_url.as_str();
    let mut state = ctx.store.fetch_state(key).unwrap_or_default();
    let mut request =
        crate::fetch::Request::get(site.base_url.clone(), crate::fetch::Trust::Configured);
    request.etag = state.etag.clone();
    request.last_modified = state.last_modified.clone();
    let fetched = match ctx.fetcher.fetch(&request).await {
        Ok(f) if (200..300).contains(&f.status) => f,
        _ => return, // 304: unchanged; else what was read before stays
    };
    (state.etag, state.last_modified) = (fetched.etag.clone(), fetched.last_modified.clone());
    let parsed = ctx
        .parse_pool
        .run(move || {
            let html = crate::fetch::decode_text(&fetched.body, fetched.content_type.as_deref());
            crate::verify::Page::parse(&html, &fetched.final_url)
                .ok()
                .map(|page| page.site_facts().rel_me)
        })
        .await;
    if let Ok(Some(rel_me)) = parsed {
        let urls: Vec<String> = rel_me.iter().map(Url::to_string).collect();
        // Its validators only once what it says is kept: a 304 then means "as kept".
        match ctx.store.set_site_profiles(&site.name, &urls) {
            Ok(()) => ctx
                .store
                .put_fetch_state(key, &state)
                .or_log("the home page's validators not kept"),
            Err(e) => tracing::warn!(error = %e, "the site's rel=me accounts not kept"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
