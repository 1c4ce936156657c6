//! JF2 (webmention.io's shape): the feed, one entry, and the counts by type.

use super::*;

/// Pretty JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026`: the same value to
/// any JSON parser, but JSON pasted into an HTML page can never open a tag. (Outside strings,
/// JSON never contains these characters, so replacing them everywhere is exact.)
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(&mut out, value).expect("JSON values serialize");
    out
}

/// `value` as pretty JSON to `out`, with `<`, `>` and `&` escaped (`\u003c`…) so that the
/// JSON is safe inside an HTML `<script>` as well.
pub fn write_json<T: serde::Serialize + ?Sized>(
    out: &mut dyn std::io::Write,
    value: &T,
) -> std::io::Result<()> {
    /// Escapes those three bytes on their way to `out` (none is part of a UTF-8 sequence).
    struct HtmlSafe<'w>(&'w mut dyn std::io::Write);
    impl std::io::Write for HtmlSafe<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut rest = buf;
            while let Some(at) = rest.iter().position(|b| matches!(b, b'<' | b'>' | b'&')) {
                self.0.write_all(&rest[..at])?;
                self.0.write_all(match rest[at] {
                    b'<' => b"\\u003c",
                    b'>' => b"\\u003e",
                    _ => b"\\u0026",
                })?;
                rest = &rest[at + 1..];
            }
            self.0.write_all(rest)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }
    serde_json::to_writer_pretty(HtmlSafe(out), value).map_err(std::io::Error::other)
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

/// A JF2 feed of `mentions`, then of `deleted` as entries with `"deleted": true` (their
/// `wm-received` is when they left the published set), for a client that follows changes.
pub fn jf2_feed_with_deletions(
    name: &str,
    mentions: &[Mention],
    deleted: &[&crate::store::Unpublished],
) -> Vec<u8> {
    let mut out = Vec::new();
    write_jf2(&mut out, name, &mut super::in_memory(mentions), deleted)
        .expect("writing to memory cannot fail");
    out
}

/// The JF2 feed of `each`, then of `deleted`, to `out`.
pub(crate) fn write_jf2(
    out: &mut dyn std::io::Write,
    name: &str,
    each: &mut super::Each<'_>,
    deleted: &[&crate::store::Unpublished],
) -> std::io::Result<()> {
    /// Keys in the order a JSON object of them had (sorted).
    #[derive(serde::Serialize)]
    struct Feed<'a, 'e, 'x> {
        children: Children<'a, 'e, 'x>,
        name: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    }
    struct Children<'a, 'e, 'x> {
        each: std::cell::RefCell<&'e mut super::Each<'x>>,
        deleted: &'a [&'a crate::store::Unpublished],
    }
    impl serde::Serialize for Children<'_, '_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            super::serialize_each(&mut seq, &self.each, |m, seq| {
                seq.serialize_element(&jf2_entry(m))
            })?;
            for d in self.deleted {
                seq.serialize_element(&json!({"type": "entry", "wm-source": d.source,
                    "wm-target": d.target, "wm-received": d.deleted_at, "deleted": true}))?;
            }
            seq.end()
        }
    }
    write_json(
        out,
        &Feed {
            children: Children {
                each: std::cell::RefCell::new(each),
                deleted,
            },
            name,
            kind: "feed",
        },
    )
}

/// `{"count": N, "type": {"mention": n, ...}}` for `/api/count.json`.
pub fn count_json(by_type: &[(String, i64)]) -> Vec<u8> {
    let total: i64 = by_type.iter().map(|(_, n)| n).sum();
    let types: serde_json::Map<String, Value> =
        by_type.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
    json_bytes(&json!({"count": total, "type": types}))
}
