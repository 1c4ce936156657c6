//! Bluesky: `app.bsky.feed.searchPosts` with an app password's session (kept in memory,
//! refreshed on expiry); the link must be in a facet or an embed, not just the text.

use super::*;

pub(crate) const BLUESKY_MAX_PAGES: usize = 3;

pub(crate) async fn bluesky_login(
    ctx: &Context,
    src: &mut Source<'_>,
) -> Result<String, SourceError> {
    let var = src
        .cfg
        .password_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_BLUESKY_PASSWORD".into());
    let identifier = src
        .cfg
        .identifier
        .clone()
        .ok_or_else(|| SourceError::Auth("set [sources.bluesky] identifier".into()))?;
    let password = std::env::var(&var)
        .map_err(|_| SourceError::Auth(format!("set ${var} to a Bluesky app password")))?;
    let body = serde_json::json!({"identifier": identifier, "password": password}).to_string();
    let answer = api_json(
        ctx,
        src,
        join(&src.api, "/xrpc/com.atproto.server.createSession"),
        None,
        Some(("application/json", body)),
    )
    .await
    .map_err(|e| match e {
        SourceError::Auth(_) | SourceError::Other(_) => SourceError::Auth(format!(
            "Bluesky login as {identifier} refused: check ${var}"
        )),
        other => other,
    })?;
    remember_bluesky_session(ctx, &answer)
}

/// Keeps a Bluesky session's tokens in memory (never in the store) and returns the access token.
pub(crate) fn remember_bluesky_session(
    ctx: &Context,
    answer: &Value,
) -> Result<String, SourceError> {
    let access = str_of(answer, "accessJwt")
        .ok_or_else(|| SourceError::Auth("Bluesky gave no accessJwt".into()))?;
    let mut credentials = ctx.credentials.lock().unwrap_or_else(|p| p.into_inner());
    credentials.insert("bluesky:access".into(), access.to_string());
    if let Some(refresh) = str_of(answer, "refreshJwt") {
        credentials.insert("bluesky:refresh".into(), refresh.to_string());
    }
    Ok(access.to_string())
}

/// An expired session: `refreshSession` with the refresh token, else a new login.
pub(crate) async fn bluesky_refresh(
    ctx: &Context,
    src: &mut Source<'_>,
) -> Result<String, SourceError> {
    let refresh = ctx
        .credentials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get("bluesky:refresh")
        .cloned();
    if let Some(refresh) = refresh {
        let url = join(&src.api, "/xrpc/com.atproto.server.refreshSession");
        let empty = Some(("", String::new()));
        if let Ok(answer) = api_json(ctx, src, url, Some(&format!("Bearer {refresh}")), empty).await
        {
            return remember_bluesky_session(ctx, &answer);
        }
    }
    bluesky_login(ctx, src).await
}

/// Link URIs a post record carries: rich-text link facets and external embeds (also inside
/// record-with-media). The text itself is often truncated and is not evidence.
pub(crate) fn bluesky_links(record: &Value) -> Vec<String> {
    let mut links = Vec::new();
    for facet in record["facets"].as_array().into_iter().flatten() {
        for feature in facet["features"].as_array().into_iter().flatten() {
            if str_of(feature, "$type").is_some_and(|t| t.ends_with("#link"))
                && let Some(uri) = str_of(feature, "uri")
            {
                links.push(uri.to_string());
            }
        }
    }
    for embed in [&record["embed"], &record["embed"]["media"]] {
        if let Some(uri) = str_of(&embed["external"], "uri") {
            links.push(uri.to_string());
        }
    }
    links
}

pub(crate) async fn bluesky(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let session = ctx
        .credentials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get("bluesky:access")
        .cloned();
    let mut token = match session {
        Some(t) => t,
        None => bluesky_login(ctx, src).await?,
    };
    let mut hits = Vec::new();
    for post in posts {
        let key = match_key(&post.url).unwrap_or_default();
        // Incremental: posts since the newest already seen for this post, page by page.
        let since = ctx.store.social_since(src.name, &post.key).ok().flatten();
        let api = src.api.clone();
        let search = |cursor: Option<&str>| {
            let mut u = join(&api, "/xrpc/app.bsky.feed.searchPosts");
            u.query_pairs_mut()
                .append_pair("q", &post.url)
                .append_pair("url", &post.url)
                .append_pair("sort", "latest")
                .append_pair("limit", "100");
            if let Some(since) = &since {
                u.query_pairs_mut().append_pair("since", since);
            }
            if let Some(cursor) = cursor {
                u.query_pairs_mut().append_pair("cursor", cursor);
            }
            u
        };
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..BLUESKY_MAX_PAGES {
            let page = match api_json(
                ctx,
                src,
                search(cursor.as_deref()),
                Some(&format!("Bearer {token}")),
                None,
            )
            .await
            {
                Err(SourceError::Auth(_)) | Err(SourceError::Other(_)) if src.budget > 2 => {
                    // An expired session answers 400 ExpiredToken (or 401): refresh it, once.
                    token = bluesky_refresh(ctx, src).await?;
                    api_json(
                        ctx,
                        src,
                        search(cursor.as_deref()),
                        Some(&format!("Bearer {token}")),
                        None,
                    )
                    .await?
                }
                other => other?,
            };
            cursor = str_of(&page, "cursor").map(str::to_string);
            let empty = page["posts"].as_array().is_none_or(|p| p.is_empty());
            pages.push(page);
            if cursor.is_none() || empty {
                break;
            }
        }
        let newest = pages
            .iter()
            .flat_map(|page| page["posts"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| str_of(&p["record"], "createdAt").map(str::to_string))
            .max();
        if let Some(newest) = newest.filter(|n| since.as_ref().is_none_or(|s| n > s)) {
            ctx.store
                .set_social_since(src.name, &post.key, &newest)
                .or_log("social state not kept");
        }
        for p in pages
            .iter()
            .flat_map(|page| page["posts"].as_array().cloned().unwrap_or_default())
        {
            let p = &p;
            let record = &p["record"];
            if !bluesky_links(record)
                .iter()
                .any(|l| match_key(l).as_deref() == Some(key.as_str()))
            {
                continue;
            }
            let (Some(uri), Some(did)) = (str_of(p, "uri"), str_of(&p["author"], "did")) else {
                continue;
            };
            let rkey = uri.rsplit('/').next().unwrap_or_default();
            let handle = str_of(&p["author"], "handle").unwrap_or(did);
            hits.push(Hit {
                source: format!("https://bsky.app/profile/{did}/post/{rkey}"),
                post_url: post.url.clone(),
                evidence: RecordEvidence {
                    mention_type: Some("mention".into()),
                    author_name: str_of(&p["author"], "displayName")
                        .or(Some(handle))
                        .map(str::to_string),
                    author_url: Some(format!("https://bsky.app/profile/{handle}")),
                    author_photo: str_of(&p["author"], "avatar").map(str::to_string),
                    published: str_of(record, "createdAt").and_then(crate::verify::normalize_date),
                    text: str_of(record, "text").map(str::to_string),
                    ..Default::default()
                },
            });
        }
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bluesky_links_come_from_facets_and_embeds_not_text() {
        let record = serde_json::json!({
            "text": "see https://b.example/2024/he...",
            "facets": [{"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://b.example/a"}]}],
            "embed": {"$type": "app.bsky.embed.recordWithMedia", "media": {"external": {"uri": "https://b.example/b"}}}
        });
        assert_eq!(
            bluesky_links(&record),
            ["https://b.example/a", "https://b.example/b"]
        );
    }
}
