//! `backfeed export`: the feeds as static files for a site build, written atomically.

use super::*;

/// What `backfeed export` wrote.
#[derive(Debug, Default, serde::Serialize)]
pub struct ExportSummary {
    pub files: usize,
    pub posts: usize,
    pub mentions: usize,
}

/// Writes the site-wide feeds, per-post JF2 and Atom files, `index.json` and `deleted.json`
/// (what was unpublished, and when) under `dir`.
/// Files are written to a temporary name and renamed, so a site build never reads half a file.
/// Mentions are read from the store a page at a time and written as they come, so memory
/// does not grow with the store (nor with a post's mentions).
/// `only_site` exports one site's posts and mentions (its name); `None` every site's.
pub fn export(
    store: &Store,
    site: Site<'_>,
    only_site: Option<&str>,
    dir: &std::path::Path,
) -> Result<ExportSummary, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("posts"))?;
    let mut summary = ExportSummary::default();
    let mut write = |name: &str,
                     render: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>|
     -> std::io::Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        render(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, &path)?;
        summary.files += 1;
        Ok(())
    };
    let posts = PostInfo::every_post(store);
    let updated = store.published_updated(None)?;
    for (format, file, path) in [
        (Format::Atom, "mentions.atom", "mentions.atom"),
        (Format::Rss, "mentions.rss", "mentions.rss"),
        (Format::JsonFeed, "mentions.json", "mentions.json"),
        (Format::Jf2, "mentions.jf2.json", "mentions.jf2"),
    ] {
        let meta = FeedMeta::new(site, path, None);
        write(file, &mut |out| {
            format.write(
                out,
                &meta,
                updated.as_deref(),
                &posts,
                &mut published_pages(store, None, only_site),
            )
        })?;
    }

    let mut index = serde_json::Map::new();
    for post in store.list_posts_of(only_site)? {
        let key = match_key(&post.url).unwrap_or_default();
        let types = store.count_by_type(&key)?;
        let count: i64 = types.iter().map(|(_, n)| n).sum();
        let updated = store.published_updated(Some(&key))?;
        let meta = FeedMeta::new(
            site,
            "mentions.atom",
            Some((&post.url, post.title.as_deref())),
        );
        let mut mine = published_pages(store, Some(key), None);
        write(&format!("posts/{}.json", post.key), &mut |out| {
            jf2::write_jf2(out, &meta.title, &mut mine, &[])
        })?;
        write(&format!("posts/{}.atom", post.key), &mut |out| {
            Format::Atom.write(out, &meta, updated.as_deref(), &posts, &mut mine)
        })?;
        write(&format!("posts/{}.html", post.key), &mut |out| {
            super::html::write_fragment(out, count as usize, &mut mine)
        })?;
        let types: serde_json::Map<String, Value> =
            types.into_iter().map(|(t, n)| (t, json!(n))).collect();
        index.insert(
            post.url.clone(),
            json!({"key": post.key, "title": post.title, "json": format!("posts/{}.json", post.key),
                   "atom": format!("posts/{}.atom", post.key), "html": format!("posts/{}.html", post.key),
                   "count": count, "type": types}),
        );
        summary.posts += 1;
        summary.mentions += usize::try_from(count).unwrap_or_default();
    }
    write("index.json", &mut |out| write_json(out, &index))?;
    // What left the published set, and when: a site build removes what it showed.
    let mut deleted = store.unpublished_since(None, usize::MAX)?;
    if let Some(name) = only_site {
        let routes = store.site_routes();
        deleted.retain(|d| routes.site_of(&d.target) == name);
    }
    write("deleted.json", &mut |out| write_json(out, &json!(deleted)))?;
    Ok(summary)
}
