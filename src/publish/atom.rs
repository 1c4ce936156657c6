//! Atom 1.0, newest first, with RFC 4685 `thr:in-reply-to` naming the post.

use super::*;

/// Atom 1.0 of `each` to `out`; `updated`: the latest `updated_at` among them.
pub(crate) fn write_atom(
    out: &mut dyn std::io::Write,
    meta: &FeedMeta,
    updated: Option<&str>,
    posts: &PostInfo,
    each: &mut Each<'_>,
) -> XmlResult {
    let mut w = Writer::new_with_indent(out, b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("feed")
        .with_attribute(("xmlns", "http://www.w3.org/2005/Atom"))
        .with_attribute(("xmlns:thr", "http://purl.org/syndication/thread/1.0"))
        .write_inner_content(|w| {
            text_el(w, "id", &meta.feed_id())?;
            text_el(w, "title", &meta.title)?;
            text_el(w, "updated", updated.unwrap_or("2026-01-01T00:00:00Z"))?;
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
            each(&mut |m| atom_entry(w, meta, m, posts))
        })?;
    Ok(())
}

pub(crate) fn atom_entry<W: std::io::Write>(
    w: &mut Writer<W>,
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
            .with_attribute(("href", xml_safe(&m.source).as_ref()))
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
