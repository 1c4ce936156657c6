//! JSON Feed 1.1, newest first, from typed borrowed structs (no intermediate JSON values).

use super::*;

/// JSON Feed 1.1 of `each` to `out`.
pub(crate) fn write_json_feed(
    out: &mut dyn std::io::Write,
    meta: &FeedMeta,
    posts: &PostInfo,
    each: &mut Each<'_>,
) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Feed<'a, 'e, 'x> {
        version: &'static str,
        title: &'a str,
        home_page_url: &'a str,
        feed_url: &'a str,
        items: Items<'a, 'e, 'x>,
    }
    /// The items, serialized one by one as `each` hands their mentions over.
    struct Items<'a, 'e, 'x> {
        meta: &'a FeedMeta,
        posts: &'a PostInfo,
        each: std::cell::RefCell<&'e mut Each<'x>>,
    }
    impl serde::Serialize for Items<'_, '_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            serialize_each(&mut seq, &self.each, |m, seq| {
                seq.serialize_element(&item(self.meta, self.posts, m))
            })?;
            seq.end()
        }
    }
    #[derive(serde::Serialize)]
    struct Item<'a> {
        id: String,
        url: &'a str,
        external_url: &'a str,
        title: String,
        date_published: &'a str,
        date_modified: &'a str,
        authors: [ItemAuthor<'a>; 1],
        tags: [&'static str; 1],
        #[serde(skip_serializing_if = "Option::is_none")]
        content_html: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<&'a str>,
        _backfeed: Extension<'a>,
    }
    #[derive(serde::Serialize)]
    struct ItemAuthor<'a> {
        name: Option<&'a str>,
        url: Option<&'a str>,
        avatar: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Extension<'a> {
        #[serde(rename = "type")]
        mention_type: &'static str,
        kind: &'static str,
        target: &'a str,
        source: &'a str,
        /// Every other address the reaction was seen at (its original, its copies).
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        syndication: &'a [String],
    }
    fn item<'a>(meta: &'a FeedMeta, posts: &'a PostInfo, m: &'a Mention) -> Item<'a> {
        Item {
            id: entry_id(&meta.id_host, m),
            url: &m.source,
            external_url: &m.target,
            title: entry_title(m, posts.title(&m.target)),
            date_published: entry_date(m),
            date_modified: &m.updated_at,
            authors: [ItemAuthor {
                name: m.author.name.as_deref(),
                url: m.author.url.as_deref(),
                avatar: m.author.photo.as_deref(),
            }],
            tags: [m.mention_type.as_str()],
            // JSON Feed needs content_html or content_text.
            content_html: m.content_html.as_deref(),
            content_text: m
                .content_html
                .is_none()
                .then(|| m.excerpt.as_deref().unwrap_or(&m.source)),
            summary: m.excerpt.as_deref(),
            _backfeed: Extension {
                mention_type: m.mention_type.as_str(),
                kind: m.kind.as_str(),
                target: &m.target,
                source: &m.source,
                syndication: &m.syndication,
            },
        }
    }
    write_json(
        out,
        &Feed {
            version: "https://jsonfeed.org/version/1.1",
            title: &meta.title,
            home_page_url: &meta.home_url,
            feed_url: &meta.self_url,
            items: Items {
                meta,
                posts,
                each: std::cell::RefCell::new(each),
            },
        },
    )
}
