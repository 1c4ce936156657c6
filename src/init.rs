//! `backfeed init --site URL`: set-up in one step. Reads the site's home page (its feeds,
//! sitemaps, `rel=me` accounts and title), writes a commented configuration a new user can
//! read top to bottom, and prints the tags to paste and the next steps. It runs before there
//! is any configuration, so it touches no store.

use crate::config::FetchConfig;
use crate::fetch::{Fetcher, Request, Trust};
use crate::verify::{Page, SiteFacts};
use url::Url;

/// Reads `site`'s home page; what it says about the site.
pub async fn discover(site: &Url) -> Result<SiteFacts, String> {
    let fetcher = Fetcher::new(&FetchConfig::default());
    let page = fetcher
        .fetch(&Request::get(site.clone(), Trust::Configured))
        .await
        .map_err(|e| format!("cannot read {site}: {e}"))?;
    if !(200..300).contains(&page.status) {
        return Err(format!("{site} answered {}", page.status));
    }
    let html = crate::fetch::decode_text(&page.body, page.content_type.as_deref());
    let parsed = Page::parse(&html, &page.final_url)
        .map_err(|_| format!("{site}: the page is too large or too deeply nested to read"))?;
    Ok(parsed.site_facts())
}

/// The commented configuration for `site`, with what its home page said.
pub fn config_text(site: &Url, facts: &SiteFacts) -> String {
    let list = |urls: &[Url]| {
        urls.iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let title = facts
        .title
        .clone()
        .unwrap_or_else(|| site.host_str().unwrap_or("my blog").to_string())
        .replace('"', "'");
    let feeds_note = if facts.feeds.is_empty() {
        "# No feed was found on the home page: name your RSS, Atom or JSON feed here, or a\n# sitemap below, so that backfeed learns your posts.\n"
    } else {
        "# Found on your home page (<link rel=\"alternate\">): how backfeed learns your posts.\n"
    };
    format!(
        r#"# backfeed configuration, written by `backfeed init --site {site}`.
# Every key is explained in README.md; `backfeed --help` lists the commands.

[site]
# Your blog. Pings for pages under this address are yours.
base_url = "{site}"
{feeds_note}feeds = [{feeds}]
# Sitemaps list every post, old ones too (feeds usually list the latest).
sitemaps = [{sitemaps}]
title = "{title}"
# Your accounts elsewhere (rel="me" on your home page): your own copies of a post there are
# not mentions of it.
own_profiles = [{me}]

[store]
# One SQLite file; relative to this file.
path = "data/backfeed.db"

[server]
listen = "127.0.0.1:8080"
# The address others use to reach backfeed (behind HTTPS), e.g. https://mentions.{host}/.
public_url = "http://127.0.0.1:8080/"

[moderation]
# "auto" publishes what is verified; "queue" holds it for you to approve (/admin/).
mode = "auto"
"#,
        feeds = list(&facts.feeds),
        sitemaps = list(&facts.sitemaps),
        me = list(&facts.rel_me),
        host = site.host_str().unwrap_or("example"),
    )
}
