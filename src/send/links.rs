//! Which links of a post are pinged: those in its content — the `e-content` of the page's
//! h-entry; without one, the content the site's own feed gives the post; else the page's
//! `<article>` or `<main>` — never the template around it (navigation, header, footer,
//! sidebar, blogroll).

use crate::verify::html;
use scraper::{ElementRef, Selector};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use url::Url;

static ENTRY_CONTENT: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse(".h-entry .e-content").expect("static selector"));
static ARTICLE: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("article, main").expect("static selector"));

/// A post's content as the sender reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct PostContent {
    /// Distinct http(s) links, in document order, fragments kept as written.
    pub links: Vec<String>,
    /// Changes whenever the content does: an unchanged post is never pinged twice.
    pub fingerprint: String,
}

/// Reads the links of a post's page (`html` from `page_url`), falling back to `feed_content`.
/// `None` when neither says what the post's content is.
pub fn post_content(html: &str, page_url: &Url, feed_content: Option<&str>) -> Option<PostContent> {
    let doc = html::parse_document(html).ok()?;
    let base = crate::verify::mf2::document_base(&doc, page_url);
    if let Some(content) = doc.select(&ENTRY_CONTENT).next() {
        return Some(read(content, &base));
    }
    if let Some(feed) = feed_content.filter(|f| !f.trim().is_empty()) {
        let fragment = html::parse_fragment(feed).ok()?;
        return Some(read(fragment.root_element(), page_url));
    }
    doc.select(&ARTICLE).next().map(|el| read(el, &base))
}

fn read(content: ElementRef<'_>, base: &Url) -> PostContent {
    let mut links: Vec<String> = Vec::new();
    for a in content
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == "a")
    {
        let Some(url) = a
            .value()
            .attr("href")
            .and_then(|h| base.join(h.trim()).ok())
        else {
            continue;
        };
        if matches!(url.scheme(), "http" | "https") && !links.contains(&url.to_string()) {
            links.push(url.to_string());
        }
    }
    let mut serialized = String::new();
    html::write_inner_html(
        &mut serialized,
        content,
        html::Writing::Faithful(None),
        usize::MAX,
    );
    PostContent {
        links,
        fingerprint: hex::encode(Sha256::digest(serialized.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_content_is_read_never_the_template() {
        let page = Url::parse("https://blog.example/2024/post/").unwrap();
        let html = r#"<header><a href="https://nav.example/">nav</a></header>
            <article class="h-entry"><h1 class="p-name">T</h1>
            <div class="e-content"><p>See <a href="https://a.example/x">a</a>, <a href="/local">b</a>
            and <a href="https://a.example/x">a again</a>, <a href="mailto:x@y">mail</a>.</p></div>
            <footer><a href="https://share.example/">share</a></footer></article>
            <aside><a href="https://blogroll.example/">friend</a></aside>"#;
        let content = post_content(html, &page, None).unwrap();
        assert_eq!(
            content.links,
            ["https://a.example/x", "https://blog.example/local"]
        );
        // Without an h-entry: the feed's content, else <article>/<main>.
        let plain = r#"<nav><a href="https://nav.example/">n</a></nav><main><a href="https://m.example/">m</a></main>"#;
        assert_eq!(
            post_content(plain, &page, None).unwrap().links,
            ["https://m.example/"]
        );
        assert_eq!(
            post_content(plain, &page, Some(r#"<a href="https://f.example/">f</a>"#))
                .unwrap()
                .links,
            ["https://f.example/"]
        );
        assert_eq!(post_content("<p>nothing</p>", &page, None), None);
    }
}
