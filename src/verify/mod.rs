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
//! names and excerpts are plain text; content is HTML cleaned as it is written out of the parsed
//! tree (an allow-list, [`html::Writing::Clean`]) — one pass over a tree we already have, where
//! handing the HTML to ammonia meant parsing it twice more (its own parse, then a cut of its
//! output); content that arrives as a string (imports, social APIs) is parsed once and written
//! the same way ([`sanitize`]), so all stored content passes one allow-list. Tests hold the
//! allow-list to ammonia's: given our output, ammonia finds nothing to remove. Escaping for each
//! output format is the publisher's job.

pub mod html;
pub mod mf2;
pub mod pool;

use crate::model::{Author, Extracted, MentionType, Outcome, match_key, match_key_of};
use crate::text::{collapse, truncate};
use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use html::TooCostly;
use scraper::{ElementRef, Html, Node, Selector};
use std::sync::LazyLock;
use url::Url;

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("static selector parses")
}

static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| selector("title"));
static RELS: LazyLock<Selector> = LazyLock::new(|| selector("link[rel][href], a[rel][href]"));
static META: LazyLock<Selector> = LazyLock::new(|| selector("meta"));
static JSON_LD: LazyLock<Selector> =
    LazyLock::new(|| selector("script[type=\"application/ld+json\"]"));
static REL_ME: LazyLock<Selector> =
    LazyLock::new(|| selector("a[rel~=me][href], link[rel~=me][href]"));
static REL_AUTHOR: LazyLock<Selector> =
    LazyLock::new(|| selector("a[rel~=author][href], link[rel~=author][href]"));

static CANONICAL: LazyLock<Selector> = LazyLock::new(|| selector("link[rel~=canonical][href]"));
static POSTISH: LazyLock<Selector> = LazyLock::new(|| selector(".h-entry, article"));

/// See [`Page::post_facts`].
#[derive(Clone, Debug, Default)]
pub struct PostFacts {
    pub title: Option<String>,
    pub canonical: Option<String>,
    pub looks_like_post: bool,
}

/// Characters of plain text kept on each side of the link in an excerpt.
const EXCERPT_SIDE: usize = 100;
/// The longest excerpt taken from an h-entry's summary or content.
const EXCERPT_MAX: usize = 300;
const TITLE_MAX: usize = 200;

/// What a site's home page says about the site (see [`Page::site_facts`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteFacts {
    pub title: Option<String>,
    pub feeds: Vec<Url>,
    pub sitemaps: Vec<Url>,
    pub rel_me: Vec<Url>,
}

/// A parsed page and the URL relative links resolve against.
pub struct Page {
    doc: Html,
    base: Url,
    page_url: Url,
    /// The `<meta>` elements' (name or property, content), read on first use.
    metas: std::cell::OnceCell<Vec<(String, String)>>,
}

impl Page {
    /// Parses `html` fetched from `page_url` (the final URL after redirects), within the
    /// parser's work budget (see [`html`]).
    pub fn parse(html: &str, page_url: &Url) -> Result<Page, TooCostly> {
        Ok(Page::from_tree(html::parse_document(html)?, page_url))
    }

    /// A page over a tree already parsed.
    pub fn from_tree(doc: Html, page_url: &Url) -> Page {
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
            metas: std::cell::OnceCell::new(),
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

    /// What a site's home page says about the site, for `backfeed init`: its feeds (`<link
    /// rel="alternate">` of a feed type), sitemaps (`rel="sitemap"`), the author's accounts
    /// elsewhere (`rel="me"`), and its title.
    pub fn site_facts(&self) -> SiteFacts {
        let mut facts = SiteFacts {
            title: self.title(),
            ..SiteFacts::default()
        };
        for el in self.doc.select(&RELS) {
            let rels: Vec<String> = el
                .value()
                .attr("rel")
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            let Some(url) = el
                .value()
                .attr("href")
                .and_then(|h| self.resolve(h))
                .filter(|u| matches!(u.scheme(), "http" | "https"))
            else {
                continue;
            };
            let media = el.value().attr("type").unwrap_or("").to_ascii_lowercase();
            let list = if rels.iter().any(|r| r == "me") {
                &mut facts.rel_me
            } else if rels.iter().any(|r| r == "sitemap") {
                &mut facts.sitemaps
            } else if el.value().name() == "link"
                && rels.iter().any(|r| r == "alternate")
                && ["rss", "atom", "feed+json", "json"]
                    .iter()
                    .any(|t| media.contains(t))
            {
                &mut facts.feeds
            } else {
                continue;
            };
            if !list.contains(&url) {
                list.push(url);
            }
        }
        facts
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

    /// What the page says about itself as a post of its site: its title, its canonical URL
    /// (`rel=canonical`, else `og:url`), and whether it looks like a post at all (an h-entry,
    /// an `<article>`, or Open Graph type `article`).
    pub fn post_facts(&self) -> PostFacts {
        let canonical = self
            .doc
            .select(&CANONICAL)
            .next()
            .and_then(|l| l.value().attr("href"))
            .map(str::to_string)
            .or_else(|| self.meta(&["og:url"]))
            .and_then(|href| self.resolve(&href))
            .map(String::from);
        let looks_like_post = self.doc.select(&POSTISH).next().is_some()
            || self
                .meta(&["og:type"])
                .is_some_and(|t| t.eq_ignore_ascii_case("article"));
        PostFacts {
            title: self.title(),
            canonical,
            looks_like_post,
        }
    }

    /// JSON-LD objects in `<script type="application/ld+json">` (arrays and `@graph` flattened).
    fn json_ld(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for script in self.doc.select(&JSON_LD) {
            let text: String = script.text().collect();
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let mut stack = vec![value];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Array(items) => stack.extend(items),
                    serde_json::Value::Object(ref o) if o.contains_key("@graph") => {
                        stack.push(o["@graph"].clone())
                    }
                    other => out.push(other),
                }
            }
        }
        out
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
        // The document's `<meta>` elements are looked up once, however many names are asked.
        let metas = self.metas.get_or_init(|| {
            self.doc
                .select(&META)
                .filter_map(|m| {
                    let key = m
                        .value()
                        .attr("name")
                        .or_else(|| m.value().attr("property"))?;
                    Some((key.to_string(), m.value().attr("content")?.to_string()))
                })
                .collect()
        });
        metas
            .iter()
            .find(|(key, _)| names.iter().any(|n| key.eq_ignore_ascii_case(n)))
            .map(|(_, content)| content.as_str())
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
    let Some(link) = find_link(page, target_keys) else {
        return Outcome::NoLink(format!("no link to the post in {}", page.page_url));
    };
    let matches = |u: &Url| match_key_of(u).is_some_and(|k| target_keys.contains(&k));
    Outcome::Verified(Box::new(extract(page, link, &matches)))
}

/// The link check alone: the first element whose link, resolved, is one of the post's URLs.
pub fn find_link<'a>(page: &'a Page, target_keys: &[String]) -> Option<ElementRef<'a>> {
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
            i > 0
                && raw[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
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
    page.raw_links()
        .filter(|(_, raw)| could_match(raw))
        .find_map(|(el, raw)| page.resolve(raw).filter(|u| matches(u)).map(|_| el))
}

/// Parses and verifies a page; a page whose markup would cost the parser more than its
/// budget is refused.
pub fn verify_html(html: &str, page_url: &Url, target_keys: &[String]) -> Outcome {
    match Page::parse(html, page_url) {
        Ok(page) => verify_page(&page, target_keys),
        Err(e) => Outcome::Refused(format!("page not parsed: {e}")),
    }
}

fn extract(page: &Page, link: ElementRef<'_>, is_target: &dyn Fn(&Url) -> bool) -> Extracted {
    let entry = link
        .ancestors()
        .filter_map(ElementRef::wrap)
        .find(|e| has_class(e, "h-entry"));
    let props = entry.map(|e| entry_facts(page, e)).unwrap_or_default();

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
        .map(|t| truncate(&t, TITLE_MAX))
        .or_else(|| page.title());

    // Author: the entry's h-card; else a URL to resolve by the authorship algorithm (the
    // pipeline fetches that page), with page metadata and the host as the last resort.
    let mut author = props.author.clone().unwrap_or_default();
    if author.url.is_none() && author.name.is_none() {
        author.url = page
            .doc
            .select(&REL_AUTHOR)
            .next()
            .and_then(|a| a.value().attr("href"))
            .and_then(|h| page.resolve(h))
            .map(String::from);
    }
    let json_ld = page.json_ld();
    let fallback_author_name = page
        .meta(&["author", "article:author"])
        .filter(|n| !n.starts_with("http"))
        .or_else(|| json_ld.iter().find_map(json_ld_author))
        .or_else(|| page.meta(&["og:site_name"]))
        .or_else(|| page.page_url.host_str().map(str::to_string));
    if author.name.is_none() && author.url.is_none() {
        author.name = fallback_author_name.clone();
    }

    let published = props
        .published
        .as_deref()
        .and_then(normalize_date)
        .or_else(|| {
            page.meta(&["article:published_time", "date", "dc.date"])
                .as_deref()
                .and_then(normalize_date)
        })
        .or_else(|| {
            json_ld
                .iter()
                .find_map(|v| v["datePublished"].as_str().and_then(normalize_date))
        });

    // Cleaned as it is written out of the tree already parsed: one pass, no second parse.
    let content_html = props
        .content
        .as_ref()
        .map(|content| match content {
            Content::Element(node) => page
                .doc
                .tree
                .get(*node)
                .and_then(ElementRef::wrap)
                .map(|el| clean_inner_html(el, &page.base))
                .unwrap_or_default(),
            Content::Text(text) => escaped_within(text, CONTENT_MAX),
        })
        .filter(|h| !h.trim().is_empty());

    // The excerpt is plain text of what is published: the summary, else the sanitized
    // content when short, else the words around the link.
    // (Only read when it may serve: without a summary, and not for a long article, whose text
    // is longer than an excerpt anyway — its sanitized HTML need not be parsed a third time.)
    let short_content_text = || {
        content_html
            .as_deref()
            .filter(|h| h.len() <= 16 * EXCERPT_MAX)
            .map(|h| collapse(&html_text(h)))
            .filter(|t| !t.is_empty() && t.chars().count() <= EXCERPT_MAX)
    };
    let excerpt = props
        .summary
        .clone()
        .or_else(short_content_text)
        .map(|s| truncate(&s, EXCERPT_MAX))
        .or_else(|| excerpt_around(page, link));

    // Where else this reaction lives: the original a copy names (`u-url` other than this
    // page), and the copies an original names (`u-syndication`).
    let own_key = match_key_of(&page.page_url);
    let elsewhere = |urls: &[Url]| -> Vec<String> {
        urls.iter()
            .filter(|u| match_key_of(u) != own_key)
            .map(Url::to_string)
            .collect()
    };
    Extracted {
        mention_type: Some(mention_type),
        title,
        author,
        published,
        excerpt,
        content_html,
        fallback_author_name,
        final_url: None,
        originals: elsewhere(&props.url),
        copies: elsewhere(&props.syndication),
    }
}

fn json_ld_author(v: &serde_json::Value) -> Option<String> {
    let author = &v["author"];
    let first = if author.is_array() {
        &author[0]
    } else {
        author
    };
    first
        .as_str()
        .or_else(|| first["name"].as_str())
        .map(collapse)
        .filter(|n| !n.is_empty() && !n.starts_with("http"))
}

/// The representative h-card of a page (an author page, a home page): the h-card whose `uid`
/// and `url` are the page; else one whose `url` is a `rel=me` link of the page; else the only
/// h-card, if its `url` is the page.
pub fn representative_hcard(html: &str, page_url: &Url) -> Option<Author> {
    let doc = html::parse_document(html).ok()?;
    let base = mf2::document_base(&doc, page_url);
    let mut cards = Vec::new();
    let mut stack = mf2::parse_items(doc.root_element(), &base);
    while let Some(item) = stack.pop() {
        stack.extend(item.children.iter().cloned());
        if item.has_type("h-card") {
            cards.push(item);
        }
    }
    cards.reverse();
    let same = |a: Option<&str>, b: &str| a.and_then(match_key) == match_key(b);
    let page = page_url.as_str();
    let rel_me: Vec<String> = doc
        .select(&REL_ME)
        .filter_map(|a| a.value().attr("href"))
        .filter_map(|h| base.join(h).ok())
        .filter_map(|u| match_key(u.as_str()))
        .collect();
    let card = cards
        .iter()
        .find(|c| same(c.first("uid"), page) && same(c.first("url"), page))
        .or_else(|| {
            cards.iter().find(|c| {
                c.get("url")
                    .iter()
                    .any(|u| match_key(u.text()).is_some_and(|k| rel_me.contains(&k)))
            })
        })
        .or_else(|| (cards.len() == 1 && same(cards[0].first("url"), page)).then(|| &cards[0]))?;
    Some(card_author(card))
}

/// An h-card as an author: name (plain text), url, photo.
fn card_author(card: &mf2::Item) -> Author {
    Author {
        name: card
            .first("name")
            .map(collapse)
            .map(|n| truncate(&n, TITLE_MAX)),
        url: card.first("url").map(str::to_string),
        photo: card.first("photo").map(str::to_string),
    }
}

/// An entry's content as microformats found it.
#[derive(Debug)]
enum Content {
    Element(ego_tree::NodeId),
    Text(String),
}

/// The microformats2 facts we use from the h-entry that holds the link.
#[derive(Default, Debug)]
struct EntryFacts {
    /// A marked-up name (an article's title), not one implied from the text.
    name: Option<String>,
    summary: Option<String>,
    /// The e-content element, or the plain text of a p-content.
    content: Option<Content>,
    published: Option<String>,
    author: Option<Author>,
    in_reply_to: Vec<Url>,
    like_of: Vec<Url>,
    repost_of: Vec<Url>,
    bookmark_of: Vec<Url>,
    /// The entry's own URL(s) (`u-url`): a copy (Brid.gy's) names its original here.
    url: Vec<Url>,
    /// Where the entry was syndicated to (`u-syndication`): its copies.
    syndication: Vec<Url>,
}

fn has_class(el: &ElementRef<'_>, class: &str) -> bool {
    el.value()
        .attr("class")
        .unwrap_or("")
        .split_ascii_whitespace()
        .any(|c| c == class)
}

/// The h-entry properties a mention is made of (an explicit `name` only: an implied one is the
/// entry's whole text, no title).
const ENTRY_FACTS: &[&str] = &[
    "name",
    "summary",
    "content",
    "published",
    "author",
    "in-reply-to",
    "like-of",
    "repost-of",
    "bookmark-of",
    "url",
    "syndication",
];

/// Reads those properties of the h-entry with the mf2 parser (an author h-card whole; the
/// replies and likes nested under the entry are not read).
fn entry_facts(page: &Page, entry: ElementRef<'_>) -> EntryFacts {
    let item = mf2::parse_properties(entry, &page.base, ENTRY_FACTS);
    let text = |name: &str| item.first(name).map(collapse).filter(|t| !t.is_empty());
    let urls = |name: &str| -> Vec<Url> {
        item.get(name)
            .iter()
            .filter_map(|v| Url::parse(v.text().trim()).ok())
            .collect()
    };
    let author = item.get("author").first().map(|value| match value {
        mf2::PropValue::Item(card, _) => card_author(card),
        other => {
            let v = collapse(other.text());
            match Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Author {
                    url: Some(v),
                    ..Default::default()
                },
                _ => Author {
                    name: Some(truncate(&v, TITLE_MAX)),
                    ..Default::default()
                },
            }
        }
    });
    let content = item.get("content").first().map(|v| match v {
        mf2::PropValue::Html { node, .. } => Content::Element(*node),
        other => Content::Text(other.text().to_string()),
    });
    EntryFacts {
        name: text("name"),
        summary: text("summary"),
        content,
        published: item.first("published").map(str::to_string),
        author,
        in_reply_to: urls("in-reply-to"),
        like_of: urls("like-of"),
        repost_of: urls("repost-of"),
        bookmark_of: urls("bookmark-of"),
        url: urls("url"),
        syndication: urls("syndication"),
    }
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

/// A flattening of the document's text with whitespace collapsed as it is built, remembering
/// where one element (the link) starts and ends.
#[derive(Default)]
struct Flat {
    text: String,
    mark: Option<(usize, usize)>,
}

impl Flat {
    /// Appends `s` with each run of whitespace as one space (none at the start), a word at a
    /// time rather than a character at a time.
    fn push_text(&mut self, s: &str) {
        let mut rest = s;
        loop {
            let word = rest.trim_start();
            if word.len() != rest.len() && !self.text.is_empty() && !self.text.ends_with(' ') {
                self.text.push(' ');
            }
            if word.is_empty() {
                return;
            }
            let end = word.find(char::is_whitespace).unwrap_or(word.len());
            self.text.push_str(&word[..end]);
            rest = &word[end..];
        }
    }

    /// Flattens `root`'s text, marking where `marked` starts and ends; stops once
    /// `enough_after` bytes follow the mark (an excerpt needs no more of a long article).
    fn walk(
        &mut self,
        root: NodeRef<'_, Node>,
        marked: Option<ego_tree::NodeId>,
        enough_after: usize,
    ) {
        let mut skipping: Option<ego_tree::NodeId> = None;
        let mut start = 0;
        for edge in root.traverse() {
            if let Some((_, end)) = self.mark
                && self.text.len() > end.saturating_add(enough_after)
            {
                return;
            }
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
    // Characters are at most 4 bytes: this many bytes hold a side's characters.
    flat.walk(*body, Some(link.id()), 4 * EXCERPT_SIDE);
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

/// The text of an HTML fragment as a reader sees it: blocks separated, hidden elements skipped.
pub fn html_text(html: &str) -> String {
    let Ok(fragment) = html::parse_fragment(html) else {
        return String::new();
    };
    let mut flat = Flat::default();
    flat.walk(*fragment.root_element(), None, usize::MAX);
    flat.text
}

/// Longest content kept for one mention: bytes of sanitized HTML, about a thousand words. A
/// reply or a note fits whole; of a long article, the start is kept (cut at an element
/// boundary, well-formed), and the excerpt says what the link is about. 100,000 mentions stay
/// under 1 GB of content at worst; storing 40 KB articles whole would take 4 GB, and writing
/// them slowed verification of real articles by a third (`benches/e2e_verify.sh` with ARTICLE=1).
pub const CONTENT_MAX: usize = 8 * 1024;
/// Longest excerpt, in characters (two sides of [`EXCERPT_SIDE`] and the link's own text).
const EXCERPT_STORED_MAX: usize = 2 * EXCERPT_SIDE + 200;
/// Most other addresses kept for one reaction (its original, its copies).
const SEEN_AT_MAX: usize = 10;
/// Longest URL kept for an author's page or photo.
const URL_MAX: usize = 2_048;

/// Cleans untrusted HTML for republishing, by the same allow-list as a verified page's content
/// ([`html::Writing::Clean`]): formatting and links kept, links made absolute and
/// `rel="nofollow ugc"`; scripts, styles, event handlers, iframes, `javascript:`/`data:` URLs
/// gone. One bounded parse; at most [`CONTENT_MAX`] bytes come out (cut at an element boundary).
pub fn sanitize(html: &str, base: &Url) -> String {
    match html::parse_fragment(html) {
        Ok(fragment) => clean_inner_html(fragment.root_element(), base),
        Err(_) => String::new(),
    }
}

/// `el`'s content cleaned by the allow-list, at most [`CONTENT_MAX`] bytes, ends trimmed.
fn clean_inner_html(el: ElementRef<'_>, base: &Url) -> String {
    let mut clean = String::new();
    html::write_inner_html(&mut clean, el, html::Writing::Clean(base), CONTENT_MAX);
    clean.trim().to_string()
}

/// Plain text as HTML text of at most `max` bytes (cut at a word, before escaping).
fn escaped_within(text: &str, max: usize) -> String {
    let mut chars = max;
    loop {
        let escaped = crate::text::html_escape(&truncate(text, chars));
        if escaped.len() <= max || chars == 0 {
            return escaped;
        }
        chars /= 2;
    }
}

/// `html` as is when it fits in `max` bytes; else cut at an element boundary, well-formed.
pub fn cut_html(html: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if html.len() <= max {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::new();
    if let Ok(fragment) = html::parse_fragment(html) {
        html::write_inner_html(
            &mut out,
            fragment.root_element(),
            html::Writing::Faithful(None),
            max,
        );
    }
    std::borrow::Cow::Owned(out)
}

/// Facts that arrived as strings rather than written out of a parsed page (imports, restored
/// backups) cleaned by the same rules as a verified page's: content through the allow-list
/// ([`sanitize`], relative links resolved against `base`), then [`bound_extracted`]. Whatever a
/// file says, what is stored is what the verifier could have stored.
pub fn clean_untrusted(x: &mut Extracted, base: &Url) {
    if let Some(html) = x.content_html.take() {
        x.content_html = Some(sanitize(&html, base)).filter(|h| !h.is_empty());
    }
    bound_extracted(x);
}

/// Holds what a verifier or a social adapter extracted to what is stored and published: plain
/// text fields cleaned and cut, author links only http(s), content at most [`CONTENT_MAX`].
/// Every verified mention passes here, whatever produced it.
pub fn bound_extracted(x: &mut Extracted) {
    let text = |t: &mut Option<String>, max: usize| {
        *t = t
            .take()
            .map(|v| truncate(&collapse(&v), max))
            .filter(|v| !v.is_empty());
    };
    text(&mut x.title, TITLE_MAX);
    text(&mut x.author.name, TITLE_MAX);
    text(&mut x.excerpt, EXCERPT_STORED_MAX);
    let web_url = |u: &mut Option<String>| {
        *u = u
            .take()
            .filter(|v| v.len() <= URL_MAX && crate::model::is_web_url(v));
    };
    web_url(&mut x.author.url);
    web_url(&mut x.author.photo);
    for urls in [&mut x.originals, &mut x.copies] {
        urls.retain(|u| u.len() <= URL_MAX && crate::model::is_web_url(u));
        urls.truncate(SEEN_AT_MAX);
    }
    x.published = x.published.take().filter(|p| p.len() <= 40);
    if let Some(content) = &mut x.content_html
        && content.len() > CONTENT_MAX
    {
        *content = cut_html(content, CONTENT_MAX).into_owned();
    }
}

/// A date in one of the forms pages use, as RFC 3339 (UTC `Z` when the page gave no zone).
pub fn normalize_date(raw: &str) -> Option<String> {
    let s = raw.trim();
    let with_zone = |d: chrono::DateTime<chrono::FixedOffset>| {
        d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            .replace("+00:00", "Z")
    };
    let utc = |d: chrono::NaiveDateTime| {
        d.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(with_zone(d));
    }
    let zoned = [
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%z",
    ];
    if let Some(d) = zoned
        .iter()
        .find_map(|f| chrono::DateTime::parse_from_str(s, f).ok())
    {
        return Some(with_zone(d));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    if let Some(d) = naive
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    {
        return Some(utc(d));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(utc(d.and_hms_opt(0, 0, 0)?));
    }
    chrono::DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|d| utc(d.naive_utc()))
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
    fn absurd_nesting_is_refused_and_sloppy_html_is_not() {
        let link = "<a href=\"https://blog.example/2024/hello\">x</a>";
        for unit in ["<div>", "<div/>", "<div></i>"] {
            let deep = format!("{}{link}", unit.repeat(50_000));
            assert!(
                matches!(verify_html(&deep, &page_url(), &keys()), Outcome::Refused(r) if r.contains("not parsed")),
                "{unit}"
            );
        }
        // Thousands of unclosed paragraphs, list items, cells and void elements are ordinary.
        let sloppy = format!(
            "{}{link}",
            "<p>para <br><img src=x><li>item<td>cell<input/><span/>".repeat(3_000)
        );
        verified(&sloppy);
    }

    /// Regression: 100,000 nested microformats overflowed the stack of a blocking-pool thread
    /// (2 MiB) while parsing nested items, aborting the whole daemon. 10,000 levels are enough
    /// to overflow without the nesting cap, and quick in a debug build.
    #[test]
    fn deeply_nested_microformats_do_not_overflow_the_stack() {
        let depth = 10_000;
        let html = format!(
            "<div class=\"h-entry\"><a href=\"https://blog.example/2024/hello\">x</a>{}{}</div>",
            "<div class=\"h-entry p-x\">".repeat(depth),
            "</div>".repeat(depth)
        );
        let verified = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            // Parsed without the budget, which would refuse it: the nesting cap must hold alone.
            .spawn(move || {
                let page = Page::from_tree(Html::parse_document(&html), &page_url());
                matches!(verify_page(&page, &keys()), Outcome::Verified(_))
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(verified);
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
