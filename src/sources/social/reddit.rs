//! Reddit: `/api/info.json?url=` for each spelling of a post's URL, anonymously or with
//! app-only OAuth.

use super::*;

/// The exact-string variants Reddit may have been given for one post URL.
pub(crate) fn url_variants(post: &str) -> Vec<String> {
    let Ok(url) = Url::parse(post) else {
        return vec![post.to_string()];
    };
    let mut out = Vec::new();
    for scheme in ["https", "http"] {
        let mut u = url.clone();
        let _ = u.set_scheme(scheme);
        let with = u.to_string();
        let without = if u.path().len() > 1 && u.path().ends_with('/') {
            let mut v = u.clone();
            let trimmed = v.path().trim_end_matches('/').to_string();
            v.set_path(&trimmed);
            v.to_string()
        } else {
            format!("{}/", with.trim_end_matches('/'))
        };
        for candidate in [with, without] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Requests per crawl with app-only OAuth (Reddit allows 100 a minute per client).
pub(crate) const REDDIT_OAUTH_BUDGET: usize = 90;

/// App-only OAuth, when the client id and secret are in the environment: a client-credentials
/// token, and the OAuth API's larger budget. `None` means anonymous.
pub(crate) async fn reddit_oauth(
    ctx: &Context,
    src: &mut Source<'_>,
) -> Result<Option<(Url, String)>, SourceError> {
    use base64::Engine;
    let id_var = src
        .cfg
        .client_id_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_REDDIT_CLIENT_ID".into());
    let secret_var = src
        .cfg
        .client_secret_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_REDDIT_CLIENT_SECRET".into());
    let (Ok(id), Ok(secret)) = (std::env::var(&id_var), std::env::var(&secret_var)) else {
        return Ok(None);
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let form = (
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials".to_string(),
    );
    let answer = api_json(
        ctx,
        src,
        join(&src.api, "/api/v1/access_token"),
        Some(&format!("Basic {basic}")),
        Some(form),
    )
    .await
    .map_err(|e| match e {
        SourceError::Auth(_) => SourceError::Auth(format!(
            "Reddit refused the app credentials: check ${id_var} and ${secret_var}"
        )),
        other => other,
    })?;
    let token = str_of(&answer, "access_token").ok_or_else(|| {
        SourceError::Auth(format!(
            "Reddit gave no token: check ${id_var} and ${secret_var}"
        ))
    })?;
    let base = src
        .cfg
        .oauth_api_base
        .as_deref()
        .unwrap_or("https://oauth.reddit.com");
    let base = Url::parse(base).map_err(|e| SourceError::Other(format!("oauth_api_base: {e}")))?;
    src.budget = REDDIT_OAUTH_BUDGET;
    Ok(Some((base, token.to_string())))
}

pub(crate) async fn reddit(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let oauth = reddit_oauth(ctx, src).await?;
    let mut hits = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for post in posts {
        let variants = url_variants(&post.url);
        if src.budget < variants.len() {
            break; // the rest waits for a later crawl
        }
        for variant in variants {
            let mut url = match &oauth {
                Some((base, _)) => join(base, "/api/info"),
                None => join(&src.api, "/api/info.json"),
            };
            url.query_pairs_mut()
                .append_pair("url", &variant)
                .append_pair("limit", "100");
            let bearer = oauth.as_ref().map(|(_, token)| format!("bearer {token}"));
            let answer = api_json(ctx, src, url, bearer.as_deref(), None).await?;
            for child in answer["data"]["children"].as_array().into_iter().flatten() {
                let d = &child["data"];
                let Some(permalink) = str_of(d, "permalink") else {
                    continue;
                };
                if !seen.insert(permalink.to_string()) {
                    continue;
                }
                let author = str_of(d, "author");
                hits.push(Hit {
                    source: format!("https://www.reddit.com{permalink}"),
                    post_url: post.url.clone(),
                    evidence: RecordEvidence {
                        mention_type: Some("mention".into()),
                        title: str_of(d, "title").map(str::to_string),
                        author_name: author.map(|a| format!("u/{a}")),
                        author_url: author.map(|a| format!("https://www.reddit.com/user/{a}")),
                        published: d["created_utc"].as_f64().and_then(|t| {
                            chrono::DateTime::from_timestamp(t as i64, 0)
                                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        }),
                        text: Some(format!(
                            "{} points · {} comments in {}",
                            d["score"].as_i64().unwrap_or(0),
                            d["num_comments"].as_i64().unwrap_or(0),
                            str_of(d, "subreddit_name_prefixed").unwrap_or("Reddit")
                        )),
                        ..Default::default()
                    },
                });
            }
        }
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reddit_variants_cover_scheme_and_slash() {
        let v = url_variants("https://b.example/2024/hello/");
        assert_eq!(
            v,
            [
                "https://b.example/2024/hello/",
                "https://b.example/2024/hello",
                "http://b.example/2024/hello/",
                "http://b.example/2024/hello"
            ]
        );
    }
}
