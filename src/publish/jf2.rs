//! JF2 (webmention.io's shape): the feed, one entry, and the counts by type.

use super::*;

/// Pretty JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026`: the same value to
/// any JSON parser, but JSON pasted into an HTML page can never open a tag. (Outside strings,
/// JSON never contains these characters, so replacing them everywhere is exact.)
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let text = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for byte in text {
        match byte {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            other => out.push(other),
        }
    }
    out
}

/// One mention as webmention.io's JF2 API shows it.
pub fn jf2_entry(m: &Mention) -> Value {
    let property = m.mention_type.wm_property();
    let received = m.verified_at.as_deref().unwrap_or(&m.first_seen);
    let mut entry = json!({
        "type": "entry",
        "author": {"type": "card", "name": m.author.name, "photo": m.author.photo, "url": m.author.url},
        "url": m.final_url.as_deref().unwrap_or(&m.source),
        "published": m.published,
        "wm-received": received,
        "wm-id": m.id,
        "wm-source": m.source,
        "wm-target": m.target,
        "wm-protocol": m.kind.as_str(),
        "wm-property": property,
        "wm-private": false,
    });
    entry[property] = json!(m.target);
    if !m.syndication.is_empty() {
        entry["syndication"] = json!(m.syndication);
    }
    let text = m.excerpt.clone().or_else(|| {
        m.content_html
            .as_ref()
            .map(|h| crate::text::collapse(&crate::verify::html_text(h)))
    });
    if text.is_some() || m.content_html.is_some() {
        let html = m
            .content_html
            .clone()
            .unwrap_or_else(|| html_escape(text.as_deref().unwrap_or("")));
        entry["content"] = json!({"text": text.unwrap_or_default(), "html": html});
    }
    if let Some(title) = &m.title {
        entry["name"] = json!(title);
    }
    entry
}

/// A JF2 feed (`{"type": "feed", "children": [...]}`).
pub fn jf2_feed(name: &str, mentions: &[Mention]) -> Vec<u8> {
    jf2_feed_with_deletions(name, mentions, &[])
}

/// A JF2 feed of `mentions`, then of `deleted` as entries with `"deleted": true` (their
/// `wm-received` is when they left the published set), for a client that follows changes.
pub fn jf2_feed_with_deletions(
    name: &str,
    mentions: &[Mention],
    deleted: &[&crate::store::Unpublished],
) -> Vec<u8> {
    let children: Vec<Value> = mentions
        .iter()
        .map(jf2_entry)
        .chain(deleted.iter().map(|d| {
            json!({"type": "entry", "wm-source": d.source, "wm-target": d.target,
                   "wm-received": d.deleted_at, "deleted": true})
        }))
        .collect();
    json_bytes(&json!({"type": "feed", "name": name, "children": children}))
}

/// `{"count": N, "type": {"mention": n, ...}}` for `/api/count.json`.
pub fn count_json(by_type: &[(String, i64)]) -> Vec<u8> {
    let total: i64 = by_type.iter().map(|(_, n)| n).sum();
    let types: serde_json::Map<String, Value> =
        by_type.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
    json_bytes(&json!({"count": total, "type": types}))
}
