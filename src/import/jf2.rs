//! webmention.io's history: the JF2 feed its `/api/mentions.jf2` serves, saved to a file (one
//! feed, or several pages one after another). `wm-property` gives the type, `wm-received`
//! when it was first seen, `wm-source` and `wm-target` the pair.

use super::{ImportError, Sink};
use crate::model::{Author, Extracted, Kind, MentionType, Status};
use crate::store::ImportedMention;
use serde_json::Value;
use std::io::BufRead;

/// Reads page after page, one entry in memory at a time: a feed's `children` (or a bare array
/// of entries) are handed to the sink as they are parsed, never collected.
pub(super) fn read(mut file: impl BufRead, sink: &mut Sink<'_, '_>) -> Result<(), ImportError> {
    for page in 1.. {
        // Whitespace between pages; the end of the file ends the import.
        loop {
            let buf = file.fill_buf()?;
            let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if buf.is_empty() {
                return Ok(());
            }
            let done = blank < buf.len();
            file.consume(blank);
            if done {
                break;
            }
        }
        let mut failure = None;
        let mut json = serde_json::Deserializer::from_reader(&mut file);
        let read = serde::de::DeserializeSeed::deserialize(
            Page {
                sink: &mut *sink,
                failure: &mut failure,
            },
            &mut json,
        );
        if let Some(e) = failure {
            return Err(e);
        }
        read.map_err(|e| {
            ImportError::Malformed(format!("page {page} is not JSON: {e} (truncated?)"))
        })?;
    }
    Ok(())
}

/// One page: a feed object whose `children` stream to the sink, or a bare array of entries.
struct Page<'s, 'a, 'b> {
    sink: &'s mut Sink<'a, 'b>,
    /// Why the sink stopped the page (an error of the store, not of the JSON).
    failure: &'s mut Option<ImportError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Page<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Page<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JF2 feed or an array of entries")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Page { sink, failure } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == "children" {
                map.next_value_seed(Page {
                    sink: &mut *sink,
                    failure: &mut *failure,
                })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(child) = seq.next_element::<Value>()? {
            if let Err(e) = entry(self.sink, &child) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("stopped by the store"));
            }
        }
        Ok(())
    }
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
    sink.mention(ImportedMention {
        source,
        target,
        kind: Some(Kind::Webmention),
        status: Some(Status::Verified),
        facts: Extracted {
            mention_type: Some(
                e["wm-property"]
                    .as_str()
                    .and_then(MentionType::from_wm_property)
                    .unwrap_or(MentionType::Mention),
            ),
            title: text(&e["name"]),
            author: Author {
                name: text(&e["author"]["name"]),
                url: text(&e["author"]["url"]),
                photo: text(&e["author"]["photo"]),
            },
            published: date("published"),
            excerpt: content_text.map(|t| crate::text::truncate(&crate::text::collapse(&t), 400)),
            content_html: text(&e["content"]["html"]),
            ..Default::default()
        },
        first_seen: date("wm-received"),
        ..Default::default()
    })
}
