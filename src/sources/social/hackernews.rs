//! Hacker News through Algolia's search API: stories whose URL is a post, exact-URL filtered.

use super::*;

/// Result pages asked for at most, per post and crawl (HN pages, Bluesky cursors).
pub(crate) const HN_MAX_PAGES: i64 = 3;

pub(crate) async fn hackernews(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let mut hits = Vec::new();
    for post in posts {
        let key = match_key(&post.url).unwrap_or_default();
        // Incremental: only stories newer than the newest already seen for this post.
        let since: i64 = ctx
            .store
            .social_since(src.name, &post.key)
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut newest = since;
        let mut all_hits = Vec::new();
        for page in 0..HN_MAX_PAGES {
            let mut url = join(&src.api, "/search");
            // Algolia tokenises URLs: search host+path, then keep only exact matches.
            let query = key.trim_end_matches('/');
            url.query_pairs_mut()
                .append_pair("query", query)
                .append_pair("restrictSearchableAttributes", "url")
                .append_pair("tags", "story")
                .append_pair("hitsPerPage", "50")
                .append_pair("page", &page.to_string());
            if since > 0 {
                url.query_pairs_mut()
                    .append_pair("numericFilters", &format!("created_at_i>{since}"));
            }
            let answer = api_json(ctx, src, url, None, None).await?;
            all_hits.extend(answer["hits"].as_array().cloned().unwrap_or_default());
            let answered_page = answer["page"].as_i64().unwrap_or(page);
            if answer["nbPages"].as_i64().unwrap_or(0) <= answered_page + 1 || src.budget == 0 {
                break;
            }
        }
        for hit in &all_hits {
            newest = newest.max(hit["created_at_i"].as_i64().unwrap_or(0));
            let (Some(id), Some(story)) = (str_of(hit, "objectID"), str_of(hit, "url")) else {
                continue;
            };
            if match_key(story).as_deref() != Some(key.as_str()) {
                continue;
            }
            let author = str_of(hit, "author");
            let points = hit["points"].as_i64().unwrap_or(0);
            let comments = hit["num_comments"].as_i64().unwrap_or(0);
            hits.push(Hit {
                source: format!("https://news.ycombinator.com/item?id={id}"),
                post_url: post.url.clone(),
                evidence: RecordEvidence {
                    mention_type: Some("mention".into()),
                    title: str_of(hit, "title").map(str::to_string),
                    author_name: author.map(str::to_string),
                    author_url: author.map(|a| format!("https://news.ycombinator.com/user?id={a}")),
                    published: str_of(hit, "created_at").and_then(crate::verify::normalize_date),
                    text: Some(format!(
                        "{points} points · {comments} comments on Hacker News"
                    )),
                    ..Default::default()
                },
            });
        }
        ctx.store
            .set_social_since(src.name, &post.key, &newest.to_string())
            .or_log("social state not kept");
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}
