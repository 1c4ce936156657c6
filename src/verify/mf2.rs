//! Microformats2 parsing over the page's one scraper tree: items, their properties (`p-`, `u-`,
//! `dt-`, `e-`), nested items, children, and the implied `name`, `photo` and `url`, following
//! the microformats2 parsing spec closely enough to pass the community test suite for h-entry,
//! h-card, h-feed and mixed documents (see tests/mf2_suite.rs).
//!
//! Written here rather than taken from the `microformats` crate because that crate parses the
//! HTML again (the verifier already has the tree) and is LGPL-3.0; what we need is ~300 lines.
//! Plain text values follow the spec's textContent (ends trimmed; `<img>` contributes its alt);
//! callers that display text collapse whitespace themselves.

use scraper::{ElementRef, Node};
use serde_json::{Map, Value, json};
use url::Url;

/// One microformat.
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub types: Vec<String>,
    /// Property name → values, in document order.
    pub properties: Vec<(String, Vec<PropValue>)>,
    pub children: Vec<Item>,
}

/// One property value.
#[derive(Clone, Debug)]
pub enum PropValue {
    Text(String),
    Html {
        html: String,
        value: String,
        /// The property's element, for readers that write its content their own way.
        node: ego_tree::NodeId,
    },
    /// A nested microformat, with the plain value the spec gives it.
    Item(Box<Item>, String),
}

impl PropValue {
    /// The value as plain text (a nested item's value, an HTML value's text).
    pub fn text(&self) -> &str {
        match self {
            PropValue::Text(t) => t,
            PropValue::Html { value, .. } => value,
            PropValue::Item(_, value) => value,
        }
    }
}

impl Item {
    pub fn get(&self, name: &str) -> &[PropValue] {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The first value of a property, as text.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name)
            .first()
            .map(PropValue::text)
            .filter(|t| !t.is_empty())
    }

    pub fn has_type(&self, t: &str) -> bool {
        self.types.iter().any(|x| x == t)
    }

    fn push(&mut self, name: &str, value: PropValue) {
        match self.properties.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value),
            None => self.properties.push((name.to_string(), vec![value])),
        }
    }

    /// The canonical mf2 JSON shape.
    pub fn to_json(&self) -> Value {
        let mut props = Map::new();
        for (name, values) in &self.properties {
            props.insert(
                name.clone(),
                Value::Array(values.iter().map(value_json).collect()),
            );
        }
        let mut out = json!({"type": self.types, "properties": props});
        if !self.children.is_empty() {
            out["children"] = Value::Array(self.children.iter().map(Item::to_json).collect());
        }
        out
    }
}

fn value_json(v: &PropValue) -> Value {
    match v {
        PropValue::Text(t) => json!(t),
        PropValue::Html { html, value, .. } => json!({"html": html, "value": value}),
        PropValue::Item(item, value) => {
            let mut j = item.to_json();
            j["value"] = json!(value);
            j
        }
    }
}

fn classes<'a>(el: &ElementRef<'a>) -> impl Iterator<Item = &'a str> {
    el.value()
        .attr("class")
        .unwrap_or("")
        .split_ascii_whitespace()
}

/// `h-` + an optional vendor prefix (`[a-z0-9]+-`) + lower-case words joined by single hyphens.
fn is_root_class(c: &str) -> bool {
    c.strip_prefix("h-").is_some_and(valid_name)
}

/// The name grammar shared by root and property classes: `([a-z0-9]+-)?[a-z]+(-[a-z]+)*`.
fn valid_name(name: &str) -> bool {
    let words = |s: &str| {
        !s.is_empty()
            && s.split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
    };
    words(name)
        || name.split_once('-').is_some_and(|(vendor, rest)| {
            !vendor.is_empty()
                && vendor
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && words(rest)
        })
}

fn root_types(el: &ElementRef<'_>) -> Vec<String> {
    let mut t: Vec<String> = classes(el)
        .filter(|c| is_root_class(c))
        .map(str::to_string)
        .collect();
    t.sort();
    t.dedup();
    t
}

/// (prefix, name) of each property class on an element.
fn property_classes<'a>(el: &ElementRef<'a>) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = classes(el)
        .filter_map(|c| {
            let (prefix, name) = c.split_once('-')?;
            (matches!(prefix, "p" | "u" | "dt" | "e") && valid_name(name)).then_some((prefix, name))
        })
        .collect();
    out.dedup();
    out
}

/// Child elements, `<template>`s left out: their content is inert and never a microformat.
fn children_elements<'a>(el: &ElementRef<'a>) -> impl Iterator<Item = ElementRef<'a>> {
    el.children()
        .filter_map(ElementRef::wrap)
        .filter(|c| c.value().name() != "template")
}

/// Child elements in reverse, for a stack that pops them in document order.
fn reversed_children<'a>(el: &ElementRef<'a>) -> Vec<ElementRef<'a>> {
    let mut children: Vec<ElementRef<'a>> = children_elements(el).collect();
    children.reverse();
    children
}

/// Top-level items of a document or fragment.
pub fn parse_items(root: ElementRef<'_>, base: &Url) -> Vec<Item> {
    let mut items = Vec::new();
    let mut stack: Vec<ElementRef<'_>> = reversed_children(&root);
    while let Some(el) = stack.pop() {
        if !root_types(&el).is_empty() {
            items.push(parse_item(el, base));
        } else {
            stack.extend(reversed_children(&el));
        }
    }
    items
}

/// How deep microformats may nest before deeper ones are read as plain markup. Real pages nest
/// a handful (entry → author card → org card); a hostile page may nest a hundred thousand, and
/// parsing nested items recurses.
const MAX_NESTING: usize = 16;

/// Parses the microformat rooted at `root`.
pub fn parse_item(root: ElementRef<'_>, base: &Url) -> Item {
    parse_nested(root, base, 0, Reading::WHOLE)
}

/// Only the properties named in `only` of the microformat rooted at `root`, for a reader that
/// needs a few facts of an entry, not the entry: nested microformats that are not one of those
/// properties (the replies, likes and reposts a post shows under it) are skipped unread,
/// nothing is implied, and `e-content` is left for the reader to write from its element
/// ([`PropValue::Html`]'s `node`; `html` and `value` are empty). On a post with a hundred
/// comments this is a tenth of the work of [`parse_item`].
pub fn parse_properties(root: ElementRef<'_>, base: &Url, only: &[&str]) -> Item {
    let reading = Reading {
        content_values: false,
        only: Some(only),
    };
    parse_nested(root, base, 0, reading)
}

/// How much of an item to read.
#[derive(Clone, Copy)]
struct Reading<'w> {
    /// Serialize `e-content` into `html` and `value` (else only its node is kept).
    content_values: bool,
    /// Only these properties of this item (nested items they name are read whole).
    only: Option<&'w [&'w str]>,
}

impl Reading<'_> {
    const WHOLE: Reading<'static> = Reading {
        content_values: true,
        only: None,
    };
}

fn parse_nested(root: ElementRef<'_>, base: &Url, depth: usize, reading: Reading<'_>) -> Item {
    let mut item = Item {
        types: root_types(&root),
        ..Default::default()
    };
    let mut has_nested = false;
    let mut stack: Vec<ElementRef<'_>> = reversed_children(&root);
    while let Some(el) = stack.pop() {
        let mut props = property_classes(&el);
        if let Some(only) = reading.only {
            props.retain(|(_, name)| only.contains(name));
        }
        let nested = depth < MAX_NESTING && !root_types(&el).is_empty();
        if nested {
            has_nested = true;
            if props.is_empty() && reading.only.is_some() {
                continue; // another item, and its properties are its own
            }
            let whole = Reading {
                only: None,
                ..reading
            };
            let child = parse_nested(el, base, depth + 1, whole);
            if props.is_empty() {
                item.children.push(child);
                continue;
            }
            for (prefix, name) in &props {
                let value = match *prefix {
                    "p" => child
                        .first("name")
                        .map(str::to_string)
                        .unwrap_or_else(|| text_content(el)),
                    "u" => child
                        .first("url")
                        .map(str::to_string)
                        .unwrap_or_else(|| u_value(el, base)),
                    "dt" => dt_value(el),
                    _ => text_content(el),
                };
                item.push(name, PropValue::Item(Box::new(child.clone()), value));
            }
            continue;
        }
        for (prefix, name) in &props {
            let value = match *prefix {
                "p" => PropValue::Text(p_value(el)),
                "u" => PropValue::Text(u_value(el, base)),
                "dt" => PropValue::Text(dt_value(el)),
                _ if !reading.content_values && *name == "content" => PropValue::Html {
                    html: String::new(),
                    value: String::new(),
                    node: el.id(),
                },
                _ => PropValue::Html {
                    html: inner_html_resolved(el, base),
                    value: text_with_images(el, Some(base)).trim().to_string(),
                    node: el.id(),
                },
            };
            item.push(name, value);
        }
        stack.extend(reversed_children(&el));
    }
    if reading.only.is_none() {
        add_implied(&mut item, root, base, has_nested);
    }
    item
}

fn add_implied(item: &mut Item, root: ElementRef<'_>, base: &Url, has_nested: bool) {
    let has_prefix = |item: &Item, prefixes: &[&str], root: ElementRef<'_>| -> bool {
        let mut stack: Vec<ElementRef<'_>> = children_elements(&root).collect();
        while let Some(el) = stack.pop() {
            if property_classes(&el)
                .iter()
                .any(|(p, _)| prefixes.contains(p))
            {
                return true;
            }
            if root_types(&el).is_empty() {
                stack.extend(children_elements(&el));
            }
        }
        let _ = item;
        false
    };
    if item.get("name").is_empty() && !has_nested && !has_prefix(item, &["p", "e"], root) {
        item.push("name", PropValue::Text(implied_name(root)));
    }
    if item.get("photo").is_empty()
        && !has_nested
        && !has_prefix(item, &["u"], root)
        && let Some(photo) = implied_single(root, &["img", "object"], has_nested)
    {
        let attr = if photo.value().name() == "object" {
            "data"
        } else {
            "src"
        };
        if let Some(src) = photo.value().attr(attr) {
            item.push("photo", PropValue::Text(resolve(base, src)));
        }
    }
    if item.get("url").is_empty()
        && !has_nested
        && !has_prefix(item, &["u"], root)
        && let Some(link) = implied_single(root, &["a", "area"], has_nested)
        && let Some(href) = link.value().attr("href")
    {
        item.push("url", PropValue::Text(resolve(base, href)));
    }
}

/// The root itself, its only child of a kind, or its only child's only child of that kind (none
/// of them a microformat), per the implied photo/url rules.
fn implied_single<'a>(
    root: ElementRef<'a>,
    names: &[&str],
    _has_nested: bool,
) -> Option<ElementRef<'a>> {
    let is = |el: &ElementRef<'_>| names.contains(&el.value().name());
    if is(&root) {
        return Some(root);
    }
    let only_of_kind = |parent: &ElementRef<'a>| -> Option<ElementRef<'a>> {
        let mut of_kind = children_elements(parent).filter(|c| is(c));
        let first = of_kind.next()?;
        (of_kind.next().is_none() && root_types(&first).is_empty()).then_some(first)
    };
    if let Some(found) = only_of_kind(&root) {
        return Some(found);
    }
    let mut kids = children_elements(&root);
    let only = kids.next()?;
    if kids.next().is_some() || !root_types(&only).is_empty() {
        return None;
    }
    only_of_kind(&only)
}

fn implied_name(root: ElementRef<'_>) -> String {
    let v = root.value();
    match v.name() {
        "img" | "area" if v.attr("alt").is_some() => {
            return v.attr("alt").unwrap_or_default().to_string();
        }
        "abbr" if v.attr("title").is_some() => {
            return v.attr("title").unwrap_or_default().to_string();
        }
        _ => {}
    }
    let only = |el: &ElementRef<'_>| -> Option<String> {
        let mut kids = children_elements(el);
        let first = kids.next()?;
        if kids.next().is_some() || !root_types(&first).is_empty() {
            return None;
        }
        let fv = first.value();
        match fv.name() {
            "img" | "area" => fv.attr("alt"),
            "abbr" => fv.attr("title"),
            _ => None,
        }
        .filter(|v| !v.is_empty()) // `:not([alt=""])`
        .map(str::to_string)
    };
    if let Some(n) = only(&root) {
        return n;
    }
    let mut kids = children_elements(&root);
    if let (Some(first), None) = (kids.next(), kids.next())
        && root_types(&first).is_empty()
        && let Some(n) = only(&first)
    {
        return n;
    }
    text_content(root)
}

/// The value-class pattern: the values of `.value` / `.value-title` children, joined.
fn value_class(el: ElementRef<'_>) -> Option<Vec<String>> {
    let mut found = Vec::new();
    let mut stack: Vec<ElementRef<'_>> = reversed_children(&el);
    while let Some(child) = stack.pop() {
        if !root_types(&child).is_empty() {
            continue;
        }
        let cls: Vec<&str> = classes(&child).collect();
        if cls.contains(&"value-title") {
            found.push(child.value().attr("title").unwrap_or_default().to_string());
        } else if cls.contains(&"value") {
            let v = child.value();
            let text = match v.name() {
                "img" | "area" => v.attr("alt").map(str::to_string),
                "data" => v.attr("value").map(str::to_string),
                "abbr" => v.attr("title").map(str::to_string),
                "del" | "ins" | "time" => v.attr("datetime").map(str::to_string),
                _ => None,
            };
            found.push(text.unwrap_or_else(|| raw_text(child)));
        } else {
            stack.extend(
                children_elements(&child)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
            );
        }
    }
    (!found.is_empty()).then_some(found)
}

fn p_value(el: ElementRef<'_>) -> String {
    if let Some(parts) = value_class(el) {
        return parts.concat();
    }
    let v = el.value();
    match v.name() {
        "abbr" | "link" if v.attr("title").is_some() => {
            v.attr("title").unwrap_or_default().to_string()
        }
        "data" | "input" if v.attr("value").is_some() => {
            v.attr("value").unwrap_or_default().to_string()
        }
        "img" | "area" if v.attr("alt").is_some() => v.attr("alt").unwrap_or_default().to_string(),
        _ => text_content(el),
    }
}

fn u_value(el: ElementRef<'_>, base: &Url) -> String {
    let v = el.value();
    let attr = match v.name() {
        "a" | "area" | "link" => v.attr("href"),
        "img" | "audio" | "source" | "iframe" => v.attr("src"),
        "video" => v.attr("src").or_else(|| v.attr("poster")),
        "object" => v.attr("data"),
        _ => None,
    };
    if let Some(url) = attr {
        return resolve(base, url);
    }
    if let Some(parts) = value_class(el) {
        return resolve(base, &parts.concat());
    }
    let raw = match v.name() {
        "abbr" if v.attr("title").is_some() => v.attr("title").unwrap_or_default().to_string(),
        "data" | "input" if v.attr("value").is_some() => {
            v.attr("value").unwrap_or_default().to_string()
        }
        _ => text_content(el),
    };
    resolve(base, &raw)
}

fn dt_value(el: ElementRef<'_>) -> String {
    if let Some(parts) = value_class(el) {
        return join_date_parts(&parts);
    }
    let v = el.value();
    match v.name() {
        "time" | "ins" | "del" if v.attr("datetime").is_some() => {
            v.attr("datetime").unwrap_or_default().to_string()
        }
        "abbr" if v.attr("title").is_some() => v.attr("title").unwrap_or_default().to_string(),
        "data" | "input" if v.attr("value").is_some() => {
            v.attr("value").unwrap_or_default().to_string()
        }
        _ => text_content(el),
    }
}

/// Value-class date parts: a date, a time and a zone, in any order, joined as the spec says.
fn join_date_parts(parts: &[String]) -> String {
    let is_date = |p: &str| p.len() >= 8 && p.as_bytes()[4] == b'-';
    let date = parts.iter().find(|p| is_date(p));
    let time = parts.iter().find(|p| !is_date(p) && p.contains(':'));
    let zone = parts
        .iter()
        .find(|p| p.starts_with('+') || p.starts_with('-') || p.as_str() == "Z");
    match (date, time) {
        (Some(d), Some(t)) => format!("{d} {t}{}", zone.map(String::as_str).unwrap_or("")),
        (Some(d), None) => d.clone(),
        _ => parts.concat(),
    }
}

/// A URL value: kept as written when already absolute (parsers agree on not re-serialising
/// it), else resolved against the base.
fn resolve(base: &Url, raw: &str) -> String {
    super::html::resolve_attr(base, raw).into_owned()
}

/// The base URL of a document: its `<base href>` resolved against `url`, else `url`.
pub fn document_base(doc: &scraper::Html, url: &Url) -> Url {
    let selector = scraper::Selector::parse("base[href]").expect("static selector");
    doc.select(&selector)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| url.join(href.trim()).ok())
        .unwrap_or_else(|| url.clone())
}

/// Parses a whole HTML document fetched from `url`.
pub fn parse_document(html: &str, url: &Url) -> Vec<Item> {
    let Ok(doc) = super::html::parse_document(html) else {
        return Vec::new();
    };
    let base = document_base(&doc, url);
    parse_items(doc.root_element(), &base)
}

/// textContent without script/style/template, with `<img>` replaced by its alt (else by its
/// src, space-padded), ends trimmed.
pub fn text_content(el: ElementRef<'_>) -> String {
    text_with_images(el, None).trim().to_string()
}

fn raw_text(el: ElementRef<'_>) -> String {
    text_with_images(el, None)
}

fn text_with_images(el: ElementRef<'_>, base: Option<&Url>) -> String {
    use ego_tree::iter::Edge;
    let mut out = String::new();
    let mut skipping: Option<ego_tree::NodeId> = None;
    for edge in el.traverse() {
        match edge {
            Edge::Open(node) if skipping.is_none() => match node.value() {
                Node::Text(t) => out.push_str(t),
                Node::Element(e)
                    if matches!(e.name(), "script" | "style" | "template")
                        && node.id() != el.id() =>
                {
                    skipping = Some(node.id());
                }
                Node::Element(e) if e.name() == "img" => match (e.attr("alt"), e.attr("src")) {
                    (Some(alt), _) => out.push_str(alt),
                    (None, Some(src)) => {
                        out.push(' ');
                        out.push_str(&base.map_or_else(|| src.to_string(), |b| resolve(b, src)));
                        out.push(' ');
                    }
                    _ => {}
                },
                _ => {}
            },
            Edge::Close(node) if skipping == Some(node.id()) => skipping = None,
            _ => {}
        }
    }
    out
}

/// Longest e-* HTML value kept, in bytes (as much as a mention's content may keep): cut at an
/// element boundary, well-formed; this bounds what one property can hold whatever the page.
pub const E_HTML_MAX: usize = 8 * 1024;

/// Inner HTML with relative `href`/`src` made absolute (as e-* values are specified), in one
/// pass over the tree, at most [`E_HTML_MAX`] bytes.
fn inner_html_resolved(el: ElementRef<'_>, base: &Url) -> String {
    let mut html = String::new();
    super::html::write_inner_html(
        &mut html,
        el,
        super::html::Writing::Faithful(Some(base)),
        E_HTML_MAX,
    );
    html.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading a few properties gives exactly what reading the whole item gives for them, on
    /// pages where nested items carry the same property names (replies with their own
    /// in-reply-to, names and authors).
    #[test]
    fn some_properties_read_as_the_whole_item_reads_them() {
        let target = "https://blog.example/post/";
        let own = format!(
            r#"<article class="h-entry"><h1 class="p-name">Title</h1>
            <a class="p-author h-card" href="https://a.example/"><img class="u-photo" src="/me.jpg" alt="">Ann</a>
            <a class="u-in-reply-to" href="{target}">re</a>
            <div class="e-content">Text <a href="{target}">link</a></div>
            <div class="p-comment h-cite"><span class="p-name">Not the title</span>
              <a class="u-in-reply-to u-like-of" href="https://elsewhere.example/">x</a>
              <span class="p-author h-card">Bob</span><time class="dt-published">2020-01-01</time></div>
            <time class="dt-published" datetime="2024-05-01T10:00:00Z">May</time></article>"#
        );
        let pages = [
            own,
            include_str!("../../benches/fixtures/comments.html").replace("{{TARGET}}", target),
        ];
        let wanted = [
            "name",
            "content",
            "published",
            "author",
            "in-reply-to",
            "like-of",
        ];
        let base = Url::parse("https://page.example/").unwrap();
        for html in &pages {
            let doc = scraper::Html::parse_document(html);
            let entry = doc
                .select(&scraper::Selector::parse(".h-entry").unwrap())
                .next()
                .expect("an h-entry");
            let whole = parse_item(entry, &base);
            let some = parse_properties(entry, &base, &wanted);
            for name in wanted {
                let texts = |item: &Item| -> Vec<String> {
                    let values = item.get(name).iter();
                    values.map(|v| v.text().to_string()).collect()
                };
                match name {
                    // The element is kept, not its serialization.
                    "content" => assert_eq!(whole.get(name).len(), some.get(name).len()),
                    // Only a marked-up name; the whole reading may add an implied one.
                    "name" if some.get(name).is_empty() => {}
                    _ => assert_eq!(texts(&whole), texts(&some), "{name}"),
                }
            }
            assert!(
                some.children.is_empty(),
                "nested items under no property are skipped"
            );
        }
        let doc = scraper::Html::parse_document(&pages[0]);
        let entry = doc
            .select(&scraper::Selector::parse(".h-entry").unwrap())
            .next()
            .unwrap();
        let some = parse_properties(entry, &base, &wanted);
        assert_eq!(some.first("name"), Some("Title"));
        assert_eq!(some.get("in-reply-to").len(), 1);
        assert!(some.get("like-of").is_empty());
        assert_eq!(some.first("author"), Some("Ann"));
    }
}
