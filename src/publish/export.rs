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
pub fn export(
    store: &Store,
    site: Site<'_>,
    dir: &std::path::Path,
) -> Result<ExportSummary, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("posts"))?;
    let mut summary = ExportSummary::default();
    let mut write = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        summary.files += 1;
        Ok(())
    };
    let all = published(store, None, i64::MAX)?;
    let posts = PostInfo::load(store, &all);
    let site_meta = |format: &str| FeedMeta::new(site, &format!("mentions.{format}"), None);
    write(
        "mentions.atom",
        &Format::Atom.render(&site_meta("atom"), &all, &posts),
    )?;
    write(
        "mentions.rss",
        &Format::Rss.render(&site_meta("rss"), &all, &posts),
    )?;
    write(
        "mentions.json",
        &Format::JsonFeed.render(&site_meta("json"), &all, &posts),
    )?;
    write(
        "mentions.jf2.json",
        &Format::Jf2.render(&site_meta("jf2"), &all, &posts),
    )?;

    let mut index = serde_json::Map::new();
    for post in store.list_posts()? {
        let key_match = match_key(&post.url).unwrap_or_default();
        let mine: Vec<Mention> = all
            .iter()
            .filter(|m| match_key(&m.target).as_deref() == Some(&key_match))
            .cloned()
            .collect();
        let meta = FeedMeta::new(
            site,
            "mentions.atom",
            Some((&post.url, post.title.as_deref())),
        );
        write(
            &format!("posts/{}.json", post.key),
            &jf2_feed(&meta.title, &mine),
        )?;
        write(
            &format!("posts/{}.atom", post.key),
            &atom(&meta, &mine, &posts),
        )?;
        write(
            &format!("posts/{}.html", post.key),
            super::html::fragment(&mine).as_bytes(),
        )?;
        let mut types = serde_json::Map::new();
        for m in &mine {
            let n = types.entry(m.mention_type.as_str()).or_insert(json!(0));
            *n = json!(n.as_i64().unwrap_or(0) + 1);
        }
        index.insert(
            post.url.clone(),
            json!({"key": post.key, "title": post.title, "json": format!("posts/{}.json", post.key),
                   "atom": format!("posts/{}.atom", post.key), "html": format!("posts/{}.html", post.key),
                   "count": mine.len(), "type": types}),
        );
        summary.posts += 1;
    }
    summary.mentions = all.len();
    write("index.json", &json_bytes(&Value::Object(index)))?;
    // What left the published set, and when: a site build removes what it showed.
    let deleted = store.unpublished_since(None, usize::MAX)?;
    write("deleted.json", &json_bytes(&json!(deleted)))?;
    Ok(summary)
}
