//! webmention.io's history: the JF2 feed its `/api/mentions.jf2` serves, saved to a file (one
//! feed, or several pages one after another). `wm-property` gives the type, `wm-received`
//! when it was first seen, `wm-source` and `wm-target` the pair.

use super::{ImportError, Sink};
use crate::model::{Kind, MentionType, Status};
use crate::store::ImportedMention;
use serde_json::Value;
use std::io::BufRead;

pub(super) fn read(file: impl BufRead, sink: &mut Sink<'_, '_>) -> Result<(), ImportError> {
    let pages = serde_json::Deserializer::from_reader(file).into_iter::<Value>();
    for (n, page) in pages.enumerate() {
        let page = page.map_err(|e| {
            ImportError::Malformed(format!("page {} is not JSON: {e} (truncated?)", n + 1))
        })?;
        let children = match &page {
            Value::Array(entries) => entries.as_slice(),
            feed => feed["children"].as_array().map_or(&[][..], Vec::as_slice),
        };
        for child in children {
            entry(sink, child)?;
        }
    }
    Ok(())
}

fn entry(sink: &mut Sink<'_, '_>, e: &Value) -> Result<(), ImportError> {
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (Some(source), Some(target)) = (text(&e["wm-source"]), text(&e["wm-target"])) else {
        sink.skip("an entry without wm-source or wm-target");
        return Ok(());
    };
    let date = |key: &str| text(&e[key]).and_then(|d| crate::verify::normalize_date(&d));
    let content_text = text(&e["content"]["text"]);
    let base = url::Url::parse(&source).ok();
    let content_html = text(&e["content"]["html"])
        .zip(base)
        .map(|(html, base)| crate::verify::sanitize(&html, &base))
        .filter(|h| !h.is_empty());
    sink.mention(ImportedMention {
        source,
        target,
        kind: Some(Kind::Webmention),
        mention_type: Some(
            e["wm-property"]
                .as_str()
                .and_then(MentionType::from_wm_property)
                .unwrap_or(MentionType::Mention),
        ),
        status: Some(Status::Verified),
        title: text(&e["name"]),
        author_name: text(&e["author"]["name"]),
        author_url: text(&e["author"]["url"]),
        author_photo: text(&e["author"]["photo"]),
        published: date("published"),
        excerpt: content_text.map(|t| crate::text::truncate(&crate::text::collapse(&t), 400)),
        content_html,
        first_seen: date("wm-received"),
        ..Default::default()
    })
}
