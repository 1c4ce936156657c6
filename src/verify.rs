//! Pure functions over fetched text: does this page link to the post, and what does it say?
//!
//! The page is parsed once (html5ever through scraper) and the one tree serves the link check,
//! the microformats reading, the excerpt and the sanitizer's input. Comments, `<script>` and
//! `<style>` never count: the HTML parser makes comments comment nodes and script/style bodies
//! raw text, so an `<a>` inside them is never an element and is never seen.
//!
//! What is read, in order of trust: the h-entry that contains the link (microformats2: type,
//! name, content, summary, published, author h-card), then page metadata (`<title>`, `rel=author`,
//! `<meta name=author>`, Open Graph, `article:published_time`), then the host name. Titles,
//! names and excerpts are plain text; content is HTML cleaned by ammonia. Escaping for each output
//! format is the publisher's job.

use crate::model::{Author, Extracted, MentionType, Outcome, match_key_of};
use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};
use std::sync::LazyLock;
use url::Url;

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("static selector parses")
}

static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| selector("title"));
static META: LazyLock<Selector> = LazyLock::new(|| selector("meta"));
static REL_AUTHOR: LazyLock<Selector> =
    LazyLock::new(|| selector("a[rel~=author][href], link[rel~=author][href]"));

/// Characters of plain text kept on each side of the link in an excerpt.
const EXCERPT_SIDE: usize = 100;
/// The longest excerpt taken from an h-entry's summary or content.
const EXCERPT_MAX: usize = 300;
const TITLE_MAX: usize = 200;

/// A parsed page and the URL relative links resolve against.
pub struct Page {
    doc: Html,
    base: Url,
    page_url: Url,
}

impl Page {
    /// Parses `html` fetched from `page_url` (the final URL after redirects).
    pub fn parse(html: &str, page_url: &Url) -> Page {
        let doc = Html::parse_document(html);
        let base = doc
            .select(&BASE)
            .next()
            .and_then(|b| b.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .unwrap_or_else(|| page_url.clone());
        Page {
            doc,
            base,
            page_url: page_url.clone(),
        }
    }

    /// Resolves an attribute value against the document's base.
    fn resolve(&self, raw: &str) -> Option<Url> {
        self.base.join(raw.trim()).ok()
    }

    /// Every link in the page (`a`, `area` hrefs; `img`, `video`, `audio`, `source` srcs) as
    /// written, in document order, with the element it came from.
    fn raw_links(&self) -> impl Iterator<Item = (ElementRef<'_>, &str)> + '_ {
        self.doc
            .root_element()
            .descendants()
            .filter_map(ElementRef::wrap)
            .filter_map(|el| {
                let attr = match el.value().name() {
                    "a" | "area" => "href",
                    "img" | "video" | "audio" | "source" => "src",
                    _ => return None,
                };
                Some((el, el.value().attr(attr)?))
            })
    }

    /// [`Page::raw_links`], resolved against the base.
    fn links(&self) -> impl Iterator<Item = (ElementRef<'_>, Url)> + '_ {
        self.raw_links()
            .filter_map(|(el, raw)| Some((el, self.resolve(raw)?)))
    }

    /// All distinct http(s) links in the page, for crawling watched pages.
    pub fn link_urls(&self) -> Vec<Url> {
        let mut seen = std::collections::HashSet::new();
        self.links()
            .filter(|(el, _)| matches!(el.value().name(), "a" | "area"))
            .map(|(_, u)| u)
            .filter(|u| matches!(u.scheme(), "http" | "https") && seen.insert(u.to_string()))
            .collect()
    }

    /// The page's `<title>` (or Open Graph title) as plain text.
    pub fn title(&self) -> Option<String> {
        self.doc
            .select(&TITLE)
            .next()
            .map(|t| collapse(&t.text().collect::<String>()))
            .filter(|t| !t.is_empty())
            .or_else(|| self.meta(&["og:title", "twitter:title"]))
            .map(|t| truncate(&t, TITLE_MAX))
    }

    /// `<meta http-equiv="Status" content="410 Gone">` marks a deleted page (webmention.rocks).
    fn says_gone(&self) -> bool {
        self.doc.select(&META).any(|m| {
            m.value()
                .attr("http-equiv")
                .is_some_and(|h| h.eq_ignore_ascii_case("status"))
                && m.value()
                    .attr("content")
                    .is_some_and(|c| c.trim_start().starts_with("410"))
        })
    }

    fn meta(&self, names: &[&str]) -> Option<String> {
        self.doc
            .select(&META)
            .find_map(|m| {
                let key = m
                    .value()
                    .attr("name")
                    .or_else(|| m.value().attr("property"))?;
                names
                    .iter()
                    .any(|n| key.eq_ignore_ascii_case(n))
                    .then(|| m.value().attr("content"))
                    .flatten()
            })
            .map(collapse)
            .filter(|s| !s.is_empty())
    }
}

/// Checks whether the page links to the post whose match keys are `target_keys`, and reads
/// what it says about it.
pub fn verify_page(page: &Page, target_keys: &[String]) -> Outcome {
    if page.says_gone() {
        return Outcome::Gone("page says 410 Gone in <meta http-equiv=Status>".into());
    }
    let matches = |u: &Url| match_key_of(u).is_some_and(|k| target_keys.contains(&k));
    // Resolving every href is most of the cost after parsing, and most links point elsewhere:
    // skip, exactly, the ones that cannot reach a target host before resolving them.
    let hosts: Vec<String> = target_keys
        .iter()
        .map(|k| {
            k.split(['/', ':', '?'])
                .next()
                .unwrap_or(k)
                .to_ascii_lowercase()
        })
        .collect();
    let base_on_target = page
        .base
        .host_str()
        .is_some_and(|h| hosts.iter().any(|t| t.eq_ignore_ascii_case(h)));
    let could_match = |raw: &str| {
        let raw = raw.trim_start();
        let has_scheme = raw.find(':').is_some_and(|i| {
            raw[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && i > 0
        }) || raw.starts_with("//");
        if !has_scheme {
            return base_on_target;
        }
        if !raw.is_ascii() || raw.contains('%') {
            return true; // IDN or escaped hosts: let the URL parser decide
        }
        let lower = raw.to_ascii_lowercase();
        hosts.iter().any(|h| lower.contains(h.as_str()))
    };
    let found = page
        .raw_links()
        .filter(|(_, raw)| could_match(raw))
        .find_map(|(el, raw)| page.resolve(raw).filter(|u| matches(u)).map(|_| el));
    let Some(link) = found else {
        return Outcome::NoLink(format!("no link to the post in {}", page.page_url));
    };
    Outcome::Verified(Box::new(extract(page, link, &matches)))
}

/// Convenience for tests and benches: parse and verify in one call.
pub fn verify_html(html: &str, page_url: &Url, target_keys: &[String]) -> Outcome {
    verify_page(&Page::parse(html, page_url), target_keys)
}

fn extract(page: &Page, link: ElementRef<'_>, is_target: &dyn Fn(&Url) -> bool) -> Extracted {
    let entry = link
        .ancestors()
        .filter_map(ElementRef::wrap)
        .find(|e| has_class(e, "h-entry"));
    let props = entry.map(|e| read_item(page, e)).unwrap_or_default();

    let mention_type = [
        (&props.repost_of, MentionType::Repost),
        (&props.like_of, MentionType::Like),
        (&props.bookmark_of, MentionType::Bookmark),
        (&props.in_reply_to, MentionType::Reply),
    ]
    .into_iter()
    .find(|(urls, _)| urls.iter().any(is_target))
    .map_or(MentionType::Mention, |(_, t)| t);

    let title = props
        .name
        .clone()
        .filter(|_| props.explicit_name)
        .map(|t| truncate(&t, TITLE_MAX))
        .or_else(|| page.title());

    let mut author = props.author.clone().unwrap_or_default();
    if author.url.is_none() {
        author.url = page
            .doc
            .select(&REL_AUTHOR)
            .next()
            .and_then(|a| a.value().attr("href"))
            .and_then(|h| page.resolve(h))
            .map(String::from);
    }
    if author.name.is_none() {
        author.name = page
            .meta(&["author", "article:author", "og:site_name"])
            .filter(|n| !n.starts_with("http"));
    }
    if author.name.is_none() {
        author.name = page.page_url.host_str().map(str::to_string);
    }

    let published = props
        .published
        .as_deref()
        .and_then(normalize_date)
        .or_else(|| {
            page.meta(&["article:published_time", "date", "dc.date"])
                .as_deref()
                .and_then(normalize_date)
        });

    let excerpt = props
        .summary
        .clone()
        .or_else(|| {
            props
                .content
                .as_ref()
                .map(|(_, text)| text.clone())
                .filter(|t| t.chars().count() <= EXCERPT_MAX)
        })
        .map(|s| truncate(&s, EXCERPT_MAX))
        .or_else(|| excerpt_around(page, link));

    let content_html = props
        .content
        .as_ref()
        .map(|(html, _)| sanitize(html, &page.base))
        .filter(|h| !h.trim().is_empty());

    Extracted {
        mention_type: Some(mention_type),
        title,
        author,
        published,
        excerpt,
        content_html,
    }
}

/// The microformats2 properties we read from an h-entry (and its nested h-card author).
#[derive(Default, Debug)]
struct Item {
    name: Option<String>,
    explicit_name: bool,
    summary: Option<String>,
    content: Option<(String, String)>,
    published: Option<String>,
    url: Option<Url>,
    photo: Option<Url>,
    author: Option<Author>,
    in_reply_to: Vec<Url>,
    like_of: Vec<Url>,
    repost_of: Vec<Url>,
    bookmark_of: Vec<Url>,
}

fn class_tokens<'a>(el: &'a ElementRef<'_>) -> impl Iterator<Item = &'a str> {
    el.value()
        .attr("class")
        .unwrap_or("")
        .split_ascii_whitespace()
}

fn has_class(el: &ElementRef<'_>, class: &str) -> bool {
    class_tokens(el).any(|c| c == class)
}

fn is_root_class(c: &str) -> bool {
    c.strip_prefix("h-").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    })
}

/// Reads the properties of the microformat rooted at `root`, without descending into nested
/// microformats (except to take a nested one as a property value, e.g. `p-author h-card`).
fn read_item(page: &Page, root: ElementRef<'_>) -> Item {
    let mut item = Item::default();
    let mut stack: Vec<ElementRef<'_>> =
        root.children().filter_map(ElementRef::wrap).rev().collect();
    while let Some(el) = stack.pop() {
        let nested = class_tokens(&el).any(is_root_class);
        for class in class_tokens(&el) {
            let Some((prefix, prop)) = class.split_once('-') else {
                continue;
            };
            if !matches!(prefix, "p" | "u" | "dt" | "e") {
                continue;
            }
            apply_property(page, &mut item, prefix, prop, el, nested);
        }
        if !nested {
            stack.extend(el.children().filter_map(ElementRef::wrap).rev());
        }
    }
    // Implied properties (mf2 parsing spec), for the h-card case mostly.
    if item.name.is_none() {
        item.name = implied_name(&root);
    }
    if item.url.is_none() {
        item.url = implied_attr(&root, &["a", "area"], "href").and_then(|h| page.resolve(&h));
    }
    if item.photo.is_none() {
        item.photo = implied_attr(&root, &["img"], "src").and_then(|s| page.resolve(&s));
    }
    item
}

fn apply_property(
    page: &Page,
    item: &mut Item,
    prefix: &str,
    prop: &str,
    el: ElementRef<'_>,
    nested: bool,
) {
    if prop == "author" {
        if nested && has_class(&el, "h-card") {
            let card = read_item(page, el);
            item.author = Some(Author {
                name: card.name.map(|n| truncate(&n, TITLE_MAX)),
                url: card.url.map(String::from),
                photo: card.photo.map(String::from),
            });
        } else if item.author.is_none() {
            let url = (prefix == "u").then(|| url_value(page, el)).flatten();
            let name = collapse(&el.text().collect::<String>());
            item.author = Some(Author {
                name: (!name.is_empty() && url.as_ref().is_none_or(|u| u.as_str() != name))
                    .then_some(name),
                url: url.map(String::from),
                photo: None,
            });
        }
        return;
    }
    let url = || {
        if nested {
            // An h-cite as in-reply-to: its u-url, else the first link inside.
            let inner = read_item(page, el);
            inner.url.or_else(|| url_value(page, el))
        } else {
            url_value(page, el)
        }
    };
    match (prefix, prop) {
        (_, "in-reply-to") => item.in_reply_to.extend(url()),
        (_, "like-of") => item.like_of.extend(url()),
        (_, "repost-of") => item.repost_of.extend(url()),
        (_, "bookmark-of") => item.bookmark_of.extend(url()),
        ("u", "url") if item.url.is_none() => item.url = url(),
        ("u", "photo") if item.photo.is_none() => item.photo = url(),
        ("p", "name") if item.name.is_none() => {
            item.name = Some(collapse(&text_value(el)));
            item.explicit_name = true;
        }
        ("p", "summary") if item.summary.is_none() => {
            item.summary = Some(collapse(&text_value(el)))
        }
        ("e", "content") if item.content.is_none() => {
            item.content = Some((el.inner_html(), collapse(&visible_text(*el))));
        }
        ("dt", "published") if item.published.is_none() => item.published = Some(date_value(el)),
        _ => {}
    }
}

/// `u-*` value: href/src/data attributes by element, else the text.
fn url_value(page: &Page, el: ElementRef<'_>) -> Option<Url> {
    let v = el.value();
    let raw = match v.name() {
        "a" | "area" | "link" => v.attr("href"),
        "img" | "audio" | "video" | "source" | "iframe" => v.attr("src"),
        "object" => v.attr("data"),
        _ => None,
    }
    .map(str::to_string)
    .unwrap_or_else(|| text_value(el));
    page.resolve(&raw)
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// `p-*` value: `value`/`title`/`alt` where the parsing spec says, else the text.
fn text_value(el: ElementRef<'_>) -> String {
    let v = el.value();
    match v.name() {
        "abbr" | "link" if v.attr("title").is_some() => {
            v.attr("title").unwrap_or_default().to_string()
        }
        "data" | "input" if v.attr("value").is_some() => {
            v.attr("value").unwrap_or_default().to_string()
        }
        "img" | "area" if v.attr("alt").is_some() => v.attr("alt").unwrap_or_default().to_string(),
        _ => visible_text(*el),
    }
}

fn date_value(el: ElementRef<'_>) -> String {
    let v = el.value();
    match v.name() {
        "time" | "ins" | "del" if v.attr("datetime").is_some() => {
            v.attr("datetime").unwrap_or_default()
        }
        "abbr" if v.attr("title").is_some() => v.attr("title").unwrap_or_default(),
        "data" | "input" if v.attr("value").is_some() => v.attr("value").unwrap_or_default(),
        _ => return collapse(&el.text().collect::<String>()),
    }
    .trim()
    .to_string()
}

fn implied_name(root: &ElementRef<'_>) -> Option<String> {
    let v = root.value();
    if let Some(alt) = v.attr("alt").filter(|_| v.name() == "img") {
        return Some(alt.to_string());
    }
    let name = collapse(&visible_text(**root));
    (!name.is_empty()).then_some(name)
}

/// The implied url/photo: the root itself, or its only child of that kind.
fn implied_attr(root: &ElementRef<'_>, names: &[&str], attr: &str) -> Option<String> {
    if names.contains(&root.value().name()) {
        return root.value().attr(attr).map(str::to_string);
    }
    fn only<'a>(el: &ElementRef<'a>) -> Option<ElementRef<'a>> {
        let mut kids = el.children().filter_map(ElementRef::wrap);
        let first = kids.next()?;
        kids.next().is_none().then_some(first)
    }
    let mut candidates = vec![];
    for child in root
        .children()
        .filter_map(ElementRef::wrap)
        .filter(|c| names.contains(&c.value().name()))
    {
        candidates.push(child);
    }
    if candidates.len() == 1 && !class_tokens(&candidates[0]).any(is_root_class) {
        return candidates[0].value().attr(attr).map(str::to_string);
    }
    let child = only(root)?;
    if class_tokens(&child).any(is_root_class) {
        return None;
    }
    let grand = only(&child).filter(|g| names.contains(&g.value().name()))?;
    grand.value().attr(attr).map(str::to_string)
}

fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "noscript" | "template" | "head" | "title"
    )
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "pre"
            | "table"
            | "tr"
            | "td"
            | "th"
            | "article"
            | "section"
            | "header"
            | "footer"
            | "aside"
            | "nav"
            | "main"
            | "figure"
            | "figcaption"
            | "hr"
            | "body"
    )
}

/// Text of a subtree as a reader sees it: hidden elements skipped, blocks separated.
fn visible_text(node: NodeRef<'_, Node>) -> String {
    let mut out = Flat::default();
    out.walk(node, None);
    out.text
}

/// A flattening of the document's text with whitespace collapsed as it is built, remembering
/// where one element (the link) starts and ends.
#[derive(Default)]
struct Flat {
    text: String,
    mark: Option<(usize, usize)>,
}

impl Flat {
    fn push_text(&mut self, s: &str) {
        for ch in s.chars() {
            if ch.is_whitespace() {
                if !self.text.is_empty() && !self.text.ends_with(' ') {
                    self.text.push(' ');
                }
            } else {
                self.text.push(ch);
            }
        }
    }

    fn walk(&mut self, root: NodeRef<'_, Node>, marked: Option<ego_tree::NodeId>) {
        let mut skipping: Option<ego_tree::NodeId> = None;
        let mut start = 0;
        for edge in root.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skipping.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(t) => self.push_text(t),
                        Node::Element(e) if is_hidden(e.name()) && node.id() != root.id() => {
                            skipping = Some(node.id())
                        }
                        Node::Element(e) if is_block(e.name()) => self.push_text(" "),
                        _ => {}
                    }
                    if Some(node.id()) == marked {
                        start = self.text.len();
                    }
                }
                Edge::Close(node) => {
                    if skipping == Some(node.id()) {
                        skipping = None;
                        continue;
                    }
                    if skipping.is_some() {
                        continue;
                    }
                    if Some(node.id()) == marked {
                        self.mark = Some((start, self.text.len()));
                    }
                    if let Node::Element(e) = node.value()
                        && is_block(e.name())
                    {
                        self.push_text(" ");
                    }
                }
            }
        }
    }
}

/// WordPress-style excerpt: about [`EXCERPT_SIDE`] characters of plain text on each side of
/// the link, cut at word boundaries, `[…]` where cut.
fn excerpt_around(page: &Page, link: ElementRef<'_>) -> Option<String> {
    let body = page.doc.root_element();
    let mut flat = Flat::default();
    flat.walk(*body, Some(link.id()));
    let (start, end) = flat.mark?;
    let text = &flat.text;
    let before = &text[..start];
    let after = &text[end..];
    let link_text = text[start..end].trim();

    let before_cut = before.chars().count() > EXCERPT_SIDE;
    let before = if before_cut {
        let tail: String = before
            .chars()
            .rev()
            .take(EXCERPT_SIDE)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        match tail.find(' ') {
            Some(i) => tail[i + 1..].to_string(),
            None => tail,
        }
    } else {
        before.to_string()
    };
    let after_cut = after.chars().count() > EXCERPT_SIDE;
    let after = if after_cut {
        let head: String = after.chars().take(EXCERPT_SIDE).collect();
        match head.rfind(' ') {
            Some(i) if i > 0 => head[..i].to_string(),
            _ => head,
        }
    } else {
        after.to_string()
    };
    let mut out = String::new();
    if before_cut {
        out.push_str("[…] ");
    }
    out.push_str(before.trim_start());
    out.push_str(link_text);
    out.push_str(after.trim_end());
    if after_cut {
        out.push_str(" […]");
    }
    let out = collapse(&out);
    (!out.is_empty()).then_some(out)
}

/// Cleans untrusted HTML for republishing: formatting and links kept, links made absolute and
/// `rel="nofollow ugc"`; scripts, styles, event handlers, iframes, `javascript:`/`data:` URLs gone.
pub fn sanitize(html: &str, base: &Url) -> String {
    ammonia::Builder::default()
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("nofollow ugc"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(html)
        .to_string()
        .trim()
        .to_string()
}

/// Plain text made tidy: control characters dropped, whitespace collapsed, ends trimmed.
pub fn collapse(s: &str) -> String {
    s.split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, cut at a word where possible, with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    let cut = head
        .rfind(' ')
        .filter(|&i| i > max / 2)
        .map_or(head.as_str(), |i| &head[..i]);
    format!("{}…", cut.trim_end())
}

/// A date in one of the forms pages use, as RFC 3339 (UTC `Z` when the page gave no zone).
pub fn normalize_date(raw: &str) -> Option<String> {
    let s = raw.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(
            d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                .replace("+00:00", "Z"),
        );
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%z",
    ] {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, fmt) {
            return Some(
                d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                    .replace("+00:00", "Z"),
            );
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(
                d.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(
            d.and_hms_opt(0, 0, 0)?
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    chrono::DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec!["blog.example/2024/hello".to_string()]
    }

    fn page_url() -> Url {
        Url::parse("https://alice.example/posts/7").unwrap()
    }

    fn verified(html: &str) -> Extracted {
        match verify_html(html, &page_url(), &keys()) {
            Outcome::Verified(x) => *x,
            other => panic!("expected verified, got {other:?}"),
        }
    }

    #[test]
    fn links_in_comments_scripts_and_styles_do_not_count() {
        let html = r#"<html><head><style>a[href="https://blog.example/2024/hello"]{}</style>
            <script>document.write('<a href="https://blog.example/2024/hello">x</a>')</script></head>
            <body><!-- <a href="https://blog.example/2024/hello">old</a> --><p>nothing</p></body></html>"#;
        assert!(matches!(
            verify_html(html, &page_url(), &keys()),
            Outcome::NoLink(_)
        ));
    }

    #[test]
    fn relative_links_resolve_against_base_href() {
        let html = r#"<head><base href="https://blog.example/2024/"></head><body><a href="hello/">it</a></body>"#;
        verified(html);
        let wrong = r#"<body><a href="hello/">it</a></body>"#;
        assert!(matches!(
            verify_html(wrong, &page_url(), &keys()),
            Outcome::NoLink(_)
        ));
    }

    #[test]
    fn excerpt_is_wordpress_style() {
        let long = "word ".repeat(60);
        let html = format!(
            r#"<title> Alice &amp; co </title><p>{long} read <a href="http://blog.example/2024/hello">Bob's post</a> now. {long}</p>"#
        );
        let x = verified(&html);
        let ex = x.excerpt.unwrap();
        assert!(ex.starts_with("[…] word"), "{ex}");
        assert!(ex.ends_with("word […]"), "{ex}");
        assert!(ex.contains("read Bob's post now."), "{ex}");
        assert!(ex.chars().count() < 240, "{ex}");
        assert_eq!(x.title.as_deref(), Some("Alice & co"));
        assert_eq!(x.mention_type, Some(MentionType::Mention));
        assert_eq!(x.author.name.as_deref(), Some("alice.example"));
    }

    #[test]
    fn h_entry_reply_with_author_card_and_sanitized_content() {
        let html = r#"<div class="h-entry"><a class="u-in-reply-to" href="https://blog.example/2024/hello">re</a>
            <a class="p-author h-card" href="/"><img src="/me.jpg" alt="">Alice</a>
            <time class="dt-published" datetime="2024-05-01T10:00:00+02:00">May 1</time>
            <div class="e-content">Nice <b onclick="x()">post</b><script>evil()</script><a href="javascript:alert(1)">j</a></div></div>"#;
        let x = verified(html);
        assert_eq!(x.mention_type, Some(MentionType::Reply));
        assert_eq!(x.author.name.as_deref(), Some("Alice"));
        assert_eq!(x.author.url.as_deref(), Some("https://alice.example/"));
        assert_eq!(
            x.author.photo.as_deref(),
            Some("https://alice.example/me.jpg")
        );
        assert_eq!(x.published.as_deref(), Some("2024-05-01T10:00:00+02:00"));
        let content = x.content_html.unwrap();
        assert!(content.contains("<b>post</b>"), "{content}");
        assert!(
            !content.contains("onclick")
                && !content.contains("script")
                && !content.contains("javascript"),
            "{content}"
        );
    }

    #[test]
    fn a_reply_to_someone_else_is_a_mention() {
        let html = r#"<div class="h-entry"><a class="u-in-reply-to" href="https://other.example/">re</a>
            <p class="e-content">see <a href="https://blog.example/2024/hello">this</a></p></div>"#;
        assert_eq!(verified(html).mention_type, Some(MentionType::Mention));
    }

    #[test]
    fn the_href_prefilter_never_hides_a_real_link() {
        for href in [
            "HTTPS://BLOG.EXAMPLE/2024/hello",
            "//blog.example/2024/hello/",
            "  https://blog.example/2024/hello?utm_source=x",
            "https://blog.example:443/2024/%68ello",
        ] {
            verified(&format!("<a href=\"{href}\">x</a>"));
        }
        // A page on the post's own host may link relatively.
        let own = Url::parse("https://blog.example/2024/other/").unwrap();
        assert!(matches!(
            verify_html("<a href=\"../hello/\">x</a>", &own, &keys()),
            Outcome::Verified(_)
        ));
        assert!(matches!(
            verify_html("<a href=\"../hello/\">x</a>", &page_url(), &keys()),
            Outcome::NoLink(_)
        ));
    }

    #[test]
    fn meta_status_410_means_gone() {
        let html = r#"<meta http-equiv="Status" content="410 Gone"><a href="https://blog.example/2024/hello">x</a>"#;
        assert!(matches!(
            verify_html(html, &page_url(), &keys()),
            Outcome::Gone(_)
        ));
    }

    #[test]
    fn dates_normalize_to_rfc3339() {
        assert_eq!(
            normalize_date("2024-05-01").as_deref(),
            Some("2024-05-01T00:00:00Z")
        );
        assert_eq!(
            normalize_date("2024-05-01 10:00:00").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            normalize_date("2024-05-01T10:00:00.000Z").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(normalize_date("yesterday"), None);
    }
}
