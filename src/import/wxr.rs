//! WordPress's own export (WXR), read as a stream: an `<item>` is a post (its `<link>` names
//! it), its `<wp:comment>`s of type `pingback`, `trackback` and `webmention` are mentions of it;
//! regular comments are counted and skipped. WordPress stores a pingback's source page title as
//! its "author", a trackback's blog name as its author, and the Webmention plugin's source and
//! type in comment meta; each is read as such.

use super::{ImportError, Sink};
use crate::model::{Extracted, Kind, MentionType, Status};
use crate::store::ImportedMention;
use quick_xml::events::Event;
use std::io::BufRead;

#[derive(Default)]
struct Comment {
    fields: std::collections::HashMap<String, String>,
    meta: Vec<(String, String)>,
}

impl Comment {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

pub(super) fn read(file: impl BufRead, sink: &mut Sink<'_, '_>) -> Result<(), ImportError> {
    let mut reader = quick_xml::Reader::from_reader(file);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let (mut link, mut title, mut post_type) = (String::new(), String::new(), String::new());
    let mut post_date = String::new();
    let mut comments: Vec<Comment> = Vec::new();
    let mut comment: Option<Comment> = None;
    let mut meta_key = String::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            // A syntax error knows where it is; a decoding error (a byte that is not UTF-8)
            // is reported at the start of the file, so the reader's position says where.
            let at = match reader.error_position() {
                0 => reader.buffer_position(),
                at => at,
            };
            ImportError::Malformed(format!("not well-formed XML near byte {at}: {e}"))
        })?;
        match event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                match name.as_str() {
                    "item" => {
                        (link, title, post_type) = Default::default();
                        post_date.clear();
                        comments.clear();
                    }
                    "wp:comment" => comment = Some(Comment::default()),
                    _ => {}
                }
                path.push(name);
                text.clear();
            }
            // A field's text is kept up to TEXT_MAX: a comment's content is cut far shorter
            // when stored, so a huge one costs reading, not memory.
            Event::Text(t) => push_capped(&mut text, &t.xml10_content()),
            Event::CData(t) => push_capped(&mut text, &t.xml10_content()),
            Event::GeneralRef(r) => {
                // Entity references between text: the five XML ones and numeric ones.
                let name = r.xml10_content().into_owned();
                match r.resolve_char_ref().ok().flatten() {
                    Some(c) => text.push(c),
                    None => text.push_str(match name.as_str() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    }),
                }
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(ImportError::Malformed(format!(
                        "unbalanced end tag at byte {}",
                        reader.buffer_position()
                    )));
                };
                let value = std::mem::take(&mut text);
                let parent = path.last().map(String::as_str);
                match (name.as_str(), parent) {
                    ("link", Some("item")) => link = value,
                    ("title", Some("item")) => title = value,
                    ("wp:post_type", Some("item")) => post_type = value,
                    ("wp:post_date_gmt", Some("item")) => post_date = value,
                    ("wp:meta_key", Some("wp:commentmeta")) => meta_key = value,
                    ("wp:meta_value", Some("wp:commentmeta")) => {
                        if let Some(c) = comment.as_mut() {
                            c.meta.push((std::mem::take(&mut meta_key), value));
                        }
                    }
                    // WordPress writes an item's link and type before its comments: each
                    // comment is imported as soon as it ends, not held until the item does.
                    ("wp:comment", _) => {
                        if let Some(c) = comment.take() {
                            if link.is_empty() || post_type.is_empty() {
                                comments.push(c);
                            } else {
                                item_comment(sink, &link, &title, &post_date, &post_type, &c)?;
                            }
                        }
                    }
                    (field, Some("wp:comment")) => {
                        if let Some(c) = comment.as_mut() {
                            c.fields.insert(field.to_string(), value);
                        }
                    }
                    ("item", _) => {
                        for c in comments.drain(..) {
                            item_comment(sink, &link, &title, &post_date, &post_type, &c)?;
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if !path.is_empty() {
                    return Err(ImportError::Malformed(format!(
                        "the file ends inside <{}> at byte {}: truncated?",
                        path.join("><"),
                        reader.buffer_position()
                    )));
                }
                return Ok(());
            }
            _ => {}
        }
        buf.clear();
    }
}

/// Longest text kept for one field of the file.
const TEXT_MAX: usize = 1024 * 1024;

/// Appends `more` to `text`, up to [`TEXT_MAX`] bytes (cut at a character boundary).
fn push_capped(text: &mut String, more: &str) {
    let room = TEXT_MAX.saturating_sub(text.len());
    if more.len() <= room {
        text.push_str(more);
    } else {
        let mut cut = room;
        while !more.is_char_boundary(cut) {
            cut -= 1;
        }
        text.push_str(&more[..cut]);
    }
}

fn item_comment(
    sink: &mut Sink<'_, '_>,
    link: &str,
    post_title: &str,
    post_date: &str,
    post_type: &str,
    c: &Comment,
) -> Result<(), ImportError> {
    let kind = match c.get("wp:comment_type") {
        Some("pingback") => Kind::Pingback,
        Some("trackback") => Kind::Trackback,
        Some("webmention") => Kind::Webmention,
        _ => {
            sink.skip("a regular comment, not a linkback");
            return Ok(());
        }
    };
    if post_type == "attachment" || link.is_empty() {
        sink.skip("not on a post with a link");
        return Ok(());
    }
    let Some(source) = c
        .meta("webmention_source_url")
        .or_else(|| c.get("wp:comment_author_url"))
    else {
        sink.skip("no source URL");
        return Ok(());
    };
    let status = match c.get("wp:comment_approved") {
        Some("1") => Status::Verified,
        Some("0") => Status::Held,
        Some("spam") => Status::Rejected,
        _ => Status::Deleted, // trash, post-trashed
    };
    let date = c
        .get("wp:comment_date_gmt")
        .filter(|d| !d.starts_with("0000"))
        .or_else(|| c.get("wp:comment_date"))
        .and_then(crate::verify::normalize_date);
    let content = c.get("wp:comment_content").unwrap_or("");
    let text = crate::text::collapse(&crate::verify::html_text(content));
    // WordPress keeps names and titles HTML-escaped (`Dave&#039;s Weblog &laquo; …`): read
    // them as the HTML they are, once, so that what is stored is the text a reader saw.
    let author = c.get("wp:comment_author").map(super::decoded_text);
    let mut m = ImportedMention {
        source: source.to_string(),
        target: link.trim().to_string(),
        post_title: Some(post_title.trim().to_string()).filter(|t| !t.is_empty()),
        // WordPress writes "0000-00-00 00:00:00" for drafts: no date, not year zero.
        post_published: Some(post_date.trim())
            .filter(|d| !d.is_empty() && !d.starts_with("0000"))
            .and_then(crate::verify::normalize_date),
        kind: Some(kind),
        status: Some(status),
        facts: Extracted {
            mention_type: Some(
                c.meta("semantic_linkbacks_type")
                    .and_then(MentionType::parse)
                    .unwrap_or(MentionType::Mention),
            ),
            published: date.clone(),
            excerpt: Some(crate::text::truncate(&text, 400)).filter(|t| !t.is_empty()),
            ..Default::default()
        },
        first_seen: date,
    };
    if kind == Kind::Pingback {
        // WordPress keeps the source page's title where a comment's author goes.
        m.facts.title = author;
    } else {
        m.facts.author.name = author;
        m.facts.author.photo = c.meta("semantic_linkbacks_avatar").map(str::to_string);
        if kind == Kind::Webmention {
            m.facts.content_html = Some(content.to_string());
        }
    }
    sink.mention(m)
}
