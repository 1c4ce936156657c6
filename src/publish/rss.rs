//! RSS 2.0, newest first: the source as each item's link, a stable `guid`.

use super::*;

/// RSS 2.0 of `each` to `out`; `updated`: the latest `updated_at` among them.
pub(crate) fn write_rss(
    out: &mut dyn std::io::Write,
    meta: &FeedMeta,
    updated: Option<&str>,
    posts: &PostInfo,
    each: &mut Each<'_>,
) -> XmlResult {
    let mut w = Writer::new_with_indent(out, b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("rss")
        .with_attribute(("version", "2.0"))
        .with_attribute(("xmlns:atom", "http://www.w3.org/2005/Atom"))
        .with_attribute(("xmlns:dc", "http://purl.org/dc/elements/1.1/"))
        .write_inner_content(|w| {
            w.create_element("channel").write_inner_content(|w| {
                text_el(w, "title", &meta.title)?;
                text_el(w, "link", &meta.home_url)?;
                text_el(w, "description", &format!("Mentions of {}", meta.home_url))?;
                w.create_element("atom:link")
                    .with_attribute(("rel", "self"))
                    .with_attribute(("type", "application/rss+xml"))
                    .with_attribute(("href", meta.self_url.as_str()))
                    .write_empty()?;
                if let Some(updated) = updated {
                    text_el(w, "lastBuildDate", &rfc2822(updated))?;
                }
                each(&mut |m| {
                    w.create_element("item").write_inner_content(|w| {
                        text_el(w, "title", &entry_title(m, posts.title(&m.target)))?;
                        text_el(w, "link", &m.source)?;
                        w.create_element("guid")
                            .with_attribute(("isPermaLink", "false"))
                            .write_text_content(BytesText::new(&entry_id(&meta.id_host, m)))?;
                        text_el(w, "pubDate", &rfc2822(entry_date(m)))?;
                        if let Some(name) = &m.author.name {
                            text_el(w, "dc:creator", name)?;
                        }
                        text_el(w, "category", m.mention_type.as_str())?;
                        let description = match (&m.content_html, &m.excerpt) {
                            (Some(html), _) => html.clone(),
                            (None, Some(ex)) => html_escape(ex),
                            (None, None) => html_escape(&m.source),
                        };
                        text_el(w, "description", &description)?;
                        Ok(())
                    })?;
                    Ok(())
                })
            })?;
            Ok(())
        })?;
    Ok(())
}
