//! The one way untrusted markup becomes a tree: html5ever through scraper, with the parser's
//! work bounded, and the one way a subtree becomes HTML again, with its size bounded.
//!
//! Why a budget: the HTML tree builder checks scopes by walking its stack of open elements, so
//! markup that nests without closing (`<div>`, `<div/>`, `<div></i>` repeated) costs the square
//! of its length — a 2 MB page could hold a core for minutes. No pre-scan of the text can know
//! what the tree builder will nest, so the count is taken inside it: a tree sink that counts
//! every element it creates and every element name the builder asks for (each step of a scope
//! walk asks one). The input is fed in small chunks, and parsing stops at the first chunk that
//! ends over budget. The budget grows with the input's length, so ordinary pages never meet it,
//! and what a hostile page can cost is bounded whatever its shape.
//!
//! Serializing ([`write_inner_html`]) follows the HTML serialization algorithm, resolves
//! relative `href`/`src` on the way (as microformats e-* values are specified), and stops at a
//! byte cap on an element boundary, so what is stored and re-parsed later is small and
//! well-formed. It must never panic and never allocate beyond its cap.

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{ElementRef, Html, HtmlTreeSink, Node};
use std::borrow::Cow;
use std::cell::{Cell, Ref};
use std::rc::Rc;
use url::Url;

/// Steps (element names asked for by the tree builder) allowed per byte of input, plus a base.
/// Ordinary pages take under 1 a byte (see the tests); the quadratic shapes take hundreds.
pub const STEPS_PER_BYTE: u64 = 8;
const STEPS_BASE: u64 = 1_000_000;
/// Elements one page may create. A 2 MB article has a few tens of thousands; every element is
/// a node of the tree, so this bounds the tree's memory whatever the markup.
pub const MAX_ELEMENTS: u64 = 100_000;
/// Bytes fed to the parser between two looks at the budget.
const CHUNK: usize = 2 * 1024;

/// Why markup was not turned into a tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TooCostly {
    #[error("markup would take more than {budget} parser steps (nesting that never closes)")]
    Steps { budget: u64, done: u64 },
    #[error("markup has more than {MAX_ELEMENTS} elements")]
    Elements,
}

/// The work a parse did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Work {
    pub steps: Cell<u64>,
    pub elements: Cell<u64>,
}

/// Parses a whole document within the budget.
pub fn parse_document(html: &str) -> Result<Html, TooCostly> {
    parse_counted(html, false).map(|(doc, _)| doc)
}

/// Parses a fragment (as in `<body>`) within the budget.
pub fn parse_fragment(html: &str) -> Result<Html, TooCostly> {
    parse_counted(html, true).map(|(doc, _)| doc)
}

/// The most nodes a parse makes room for before it starts (see [`parse_counted`]).
const EXPECTED_NODES_MAX: usize = 16 * 1024;

/// [`parse_document`] or [`parse_fragment`], also saying how much work it took.
pub fn parse_counted(html: &str, fragment: bool) -> Result<(Html, Rc<Work>), TooCostly> {
    let work = Rc::new(Work::default());
    let budget = STEPS_BASE.saturating_add(STEPS_PER_BYTE.saturating_mul(html.len() as u64));
    let mut tree = if fragment {
        Html::new_fragment()
    } else {
        Html::new_document()
    };
    // Room for the nodes such a page usually has (about one per 16 bytes), so the tree's
    // storage is not copied as it grows; past that it grows as usual.
    let root = tree.tree.root().value().clone();
    tree.tree =
        ego_tree::Tree::with_capacity(root, (html.len() / 16).clamp(16, EXPECTED_NODES_MAX));
    let sink = Counting {
        inner: HtmlTreeSink::new(tree),
        work: work.clone(),
    };
    let mut parser = if fragment {
        html5ever::driver::parse_fragment(
            sink,
            Default::default(),
            QualName::new(None, html5ever::ns!(html), html5ever::local_name!("body")),
            Vec::new(),
            false,
        )
    } else {
        html5ever::driver::parse_document(sink, Default::default())
    };
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(chunk));
        rest = tail;
        if work.steps.get() > budget {
            return Err(TooCostly::Steps {
                budget,
                done: work.steps.get(),
            });
        }
        if work.elements.get() > MAX_ELEMENTS {
            return Err(TooCostly::Elements);
        }
    }
    let doc = parser.finish();
    Ok((doc, work))
}

/// scraper's tree sink, counting the work the tree builder asks of it.
struct Counting {
    inner: HtmlTreeSink,
    work: Rc<Work>,
}

impl TreeSink for Counting {
    type Handle = ego_tree::NodeId;
    type Output = Html;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Html {
        self.inner.finish()
    }
    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg)
    }
    fn get_document(&self) -> Self::Handle {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a Self::Handle) -> Ref<'a, QualName> {
        self.work.steps.set(self.work.steps.get() + 1);
        self.inner.elem_name(target)
    }
    fn create_element(
        &self,
        name: QualName,
        attrs: Vec<Attribute>,
        flags: ElementFlags,
    ) -> Self::Handle {
        self.work.elements.set(self.work.elements.get() + 1);
        self.inner.create_element(name, attrs, flags)
    }
    fn create_comment(&self, text: StrTendril) -> Self::Handle {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Self::Handle {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &Self::Handle, child: NodeOrText<Self::Handle>) {
        self.inner.append(parent, child)
    }
    fn append_based_on_parent_node(
        &self,
        element: &Self::Handle,
        prev_element: &Self::Handle,
        child: NodeOrText<Self::Handle>,
    ) {
        self.inner
            .append_based_on_parent_node(element, prev_element, child)
    }
    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.inner
            .append_doctype_to_document(name, public_id, system_id)
    }
    fn get_template_contents(&self, target: &Self::Handle) -> Self::Handle {
        self.inner.get_template_contents(target)
    }
    fn same_node(&self, x: &Self::Handle, y: &Self::Handle) -> bool {
        // The adoption agency and the list of active formatting elements compare nodes while
        // walking: as much a step as a scope walk's name.
        self.work.steps.set(self.work.steps.get() + 1);
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &Self::Handle, new_node: NodeOrText<Self::Handle>) {
        // Foster parenting and the adoption agency move nodes around: count their work too.
        self.work.steps.set(self.work.steps.get() + 1);
        self.inner.append_before_sibling(sibling, new_node)
    }
    fn add_attrs_if_missing(&self, target: &Self::Handle, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs)
    }
    fn remove_from_parent(&self, target: &Self::Handle) {
        self.work.steps.set(self.work.steps.get() + 1);
        self.inner.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &Self::Handle, new_parent: &Self::Handle) {
        self.work.steps.set(self.work.steps.get() + 1);
        self.inner.reparent_children(node, new_parent)
    }
}

/// Elements that have no end tag.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
            | "basefont"
            | "bgsound"
            | "frame"
            | "keygen"
            | "param"
    )
}

/// Elements whose text is written as is.
fn is_raw_text(name: &str) -> bool {
    matches!(
        name,
        "style" | "script" | "xmp" | "iframe" | "noembed" | "noframes" | "plaintext" | "noscript"
    )
}

fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            '"' if attribute => out.push_str("&quot;"),
            '<' if !attribute => out.push_str("&lt;"),
            '>' if !attribute => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// How [`write_inner_html`] writes what it finds.
#[derive(Clone, Copy)]
pub enum Writing<'a> {
    /// As the page has it (the HTML serialization algorithm), with `href` and `src` made
    /// absolute against the base when one is given: microformats' e-* values.
    Faithful(Option<&'a Url>),
    /// Cleaned for publishing, against this base: only the elements and attributes of
    /// [`clean_element`] and [`clean_attribute`], links absolute and http(s) or mailto, links
    /// marked `rel="nofollow ugc"`, no comments; script, style, embedded content and forms
    /// dropped with what they hold, every other element unwrapped to its content.
    Clean(&'a Url),
}

/// What cleaning does with an element.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Treatment {
    Keep,
    /// Its content stays, its tags go.
    Unwrap,
    /// Gone with all it holds.
    Drop,
}

/// The elements clean content keeps (ammonia's defaults, less `bdo`, whose only use is to
/// turn text around).
fn clean_element(name: &str) -> Treatment {
    match name {
        "a" | "abbr" | "acronym" | "b" | "bdi" | "blockquote" | "br" | "caption" | "cite"
        | "code" | "col" | "colgroup" | "dd" | "del" | "details" | "dfn" | "div" | "dl" | "dt"
        | "em" | "figcaption" | "figure" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hgroup"
        | "hr" | "i" | "img" | "ins" | "kbd" | "li" | "mark" | "ol" | "p" | "pre" | "q" | "rp"
        | "rt" | "rtc" | "ruby" | "s" | "samp" | "small" | "span" | "strike" | "strong" | "sub"
        | "summary" | "sup" | "table" | "tbody" | "td" | "tfoot" | "th" | "thead" | "time"
        | "tr" | "tt" | "u" | "ul" | "var" | "wbr" => Treatment::Keep,
        "script" | "style" | "template" | "noscript" | "iframe" | "object" | "embed" | "applet"
        | "frame" | "frameset" | "noframes" | "noembed" | "svg" | "math" | "form" | "input"
        | "button" | "select" | "textarea" | "option" | "optgroup" | "datalist" | "head"
        | "title" | "meta" | "link" | "base" | "param" | "source" | "track" | "audio" | "video"
        | "canvas" | "map" | "area" | "xmp" | "plaintext" | "dialog" | "portal" => Treatment::Drop,
        _ => Treatment::Unwrap,
    }
}

/// Whether clean content keeps `attr` on `element`, and whether its value is a URL.
fn clean_attribute(element: &str, attr: &str) -> Option<bool> {
    match (element, attr) {
        (_, "title" | "lang") => Some(false),
        ("a", "href") | ("img", "src") | ("blockquote" | "q" | "del" | "ins", "cite") => Some(true),
        ("img", "alt" | "width" | "height")
        | ("td" | "th", "colspan" | "rowspan")
        | ("th", "scope")
        | ("col" | "colgroup", "span")
        | ("ol", "start")
        | ("time" | "del" | "ins", "datetime") => Some(false),
        _ => None,
    }
}

/// Appends the inner HTML of `el` to `out`, written as `writing` says. Stops before the output
/// would pass `max_bytes`, at an element or text boundary, closing what is open: the result is
/// always well-formed. Returns whether everything was written.
pub fn write_inner_html(
    out: &mut String,
    el: ElementRef<'_>,
    writing: Writing<'_>,
    max_bytes: usize,
) -> bool {
    use ego_tree::iter::Edge;
    let limit = out.len().saturating_add(max_bytes);
    let clean = matches!(writing, Writing::Clean(_));
    // Elements written and open now, and the bytes their end tags will take: truncation must
    // fit them.
    let mut open: Vec<(ego_tree::NodeId, &str)> = Vec::new();
    let mut owed = 0usize;
    // A subtree passed over whole: a void element's, or one cleaning drops.
    let mut skip: Option<ego_tree::NodeId> = None;
    for edge in el.traverse() {
        match edge {
            Edge::Open(node) if node.id() == el.id() || skip.is_some() => {}
            Edge::Open(node) => {
                let before = out.len();
                let mut element = node.value().as_element().map(|e| e.name());
                match node.value() {
                    Node::Text(t)
                        if !clean
                            && is_raw_text(open.last().map_or(el.value().name(), |o| o.1)) =>
                    {
                        out.push_str(t)
                    }
                    Node::Text(t) => escape_into(out, t, false),
                    Node::Comment(c) if !clean => {
                        out.push_str("<!--");
                        out.push_str(c);
                        out.push_str("-->");
                    }
                    Node::Element(e) => match writing {
                        Writing::Faithful(base) => write_start_tag(out, e, base),
                        Writing::Clean(base) => match clean_element(e.name()) {
                            Treatment::Keep => write_clean_start_tag(out, e, base),
                            Treatment::Unwrap => element = None,
                            Treatment::Drop => {
                                skip = Some(node.id());
                                continue;
                            }
                        },
                    },
                    _ => {}
                }
                let closes = element.filter(|n| !is_void(n)).map_or(0, |n| n.len() + 3);
                if out.len() + owed + closes > limit {
                    // This node does not fit: take it back and close what is open.
                    out.truncate(before);
                    while let Some((_, name)) = open.pop() {
                        write_end_tag(out, name);
                    }
                    return false;
                }
                match element {
                    Some(name) if is_void(name) => skip = Some(node.id()),
                    Some(name) => {
                        open.push((node.id(), name));
                        owed += closes;
                    }
                    None => {}
                }
            }
            Edge::Close(node) if node.id() == el.id() => {}
            Edge::Close(node) if skip == Some(node.id()) => skip = None,
            Edge::Close(node) => {
                if skip.is_none()
                    && let Some(&(id, name)) = open.last()
                    && id == node.id()
                {
                    open.pop();
                    owed -= name.len() + 3;
                    write_end_tag(out, name);
                }
            }
        }
    }
    true
}

/// A URL attribute made absolute against `base`; one already absolute is kept as written
/// (trimmed), as microformats parsers do.
pub fn resolve_attr<'a>(base: &Url, raw: &'a str) -> Cow<'a, str> {
    let raw = raw.trim();
    if Url::parse(raw).is_ok() {
        return Cow::Borrowed(raw);
    }
    base.join(raw)
        .map_or(Cow::Borrowed(raw), |u| Cow::Owned(u.into()))
}

fn write_start_tag(out: &mut String, e: &scraper::node::Element, base: Option<&Url>) {
    out.push('<');
    out.push_str(e.name());
    for (attr, value) in e.attrs() {
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        match base {
            Some(b) if matches!(attr, "href" | "src") => {
                escape_into(out, &resolve_attr(b, value), true)
            }
            _ => escape_into(out, value, true),
        }
        out.push('"');
    }
    out.push('>');
}

fn write_clean_start_tag(out: &mut String, e: &scraper::node::Element, base: &Url) {
    out.push('<');
    out.push_str(e.name());
    for (attr, value) in e.attrs() {
        let value = match clean_attribute(e.name(), attr) {
            None => continue,
            Some(false) => Cow::Borrowed(value),
            Some(true) => match base.join(value.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https" | "mailto") => {
                    Cow::Owned(String::from(url))
                }
                _ => continue,
            },
        };
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        escape_into(out, &value, true);
        out.push('"');
    }
    if e.name() == "a" {
        out.push_str(" rel=\"nofollow ugc\"");
    }
    out.push('>');
}

fn write_end_tag(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_pages() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/html");
        let mut pages: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "html"))
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect();
        pages.push("<p>Some <a href=/x>text</a>, <b>bold</b> <i>it</i><br>".repeat(5_000));
        pages.push("<ul><li><p><b>x</b><li><table><tr><td>c<td>d</table></ul>".repeat(3_000));
        pages
    }

    #[test]
    fn ordinary_pages_stay_far_below_the_budget() {
        for page in fixture_pages() {
            let (_, work) = parse_counted(&page, false).unwrap();
            let per_byte = work.steps.get() as f64 / page.len() as f64;
            assert!(per_byte < 2.0, "{per_byte} steps a byte");
        }
    }

    /// The shapes an adversarial probe found (and their cousins): each nests without closing,
    /// so the tree builder's work grows with the square of the length. Each is stopped after a
    /// bounded amount of work, whatever its length.
    #[test]
    fn quadratic_markup_is_stopped_within_its_budget() {
        let link = "<a href=\"https://blog.example/p\">x</a>";
        for unit in ["<div/>", "<div></i>", "<div>", "<ul>", "<a><i>"] {
            for n in [20_000, 50_000] {
                let html = format!("{link}{}", unit.repeat(n));
                match parse_counted(&html, false) {
                    Err(TooCostly::Steps { budget, done }) => {
                        assert!(done <= 3 * budget, "{unit} x{n}: {done} steps for {budget}")
                    }
                    Err(TooCostly::Elements) => {}
                    Ok((_, work)) => panic!("{unit} x{n} parsed in {} steps", work.steps.get()),
                }
            }
        }
    }

    #[test]
    fn element_count_is_capped() {
        let html = "<br>".repeat(MAX_ELEMENTS as usize + 10);
        assert_eq!(parse_document(&html).err(), Some(TooCostly::Elements));
    }

    #[test]
    fn inner_html_matches_the_html5ever_serializer_and_resolves_links() {
        let doc = parse_document(
            r#"<div id=c>Tom &amp; <b class="x y">Jerry</b><br><img src="/i.png" alt='a"b'>
            <a href="../p?q=1&amp;r=2">rel</a><!-- c --><script>if (a < b) {}</script> &lt;&nbsp;</div>"#,
        )
        .unwrap();
        let sel = scraper::Selector::parse("#c").unwrap();
        let el = doc.select(&sel).next().unwrap();
        let mut ours = String::new();
        assert!(write_inner_html(
            &mut ours,
            el,
            Writing::Faithful(None),
            usize::MAX
        ));
        assert_eq!(ours, el.inner_html());
        let base = Url::parse("https://alice.example/notes/1").unwrap();
        let mut resolved = String::new();
        write_inner_html(
            &mut resolved,
            el,
            Writing::Faithful(Some(&base)),
            usize::MAX,
        );
        assert!(
            resolved.contains(r#"src="https://alice.example/i.png""#),
            "{resolved}"
        );
        assert!(
            resolved.contains(r#"href="https://alice.example/p?q=1&amp;r=2""#),
            "{resolved}"
        );
    }

    #[test]
    fn inner_html_stops_at_its_cap_well_formed() {
        let doc = parse_fragment(&"<p><b>word</b> <i>more words</i></p>".repeat(1_000)).unwrap();
        let root = doc.root_element();
        for cap in [0, 5, 40, 1_000, 10_000] {
            let mut out = String::new();
            assert!(!write_inner_html(
                &mut out,
                root,
                Writing::Faithful(None),
                cap
            ));
            assert!(out.len() <= cap, "{} > {cap}", out.len());
            let reparsed = parse_fragment(&out).unwrap();
            let mut again = String::new();
            write_inner_html(
                &mut again,
                reparsed.root_element(),
                Writing::Faithful(None),
                usize::MAX,
            );
            assert_eq!(
                again, out,
                "the cut is well-formed: it parses back to itself"
            );
        }
    }

    /// Hostile markup the clean writer must defuse, beside every fixture page.
    const HOSTILE: &str = r#"<div><p onclick="x()">Hi <a href="javascript:alert(1)">js</a>
        <a href=" JaVaScRiPt:alert(2)">js2</a> <a href="/rel?a=1&b=2" target=_blank>rel</a>
        <img src="data:image/svg+xml,<svg onload=alert(3)>" onerror="alert(4)">
        <script>alert(5)</script><style>p{}</style><iframe src="https://evil.example/"></iframe>
        <svg><a xlink:href="javascript:alert(6)">s</a></svg><math><mi>m</mi></math>
        <form action="https://evil.example/"><input name=q><button>go</button></form>
        <!-- comment --><bdo dir=rtl>reversed</bdo><font color=red>font</font>
        <object data="x.swf"></object><embed src="x.swf"><noscript><img src=x></noscript>
        <template><img src=x onerror=alert(7)></template><xmp><b>raw</b></xmp>
        <a href="mailto:bob@example.com" style="color:red">mail</a><b><i>nested</b></i>
        <table><tr><td colspan=2 onmouseover=x>cell</td></tr></table></p></div>"#;

    fn clean(html: &str, max: usize) -> String {
        let doc = parse_fragment(html).unwrap();
        let base = Url::parse("https://source.example/posts/1").unwrap();
        let mut out = String::new();
        write_inner_html(&mut out, doc.root_element(), Writing::Clean(&base), max);
        out
    }

    #[test]
    fn clean_writing_keeps_only_allowed_elements_attributes_and_links() {
        let mut pages = fixture_pages();
        pages.push(HOSTILE.to_string());
        for page in pages {
            for max in [usize::MAX, 8 * 1024] {
                let out = clean(&page, max);
                assert!(out.len() <= max);
                let doc = parse_fragment(&out).unwrap();
                for node in doc.root_element().descendants() {
                    assert!(!node.value().is_comment(), "a comment survived: {out}");
                    let Some(e) = node.value().as_element() else {
                        continue;
                    };
                    if node.id() == doc.root_element().id() {
                        continue;
                    }
                    assert!(
                        clean_element(e.name()) == Treatment::Keep,
                        "<{}> in {out}",
                        e.name()
                    );
                    for (attr, value) in e.attrs() {
                        if e.name() == "a" && attr == "rel" {
                            assert_eq!(value, "nofollow ugc");
                            continue;
                        }
                        let is_url = clean_attribute(e.name(), attr)
                            .unwrap_or_else(|| panic!("{attr} on <{}> in {out}", e.name()));
                        if is_url {
                            let url = Url::parse(value).expect("an absolute URL");
                            assert!(
                                matches!(url.scheme(), "http" | "https" | "mailto"),
                                "{value}"
                            );
                        }
                    }
                }
                // ammonia, given what we wrote, finds nothing to take away.
                let again = ammonia::Builder::default()
                    .link_rel(Some("nofollow ugc"))
                    .url_schemes(["http", "https", "mailto"].into_iter().collect())
                    .clean(&out)
                    .to_string();
                let elements = |h: &str| {
                    parse_fragment(h)
                        .unwrap()
                        .root_element()
                        .descendants()
                        .filter(|n| n.value().is_element())
                        .count()
                };
                assert_eq!(
                    elements(&again),
                    elements(&out),
                    "ammonia removed elements from {out}"
                );
            }
        }
        let out = clean(HOSTILE, usize::MAX);
        for gone in [
            "alert",
            "javascript",
            "onclick",
            "onerror",
            "target",
            "style",
            "comment",
            "evil",
            "raw",
        ] {
            assert!(!out.to_ascii_lowercase().contains(gone), "{gone} in {out}");
        }
        for kept in [
            r#"<a href="https://source.example/rel?a=1&amp;b=2" rel="nofollow ugc">rel</a>"#,
            r#"<a href="mailto:bob@example.com" rel="nofollow ugc">mail</a>"#,
            "reversed",
            "font",
            r#"<td colspan="2">cell</td>"#,
        ] {
            assert!(out.contains(kept), "{kept} missing from {out}");
        }
    }
}
